"""n-step returns from the replay (--n-step N) against NumPy references.

The replay assembles each window at sample time (bellman.n_step_window); the reference
(reference.NStepReplayReference) rebuilds every sampleable window from each env's own
list of transitions, so the ring's stride and wrap-around are checked, not assumed.
"""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import bellman, reference
from rawdqn.agent import DQN
from rawdqn.config import ConfigError, DQNConfig
from rawdqn.replay import ReplayBuffer


@pytest.mark.parametrize("seed", range(4))
def test_n_step_window_matches_the_walk_of_the_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    rewards = rng.normal(size=(50, n))
    terminated = rng.random((50, n)) < 0.2
    ended = terminated | (rng.random((50, n)) < 0.2)
    got = bellman.n_step_window(tf.constant(rewards), tf.constant(terminated, tf.float64),
                                tf.constant(ended, tf.float64), 0.9)
    expected = reference.n_step_window(rewards, terminated, ended, 0.9)
    for value, want in zip(got, expected):
        np.testing.assert_allclose(value.numpy(), want, rtol=0, atol=1e-12)


def fill(replay, ref, rng, num_envs, steps, step_offset=0):
    """`steps` steps of `num_envs` envs; obs = [env, t, noise] so a sample names its transition."""
    for t in range(step_offset, step_offset + steps):
        obs = np.stack([np.arange(num_envs), np.full(num_envs, t), rng.normal(size=num_envs)], 1)
        next_obs = obs + np.array([0.0, 0.5, 1.0])
        action = rng.integers(0, 3, num_envs)
        reward = rng.normal(size=num_envs)
        terminated = rng.random(num_envs) < 0.15
        ended = terminated | (rng.random(num_envs) < 0.15)   # truncated where not terminated
        replay.add(obs, action, reward, next_obs, terminated.astype(np.float64), ended=ended)
        ref.add(obs, action, reward, next_obs, terminated, ended)


def check_samples(replay, ref, draws=4):
    expected = ref.transitions()
    seen = set()
    for _ in range(draws):
        batch = type(replay.sample(1))(*(None if x is None else x.numpy() for x in replay.sample(512)))
        for i in range(512):
            env, t = int(batch.obs[i, 0]), int(batch.obs[i, 1])
            assert (env, t) in expected, f"sampled env {env} step {t}, which is not sampleable"
            obs, action, window_return, next_obs, terminated, discount = expected[(env, t)]
            np.testing.assert_array_equal(batch.obs[i], obs)
            assert int(batch.action[i]) == action
            np.testing.assert_allclose(float(batch.reward[i]), window_return, rtol=0, atol=1e-12)
            np.testing.assert_array_equal(batch.next_obs[i], next_obs)
            assert float(batch.terminated[i]) == terminated
            np.testing.assert_allclose(float(batch.discount[i]), discount, rtol=0, atol=1e-15)
            seen.add((env, t))
    # 2,048 uniform draws over at most 40 transitions: each one turns up (P(miss) < 1e-20).
    assert seen == set(expected)


@pytest.mark.parametrize("num_envs,capacity,n_step,compiled", [
    (1, 23, 3, False), (3, 40, 4, False), (2, 17, 2, True), (3, 31, 5, True)],
    ids=["1-env", "3-envs", "2-envs-odd-ring-xla", "3-envs-n5-xla"])
def test_sampled_windows_match_the_reference_across_episodes_and_wrap_around(num_envs, capacity, n_step, compiled):
    rng = np.random.default_rng(capacity)
    replay = ReplayBuffer(capacity, (3,), tf.float64, seed=4, reward_dtype=tf.float64, n_step=n_step,
                          discount=0.9, stride=num_envs, jit_compile=compiled)
    ref = reference.NStepReplayReference(capacity, num_envs, n_step, 0.9)
    fill(replay, ref, rng, num_envs, n_step + 1)   # before the ring is full
    check_samples(replay, ref)
    fill(replay, ref, rng, num_envs, 3 * capacity, step_offset=n_step + 1)   # wrapped around several times
    check_samples(replay, ref)


def test_the_newest_transitions_wait_for_their_window():
    replay = ReplayBuffer(10, (1,), seed=0, n_step=3, discount=0.5, stride=1, jit_compile=False)
    for t in range(2):
        replay.add([[t]], [0], [1.0], [[t + 1]], [0.0], ended=[0.0])
    with pytest.raises(ValueError, match="samples once it holds more than 2 transitions"):
        replay.sample(4)
    replay.add([[2]], [0], [1.0], [[3]], [0.0], ended=[0.0])
    batch = replay.sample(64)
    assert set(batch.obs[:, 0].numpy()) == {0.0}       # only the first has its whole window
    np.testing.assert_allclose(batch.reward.numpy(), 1 + 0.5 + 0.25)
    np.testing.assert_array_equal(batch.next_obs[:, 0].numpy(), 3.0)


def test_agent_target_uses_the_window(tmp_path):
    # One env, γ = 0.5, n = 3, rewards 1, 2, 4 and the episode going on: the update's target is
    # 1 + 0.5·2 + 0.25·4 + 0.125 · max_a Q_target(s_3, a). A linear Q over one-hot states with
    # zero weights except Q_target(s_3, ·) = (8, 0): target 3 + 1 = 4, δ = 4 − 0 at (s_0, a_0).
    config = DQNConfig(hidden=(), n_step=3, discount=0.5, batch_size=1, replay_capacity=8, learning_starts=2,
                       optimizer="sgd", learning_rate=1.0, max_grad_norm=None, dtype="float64", mode="eager")
    agent = DQN(5, 2, config, seed=0, discrete_obs=True, initializer="zeros")
    kernel = np.zeros((5, 2))
    kernel[3] = [8.0, 0.0]
    agent.target.kernels[0].assign(kernel)
    for t, reward in enumerate([1.0, 2.0, 4.0]):
        agent.replay.add([t], [0], [reward], [t + 1], [0.0], ended=[0.0])
    info = agent.train(1)
    np.testing.assert_allclose(float(info.mean_td_error), 4.0, rtol=0, atol=1e-12)
    # SGD on ½δ²: W[s_0, a_0] += α δ = 4, its bias likewise.
    np.testing.assert_allclose(agent.online.kernels[0].numpy()[0], [4.0, 0.0], rtol=0, atol=1e-12)


def test_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="learning_starts .* must be at least"):
        DQNConfig(n_step=3, learning_starts=0).validate()
    with pytest.raises(ConfigError, match="n_step must be >= 1"):
        DQNConfig(n_step=0).validate()
    with pytest.raises(ConfigError, match="replay_capacity .* must hold"):
        DQNConfig(n_step=5, num_envs=4, replay_capacity=16, batch_size=8, learning_starts=100).validate()
