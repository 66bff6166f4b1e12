"""envpool as an environment source: `rawdqn train --env-source envpool`.

envpool resets an ended environment on its next step; rawdqn's adapter resets it in the
step that ends it, so the loop sees the same batches as from gymnasium. Checked here
against gymnasium's CartPole dynamics (an independent implementation): every replay row
is one true transition — its next observation the physics of its observation and action,
terminated exactly where the pole fell, truncated rows holding the true final
observation — and no row starts from an observation that was never acted on.
"""
import gymnasium as gym
import numpy as np
import pytest

from rawdqn import gym_env, schedule
from rawdqn.config import DQNConfig
from rawdqn.train import Trainer, resume, train
from test_checkpoint import quiet

LIMIT = 15   # a short time limit, so that episodes are truncated as well as terminated
CONFIG = DQNConfig(total_steps=240, num_envs=3, hidden=(8,), batch_size=8, replay_capacity=300,
                   learning_starts=30, train_frequency=2, gradient_steps=1, target_update_interval=20,
                   exploration_fraction=0.5, eval_episodes=1, eval_interval=0, keep_best=False,
                   log_interval=60, mode="function")


def needs_envpool():
    return pytest.importorskip("envpool", reason="envpool is not installed (pip install \"rawdqn[envpool]\")")


def cartpole_step(obs, action):
    """gymnasium's CartPole from state `obs` (float64) after `action`: next obs, terminated."""
    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=0)
    env.state = np.asarray(obs, np.float64)
    next_obs, _, terminated, _, _ = env.step(int(action))
    return next_obs, terminated


def test_every_transition_is_cartpole_physics_and_no_reset_step_is_stored():
    needs_envpool()
    config = CONFIG.replace(learning_starts=0)
    records = []
    trainer = Trainer("CartPole-v1", config, seed=3, log=quiet, env_source="envpool",
                      env_kwargs={"max_episode_steps": LIMIT},
                      on_step=lambda trainer, acted, taken, step: records.append((acted, taken, step)))
    result = trainer.run()
    replay, n = result.agent.replay, config.num_envs
    assert replay.size == config.total_steps
    length, truncations, ended_episodes = [0] * n, 0, []
    for t, (acted, taken, step) in enumerate(records):
        rows = slice(t * n, (t + 1) * n)   # the replay writes env 0 … N−1 per step
        np.testing.assert_array_equal(replay.obs[rows].numpy(), acted)
        np.testing.assert_array_equal(replay.action[rows].numpy(), taken)
        np.testing.assert_array_equal(replay.next_obs[rows].numpy(), step.next_obs)
        np.testing.assert_array_equal(replay.terminated[rows].numpy(), step.terminated.astype(np.float32))
        for i in range(n):
            length[i] += 1
            expected, fell = cartpole_step(acted[i], taken[i])
            # envpool's state is float64 inside; the obs acted on is its float32 rounding.
            np.testing.assert_allclose(step.next_obs[i], expected, rtol=0, atol=2e-5)
            assert step.terminated[i] == fell and step.reward[i] == 1.0
            assert step.truncated[i] == (length[i] == LIMIT and not fell)
            if step.terminated[i] or step.truncated[i]:
                truncations += bool(step.truncated[i])
                ended_episodes.append(length[i])
                length[i] = 0
                # What is acted on next is a fresh episode's first observation, not the final one.
                assert np.all(np.abs(step.obs[i]) <= 0.05) and not np.array_equal(step.obs[i], step.next_obs[i])
            else:
                np.testing.assert_array_equal(step.obs[i], step.next_obs[i])
        if t + 1 < len(records):
            np.testing.assert_array_equal(records[t + 1][0], step.obs)
    assert truncations > 0 and len(ended_episodes) > truncations   # both kinds of ending exercised
    assert sorted(trainer.episode_lengths) == sorted(ended_episodes)
    assert result.agent.schedule.updates_done.numpy() == schedule.updates_owed(config, config.total_steps)


def test_an_envpool_run_resumes_with_new_episodes_and_keeps_everything_else(tmp_path):
    needs_envpool()
    first = train("CartPole-v1", CONFIG.replace(total_steps=120), seed=1, logdir=str(tmp_path), log=quiet,
                  env_source="envpool")
    before = first.agent.replay.rows[:120].numpy()
    lines = []
    result = resume(str(tmp_path), log=lines.append, total_steps=240)
    assert any("envpool cannot save its environments' state" in line for line in lines)
    np.testing.assert_array_equal(result.agent.replay.rows[:120].numpy(), before)   # the replay kept
    assert result.agent.replay.size == 240
    # The resumed run's first observations are new episodes' (every |component| ≤ 0.05), not step 120's.
    assert np.all(np.abs(result.agent.replay.obs[120:123].numpy()) <= 0.05)
    assert result.agent.schedule.updates_done.numpy() == schedule.updates_owed(CONFIG, 240)


def test_envpool_ids_gymnasium_cannot_evaluate_are_refused_in_one_line():
    needs_envpool()
    with pytest.raises(gym_env.EnvError, match="Pong-v5 is an envpool id that gymnasium does not register"):
        gym_env.make_envs("envpool", "Pong-v5", 1, 0)
    with pytest.raises(gym_env.EnvError, match="envpool has no environment 'NoSuchEnv-v0'"):
        gym_env.make_envs("envpool", "NoSuchEnv-v0", 1, 0)


def test_without_envpool_the_source_is_a_one_line_error():
    try:
        import envpool  # noqa: F401
        pytest.skip("envpool is installed")
    except ImportError:
        pass
    with pytest.raises(gym_env.EnvError, match=r"needs the envpool package: pip install envpool"):
        gym_env.make_envs("envpool", "CartPole-v1", 2, 0)


def test_the_command_line_refuses_env_source_with_on_device_or_resume(capsys):
    from cli_helpers import assert_usage_error, cli
    assert_usage_error(cli(capsys, "train", "--env-source", "envpool", "--on-device"),
                       "--env-source and --on-device exclude each other")
    assert_usage_error(cli(capsys, "train", "--env-source", "envpool", "--resume", "somewhere"),
                       "--env-source is kept by the run --resume continues")


def test_envpool_atari_frames_are_gymnasiums_and_a_lost_life_cuts_only_the_target():
    """ALE/Breakout-v5 from envpool beside gymnasium's AtariPreprocessing (the same 1 no-op, no
    sticky actions): the same 84×84 frames, rewards and terminations step for step; with
    terminal_on_life_loss each lost life is flagged for the target while the episode runs on,
    Breakout's five lives making one episode: four flags inside it, the fifth loss ends it."""
    needs_envpool()
    pytest.importorskip("ale_py", reason="ale-py is not installed (pip install \"rawdqn[atari]\")")
    from rawdqn.envpool_envs import EnvpoolEnvs
    options = {"noop_max": 1, "repeat_action_probability": 0.0}
    pool = EnvpoolEnvs("ALE/Breakout-v5", 1, 0, options, terminal_on_life_loss=True)
    env = gym_env.make_env("ALE/Breakout-v5", **options)
    obs, _ = pool.reset()
    frame, info = env.reset(seed=0)
    assert pool.spec.frame_shape == (84, 84) and pool.spec.num_actions == 4
    np.testing.assert_array_equal(obs[0], frame)
    rng, lives, lost, terminated = np.random.default_rng(0), info["lives"], 0, False
    for _ in range(5_000):
        action = int(rng.integers(4))
        step = pool.step([action])
        frame, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_array_equal(step.next_obs[0], frame)
        assert (step.reward[0], step.terminated[0], step.truncated[0]) == (reward, terminated, truncated)
        assert step.life_lost[0] == (info["lives"] < lives and not terminated)
        assert step.no_bootstrap[0] == (terminated or step.life_lost[0])
        lost, lives = lost + int(step.life_lost[0]), info["lives"]
        if terminated:
            break
    assert terminated and lost == 4
    pool.close()


def test_envpool_atari_options_it_cannot_follow_are_one_line_errors():
    needs_envpool()
    from rawdqn.envpool_envs import EnvpoolEnvs
    with pytest.raises(gym_env.EnvError, match="at least one no-op at reset; --noop-max 0 needs"):
        EnvpoolEnvs("ALE/Pong-v5", 1, 0, {"noop_max": 0})
    with pytest.raises(gym_env.EnvError, match="--terminal-on-life-loss needs a game with lives"):
        EnvpoolEnvs("CartPole-v1", 1, 0, terminal_on_life_loss=True)
