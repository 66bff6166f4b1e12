"""Each target and return operator's cost beside q_learning_target's, on the same batch.

    python bench/operators.py [--batch 128] [--actions 4] [--steps 32] [--repeats 15] [--device /CPU:0]

One-step targets (bellman.py) on a batch of B transitions with A actions; multi-step returns
(multistep.py) on T × (B / T… at least 1) sequences, time-major, the same B·… transitions laid
out [T, B]; the quantile Huber loss on B × 32 quantiles against 32 target samples. Each
operator is one `tf.function(jit_compile=True)` on tensors made once, timed in interleaved
blocks (bench/timing.py's time_interleaved), every call's result copied to the host; the
table gives µs per call (median) and the ratio to q_learning_target's, float32.

On a GPU the one-step targets are a few fused elementwise kernels and a reduction: their cost
is the launch (prediction: ≈ q_learning_target's, 10–30 µs through TensorFlow); the multi-step
returns are sequential scans of T steps, so their cost grows with T, not with B.
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
from rawdqn import bellman, losses, multistep  # noqa: E402


def operators(batch, actions, steps, seed=0):
    """{name: a call of the compiled operator on fixed tensors}."""
    rng = np.random.default_rng(seed)

    def tensor(shape, low=-1.0, high=1.0):
        return tf.constant(rng.uniform(low, high, shape), tf.float32)
    reward, terminated = tensor([batch]), tf.constant(rng.random(batch) < 0.1, tf.float32)
    q, next_q = tensor([batch, actions]), tensor([batch, actions])
    probs = tf.nn.softmax(tensor([batch, actions]))
    action = tf.constant(rng.integers(0, actions, batch), tf.int32)
    sequence = max(1, batch // steps)
    rewards, discounts = tensor([steps, sequence]), tf.constant(0.99 * (rng.random((steps, sequence)) > 0.1), tf.float32)
    seq_q, seq_actions = tensor([steps, sequence, actions]), tf.constant(rng.integers(0, actions, (steps, sequence)),
                                                                        tf.int32)
    pi, mu = tf.nn.softmax(tensor([steps, sequence, actions])), tf.nn.softmax(tensor([steps, sequence, actions]))
    values, log_rhos = tensor([steps, sequence]), tensor([steps, sequence], -0.5, 0.5)
    quantiles, targets = tensor([batch, 32]), tensor([batch, 32])
    taus = tf.constant((2 * np.arange(32) + 1) / 64, tf.float32)
    cases = {
        "q_learning_target": (bellman.q_learning_target, (reward, terminated, 0.99, next_q)),
        "double_q_learning_target": (bellman.double_q_learning_target, (reward, terminated, 0.99, q, next_q)),
        "sarsa_target": (bellman.sarsa_target, (reward, terminated, 0.99, next_q, action)),
        "expected_sarsa_target": (bellman.expected_sarsa_target, (reward, terminated, 0.99, next_q, probs)),
        "persistent_q_learning_target": (bellman.persistent_q_learning_target,
                                         (reward, terminated, 0.99, next_q, action, 0.5)),
        "munchausen_target": (bellman.munchausen_target, (reward, terminated, 0.99, q, action, next_q, 0.03, 0.9, -1.0)),
        "lambda_returns": (multistep.lambda_returns, (rewards, discounts, values, 0.9)),
        "peng_q_lambda_returns": (multistep.peng_q_lambda_returns, (rewards, discounts, seq_q, 0.9)),
        "watkins_q_lambda_returns": (multistep.watkins_q_lambda_returns, (rewards, discounts, seq_q, seq_actions, 0.9)),
        "retrace_returns": (multistep.retrace_returns, (rewards, discounts, seq_q, seq_actions, pi, mu, 0.9)),
        "vtrace": (multistep.vtrace, (values, values[-1], rewards, discounts, log_rhos)),
        "quantile_huber_loss": (losses.quantile_huber_loss, (quantiles, taus, targets)),
    }
    calls = {}
    for name, (function, args) in cases.items():
        compiled = tf.function(lambda *xs, function=function: function(*xs), jit_compile=True)
        calls[name] = lambda compiled=compiled, args=args: compiled(*args)
    return calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--actions", type=int, default=4)
    parser.add_argument("--steps", type=int, default=32, help="T of the multi-step returns")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="/CPU:0")
    args = parser.parse_args()
    with tf.device(args.device):
        results = time_interleaved(operators(args.batch, args.actions, args.steps), repeats=args.repeats)
    base = results["q_learning_target"]["median_s"]
    print(f"B = {args.batch}, A = {args.actions}, multi-step T = {args.steps} × {max(1, args.batch // args.steps)}, "
          f"float32, XLA, {args.device}; median of {args.repeats} interleaved blocks")
    print(f"{'operator':<30} {'µs/call':>9} {'÷ q_learning_target':>20}")
    for name, row in results.items():
        print(f"{name:<30} {row['median_s'] * 1e6:9.1f} {row['median_s'] / base:20.2f}")


if __name__ == "__main__":
    main()
