"""A2C (or PQN) on CartPole-v1 (≥ 475) and Acrobot-v1 (≥ −100): gymnasium's loop and the on-device one, with their wall-clock times.

    python scripts/check_a2c.py [CartPole-v1|Acrobot-v1] [--seeds 0 1 2 3 4] [--loop gymnasium|on-device|both]
                                [--algo a2c|pqn] [--required R] [-- extra rawdqn train flags]

--algo pqn checks PQN the same way (its preset: CleanRL's pqn.py settings, 4 envs, 500,000 steps);
flags after `--` go to every `rawdqn train` (e.g. -- --num-envs 32).

gymnasium: one `rawdqn train --algo a2c --env ENV --seed S` process per seed, one after the
other (16 gymnasium envs in a vector env, the preset's 300,000 steps). on-device: one
`rawdqn train --on-device --algo a2c --env ENV --seed S0 --seeds 5` process, the 5 agents
trained side by side in one compiled program on rawdqn's TF version of the env. Each agent
ends with the greedy evaluation of its kept weights on fresh gymnasium episodes; a loop passes
when R of them reach the target (--required; default all but one: 4 of 5, 7 of 8). Prints
per-seed results and each loop's wall-clock time; on the device also the program's own clock,
its training (with the periodic evaluations that choose the kept weights) and its compile.
"""
import argparse
import re
import subprocess
import sys
import time

from check_cartpole import run_seed

TARGETS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0}
KEPT = re.compile(r"seed (\d+): kept weights .*?evaluation: mean return ([-\d.]+)")
CLOCK = re.compile(r"\(([\d,]+) steps in ([\d.]+) s; compile ([\d.]+) s\)")


def gymnasium_loop(env_id, seeds, algo="a2c", extra=()):
    finals, total = [], 0.0
    for seed in seeds:
        _, final, evals, wall, error = run_seed(seed, None, ["--algo", algo, *extra], env_id)
        total += wall
        finals.append(final)
        print(f"  gymnasium seed {seed}: {'FAILED ' + error if final is None else f'{final:8.1f}'} ({wall:.1f} s)",
              flush=True)
    return finals, total


def on_device_loop(env_id, seeds, algo="a2c", extra=()):
    command = [sys.executable, "-m", "rawdqn", "train", "--on-device", "--algo", algo, "--env", env_id,
               "--seed", str(seeds[0]), "--seeds", str(len(seeds)), *extra]
    started = time.perf_counter()
    output = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    results = {int(seed): float(value) for seed, value in KEPT.findall(output.stdout)}
    if output.returncode != 0 or len(results) != len(seeds):
        print("  on-device FAILED:", output.stdout[-500:], output.stderr[-500:])
        return [None] * len(seeds), wall
    finals = [results[seed] for seed in seeds]
    for seed, final in zip(seeds, finals):
        print(f"  on-device seed {seed}: {final:8.1f}")
    steps, train, compile_seconds = CLOCK.search(output.stdout).groups()
    print(f"  on-device program: {steps} steps per seed, trained in {train} s for the {len(seeds)} seeds "
          f"(compile {compile_seconds} s apart)")
    return finals, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env", nargs="?", default="CartPole-v1", choices=tuple(TARGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--loop", choices=("gymnasium", "on-device", "both"), default="both")
    parser.add_argument("--algo", choices=("a2c", "pqn"), default="a2c")
    parser.add_argument("--required", type=int, default=None, help="seeds that must reach the target "
                        "(default: all but one)")
    argv = sys.argv[1:]   # flags after `--` go to every rawdqn train, wherever the script's own flags are
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1:]
    required = len(args.seeds) - 1 if args.required is None else args.required
    if not 0 <= required <= len(args.seeds):
        parser.error(f"--required must be between 0 and the {len(args.seeds)} seeds; got {required}")
    if args.loop == "on-device" or args.loop == "both":
        if args.seeds != list(range(args.seeds[0], args.seeds[0] + len(args.seeds))):
            sys.exit("check_a2c: the on-device loop trains consecutive seeds; give --seeds S S+1 …")
    threshold, passed = TARGETS[args.env], True
    loops = ("gymnasium", "on-device") if args.loop == "both" else (args.loop,)
    for loop in loops:
        print(f"{args.algo.upper()} on {args.env}, {loop} loop:")
        finals, wall = (gymnasium_loop if loop == "gymnasium" else on_device_loop)(args.env, args.seeds, args.algo,
                                                                                   extra)
        reached = sum(final is not None and final >= threshold for final in finals)
        print(f"{loop}: {reached}/{len(finals)} seeds ≥ {threshold:g}; wall-clock {wall:.1f} s for the "
              f"{len(finals)} seeds ({wall / len(finals):.1f} s per seed)\n", flush=True)
        passed &= reached >= required
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
