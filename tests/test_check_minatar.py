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
    results = str(tmp_path / "results")
    path = check.save_results(directory, results)
    first = open(path, "rb").read()
    assert check.save_results(directory, results) == path and open(path, "rb").read() == first   # same bytes
    shutil.rmtree(directory)
    assert check.episodes(directory) == []
    assert check.episodes(directory, results) == rows
    # The moving average at step 1,000: episodes ending at 10 … 1,000 are the first 100 rows.
    expected = sum(ret for _, ret in rows[:100]) / 100
    assert check.moving_average_at(check.episodes(directory, results), 1_000) == pytest.approx(expected, abs=1e-12)
    assert check.moving_average_at(rows, 5) is None
