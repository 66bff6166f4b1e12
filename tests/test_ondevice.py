"""The on-device loop: its transitions, its counters, its determinism, its seeds, its CLI errors.

Each trainer compiles its own program (a few seconds), so the tests share a few
small trainers and read everything they check from one short run.
"""
import glob
import json
import math
import os
import shutil
import signal
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import checkpoint, cli, envs, ondevice, summary
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig
from rawdqn.ondevice import ENV_STREAM, OnDeviceTrainer
from rawdqn.rundir import TrainingInterrupted
from test_schedule import counted_step_by_step

SMALL = DQNConfig(total_steps=2_000, hidden=(8,), batch_size=8, replay_capacity=4_096,
                  learning_starts=5, train_frequency=4, gradient_steps=3, target_update_interval=7,
                  exploration_fraction=0.5, mode="xla")
TIME_LIMIT = 12     # short episodes, so a short run has truncated rows


def variables(module):
    return [v.numpy() for v in module.variables_in_order]


@pytest.fixture(scope="module")
def run():
    """Two agents (seeds 3 and 4), 3 envs each, 40 iterations in calls of 1, 7 and 32."""
    trainer = OnDeviceTrainer("CartPole-v1", SMALL, seed=3, num_envs=3, num_seeds=2,
                              max_episode_steps=TIME_LIMIT)
    initial = [variables(agent.online) for agent in trainer.agents]
    calls = [trainer.run(k) for k in (1, 7, 32)]
    return trainer, initial, calls


def test_replay_rows_follow_gymnasium_physics(run):
    trainer, _, _ = run
    replay = trainer.agents[0].replay
    count = replay.size
    assert count == 40 * 3
    obs, next_obs = replay.obs.numpy()[:count], replay.next_obs.numpy()[:count]
    action, reward = replay.action.numpy()[:count], replay.reward.numpy()[:count]
    terminated = replay.terminated.numpy()[:count]
    reference = gym.make("CartPole-v1").unwrapped
    reference.reset(seed=0)
    for row in range(count):
        reference.state = obs[row].astype(np.float64)
        expected, expected_reward, expected_terminated, _, _ = reference.step(int(action[row]))
        np.testing.assert_allclose(next_obs[row], expected, rtol=1e-5, atol=1e-5)
        assert reward[row] == expected_reward
        assert terminated[row] == float(expected_terminated)


def test_episodes_continue_restart_and_truncate_in_the_replay(run):
    """Row (i, j) is iteration i of env j. Its next_obs is row (i + 1, j)'s obs unless the
    episode ended; a truncated row keeps terminated = 0 and its true final observation."""
    trainer, _, _ = run
    replay, num_envs = trainer.agents[0].replay, trainer.num_envs
    count = replay.size
    obs = replay.obs.numpy()[:count].reshape(-1, num_envs, 4)
    next_obs = replay.next_obs.numpy()[:count].reshape(-1, num_envs, 4)
    terminated = replay.terminated.numpy()[:count].reshape(-1, num_envs)
    truncations = 0
    for env in range(num_envs):
        length = 0
        for i in range(obs.shape[0] - 1):
            length += 1
            truncated = length == TIME_LIMIT
            if terminated[i, env] or truncated:
                assert np.all(np.abs(obs[i + 1, env]) <= 0.05)          # a fresh start
                assert not np.array_equal(obs[i + 1, env], next_obs[i, env])
                if truncated and not terminated[i, env]:
                    truncations += 1
                    # The final observation of a live pole, not the reset one.
                    assert np.abs(next_obs[i, env, 2]) <= envs.cartpole.ANGLE_LIMIT
                    assert np.abs(next_obs[i, env, 0]) <= envs.cartpole.POSITION_LIMIT
                length = 0
            else:
                np.testing.assert_array_equal(obs[i + 1, env], next_obs[i, env])
    assert truncations > 0, "the run should have reached the time limit at least once"


def test_replay_matches_stepping_the_tf_env_with_the_same_actions(run):
    trainer, _, _ = run
    lane = trainer.seed_runs[1]
    replay, num_envs = lane.agent.replay, trainer.num_envs
    count = replay.size
    actions = replay.action.numpy()[:count].reshape(-1, num_envs)
    env = envs.make("CartPole-v1", max_episode_steps=TIME_LIMIT)
    key = tf.constant([lane.seed, ENV_STREAM], tf.int32)
    seed = lambda n: tf.random.experimental.stateless_fold_in(key, n, alg="philox")  # noqa: E731
    state, obs = env.reset(seed(0), num_envs)
    for i in range(actions.shape[0]):
        result = env.step(state, tf.constant(actions[i]), seed(i + 1))
        rows = slice(i * num_envs, (i + 1) * num_envs)
        # Eager and XLA float32 differ in the last bit (fused multiply-adds).
        np.testing.assert_allclose(replay.obs.numpy()[rows], obs.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(replay.next_obs.numpy()[rows], result.final_obs.numpy(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(replay.terminated.numpy()[rows], result.terminated.numpy())
        state, obs = result.state, result.obs


def test_counters_match_the_gymnasium_loop(run):
    """3 envs, learning_starts 5, 3 updates every 4 steps, a sync every 7 steps: after
    1, 8 and 40 iterations (3, 24, 120 steps) the gymnasium loop has made
    3·#{u ∈ [5, T): u mod 4 = 0} updates and ⌈T / 7⌉ syncs."""
    trainer, _, calls = run
    assert [call.step for call in calls] == [3, 24, 120]
    assert [call.updates for call in calls] == [0, 3 * 4, 3 * 28]           # by hand
    assert [call.syncs for call in calls] == [1, 4, 18]
    for call in calls:
        assert (call.updates, call.syncs) == counted_step_by_step(call.step, SMALL)
    for agent in trainer.agents:
        # The updates really ran: one optimizer step and one replay draw each.
        assert int(agent.optimizer.step.numpy()) == 3 * 28
        assert int(agent.replay.draws.numpy()) == 3 * 28


def episodes_walked_from_the_replay(replay, num_envs, time_limit):
    """(iteration, env, return) of every CartPole episode that ended, walked env by env from
    the replay's rows: an episode ends where a row is terminated or reaches the time limit,
    and its return is its length (reward 1 per step)."""
    count = replay.size
    terminated = replay.terminated.numpy()[:count].reshape(-1, num_envs)
    ends = []
    for env in range(num_envs):
        length = 0
        for i in range(terminated.shape[0]):
            length += 1
            if terminated[i, env] or length == time_limit:
                ends.append((i, env, float(length)))
                length = 0
    return sorted(ends)


def test_each_call_reports_the_episodes_that_ended_in_it(run):
    """The calls' episode ends, at their iterations in the whole run, are the episodes the
    replay's rows hold, with their returns; their count and mean are the call's figures."""
    trainer, _, calls = run
    offsets = [0, 1, 8]   # the calls of 1, 7 and 32 iterations
    for lane_index, lane in enumerate(trainer.seed_runs):
        reported = sorted((offset + at, env, ret) for offset, call in zip(offsets, calls)
                          for at, env, ret in call.episode_ends[lane_index])
        assert reported == episodes_walked_from_the_replay(lane.agent.replay, trainer.num_envs, TIME_LIMIT)
        assert len(reported) > 5
        for call in calls:
            returns = [ret for _, _, ret in call.episode_ends[lane_index]]
            assert call.episodes[lane_index] == len(returns)
            if returns:
                assert call.mean_return[lane_index] == pytest.approx(np.mean(returns), abs=1e-9)


def test_a_call_longer_than_its_buffers_runs_in_pieces_and_loses_no_episode():
    """iterations_per_call 4: a request of 10 iterations is calls of 4, 4 and 2, its counts
    and episode ends those of 10 iterations."""
    config = SMALL.replace(iterations_per_call=4, learning_starts=0, train_frequency=2, gradient_steps=1)
    trainer = OnDeviceTrainer("CartPole-v1", config, seed=2, num_envs=2, max_episode_steps=3)
    stats = trainer.run(10)
    assert stats.step == 20 and (stats.updates, stats.syncs) == counted_step_by_step(20, config)
    assert sorted(stats.episode_ends[0]) == episodes_walked_from_the_replay(trainer.agents[0].replay, 2, 3)
    assert stats.episodes == [len(stats.episode_ends[0])] and stats.episodes[0] >= 6


@pytest.fixture(scope="module")
def single():
    """One agent, 2 envs, an update every step and a hard sync every 5 steps."""
    config = SMALL.replace(learning_starts=0, train_frequency=1, gradient_steps=1,
                           target_update_interval=5)
    return OnDeviceTrainer("CartPole-v1", config, seed=11, num_envs=2)


def test_target_changes_exactly_when_a_sync_is_due(single):
    agent = single.agents[0]
    synced = kept = 0
    for _ in range(8):
        target_before = variables(agent.target)
        syncs_before = int(single.syncs_done.numpy())
        single.run(1)
        online, target = variables(agent.online), variables(agent.target)
        if int(single.syncs_done.numpy()) > syncs_before:
            synced += 1
            for a, b in zip(online, target):
                np.testing.assert_array_equal(a, b)
        else:
            kept += 1
            for a, b in zip(target_before, target):
                np.testing.assert_array_equal(a, b)
            assert any(not np.array_equal(a, b) for a, b in zip(online, target))
    assert synced > 0 and kept > 0


def test_a_restored_checkpoint_replays_the_run_exactly(single, tmp_path):
    """Everything the loop carries (weights, optimizer, replay, env state, RNG counters,
    episode returns, step counters) is in the checkpoint: the same seed, the same run."""
    path = single.checkpoint().write(str(tmp_path / "ckpt"))
    runs = []
    for _ in range(2):
        single.checkpoint().read(path).assert_consumed()
        stats = [single.run(k) for k in (3, 10)]
        runs.append((stats, [v.numpy() for v in single.variables]))
    (stats_a, values_a), (stats_b, values_b) = runs
    np.testing.assert_equal([vars(s) for s in stats_a], [vars(s) for s in stats_b])  # nan == nan
    assert stats_a[1].updates - stats_a[0].updates == 10 * 2    # 10 iterations of 2 steps, 1 update each
    assert len(values_a) == len(values_b) > 20
    for a, b in zip(values_a, values_b):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_run_and_each_seed_is_its_own_agent(run):
    trainer, initial, _ = run
    # Agent 1 (seed 4) of the two-agent program is the agent seed 4 trains alone.
    alone = OnDeviceTrainer("CartPole-v1", SMALL, seed=4, num_envs=3, max_episode_steps=TIME_LIMIT)
    for k in (1, 7, 32):
        alone.run(k)
    for a, b in zip(variables(alone.agents[0].online), variables(trainer.agents[1].online)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(alone.agents[0].replay.action.numpy(),
                                  trainer.agents[1].replay.action.numpy())
    # The two agents differ in initial weights, actions taken and environment starts.
    assert not np.array_equal(initial[0][0], initial[1][0])
    first, second = trainer.agents
    assert not np.array_equal(first.replay.action.numpy(), second.replay.action.numpy())
    assert not np.array_equal(first.replay.obs.numpy()[:3], second.replay.obs.numpy()[:3])
    for a, b in zip(variables(first.online), variables(second.online)):
        assert not np.allclose(a, b)


@pytest.mark.parametrize("args, message", [
    (["--env", "Pendulum-v1", "--on-device"],
     "--on-device has no TensorFlow version of Pendulum-v1; available: Acrobot-v1, CartPole-v1, MinAtar/Breakout-v1, MountainCar-v0"),
    (["--env", "FrozenLake-v1", "--on-device"], "available: Acrobot-v1, CartPole-v1, MinAtar/Breakout-v1, MountainCar-v0"),
    (["--seeds", "8"], "--seeds needs --on-device"),
    (["--seed-axis", "batched"], "--seed-axis needs --on-device"),
    (["--on-device", "--num-envs", "0"], "num_envs must be >= 1; got 0"),
    (["--on-device", "--env", "MinAtar/Breakout-v1", "--algo", "a2c"],
     "--algo a2c takes vector observations; MinAtar/Breakout-v1 has frames: use --algo dqn"),
])
def test_cli_errors_are_one_line_with_exit_2(args, message, capsys):
    assert cli.main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_cli_refuses_an_unknown_seed_axis_in_one_line(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["train", "--on-device", "--seeds", "2", "--seed-axis", "diagonal"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seed-axis: invalid choice: 'diagonal' (choose from 'unrolled', 'batched')" in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("seed_axis", ["unrolled", "batched"])
def test_cli_trains_two_seeds_and_reports_final_and_kept_weights(capsys, tmp_path, seed_axis):
    code = cli.main(["train", "--env", "CartPole-v1", "--on-device", "--seeds", "2", "--seed", "5",
                     "--num-envs", "8", "--steps", "800", "--learning-starts", "100", "--hidden", "8",
                     "--batch-size", "16", "--eval-interval", "400", "--eval-episodes", "2",
                     "--log-interval", "400", "--logdir", str(tmp_path / "run"), "--seed-axis", seed_axis])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("rawdqn: training DQN on-device on CartPole-v1 for 800 steps (seeds 5, 6; 8 envs")
    assert sum(line.startswith("step ") and " steps/s " in line for line in lines) == 2
    for seed in (5, 6):
        assert sum(line.startswith(f"seed {seed}: final weights: mean return") for line in lines) == 1
        kept = [line for line in lines if line.startswith(f"seed {seed}: kept weights (step ")]
        assert len(kept) == 1 and "evaluation: mean return" in kept[0]
        assert "(800 steps in " in kept[0] and "; compile " in kept[0]
    assert lines[-1].startswith("rawdqn: saved the trainer's variables to ")
    assert lines[-4].startswith("rawdqn: 2 agents, evaluation mean over agents")
    for seed, line in zip((5, 6), lines[-3:-1]):   # each agent is an ordinary run directory
        assert line.startswith(f"rawdqn: seed {seed}: run directory {tmp_path / 'run' / f'seed{seed}'} (checkpoint ")
    # The checkpoint holds both agents' replay rings (800 steps each, capacity permitting).
    saved_dir = lines[-1].split(" to ", 1)[1]
    assert saved_dir == str(tmp_path / "run" / "ondevice" / "step-00000800")
    saved = [name for name, _ in tf.train.list_variables(f"{saved_dir}/variables")]
    assert [name for name in saved if "replay/rows/" in name] == [
        f"trainer/seed_runs/{i}/agent/replay/rows/.ATTRIBUTES/VARIABLE_VALUE" for i in (0, 1)]


def test_an_on_device_run_is_a_run_directory_that_eval_export_and_plot_read(capsys, tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "--env", "CartPole-v1", "--on-device", "--num-envs", "4", "--steps", "400",
            "--learning-starts", "100", "--hidden", "8", "--batch-size", "16", "--eval-interval", "200",
            "--eval-episodes", "3", "--log-interval", "200", "--logdir", str(run_dir)]
    assert cli.main(args) == 0
    trained = capsys.readouterr().out
    reported = [line for line in trained.splitlines() if line.startswith("kept weights")][0]
    reported = reported.split("evaluation: mean return ")[1].split(" over")[0]
    assert cli.main(["eval", str(run_dir)]) == 0   # the kept weights, on the final evaluation's episodes
    assert f"mean return {reported} over 3 greedy episodes" in capsys.readouterr().out
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    evaluations = [row for row in history if "eval_mean" in row]
    assert [row["step"] for row in evaluations] == [200, 400, 400]   # two on the TF env, the final one
    assert json.loads((run_dir / "config.json").read_text())["on_device"] == {"num_envs": 4, "iterations_per_call": 250}
    assert cli.main(["export", str(run_dir), "--out", str(tmp_path / "policy")]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(run_dir), "--steps", "800", "--learning-rate", "0.1"]) == 2
    assert "only --steps may change (got --learning-rate)" in capsys.readouterr().err
    pytest.importorskip("matplotlib")   # the stats extra
    assert cli.main(["plot", str(run_dir), "--out", str(tmp_path / "curve.png")]) == 0
    assert (tmp_path / "curve.png").stat().st_size > 0


def test_an_iteration_is_the_gymnasium_loops_step_body(run):
    """Agent 0's transitions, fed from the host through `agent.step` (the gymnasium loop's one
    compiled call) to a fresh agent of the same seed, give back the same actions and the same
    weights, optimizer state and counters bit for bit: the program runs that body, not a copy."""
    trainer, _, _ = run
    agent = trainer.agents[0]
    replay, num_envs = agent.replay, trainer.num_envs
    rows = replay.size
    obs = replay.obs.numpy()[:rows].reshape(-1, num_envs, 4)
    action = replay.action.numpy()[:rows].reshape(-1, num_envs)
    reward = replay.reward.numpy()[:rows].reshape(-1, num_envs)
    next_obs = replay.next_obs.numpy()[:rows].reshape(-1, num_envs, 4)
    terminated = replay.terminated.numpy()[:rows].reshape(-1, num_envs)
    host = DQN(4, 2, SMALL, seed=agent.seed, num_envs=num_envs)
    host.sync_target()
    np.testing.assert_array_equal(host.begin(obs[0]).numpy(), action[0])
    for i in range(obs.shape[0]):
        acting = obs[i + 1] if i + 1 < obs.shape[0] else trainer.seed_runs[0].envs.obs.numpy()
        chosen = host.step(next_obs[i], reward[i], terminated[i], acting).numpy()
        if i + 1 < obs.shape[0]:
            np.testing.assert_array_equal(chosen, action[i + 1])
    np.testing.assert_array_equal(chosen, agent.last_action.numpy())
    for name in ("online", "target", "optimizer", "schedule"):
        mine, theirs = getattr(host, name).variables, getattr(agent, name).variables
        assert len(mine) == len(theirs) > 0
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_an_interrupted_on_device_run_resumes_bit_for_bit(tmp_path, capsys):
    """SIGINT after the first call: a checkpoint of the whole program and the host's state;
    --resume then ends where the uninterrupted run ends, every variable bit for bit, with
    the same evaluations. Two seeds, so the checkpoint is the whole program's."""
    config = SMALL.replace(total_steps=600, learning_starts=50, eval_interval=200, eval_episodes=2,
                           log_interval=100, num_envs=4, iterations_per_call=25)
    kwargs = dict(seed=7, num_seeds=2, checkpoint_interval=100)
    straight = ondevice.train_on_device("CartPole-v1", config, logdir=str(tmp_path / "straight"),
                                        log=lambda line: None, **kwargs)
    lines = []

    def interrupt_at_the_first_progress_line(line):
        lines.append(line)
        if line.startswith("step ") and sum(x.startswith("step ") for x in lines) == 1:
            os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as stop:
        ondevice.train_on_device("CartPole-v1", config, logdir=str(tmp_path / "cut"),
                                 log=interrupt_at_the_first_progress_line, **kwargs)
    assert stop.value.step == 100 and stop.value.checkpoint_path.endswith("ondevice/step-00000100")
    # Each agent is already a run directory (its weights at step 100) that eval reads.
    assert cli.main(["eval", str(tmp_path / "cut" / "seed8")]) == 0
    assert "CartPole-v1 at step 100: mean return" in capsys.readouterr().out
    resumed = ondevice.resume(str(tmp_path / "cut"), log=lines.append)
    after = lines[next(i for i, line in enumerate(lines) if line.startswith("rawdqn: resuming on-device DQN "
                                                                              "on CartPole-v1 at step 100 of 600")):]
    # It continues from step 100 (a fresh program of the same seed would redo steps 0–100 and end the same).
    assert [int(line.split()[1].split("/")[0]) for line in after if line.startswith("step ")] == [200, 300, 400, 500, 600]
    assert resumed.steps == straight.steps == 600
    assert resumed.eval_means == straight.eval_means and resumed.final_eval_means == straight.final_eval_means
    mine, theirs = resumed.trainer.variables, straight.trainer.variables
    assert len(mine) == len(theirs) > 50
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    evaluations = lambda result: [(row["step"], row["greedy_return"]) for row in result.history  # noqa: E731
                                  if "greedy_return" in row]
    assert evaluations(resumed) == evaluations(straight) and len(evaluations(straight)) == 3
    # episodes.jsonl, as the gymnasium loop writes it: the step after each episode's iteration,
    # its return and length; the same whether or not the run was cut, lengths counted across calls.
    for seed in ("seed7", "seed8"):
        rows = [json.loads(line) for line in (tmp_path / "straight" / seed / "episodes.jsonl").read_text().splitlines()]
        assert rows == [json.loads(line) for line in (tmp_path / "cut" / seed / "episodes.jsonl").read_text().splitlines()]
        assert len(rows) > 10 and [row["step"] for row in rows] == sorted(row["step"] for row in rows)
        for row in rows:   # CartPole: reward 1 per step
            assert row["return"] == row["length"] and 0 < row["length"] <= 500
            assert row["step"] % 4 == 0 and row["length"] <= row["step"] // 4 <= 600 // 4
        # TensorBoard, appended to at each checkpoint and cut short by the resume where the run was
        # cut: each episode once, the same points as the uninterrupted run's.
        cut, whole = (summary.read_scalars(str(tmp_path / run / seed)) for run in ("cut", "straight"))
        assert sorted(cut["episode/return"]) == sorted((row["step"], row["return"]) for row in rows)
        for tag in ("episode/return", "episode/length", "eval/eval_mean", "train/loss"):
            assert sorted(cut[tag]) == sorted(whole[tag]) and len(whole[tag]) > 3, tag
        # The run directory's checkpoint is the run's last step, whatever step its last episode ended at.
        assert checkpoint.latest(str(tmp_path / "cut" / seed)).endswith("step-00000600")
    # The progress line's rate lands on the call's row, not on the selection row written after it.
    assert all(("steps_per_second" in row) == ("loss" in row) for row in straight.history if "step" in row)
    # Each agent's run directory is one agent of the run: it resumes as the whole run.
    assert cli.main(["train", "--resume", str(tmp_path / "cut" / "seed8"), "--steps", "800"]) == 2
    assert f"resume the whole run: rawdqn train --resume {tmp_path / 'cut'}" in capsys.readouterr().err


def test_a_checkpoint_that_keeps_the_seed_runs_under_their_older_name_resumes_the_same(tmp_path):
    """compat.ondevice_roots: a file that keeps each seed's run under trainer/lanes/i resumes
    to the same variables, bit for bit, as one that keeps it under trainer/seed_runs/i."""
    config = SMALL.replace(total_steps=200, learning_starts=50, eval_episodes=1, num_envs=4,
                           iterations_per_call=25)
    first = ondevice.train_on_device("CartPole-v1", config, seed=3, num_seeds=2, logdir=str(tmp_path / "today"),
                                     log=lambda line: None)
    shutil.copytree(tmp_path / "today", tmp_path / "older")
    prefix = str(tmp_path / "older" / "ondevice" / "step-00000200" / "variables")
    older = tf.Module()
    older.lanes = first.trainer.seed_runs   # the trainer ends as its last checkpoint saved it
    for stale in glob.glob(prefix + ".*"):
        os.remove(stale)
    tf.train.Checkpoint(trainer=older).write(prefix)
    assert any(name.startswith("trainer/lanes/1/agent/") for name, _ in tf.train.list_variables(prefix))
    runs = [ondevice.resume(str(tmp_path / name), log=lambda line: None, total_steps=300) for name in ("today", "older")]
    assert runs[0].steps == runs[1].steps == 300
    for a, b in zip(runs[0].trainer.variables, runs[1].trainer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


def test_sigterm_stops_an_on_device_run_with_a_checkpoint_that_the_cli_resumes(tmp_path, capsys):
    """`rawdqn train --on-device` as a user runs it: SIGTERM → exit 143 and one line naming the
    checkpoint and the resume command; `--resume LOGDIR --steps N` continues from that step."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "rawdqn", "train", "--on-device", "--steps", "10000000", "--num-envs", "4",
         "--iterations-per-call", "25", "--hidden", "8", "--batch-size", "16", "--learning-starts", "50",
         "--eval-interval", "0", "--log-interval", "100", "--logdir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.startswith("step ") and "/10,000,000" in line:
                break
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert err.startswith("rawdqn: stopped by SIGTERM at step ") and len(err.strip().splitlines()) == 1, err
    assert f"continue with: rawdqn train --resume {run_dir}" in err
    stopped = int(err.split(" at step ")[1].split(";")[0].replace(",", ""))
    assert stopped > 0 and stopped % 4 == 0
    assert cli.main(["train", "--resume", str(run_dir), "--steps", str(stopped + 200), "--eval-episodes", "2"]) == 2
    assert "only --steps may change (got --eval-episodes)" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(run_dir), "--steps", str(stopped + 200)]) == 0
    out = capsys.readouterr().out
    assert f"resuming on-device DQN on CartPole-v1 at step {stopped:,} of {stopped + 200:,}" in out
    # Fewer --steps do not move ε: its decay stays the 10M-step run's.
    started = ondevice.preset("CartPole-v1").replace(total_steps=10_000_000)
    assert json.loads((run_dir / "config.json").read_text())["exploration_steps"] == \
        math.ceil(started.exploration_decay_steps)
    assert cli.main(["eval", str(run_dir)]) == 0
    assert f"at step {stopped + 200:,}: mean return" in capsys.readouterr().out
