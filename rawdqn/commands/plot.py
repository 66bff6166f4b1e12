"""`rawdqn plot RUN [RUN ...] --out curve.png`: training and evaluation return curves.

Left: the return of each training episode against the step it ended at, as a moving
average. Right: the greedy evaluation return. With several runs: each run as a thin
line, their mean as a thick one, and mean ± std across runs as a band. Needs
matplotlib: `pip install 'rawdqn[plot]'`.
"""
import json
import os


def add_command(commands):
    parser = commands.add_parser("plot", help="plot training and evaluation returns of one or more runs",
                                 description="Plot the training-episode and evaluation returns of runs; "
                                             "several runs are drawn with their mean and a ± std band.")
    parser.add_argument("paths", nargs="+", metavar="RUN", help="run directories (--logdir of rawdqn train)")
    parser.add_argument("--out", required=True, help="image file to write (.png, .svg, .pdf)")
    parser.add_argument("--smooth", type=int, default=20,
                        help="moving average over this many training episodes (default: 20)")
    parser.set_defaults(run=run)


def run(args):
    from rawdqn.errors import UsageError
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("rawdqn plot needs matplotlib: pip install 'rawdqn[plot]'") from None
    if args.smooth < 1:
        raise UsageError(f"--smooth must be >= 1; got {args.smooth}")
    runs = [read_run(path) for path in args.paths]
    figure, (train_axes, eval_axes) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    curves = []
    for run_data in runs:
        steps, returns = run_data["episode_steps"], run_data["episode_returns"]
        if len(returns):
            smoothed = moving_average(returns, args.smooth)
            curves.append((steps, smoothed))
            if len(runs) == 1:
                train_axes.scatter(steps, returns, s=4, alpha=0.25, color="tab:blue", label="episode return")
    draw(train_axes, curves, len(runs), "tab:blue", f"moving average ({args.smooth} episodes)")
    draw(eval_axes, [(r["eval_steps"], r["eval_means"]) for r in runs if len(r["eval_steps"])],
         len(runs), "tab:orange", "greedy evaluation", marker="o")
    if len(runs) == 1 and len(runs[0]["eval_steps"]):
        r = runs[0]
        eval_axes.fill_between(r["eval_steps"], r["eval_means"] - r["eval_stds"], r["eval_means"] + r["eval_stds"],
                               color="tab:orange", alpha=0.2, label="± std over episodes")
    envs = sorted({r["env_id"] for r in runs})
    train_axes.set_title(f"training return — {', '.join(envs)}")
    eval_axes.set_title("evaluation return (greedy policy)")
    for axes in (train_axes, eval_axes):
        axes.set_xlabel("environment step")
        axes.set_ylabel("return")
        axes.grid(alpha=0.3)
        if axes.has_data():
            axes.legend(loc="best", fontsize="small")
        else:
            axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
    try:
        figure.savefig(args.out, dpi=120)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot write {args.out}: {error}") from None
    plt.close(figure)
    episodes = sum(len(r["episode_returns"]) for r in runs)
    print(f"wrote {args.out}: {len(runs)} run(s), {episodes:,} training episodes, "
          f"{sum(len(r['eval_steps']) for r in runs)} evaluations", flush=True)
    return 0


def draw(axes, curves, num_runs, color, label, marker=None):
    """One curve as is; several: thin lines, their mean, and mean ± std on a shared step grid."""
    import numpy as np
    if not curves:
        return
    if num_runs == 1 or len(curves) == 1:
        steps, values = curves[0]
        axes.plot(steps, values, color=color, linewidth=2, marker=marker, markersize=4, label=label)
        return
    for steps, values in curves:
        axes.plot(steps, values, color=color, linewidth=0.7, alpha=0.35, marker=marker, markersize=2)
    start = max(steps[0] for steps, _ in curves)
    end = min(steps[-1] for steps, _ in curves)
    if end <= start:
        return
    grid = np.linspace(start, end, 200)
    stacked = np.stack([np.interp(grid, steps, values) for steps, values in curves])
    mean, std = stacked.mean(axis=0), stacked.std(axis=0)
    axes.fill_between(grid, mean - std, mean + std, color=color, alpha=0.25, label=f"mean ± std of {len(curves)} runs")
    axes.plot(grid, mean, color=color, linewidth=2, label=f"{label}, mean of {len(curves)} runs")


def moving_average(values, window):
    """mean of the last `window` values at each point (fewer at the start)."""
    import numpy as np
    cumulative = np.cumsum(np.insert(np.asarray(values, float), 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def read_run(path):
    """Episode and evaluation returns from a run directory's episodes.jsonl and history.jsonl."""
    import numpy as np

    from rawdqn.errors import UsageError
    episodes_file, history_file = os.path.join(path, "episodes.jsonl"), os.path.join(path, "history.jsonl")
    if not os.path.isdir(path):
        raise UsageError(f"run directory {path} does not exist")
    if not os.path.exists(episodes_file) and not os.path.exists(history_file):
        raise UsageError(f"{path} has no episodes.jsonl or history.jsonl; pass the --logdir of a rawdqn train run")
    try:
        episodes = read_jsonl(episodes_file)
        evaluations = [row for row in read_jsonl(history_file) if "eval_mean" in row]
        env_id = "?"
        if os.path.exists(os.path.join(path, "config.json")):
            with open(os.path.join(path, "config.json")) as f:
                env_id = json.load(f).get("env_id", "?")
        return {"env_id": env_id,
                "episode_steps": np.array([row["step"] for row in episodes], float),
                "episode_returns": np.array([row["return"] for row in episodes], float),
                "eval_steps": np.array([row["step"] for row in evaluations], float),
                "eval_means": np.array([row["eval_mean"] for row in evaluations], float),
                "eval_stds": np.array([row["eval_std"] for row in evaluations], float)}
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{path} has an unreadable log file ({type(error).__name__}: {error})") from None


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
