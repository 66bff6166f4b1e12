"""The Nature DQN learner (batch 32, 84×84×4 uint8 frames, centred RMSProp), against SB3 and Keras.

    python bench/conv.py [--rounds 5] [--block-ms 1500] [--net nature|minatar] [--no-sb3] [--no-keras]
                         [--device cpu|gpu] [--modes eager function xla hybrid] [--fill N]

What one update is, in each library (the same network: conv 32 8×8/4, 64 4×4/2, 64 3×3/1,
fc 512, Mnih et al. 2015; or MinAtar's 16 3×3/1, fc 128 on 10×10×4):

  rawdqn    PixelDQN.train(1): sample 32 stacks from the FrameReplay on the device, target
            network forward, online forward and gradient, global-norm clip, RMSProp step;
            one compiled call, in each mode (eager, tf.function, XLA, and hybrid: a graph
            whose sampling, θ cuts and optimizer step are XLA clusters), each layout (NHWC,
            NCHW) and each conv form (conv_gradients 'tf', 'forward' and 'im2col', rawdqn/conv.py).
  networks  the same update's convolutions and products alone (target forward, online forward
  alone     and gradient, in a graph on one fixed batch, θ cut beforehand; no sampling, clip
            or step): the least any update of this network costs with TensorFlow's kernels
            here, and so the check of whether a bar can be met at all.
  SB3       DQN("CnnPolicy").train(gradient_steps=1): sample from its replay, the same
            target / forward / backward / clip / step in torch (RMSprop centred, α 0.95,
            ε 0.01), in a child process (torch and TensorFlow in one process crashed here).
  Keras     train_on_batch on the tutorials' masked model of the same network (forward,
            gradient, RMSprop step; no target network: 3F − F_conv1 FLOPs, less work than an
            update), and the tutorials' full update (target predict_on_batch, the target in
            NumPy, train_on_batch), with Keras' default jit_compile ('auto') and without.

Timing: blocks of calls lasting about --block-ms each, every call's loss copied to the host;
the variants run one block each per round, in turn, so a shared machine's load falls on all
of them alike; each row is the median over --rounds rounds, and each ratio is taken per
round. FLOPs per update are counted from the shapes (bench/flops.py's convention: a
multiply-add is 2): target forward F, online forward F, kernel gradients F, input gradients
F − F_conv1, so 4F − F_conv1 (a GFLOP/s column counts each row's own work). The peak beside them is the fastest forward convolution this
machine runs (a batch of 64 Nature layer-3 inputs, tf.function and XLA), measured in the
same run, and so is a 2048 × 2048 matmul; the larger of the two is this machine's
peak P, and F_update / P the floor: no implementation of the update runs faster here, so a
row's time over the floor is the most that any learner doing an update's arithmetic could beat
it by (the "≤ × at peak" column).

On a GPU (--device gpu, and SB3 on cuda) the same rows are measured. No GPU is available on
the machines this was written on: the GPU figures in bench/README.md are predictions.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rawdqn  # noqa: E402,F401  (first: it imports TensorFlow without the CUDA start-up noise)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.run import measure_peak  # noqa: E402
from rawdqn.config import DQNConfig  # noqa: E402
from rawdqn.network import MINATAR_CONVS, MINATAR_HIDDEN, NATURE_CONVS, NATURE_HIDDEN  # noqa: E402
from rawdqn.pixel_agent import PixelDQN  # noqa: E402

NETS = {"nature": ((84, 84), 4, 1, NATURE_CONVS, NATURE_HIDDEN, 6),       # frame, history, channels, convs, hidden, actions
        "minatar": ((10, 10), 1, 4, MINATAR_CONVS, MINATAR_HIDDEN, 3)}
NETWORKS_ALONE = "rawdqn networks alone (graph, no step)"
BATCH, FILL = 32, 1_000   # transitions stored before timing (--fill); uniform samples of them


def learner_config(net, mode, data_format="NHWC", conv_gradients="auto", fill=FILL):
    _, history, _, convs, hidden, _ = NETS[net]
    # Mnih et al. 2015's update; the replay is small (the sample's cost does not depend on its size).
    return DQNConfig(convs=convs, hidden=hidden, history=history, optimizer="rmsprop_centered",
                     learning_rate=2.5e-4, batch_size=BATCH, replay_capacity=fill + 16, learning_starts=10**9,
                     loss="huber", max_grad_norm=10.0, mode=mode, data_format=data_format,
                     conv_gradients=conv_gradients)


def frame_shape_of(net):
    frame, _, channels, _, _, _ = NETS[net]
    return frame if channels == 1 else (*frame, channels)


def update_flops(net, target_network=True):
    """4F − F_conv1 for a batch of BATCH (module docstring); 3F − F_conv1 without the target's forward."""
    frame, history, channels, convs, hidden, actions = NETS[net]
    height, width, depth = frame[0], frame[1], history * channels
    per_layer = []
    for filters, size, stride in convs:
        height, width = (height - size) // stride + 1, (width - size) // stride + 1
        per_layer.append(2 * BATCH * height * width * size * size * depth * filters)
        depth = filters
    sizes = (height * width * depth, *hidden, actions)
    per_layer += [2 * BATCH * a * b for a, b in zip(sizes[:-1], sizes[1:])]
    forward = sum(per_layer)
    return (4 if target_network else 3) * forward - per_layer[0]


def rawdqn_update(net, mode, data_format, conv_gradients, device, fill=FILL):
    """A function making one update (train(1)) of a PixelDQN whose replay holds `fill` random steps."""
    frame_shape, actions = frame_shape_of(net), NETS[net][5]
    agent = PixelDQN(frame_shape, actions, learner_config(net, mode, data_format, conv_gradients, fill), seed=0,
                     device=device, num_envs=1)
    rng = np.random.default_rng(0)
    agent.begin(rng.integers(0, 256, (1, *frame_shape), dtype=np.uint8))
    for step in range(fill):
        frames = tf.constant(rng.integers(0, 256, (2, 1, *frame_shape), dtype=np.uint8))
        scalars = tf.constant([[rng.normal(), 0.0, float(step % 200 == 199)]], tf.float32)
        agent.run_step_program(frames, scalars)
    return lambda: agent.train(1).loss.numpy()


def networks_only(net, device, fill=FILL):
    """The convolutions and products of one update and nothing else: a graph (TensorFlow's
    kernels, oneDNN's where it is on) running the target network's forward on s', the online
    forward on s and the gradient with respect to its layers, on one fixed batch, with θ
    already cut into layers. No sampling, θ cuts, clip or optimizer step: no update of this
    network runs faster in TensorFlow on this machine than this row (the bars' check)."""
    frame_shape, actions = frame_shape_of(net), NETS[net][5]
    config = learner_config(net, "function", "NHWC", "tf", fill)
    agent = PixelDQN(frame_shape, actions, config, seed=0, device=device, num_envs=1)
    _, history, channels, _, _, _ = NETS[net]
    rng = np.random.default_rng(0)
    stacks = [tf.constant(rng.integers(0, 256, (BATCH, *NETS[net][0], history * channels), dtype=np.uint8))
              for _ in range(2)]
    action = tf.constant(rng.integers(0, actions, BATCH), tf.int32)
    with tf.device(device):
        online = agent.online.unpack(agent.online.theta.read_value(), differentiable=False)
        target = agent.target.unpack(agent.target.theta.read_value(), differentiable=False)
        layers = agent.online.in_order(online)

        @tf.function
        def forward_and_gradient():
            y = tf.reduce_max(agent.target(stacks[1], parameters=target), axis=1)
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(layers)
                q_taken = tf.gather(agent.online(stacks[0], parameters=online), action, batch_dims=1)
                loss = tf.reduce_mean(tf.square(y - q_taken))
            return tf.add_n([tf.reshape(g, [-1])[0] for g in tape.gradient(loss, layers)])
        return lambda: forward_and_gradient().numpy()


def keras_update(net, jit_compile, full=False):
    """Keras train_on_batch of the masked model (inputs: frames uint8 and a one-hot action mask);
    full: the tutorials' whole update, y = r + γ max_a' target.predict_on_batch(s') in NumPy first."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    frame, history, channels, convs, hidden, actions = NETS[net]
    frames = keras.Input((*frame, history * channels), dtype="uint8")
    mask = keras.Input((actions,))
    x = keras.layers.Rescaling(1 / 255)(frames)
    for filters, size, stride in convs:
        x = keras.layers.Conv2D(filters, size, stride, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    for width in hidden:
        x = keras.layers.Dense(width, activation="relu")(x)
    q_values = keras.layers.Multiply()([keras.layers.Dense(actions)(x), mask])
    model = keras.Model([frames, mask], q_values)
    model.compile(optimizer=keras.optimizers.RMSprop(2.5e-4, rho=0.95, epsilon=0.01, centered=True),
                  loss="huber", jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    batch = [rng.integers(0, 256, (BATCH, *frame, history * channels), dtype=np.uint8),
             np.eye(actions, dtype=np.float32)[rng.integers(0, actions, BATCH)]]
    target = rng.normal(size=(BATCH, actions)).astype(np.float32) * batch[1]
    if not full:
        return lambda: model.train_on_batch(batch, target)
    target_model = keras.models.clone_model(model)
    next_frames = rng.integers(0, 256, batch[0].shape, dtype=np.uint8)
    reward, ones = rng.normal(size=BATCH).astype(np.float32), np.ones((BATCH, actions), np.float32)

    def update():
        next_q = target_model.predict_on_batch([next_frames, ones])
        y = reward + 0.99 * next_q.max(axis=1)
        return model.train_on_batch(batch, y[:, None] * batch[1])
    return update


SB3_CHILD = """
import sys, time, numpy as np, gymnasium as gym, torch
from stable_baselines3 import DQN
net, device, FILL, BATCH = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
shape, actions = ((84, 84, 4), 6) if net == "nature" else ((10, 10, 4), 3)
class Frames(gym.Env):
    observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
    action_space = gym.spaces.Discrete(actions)
    def reset(self, seed=None, options=None):
        return self.observation_space.sample(), {}
    def step(self, action):
        return self.observation_space.sample(), float(np.random.normal()), False, False, {}
kwargs = dict(optimizer_class=torch.optim.RMSprop, optimizer_kwargs=dict(alpha=0.95, eps=0.01, centered=True))
if net == "minatar":   # SB3's NatureCNN does not fit 10x10: MinAtar's conv as a features extractor
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    class MinAtarCNN(BaseFeaturesExtractor):
        def __init__(self, space):
            super().__init__(space, 128)
            self.net = torch.nn.Sequential(torch.nn.Conv2d(4, 16, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                           torch.nn.Linear(1024, 128), torch.nn.ReLU())
        def forward(self, x):
            return self.net(x)
    kwargs.update(features_extractor_class=MinAtarCNN, net_arch=[], normalize_images=False)
model = DQN("CnnPolicy", Frames(), learning_rate=2.5e-4, buffer_size=FILL + 16, learning_starts=0, batch_size=BATCH,
            max_grad_norm=10.0, policy_kwargs=kwargs, device=device, seed=0, verbose=0)
model.learn(FILL)
model.train(gradient_steps=3, batch_size=BATCH)
print("ready", flush=True)
for line in sys.stdin:
    calls = int(line)
    start = time.perf_counter()
    model.train(gradient_steps=calls, batch_size=BATCH)
    print((time.perf_counter() - start) / calls, flush=True)
"""


class SB3Learner:
    """SB3 DQN in a child process that times `calls` updates on each request."""

    def __init__(self, net, device, python, fill=FILL):
        self.child = subprocess.Popen([python, "-c", SB3_CHILD, net, device, str(fill), str(BATCH)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.child.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"SB3 child failed: {self.child.stderr.read().strip().splitlines()[-1:]}")

    def seconds_per_update(self, calls):
        self.child.stdin.write(f"{calls}\n")
        self.child.stdin.flush()
        return float(self.child.stdout.readline())

    def close(self):
        self.child.stdin.close()
        self.child.wait()


def block_seconds(update, calls):
    start = time.perf_counter()
    for _ in range(calls):
        update()
    return (time.perf_counter() - start) / calls


def calls_for(seconds_each, block_ms):
    return max(1, round(block_ms / 1e3 / seconds_each))


def conv_peak_flops(device, block_ms=1500.0):
    """FLOP/s of the fastest forward convolution measured: Nature layer 3 on a batch of 64."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(64, 9, 9, 64)).astype(np.float32))
    kernel = tf.constant(rng.normal(size=(3, 3, 64, 64)).astype(np.float32))
    flops, best = 2 * 64 * 7 * 7 * 3 * 3 * 64 * 64, 0.0
    with tf.device(device):
        for jit in (False, True):
            conv = tf.function(lambda a, b: tf.reduce_sum(tf.nn.conv2d(a, b, 1, "VALID")), jit_compile=jit)
            conv(x, kernel).numpy()
            calls = calls_for(block_seconds(lambda: conv(x, kernel).numpy(), 2), min(block_ms, 300.0))
            seconds = statistics.median(block_seconds(lambda: conv(x, kernel).numpy(), calls) for _ in range(5))
            best = max(best, flops / seconds)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=tuple(NETS), default="nature")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block-ms", type=float, default=1500.0, help="length of one timed block")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--modes", nargs="+", choices=("eager", "function", "xla", "hybrid"),
                        default=["eager", "function", "xla", "hybrid"], help="the rawdqn modes to time (default: all)")
    parser.add_argument("--fill", type=int, default=FILL, help=f"transitions stored before timing (default {FILL})")
    parser.add_argument("--no-sb3", action="store_true")
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--sb3-python", default=sys.executable,
                        help="a Python with stable-baselines3 and torch (bench/requirements-peers.txt)")
    parser.add_argument("--slow-variants", action="store_true",
                        help="also XLA with TensorFlow's conv gradients (NHWC and NCHW): ~0.25 s per Nature update")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    if args.fill < BATCH:
        parser.error(f"--fill must be at least the batch size, {BATCH}; got {args.fill}")
    device = "/GPU:0" if args.device == "gpu" else "/CPU:0"
    if args.device == "gpu" and not tf.config.list_physical_devices("GPU"):
        parser.error("--device gpu: TensorFlow sees no GPU on this machine")
    print(f"{args.net} learner, batch {BATCH}, {device}, load average {os.getloadavg()[0]:.2f}")
    variants = {}
    on_cpu = args.device == "cpu"
    for mode in args.modes:
        for data_format in ("NHWC", "NCHW"):
            for gradients in ("tf", "forward", "im2col"):
                if gradients != "tf" and data_format == "NCHW":
                    continue
                if mode == "xla" and gradients == "tf" and on_cpu and not args.slow_variants:
                    continue
                if mode in ("eager", "hybrid") and gradients == "forward":
                    continue
                name = f"rawdqn {mode} {data_format} conv_gradients={gradients}"
                try:
                    update = rawdqn_update(args.net, mode, data_format, gradients, device, args.fill)
                    update()
                except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError) as error:
                    print(f"  {name}: not run ({str(error).splitlines()[0][:100]})")
                    continue
                variants[name] = update
    variants[NETWORKS_ALONE] = networks_only(args.net, device, args.fill)
    variants[NETWORKS_ALONE]()
    if not args.no_keras:
        for jit in ("auto", False):
            for full in (False, True):
                name = f"keras {'full update' if full else 'train_on_batch'} jit_compile={jit}"
                variants[name] = keras_update(args.net, jit, full)
                variants[name]()
    sb3 = None
    if not args.no_sb3:
        try:
            sb3 = SB3Learner(args.net, "cuda" if args.device == "gpu" else "cpu", args.sb3_python, args.fill)
        except RuntimeError as error:
            print(f"  SB3: not run ({error}); python -m pip install -r bench/requirements-peers.txt")
    calls = {name: calls_for(block_seconds(update, 2), args.block_ms) for name, update in variants.items()}
    if sb3:
        calls["sb3"] = calls_for(sb3.seconds_per_update(2), args.block_ms)
    rounds = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name in calls:
            seconds = sb3.seconds_per_update(calls[name]) if name == "sb3" else block_seconds(variants[name], calls[name])
            rounds[name].append(seconds)
    if sb3:
        sb3.close()
    peak = conv_peak_flops(device, args.block_ms)
    matmul_peak = measure_peak(device, tf.float32, 2048, 5, min(0.5, args.block_ms / 1e3))["gflops"] * 1e9
    machine_peak = max(peak, matmul_peak)
    flops = update_flops(args.net)
    floor = flops / machine_peak
    flops_of = {name: update_flops(args.net, target_network="train_on_batch" not in name) for name in rounds}
    rawdqn_names = [name for name in rounds if name.startswith("rawdqn") and name != NETWORKS_ALONE]
    best = min(rawdqn_names, key=lambda name: statistics.median(rounds[name]))
    print(f"\nFLOPs per update {flops / 1e9:.3f} G; conv peak {peak / 1e9:.0f} GFLOP/s (forward conv, measured); "
          f"2048² matmul {matmul_peak / 1e9:.0f} GFLOP/s; floor {floor * 1e3:.2f} ms per update at the larger (the peak)")
    print(f"{'variant':<46} {'ms/update':>10} {'updates/s':>10} {'GFLOP/s':>8} {'of peak':>8} {'≤ × at peak':>11}"
          f"  best rawdqn / this")
    rows = []
    for name, times in rounds.items():
        median = statistics.median(times)
        ratios = [a / b for a, b in zip(times, rounds[best])]
        label = "sb3 CnnPolicy train(1)" if name == "sb3" else name
        rate = flops_of[name] / median
        print(f"{label:<46} {median * 1e3:10.2f} {1 / median:10.1f} {rate / 1e9:8.1f} "
              f"{rate / machine_peak:8.1%} {median / floor:11.2f}  {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
        rows.append({"variant": label, "seconds": times, "median_seconds": median,
                     "best_rawdqn_speedup": statistics.median(ratios), "most_speedup_at_peak": median / floor})
    print(f"load average at end {os.getloadavg()[0]:.2f}; best rawdqn: {best}")
    alone = statistics.median(rounds[NETWORKS_ALONE]) if NETWORKS_ALONE in rounds else None
    peers = {"sb3": "SB3's update", "keras train_on_batch jit_compile=False": "Keras' train_on_batch",
             "keras full update jit_compile=False": "Keras' full update"}
    for name, label in peers.items():
        if name in rounds and alone is not None:
            budget = statistics.median(rounds[name]) / 1.5
            print(f"1.5× {label} allows {budget * 1e3:.2f} ms per update; the networks alone take "
                  f"{alone * 1e3:.2f} ms ({'within' if alone < budget else 'over'} it before any sampling or step)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"net": args.net, "device": device, "flops_per_update": flops, "conv_peak_flops": peak,
                       "matmul_peak_flops": matmul_peak, "floor_seconds": floor,
                       "best_rawdqn": best, "rows": rows}, out, indent=1)


if __name__ == "__main__":
    main()
