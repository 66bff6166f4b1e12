"""scripts/check_minatar.py: a finished run's episodes survive as a results file, and the
paper's measure (the moving average of the last 100 episodes) is read the same from either."""
import importlib.util
import json
import os
import shutil

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "check_minatar.py")


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("check_minatar", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(directory, rows, steps):
    os.makedirs(directory)
    with open(os.path.join(directory, "config.json"), "w") as out:
        json.dump({"env_id": "MinAtar/Breakout-v0", "seed": 2}, out)
    with open(os.path.join(directory, "history.jsonl"), "w") as out:
        out.write(json.dumps({"step": steps, "eval_mean": 12.5, "eval_std": 3.25}) + "\n")
    with open(os.path.join(directory, "episodes.jsonl"), "w") as out:
        out.writelines(json.dumps({"step": step, "return": ret, "length": 7}) + "\n" for step, ret in rows)


def test_a_saved_run_reads_back_without_its_run_directory(check, tmp_path):
    rows = [(10 * (i + 1), float(i % 7) + (0.5 if i % 3 == 0 else 0.0)) for i in range(250)]
    directory = check.run_dir(str(tmp_path / "runs"), "Breakout", 2)
    fake_run(directory, rows, 2_500)
    assert check.finished(directory, 2_500) and not check.finished(directory, 2_501)
    with open(directory + ".commit", "w") as file:   # what train writes when it starts a run
        file.write("abc1234\n")
    results = str(tmp_path / "results")
    path = check.save_results(directory, results)
    header, saved = check.read_results(path)
    assert header == "# MinAtar/Breakout-v0 seed 2, 2500 frames, greedy evaluation 12.50 ± 3.25, rawdqn abc1234"
    assert saved == rows and check.saved_frames(path) == 2_500
    # Saved again without the .commit file (another machine, a report): the file's commit stays, byte for byte.
    first = open(path, "rb").read()
    os.remove(directory + ".commit")
    assert check.save_results(directory, results) == path and open(path, "rb").read() == first
    shutil.rmtree(directory)
    # A finished results file stands for the run: train reads it instead of training again.
    assert check.train("Breakout", 2, 2_500, str(tmp_path / "runs"), None, results) == (directory, f"read from {results}")
    assert check.episodes(directory) == []
    assert check.episodes(directory, results) == rows
    # The moving average at step 1,000: episodes ending at 10 … 1,000 are the first 100 rows.
    expected = sum(ret for _, ret in rows[:100]) / 100
    assert check.moving_average_at(check.episodes(directory, results), 1_000) == pytest.approx(expected, abs=1e-12)
    assert check.moving_average_at(rows, 5) is None


def test_a_file_that_is_not_a_results_file_is_a_clear_error(check, tmp_path):
    path = tmp_path / "Breakout-v0-seed0.csv.gz"
    path.write_text("version https://git-lfs.github.com/spec/v1\n")   # e.g. a pointer, not the data
    with pytest.raises(SystemExit, match="is not a results file this script wrote"):
        check.read_results(str(path))


def test_on_device_runs_are_kept_apart_from_the_gymnasium_loops(check, tmp_path):
    """--on-device: all seeds in one LOGDIR (RUNS/GAME-v1-ondevice/seedS), results named
    GAME-v1-ondevice-seedS; a finished one reads back from RESULTS and is not trained again."""
    runs, results = str(tmp_path / "runs"), str(tmp_path / "results")
    on_device = check.Layout(runs, "v1", True, (0, 1))
    assert on_device.env_id("Breakout") == "MinAtar/Breakout-v1"
    assert on_device.run_dir("Breakout", 1) == os.path.join(runs, "Breakout-v1-ondevice", "seed1")
    assert check.Layout(runs, "v1", True, (4,)).run_dir("Breakout", 4) == os.path.join(runs, "Breakout-v1-ondevice")
    assert check.Layout(runs, "v1").run_dir("Breakout", 1) == os.path.join(runs, "Breakout-v1-seed1")
    rows = [(40 * (i + 1), float(i % 5)) for i in range(120)]
    for seed in (0, 1):
        directory = on_device.run_dir("Breakout", seed)
        fake_run(directory, rows, 4_800)
        path = check.save_results(directory, results, on_device.name("Breakout", seed))
        assert os.path.basename(path) == f"Breakout-v1-ondevice-seed{seed}.csv.gz"
    shutil.rmtree(runs)
    assert check.train_on_device("Breakout", 4_800, on_device, results) == (on_device.program_dir("Breakout"), "read")
    assert check.episodes(on_device.run_dir("Breakout", 1), results, on_device.name("Breakout", 1)) == rows
    assert check.episodes(check.Layout(runs, "v1").run_dir("Breakout", 1), results) == []   # not the host loop's


def test_other_seeds_than_the_on_device_program_trained_are_a_usage_error(check, tmp_path, monkeypatch, capsys):
    """Its run directories are laid out for its seeds (seedS/ with several, LOGDIR with one)."""
    runs = str(tmp_path / "runs")
    layout = check.Layout(runs, "v1", True, (0,))
    assert layout.trained_seeds("Breakout") is None
    root = os.path.join(layout.program_dir("Breakout"), "ondevice")
    os.makedirs(os.path.join(root, "step-00004800"))
    with open(os.path.join(root, "step-00004800", "state.json"), "w") as out:
        json.dump({"seed": 3, "num_seeds": 2}, out)
    with open(os.path.join(root, "latest"), "w") as out:
        out.write("step-00004800\n")
    assert layout.trained_seeds("Breakout") == (3, 4)
    monkeypatch.setattr("sys.argv", ["check_minatar.py", "--on-device", "--games", "Breakout", "--seeds", "3",
                                     "--runs-dir", runs, "--report-only"])
    with pytest.raises(SystemExit) as stop:
        check.main()
    assert stop.value.code == 2
    assert "holds the on-device run of seeds 3 4; pass those --seeds" in capsys.readouterr().err


def test_an_agent_runs_apart_and_is_reported_against_the_dqn_seeds_range(check, tmp_path, capsys):
    """--agent qr-dqn: runs named GAME-VERSION-qr-dqn-seedS, trained with its flags; at each
    frame count the report shows the DQN seeds beside it and passes where the agent's seed mean
    is not below their range."""
    runs, results = str(tmp_path / "runs"), str(tmp_path / "results")
    agent = check.Layout(runs, "v1", seeds=(0, 1), agent="qr-dqn")
    assert agent.name("Breakout", 1) == "Breakout-v1-qr-dqn-seed1"
    assert agent.run_dir("Breakout", 1) == os.path.join(runs, "Breakout-v1-qr-dqn-seed1")
    assert agent.baseline().name("Breakout", 1) == "Breakout-v1-seed1" and check.Layout(runs).baseline() is None
    assert check.AGENTS["qr-dqn"] == ("--algo", "qr-dqn") and check.AGENTS["munchausen"] == ("--munchausen",)
    steps = 100_000   # one mark (0.1M): episodes every 400 frames, returns 2 (DQN seeds 0 and 1: 1 and 3)
    for layout, value in ((agent, lambda seed: 2.0), (agent.baseline(), lambda seed: 1.0 + 2 * seed)):
        for seed in (0, 1):
            directory = layout.run_dir("Breakout", seed)
            fake_run(directory, [(400 * (i + 1), value(seed)) for i in range(250)], steps)
            check.save_results(directory, results, layout.name("Breakout", seed))
    assert check.report(["Breakout"], steps, agent, None, results)
    out = capsys.readouterr().out
    assert "2.00, within the DQN seeds' range 1.00 … 3.00" in out and "| 1.00, 3.00" in out
    # Below the lowest DQN seed: the check fails and says so.
    low = check.Layout(runs, "v1", seeds=(0,), agent="munchausen")
    fake_run(low.run_dir("Breakout", 0), [(400 * (i + 1), 0.5) for i in range(250)], steps)
    assert not check.report(["Breakout"], steps, low, None, results)
    assert "0.50, below the DQN seeds' range 1.00 … 1.00" in capsys.readouterr().out


def test_an_agent_run_longer_than_the_dqn_runs_is_judged_where_they_stop(check, tmp_path, capsys):
    """The agent's seeds reach 0.25M, the DQN seeds 0.1M: judged at 0.1M, the report says the DQN
    runs stop there (not that the agent's have not reached 0.25M), and the check passes."""
    runs, results = str(tmp_path / "runs"), str(tmp_path / "results")
    agent = check.Layout(runs, "v1", seeds=(0,), agent="pqn")
    for layout, frames, value in ((agent, 250_000, 5.0), (agent.baseline(), 100_000, 2.0)):
        directory = layout.run_dir("Breakout", 0)
        fake_run(directory, [(400 * (i + 1), value) for i in range(frames // 400)], frames)
        check.save_results(directory, results, layout.name("Breakout", 0))
    assert check.report(["Breakout"], 250_000, agent, None, results)
    out = capsys.readouterr().out
    assert "at 0.1M frames: 5.00, above the DQN seeds' range 2.00 … 2.00; the recorded DQN runs stop at 0.1M" in out
    # Agent runs shorter than asked for still fail, and say so.
    assert not check.report(["Breakout"], 500_000, agent, None, results)
    assert "the runs have not reached 0.5M frames yet" in capsys.readouterr().out
