"""Many seeds in one on-device program: total env steps/s and compile time against K separate programs.

    python bench/seeds.py [--env CartPole-v1] [--algos dqn pqn] [--seeds 1 2 4 8 16 32] [--seconds 3] [--rounds 3]
                          [--seed-axis batched unrolled per-seed-rng]

For each agent (its on-device preset: `rawdqn train --on-device --algo A --env ENV`'s config),
each K and each form of the seed axis, rawdqn.ondevice.OnDeviceTrainer trains K seeds in one
compiled program (`rawdqn train --on-device --seeds K [--seed-axis unrolled]`): 'batched' runs
the step body once for all K (engine/seed_axis.py), 'unrolled' runs it K times one after
another. 'per-seed-rng' is 'batched' with each stateless RNG op made once per seed (as before
the batched Philox, engine/philox.py), to measure what the batched draws save. Timed after
DQN's learning_starts, over calls of about --seconds (bench/ondevice.py's ondevice_rate). K separate programs would each run at the K = 1
rate, so they take K times one seed's time: the speed-up of one program over them is
rate(K) / rate(1), and "time vs one seed" is K · rate(1) / rate(K) (the issue's goal: 8 seeds in
≤ 2× one seed's time). Rounds interleave every K; figures are medians over rounds.
"""
import argparse
import contextlib
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ondevice import ondevice_rate   # noqa: E402
from versions import cpu_info   # noqa: E402

from rawdqn import ondevice  # noqa: E402


@contextlib.contextmanager
def per_seed_rng(on):
    """Within the block (if on), pfor makes each stateless RNG op once per seed, as before the
    batched Philox (engine/philox.py): what the batched draws save is the difference."""
    from tensorflow.python.ops.parallel_for import pfor
    from rawdqn.engine import pfor_rules
    saved = {op: pfor._pfor_converter_registry[op] for op in pfor_rules.RNG_OPS}
    try:
        if on:
            for op in saved:
                pfor._pfor_converter_registry[op] = pfor_rules._rng_per_seed
        yield
    finally:
        pfor._pfor_converter_registry.update(saved)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--algos", nargs="+", choices=("dqn", "a2c", "pqn"), default=["dqn", "pqn"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed-axis", nargs="+", choices=("batched", "unrolled", "per-seed-rng"), default=["batched"])
    args = parser.parse_args(argv)
    if 1 not in args.seeds:
        parser.error("--seeds must include 1: every K is compared with one seed")
    model, vector = cpu_info()
    print(f"rawdqn bench/seeds.py: {args.env} on the device, {model} ({vector}), load {os.getloadavg()[0]:.2f}")
    for algo in args.algos:
        config = ondevice.preset(args.env, algo).replace(eval_interval=0, keep_best=False, log_interval=10**9)
        forms = [(k, axis) for k in args.seeds for axis in (args.seed_axis if k > 1 else ["batched"])]
        rates = {form: [] for form in forms}
        compiles = {form: [] for form in forms}
        for _ in range(args.rounds):
            for k, axis in forms:
                with per_seed_rng(axis == "per-seed-rng"):
                    compile_seconds, rate = ondevice_rate(args.env, config, config.num_envs, args.seconds,
                                                          num_seeds=k, seed_axis="batched" if axis != "unrolled" else axis)
                rates[k, axis].append(rate)
                compiles[k, axis].append(compile_seconds)
        one = statistics.median(rates[1, "batched"])
        print(f"\n{algo.upper()} ({config.num_envs} envs per seed), medians of {args.rounds} rounds")
        print(f"{'K':>4} | {'seed axis':>9} | {'env steps/s (all)':>17} | {'per seed':>9} | {'vs K programs':>13} | "
              f"{'time vs one seed':>16} | compile s")
        for k, axis in forms:
            rate = statistics.median(rates[k, axis])
            print(f"{k:>4} | {axis if k > 1 else '-':>9} | {rate:17,.0f} | {rate / k:9,.0f} | {rate / one:12.2f}× | "
                  f"{k * one / rate:15.2f}× | {statistics.median(compiles[k, axis]):.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
