"""Whole DQN training, env steps per second: the on-device loop against the gymnasium loop.

    python bench/ondevice.py [--env CartPole-v1] [--num-envs 64] [--gym-steps 3000] [--seconds 2]

Both loops train the same agent (the on-device CartPole preset's network, batch,
optimizer, replay, learning_starts, target interval) at update-to-data ratios of
1, 1/4, 1/10 and 1/64 updates per env step (gradient_steps / train_frequency =
1/1, 1/4, 1/10, 1/64), in this one process, one after the other:

  gym        rawdqn.train.Trainer: gymnasium env, one act call per step, the
             replay written and `gradient_steps` updates run every train_frequency steps;
             timed over --gym-steps steps (x3) after it has passed learning_starts and compiled.
  on-device  rawdqn.ondevice.OnDeviceTrainer with N envs: compiled first, run past
             learning_starts, then timed over calls totalling about --seconds.
  learn      agent.train(n) alone (sample + learn in one compiled while_loop): the
             updates/s that bound any loop; / UTD it is the env steps/s a loop doing
             nothing but learning would reach ("learn bound").

Where the on-device rate is close to the learn bound, learning is what limits it,
not the environment or the loop. Every figure is the median of 3 timed runs.
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

from rawdqn import ondevice  # noqa: E402
from rawdqn.agent import DQN  # noqa: E402
from rawdqn.train import Trainer  # noqa: E402

RATIOS = ((1, 1), (1, 4), (1, 10), (1, 64))   # (gradient_steps, train_frequency)
REPEATS = 3                                   # timed runs per figure; the median is reported


def gym_rate(env_id, config, steps):
    """Env steps/s of rawdqn.train's loop over about `steps` steps after warm-up."""
    frequency = config.train_frequency
    # Warm-up ends just after a learning step and the timed steps are whole train_frequency
    # periods, so both of agent.step's programs (collect, and the step with updates) are
    # compiled before timing and each timed period has the same mix of them.
    warm = (-(-config.learning_starts // frequency) + 2) * frequency + 1
    steps = -(-steps // frequency) * frequency
    trainer = Trainer(env_id, config.replace(total_steps=warm, eval_episodes=1), seed=0,
                      log=lambda line: None)
    trainer.run()                               # compiles act and train, fills past learning_starts
    rates = []
    for _ in range(REPEATS):
        trainer.config = trainer.config.replace(total_steps=trainer.step + steps)
        rates.append(trainer.run().steps_per_second)   # excludes the final evaluation
    return statistics.median(rates)


def ondevice_rate(env_id, config, num_envs, seconds, num_seeds=1, seed_axis="batched"):
    """(compile s, env steps/s over all seeds) of the on-device loop, timed after learning_starts."""
    trainer = ondevice.OnDeviceTrainer(env_id, config, seed=0, num_envs=num_envs, num_seeds=num_seeds,
                                       seed_axis=seed_axis)
    compile_seconds = trainer.compile()
    warm_iterations = -(-(config.learning_starts + 2 * config.train_frequency) // num_envs)
    trainer.run(warm_iterations)
    # Size the timed calls from a short probe, so every UTD takes about `seconds`.
    start = time.perf_counter()
    trainer.run(8)
    per_iteration = (time.perf_counter() - start) / 8
    iterations = max(8, int(seconds / REPEATS / per_iteration))
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        trainer.run(iterations)
        rates.append(iterations * num_envs * num_seeds / (time.perf_counter() - start))
    return compile_seconds, statistics.median(rates)


def learn_rate(env_id, config, seconds):
    """Updates/s of agent.train alone (sample + learn, compiled, many per call)."""
    env = ondevice.envs.make(env_id)
    agent = DQN(env.observation_size, env.num_actions, config, seed=0)
    rng = np.random.default_rng(0)
    rows = 1024
    agent.replay.add(rng.normal(size=(rows, env.observation_size)), rng.integers(env.num_actions, size=rows),
                     np.ones(rows), rng.normal(size=(rows, env.observation_size)), np.zeros(rows))
    agent.train(64).loss.numpy()
    start = time.perf_counter()
    agent.train(64).loss.numpy()
    per_update = (time.perf_counter() - start) / 64
    return train_rate(agent, max(64, int(seconds / REPEATS / per_update)))


def train_rate(agent, updates, repeats=REPEATS):
    """Median updates/s of `repeats` calls of agent.train(updates) (compiled before by the caller)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        agent.train(updates).loss.numpy()
        rates.append(updates / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--gym-steps", type=int, default=2000,
                        help="steps of each timed gymnasium run (3 runs)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="timed seconds of each on-device and learn-only figure (3 runs)")
    args = parser.parse_args(argv)

    config = ondevice.preset(args.env)
    print(f"tensorflow {tf.__version__}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.2f}; {args.env}, hidden {config.hidden}, batch {config.batch_size}, "
          f"learning_starts {config.learning_starts}; on-device N = {args.num_envs}")
    header = (f"{'UTD':>5} {'gym steps/s':>12} {'on-device steps/s':>18} {'ratio':>7} "
              f"{'learn updates/s':>16} {'learn bound steps/s':>20} {'of bound':>9} {'compile s':>9}")
    print(header)
    print("-" * len(header))
    rows = []
    for gradient_steps, frequency in RATIOS:
        utd = gradient_steps / frequency
        cfg = config.replace(gradient_steps=gradient_steps, train_frequency=frequency)
        gym = gym_rate(args.env, cfg, args.gym_steps)
        compile_seconds, device = ondevice_rate(args.env, cfg, args.num_envs, args.seconds)
        learn = learn_rate(args.env, cfg, args.seconds / 2)
        bound = learn / utd
        rows.append((utd, gym, device, learn))
        print(f"{f'1/{frequency}' if frequency > 1 else '1':>5} {gym:>12,.0f} {device:>18,.0f} "
              f"{device / gym:>6.1f}x {learn:>16,.0f} {bound:>20,.0f} {device / bound:>8.0%} "
              f"{compile_seconds:>9.1f}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return rows


if __name__ == "__main__":
    main()
