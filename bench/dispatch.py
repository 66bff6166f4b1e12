"""What calling a compiled kernel costs in Python: TensorFlow's public call against rawdqn's.

    python bench/dispatch.py [--calls 500] [--repeats 9]

The same two XLA programs of a W2 agent (bench/loop.py) — `collect` (store a transition and
act: no update due) and `step` (store, one update of batch 128, act) — called with the same
packed input three ways, in interleaved blocks (medians of --repeats blocks of --calls calls):

  public     concrete_function(packed): TensorFlow's ConcreteFunction.__call__
  flat       concrete_function._call_flat(...): rawdqn's dispatch before 2 December 2026
  direct     rawdqn.engine.kernel.Kernel: one TFE_Py_Execute of the function (rawdqn/engine/kernel.py)

The difference between two rows is Python time per call; the program itself is the same.
GPU: not measured (no GPU here); the Python saved per call is the same on any device, so a
GPU step, whose program is shorter, gains a larger fraction — a prediction, not a figure.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rawdqn  # noqa: E402,F401  (first: it imports TensorFlow without the CUDA start-up noise)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.loop import W2  # noqa: E402
from rawdqn.agent import DQN  # noqa: E402


def block_microseconds(function, calls):
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    agent = DQN(4, 2, W2.replace(total_steps=10**7), seed=0)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(1, 4)).astype(np.float32)
    agent.begin(obs)
    for _ in range(W2.learning_starts + 10):   # past learning_starts: both programs compiled
        agent.step(obs + rng.normal(size=(1, 4)).astype(np.float32), [1.0], [0.0], obs)
    packed = tf.constant(agent.pack(obs, [1.0], [0.0], obs))
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print(f"{'program':<9} {'public µs':>10} {'flat µs':>9} {'direct µs':>10} {'public − direct':>16}")
    with tf.device(agent.device):
        for name, kernel in (("collect", agent._collect), ("step", agent._step)):
            concrete = kernel.function.get_concrete_function(packed)
            captured = concrete.captured_inputs
            ways = {"public": lambda: concrete(packed),
                    "flat": lambda: concrete._call_flat([packed], captured),
                    "direct": lambda: kernel(packed)}
            times = {way: [] for way in ways}
            for _ in range(args.repeats):   # interleaved: each round times every way once
                for way, function in ways.items():
                    times[way].append(block_microseconds(function, args.calls))
            median = {way: statistics.median(values) for way, values in times.items()}
            print(f"{name:<9} {median['public']:>10.1f} {median['flat']:>9.1f} {median['direct']:>10.1f} "
                  f"{median['public'] - median['direct']:>16.1f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
