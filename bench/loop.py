"""The gymnasium training loop end to end, against Stable-Baselines3's DQN, and where a step's time goes.

    python bench/loop.py [--steps 20000] [--rounds 3] [--num-envs 1] [--no-sb3]

Workload W2: CartPole-v1, one update of batch 128 per env step, a (64, 64) MLP, Adam 1e-3,
replay 50,000, learning starts at 1,000, target copy every 500 steps. With --num-envs N,
both libraries step N environments together (rawdqn: a gymnasium SyncVectorEnv; SB3: its
DummyVecEnv) and make N updates per vector step, the same update-to-data ratio. Each round
times, one after the other in this process, `rawdqn.train.Trainer` (one compiled
`agent.step` per vector step) and SB3's `DQN.learn` (torch, CPU) over --steps env steps
each; the ratio is taken per round and the median reported. SB3 and torch come from
bench/requirements-peers.txt, never from rawdqn's own dependencies:

    python -m pip install -r bench/requirements-peers.txt

The breakdown (one environment) times each piece of one steady-state step alone (medians
of --repeats blocks, interleaved): env.step (gymnasium), the fused `agent.step` (store, learn,
sync-if-due, act in one XLA call), the same work as the separate kernels the loop called
before (act, replay.add, train(1), sync_target), and the compiled calls alone on a tensor
made once: an empty program (the launch), `collect` (store + act) and `step` (store + one
update + act). Their differences split a step into launch, store + act, one update and the
host side of `agent.step`; the rest of a loop step is Python bookkeeping (encoding, episode
returns, hooks).
GPU: not measured here (no GPU on these machines); on one, `agent.step` is a single launch
sequence, so its cost is the dispatch plus the kernels' FLOPs — a prediction, not a figure.
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
import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from rawdqn.agent import DQN  # noqa: E402
from rawdqn.config import DQNConfig  # noqa: E402
from rawdqn.engine.kernel import Kernel  # noqa: E402
import tensorflow as tf  # noqa: E402
from rawdqn.train import Trainer  # noqa: E402

W2 = DQNConfig(hidden=(64, 64), optimizer="adam", learning_rate=1e-3, batch_size=128, replay_capacity=50_000,
               learning_starts=1_000, train_frequency=1, gradient_steps=1, target_update_interval=500,
               loss="squared", max_grad_norm=10.0, epsilon_end=0.05, exploration_fraction=0.1,
               eval_episodes=1, log_interval=10**9, mode="xla")


def rawdqn_rate(steps, seed, num_envs=1, env_source="gymnasium"):
    """Env steps/s of rawdqn's loop over `steps` steps, compile excluded (first 1,100 steps run untimed)."""
    trainer = Trainer("CartPole-v1", W2.replace(total_steps=W2.learning_starts + 100, num_envs=num_envs),
                      seed=seed, log=lambda _: None, env_source=env_source)
    trainer.run()
    trainer.config = trainer.config.replace(total_steps=trainer.step + steps)
    start = time.perf_counter()
    trainer.run()   # its final one-episode evaluation is inside the timing: a few ms
    return steps / (time.perf_counter() - start)


SB3_PROGRAM = """
import sys, time
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env
steps, seed, lr, buffer, starts, batch, freq, grad_steps, target, fraction, final_eps, clip = sys.argv[1:13]
num_envs = int(sys.argv[14])
# SB3 counts train_freq in vector steps and makes gradient_steps updates each time: N per vector step.
model = DQN("MlpPolicy", make_vec_env("CartPole-v1", n_envs=num_envs, seed=int(seed)), learning_rate=float(lr),
            buffer_size=int(buffer), learning_starts=int(starts), batch_size=int(batch), train_freq=int(freq),
            gradient_steps=int(grad_steps) * num_envs,
            target_update_interval=int(target), exploration_fraction=float(fraction),
            exploration_final_eps=float(final_eps), max_grad_norm=float(clip),
            policy_kwargs={"net_arch": [int(w) for w in sys.argv[13].split(",")]}, device="cpu", seed=int(seed),
            verbose=0)
model.learn(int(starts) + 100)
start = time.perf_counter()
model.learn(int(steps), reset_num_timesteps=False)
print(int(steps) / (time.perf_counter() - start))
"""


def sb3_rate(steps, seed, num_envs=1):
    """Env steps/s of SB3 DQN on W2, after the same untimed warm-up past learning_starts.

    In a process of its own: torch and TensorFlow in one process can crash (a segfault here).
    """
    config = W2
    args = [steps, seed, config.learning_rate, config.replay_capacity, config.learning_starts, config.batch_size,
            config.train_frequency, config.gradient_steps, config.target_update_interval,
            config.exploration_fraction, config.epsilon_end, config.max_grad_norm,
            ",".join(map(str, config.hidden)), num_envs]
    result = subprocess.run([sys.executable, "-c", SB3_PROGRAM, *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"SB3 run failed: {result.stderr.strip().splitlines()[-1:]}")
    return float(result.stdout.strip().splitlines()[-1])


def median_block_seconds(function, calls, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def breakdown(calls, repeats):
    """Seconds per call of each piece of a steady-state W2 step, interleaved block by block."""
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    fused, unfused = DQN(4, 2, W2, seed=0), DQN(4, 2, W2, seed=0)
    obs = rng.normal(size=(1, 4)).astype(np.float32)
    fused.begin(obs)
    for agent in (fused, unfused):   # past learning_starts, everything compiled
        for _ in range(W2.learning_starts + 10):
            agent.step(obs, [1.0], [0.0], obs)
        unfused.act(obs, 0.05)
        unfused.replay.add(obs, [0], [1.0], obs, [0.0])
        unfused.train(1)
        unfused.sync_target(1.0)

    def env_step():
        _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        if terminated or truncated:
            env.reset()

    def kernels_one_by_one():
        unfused.act(obs, 0.05).numpy()
        unfused.replay.add(obs, [0], [1.0], obs, [0.0])
        unfused.train(1)
        if rng.random() < 1 / W2.target_update_interval:
            unfused.sync_target(1.0)

    packed = tf.constant(fused.pack(obs, [1.0], [0.0], obs))
    empty = Kernel(tf.function(lambda x: x + 1.0, jit_compile=True))

    def on_device(kernel):
        def call():
            with tf.device(fused.device):
                kernel(packed).numpy()
        return call
    pieces = {"env.step (gymnasium)": env_step,
              "agent.step, fused: store + learn + sync + act": lambda: fused.step(obs, [1.0], [0.0], obs).numpy(),
              "act + replay.add + train(1) + sync, one kernel each": kernels_one_by_one,
              "an empty compiled program (the launch alone)": on_device(empty),
              "collect: store + act, no update (compiled call alone)": on_device(fused._collect),
              "step: store + 1 update + act (compiled call alone)": on_device(fused._step)}
    results = {name: [] for name in pieces}
    for _ in range(repeats):   # interleaved: each round times every piece once
        for name, function in pieces.items():
            results[name].append(median_block_seconds(function, calls, 1))
    return {name: statistics.median(values) for name, values in results.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="timed env steps per loop per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--calls", type=int, default=2_000, help="calls per breakdown block")
    parser.add_argument("--repeats", type=int, default=5, help="breakdown blocks per piece")
    parser.add_argument("--num-envs", type=int, default=1, help="environments stepped together (default 1)")
    parser.add_argument("--no-sb3", action="store_true", help="skip the SB3 comparison")
    parser.add_argument("--env-source", choices=("gymnasium", "envpool", "both"), default="gymnasium",
                        help="who steps rawdqn's envs; both: gymnasium and envpool alternately, with their ratio")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-piece timings")
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    if args.env_source == "both":
        compare_sources(args)
        return
    pieces = {} if args.no_breakdown else breakdown(args.calls, args.repeats)
    if pieces:
        print_breakdown(pieces)
    have_sb3 = not args.no_sb3
    if have_sb3:
        import importlib.util
        if importlib.util.find_spec("stable_baselines3") is None:
            print("\nSB3 is not installed: python -m pip install -r bench/requirements-peers.txt")
            have_sb3 = False
    rows = []
    for round_index in range(args.rounds):
        ours = rawdqn_rate(args.steps, round_index, args.num_envs, args.env_source)
        theirs = sb3_rate(args.steps, round_index, args.num_envs) if have_sb3 else float("nan")
        rows.append((ours, theirs))
        print(f"round {round_index + 1}: rawdqn {ours:7,.0f} env steps/s   SB3 {theirs:7,.0f}   "
              f"ratio {ours / theirs:5.2f}")
    ours = statistics.median(r[0] for r in rows)
    print(f"\nW2 with {args.num_envs} env(s) from {args.env_source}, {args.steps:,} steps per loop per round: "
          f"rawdqn median {ours:,.0f} env steps/s", end="")
    if args.num_envs == 1 and pieces:
        fused = pieces["agent.step, fused: store + learn + sync + act"]
        print(f" (loop step {1e6 / ours:.0f} µs = env {pieces['env.step (gymnasium)'] * 1e6:.0f} + agent.step "
              f"{fused * 1e6:.0f} + Python {1e6 / ours - (pieces['env.step (gymnasium)'] + fused) * 1e6:.0f})", end="")
    print()
    if have_sb3:
        ratios = [a / b for a, b in rows]
        print(f"SB3 median {statistics.median(r[1] for r in rows):,.0f} env steps/s; "
              f"rawdqn / SB3 per round: {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def compare_sources(args):
    """rawdqn's loop on gymnasium's vector env and on envpool, alternating in each round."""
    rows = []
    for round_index in range(args.rounds):
        order = ("gymnasium", "envpool") if round_index % 2 == 0 else ("envpool", "gymnasium")
        rates = {source: rawdqn_rate(args.steps, round_index, args.num_envs, source) for source in order}
        rows.append(rates)
        print(f"round {round_index + 1}: gymnasium {rates['gymnasium']:7,.0f} env steps/s   envpool "
              f"{rates['envpool']:7,.0f}   envpool / gymnasium {rates['envpool'] / rates['gymnasium']:5.2f}")
    ratios = [r["envpool"] / r["gymnasium"] for r in rows]
    print(f"\nW2 with {args.num_envs} env(s): gymnasium median {statistics.median(r['gymnasium'] for r in rows):,.0f}, "
          f"envpool median {statistics.median(r['envpool'] for r in rows):,.0f} env steps/s; "
          f"envpool / gymnasium median {statistics.median(ratios):.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def print_breakdown(pieces):
    print("\nwhere one W2 step's time goes (median µs per call, interleaved blocks):")
    for name, seconds in pieces.items():
        print(f"  {name:<55} {seconds * 1e6:8.1f} µs")
    fused = pieces["agent.step, fused: store + learn + sync + act"]
    separate = pieces["act + replay.add + train(1) + sync, one kernel each"]
    print(f"  fused / separate kernels: {fused / separate:.2f}")
    launch = pieces["an empty compiled program (the launch alone)"]
    collect = pieces["collect: store + act, no update (compiled call alone)"]
    update = pieces["step: store + 1 update + act (compiled call alone)"] - collect
    print(f"  so: launch {launch * 1e6:.0f} µs, store + act {(collect - launch) * 1e6:.0f} µs, one update "
          f"{update * 1e6:.0f} µs, host side of agent.step (pack, schedule check, result) "
          f"{(fused - collect - update) * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
