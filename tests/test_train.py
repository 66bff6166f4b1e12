import json

import gymnasium as gym
import numpy as np
import pytest

from rawdqn.config import DQNConfig
from rawdqn.gym_env import EnvError
from rawdqn.train import train


class CountingEnv(gym.Env):
    """obs = [steps so far in the episode]; reset gives [0]. Terminates at `terminate_at` if set."""

    observation_space = gym.spaces.Box(0.0, 100.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, terminate_at=None, reward=1.0):
        self.terminate_at, self.reward, self.t = terminate_at, reward, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        return np.array([float(self.t)], np.float32), self.reward, terminated, False, {}


gym.register("rawdqn-test/Truncated-v0", entry_point=CountingEnv, max_episode_steps=3)
gym.register("rawdqn-test/Terminated-v0", entry_point=lambda: CountingEnv(terminate_at=3),
             max_episode_steps=10)
gym.register("rawdqn-test/NaNReward-v0", entry_point=lambda: CountingEnv(reward=float("nan")))

NO_LEARNING = DQNConfig(total_steps=9, hidden=(4,), batch_size=1, replay_capacity=16,
                        learning_starts=9, eval_episodes=1, log_interval=9)


def stored_transitions(agent):
    n = agent.replay.size
    return (agent.replay.obs.numpy()[:n, 0], agent.replay.next_obs.numpy()[:n, 0],
            agent.replay.terminated.numpy()[:n])


def test_truncation_bootstraps_from_the_true_final_observation():
    # Time limit 3: every third transition is (2 → 3) with terminated = 0; the reset obs [0]
    # must never appear as a next_obs.
    result = train("rawdqn-test/Truncated-v0", NO_LEARNING, log=lambda _: None)
    obs, next_obs, terminated = stored_transitions(result.agent)
    np.testing.assert_array_equal(obs, [0, 1, 2] * 3)
    np.testing.assert_array_equal(next_obs, [1, 2, 3] * 3)
    np.testing.assert_array_equal(terminated, [0] * 9)
    assert result.episode_returns == [3.0, 3.0, 3.0]


def test_termination_is_stored_as_terminated():
    result = train("rawdqn-test/Terminated-v0", NO_LEARNING, log=lambda _: None)
    obs, next_obs, terminated = stored_transitions(result.agent)
    np.testing.assert_array_equal(next_obs, [1, 2, 3] * 3)
    np.testing.assert_array_equal(terminated, [0, 0, 1] * 3)


def small_cartpole(**overrides):
    return DQNConfig(total_steps=1_200, hidden=(32,), batch_size=32, replay_capacity=2_000,
                     learning_starts=200, train_frequency=4, gradient_steps=2,
                     target_update_interval=100, eval_episodes=2, log_interval=400).replace(**overrides)


def test_training_smoke_and_logdir(tmp_path):
    lines = []
    result = train("CartPole-v1", small_cartpole(eval_interval=600), seed=1, logdir=str(tmp_path),
                   log=lines.append)
    assert np.isfinite(result.eval_mean) and result.eval_mean >= 8  # CartPole's shortest episode
    assert sum(len(str(line)) > 0 for line in lines) >= 4
    assert any("evaluation: mean return" in line for line in lines)
    progress = [row for row in result.history if "loss" in row]
    assert [row["step"] for row in progress] == [400, 800, 1200]
    assert all(np.isfinite(row["loss"]) for row in progress)
    assert json.loads((tmp_path / "config.json").read_text())["total_steps"] == 1_200
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == len(result.history)


def test_same_seed_same_result_and_different_seed_differs():
    config = small_cartpole(total_steps=600, eval_episodes=1)
    runs = [train("CartPole-v1", config, seed=seed, log=lambda _: None) for seed in (4, 4, 5)]
    for a, b in zip(runs[0].agent.online.variables_in_order, runs[1].agent.online.variables_in_order):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert runs[0].episode_returns == runs[1].episode_returns
    assert runs[0].episode_returns != runs[2].episode_returns


@pytest.mark.filterwarnings("ignore:.*reward is a NaN:UserWarning")  # gymnasium's checker, expected here
def test_bad_environments_are_usage_errors():
    with pytest.raises(EnvError, match="Box action space"):
        train("Pendulum-v1", DQNConfig(total_steps=10), log=lambda _: None)
    with pytest.raises(EnvError, match="unknown environment"):
        train("NoSuchEnv-v0", DQNConfig(total_steps=10), log=lambda _: None)
    with pytest.raises(EnvError, match="non-finite reward"):
        train("rawdqn-test/NaNReward-v0", NO_LEARNING, log=lambda _: None)


def test_keep_best_ends_with_the_best_evaluated_weights(monkeypatch):
    # Scripted evaluations: step 200 → 10, step 400 → 30 (the best), final weights → 20,
    # then the kept weights on fresh episodes → 25. The run must end with step 400's weights,
    # report 25, and evaluate the kept weights on other episodes than those it chose by.
    import rawdqn.gym_run as gym_run_module
    scripted = iter([10.0, 30.0, 20.0, 25.0])
    seen = []

    def fake_evaluate(agent, env_id, episodes, seed, spec=None, env_kwargs=None, config=None):
        value = next(scripted)
        seen.append((value, seed, [v.numpy().copy() for v in agent.online.variables_in_order]))
        return value, 0.0

    monkeypatch.setattr(gym_run_module, "evaluate", fake_evaluate)
    lines = []
    config = small_cartpole(total_steps=600, eval_interval=200, keep_best=True)
    result = train("CartPole-v1", config, seed=2, log=lines.append)
    assert result.eval_mean == 25.0
    assert any("keeping the weights of step 400" in line for line in lines)
    best_weights = seen[1][2]
    final_weights = seen[2][2]
    assert any(not np.array_equal(a, b) for a, b in zip(best_weights, final_weights))
    for kept, expected in zip(result.agent.online.variables_in_order, best_weights):
        np.testing.assert_array_equal(kept.numpy(), expected)
    assert seen[3][1] != seen[1][1]  # fresh episodes for the reported evaluation
    for kept, expected in zip(seen[3][2], best_weights):
        np.testing.assert_array_equal(kept, expected)


def test_keep_best_needs_periodic_evaluation():
    from rawdqn.config import ConfigError
    with pytest.raises(ConfigError, match="keep_best needs periodic evaluations"):
        DQNConfig(keep_best=True, eval_interval=0).validate()


def test_evaluation_ends_episodes_of_envs_without_a_time_limit():
    # CliffWalking has no time limit; a zero network's greedy action 0 (up) at the start
    # never moves, so without a cap this would loop forever: −1 per step for 1,000 steps.
    from rawdqn.agent import DQN
    from rawdqn.evaluation import EVAL_STEP_LIMIT, evaluate
    agent = DQN(48, 4, DQNConfig(hidden=(), batch_size=1, replay_capacity=4), discrete_obs=True,
                use_bias=False, initializer="zeros")
    mean, std = evaluate(agent, "CliffWalking-v1", episodes=2, seed=0)
    assert (mean, std) == (-float(EVAL_STEP_LIMIT), 0.0)
