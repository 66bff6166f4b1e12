"""The frame replay at Atari scale: memory held and the cost of add and sample.

    python bench/frame_replay.py [--slots 1001000] [--batch 32] [--calls 200] [--repeats 7]
                                 [--device cpu|gpu]

Allocates a FrameReplay of --slots 84×84 slots (1,001,000 by default: 10⁶ transitions and
1,000 episode ends, Pong-like episodes of ~1,000 steps), fills it with episodes of 1,000
steps, and reports: bytes held on the device (FrameReplay.nbytes) against the issue's
budget of 1.05 × 10⁶ × 84 × 84 bytes for 10⁶ transitions, the process's peak resident
memory (VmHWM) on a CPU, and the median µs of one compiled `add` (one env step) and one
`sample(batch)`, each over interleaved blocks. On a GPU the frames live in device memory
(VmHWM then says nothing about them); run with --device gpu where one is present — no
GPU figure here is measured.
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

from rawdqn.device import proc_bytes  # noqa: E402
from rawdqn.frame_replay import FrameReplay  # noqa: E402

FRAME = (84, 84)
EPISODE_STEPS = 1_000


def peak_rss_bytes():
    """The process's peak resident set (VmHWM), Linux only; None elsewhere."""
    return proc_bytes("/proc/self/status", "VmHWM")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=1_001_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args(argv)
    device = "/GPU:0" if args.device == "gpu" else "/CPU:0"
    before = peak_rss_bytes()
    with tf.device(device):
        replay = FrameReplay(args.slots, FRAME, num_envs=1, history=4, seed=0)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1, *FRAME), dtype=np.uint8)
    action, reward = np.zeros(1, np.int32), np.zeros(1, np.float32)
    not_done, done = np.zeros(1, bool), np.ones(1, bool)
    start = time.perf_counter()
    with tf.device(device):
        replay.begin(frame)
        frame_t = tf.constant(frame)
        calls = [tf.constant(action), tf.constant(reward), tf.constant(not_done), frame_t, tf.constant(not_done), frame_t]
        ending = [tf.constant(action), tf.constant(reward), tf.constant(done), frame_t, tf.constant(done), frame_t]
        # Fill: steps until the ring has wrapped once, an episode ending every EPISODE_STEPS steps.
        step = 0
        while int(replay.written.numpy()[0]) < args.slots + 10:
            step += 1
            replay._add(*(ending if step % EPISODE_STEPS == 0 else calls))
    fill_seconds = time.perf_counter() - start
    transitions = replay.num_transitions()
    held = replay.nbytes
    budget = 1.05 * 1_000_000 * FRAME[0] * FRAME[1]
    print(f"{args.slots:,} slots of {FRAME[0]}×{FRAME[1]}: {held:,} bytes on {device} "
          f"({held / args.slots:,.1f} per slot), {transitions:,} transitions sampleable after the fill "
          f"({fill_seconds:.0f} s, {step:,} adds)")
    per_million = held / transitions * 1_000_000
    print(f"bytes per 10⁶ transitions: {per_million:,.0f} = {per_million / (1_000_000 * FRAME[0] * FRAME[1]):.4f} "
          f"× 10⁶ × 84 × 84 (budget 1.05: {'met' if per_million <= budget else 'NOT met'})")
    peak = peak_rss_bytes()
    if peak is not None and args.device == "cpu":
        print(f"peak resident memory: {peak / 2**30:.2f} GiB ({(peak - (before or 0)) / 2**30:.2f} GiB since start; "
              f"the frames alone are {replay.frames.shape.num_elements() / 2**30:.2f} GiB)")

    batch = tf.constant(args.batch)
    with tf.device(device):
        replay._sample(batch)
    timings = {"add (one env step, compiled)": [], f"sample({args.batch}) stacks of 4 (compiled)": []}
    for _ in range(args.repeats):
        for name in timings:
            start = time.perf_counter()
            with tf.device(device):
                for _ in range(args.calls):
                    if name.startswith("add"):
                        replay._add(*calls)
                    else:
                        replay._sample(batch)[0].numpy()
            timings[name].append((time.perf_counter() - start) / args.calls)
    for name, values in timings.items():
        print(f"  {name:<40} median {statistics.median(values) * 1e6:8.1f} µs "
              f"(blocks: {', '.join(f'{v * 1e6:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
