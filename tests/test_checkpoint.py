"""Checkpoints: an interrupted and resumed run ends bit for bit where an uninterrupted one does,
writes are atomic, and every bad checkpoint is a one-line error."""
import json
import os
import shutil
import signal

import gymnasium as gym
import numpy as np
import pytest

from cli_helpers import assert_usage_error, cli
from rawdqn import checkpoint
from rawdqn.config import DQNConfig
from rawdqn.train import TrainingDiverged, TrainingInterrupted, resume, train

# 300 steps: the ring (capacity 200) wraps, learning starts at 50, the target syncs every 40
# steps, so updates and syncs happen both before and after the interruption at step 150.
CONFIG = DQNConfig(total_steps=300, hidden=(16,), batch_size=16, replay_capacity=200,
                   learning_starts=50, train_frequency=4, gradient_steps=2, target_update_interval=40,
                   exploration_fraction=0.5, eval_episodes=1, eval_interval=100, log_interval=50,
                   mode="function")


def quiet(_):
    pass


def interrupt_at(step):
    """A log callback that sends this process SIGINT when the progress line for `step` is printed."""
    def log(line):
        if line.startswith(f"step {step:>8,}/"):
            os.kill(os.getpid(), signal.SIGINT)
    return log


def state_of(agent):
    """Every variable of the agent (networks, optimizer slots, replay ring, RNG counters) by path."""
    return {variable.name + str(i): variable.numpy() for i, variable in enumerate(agent.variables)}


# Rainbow's parts hold state of their own: priorities and their sum-tree, the noise counters.
RAINBOW_PARTS = dict(double_q=True, dueling=True, n_step=3, prioritized=True, distributional=True, noisy=True,
                     v_min=0.0, v_max=50.0)


def interrupted_and_resumed(run_dir, config, seed, stop_at, after_stop=None):
    """(uninterrupted run, run stopped by SIGINT at step `stop_at` and resumed), after checking
    that every variable of the two agents is equal, bit for bit; `after_stop(stop)` looks at the
    TrainingInterrupted before the run resumes."""
    straight = train("CartPole-v1", config, seed=seed, log=quiet)
    with pytest.raises(TrainingInterrupted) as stopped:
        train("CartPole-v1", config, seed=seed, logdir=run_dir, log=interrupt_at(stop_at), checkpoint_interval=100)
    assert stopped.value.step == stop_at
    if after_stop:
        after_stop(stopped.value)
    resumed = resume(run_dir, log=quiet)
    expected, actual = state_of(straight.agent), state_of(resumed.agent)
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert (resumed.eval_mean, resumed.eval_std) == (straight.eval_mean, straight.eval_std)
    return straight, resumed


@pytest.mark.parametrize("parts", [{}, RAINBOW_PARTS], ids=["dqn", "rainbow"])
def test_interrupted_and_resumed_run_ends_bit_for_bit_like_an_uninterrupted_one(tmp_path, parts):
    def stopped_mid_episode(stop):
        assert stop.checkpoint_path.endswith("step-00000150")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
        saved, _, _ = checkpoint.load_state(stop.checkpoint_path)
        assert saved["loop"]["episode_length"][0] > 0       # stopped mid-episode
    run_dir = str(tmp_path / "run")
    straight, resumed = interrupted_and_resumed(run_dir, CONFIG.replace(**parts), 7, 150, stopped_mid_episode)
    assert resumed.agent.optimizer.step.numpy() > 0 and resumed.agent.replay.count.numpy() == 200
    assert resumed.episode_returns == straight.episode_returns
    timeless = lambda history: [{k: v for k, v in row.items() if k != "steps_per_second"} for row in history]  # noqa: E731
    assert json.dumps(timeless(resumed.history)) == json.dumps(timeless(straight.history))
    # The files a resumed run leaves are those of one run.
    episodes = (tmp_path / "run" / "episodes.jsonl").read_text().splitlines()
    assert [json.loads(line)["return"] for line in episodes] == straight.episode_returns
    assert checkpoint.latest(run_dir).endswith("step-00000300")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 200-step run with checkpoints at 100 and 200 (its end); tests copy it before changing it."""
    run_dir = str(tmp_path_factory.mktemp("finished") / "run")
    train("CartPole-v1", CONFIG.replace(total_steps=200), seed=3, logdir=run_dir, log=quiet,
          checkpoint_interval=100)
    return run_dir


def copy_of(run_dir, tmp_path):
    destination = str(tmp_path / "copy")
    shutil.copytree(run_dir, destination)
    return destination


def test_a_crash_while_writing_leaves_the_previous_checkpoint_usable(tmp_path, monkeypatch, finished_run):
    for failing in ("savez", "publish"):
        run_dir = copy_of(finished_run, tmp_path / failing)
        before = checkpoint.latest(run_dir)

        def crash(*args, **kwargs):
            raise SystemExit("killed")  # as if the process died here
        if failing == "savez":   # mid-write: variables written, the rest not
            monkeypatch.setattr(checkpoint.np, "savez", crash)
        else:                    # written and renamed into place, but `latest` not yet moved
            monkeypatch.setattr(checkpoint, "publish", crash)
        with pytest.raises(SystemExit):
            resume(run_dir, log=quiet, total_steps=300)
        monkeypatch.undo()
        assert checkpoint.latest(run_dir) == before
        state, _, _ = checkpoint.load_state(before)
        assert state["step"] == 200
        # The run continues from the intact checkpoint and clears the half-written one.
        result = resume(run_dir, log=quiet, total_steps=300)
        assert result.agent.optimizer.step.numpy() > 0
        names = os.listdir(os.path.join(run_dir, "checkpoints"))
        assert not [n for n in names if ".tmp-" in n], names
        assert checkpoint.latest(run_dir).endswith("step-00000300")


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0", "Acrobot-v1", "FrozenLake-v1", "CliffWalking-v1", "Taxi-v4"])
def test_environment_state_round_trips_through_json(env_id):
    # Two copies of an env stepped with the same actions after one's state is loaded into the
    # other give the same observations, rewards, and resets (np_random and time limit included).
    original, copy = gym.make(env_id), gym.make(env_id)
    original.reset(seed=1)
    original.action_space.seed(1)
    for _ in range(30):
        if any(original.step(original.action_space.sample())[2:4]):
            original.reset()
    copy.reset(seed=99)
    checkpoint.set_env_state(copy, json.loads(json.dumps(checkpoint.env_state(original))))
    actions = np.random.default_rng(0).integers(0, original.action_space.n, 600)
    for action in actions:
        a, b = original.step(int(action)), copy.step(int(action))
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
        if a[2] or a[3]:
            np.testing.assert_array_equal(original.reset()[0], copy.reset()[0])


def test_training_that_diverges_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--env", "CartPole-v1", "--steps", 400, "--hidden", 16,
                       "--learning-starts", 120, "--optimizer", "sgd", "--learning-rate", 1e30,
                       "--max-grad-norm", "none", "--train-frequency", 4, "--mode", "function",
                       "--checkpoint-interval", 100, "--logdir", run_dir)
    assert code == 2, err
    assert "training diverged at step 121: the loss became nan" in err and "step-00000100, is intact" in err, err
    assert len(err.strip().splitlines()) == 1
    latest = checkpoint.latest(str(run_dir))
    assert latest.endswith("step-00000100")
    code, out, err = cli(capsys, "eval", run_dir, "--episodes", 1)
    assert code == 0 and "at step 100: mean return" in out, err
    with pytest.raises(TrainingDiverged):
        resume(str(run_dir), log=quiet)


def test_bad_checkpoints_and_flags_are_one_line_errors(tmp_path, capsys, finished_run):
    missing = tmp_path / "nowhere"
    assert_usage_error(cli(capsys, "train", "--resume", missing), "does not exist")
    assert_usage_error(cli(capsys, "eval", missing), "does not exist")
    assert_usage_error(cli(capsys, "eval", tmp_path), "holds no rawdqn checkpoint")
    # A finished run cannot be resumed without more steps, nor trained over.
    assert_usage_error(cli(capsys, "train", "--resume", finished_run), "pass --steps above 200")
    assert_usage_error(cli(capsys, "train", "--logdir", finished_run, "--steps", 50), "already holds a run")
    # Incompatible flags: another environment, seed or network.
    assert_usage_error(cli(capsys, "train", "--resume", finished_run, "--env", "MountainCar-v0", "--steps", 300),
                       "is a run on CartPole-v1, not MountainCar-v0")
    assert_usage_error(cli(capsys, "train", "--resume", finished_run, "--seed", 4, "--steps", 300),
                       "with seed 3, not 4")
    assert_usage_error(cli(capsys, "train", "--resume", finished_run, "--hidden", "8", "--steps", 300),
                       "--hidden (8,) differs from the checkpoint's (16,)")
    assert_usage_error(cli(capsys, "train", "--resume", finished_run, "--logdir", tmp_path / "x"),
                       "drop --logdir")


def test_corrupt_truncated_and_mismatched_checkpoints_are_one_line_errors(tmp_path, capsys, finished_run):
    def damaged(name, damage):
        run_dir = copy_of(finished_run, tmp_path / name)
        damage(checkpoint.latest(run_dir))
        return run_dir

    def truncate(path):
        data = os.path.join(path, "variables.data-00000-of-00001")
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)

    def garble_state(path):
        with open(os.path.join(path, "state.json"), "w") as f:
            f.write('{"format": "rawdqn-checkpoint-1", "env_')

    def other_network(path):
        # state.json of a (32,)-wide network over variables of a (16,)-wide one.
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        state["config"]["hidden"] = [32]
        with open(os.path.join(path, "state.json"), "w") as f:
            json.dump(state, f)

    def other_environment(path):
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        state["env_id"] = "Acrobot-v1"
        with open(os.path.join(path, "state.json"), "w") as f:
            json.dump(state, f)

    truncated = damaged("truncated", truncate)
    for command in ("eval", "export"):
        extra = ["--out", tmp_path / "policy"] if command == "export" else []
        assert_usage_error(cli(capsys, command, truncated, *extra), "is corrupt or truncated")
    assert_usage_error(cli(capsys, "train", "--resume", truncated, "--steps", 300), "is corrupt or truncated")
    assert_usage_error(cli(capsys, "eval", damaged("garbled", garble_state)), "is corrupt or truncated")
    mismatched = damaged("network", other_network)
    assert_usage_error(cli(capsys, "eval", mismatched), "does not fit the network")
    assert_usage_error(cli(capsys, "train", "--resume", mismatched, "--steps", 300), "does not fit the network")
    assert_usage_error(cli(capsys, "train", "--resume", damaged("env", other_environment), "--steps", 300),
                       "was made on an environment with spaces")
    assert_usage_error(cli(capsys, "eval", damaged("no-latest", lambda path: shutil.rmtree(path))),
                       "names step-00000200, which does not exist")


class NaNRewardEnv(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), float("nan") if action == 1 else 0.0, False, False, {}


gym.register("rawdqn-checkpoint-test/NaNReward-v0", entry_point=NaNRewardEnv, max_episode_steps=50)


def test_unwritable_logdir_and_nan_rewards_are_one_line_errors(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert_usage_error(cli(capsys, "train", "--steps", 10, "--logdir", blocker / "run"),
                       f"cannot write to log directory {blocker / 'run'}")
    assert_usage_error(cli(capsys, "train", "--env", "rawdqn-checkpoint-test/NaNReward-v0", "--steps", 100,
                           "--hidden", 4, "--mode", "eager", "--logdir", tmp_path / "nan"),
                       "returned a non-finite reward (nan) at step")


def test_a_resumed_run_keeps_its_checkpoint_interval(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--steps", 150, "--hidden", 8, "--learning-starts", 50, "--eval-interval", 0,
                       "--no-keep-best", "--eval-episodes", 1, "--mode", "function", "--checkpoint-interval", 50,
                       "--logdir", run_dir)
    assert code == 0, err
    code, out, err = cli(capsys, "train", "--resume", run_dir, "--steps", 260)
    assert code == 0, err
    assert "checkpoints every 50 steps" in out
    # Every 50 steps and at the end: 250 and 260 are the two kept (10,000 would have left 150 and 260).
    assert sorted(n for n in os.listdir(run_dir / "checkpoints") if n.startswith("step-")) == \
        ["step-00000250", "step-00000260"]


def test_after_divergence_a_resumed_run_may_lower_the_learning_rate(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--env", "CartPole-v1", "--steps", 400, "--hidden", 16,
                       "--learning-starts", 120, "--optimizer", "sgd", "--learning-rate", 1e30,
                       "--max-grad-norm", "none", "--train-frequency", 4, "--mode", "function",
                       "--checkpoint-interval", 100, "--eval-episodes", 1, "--logdir", run_dir)
    assert code == 2 and "diverged" in err
    # What cannot change is refused by name; everything else may.
    assert_usage_error(cli(capsys, "train", "--resume", run_dir, "--replay-capacity", 500),
                       "--replay-capacity 500 differs from the checkpoint's")
    code, out, err = cli(capsys, "train", "--resume", run_dir, "--learning-rate", 1e-3, "--target-update-interval",
                         50, "--epsilon-end", 0.1)
    assert code == 0, err
    assert "from step 100: learning_rate 1e+30 → 0.001" in out
    with open(run_dir / "config.json") as f:
        config = json.load(f)
    assert config["learning_rate"] == 1e-3 and config["target_update_interval"] == 50
    assert {(c["step"], c["field"], c["from"], c["to"]) for c in config["changes"]} == {
        (100, "learning_rate", 1e30, 1e-3), (100, "target_update_interval", 10, 50), (100, "epsilon_end", 0.04, 0.1)}
    with open(run_dir / "history.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert {"step": 100, "config_change": {"learning_rate": [1e30, 1e-3], "target_update_interval": [10, 50],
                                           "epsilon_end": [0.04, 0.1]}} in rows
    state, _, _ = checkpoint.load_state(checkpoint.latest(str(run_dir)))
    assert state["step"] == 400 and state["config"]["learning_rate"] == 1e-3


def test_more_steps_on_resume_do_not_move_epsilon_back_up(tmp_path):
    run_dir = str(tmp_path / "run")
    # ε decays over 0.5 · 300 = 150 steps; stopped at 100, ε = 1 + (0.05 − 1) · 100/150 = 0.3667.
    with pytest.raises(TrainingInterrupted):
        train("CartPole-v1", CONFIG, seed=2, logdir=run_dir, log=interrupt_at(100))
    lines = []
    resumed = resume(run_dir, log=lines.append, total_steps=600)
    epsilons = {row["step"]: row["epsilon"] for row in resumed.history if "epsilon" in row}
    # The progress line at step 150 reports ε(149) = 1 − 0.95 · 149/150, not 1 − 0.95 · 149/300.
    assert epsilons[150] == pytest.approx(1 - 0.95 * 149 / 150)
    assert "rawdqn: from step 100: exploration_steps None → 150" in lines


def test_a_run_that_fails_before_its_first_checkpoint_keeps_its_logs(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--env", "CartPole-v1", "--steps", 400, "--hidden", 16, "--log-interval", 50,
                       "--learning-starts", 120, "--optimizer", "sgd", "--learning-rate", 1e30,
                       "--max-grad-norm", "none", "--train-frequency", 4, "--mode", "function", "--logdir", run_dir)
    assert code == 2 and "no checkpoint had been written yet" in err
    with open(run_dir / "history.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert [row["step"] for row in rows if "loss" in row] == [50, 100]
    # The update after step 121 failed; the loop read the flag at its next hook, step 150.
    assert rows[-1]["step"] == 150 and "training diverged at step 121" in rows[-1]["stopped"]
    assert (run_dir / "episodes.jsonl").read_text().strip()
    # A new run into the same folder would mix two runs' logs.
    assert_usage_error(cli(capsys, "train", "--steps", 10, "--logdir", run_dir),
                       "stopped before its first checkpoint")


def test_a_resumed_run_logs_each_step_to_tensorboard_once(tmp_path):
    from rawdqn.summary import read_scalars
    straight_dir, crashed_dir = str(tmp_path / "straight"), str(tmp_path / "crashed")
    train("CartPole-v1", CONFIG, seed=5, logdir=straight_dir, log=quiet, checkpoint_interval=100)

    def crash_at_250(line):
        if line.startswith(f"step {250:>8,}/"):
            raise RuntimeError("killed")   # as if the machine went down: no checkpoint at 250
    with pytest.raises(RuntimeError):
        train("CartPole-v1", CONFIG, seed=5, logdir=crashed_dir, log=crash_at_250, checkpoint_interval=100)
    # Episodes that ended after the checkpoint at 200 were logged, and will be logged again.
    assert max(step for step, _ in read_scalars(crashed_dir)["episode/return"]) > 200
    resume(crashed_dir, log=quiet)
    straight, crashed = read_scalars(straight_dir), read_scalars(crashed_dir)
    assert straight.keys() == crashed.keys()
    for tag in straight:
        assert [step for step, _ in crashed[tag]] == [step for step, _ in straight[tag]], tag
        if tag != "train/steps_per_second":
            np.testing.assert_array_equal(np.array(crashed[tag]), np.array(straight[tag]), err_msg=tag)


def test_eval_prints_the_number_training_printed(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, err = cli(capsys, "train", "--steps", 300, "--hidden", 16, "--learning-starts", 50,
                         "--eval-interval", 100, "--keep-best", "--eval-episodes", 3, "--logdir", run_dir)
    assert code == 0, err
    printed = out.strip().splitlines()[-1].split(" over ")[0]   # "evaluation: mean return M ± S"
    code, out, err = cli(capsys, "eval", run_dir)
    assert code == 0, err
    assert out.split(": ", 1)[1].split(" over ")[0] == printed.split(": ", 1)[1]
    assert "over 3 greedy episodes (seed 20000)" in out   # keep_best: the fresh episodes


FORMAT_2_RUN = os.path.join(os.path.dirname(__file__), "data", "format2_cartpole")


def avx512():
    """Whether this CPU has AVX-512 (Linux: /proc/cpuinfo's flags; elsewhere, assumed not)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return any(line.startswith("flags") and " avx512f" in line for line in cpuinfo)
    except OSError:
        return False


def test_a_format_2_run_resumes_and_evaluates_as_the_version_that_wrote_it(tmp_path, capsys):
    # tests/data/format2_cartpole: `rawdqn train --env CartPole-v1 --steps 300 --hidden 8
    # --replay-capacity 64 --learning-starts 100 --batch-size 16 --eval-episodes 2 --seed 1
    # --checkpoint-interval 200`, written by rawdqn at 2036d4c (a variable per layer, per Adam
    # slot and per replay field). Resumed here from its step 200, the run must reach that
    # version's own step-300 weights, Adam slots and replay bit for bit.
    from tensorflow.train import load_checkpoint
    run = tmp_path / "run"
    shutil.copytree(FORMAT_2_RUN, run)
    shutil.rmtree(run / "checkpoints" / "step-00000300")
    code, out, err = cli(capsys, "train", "--resume", run / "checkpoints" / "step-00000200")
    assert code == 0, err
    expected = load_checkpoint(os.path.join(FORMAT_2_RUN, "checkpoints", "step-00000300", "variables"))
    reached = load_checkpoint(str(run / "checkpoints" / "step-00000300" / "variables"))

    def old(name):
        return expected.get_tensor(f"agent/{name}/.ATTRIBUTES/VARIABLE_VALUE")

    def new(name):
        return reached.get_tensor(f"agent/{name}/.ATTRIBUTES/VARIABLE_VALUE")
    # Bit for bit on the kind of CPU that wrote it (AVX-512). XLA compiles for the CPU it runs
    # on, and with other vector widths it sums in another order: there, float32 rounding apart.
    same_cpu_kind = avx512()
    equal = np.testing.assert_array_equal if same_cpu_kind else (
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.abs(b).max()))
    layers = [f"{kind}/{i}" for i in range(2) for kind in ("kernels", "biases")]
    for network in ("online", "target"):
        equal(new(f"{network}/theta"), np.concatenate([old(f"{network}/{layer}").ravel() for layer in layers]))
    for slot in ("m", "v"):
        equal(new(f"optimizer/slots/{slot}/0"),
              np.concatenate([old(f"optimizer/slots/{slot}/{i}").ravel() for i in range(4)]))
    rows = new("replay/rows")
    np.testing.assert_array_equal(rows[:, :4], old("replay/obs"))
    np.testing.assert_array_equal(rows[:, 8], old("replay/action"))
    for name in ("schedule/step", "schedule/updates_done", "act_draws", "replay/draws", "optimizer/step"):
        assert new(name) == old(name), name
    # eval reads the old layout too, and prints what the old version's training printed.
    code, out, err = cli(capsys, "eval", FORMAT_2_RUN)
    assert code == 0, err
    with open(os.path.join(FORMAT_2_RUN, "checkpoints", "step-00000300", "state.json")) as f:
        final = json.load(f)["final_evaluation"]
    assert f"{final['mean']:.2f}" in out, out
