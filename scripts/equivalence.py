"""Linear one-hot DQN ≡ tabular Q-learning over 10,000 transitions per environment.

    python scripts/equivalence.py [--steps 10000] [--seed 0] [--mode xla|function|eager]

For FrozenLake-v1 (slippery), CliffWalking-v1 and Taxi-v4, one `DQN.learn` and one
`tabular.q_learning_update` per transition (see rawdqn.verify.equivalence_run); prints the
largest |W − Q| seen at any step, and exits 1 if it ever exceeds 1e-10.
"""
import argparse
import sys
import time

import rawdqn  # noqa: F401  (quiet TensorFlow import)
from rawdqn.verify import equivalence_run

ENVS = ("FrozenLake-v1", "CliffWalking-v1", "Taxi-v4")
TOLERANCE = 1e-10


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", default="xla", choices=("xla", "function", "eager"))
    args = parser.parse_args(argv)
    print(f"α = 0.1, γ = 0.99, float64, {args.steps:,} transitions per environment, "
          f"{args.mode} kernels, tolerance {TOLERANCE:g}")
    print(f"{'environment':<16} {'max |W − Q| (any step)':>22} {'final':>10} {'rewards≠0':>10} "
          f"{'terminated':>10} {'truncated':>9} {'seconds':>8}")
    failed = False
    for env_id in ENVS:
        started = time.perf_counter()
        worst = final = 0.0
        rewarded = terminated_count = truncated_count = 0
        for _, deviation, reward, terminated, truncated in equivalence_run(
                env_id, args.steps, seed=args.seed, mode=args.mode):
            worst, final = max(worst, deviation), deviation
            rewarded += reward != 0
            terminated_count += terminated
            truncated_count += truncated
        failed |= worst > TOLERANCE
        print(f"{env_id:<16} {worst:>22.3g} {final:>10.3g} {rewarded:>10,} "
              f"{terminated_count:>10,} {truncated_count:>9,} {time.perf_counter() - started:>8.1f}",
              flush=True)
    print("FAIL: the tables diverged" if failed else "OK: the tables agree at every step")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
