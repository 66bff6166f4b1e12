"""Each convolution form on each layer shape rawdqn's networks have, under XLA on this CPU.

    python bench/conv_forms.py [--batch 32] [--rounds 15] [--block-ms 40]

For each layer — MinAtar's conv (16 3×3/1 over 10×10 with 4, 6, 7 or 10 channels: Breakout,
SpaceInvaders, Freeway, Seaquest) and the Nature network's three (84×84×4, 20×20×32, 9×9×64) — and each
form of ConvQNetwork's conv_gradients (tf: tf.nn.conv2d and XLA's gradient of it; forward:
rawdqn/conv.py's gradients as forward convolutions; im2col: the windows' slices side by side and one matrix product),
one compiled call computes what an update needs of the layer: y = relu(conv(x, K)) and, for
L = Σ w·y, ∂L/∂K and (except on a first layer, whose input is the frames) ∂L/∂x. The forms are
timed interleaved; the table gives µs per call and each form's time over the fastest's, and
the form conv.xla_cpu_form picks for the shape.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import time_interleaved   # noqa: E402
from versions import cpu_info   # noqa: E402

import tensorflow as tf   # noqa: E402

from rawdqn import conv   # noqa: E402
from rawdqn.conv import CONV_GRADIENTS   # noqa: E402

# (name, input H×W×C, filters, size, stride, first layer)
LAYERS = (("MinAtar Breakout", (10, 10, 4), 16, 3, 1, True),
          ("MinAtar SpaceInvaders", (10, 10, 6), 16, 3, 1, True),
          ("MinAtar Freeway", (10, 10, 7), 16, 3, 1, True),
          ("MinAtar Seaquest", (10, 10, 10), 16, 3, 1, True),
          ("Nature conv 1", (84, 84, 4), 32, 8, 4, True),
          ("Nature conv 2", (20, 20, 32), 64, 4, 2, False),
          ("Nature conv 3", (9, 9, 64), 64, 3, 1, False))


def layer_call(form, shape, filters, size, stride, first, batch, rng):
    """The compiled call: relu(conv(x, K)), ∂L/∂K and (not first) ∂L/∂x for L = Σ w·y."""
    x = tf.constant(rng.random((batch, *shape)), tf.float32)
    kernel = tf.constant(rng.normal(0, 0.1, (size, size, shape[2], filters)), tf.float32)

    @tf.function(jit_compile=True, autograph=False)
    def call():
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            if not first:
                tape.watch(x)
            y = tf.nn.relu(conv.convolve(form, x, kernel, stride))
            loss = tf.reduce_sum(y * 1.5)
        return tape.gradient(loss, [kernel] if first else [kernel, x])
    return call


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block-ms", type=float, default=40.0)
    args = parser.parse_args(argv)
    model, vector = cpu_info()
    print(f"bench/conv_forms.py: batch {args.batch}, XLA on {model} ({vector}), load {os.getloadavg()[0]:.2f}, "
          f"{args.rounds} rounds of {args.block_ms:g} ms blocks")
    header = [f"{'layer':<22}", f"{'input':>10}", f"{'conv':>7}", *(f"{form + ' µs':>10}" for form in CONV_GRADIENTS),
              *(f"{form + ' ×':>9}" for form in CONV_GRADIENTS), "auto picks"]
    print("\n" + " | ".join(header))
    rng = np.random.default_rng(0)
    for name, shape, filters, size, stride, first in LAYERS:
        calls = {form: layer_call(form, shape, filters, size, stride, first, args.batch, rng)
                 for form in CONV_GRADIENTS}
        times = time_interleaved(calls, repeats=args.rounds, block_seconds=args.block_ms / 1000)
        median = {form: times[form]["median_s"] for form in CONV_GRADIENTS}
        fastest = min(median.values())
        picked = conv.xla_cpu_form(shape, size, stride)
        print(f"{name:<22} | {'×'.join(map(str, shape)):>10} | {f'{filters} {size}×{size}/{stride}':>7} | "
              + " | ".join(f"{median[form] * 1e6:10.1f}" for form in CONV_GRADIENTS) + " | "
              + " | ".join(f"{median[form] / fastest:9.2f}" for form in CONV_GRADIENTS) + f" | {picked}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
