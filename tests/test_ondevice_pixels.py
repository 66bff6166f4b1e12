"""A pixel DQN trained entirely on the device: MinAtar Breakout in TF ops, the conv network
and the frame replay in one compiled program (rawdqn/ondevice.py with rawdqn/pixel_agent.py).

The program must run the host loop's step body, frames and stacks included, and its greedy
evaluation must act on the same stacks a NumPy frame stack builds.
"""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import cli, envs
from rawdqn.config import DQNConfig
from rawdqn.gym_env import EnvStep
from rawdqn.ondevice import ENV_STREAM, OnDeviceTrainer
from rawdqn.pixel_agent import PixelDQN

ENV_ID = "MinAtar/Breakout-v1"
NUM_ENVS = 3
ITERATIONS = 48
PIXELS = DQNConfig(convs=((4, 3, 1),), hidden=(16,), history=4, batch_size=8, replay_capacity=2_048,
                   learning_starts=20, train_frequency=4, gradient_steps=1, target_update_interval=7,
                   exploration_steps=100, epsilon_end=0.2, loss="huber", optimizer="rmsprop_centered",
                   learning_rate=1e-3, num_envs=NUM_ENVS, mode="xla")


@pytest.fixture(scope="module")
def trainer():
    trainer = OnDeviceTrainer(ENV_ID, PIXELS, seed=5)
    for iterations in (1, 15, ITERATIONS - 16):
        trainer.run(iterations)
    return trainer


def test_an_iteration_is_the_host_loops_step_body_on_frames(trainer):
    """The same seed's TF envs stepped from the host, their frames fed to a fresh PixelDQN
    through `observe` (the gymnasium loop's compiled call): the same actions, and the same
    frame replay, weights, optimizer state and counters bit for bit."""
    lane = trainer.seed_runs[0]
    assert int(lane.episodes.numpy()) > 3 and int(trainer.updates_done.numpy()) > 5
    runner = envs.EnvRunner(envs.make(ENV_ID), NUM_ENVS, [lane.seed, ENV_STREAM])
    host = PixelDQN((10, 10, 4), 3, PIXELS, seed=lane.seed, num_envs=NUM_ENVS, frame_max=1.0)
    host.sync_target()
    action = host.begin(runner.obs.numpy()).numpy()
    for _ in range(ITERATIONS):
        result = runner.step(tf.constant(action))
        action = host.observe(EnvStep(result.final_obs.numpy(), result.reward.numpy(), result.terminated.numpy(),
                                      result.truncated.numpy(), result.obs.numpy(), None, None)).numpy()
    np.testing.assert_array_equal(action, lane.agent.last_action.numpy())
    np.testing.assert_array_equal(runner.physics.numpy(), lane.envs.physics.numpy())
    for name in ("online", "target", "optimizer", "schedule", "replay"):
        mine, theirs = getattr(host, name).variables, getattr(lane.agent, name).variables
        assert len(mine) == len(theirs) > 0
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name}: {a.name}")
    np.testing.assert_array_equal(host.current_obs.numpy(), lane.agent.current_obs.numpy())


def numpy_stack(frames, history):
    """[H, W, history · C]: the last `history` frames of an episode, oldest first, zeros before its start."""
    padded = [np.zeros_like(frames[0])] * max(0, history - len(frames)) + frames[-history:]
    return np.concatenate(padded, axis=-1)


def test_greedy_evaluation_acts_on_the_episodes_frame_stacks(trainer):
    """trainer.greedy_returns against a NumPy loop: the same TF episodes (the same seeds), each
    action the argmax of Q over a stack of the episode's last 4 frames built in NumPy. The
    weights are scaled up so that Q, and the episodes, depend strongly on every frame."""
    num_episodes, seed = 32, 11
    agent, env = trainer.agents[0], trainer.env
    trained = [variable.numpy() for variable in agent.online.variables_in_order]
    rng = np.random.default_rng(0)
    for variable in agent.online.variables_in_order:
        variable.assign(rng.normal(0.0, 1.0, variable.shape).astype(np.float32))
    try:
        returns = trainer.greedy_returns(seed, num_episodes)[0]
        expected, lengths = numpy_greedy_returns(agent, env, seed, num_episodes)
    finally:
        for variable, value in zip(agent.online.variables_in_order, trained):
            variable.assign(value)
    assert lengths.max() > PIXELS.history and len(set(returns)) > 1   # full stacks; episodes that differ
    np.testing.assert_array_equal(returns, expected)


def numpy_greedy_returns(agent, env, seed, num_episodes):
    """The returns and lengths of greedy episodes, the stacks built by numpy_stack."""
    lane_seed = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0x0E7A1], tf.int32), 0, alg="philox")
    state, obs = env.reset(lane_seed, num_episodes)
    frames = [[frame] for frame in obs.numpy()]
    total, done, t = np.zeros(num_episodes), np.zeros(num_episodes, bool), 0
    lengths = np.zeros(num_episodes, int)
    while not done.all():
        stacks = np.stack([numpy_stack(episode, PIXELS.history) for episode in frames])
        action = np.argmax(agent.q_values(stacks).numpy(), axis=-1).astype(np.int32)
        result = env.step(state, tf.constant(action),
                          tf.random.experimental.stateless_fold_in(lane_seed, t + 1, alg="philox"))
        total += np.where(done, 0.0, result.reward.numpy())
        lengths += ~done
        done |= result.terminated.numpy() | result.truncated.numpy()
        state, t = result.state, t + 1
        for episode, frame in zip(frames, result.obs.numpy()):
            episode.append(frame)
    return total, lengths


def test_the_cli_trains_a_pixel_dqn_on_the_device_and_eval_reads_the_run(tmp_path, capsys):
    """`rawdqn train --on-device --env MinAtar/Breakout-v1`, evaluated on the minatar package's
    env (gymnasium), then `rawdqn eval` of the run directory."""
    pytest.importorskip("minatar", reason="the final evaluation plays the minatar package's env: "
                                          "pip install 'rawdqn[minatar]'")
    logdir = tmp_path / "run"
    assert cli.main(["train", "--on-device", "--env", ENV_ID, "--steps", "768", "--num-envs", "8",
                     "--learning-starts", "200", "--replay-capacity", "4096", "--eval-episodes", "2",
                     "--logdir", str(logdir)]) == 0
    out = capsys.readouterr().out
    assert "evaluation: mean return" in out and "over 2 greedy episodes" in out
    assert cli.main(["eval", str(logdir), "--episodes", "2"]) == 0
    assert f"{ENV_ID} at step 768: mean return" in capsys.readouterr().out
