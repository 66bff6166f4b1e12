import numpy as np
import pytest
import tensorflow as tf

from rawdqn.agent import DQN
from rawdqn.config import DQNConfig


def linear_agent(mode="xla", **overrides):
    """2 observations × 2 actions, Q(s, ·) = s W, no bias; W set to [[1, 2], [3, 4]]."""
    config = DQNConfig(hidden=(), optimizer="sgd", learning_rate=0.5, discount=0.5, batch_size=1,
                       replay_capacity=8, max_grad_norm=None, loss="squared", dtype="float64",
                       mode=mode).replace(**overrides)
    agent = DQN(2, 2, config, use_bias=False)
    agent.online.kernels[0].assign([[1.0, 2.0], [3.0, 4.0]])
    agent.sync_target()
    return agent


ONE_TRANSITION = ([[1.0, 0.0]], [0], [1.0], [[0.0, 1.0]], [0.0])


@pytest.mark.parametrize("mode", ["eager", "function", "xla", "hybrid"])
def test_one_update_by_hand(mode):
    # s = [1, 0], a = 0, r = 1, s' = [0, 1], γ = 0.5:
    # Q(s, ·) = [1, 2];  Q_target(s', ·) = [3, 4];  y = 1 + 0.5·4 = 3;  δ = 3 − 1 = 2
    # L = ½δ² = 2;  ∂L/∂W[0, 0] = −δ·s₀ = −2, other entries 0;  W[0, 0] ← 1 + 0.5·2 = 2
    agent = linear_agent(mode)
    info = agent.learn(ONE_TRANSITION)
    np.testing.assert_allclose(agent.online.kernels[0].numpy(), [[2.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose([float(info.loss), float(info.mean_td_error),
                                float(info.mean_max_q), float(info.grad_norm)], [2.0, 2.0, 2.0, 2.0])
    # The target network is untouched by learning (no gradient flows into the target).
    np.testing.assert_array_equal(agent.target.kernels[0].numpy(), [[1.0, 2.0], [3.0, 4.0]])


def test_terminal_transition_does_not_bootstrap_and_clipping_applies():
    # terminated: y = r = 1, δ = 0 → no change. Not terminated with clip 1: ‖g‖ = 2 → g = −1,
    # W[0, 0] ← 1 + 0.5·1 = 1.5.
    agent = linear_agent()
    agent.learn(([[1.0, 0.0]], [0], [1.0], [[0.0, 1.0]], [1.0]))
    np.testing.assert_allclose(agent.online.kernels[0].numpy(), [[1.0, 2.0], [3.0, 4.0]])
    clipped = linear_agent(max_grad_norm=1.0)
    info = clipped.learn(ONE_TRANSITION)
    np.testing.assert_allclose(clipped.online.kernels[0].numpy()[0, 0], 1.5)
    np.testing.assert_allclose(float(info.grad_norm), 2.0)  # the norm before clipping


def test_double_q_target_in_learn():
    # Online picks argmax Q(s', ·) = [3, 4] → action 1; target W⁻ = [[1, 2], [10, 0]] values it 0.
    # y = 1 + 0.5·0 = 1, δ = 1 − 1 = 0: no change (the plain target would give y = 1 + 0.5·10).
    agent = linear_agent(double_q=True)
    agent.target.kernels[0].assign([[1.0, 2.0], [10.0, 0.0]])
    info = agent.learn(ONE_TRANSITION)
    assert float(info.mean_td_error) == 0.0


def test_sync_hard_and_polyak():
    agent = linear_agent()
    agent.target.kernels[0].assign([[0.0, 0.0], [0.0, 8.0]])
    agent.sync_target(0.25)  # 0.25·W + 0.75·W⁻
    np.testing.assert_allclose(agent.target.kernels[0].numpy(), [[0.25, 0.5], [0.75, 7.0]])
    agent.target.kernels[0].assign([[np.inf, 0.0], [0.0, 0.0]])
    agent.sync_target(1.0)  # exact copy, even over an inf
    np.testing.assert_array_equal(agent.target.kernels[0].numpy(), [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="tau"):
        agent.sync_target(0.0)


def greedy_net_agent(num_actions=4, **overrides):
    """Q(s, ·) = s W with W making action 2 greedy for s = [1]."""
    config = DQNConfig(hidden=(), batch_size=1, replay_capacity=8).replace(**overrides)
    agent = DQN(1, num_actions, config, use_bias=False, seed=3)
    weights = np.zeros((1, num_actions), np.float32)
    weights[0, 2] = 1.0
    agent.online.kernels[0].assign(weights)
    return agent


def test_epsilon_greedy_statistics():
    # ε = 0.3, 4 actions: P(greedy) = 0.7 + 0.3/4 = 0.775, P(other) = 0.075 each.
    # n = 40,000: sd of a frequency ≤ √(0.25/n) = 0.0025; allow 5 sd.
    agent = greedy_net_agent()
    obs = np.ones((40_000, 1), np.float32)
    for epsilon, expected in ((0.0, [0, 0, 1, 0]), (1.0, [0.25] * 4), (0.3, [0.075, 0.075, 0.775, 0.075])):
        actions = agent.act(obs, epsilon).numpy()
        frequencies = np.bincount(actions, minlength=4) / len(actions)
        np.testing.assert_allclose(frequencies, expected, atol=0.0125)
    # Successive calls draw fresh randomness.
    assert not np.array_equal(agent.act(obs[:100], 1.0).numpy(), agent.act(obs[:100], 1.0).numpy())


def test_legal_mask_is_respected_when_exploring_and_exploiting():
    # Action 2 is greedy but illegal: greedy falls to the best legal action (0, first on ties
    # among the zeros), exploration is uniform over {0, 3}.
    agent = greedy_net_agent()
    obs = np.ones((20_000, 1), np.float32)
    mask = np.tile([True, False, False, True], (20_000, 1))
    np.testing.assert_array_equal(np.unique(agent.act(obs, 0.0, mask).numpy()), [0])
    explored = agent.act(obs, 1.0, mask).numpy()
    assert set(np.unique(explored)) == {0, 3}
    assert abs(np.mean(explored == 3) - 0.5) < 0.02  # sd 0.0035


def test_train_runs_num_updates_inside_one_call():
    agent = DQN(3, 2, DQNConfig(hidden=(8,), batch_size=4, replay_capacity=32), seed=1)
    rng = np.random.default_rng(0)
    agent.replay.add(rng.normal(size=(16, 3)), rng.integers(0, 2, 16), rng.normal(size=16),
                     rng.normal(size=(16, 3)), np.zeros(16))
    before = [v.numpy() for v in agent.online.variables_in_order]
    info = agent.train(7)
    assert int(agent.optimizer.step.numpy()) == 7 and int(agent.replay.draws.numpy()) == 7
    assert np.isfinite(float(info.loss))
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, agent.online.variables_in_order))


def test_discrete_observations_are_one_hot_on_the_device():
    agent = DQN(5, 2, DQNConfig(hidden=(), batch_size=1, replay_capacity=4), discrete_obs=True,
                use_bias=False)
    kernel = agent.online.kernels[0].numpy()
    np.testing.assert_allclose(agent.q_values([3, 0]).numpy(), kernel[[3, 0]])
    assert agent.replay.obs.dtype == tf.int32 and agent.replay.obs.shape == (4,)


def test_same_seed_same_agent():
    a, b = (DQN(4, 2, DQNConfig(hidden=(16,)), seed=11) for _ in range(2))
    obs = np.random.default_rng(0).normal(size=(64, 4))
    np.testing.assert_array_equal(a.act(obs, 0.5).numpy(), b.act(obs, 0.5).numpy())
    np.testing.assert_array_equal(a.q_values(obs).numpy(), b.q_values(obs).numpy())
