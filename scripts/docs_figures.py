"""The documentation's figures, drawn from what `results/` keeps, so a page's figure is never a stale copy.

    python scripts/docs_figures.py [--out docs/img] [--only seeds,peer,conv-forms,curves]

    seeds       results/bench/seeds-batched-avx512.txt: time for K seeds over one seed's, on the
                device, K in one program (batched and unrolled seed axes) against K programs
    peer        results/bench/minatar-peer-avx512.txt: rawdqn over the MinAtar repository's DQN,
                each round's ratio, learning phase and whole process, beside the issue's bars
    conv-forms  results/bench/conv-forms-avx512.txt: each convolution form's time per layer shape
    curves      the MinAtar learning curves, redrawn from results/minatar/*.csv.gz by
                scripts/check_minatar.py --report-only (the commands the pages cite)

Needs matplotlib. The pages embed the files written to --out (docs/img/NAME.png).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "results", "bench")
# (figure name, check_minatar.py arguments): the learning curves the pages show.
CURVES = (("minatar-v0-dqn", ["--games", "Breakout", "SpaceInvaders"]),
          ("breakout-v1-ondevice", ["--on-device", "--games", "Breakout"]),
          ("breakout-v1-ondevice-pqn", ["--on-device", "--agent", "pqn", "--games", "Breakout", "--steps", "5000000"]),
          ("breakout-v1-qr-dqn", ["--version", "v1", "--games", "Breakout", "--agent", "qr-dqn"]),
          ("breakout-v1-munchausen", ["--version", "v1", "--games", "Breakout", "--agent", "munchausen"]))


def seeds_runs(text):
    """Every CartPole run in the seeds record, in order: [(commit, {algo: {seed axis: [(K, time vs one seed)]}})]."""
    runs, tables, algo = [], None, None
    for line in text.splitlines():
        if line.startswith("# python bench/seeds.py"):
            commit = re.search(r"\(rawdqn ([0-9a-f]{7})", line)
            tables, algo = ({}, None) if "--env" not in line else (None, None)   # MinAtar runs: not this figure's
            if tables is not None:
                runs.append((commit.group(1) if commit else "?", tables))
            continue
        header = re.match(r"^(DQN|PQN) \(", line)
        if tables is not None and header:
            algo = header.group(1)
            tables[algo] = {}
            continue
        row = [cell.strip() for cell in line.split("|")]
        if tables is not None and algo and len(row) == 7 and row[0].isdigit():
            k, axis, ratio = int(row[0]), row[1], float(row[5].rstrip("×"))
            for name in (("batched", "unrolled") if axis == "-" else (axis,)):
                tables[algo].setdefault(name, []).append((k, ratio))
    return runs


def seeds_table(text):
    """The first run's tables: {algo: {seed axis: [(K, time vs one seed)]}}."""
    return seeds_runs(text)[0][1]


def peer_ratios(text):
    """Every round's rawdqn / peer ratio, per run: {"COMMIT GAME": {"learning phase": [...],
    "whole process": [...]}}, the commit from the `# ... (rawdqn COMMIT` line above the run."""
    ratios, commit, game = {}, "?", "?"
    for line in text.splitlines():
        header = re.match(r"^#.*\(rawdqn ([0-9a-f]{7})", line)
        if header:
            commit = header.group(1)
        started = re.match(r"^bench/minatar_peer.py: (\w+),", line)
        if started:
            game = started.group(1)
        match = re.match(r"^(learning phase|whole process): .*ratio per round ([\d., ]+) \(median", line)
        if match:
            runs = ratios.setdefault(f"{commit} {game}", {"learning phase": [], "whole process": []})
            runs[match.group(1)] += [float(x) for x in match.group(2).split(",")]
    return ratios


def conv_forms_table(text):
    """[(layer, {form: µs})] from bench/conv_forms.py's table."""
    rows, forms = [], None
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if cells[0] == "layer":
            forms = [cell[:-3] for cell in cells if cell.endswith(" µs")]
        elif forms and len(cells) == 4 + 2 * len(forms):
            rows.append((cells[0], {form: float(cells[3 + i]) for i, form in enumerate(forms)}))
    return rows


def read(name):
    with open(os.path.join(BENCH, name), encoding="utf-8") as file:
        return file.read()


def draw_seeds(plt, out):
    runs = seeds_runs(read("seeds-batched-avx512.txt"))
    (first_commit, tables), (last_commit, latest) = runs[0], runs[-1]
    figure, axes = plt.subplots(1, len(tables), figsize=(10, 3.8), constrained_layout=True, sharey=True)
    for ax, (algo, series) in zip(axes, tables.items()):
        ks = sorted({k for points in series.values() for k, _ in points})
        ax.plot(ks, ks, color="grey", linestyle="--", label="K separate programs (K×)")
        ax.axhline(2, color="tab:red", linestyle=":", label="the goal (2×)")
        for axis, points in series.items():
            ax.plot(*zip(*sorted(points)), marker="o", label=f"one program, {axis} ({first_commit})")
        if last_commit != first_commit:   # the latest run: the batched Philox, and its draws per seed
            for axis, name in (("batched", "batched Philox"), ("per-seed-rng", "draws per seed")):
                if axis in latest.get(algo, {}):
                    ax.plot(*zip(*sorted(latest[algo][axis])), marker="s", label=f"one program, {name} ({last_commit})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_title(f"{algo} on CartPole, on the device")
        ax.set_xlabel("seeds K")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("time for K seeds / one seed's")
    axes[0].legend(fontsize="small")
    figure.savefig(out, dpi=110)
    plt.close(figure)


def draw_peer(plt, out):
    by_commit = peer_ratios(read("minatar-peer-avx512.txt"))
    bars = {"learning phase": 3.0, "whole process": 2.5}
    figure, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (commit, ratios) in enumerate(by_commit.items()):
        offset = (index - (len(by_commit) - 1) / 2) * 0.18
        for x, values in enumerate(ratios.values()):
            ax.scatter([x + offset] * len(values), values, color=colors[index], alpha=0.6)
            ax.hlines(statistics.median(values), x + offset - 0.08, x + offset + 0.08, color=colors[index],
                      linewidth=3, label=f"rawdqn {commit}: rounds and median" if x == 0 else None)
    for x, bar in enumerate(bars.values()):
        ax.hlines(bar, x - 0.4, x + 0.4, color="black", linestyle=":",
                  label="issue 38's bar" if x == 0 else None)
    ax.axhline(1, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(bars)), list(bars))
    ax.set_ylabel("rawdqn frames/s ÷ the MinAtar repo's DQN")
    ax.set_title("MinAtar, 25,000 frames, 2-core AVX-512 CPU")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    ax.grid(alpha=0.3, axis="y")
    figure.savefig(out, dpi=110)
    plt.close(figure)


def draw_conv_forms(plt, out):
    rows = conv_forms_table(read("conv-forms-avx512.txt"))
    forms = list(rows[0][1])
    figure, ax = plt.subplots(figsize=(10, 3.8), constrained_layout=True)
    width = 0.8 / len(forms)
    for i, form in enumerate(forms):
        fastest = [times[form] / min(times.values()) for _, times in rows]
        ax.bar([x + (i - (len(forms) - 1) / 2) * width for x in range(len(rows))], fastest, width, label=form)
    ax.axhline(1, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(rows)), [name for name, _ in rows], rotation=15, fontsize="small")
    ax.set_ylabel("time ÷ the layer's fastest form")
    ax.set_title("one layer's forward and gradients under XLA, batch 32, 2-core AVX-512 CPU")
    ax.legend(title="conv_gradients")
    ax.grid(alpha=0.3, axis="y")
    figure.savefig(out, dpi=110)
    plt.close(figure)


def draw_curves(out_dir):
    for name, arguments in CURVES:
        command = [sys.executable, os.path.join(REPO, "scripts", "check_minatar.py"), *arguments, "--report-only",
                   "--plot", os.path.join(out_dir, f"{name}.png"),
                   "--results", os.path.join(REPO, "results", "minatar")]
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if not os.path.exists(os.path.join(out_dir, f"{name}.png")):
            raise SystemExit(f"{' '.join(command)} drew nothing:\n{result.stdout[-800:]}{result.stderr[-800:]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "img"))
    parser.add_argument("--only", default="seeds,peer,conv-forms,curves")
    args = parser.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        parser.error("needs matplotlib: pip install matplotlib")
    os.makedirs(args.out, exist_ok=True)
    draw = {"seeds": lambda: draw_seeds(plt, os.path.join(args.out, "seeds-scaling.png")),
            "peer": lambda: draw_peer(plt, os.path.join(args.out, "minatar-peer.png")),
            "conv-forms": lambda: draw_conv_forms(plt, os.path.join(args.out, "conv-forms.png")),
            "curves": lambda: draw_curves(args.out)}
    for name in args.only.split(","):
        if name not in draw:
            parser.error(f"--only takes {', '.join(draw)}; got {name!r}")
        draw[name]()
        print(f"drew {name} into {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
