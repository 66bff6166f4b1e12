"""A2C training, env steps per second: the on-device loop against the gymnasium vector-env loop at the same N.

    python bench/a2c.py [--env CartPole-v1] [--num-envs 16 64] [--gym-steps 20000] [--seconds 3] [--rounds 3]

Both loops train the A2C preset (rawdqn/config.py's A2C_CLASSIC: rollouts of 5 steps, MLPs
of 64 × 64, Adam) with N environments, in this one process:

  gymnasium  rawdqn.train.Trainer: a gymnasium vector env of N envs stepped on the host, one
             compiled call per step (store; every 5 steps the update; the next N actions);
             timed over about --gym-steps env steps after warm-up.
  on-device  rawdqn.ondevice.OnDeviceTrainer: rawdqn's TF version of the env, N copies,
             collect → update in one compiled while_loop; timed over calls of about --seconds.

Per N, `--rounds` rounds with the two loops interleaved (gymnasium then on-device); each
figure is the median over rounds (each round's own figure a median of 3 timed runs), the
ratio the median of the rounds' ratios. On a GPU (--device gpu) the same command measures there.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ondevice import gym_rate, ondevice_rate   # noqa: E402  (bench/ondevice.py: DQN's version)

import tensorflow as tf  # noqa: E402

from rawdqn.config import A2C_CLASSIC  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--gym-steps", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args(argv)
    device = "/GPU:0" if args.device == "gpu" else "/CPU:0"
    print(f"rawdqn bench/a2c.py: A2C on {args.env} on {device}, load {os.getloadavg()[0]:.2f}")
    print(f"{'N':>4} | {'gymnasium steps/s':>17} | {'on-device steps/s':>17} | {'on-device / gym':>15} | compile s")
    for num_envs in args.num_envs:
        config = A2C_CLASSIC.replace(num_envs=num_envs, eval_interval=0, keep_best=False, log_interval=10**9)
        gym, device_rates, compiles = [], [], []
        with tf.device(device):
            for _ in range(args.rounds):
                gym.append(gym_rate(args.env, config, args.gym_steps))
                compile_seconds, rate = ondevice_rate(args.env, config, num_envs, args.seconds)
                device_rates.append(rate)
                compiles.append(compile_seconds)
        ratio = statistics.median(d / g for d, g in zip(device_rates, gym))
        print(f"{num_envs:>4} | {statistics.median(gym):17,.0f} | {statistics.median(device_rates):17,.0f} | "
              f"{ratio:14.1f}× | {statistics.median(compiles):.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
