"""Prioritized replay (Schaul et al. 2016, proportional) against NumPy.

The sum-tree's draws against p_i / Σ p by χ² (fixed seeds); the replay's priorities,
importance weights and n-step windows against values computed here from the priorities
themselves; the agent's weighted update against a NumPy loss.
"""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import reference, schedule
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig
from rawdqn.replay import ReplayBuffer
from rawdqn.sum_tree import SumTree


def chi_squared_critical(degrees):
    """The 99.9th percentile of χ² with `degrees` degrees of freedom (Wilson–Hilferty)."""
    return degrees * (1 - 2 / (9 * degrees) + 3.09 * np.sqrt(2 / (9 * degrees))) ** 3


def assert_frequencies_match(drawn, probabilities):
    counts = np.bincount(drawn, minlength=len(probabilities))
    support = probabilities > 0
    assert counts[~support].sum() == 0, "drew an item of priority 0"
    if support.sum() == 1:
        return   # one item: every draw is it (checked above)
    expected = probabilities[support] * len(drawn)
    chi2 = float(np.sum((counts[support] - expected) ** 2 / expected))
    assert chi2 < chi_squared_critical(support.sum() - 1), chi2


@pytest.mark.parametrize("size", [1, 13, 64])
def test_tree_sums_and_draws_in_proportion(size):
    rng = np.random.default_rng(size)
    tree = SumTree(size)
    priorities = np.zeros(size)
    for _ in range(5):   # batches with repeated indices, each carrying one priority
        indices = rng.integers(0, size, 8)
        values = rng.exponential(size=size)[indices]
        tree.update_fn(tf.constant(indices), tf.constant(values))
        priorities[indices] = values
    nodes = tree.tree.numpy()
    leaves = tree.leaves
    np.testing.assert_allclose(nodes[leaves:leaves + size], priorities, rtol=0, atol=0)
    for node in range(1, leaves):   # every inner node is the sum of its children
        np.testing.assert_allclose(nodes[node], nodes[2 * node] + nodes[2 * node + 1], rtol=1e-15)
    np.testing.assert_allclose(float(tree.total_fn()), priorities.sum(), rtol=1e-14)
    uniforms = np.random.default_rng(0).random(20_000) * priorities.sum()
    drawn = tree.find_fn(tf.constant(uniforms)).numpy()
    assert_frequencies_match(drawn, priorities / priorities.sum())


def test_find_never_lands_on_an_empty_leaf_even_at_the_total():
    tree = SumTree(6)
    tree.update_fn(tf.constant([0, 2]), tf.constant([0.3, 0.1]))
    drawn = tree.find_fn(tf.constant([0.0, 0.2999, 0.3, 0.4, 0.4 * (1 + 1e-12)])).numpy()
    np.testing.assert_array_equal(drawn, [0, 0, 2, 2, 2])


def add_numbered(replay, count, num_envs=1, start=0):
    for t in range(start, start + count):
        obs = np.stack([np.arange(num_envs), np.full(num_envs, t)], 1).astype(np.float64)
        replay.add(obs, np.zeros(num_envs), np.ones(num_envs), obs + 0.5, np.zeros(num_envs),
                   ended=np.zeros(num_envs) if replay.n_step > 1 else None)


@pytest.mark.parametrize("compiled", [False, True], ids=["function", "xla"])
def test_draws_follow_the_priorities_and_weights_are_normalised(compiled):
    # Twelve transitions whose TD errors set p_i = (|δ_i| + ε)^α; two newer ones get the largest p.
    alpha, epsilon, beta = 0.6, 1e-6, 0.5
    replay = ReplayBuffer(16, (2,), tf.float64, seed=3, reward_dtype=tf.float64, prioritized=True,
                          priority_exponent=alpha, priority_epsilon=epsilon, jit_compile=compiled)
    add_numbered(replay, 12)
    errors = np.linspace(-2.0, 3.0, 12)
    replay.priorities.update_from_errors_fn(tf.range(12), tf.constant(errors))
    add_numbered(replay, 2, start=12)
    priorities = np.zeros(16)
    priorities[:12] = (np.abs(errors) + epsilon) ** alpha
    priorities[12:14] = priorities[:12].max()   # new transitions: the largest priority so far
    np.testing.assert_allclose(replay.priorities.priorities_fn(tf.range(16)).numpy(), priorities, rtol=1e-15)
    probabilities = priorities / priorities.sum()
    drawn = []
    for _ in range(40):
        batch = replay.sample(500, importance_exponent=beta)
        index = batch.index.numpy()
        np.testing.assert_array_equal(batch.obs.numpy()[:, 1], index)   # the rows of the slots drawn
        weight = (14 * probabilities[index]) ** -beta
        np.testing.assert_allclose(batch.weight.numpy(), weight / weight.max(), rtol=1e-12)
        drawn.append(index)
    assert_frequencies_match(np.concatenate(drawn), probabilities)


def test_n_step_windows_wait_at_priority_zero_and_match_the_reference():
    num_envs, capacity, n_step = 2, 20, 3
    replay = ReplayBuffer(capacity, (3,), tf.float64, seed=1, reward_dtype=tf.float64, n_step=n_step,
                          discount=0.9, stride=num_envs, prioritized=True, jit_compile=False)
    ref = reference.NStepReplayReference(capacity, num_envs, n_step, 0.9)
    rng = np.random.default_rng(2)
    for t in range(25):   # wraps around
        obs = np.stack([np.arange(num_envs), np.full(num_envs, t), rng.normal(size=num_envs)], 1)
        terminated = rng.random(num_envs) < 0.2
        ended = terminated | (rng.random(num_envs) < 0.2)
        reward = rng.normal(size=num_envs)
        replay.add(obs, np.zeros(num_envs), reward, obs + 1, terminated.astype(float), ended=ended)
        ref.add(obs, np.zeros(num_envs), reward, obs + 1, terminated, ended)
        if t in (4, 24):   # before the ring is full (half its slots unwritten), and after it wrapped
            expected = ref.transitions()
            batch = replay.sample(2000)
            obs = batch.obs.numpy()
            keys = {(int(e), int(t)) for e, t in obs[:, :2]}
            assert keys == set(expected)   # every complete window, and no incomplete one (their p is 0)
            for row in obs:   # each the row written there (an unwritten slot's zeros would not be)
                np.testing.assert_array_equal(row, expected[(int(row[0]), int(row[1]))][0])
    for i in range(50):
        _, _, window_return, _, terminated, discount = expected[tuple(int(x) for x in batch.obs.numpy()[i, :2])]
        np.testing.assert_allclose(float(batch.reward[i]), window_return, rtol=0, atol=1e-12)
        assert float(batch.terminated[i]) == terminated and np.isclose(float(batch.discount[i]), discount)


def test_the_agent_weights_its_loss_and_writes_back_priorities():
    # SGD on a linear Q over one-hot states, batch 4: θ' − θ = −α ∇ mean(w ½δ²); p_i ← (|δ_i| + ε)^α.
    config = DQNConfig(hidden=(), prioritized=True, batch_size=4, replay_capacity=8, learning_starts=0,
                       optimizer="sgd", learning_rate=0.5, max_grad_norm=None, dtype="float64", mode="function",
                       discount=0.5, total_steps=100, importance_exponent_start=0.4, priority_exponent=0.5)
    agent = DQN(4, 2, config, seed=0, discrete_obs=True, use_bias=False, initializer="zeros")
    for state in range(4):   # rewards 1, 2, 3, 4 from state s to s + 1 (terminal), action 0
        agent.replay.add([state], [0], [state + 1.0], [(state + 1) % 4], [1.0])
    agent.replay.priorities.update_from_errors_fn(tf.range(4), tf.constant([1.0, 2.0, 3.0, 4.0]))   # p = √(|δ| + ε)
    info = agent.train(1)
    batch_draws = int(agent.replay.draws.numpy())
    assert batch_draws == 1
    # Replay the draw: the same seed and counter give the same slots.
    again = ReplayBuffer(8, (), tf.int32, seed=agent.replay.seed, reward_dtype=tf.float64, prioritized=True,
                         priority_exponent=0.5, jit_compile=False)
    for state in range(4):
        again.add([state], [0], [state + 1.0], [(state + 1) % 4], [1.0])
    again.priorities.update_from_errors_fn(tf.range(4), tf.constant([1.0, 2.0, 3.0, 4.0]))
    beta = float(schedule.importance_exponent(config, 0))
    drawn = again.sample(4, importance_exponent=beta)
    index = drawn.index.numpy()
    priorities = np.sqrt(np.array([1.0, 2.0, 3.0, 4.0]) + 1e-6)
    weight = (4 * priorities[index] / priorities.sum()) ** -beta
    weight /= weight.max()
    td_error = index + 1.0                               # y = r (terminal), Q = 0
    np.testing.assert_allclose(float(info.loss), np.mean(weight * 0.5 * td_error ** 2), rtol=1e-12)
    kernel = np.zeros((4, 2))
    np.add.at(kernel[:, 0], index, 0.5 * weight * td_error / 4)   # −α ∂/∂W[s, 0] of mean(w ½(y − W[s, 0])²)
    np.testing.assert_allclose(agent.online.kernels[0].numpy(), kernel, rtol=1e-12)
    written = agent.replay.priorities.priorities_fn(tf.constant(index)).numpy()
    np.testing.assert_allclose(written, np.sqrt(td_error + 1e-6), rtol=1e-12)
    assert float(agent.replay.priorities.max_priority.numpy()) == pytest.approx(max(np.sqrt(td_error + 1e-6).max(), 1.0))


def test_beta_is_annealed_to_one_by_the_end():
    config = DQNConfig(total_steps=1000, importance_exponent_start=0.4)
    np.testing.assert_allclose([float(schedule.importance_exponent(config, t)) for t in (0, 500, 1000, 2000)],
                               [0.4, 0.7, 1.0, 1.0], rtol=0, atol=1e-15)
