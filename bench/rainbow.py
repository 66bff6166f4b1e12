"""What each of Rainbow's parts and each other head costs: one update with it on, and the sum-tree
against capacity.

    python bench/rainbow.py [--part updates|tree|both] [--rounds 5] [--calls 20] [--device cpu|gpu]
                            [--capacities 10000 100000 1000000]

updates: one compiled `agent.train(K)` call (K updates inside, sample → learn) per variant,
the MLP learner at batch 128 (obs 4, hidden 256×256, 2 actions, replay of 50,000 random
transitions) and the MinAtar CNN learner at batch 32 (10×10×4 frames, conv 16 3×3/1, fc 128,
6 actions, a frame replay of 20,000 random steps); per variant the median ms per update over
`--rounds` rounds, the variants interleaved within each round, and its ratio to plain DQN in
the same round (median of the per-round ratios).

tree: the SumTree's compiled update (32 leaves, as after a batch-32 learn step), find (32
draws) and a prioritized ReplayBuffer's add (1 transition) against capacity 10⁴ … 10⁶,
median µs per call; O(log N) shows as a slow rise per decade, not a 10× one.

No GPU here: every figure below is from a CPU; the same commands with --device gpu measure a
GPU where one is present.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rawdqn  # noqa: E402,F401
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rawdqn.agent import DQN  # noqa: E402
from rawdqn.config import DQNConfig, MINATAR  # noqa: E402
from rawdqn.pixel_agent import PixelDQN  # noqa: E402
from rawdqn.replay import ReplayBuffer  # noqa: E402
from rawdqn.sum_tree import SumTree  # noqa: E402

VARIANTS = {
    "plain DQN": {},
    "+ double Q": dict(double_q=True),
    "+ dueling": dict(dueling=True),
    "+ 3-step": dict(n_step=3),
    "+ prioritized": dict(prioritized=True),
    "+ distributional (51 atoms)": dict(distributional=True),
    "+ noisy": dict(noisy=True),
    "all six (Rainbow)": dict(double_q=True, dueling=True, n_step=3, prioritized=True, distributional=True,
                              noisy=True),
    "QR-DQN (51 quantiles)": dict(quantile_regression=True),
    "IQN (N = N' = 64, K = 32)": dict(implicit_quantiles=True),
    "Munchausen DQN": dict(munchausen=True),
}


def mlp_agent(changes, device):
    config = DQNConfig(hidden=(256, 256), batch_size=128, replay_capacity=50_000, learning_starts=1_000,
                       **changes)
    agent = DQN(4, 2, config, seed=0, device=device)
    rng = np.random.default_rng(0)
    for _ in range(50):   # 50 × 1,000 random transitions, episodes ending now and then
        n = 1_000
        ended = rng.random(n) < 0.02
        agent.replay.add(rng.normal(size=(n, 4)), rng.integers(0, 2, n), rng.normal(size=n),
                         rng.normal(size=(n, 4)), (ended & (rng.random(n) < 0.5)).astype(np.float32),
                         ended=ended.astype(np.float32) if config.n_step > 1 else None)
    return agent


def cnn_agent(changes, device):
    config = MINATAR.replace(batch_size=32, replay_capacity=20_000, learning_starts=1_000, **changes)
    agent = PixelDQN((10, 10, 4), 6, config, seed=0, device=device, frame_max=1.0)
    rng = np.random.default_rng(0)
    replay = agent.replay
    with tf.device(device):
        replay.begin(rng.integers(0, 2, (1, 10, 10, 4), dtype=np.uint8))
        add = tf.function(replay.add_fn, jit_compile=True)
        for _ in range(20_000):
            ended = rng.random(1) < 0.01
            frame = rng.integers(0, 2, (1, 10, 10, 4), dtype=np.uint8)
            add(tf.constant(rng.integers(0, 6, 1), tf.int32), tf.constant(rng.normal(size=1), tf.float32),
                tf.constant(ended & (rng.random(1) < 0.5)), tf.constant(frame), tf.constant(ended), tf.constant(frame))
    return agent


def median_ms_per_update(agent, calls, updates_per_call):
    agent.train(updates_per_call).loss.numpy()   # compile and warm up
    agent.train(updates_per_call).loss.numpy()
    start = time.perf_counter()
    for _ in range(calls):
        agent.train(updates_per_call).loss.numpy()
    return (time.perf_counter() - start) / (calls * updates_per_call) * 1e3


def updates(args):
    for title, build, per_call in (("MLP learner, batch 128 (obs 4, 256×256, 2 actions)", mlp_agent, 10),
                                   ("MinAtar CNN learner, batch 32 (10×10×4, conv 16 3×3/1, fc 128)", cnn_agent, 10)):
        agents = {name: build(changes, args.device) for name, changes in VARIANTS.items()}
        times = {name: [] for name in VARIANTS}
        for _ in range(args.rounds):   # interleaved: every variant once per round
            for name, agent in agents.items():
                times[name].append(median_ms_per_update(agent, args.calls, per_call))
        print(f"\n{title}: ms per update (median of {args.rounds} rounds; {per_call} updates per call)")
        print(f"{'variant':<30} | {'ms/update':>9} | {'× plain (median of rounds)':>26}")
        for name in VARIANTS:
            ratios = [t / p for t, p in zip(times[name], times["plain DQN"])]
            print(f"{name:<30} | {statistics.median(times[name]):9.3f} | {statistics.median(ratios):26.2f}")


def median_us(call, repeats=7, calls=200):
    call()
    call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            result = call()
        if result is not None:
            result.numpy()
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def tree(args):
    print("\nSumTree and prioritized add against capacity: median µs per compiled call")
    print(f"{'capacity':>10} | {'depth':>5} | {'update 32 leaves':>16} | {'find 32 draws':>13} | {'prioritized add, 1 row':>22}")
    for capacity in args.capacities:
        with tf.device(args.device):
            sum_tree = SumTree(capacity)
            rng = np.random.default_rng(0)
            update = tf.function(sum_tree.update_fn, jit_compile=True)
            find = tf.function(sum_tree.find_fn, jit_compile=True)
            for start in range(0, capacity, 65_536):   # every leaf positive
                indices = np.arange(start, min(capacity, start + 65_536))
                update(tf.constant(indices, tf.int32), tf.constant(rng.uniform(0.1, 2.0, len(indices))))
            indices = tf.constant(rng.integers(0, capacity, 32), tf.int32)
            values = tf.constant(rng.uniform(0.1, 2.0, 32))
            draws = tf.constant(rng.uniform(0, float(sum_tree.total_fn()), 32))
            replay = ReplayBuffer(capacity, (4,), seed=0, prioritized=True)
            row = [tf.zeros([1, 4]), tf.zeros([1], tf.int32), tf.zeros([1]), tf.zeros([1, 4]), tf.zeros([1])]
            update_us = median_us(lambda: update(indices, values) and None)
            find_us = median_us(lambda: find(draws))
            add_us = median_us(lambda: replay._add(*row) and None)
        print(f"{capacity:>10,} | {sum_tree.depth:>5} | {update_us:16.1f} | {find_us:13.1f} | {add_us:22.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("updates", "tree", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="train calls per variant per round")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--capacities", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args(argv)
    args.device = "/GPU:0" if args.device == "gpu" else "/CPU:0"
    print(f"rawdqn bench/rainbow.py on {args.device}, load {os.getloadavg()[0]:.2f}")
    if args.part in ("tree", "both"):
        tree(args)
    if args.part in ("updates", "both"):
        updates(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
