"""REINFORCE on CartPole-v1: TF-Agents' tutorial setting against the tutorial's own figures, and the tuned preset.

    python scripts/check_reinforce.py [--seeds 0 1 2 3 4] [--jobs 1] [--part tutorial|tuned|both]

tutorial: `rawdqn train --preset tf-agents-reinforce --seed S` per seed (fc 100, Adam 1e-3, 2 episodes
per iteration, 250 iterations, 10 greedy evaluation episodes every 50); the median over seeds of the
evaluation at iterations 50 … 250 beside the tutorial's printed figures (on CartPole-v0, whose episodes
end at 200 steps). Passes if the median is ≥ 143.7 at iteration 200 and ≥ 191.5 at 250, the
tutorial's own numbers there.

tuned: `rawdqn train --algo reinforce --seed S` (the CartPole-v1 preset) must reach a greedy
evaluation ≥ 475 for 4 of the 5 seeds (scripts/check_cartpole.py's test).
Exits 1 if a part fails.
"""
import argparse
import concurrent.futures
import statistics
import sys

from check_cartpole import main as check_seeds, run_seed

ITERATIONS = (50, 100, 150, 200, 250)
TUTORIAL_FIGURES = (9.8, 50.3, 98.3, 143.7, 191.5)   # its printed evaluations at those iterations
REQUIRED = {200: 143.7, 250: 191.5}


def tutorial(seeds, jobs):
    print(f"{'seed':>4} | " + " | ".join(f"it. {i:>3}" for i in ITERATIONS) + " |  wall s")
    columns = []
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for seed, final, evals, wall, error in pool.map(
                lambda s: run_seed(s, None, ["--preset", "tf-agents-reinforce"]), seeds):
            if final is None or len(evals) != len(ITERATIONS) - 1:
                print(f"{seed:>4} | FAILED {error}")
                return False
            columns.append(evals + [final])
            print(f"{seed:>4} | " + " | ".join(f"{value:8.1f}" for value in columns[-1]) + f" | {wall:7.1f}", flush=True)
    medians = [statistics.median(column[k] for column in columns) for k in range(len(ITERATIONS))]
    print("median | " + " | ".join(f"{value:8.1f}" for value in medians))
    print("TF-Agents | " + " | ".join(f"{value:8.1f}" for value in TUTORIAL_FIGURES) + "   (CartPole-v0, capped at 200)")
    passed = all(medians[ITERATIONS.index(i)] >= need for i, need in REQUIRED.items())
    print(f"tutorial setting: median {medians[3]:.1f} at iteration 200 (need ≥ 143.7), {medians[4]:.1f} at 250 "
          f"(need ≥ 191.5): {'passed' if passed else 'FAILED'}")
    return passed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--part", choices=("tutorial", "tuned", "both"), default="both")
    args = parser.parse_args()
    passed = True
    if args.part in ("tutorial", "both"):
        passed &= tutorial(args.seeds, args.jobs)
    if args.part in ("tuned", "both"):
        # --steps is the preset's; the seeds and jobs go through to check_cartpole.
        sys.argv = [sys.argv[0], "--algo", "reinforce", "--jobs", str(args.jobs), "--seeds", *map(str, args.seeds)]
        passed &= check_seeds("CartPole-v1", 50_000, 475.0) == 0
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
