"""Pong end to end: rawdqn's pixel DQN against Stable-Baselines3's, env steps and frames per second.

    python bench/pong.py [--steps 4000] [--rounds 3] [--sb3-python PY] [--device cpu|gpu]

Workload W3: ALE/Pong-v5 at frame skip 4 (max-pool of the last two frames, 84×84 grayscale,
up to 30 no-op starts, no sticky actions), 4 stacked frames, the Nature network, centred
RMSProp 2.5e-4, batch 32, one update every 4 env steps, target copy every 10,000 steps,
Huber loss, rewards clipped, replay 50,000, learning starts at 5,000 steps. Each round times
--steps env steps after learning has started (the first 5,000 + 100 run untimed), for
rawdqn's `Trainer` (the nature preset, sized as above) in this process and for SB3's
`DQN.learn` (CnnPolicy, torch, gymnasium's ALE env under SB3's AtariWrapper and a 4-frame
VecFrameStack) in a child process; the ratio is taken per round, the median reported.
Frames/s are env steps/s × 4. SB3, torch and ale-py for the child: bench/requirements-peers.txt
plus `pip install "ale-py>=0.9" opencv-python-headless`.
GPU: not measured (no GPU here); --device gpu runs both on one where present.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rawdqn  # noqa: E402,F401  (first: it imports TensorFlow without the CUDA start-up noise)

from rawdqn.config import preset  # noqa: E402
from rawdqn.train import Trainer  # noqa: E402

ENV_ID = "ALE/Pong-v5"
W3 = preset(ENV_ID, name="nature").replace(
    replay_capacity=50_000, learning_starts=5_000, target_update_interval=10_000, exploration_steps=100_000,
    terminal_on_life_loss=False, eval_episodes=1, log_interval=10**9)


def rawdqn_rate(steps, seed, device):
    """Env steps/s of rawdqn's loop over `steps` steps after learning starts: the clock is read
    in the loop's on_step hook, so compilation before and the final evaluation after are out."""
    warm_up = W3.learning_starts + 100
    clock = {}

    def on_step(trainer, obs, actions, env_step):
        if trainer.step in (warm_up, warm_up + steps):
            clock[trainer.step] = time.perf_counter()
    Trainer(ENV_ID, W3.replace(total_steps=warm_up + steps), seed=seed, device=device, log=lambda _: None,
            on_step=on_step).run()
    return steps / (clock[warm_up + steps] - clock[warm_up])


SB3_PROGRAM = """
import sys, time, gymnasium as gym, ale_py, torch
from stable_baselines3 import DQN
from stable_baselines3.common.atari_wrappers import AtariWrapper
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack
gym.register_envs(ale_py)
steps, seed, buffer, starts, target, explore, device = sys.argv[1:8]
env = VecFrameStack(DummyVecEnv([lambda: AtariWrapper(gym.make("ALE/Pong-v5", frameskip=1,
                                  repeat_action_probability=0.0), terminal_on_life_loss=False)]), 4)
env.seed(int(seed))
model = DQN("CnnPolicy", env, learning_rate=2.5e-4, buffer_size=int(buffer), learning_starts=int(starts),
            batch_size=32, train_freq=4, gradient_steps=1, target_update_interval=int(target),
            exploration_fraction=int(explore) / (int(starts) + 100 + int(steps)), exploration_final_eps=0.1,
            max_grad_norm=1e9, optimize_memory_usage=False, device=device, seed=int(seed), verbose=0,
            policy_kwargs=dict(optimizer_class=torch.optim.RMSprop,
                               optimizer_kwargs=dict(alpha=0.95, eps=0.01, centered=True)))
model.learn(int(starts) + 100)
start = time.perf_counter()
model.learn(int(steps), reset_num_timesteps=False)
print(int(steps) / (time.perf_counter() - start))
"""


def sb3_rate(steps, seed, device, python):
    """Env steps/s of SB3 DQN on W3 after the same untimed warm-up past learning_starts."""
    args = [steps, seed, W3.replay_capacity, W3.learning_starts, W3.target_update_interval, W3.exploration_steps,
            "cuda" if device == "gpu" else "cpu"]
    result = subprocess.run([python, "-c", SB3_PROGRAM, *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"SB3 run failed: {result.stderr.strip().splitlines()[-1:]}")
    return float(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4_000, help="timed env steps per library per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--sb3-python", default=sys.executable,
                        help="a Python with stable-baselines3, torch and ale-py")
    parser.add_argument("--no-sb3", action="store_true")
    args = parser.parse_args(argv)
    print(f"W3 (Pong, Nature network), {args.steps:,} timed steps per round, load average {os.getloadavg()[0]:.2f}")
    rows = []
    for round_index in range(args.rounds):
        ours = rawdqn_rate(args.steps, round_index, args.device)
        theirs = float("nan") if args.no_sb3 else sb3_rate(args.steps, round_index, args.device, args.sb3_python)
        rows.append((ours, theirs))
        print(f"round {round_index + 1}: rawdqn {ours:6.1f} env steps/s ({4 * ours:6.0f} frames/s)   "
              f"SB3 {theirs:6.1f} ({4 * theirs:6.0f})   ratio {ours / theirs:5.2f}", flush=True)
    ours = statistics.median(r[0] for r in rows)
    print(f"\nrawdqn median {ours:.1f} env steps/s = {4 * ours:.0f} frames/s", end="")
    if not args.no_sb3:
        ratios = [a / b for a, b in rows]
        print(f"; SB3 median {statistics.median(r[1] for r in rows):.1f}; rawdqn / SB3 per round: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}", end="")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
