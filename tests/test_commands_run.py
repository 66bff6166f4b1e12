"""The run commands as a user meets them: Ctrl-C / SIGTERM save, export loads without rawdqn,
eval, watch, plot, and the TensorBoard scalars a run writes."""
import json
import os
import signal
import subprocess
import sys
import types

import numpy as np
import pytest

from cli_helpers import assert_usage_error, cli
from rawdqn import checkpoint, policy
from rawdqn.config import DQNConfig
from rawdqn.summary import read_scalars
from rawdqn.train import train

SMALL = DQNConfig(total_steps=300, hidden=(16,), batch_size=16, replay_capacity=300, learning_starts=50,
                  train_frequency=4, gradient_steps=2, target_update_interval=40, exploration_fraction=0.5,
                  eval_episodes=2, eval_interval=100, log_interval=100, mode="function")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished CartPole runs (seeds 0 and 1) and a FrozenLake run (discrete observations)."""
    root = tmp_path_factory.mktemp("runs")
    paths = {}
    for name, env_id, seed in (("cartpole0", "CartPole-v1", 0), ("cartpole1", "CartPole-v1", 1),
                               ("frozenlake", "FrozenLake-v1", 0)):
        paths[name] = str(root / name)
        train(env_id, SMALL, seed=seed, logdir=paths[name], log=lambda _: None)
    return paths


def rawdqn_process(*args):
    return subprocess.Popen([sys.executable, "-m", "rawdqn", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_checkpoint_the_run_then_resumes_from(tmp_path, capsys, signal_number):
    run_dir = tmp_path / "run"
    process = rawdqn_process("train", "--steps", 100_000, "--hidden", 16, "--learning-starts", 50,
                             "--train-frequency", 4, "--gradient-steps", 1, "--log-interval", 50,
                             "--mode", "function", "--logdir", run_dir)
    try:
        for line in process.stdout:
            if line.startswith("step ") and "/100,000" in line:
                break
        process.send_signal(signal_number)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    name = signal.Signals(signal_number).name
    assert process.returncode == 128 + signal_number, err
    assert f"rawdqn: stopped by {name} at step" in err and f"--resume {run_dir}" in err, err
    assert len(err.strip().splitlines()) == 1, err
    state, _, _ = checkpoint.load_state(checkpoint.latest(str(run_dir)))
    assert state["step"] >= 50
    code, out, err = cli(capsys, "train", "--resume", run_dir, "--steps", state["step"] + 30,
                         "--eval-episodes", 1)
    assert code == 0, err
    assert f"resuming DQN on CartPole-v1 at step {state['step']:,}" in out
    assert checkpoint.latest(str(run_dir)).endswith(f"step-{state['step'] + 30:08d}")


LOAD_WITHOUT_RAWDQN = """
import json, sys
import numpy as np
import tensorflow as tf
answers = {}
for path, observations, dtype in json.loads(sys.argv[1]):
    model = tf.saved_model.load(path)
    observations = tf.constant(np.array(observations, dtype))
    out = model(observations)
    served = model.signatures["serving_default"](observation=observations)
    answers[path] = {"action": out["action"].numpy().tolist(), "q_values": out["q_values"].numpy().tolist(),
                     "served_action": served["action"].numpy().tolist()}
assert not [name for name in sys.modules if name.startswith("rawdqn")]
print(json.dumps(answers))
"""


def test_export_writes_a_saved_model_that_runs_without_rawdqn(runs, tmp_path, capsys):
    cases = []
    observations = {"cartpole0": np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32).tolist(),
                    "frozenlake": [0, 5, 14, 15]}
    for name, obs in observations.items():
        out = str(tmp_path / name)
        code, stdout, err = cli(capsys, "export", runs[name], "--out", out)
        assert code == 0, err
        assert "wrote the greedy policy" in stdout
        cases.append((out, obs, "float32" if name == "cartpole0" else "int32"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_RAWDQN, json.dumps(cases)], capture_output=True,
                            text=True, env=env, timeout=300, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    for (out, obs, _), name in zip(cases, observations):
        greedy, _ = policy.load(runs[name])
        q_values = greedy.q_values(np.array(obs)).numpy()
        np.testing.assert_allclose(answers[out]["q_values"], q_values, rtol=1e-6)
        assert answers[out]["action"] == answers[out]["served_action"] == q_values.argmax(-1).tolist()
    assert_usage_error(cli(capsys, "export", runs["cartpole0"], "--out", cases[0][0]), "already exists")


def test_eval_prints_mean_and_std_of_the_greedy_return(runs, capsys):
    code, out, err = cli(capsys, "eval", runs["cartpole0"], "--episodes", 3)
    assert code == 0, err
    assert out.startswith("CartPole-v1 at step 300: mean return ") and "over 3 greedy episodes" in out
    assert_usage_error(cli(capsys, "eval", runs["cartpole0"], "--episodes", 0), "--episodes must be >= 1")


def test_watch_writes_a_gif_and_an_mp4(runs, tmp_path, capsys):
    iio = pytest.importorskip("imageio.v3")
    pytest.importorskip("pygame")
    gif = tmp_path / "run.gif"
    code, out, err = cli(capsys, "watch", runs["cartpole0"], "--out", gif, "--max-steps", 60)
    assert code == 0, err
    frames = iio.imread(gif)
    assert frames.ndim == 4 and frames.shape[1:3] == (400, 600) and 2 <= len(frames) <= 60
    assert frames[0].std() > 0  # not a blank image
    code, out, err = cli(capsys, "watch", runs["frozenlake"], "--out", tmp_path / "lake.gif", "--max-steps", 20)
    assert code == 0, err
    assert_usage_error(cli(capsys, "watch", runs["cartpole0"], "--out", tmp_path / "run.avi"),
                       "--out must end in .gif or .mp4")
    pytest.importorskip("imageio_ffmpeg")
    code, out, err = cli(capsys, "watch", runs["cartpole0"], "--out", tmp_path / "run.mp4", "--max-steps", 30)
    assert code == 0 and (tmp_path / "run.mp4").stat().st_size > 0, err


def test_a_video_frame_is_uint8_and_at_least_160_pixels_on_its_shorter_side():
    from rawdqn.commands.watch import video_frame
    tiny = np.array([[[0.0, 0.5, 1.0]], [[0.25, 1.5, -0.5]]])   # 2×1 floats, two out of [0, 1]
    frame = video_frame(tiny)
    assert frame.dtype == np.uint8 and frame.shape == (320, 160, 3)   # ceil(160 / 1) = 160 per cell
    np.testing.assert_array_equal(frame[0, 0], [0, 128, 255])          # rint(127.5) = 128
    np.testing.assert_array_equal(frame[-1, -1], [64, 255, 0])         # rint(63.75); clipped
    large = np.arange(400 * 600 * 3, dtype=np.int64).reshape(400, 600, 3).astype(np.uint8)
    np.testing.assert_array_equal(video_frame(large), large)            # CartPole's size: as it is


def test_plot_draws_one_or_several_runs(runs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image
    for paths in ([runs["cartpole0"]], [runs["cartpole0"], runs["cartpole1"]]):
        out = tmp_path / f"curve{len(paths)}.png"
        code, stdout, err = cli(capsys, "plot", *paths, "--out", out)
        assert code == 0, err
        assert f"{len(paths)} run(s)" in stdout and f"{3 * len(paths)} evaluations" in stdout
        image = matplotlib.image.imread(out)
        assert image.shape[0] > 300 and image.shape[1] > 800
    assert_usage_error(cli(capsys, "plot", tmp_path / "missing", "--out", tmp_path / "x.png"), "does not exist")


def test_without_the_optional_extras_the_commands_name_the_extra(runs, tmp_path, capsys, monkeypatch):
    """Holds whether or not the extras are installed: each module is hidden (None in
    sys.modules makes `import` fail) or stood in for by an empty module."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert_usage_error(cli(capsys, "plot", runs["cartpole0"], "--out", tmp_path / "x.png"),
                       "pip install 'rawdqn[plot]'")
    # imageio present, its ffmpeg plugin absent: the mp4 extra is named.
    imageio = types.ModuleType("imageio")
    imageio.v3 = types.ModuleType("imageio.v3")
    monkeypatch.setitem(sys.modules, "imageio", imageio)
    monkeypatch.setitem(sys.modules, "imageio.v3", imageio.v3)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    assert_usage_error(cli(capsys, "watch", runs["cartpole0"], "--out", tmp_path / "x.mp4"),
                       "pip install 'rawdqn[mp4]'")
    monkeypatch.setitem(sys.modules, "pygame", None)
    assert_usage_error(cli(capsys, "watch", runs["cartpole0"], "--out", tmp_path / "x.gif"),
                       "pip install 'rawdqn[watch]'")
    monkeypatch.setitem(sys.modules, "imageio", None)
    monkeypatch.setitem(sys.modules, "imageio.v3", None)
    assert_usage_error(cli(capsys, "watch", runs["cartpole0"], "--out", tmp_path / "x.gif"),
                       "pip install 'rawdqn[watch]'")
    assert not (tmp_path / "x.gif").exists() and not (tmp_path / "x.mp4").exists()


def test_tensorboard_events_hold_every_curve(runs):
    scalars = read_scalars(runs["cartpole0"])
    assert {"train/loss", "train/mean_abs_td_error", "train/mean_max_q", "train/avg_max_q_validation",
            "train/epsilon", "train/steps_per_second", "episode/return", "episode/length",
            "eval/return_mean", "eval/return_std"} <= set(scalars)
    with open(os.path.join(runs["cartpole0"], "episodes.jsonl")) as f:
        episodes = [json.loads(line) for line in f]
    assert [(step, value) for step, value in scalars["episode/return"]] == \
        [(row["step"], row["return"]) for row in episodes]
    assert [step for step, _ in scalars["train/loss"]] == [100, 200, 300]
    assert [step for step, _ in scalars["eval/return_mean"]] == [100, 200, 300]
    assert all(np.isfinite(value) for _, value in scalars["train/avg_max_q_validation"])
