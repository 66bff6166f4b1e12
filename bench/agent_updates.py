"""Each DQN variant's update beside DQN's: updates/s of `agent.train(K)` on the same replay.

    python bench/agent_updates.py [--env CartPole-v1] [--updates 20] [--repeats 9] [--device /CPU:0]

Every agent is the env's gymnasium preset (CartPole-v1: MLP 256 × 256, batch 64, Adam) with one
head or target changed: double Q, C51 (51 atoms), QR-DQN (`--atoms` 51 quantiles … the
preset's 51), IQN (N = N' = 64, K = 32 levels), Munchausen DQN. Each replay holds the same
10,000 random transitions; a call is `train(K)`, K updates (sample → target → loss → gradient
→ Adam) in one XLA program. Timed in interleaved blocks (bench/timing.py), float32; the table
gives ms per update and the ratio to DQN's.

On a GPU the heads that multiply the rows (IQN: B · (N + N' + K) rows through the layers after
ψ; C51 and QR: B · 51 outputs) cost little more than DQN's until the matmuls fill the device
(prediction: IQN ≤ 2× DQN at batch 64, not measured here).
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rawdqn  # noqa: E402,F401  (first: TensorFlow without the CUDA start-up noise)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.timing import time_interleaved  # noqa: E402
from rawdqn.agent import DQN  # noqa: E402
from rawdqn.presets import preset  # noqa: E402

VARIANTS = {
    "DQN": {},
    "double DQN": {"double_q": True},
    "C51": {"distributional": True, "v_min": 0.0, "v_max": 200.0},
    "QR-DQN": {"quantile_regression": True},
    "IQN": {"implicit_quantiles": True},
    "Munchausen DQN": {"munchausen": True},
}
OBS_DIM = {"CartPole-v1": (4, 2), "Acrobot-v1": (6, 3)}   # (observation width, actions)


def filled_agent(env_id, changes, transitions=10_000, seed=0):
    obs_dim, actions = OBS_DIM[env_id]
    agent = DQN(obs_dim, actions, preset(env_id).replace(**changes), seed=seed)
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(transitions, obs_dim)).astype(np.float32)
    agent.replay.add(obs[:-1], rng.integers(0, actions, transitions - 1), rng.normal(size=transitions - 1),
                     obs[1:], (rng.random(transitions - 1) < 0.05).astype(np.float32))
    return agent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1", choices=sorted(OBS_DIM))
    parser.add_argument("--updates", type=int, default=20, help="K, updates per call")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", default="/CPU:0")
    args = parser.parse_args()
    calls = {}
    with tf.device(args.device):
        for name, changes in VARIANTS.items():
            agent = filled_agent(args.env, changes)
            calls[name] = lambda agent=agent: agent.train(args.updates)
        results = time_interleaved(calls, repeats=args.repeats, block_seconds=0.5)
    base = results["DQN"]["median_s"]
    config = preset(args.env)
    print(f"{args.env} preset: MLP {config.hidden}, batch {config.batch_size}, {config.optimizer}; "
          f"K = {args.updates} updates per call, float32, XLA, {args.device}; median of {args.repeats} "
          f"interleaved blocks")
    print(f"{'agent':<16} {'ms/update':>10} {'÷ DQN':>7}")
    for name, row in results.items():
        print(f"{name:<16} {row['median_s'] * 1e3 / args.updates:10.3f} {row['median_s'] / base:7.2f}")


if __name__ == "__main__":
    main()
