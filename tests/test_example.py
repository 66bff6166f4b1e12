"""examples/dqn_cartpole.py, the reader's script over rawdqn.algorithms.dqn alone, and
`rawdqn train` with the same settings end with the same θ, bit for bit (float64)."""
import importlib.util
import pathlib

import numpy as np

from rawdqn.config import preset
from rawdqn.train import train

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "dqn_cartpole.py"


def load_example():
    spec = importlib.util.spec_from_file_location("dqn_cartpole", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readers_script_is_the_engine_bit_for_bit():
    steps, seed = 2_000, 5
    example = load_example()
    params, returns, _ = example.train(steps, seed, "float64", log=lambda line: None)
    config = preset("CartPole-v1").replace(total_steps=steps, dtype="float64", keep_best=False, eval_interval=0,
                                           eval_episodes=1)
    engine = train("CartPole-v1", config, seed=seed, log=lambda line: None)
    # The preset learns from step 1,000 with 128 updates every 256 steps: 2,000 steps make
    # 512 updates and 200 target syncs, all of which must agree.
    assert int(engine.agent.schedule.updates_done.numpy()) == 512
    np.testing.assert_array_equal(params.numpy(), engine.agent.online.theta.numpy())
    assert returns == engine.episode_returns[:len(returns)]
