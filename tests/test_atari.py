"""Atari through rawdqn: the preprocessed frames against raw ALE screens, and a Pong smoke run.
Needs the `atari` extra (ale-py, which ships the ROMs, and OpenCV); skips without it."""
import json

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ale_py", reason='Atari is an extra: pip install "rawdqn[atari]"')
cv2 = pytest.importorskip("cv2", reason='Atari is an extra: pip install "rawdqn[atari]"')

from rawdqn.config import preset   # noqa: E402
from rawdqn.gym_env import ATARI_PREPROCESSING, env_options, make_env   # noqa: E402
from cli_helpers import cli   # noqa: E402

def test_each_frame_is_the_max_of_the_last_two_raw_screens_resized_to_84x84():
    """Independently of gymnasium's wrapper: a twin raw emulator (frameskip 1) restored to the
    same state, RNG included (sticky actions draw from it), plays each action 4 times; the
    frame rawdqn sees is cv2.resize(max(screen_3, screen_4), 84×84, INTER_AREA) in grayscale."""
    ours = make_env("ALE/Pong-v5")
    ours.reset(seed=1)
    twin = gym.make("ALE/Pong-v5", frameskip=1)
    twin.reset(seed=5)
    emulator, twin_emulator = ours.unwrapped.ale, twin.unwrapped.ale
    rng = np.random.default_rng(0)
    skip = ATARI_PREPROCESSING["frame_skip"]
    for _ in range(120):
        twin_emulator.restoreState(emulator.cloneState(include_rng=True))
        action = int(rng.integers(ours.action_space.n))
        frame, _, terminated, truncated, _ = ours.step(action)
        screens = []
        for _ in range(skip):
            twin.step(action)
            screens.append(twin_emulator.getScreenGrayscale())
        expected = cv2.resize(np.maximum(screens[-2], screens[-1]), (84, 84), interpolation=cv2.INTER_AREA)
        assert frame.shape == (84, 84) and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, expected)
        assert not (terminated or truncated)


@pytest.mark.parametrize("name, sticky, noops", [("nature", 0.0, 30), ("dopamine", 0.25, 0)])
def test_the_presets_reach_the_emulator(name, sticky, noops):
    env = make_env("ALE/Breakout-v5", **env_options("ALE/Breakout-v5", preset("ALE/Breakout-v5", name=name)))
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(sticky)
    assert env.noop_max == noops


def test_a_pong_smoke_run_trains_evaluates_and_records_the_nature_network(tmp_path, capsys):
    # ALE ids start from the Nature DQN's preset; only its sizes are cut down here.
    code, out, err = cli(capsys, "train", "--env", "ALE/Pong-v5", "--steps", 1_200, "--learning-starts", 800,
                         "--replay-capacity", 2_000, "--eval-episodes", 1, "--logdir", tmp_path / "run")
    assert code == 0, err
    assert "training DQN on ALE/Pong-v5" in out and "evaluation: mean return" in out
    returns = [json.loads(line)["return"] for line in open(tmp_path / "run" / "episodes.jsonl")]
    assert all(-21 <= value <= 21 for value in returns)   # unclipped scores: Pong's range
    with open(tmp_path / "run" / "config.json") as f:
        recorded = json.load(f)
    assert recorded["convs"] == [[32, 8, 4], [64, 4, 2], [64, 3, 1]] and recorded["history"] == 4
    assert recorded["optimizer"] == "rmsprop_centered" and recorded["eval_epsilon"] == 0.05
    assert recorded["sticky_actions"] == 0.0 and recorded["reward_clip"] == 1.0


def test_a_saved_atari_env_plays_on_exactly_as_the_original():
    """The emulator (RAM, frame counters, the sticky-action RNG), the wrapper's buffers and the
    no-op RNG go through a checkpoint's JSON; both copies then see the same frames and rewards."""
    from rawdqn import checkpoint
    original = make_env("ALE/Breakout-v5")   # v5: sticky actions 0.25, so the RNG matters
    original.reset(seed=3)
    rng = np.random.default_rng(1)
    for _ in range(40):
        original.step(int(rng.integers(original.action_space.n)))
    saved = json.loads(json.dumps(checkpoint.env_state(original)))
    assert saved["not_saved"] == []
    copy = make_env("ALE/Breakout-v5")
    copy.reset(seed=99)
    checkpoint.set_env_state(copy, saved)
    for _ in range(300):
        action = int(rng.integers(original.action_space.n))
        ours, theirs = original.step(action), copy.step(action)
        np.testing.assert_array_equal(ours[0], theirs[0])
        assert ours[1:4] == theirs[1:4]
        if ours[2] or ours[3]:
            np.testing.assert_array_equal(original.reset()[0], copy.reset()[0])   # the no-op draws too


def test_an_atari_run_resumes_bit_for_bit(tmp_path):
    # A small network over Pong's real frames: the emulator resumes mid-game, so the resumed run's
    # frames, weights and returns are the uninterrupted run's.
    from rawdqn import train as training
    config = preset("ALE/Pong-v5").replace(convs=((4, 8, 4),), hidden=(8,), replay_capacity=500, learning_starts=200,
                                           total_steps=500, target_update_interval=100, eval_episodes=1)
    quiet = dict(log=lambda *a: None)
    whole = training.train("ALE/Pong-v5", config, seed=2, **quiet)
    run_dir = str(tmp_path / "run")
    training.train("ALE/Pong-v5", config.replace(total_steps=250), seed=2, logdir=run_dir, **quiet)
    resumed = training.resume(run_dir, total_steps=500, **quiet)
    np.testing.assert_array_equal(whole.agent.replay.frames.numpy(), resumed.agent.replay.frames.numpy())
    np.testing.assert_array_equal(whole.agent.online.theta.numpy(), resumed.agent.online.theta.numpy())
    assert whole.episode_returns == resumed.episode_returns


@pytest.mark.parametrize("num_envs", [1, 2])
def test_a_lost_life_is_terminal_for_the_target_while_the_game_goes_on(num_envs):
    # Breakout starts with 5 lives: a game that ends has lost 4 of them before its last one ends it.
    from rawdqn.gym_env import GymnasiumEnvs
    envs = GymnasiumEnvs("ALE/Breakout-v5", num_envs, seed=4, env_kwargs={"repeat_action_probability": 0.0},
                         terminal_on_life_loss=True)
    envs.reset()
    rng = np.random.default_rng(0)
    losses_this_game, finished_games = np.zeros(num_envs, int), 0
    for _ in range(3_000):
        lives_before = envs.lives.copy()
        env_step = envs.step(rng.integers(envs.spec.num_actions, size=num_envs))
        assert not np.any(env_step.life_lost & env_step.ended)
        running = ~env_step.ended   # the emulator's own count, read apart from the wrapper
        lives = np.array([env.unwrapped.ale.lives() for env in envs.envs])
        assert np.array_equal(env_step.life_lost[running], (lives < lives_before)[running])
        losses_this_game += env_step.life_lost
        for i in np.flatnonzero(env_step.terminated):
            assert losses_this_game[i] == 4
            losses_this_game[i], finished_games = 0, finished_games + 1
    assert finished_games >= num_envs


def test_the_replay_stores_a_lost_life_as_terminal(tmp_path):
    from rawdqn.train import Trainer
    config = preset("ALE/Breakout-v5").replace(convs=((4, 8, 4),), hidden=(8,), replay_capacity=2_000,
                                               learning_starts=10_000, total_steps=1_500, eval_episodes=1)
    no_bootstrap = []
    trainer = Trainer("ALE/Breakout-v5", config, seed=1, log=lambda *a: None,
                      on_step=lambda trainer, obs, actions, env_step: no_bootstrap.append(env_step.no_bootstrap[0]))
    trainer.run()
    stored = trainer.agent.replay.terminated.numpy()[0]   # one slot per step: nothing overwritten yet
    assert sum(no_bootstrap) > len(trainer.episode_returns)   # lost lives, not only game overs
    assert stored.sum() == sum(no_bootstrap)
