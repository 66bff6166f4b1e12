"""`rawdqn plot`: every run labelled, runs of one configuration aggregated over all steps."""
import json

import numpy as np
import pytest

from cli_helpers import assert_usage_error, cli
from rawdqn.commands import plot


def test_aggregate_interpolates_each_run_and_uses_the_runs_that_cover_a_step():
    # Run A logged (0, 0) and (10, 10); run B logged 2 at steps 0, 5 and 20.
    curves = [([0, 10], [0, 10]), ([0, 5, 20], [2, 2, 2])]
    point, low, high, count = plot.aggregate(curves, [0, 5, 10, 15, 20])
    # Step 5: A interpolates to 5, B is 2 → mean 3.5. Steps 15 and 20: A has ended, B alone.
    np.testing.assert_allclose(point, [1.0, 3.5, 6.0, 2.0, 2.0])
    np.testing.assert_array_equal(count, [2, 2, 2, 1, 1])
    np.testing.assert_allclose(low[3:], 2.0)
    np.testing.assert_allclose(high[3:], 2.0)
    # Two runs: resampling them gives means of (A, A), (A, B), (B, B): the band spans A to B.
    np.testing.assert_allclose(low[:3], [0.0, 2.0, 2.0])
    np.testing.assert_allclose(high[:3], [2.0, 5.0, 10.0])


def test_mean_bootstrap_interval_matches_a_direct_resampling():
    block = np.array([[1.0, 4.0], [2.0, 6.0], [6.0, 8.0], [7.0, 2.0]])
    mean, low, high = plot.mean_intervals(block, seed=3)
    np.testing.assert_allclose(mean, block.mean(axis=0))
    rng = np.random.default_rng(3)
    means = np.array([block[rng.integers(0, 4, size=4)].mean(axis=0) for _ in range(plot.BOOTSTRAP_REPS)])
    np.testing.assert_allclose(low, np.percentile(means, 2.5, axis=0))
    np.testing.assert_allclose(high, np.percentile(means, 97.5, axis=0))


def write_run(path, seed, learning_rate, eval_steps, eval_means):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"env_id": "CartPole-v1", "seed": seed,
                                                  "learning_rate": learning_rate, "hidden": [64]}))
    (path / "history.jsonl").write_text("".join(
        json.dumps({"step": s, "eval_mean": m, "eval_std": 0.0}) + "\n" for s, m in zip(eval_steps, eval_means)))
    (path / "episodes.jsonl").write_text("".join(
        json.dumps({"step": s, "return": m, "length": 10}) + "\n" for s, m in zip(eval_steps, eval_means)))
    return str(path)


def test_runs_are_labelled_and_grouped_by_configuration(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    paths = [write_run(tmp_path / "a0", 0, 1e-3, [100, 200, 300], [10, 20, 30]),
             write_run(tmp_path / "a1", 1, 1e-3, [150, 250], [15, 35]),
             write_run(tmp_path / "b0", 0, 3e-3, [100, 200], [50, 60])]
    runs = [plot.read_run(path, label) for path, label in zip(paths, ["first", "second", "other"])]
    groups = plot.group_runs(runs)
    assert [[r["label"] for r in group] for group in groups] == [["first", "second"], ["other"]]
    assert plot.group_names(groups) == ["learning_rate=0.001", "learning_rate=0.003"]
    figure = plot.draw_figure(runs, 1, "mean", plt)
    labels = figure.axes[1].get_legend_handles_labels()[1]
    assert {"first", "second", "learning_rate=0.001: mean of 2 runs", "other (learning_rate=0.003)",
            "95% bootstrap CI"} <= set(labels)
    # The group's mean line spans every step any of its runs logged, 100 to 300.
    mean_line = next(line for line in figure.axes[1].get_lines() if line.get_label().endswith("mean of 2 runs"))
    steps, values = mean_line.get_data()
    np.testing.assert_array_equal(steps, [100, 150, 200, 250, 300])
    # 100: a1 starts at 150, a0 alone → 10; 150: a0 interpolates to 15, a1 is 15 → 15;
    # 200: 20 and a1's 25 → 22.5; 250: a0's 25 and 35 → 30; 300: a1 has ended, a0 alone → 30.
    np.testing.assert_allclose(values, [10, 15, 22.5, 30, 30])
    plt.close(figure)


def test_plot_command_writes_the_figure(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image
    paths = [write_run(tmp_path / f"run{i}", i, 1e-3, [100, 200, 300], [10 * i, 20, 30]) for i in range(3)]
    out = tmp_path / "curve.png"
    code, stdout, err = cli(capsys, "plot", *paths, "--out", out, "--label", "x", "--label", "y", "--label", "z")
    assert code == 0, err
    assert "3 run(s) in 1 group(s)" in stdout
    assert matplotlib.image.imread(out).shape[1] > 800
    assert_usage_error(cli(capsys, "plot", *paths, "--out", out, "--label", "x"),
                       "--label was given 1 time(s) for 3 run(s)")


def test_a_group_of_seeds_stands_for_its_seeds_runs(tmp_path, capsys):
    # rawdqn train --on-device --seeds 3 --logdir GROUP writes GROUP/seed5, GROUP/seed6, GROUP/seed7
    # (and GROUP/ondevice, the program's checkpoints, which is no run).
    group = tmp_path / "group"
    group.mkdir()
    (group / "ondevice").mkdir()
    for seed in (7, 5, 6):
        write_run(group / f"seed{seed}", seed, 1e-3, [100, 200], [seed, 2 * seed])
    other = write_run(tmp_path / "other", 0, 3e-3, [100, 200], [1, 2])
    assert plot.run_paths([str(group), other], ["dqn", "b"]) == [
        (str(group / "seed5"), "dqn seed5"), (str(group / "seed6"), "dqn seed6"), (str(group / "seed7"), "dqn seed7"),
        (other, "b")]
    assert [label for _, label in plot.run_paths([str(group)])] == ["group seed5", "group seed6", "group seed7"]
    pytest.importorskip("matplotlib")
    code, stdout, err = cli(capsys, "plot", group, "--out", tmp_path / "curve.png")
    assert code == 0, err
    assert "3 run(s) in 1 group(s)" in stdout
    assert_usage_error(cli(capsys, "plot", group / "ondevice", "--out", tmp_path / "curve.png"),
                       "has no episodes.jsonl or history.jsonl")


def test_iqm_names_its_extra_when_rliable_is_missing(tmp_path, capsys, monkeypatch):
    import sys
    pytest.importorskip("matplotlib")
    monkeypatch.setitem(sys.modules, "rliable", None)
    path = write_run(tmp_path / "run", 0, 1e-3, [100], [1])
    assert_usage_error(cli(capsys, "plot", path, "--out", tmp_path / "x.png", "--aggregate", "iqm"),
                       "pip install 'rawdqn[stats]'")


def test_iqm_comes_from_rliable(tmp_path):
    pytest.importorskip("rliable.library", exc_type=ImportError)
    block = np.array([[1.0], [2.0], [3.0], [4.0], [100.0], [-50.0], [5.0], [6.0]])
    point, low, high = plot.iqm_intervals()(block)
    # IQM of 8 runs: the middle 4 of (−50, 1, 2, 3, 4, 5, 6, 100) → mean(3, 4, 2, 5) = 3.5.
    np.testing.assert_allclose(point, [3.5])
    assert low[0] <= 3.5 <= high[0]
