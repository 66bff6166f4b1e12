"""Ape-X throughput: env steps/s the actors ship with 1 and 2 actors, and the learner's updates/s.

    python bench/apex.py [--env CartPole-v1] [--actors 1 2] [--seconds 20] [--rounds 3] [--device cpu|gpu]

actors: an ApexRun (rawdqn/distributed/apex.py) on a local Ray instance with the env's Rainbow
preset, prioritized, and learning off (learning_starts beyond the run), so what is timed is the
actors stepping their envs, building windows and their TD errors, and the learner taking
their shipments into its replay; env steps/s over `--seconds` after the first shipments.
learner: the same preset's DQN learner alone, `agent.train(K)` (sample from the prioritized
replay of prebuilt windows → update → priorities), updates/s.
Rounds interleave the actor counts; medians over rounds. docs/apex.md's "Ape-X at scale" turns
these into predictions for 32 and 256 actors.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rawdqn  # noqa: E402,F401
import numpy as np  # noqa: E402

from rawdqn.config import preset  # noqa: E402
from ondevice import train_rate  # noqa: E402  (bench/ondevice.py)


def actor_rate(env_id, config, num_actors, seconds):
    """Env steps/s shipped by `num_actors` actors into the learner's replay (no learning)."""
    import ray
    from rawdqn.distributed.apex import ApexRun
    run = ApexRun(env_id, config.replace(learning_starts=10**9, total_steps=10**9), seed=0, num_actors=num_actors,
                  log=lambda line: None)
    try:
        run.begin()
        while run.step < 4 * config.actor_steps * config.num_envs * num_actors:   # every actor has compiled
            run.advance()
        start_step, start = run.step, time.perf_counter()
        while time.perf_counter() - start < seconds:
            run.advance()
        return (run.step - start_step) / (time.perf_counter() - start)
    finally:
        ray.shutdown()


def learner_rate(env_id, config, device, updates=64, repeats=5):
    """Updates/s of the preset's learner on a replay of random prebuilt windows."""
    from rawdqn.agent import DQN
    from rawdqn.gym_env import make_env
    env = make_env(env_id)
    obs_dim, num_actions = int(np.prod(env.observation_space.shape)), int(env.action_space.n)
    agent = DQN(obs_dim, num_actions, config, seed=0, device=device, prebuilt_windows=True)
    rng = np.random.default_rng(0)
    for _ in range(10):
        n = 1_000
        agent.replay.add(rng.normal(size=(n, obs_dim)), rng.integers(0, num_actions, n), rng.normal(size=n),
                         rng.normal(size=(n, obs_dim)), np.zeros(n), discount=np.full(n, config.discount ** 3),
                         errors=rng.normal(size=n))
    agent.train(updates).loss.numpy()   # compile
    return train_rate(agent, updates, repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = parser.parse_args(argv)
    device = "/GPU:0" if args.device == "gpu" else "/CPU:0"
    config = preset(args.env, name="rainbow").replace(prioritized=True)
    print(f"rawdqn bench/apex.py: {args.env}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
          f"batch {config.batch_size}, hidden {config.hidden}, {config.actor_steps} steps × {config.num_envs} env(s) "
          f"per shipment")
    rates = {count: [] for count in args.actors}
    for _ in range(args.rounds):
        for count in args.actors:
            rates[count].append(actor_rate(args.env, config, count, args.seconds))
    for count in args.actors:
        print(f"{count} actor(s): {statistics.median(rates[count]):9,.0f} env steps/s shipped "
              f"({statistics.median(rates[count]) / count:,.0f} per actor)")
    print(f"learner alone: {learner_rate(args.env, config, device):,.0f} updates/s (batch {config.batch_size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
