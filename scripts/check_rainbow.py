"""Rainbow's parts on the classic-control tasks: the issue's targets, and each part removed in turn.

    python scripts/check_rainbow.py CartPole-v1|Acrobot-v1|MountainCar-v0 [--seeds 0 1 2 3 4] [--jobs 2]
                                    [--ablation] [any rawdqn train flag]

Each seed is a fresh `rawdqn train --env ENV --preset rainbow --seed S --steps N` process (the
env's Rainbow preset, rawdqn/config.py), ending with its greedy evaluation on fresh episodes;
passes when at least 4 of 5 seeds reach the target within the steps:

    CartPole-v1      ≥ 475   within  30,000 steps
    Acrobot-v1       ≥ −100  within  50,000 steps
    MountainCar-v0   ≥ −110  within 100,000 steps

--ablation then trains the same seeds once per part the preset uses, with that part turned
off (--no-dueling, --n-step 1, …), then with all of them off (the env's plain DQN preset at the
same steps), and prints a table: seeds passing and median evaluation.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_cartpole import main, run_seed  # noqa: E402

TARGETS = {"CartPole-v1": (30_000, 475.0), "Acrobot-v1": (50_000, -100.0), "MountainCar-v0": (100_000, -110.0)}
# A part of Rainbow, and the flags that turn it off.
PARTS = {"double_q": ["--no-double-q"], "dueling": ["--no-dueling"], "n_step": ["--n-step", "1"],
         "prioritized": ["--no-prioritized"], "distributional": ["--no-distributional"], "noisy": ["--no-noisy"]}


def ablation(env_id, seeds, steps, threshold, extra, jobs):
    import concurrent.futures
    from rawdqn.config import preset
    config = preset(env_id, name="rainbow")
    used = [part for part in PARTS if (getattr(config, part) > 1 if part == "n_step" else getattr(config, part))]
    print(f"\nablation on {env_id}, {steps:,} steps, seeds {seeds}: each part of the preset removed in turn")
    print(f"{'removed':<16} | {'seeds ≥ target':>14} | {'median eval':>11} | evaluations")
    print(f"{'(none)':<16} | the check above")
    for part in [*used, "all"]:   # "all": every part off, the env's plain DQN preset at these steps
        off = [flag for name in used for flag in PARTS[name]] if part == "all" else PARTS[part] if part else []
        flags = [*extra, "--preset", "rainbow", *off]
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(lambda seed: run_seed(seed, steps, flags, env_id), seeds))
        finals = [final for _, final, _, _, _ in results if final is not None]
        passing = sum(final >= threshold for final in finals)
        median = statistics.median(finals) if finals else float("nan")
        print(f"{part or '(none)':<16} | {passing:>9}/{len(seeds):<4} | {median:11.1f} | {finals}", flush=True)


if __name__ == "__main__":
    env_id = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "CartPole-v1"
    if env_id not in TARGETS:
        sys.exit(f"check_rainbow: no target for {env_id}; choose one of {', '.join(TARGETS)}")
    steps, threshold = TARGETS[env_id]
    run_ablation = "--ablation" in sys.argv
    if run_ablation:
        sys.argv.remove("--ablation")
    sys.argv += ["--preset", "rainbow"]
    code = main(env_id, steps=steps, threshold=threshold, seeds=(0, 1, 2, 3, 4), required=4, doc=__doc__)
    if run_ablation:
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
        parser.add_argument("--steps", type=int, default=steps)
        parser.add_argument("--jobs", type=int, default=1)
        args, extra = parser.parse_known_args(sys.argv[1:])
        extra = [flag for flag in extra if flag not in ("--preset", "rainbow")]
        ablation(env_id, args.seeds, args.steps, threshold, extra, args.jobs)
    sys.exit(code)
