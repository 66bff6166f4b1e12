"""Does the default CartPole-v1 preset reach a greedy evaluation >= 475 for >= 4 of 5 seeds?

    python scripts/check_cartpole.py [--seeds 0 1 2 3 4] [--steps 50000] [--jobs 1]

Each seed is a fresh `rawdqn train --env CartPole-v1 --seed S` process (the
user's command). Prints one row per seed and exits 1 if fewer than the
required number pass.
"""
import argparse
import concurrent.futures
import re
import subprocess
import sys
import time

EVAL_LINE = re.compile(r"evaluation: mean return ([-\d.]+) ± ([\d.]+).*\(([\d,]+) steps in ([\d.]+) s\)")


def run_seed(seed, steps, extra, env_id="CartPole-v1"):
    command = [sys.executable, "-m", "rawdqn", "train", "--env", env_id, "--seed", str(seed),
               *(["--steps", str(steps)] if steps else []), *extra]   # steps None: the preset's
    started = time.perf_counter()
    output = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    match = EVAL_LINE.search(output.stdout)
    if output.returncode != 0 or not match:
        return seed, None, None, wall, output.stdout[-500:] + output.stderr[-500:]
    evals = [float(m) for m in re.findall(r"eval return\s+([-\d.]+)", output.stdout)]
    return seed, float(match.group(1)), evals, wall, ""


def main(env_id="CartPole-v1", steps=50_000, threshold=475.0, seeds=(0, 1, 2, 3, 4), required=4, doc=__doc__):
    """Train each seed with `rawdqn train --env env_id` (flags the parser does not know go to it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--threshold", type=float, default=threshold)
    parser.add_argument("--required", type=int, default=required)
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained at once")
    args, extra = parser.parse_known_args()
    print(f"{'seed':>4} | {'final eval':>10} | {'wall s':>7} | evaluations during training")
    passed = 0
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for seed, final, evals, wall, error in pool.map(
                lambda s: run_seed(s, args.steps, extra, env_id), args.seeds):
            if final is None:
                print(f"{seed:>4} | {'FAILED':>10} | {wall:7.1f} | {error}")
                continue
            passed += final >= args.threshold
            print(f"{seed:>4} | {final:10.1f} | {wall:7.1f} | {evals}", flush=True)
    print(f"{passed}/{len(args.seeds)} seeds reached an evaluation (the preset's policy) >= {args.threshold} "
          f"within {args.steps:,} steps (required: {args.required})")
    return 0 if passed >= args.required else 1


if __name__ == "__main__":
    sys.exit(main())
