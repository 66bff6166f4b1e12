"""`rawdqn plot RUN [RUN ...] --out curve.png`: training and evaluation return curves.

Left: the return of each training episode against the step it ended at, as a moving
average. Right: the greedy evaluation return. Every run is labelled (its folder name, or
`--label`). Runs of the same configuration (config.json equal but for the seed) form a
group, drawn as its aggregate with a 95% bootstrap confidence band:

    at each step t, over the runs whose logged range covers t (linearly interpolated
    between the steps each run logged, never extrapolated past its first or last):
        mean:  x̄(t), band = 2.5th and 97.5th percentiles of x̄ over resampled runs
        iqm:   the interquartile mean, band as rliable computes it (needs rliable)

Needs matplotlib: `pip install 'rawdqn[plot]'`; `--aggregate iqm` also `'rawdqn[stats]'`.
"""
import json
import os
import warnings

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2_000
GRID_POINTS = 400
# Fields of config.json that do not make two runs different experiments.
NOT_THE_EXPERIMENT = ("seed", "checkpoint_interval", "changes", "log_interval", "mode", "total_steps",
                      "eval_interval", "eval_episodes")
LABELLED_RUNS = 8   # up to this many runs, each run also gets its own legend entry


def add_command(commands):
    parser = commands.add_parser("plot", help="plot training and evaluation returns of one or more runs",
                                 description="Plot the training-episode and evaluation returns of runs; runs "
                                             "of the same configuration are drawn as their mean (or IQM) "
                                             "with a 95% bootstrap confidence band.")
    parser.add_argument("paths", nargs="+", metavar="RUN",
                        help="run directories (--logdir of rawdqn train); a run of several seeds stands for its seeds")
    parser.add_argument("--out", required=True, help="image file to write (.png, .svg, .pdf, ...)")
    parser.add_argument("--label", action="append", default=None, metavar="NAME",
                        help="a run's name in the legend, once per RUN in order (default: its folder name)")
    parser.add_argument("--aggregate", choices=("mean", "iqm"), default="mean",
                        help="how a group of runs is summarised (default: mean; iqm needs rliable)")
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
    if args.label is not None and len(args.label) != len(args.paths):
        raise UsageError(f"--label was given {len(args.label)} time(s) for {len(args.paths)} run(s); "
                         "give one per run, in order")
    if args.aggregate == "iqm":
        iqm_intervals()  # the one-line error now if rliable is missing, not after reading the runs
    from rawdqn.outputs import check_output_file, figure_extensions
    check_output_file(args.out, "--out", figure_extensions())
    runs = [read_run(path, label) for path, label in run_paths(args.paths, args.label)]
    groups = group_runs(runs)
    figure = draw_figure(runs, args.smooth, args.aggregate, plt, groups)
    try:
        figure.savefig(args.out, dpi=120)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot write {args.out}: {error}") from None
    plt.close(figure)
    episodes = sum(len(r["episode_returns"]) for r in runs)
    print(f"wrote {args.out}: {len(runs)} run(s) in {len(groups)} group(s), {episodes:,} training episodes, "
          f"{sum(len(r['eval_steps']) for r in runs)} evaluations", flush=True)
    return 0


def draw_figure(runs, smooth, method, plt, groups=None):
    """The two panels; every run and group in the legend."""
    figure, (train_axes, eval_axes) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    groups = groups or group_runs(runs)
    names = group_names(groups)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    label_runs = len(runs) <= LABELLED_RUNS
    for index, (group, name) in enumerate(zip(groups, names)):
        color = colors[index % len(colors)]
        train_curves = [(r["episode_steps"], moving_average(r["episode_returns"], smooth), r["label"])
                        for r in group if len(r["episode_returns"])]
        eval_curves = [(r["eval_steps"], r["eval_means"], r["label"]) for r in group if len(r["eval_steps"])]
        if len(runs) == 1 and train_curves:
            r = group[0]
            train_axes.scatter(r["episode_steps"], r["episode_returns"], s=4, alpha=0.25, color=color,
                               label="episode return")
        draw_group(train_axes, train_curves, color, name, method, label_runs)
        draw_group(eval_axes, eval_curves, color, name, method, label_runs, marker="o")
        if len(runs) == 1 and eval_curves:
            r = group[0]
            eval_axes.fill_between(r["eval_steps"], r["eval_means"] - r["eval_stds"],
                                   r["eval_means"] + r["eval_stds"], color=color, alpha=0.2,
                                   label="± std over episodes")
    envs = sorted({r["env_id"] for r in runs})
    train_axes.set_title(f"training return ({smooth}-episode moving average) — {', '.join(envs)}")
    eval_axes.set_title("evaluation return (greedy policy)")
    for axes in (train_axes, eval_axes):
        axes.set_xlabel("environment step")
        axes.set_ylabel("return")
        axes.grid(alpha=0.3)
        if axes.has_data():
            axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small",
                        frameon=False)
        else:
            axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
    return figure


def draw_group(axes, curves, color, name, method, label_runs, marker=None):
    """One run: its curve, labelled. Several: thin labelled lines, and their aggregate with its band."""
    if not curves:
        return
    if len(curves) == 1:
        steps, values, label = curves[0]
        axes.plot(steps, values, color=color, linewidth=2, marker=marker, markersize=4,
                  label=label if name is None else f"{label} ({name})")
        return
    for steps, values, label in curves:
        axes.plot(steps, values, color=color, linewidth=0.7, alpha=0.4, marker=marker, markersize=2,
                  label=label if label_runs else None)
    grid = step_grid([steps for steps, _, _ in curves])
    point, low, high, count = aggregate([(steps, values) for steps, values, _ in curves], grid, method)
    several = count >= 2
    what = "IQM" if method == "iqm" else "mean"
    band = f"{int(CONFIDENCE * 100)}% bootstrap CI"
    axes.fill_between(grid, low, high, where=several, color=color, alpha=0.25, linewidth=0,
                      label=None if band in axes.get_legend_handles_labels()[1] else band)
    axes.plot(grid, point, color=color, linewidth=2,
              label=f"{name + ': ' if name else ''}{what} of {len(curves)} runs")


def step_grid(step_lists):
    """Every step any run logged, from the first to the last (thinned to GRID_POINTS if longer)."""
    import numpy as np
    steps = np.unique(np.concatenate([np.asarray(s, float) for s in step_lists]))
    if len(steps) > GRID_POINTS:
        steps = np.linspace(steps[0], steps[-1], GRID_POINTS)
    return steps


def aggregate(curves, grid, method="mean", seed=0):
    """(point, low, high, count) at each grid step over the runs that cover it.

    Each run is linearly interpolated between the steps it logged and left out where the
    step lies outside [its first step, its last step]. `count` is how many runs cover each
    step; where it is 1 the band is that run's value.
    """
    import numpy as np
    grid = np.asarray(grid, float)
    values = np.full((len(curves), len(grid)), np.nan)
    for row, (steps, curve) in enumerate(curves):
        steps, curve = np.asarray(steps, float), np.asarray(curve, float)
        inside = (grid >= steps[0]) & (grid <= steps[-1])
        values[row, inside] = np.interp(grid[inside], steps, curve)
    covered = ~np.isnan(values)
    point, low, high = (np.full(len(grid), np.nan) for _ in range(3))
    # Which runs cover a step changes only where a run starts or ends: one bootstrap per stretch.
    patterns = {}
    for column in range(len(grid)):
        patterns.setdefault(covered[:, column].tobytes(), []).append(column)
    for columns in patterns.values():
        rows = covered[:, columns[0]]
        if not rows.any():
            continue
        block = values[np.ix_(rows, columns)]   # [runs covering, steps]
        if method == "iqm":
            point[columns], low[columns], high[columns] = iqm_intervals()(block)
        else:
            point[columns], low[columns], high[columns] = mean_intervals(block, seed)
    return point, low, high, covered.sum(axis=0)


def mean_intervals(block, seed=0):
    """Mean over runs (axis 0) and its percentile-bootstrap interval: resample runs with replacement."""
    import numpy as np
    mean = block.mean(axis=0)
    if len(block) < 2:
        return mean, mean.copy(), mean.copy()
    picks = np.random.default_rng(seed).integers(0, len(block), size=(BOOTSTRAP_REPS, len(block)))
    resampled = block[picks].mean(axis=1)   # [reps, steps]
    tail = (1 - CONFIDENCE) / 2 * 100
    return mean, np.percentile(resampled, tail, axis=0), np.percentile(resampled, 100 - tail, axis=0)


def iqm_intervals():
    """block [runs, steps] → (IQM, low, high) from rliable's stratified bootstrap."""
    from rawdqn.errors import UsageError
    try:
        import numpy as np
        from rliable import library, metrics
    except Exception as error:  # rliable's own dependencies can fail to import (e.g. arch on pandas 3)
        raise UsageError(f"--aggregate iqm needs rliable: pip install 'rawdqn[stats]' "
                         f"({type(error).__name__}: {' '.join(str(error).split())[:100]})") from None

    def intervals(block):
        if len(block) < 2:
            return block[0], block[0].copy(), block[0].copy()
        per_step = lambda scores: np.array([metrics.aggregate_iqm(scores[..., t])  # noqa: E731
                                            for t in range(scores.shape[-1])])
        with warnings.catch_warnings():  # arch's notice about rliable's RandomState argument
            warnings.simplefilter("ignore", FutureWarning)
            point, interval = library.get_interval_estimates(
                {"runs": block[:, None, :]}, per_step, reps=BOOTSTRAP_REPS,
                confidence_interval_size=CONFIDENCE, random_state=np.random.RandomState(0))
        return point["runs"], interval["runs"][0], interval["runs"][1]
    return intervals


def group_runs(runs):
    """Runs with the same experiment (config.json but for NOT_THE_EXPERIMENT), in first-seen order."""
    groups = {}
    for r in runs:
        groups.setdefault(r["experiment"], []).append(r)
    return list(groups.values())


def group_names(groups):
    """None for a single group; else what sets each group apart, e.g. 'learning_rate=0.001'."""
    if len(groups) < 2:
        return [None] * len(groups)
    configs = [json.loads(group[0]["experiment"]) for group in groups]
    differing = [key for key in configs[0] if len({json.dumps(c.get(key)) for c in configs}) > 1]
    differing += [key for c in configs for key in c if key not in configs[0] and key not in differing]
    if not differing or any(set(c) == {"path"} for c in configs):
        return [group[0]["label"] for group in groups]
    return [", ".join(f"{key}={json.dumps(c.get(key))}" for key in differing[:3]) for c in configs]


def moving_average(values, window):
    """mean of the last `window` values at each point (fewer at the start)."""
    import numpy as np
    cumulative = np.cumsum(np.insert(np.asarray(values, float), 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def run_paths(paths, labels=None):
    """(run directory, label) per run: a group of seeds (rundir.seed_run_dirs) stands for its seeds'
    runs, each labelled "NAME seedS" (NAME: the group's --label, or its folder name)."""
    from rawdqn.rundir import seed_run_dirs
    expanded = []
    for path, label in zip(paths, labels or [None] * len(paths)):
        seeds = [] if is_run(path) else seed_run_dirs(path)
        name = label or os.path.basename(os.path.normpath(path))
        expanded += [(seed, f"{name} {os.path.basename(seed)}") for seed in seeds] or [(path, label)]
    return expanded


def is_run(path):
    return any(os.path.exists(os.path.join(path, name)) for name in ("episodes.jsonl", "history.jsonl"))


def read_run(path, label=None):
    """Episode and evaluation returns from a run directory's episodes.jsonl and history.jsonl."""
    import numpy as np

    from rawdqn.errors import UsageError
    episodes_file, history_file = os.path.join(path, "episodes.jsonl"), os.path.join(path, "history.jsonl")
    if not os.path.isdir(path):
        raise UsageError(f"run directory {path} does not exist")
    if not is_run(path):
        raise UsageError(f"{path} has no episodes.jsonl or history.jsonl; pass the --logdir of a rawdqn train run")
    try:
        episodes = read_jsonl(episodes_file)
        evaluations = [row for row in read_jsonl(history_file) if "eval_mean" in row]
        config = {}
        if os.path.exists(os.path.join(path, "config.json")):
            with open(os.path.join(path, "config.json")) as f:
                config = json.load(f)
        experiment = {key: value for key, value in config.items() if key not in NOT_THE_EXPERIMENT}
        return {"label": label or os.path.basename(os.path.normpath(path)),
                "env_id": config.get("env_id", "?"),
                # A run without a config.json is an experiment of its own.
                "experiment": json.dumps(experiment, sort_keys=True) if experiment else json.dumps({"path": path}),
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
