"""Does `rawdqn train --env CartPole-v1 --on-device` reach >= 475 for >= 4 of 5 seeds in <= 20 s?

    python scripts/check_ondevice_cartpole.py [--seeds 0 1 2 3 4] [--limit 20] [extra train flags]

Each seed is a fresh `rawdqn train --env CartPole-v1 --on-device --seed S` process (the
user's command, run one at a time so they do not share the CPU). A seed passes when its
reported greedy evaluation (10 episodes of the real gymnasium env) is >= 475 and its
training wall time (compile time excluded, reported beside it) is <= the limit. Prints
one row per seed and the load average, and exits 1 if fewer than --required pass.
"""
import argparse
import os
import re
import subprocess
import sys
import time

EVAL_LINE = re.compile(r"evaluation: mean return ([-\d.]+) ± ([\d.]+) over \d+ greedy episodes "
                       r"\(([\d,]+) steps in ([\d.]+) s; compile ([\d.]+) s\)")
FINAL_LINE = re.compile(r"final weights: mean return ([-\d.]+)")
KEPT_LINE = re.compile(r"kept weights \(step ([\d,]+)")


def run_seed(seed, extra):
    command = [sys.executable, "-m", "rawdqn", "train", "--env", "CartPole-v1", "--on-device",
               "--seed", str(seed), *extra]
    started = time.perf_counter()
    output = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    match = EVAL_LINE.search(output.stdout)
    if output.returncode != 0 or not match:
        return {"seed": seed, "error": (output.stdout[-400:] + output.stderr[-400:]).strip(), "wall": wall}
    final, kept = FINAL_LINE.search(output.stdout), KEPT_LINE.search(output.stdout)
    return {"seed": seed, "eval": float(match.group(1)), "std": float(match.group(2)),
            "steps": int(match.group(3).replace(",", "")), "train": float(match.group(4)),
            "compile": float(match.group(5)), "wall": wall,
            "final": float(final.group(1)) if final else None,
            "kept_step": int(kept.group(1).replace(",", "")) if kept else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--limit", type=float, default=20.0, help="seconds of training wall time")
    parser.add_argument("--required", type=int, default=4)
    args, extra = parser.parse_known_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'seed':>4} | {'eval':>7} | {'± std':>6} | {'train s':>7} | {'compile s':>9} | {'process s':>9} | "
          f"{'steps':>8} | {'final weights':>13} | kept from step")
    passed = 0
    for seed in args.seeds:
        row = run_seed(seed, extra)
        if "error" in row:
            print(f"{seed:>4} | FAILED after {row['wall']:.1f} s: {row['error']}", flush=True)
            continue
        ok = row["eval"] >= args.threshold and row["train"] <= args.limit
        passed += ok
        final = "-" if row["final"] is None else f"{row['final']:.1f}"
        kept = "-" if row["kept_step"] is None else f"{row['kept_step']:,}"
        print(f"{seed:>4} | {row['eval']:7.1f} | {row['std']:6.1f} | {row['train']:7.1f} | "
              f"{row['compile']:9.1f} | {row['wall']:9.1f} | {row['steps']:>8,} | {final:>13} | {kept}"
              f"{'' if ok else '   <- fails'}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{passed}/{len(args.seeds)} seeds reached a greedy evaluation >= {args.threshold} within "
          f"{args.limit:.0f} s of training (required: {args.required})")
    return 0 if passed >= args.required else 1


if __name__ == "__main__":
    sys.exit(main())
