"""MinAtar DQN learning curves against the MinAtar paper's (Young & Tian 2019), game by game.

    python scripts/check_minatar.py [--games Breakout SpaceInvaders] [--seeds 0 1 2] [--steps 1000000]
                                    [--runs-dir runs/minatar] [--jobs 2] [--plot minatar.png] [--report-only]
                                    [--results results/minatar] [--version v0|v1] [--on-device]
                                    [--agent dqn|qr-dqn|iqn|munchausen|pqn]

Each (game, seed) is `rawdqn train --env MinAtar/GAME-v0 --seed S --steps N` with the game's
preset (the paper's DQN; -v0: the paper's 6 actions, --version v1 the minimal action sets)
into RUNS_DIR/GAME-v0-seedS; a run that is already there and unfinished is continued with
`rawdqn train --resume`, a finished one is read as it is. With --jobs > 1 each run gets one
CPU thread (TF_NUM_INTRAOP_THREADS=1): on MinAtar's small network that is faster per update
than two threads (bench/README.md). With --on-device the seeds (consecutive) train together
in one `rawdqn train --on-device --env MinAtar/GAME-v1 --seeds K` program, on the TF env
(Breakout), into RUNS_DIR/GAME-v1-ondevice, each seed's run in its seedS/.

--agent trains another DQN variant with the same preset (AGENTS: the flags it adds), into
runs named GAME-VERSION-AGENT-seedS, and reports each frame count beside the DQN runs of the
same game and version (recorded in RESULTS).

The measure is the paper's: the moving average of the training episodes' returns over 100
episodes (ε-greedy, as trained), against frames (env steps). PAPER holds the DQN curve read
off the repository's img/learning_curves.gif (the mean of 30 runs; read to about ±0.5 on
Breakout, ±2 on Space Invaders). A game passes when the mean over seeds at the last checked
frame count lies within ±TOLERANCE of the paper's value. Plots need matplotlib.

Run directories are large (checkpoints hold the replay) and stay on the machine that trained
them; a finished run's episodes, (end frame, return) per episode, and its final greedy
evaluation are also written to RESULTS/NAME.csv.gz (NAME: GAME-v0-seedS, GAME-v1-ondevice-seedS; a few hundred kB), which the
repository keeps. The report and the plot read a run from RUNS_DIR when it is there and from
RESULTS otherwise, so seeds trained on different machines are compared together.
"""
import argparse
import concurrent.futures
import dataclasses
import gzip
import io
import json
import os
import subprocess
import sys

# Frames (millions) → the paper's DQN moving average, read off its figure.
PAPER = {
    "Breakout": {0.1: 4.5, 0.25: 7.5, 0.5: 8.8, 1.0: 9.5, 2.0: 10.0, 5.0: 10.0},
    "SpaceInvaders": {0.1: 10.0, 0.25: 22.0, 0.5: 27.0, 1.0: 33.0, 2.0: 40.0, 5.0: 43.0},
    "Asterix": {0.5: 1.0, 1.0: 5.0, 2.0: 14.0, 5.0: 17.0},
    "Freeway": {0.25: 5.5, 0.5: 40.0, 1.0: 49.0, 2.0: 50.5, 5.0: 50.0},
    "Seaquest": {0.5: 0.8, 1.0: 1.0, 2.0: 3.5, 3.0: 11.0, 5.0: 20.0},
}
WINDOW, TOLERANCE = 100, 0.25
# --agent → the `rawdqn train` flags it adds to the game's DQN preset (rawdqn/presets.py).
AGENTS = {"dqn": (), "qr-dqn": ("--algo", "qr-dqn"), "iqn": ("--algo", "iqn"), "munchausen": ("--munchausen",),
          "pqn": ("--algo", "pqn")}


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the runs of one check live: the env version, and the loop that trains them."""
    runs_dir: str
    version: str = "v0"
    on_device: bool = False
    seeds: tuple = (0,)      # an on-device run trains them all in one program
    agent: str = "dqn"

    def env_id(self, game):
        return f"MinAtar/{game}-{self.version}"

    def name(self, game, seed):
        """The run's name: its results file's, and its directory's on the gymnasium loop."""
        agent = "" if self.agent == "dqn" else f"-{self.agent}"
        return f"{game}-{self.version}{'-ondevice' if self.on_device else ''}{agent}-seed{seed}"

    def baseline(self):
        """The DQN runs this agent's are reported beside (None for DQN itself)."""
        return None if self.agent == "dqn" else dataclasses.replace(self, agent="dqn")

    def program_dir(self, game):
        """The on-device run's --logdir (all seeds)."""
        agent = "" if self.agent == "dqn" else f"-{self.agent}"
        return os.path.join(self.runs_dir, f"{game}-{self.version}-ondevice{agent}")

    def trained_seeds(self, game):
        """The seeds the on-device program in program_dir has trained (its latest checkpoint's
        state), or None where it has none yet."""
        root = os.path.join(self.program_dir(game), "ondevice")
        try:
            with open(os.path.join(root, "latest")) as latest:
                with open(os.path.join(root, latest.read().strip(), "state.json")) as file:
                    state = json.load(file)
        except (OSError, ValueError):
            return None
        return tuple(range(state["seed"], state["seed"] + state["num_seeds"]))

    def run_dir(self, game, seed):
        if not self.on_device:
            return os.path.join(self.runs_dir, self.name(game, seed))
        return os.path.join(self.program_dir(game), f"seed{seed}") if len(self.seeds) > 1 else self.program_dir(game)


def run_dir(runs_dir, game, seed):
    return Layout(runs_dir).run_dir(game, seed)


def episodes(directory, results=None, name=None):
    """(end step, return) of every training episode the run recorded: from its run directory,
    or where that is absent, from its file NAME (default: the directory's name) in `results`
    (save_results)."""
    path = os.path.join(directory, "episodes.jsonl")
    if os.path.exists(path):
        with open(path) as lines:
            return [(row["step"], row["return"]) for row in map(json.loads, lines)]
    saved = results and results_path(results, name or os.path.basename(directory))
    if not saved or not os.path.exists(saved):
        return []
    return read_results(saved)[1]


def results_path(results, name):
    return os.path.join(results, f"{name}.csv.gz")


def read_results(path):
    """(header, [(end step, return), …]) of a results file; a file that is not one is an error naming it."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            header = next(lines).strip()
            rows = [(int(step), float(ret)) for step, ret in
                    (line.strip().split(",") for line in lines if line[0].isdigit())]
    except (OSError, EOFError, StopIteration, ValueError, UnicodeDecodeError) as error:
        raise SystemExit(f"check_minatar: {path} is not a results file this script wrote ({error or 'empty'}); "
                         "delete it, or restore it with git checkout") from None
    if not header.startswith("# "):
        raise SystemExit(f"check_minatar: {path} has no header line; delete it, or restore it with git checkout")
    return header, rows


def saved_frames(path):
    """The frames a results file's run reached (its header's 'N frames'), or 0 without one."""
    if not os.path.exists(path):
        return 0
    header = read_results(path)[0]
    return int(header.split(" frames")[0].rsplit(" ", 1)[-1])


def git_commit():
    """This repository's short commit, or 'unknown' (no git, not a checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_results(directory, results, name=None):
    """RESULTS/NAME.csv.gz (NAME: the directory's name unless given): a comment line with the run's env, seed, frames, final greedy
    evaluation and rawdqn commit, then `step,return` per training episode. The commit is the
    one the run started at (train writes RUN.commit), else the one in the file already there,
    else the current one (marked 'when saved'); an unchanged run rewrites the same bytes."""
    with open(os.path.join(directory, "config.json")) as file:
        config = json.load(file)
    with open(os.path.join(directory, "history.jsonl")) as lines:
        evaluated = [row for row in map(json.loads, lines) if "eval_mean" in row]
    if not evaluated:
        raise SystemExit(f"check_minatar: {directory}/history.jsonl has no evaluation yet; finish the run first")
    final = evaluated[-1]
    path = results_path(results, name or os.path.basename(directory))
    try:
        with open(directory + ".commit") as file:
            commit = file.read().strip()
    except OSError:
        commit = (read_results(path)[0].rsplit(", rawdqn ", 1)[-1] if os.path.exists(path)
                  else f"{git_commit()} (when saved)")
    os.makedirs(results, exist_ok=True)
    with open(path + ".tmp", "wb") as file, \
            gzip.GzipFile(os.path.basename(path), "wb", fileobj=file, mtime=0) as raw, \
            io.TextIOWrapper(raw, encoding="utf-8") as out:   # mtime 0: the same run, the same bytes
        out.write(f"# {config['env_id']} seed {config['seed']}, {final['step']} frames, greedy evaluation "
                  f"{final['eval_mean']:.2f} ± {final['eval_std']:.2f}, rawdqn {commit}\nstep,return\n")
        out.writelines(f"{step},{ret:.17g}\n" for step, ret in episodes(directory))
    os.replace(path + ".tmp", path)
    return path


def moving_average_at(rows, step):
    """The mean return of the last WINDOW episodes ended by `step`; None before there are any."""
    returns = [ret for end, ret in rows if end <= step][-WINDOW:]
    return sum(returns) / len(returns) if returns else None


def train(game, seed, steps, runs_dir, threads, results, layout=None):
    layout = layout or Layout(runs_dir)
    directory = layout.run_dir(game, seed)
    if finished(directory, steps):
        return directory, "read"
    if not os.path.isdir(directory) and saved_frames(results_path(results, layout.name(game, seed))) >= steps:
        return directory, f"read from {results}"
    env = dict(os.environ, **({"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"} if threads == 1 else {}))
    if os.path.isdir(os.path.join(directory, "checkpoints")):
        command = ["--resume", directory, "--steps", str(steps)]
    else:
        with open(directory + ".commit", "w") as file:
            file.write(git_commit() + "\n")
        command = ["--env", layout.env_id(game), "--seed", str(seed), "--steps", str(steps),
                   "--eval-interval", "100000", "--checkpoint-interval", "50000", "--logdir", directory,
                   *AGENTS[layout.agent]]
    return directory, rawdqn_train(command, directory + ".log", env)


def rawdqn_train(command, log_path, env=None):
    """`rawdqn train COMMAND` with its output appended to log_path; 'trained' or why not."""
    with open(log_path, "a") as log:
        done = subprocess.run([sys.executable, "-m", "rawdqn", "train", *command], stdout=log, stderr=log, env=env)
    return "trained" if done.returncode == 0 else f"failed (exit {done.returncode}, see {log_path})"


def train_on_device(game, steps, layout, results):
    """All of layout.seeds in one on-device program (RUNS_DIR/GAME-v1-ondevice); continued
    with --resume where it stopped; read where every seed has finished or is in RESULTS."""
    logdir = layout.program_dir(game)
    if all(finished(layout.run_dir(game, seed), steps) or
           saved_frames(results_path(results, layout.name(game, seed))) >= steps for seed in layout.seeds):
        return logdir, "read"
    if layout.trained_seeds(game) is not None:   # main checked that they are layout.seeds
        command = ["--resume", logdir, "--steps", str(steps)]
    else:
        os.makedirs(logdir, exist_ok=True)
        for seed in layout.seeds:
            with open(layout.run_dir(game, seed) + ".commit", "w") as file:
                file.write(git_commit() + "\n")
        command = ["--on-device", "--env", layout.env_id(game), "--seed", str(layout.seeds[0]),
                   "--seeds", str(len(layout.seeds)), "--steps", str(steps), "--checkpoint-interval", "50000",
                   "--logdir", logdir, *AGENTS[layout.agent]]
    return logdir, rawdqn_train(command, logdir + ".log")


def finished(directory, steps):
    """The run reached `steps` and evaluated there (history.jsonl's last row)."""
    path = os.path.join(directory, "history.jsonl")
    if not os.path.exists(path):
        return False
    with open(path) as lines:
        rows = [json.loads(line) for line in lines]
    return bool(rows) and "eval_mean" in rows[-1] and rows[-1]["step"] >= steps


def seed_values(layout, game, mark, results):
    """The moving average at `mark` million frames of each of layout's seeds that reached it."""
    rows = (episodes(layout.run_dir(game, seed), results, layout.name(game, seed)) for seed in layout.seeds)
    return [moving_average_at(r, mark * 1e6) for r in rows if r and r[-1][0] >= mark * 1e6 - 5_000]


def report(games, steps, layout, plot, results):
    """Each game's seed mean against the paper's curve; for an --agent, also against the range of
    the recorded DQN seeds at each frame count (the agent passes where its mean is not below it)."""
    marks = [m for m in (0.1, 0.25, 0.5, 1.0, 2.0, 5.0) if m * 1e6 <= steps]
    baseline = layout.baseline()
    all_pass = True
    for game in games:
        print(f"\n{game} ({layout.env_id(game)}{', on the device' if layout.on_device else ''}"
              f"{'' if baseline is None else ', ' + layout.agent}): moving average of {WINDOW} training episodes' returns")
        print(f"{'frames':>8} | {'paper DQN':>9} | {'seed mean':>9} | seeds"
              + ("" if baseline is None else " | rawdqn DQN seeds"))
        last, reached = None, None
        for mark in marks:
            values = seed_values(layout, game, mark, results)
            reached = mark if values else reached
            dqn = [] if baseline is None else seed_values(baseline, game, mark, results)
            mean = sum(values) / len(values) if values else None
            paper = PAPER.get(game, {}).get(mark)
            print(f"{mark:7.2f}M | {paper if paper is not None else '-':>9} | "
                  f"{'-' if mean is None else f'{mean:9.2f}':>9} | {', '.join(f'{v:.2f}' for v in values)}"
                  + ("" if baseline is None else f" | {', '.join(f'{v:.2f}' for v in dqn) or '-'}"))
            if mean is not None and (paper is not None if baseline is None else bool(dqn)):
                last = (mark, mean, paper, dqn)
        if last is None:
            print("  no run has reached a frame count " + ("the paper's curve gives" if baseline is None
                                                          else "the recorded DQN runs reached"))
            all_pass = False
            continue
        mark, mean, paper, dqn = last
        if baseline is None:
            within = abs(mean - paper) <= TOLERANCE * paper
            target = max(m for m in marks if m in PAPER.get(game, {}))
            verdict = f"{mean:.2f} against the paper's {paper} ({'within' if within else 'outside'} ±{TOLERANCE:.0%})"
        else:
            within = mean >= min(dqn)
            target = max(marks)
            place = "below" if mean < min(dqn) else "above" if mean > max(dqn) else "within"
            verdict = f"{mean:.2f}, {place} the DQN seeds' range {min(dqn):.2f} … {max(dqn):.2f}"
        # Judged at the last frame count both the runs and what they are measured against reached.
        all_pass &= within and reached == target
        print(f"  at {mark}M frames: {verdict}"
              + ("" if mark == target else f"; the recorded DQN runs stop at {mark}M frames" if reached == target
                 else f"; the runs have not reached {target}M frames yet"))
    if plot:
        draw(games, layout, plot, results)
    return all_pass


def draw(games, layout, path, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: matplotlib is not installed (pip install matplotlib)")
        return
    figure, axes = plt.subplots(1, len(games), figsize=(5 * len(games), 3.6), squeeze=False)
    for axis, game in zip(axes[0], games):
        for shown, style in ((layout, {}), (layout.baseline(), {"color": "0.6", "ls": ":"})):
            for seed in shown.seeds if shown else ():
                rows = episodes(shown.run_dir(game, seed), results, shown.name(game, seed))
                if rows:
                    steps = list(range(20_000, rows[-1][0] + 1, 20_000))
                    axis.plot([s / 1e6 for s in steps], [moving_average_at(rows, s) for s in steps], lw=1,
                              label=f"rawdqn {shown.agent} seed {seed}", **style)
        paper = sorted(PAPER.get(game, {}).items())
        axis.plot([m for m, _ in paper], [v for _, v in paper], "k--o", ms=3, label="paper's DQN (30 runs, read off)")
        axis.set(title=f"{layout.env_id(game)}{' on the device' if layout.on_device else ''}"
                        f"{'' if layout.agent == 'dqn' else ', ' + layout.agent}", xlabel="frames (millions)", ylabel=f"mean return, last {WINDOW} episodes")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"plot: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", nargs="+", default=["Breakout", "SpaceInvaders"], choices=sorted(PAPER))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--runs-dir", default=os.path.join("runs", "minatar"))
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (each on one thread if > 1)")
    parser.add_argument("--plot", default=None, help="write the curves to this image")
    parser.add_argument("--report-only", action="store_true", help="read the runs that are there; train nothing")
    parser.add_argument("--results", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                          "results", "minatar"),
                        help="where finished runs' episodes are kept (default: the repository's results/minatar)")
    parser.add_argument("--version", choices=["v0", "v1"], default=None,
                        help="v0: the paper's 6 actions (default); v1: the minimal action sets (--on-device's)")
    parser.add_argument("--on-device", action="store_true",
                        help="train the seeds in one on-device program on the TF env (Breakout-v1)")
    parser.add_argument("--agent", choices=sorted(AGENTS), default="dqn",
                        help="the DQN variant to train on the game's preset (default: dqn), reported beside DQN's runs")
    args = parser.parse_args()
    version = args.version or ("v1" if args.on_device else "v0")
    seeds = tuple(args.seeds)
    if args.on_device:
        if version != "v1" or args.games != ["Breakout"]:
            parser.error("--on-device trains MinAtar/Breakout-v1, the game written in TF ops: "
                         "pass --games Breakout and no --version v0")
        if list(seeds) != list(range(seeds[0], seeds[0] + len(seeds))):
            parser.error(f"--on-device trains consecutive seeds in one program; got {' '.join(map(str, seeds))}")
    layout = Layout(args.runs_dir, version, args.on_device, seeds, args.agent)
    for game in args.games if args.on_device else ():
        trained = layout.trained_seeds(game)
        if trained is not None and trained != seeds:   # its run directories are laid out for those seeds
            parser.error(f"{layout.program_dir(game)} holds the on-device run of seeds {' '.join(map(str, trained))}; "
                         "pass those --seeds, or another --runs-dir")
    os.makedirs(args.runs_dir, exist_ok=True)
    if not args.report_only and args.on_device:
        for game in args.games:
            directory, outcome = train_on_device(game, args.steps, layout, args.results)
            print(f"{game} seeds {', '.join(map(str, seeds))}: {outcome} ({directory})", flush=True)
    elif not args.report_only:
        jobs = [(game, seed) for game in args.games for seed in seeds]
        threads = 1 if args.jobs > 1 else None
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            for (game, seed), (directory, outcome) in zip(jobs, pool.map(
                    lambda job: train(*job, args.steps, args.runs_dir, threads, args.results, layout), jobs)):
                print(f"{game} seed {seed}: {outcome} ({directory})", flush=True)
    for game in args.games:
        for seed in seeds:
            if finished(layout.run_dir(game, seed), args.steps):
                path = save_results(layout.run_dir(game, seed), args.results, layout.name(game, seed))
                print(f"{game} seed {seed}: episodes in {path}")
    return 0 if report(args.games, args.steps, layout, args.plot, args.results) else 1


if __name__ == "__main__":
    sys.exit(main())
