"""Gymnasium vector envs through the one loop: `--num-envs N`.

The replay is checked against N plain `gym.make` environments stepped by hand with the
actions the agent took (an independent computation of every transition, the true final
observation of truncated episodes included); one environment through the vector path
equals the single-environment path bit for bit; an interrupted N-env run resumes exactly.
"""
import gymnasium as gym
import numpy as np
import pytest

from rawdqn import schedule
from rawdqn.config import DQNConfig
from rawdqn.train import Trainer, TrainingInterrupted, resume, train
from test_checkpoint import interrupt_at, quiet, state_of

# A short time limit, so that episodes are truncated as well as terminated within the test.
gym.register("rawdqn-test/CartPole-limit15-v1", entry_point="gymnasium.envs.classic_control:CartPoleEnv",
             max_episode_steps=15)

CONFIG = DQNConfig(total_steps=240, num_envs=3, hidden=(8,), batch_size=8, replay_capacity=300,
                   learning_starts=30, train_frequency=2, gradient_steps=1, target_update_interval=20,
                   exploration_fraction=0.5, eval_episodes=1, log_interval=60, mode="function")


def replay_rows(agent):
    replay, count = agent.replay, agent.replay.size
    return {name: getattr(replay, name)[:count].numpy()
            for name in ("obs", "action", "reward", "next_obs", "terminated")}


def test_every_transition_matches_plain_environments_stepped_by_hand():
    config = CONFIG.replace(learning_starts=0)   # learning changes the actions: they come from the replay
    result = Trainer("rawdqn-test/CartPole-limit15-v1", config, seed=5, log=quiet).run()
    rows = replay_rows(result.agent)
    n = config.num_envs
    assert len(rows["action"]) == config.total_steps
    envs = [gym.make("rawdqn-test/CartPole-limit15-v1") for _ in range(n)]
    obs = [env.reset(seed=5 + i)[0] for i, env in enumerate(envs)]
    returns, episode, truncations = [], [0.0] * n, 0
    for t in range(config.total_steps // n):
        for i, env in enumerate(envs):
            row = t * n + i                                 # the replay writes env 0 … N−1 per step
            np.testing.assert_array_equal(rows["obs"][row], obs[i])
            next_obs, reward, terminated, truncated, _ = env.step(int(rows["action"][row]))
            np.testing.assert_array_equal(rows["next_obs"][row], next_obs)   # the true final one
            assert rows["reward"][row] == reward and rows["terminated"][row] == float(terminated)
            episode[i] += reward
            obs[i] = next_obs
            if terminated or truncated:
                truncations += truncated and not terminated
                returns.append(episode[i])
                episode[i] = 0.0
                obs[i] = env.reset()[0]
    assert truncations > 0   # the case the autoreset mode gets wrong, exercised
    assert sorted(result.episode_returns) == sorted(returns)
    # n steps at a time: the updates the schedule owes for the steps done, no more, no fewer.
    assert result.agent.schedule.updates_done.numpy() == schedule.updates_owed(config, config.total_steps)


def test_one_environment_through_the_vector_path_equals_the_single_environment_path():
    config = CONFIG.replace(num_envs=1, total_steps=150)
    single = Trainer("rawdqn-test/CartPole-limit15-v1", config, seed=2, log=quiet, vectorize=False).run()
    vector = Trainer("rawdqn-test/CartPole-limit15-v1", config, seed=2, log=quiet, vectorize=True).run()
    assert single.agent.schedule.updates_done.numpy() > 0
    expected, actual = state_of(single.agent), state_of(vector.agent)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert vector.episode_returns == single.episode_returns


def test_a_run_ends_at_the_first_multiple_of_num_envs_past_total_steps():
    result = train("CartPole-v1", CONFIG.replace(total_steps=100, num_envs=3), seed=0, log=quiet)
    assert result.agent.schedule.step.numpy() == 102


def test_an_interrupted_vector_run_resumes_bit_for_bit(tmp_path):
    straight = train("rawdqn-test/CartPole-limit15-v1", CONFIG, seed=9, log=quiet)
    run_dir = str(tmp_path / "run")
    with pytest.raises(TrainingInterrupted) as stopped:
        train("rawdqn-test/CartPole-limit15-v1", CONFIG, seed=9, logdir=run_dir, log=interrupt_at(120))
    assert stopped.value.step == 120
    resumed = resume(run_dir, log=quiet)
    expected, actual = state_of(straight.agent), state_of(resumed.agent)
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
    assert resumed.episode_returns == straight.episode_returns


def test_num_envs_cannot_change_on_resume(tmp_path):
    from rawdqn.checkpoint import CheckpointError
    run_dir = str(tmp_path / "run")
    train("CartPole-v1", CONFIG.replace(total_steps=60), seed=0, logdir=run_dir, log=quiet)
    with pytest.raises(CheckpointError, match="--num-envs 2 differs from the checkpoint's 3"):
        resume(run_dir, log=quiet, total_steps=120, num_envs=2)


def test_on_step_sees_each_step_the_observations_acted_on_and_the_actions_taken():
    """The hook `rawdqn verify` records visit counts from: its (obs, actions, env_step) of each
    step are the replay's rows of that step, and the step count has already advanced."""
    seen = []
    trainer = Trainer("rawdqn-test/CartPole-limit15-v1", CONFIG, seed=4, log=quiet,
                      on_step=lambda t, obs, actions, step: seen.append((t.step, obs.copy(), actions.copy(),
                                                                         step.next_obs.copy(), step.reward.copy())))
    trainer.run()
    rows, num_envs = replay_rows(trainer.agent), CONFIG.num_envs
    assert [step for step, *_ in seen] == list(range(num_envs, CONFIG.total_steps + 1, num_envs))
    np.testing.assert_array_equal(np.concatenate([obs for _, obs, *_ in seen]), rows["obs"])
    np.testing.assert_array_equal(np.concatenate([a for _, _, a, *_ in seen]), rows["action"])
    np.testing.assert_array_equal(np.concatenate([s for *_, s, _ in seen]), rows["next_obs"])
    np.testing.assert_array_equal(np.concatenate([r for *_, r in seen]), rows["reward"])
