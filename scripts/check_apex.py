"""Ape-X with 2 actors on this machine: CartPole-v1 ≥ 475 and Acrobot-v1 ≥ −100, beside the single-process loop.

    python scripts/check_apex.py [CartPole-v1|Acrobot-v1] [--seeds 0 1 2 3 4] [--actors 2] [--no-single]

Each seed is a fresh `rawdqn train --distributed --actors N --env ENV --preset rainbow
--prioritized --seed S` process (the env's Rainbow preset, prioritized, as Ape-X's learner
needs), then — for the wall-clock comparison — the same preset in one process, without
--distributed. Seeds run one after the other (an Ape-X run already uses every core). Passes
when 4 of the 5 distributed runs reach the target; prints each run's final greedy evaluation
(fresh episodes) and wall-clock time.
"""
import argparse
import statistics
import sys

from check_cartpole import run_seed

TARGETS = {"CartPole-v1": (30_000, 475.0), "Acrobot-v1": (50_000, -100.0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env", nargs="?", default="CartPole-v1", choices=tuple(TARGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--no-single", action="store_true", help="skip the single-process runs")
    args = parser.parse_args()
    steps, threshold = TARGETS[args.env]
    flags = ["--preset", "rainbow", "--prioritized"]
    loops = {"Ape-X": ["--distributed", "--actors", str(args.actors), *flags]}
    if not args.no_single:
        loops["single process"] = flags
    passed = True
    for name, extra in loops.items():
        print(f"{name} on {args.env}, {steps:,} steps:")
        finals, walls = [], []
        for seed in args.seeds:
            _, final, evals, wall, error = run_seed(seed, steps, extra, args.env)
            finals.append(final)
            walls.append(wall)
            print(f"  seed {seed}: {'FAILED ' + error if final is None else f'{final:8.1f}'} ({wall:.1f} s)", flush=True)
        reached = sum(final is not None and final >= threshold for final in finals)
        print(f"{name}: {reached}/{len(finals)} ≥ {threshold:g}; median wall-clock {statistics.median(walls):.1f} s\n",
              flush=True)
        if name == "Ape-X":
            passed = reached >= 4
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
