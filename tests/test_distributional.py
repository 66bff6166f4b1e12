"""C51 (Bellemare et al. 2017) against float64 NumPy references.

bellman.categorical_projection (the triangle form, no scatter) against reference's
Algorithm 1 as the paper writes it (floor/ceil, a loop per atom); the cross-entropy and
its gradient against hand-derived forms; the agent's update against central differences.
"""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import bellman, losses, reference
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig
from rawdqn.network import ConvQNetwork, QNetwork


def random_case(rng, batch, atoms, per_sample_discount):
    support = np.linspace(-3.0, 5.0, atoms)
    next_probs = reference.softmax(rng.normal(0, 2, (batch, atoms)))
    reward = rng.uniform(-8, 10, batch)             # some shifted atoms fall outside [z_0, z_K−1]: clipped
    reward[:4] = np.array([0.0, 1.0, -2.0, 0.5])    # and some land exactly on atoms
    terminated = (rng.random(batch) < 0.3).astype(np.float64)
    discount = rng.uniform(0.5, 1.0, batch) if per_sample_discount else 0.9
    return support, next_probs, reward, terminated, discount


def test_projection_by_hand():
    # z = (0, 1, 2), p(s') = (0, 1, 0), r = 0.5, γ = 1: T z_1 = 1.5, halfway between atoms 1 and 2.
    # Terminated: every atom moves to r = 0.5, halfway between atoms 0 and 1.
    support = tf.constant([0.0, 1.0, 2.0], tf.float64)
    probs = tf.constant([[0.0, 1.0, 0.0]] * 2, tf.float64)
    got = bellman.categorical_projection(support, probs, tf.constant([0.5, 0.5], tf.float64),
                                         tf.constant([0.0, 1.0], tf.float64), 1.0).numpy()
    np.testing.assert_array_equal(got, [[0.0, 0.5, 0.5], [0.5, 0.5, 0.0]])


@pytest.mark.parametrize("atoms,per_sample_discount", [(5, False), (51, True)])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_projection_matches_algorithm_1_and_conserves_mass(atoms, per_sample_discount, compiled):
    rng = np.random.default_rng(atoms)
    support, next_probs, reward, terminated, discount = random_case(rng, 64, atoms, per_sample_discount)
    project = tf.function(bellman.categorical_projection, jit_compile=True) if compiled \
        else bellman.categorical_projection
    got = project(tf.constant(support), tf.constant(next_probs), tf.constant(reward), tf.constant(terminated),
                  tf.constant(discount, tf.float64)).numpy()
    np.testing.assert_allclose(got, reference.categorical_projection(support, next_probs, reward, terminated,
                                                                     discount), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert got.min() >= 0.0


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_cross_entropy_and_its_gradient(compiled):
    # ∂/∂logits(s, a) of −Σ m log softmax(logits(s, a)) = softmax(logits(s, a)) − m (Σ m = 1);
    # zero for the actions not taken.
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(8, 3, 5))
    target = reference.softmax(rng.normal(size=(8, 5)))
    actions = rng.integers(0, 3, 8)

    def loss_and_gradient(logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            per_sample = losses.categorical_cross_entropy(target, logits, actions)
            total = tf.reduce_sum(per_sample)
        return per_sample, tape.gradient(total, logits)
    if compiled:
        loss_and_gradient = tf.function(loss_and_gradient, jit_compile=True)
    per_sample, gradient = (x.numpy() for x in loss_and_gradient(tf.constant(logits)))
    np.testing.assert_allclose(per_sample, reference.categorical_cross_entropy(target, logits, actions),
                               rtol=0, atol=1e-12)
    expected = np.zeros_like(logits)
    expected[np.arange(8), actions] = reference.softmax(logits[np.arange(8), actions]) - target
    np.testing.assert_allclose(gradient, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dueling", [False, True])
def test_networks_q_values_are_the_means_of_their_distributions(dueling):
    rng = np.random.default_rng(2)
    net = QNetwork(4, 3, (6,), dtype=tf.float64, dueling=dueling, atoms=7, v_min=-2.0, v_max=4.0)
    net.theta.assign(rng.normal(0, 0.5, net.theta.shape))
    obs = rng.normal(size=(5, 4))
    logits = net.logits(obs).numpy()
    assert logits.shape == (5, 3, 7)
    np.testing.assert_allclose(net(obs).numpy(), (reference.softmax(logits) * np.linspace(-2, 4, 7)).sum(-1),
                               rtol=0, atol=1e-12)
    if dueling:   # V and A combined atom by atom: logits − V average to 0 over the actions
        dense = [(k.numpy(), b.numpy()) for k, b in zip(net.kernels, net.biases)]
        value = reference.mlp_q_values(dense[:2], obs)   # the value stream: 6 → 7 atoms
        np.testing.assert_allclose((logits - value[:, None, :]).mean(axis=1), 0.0, atol=1e-12)
    conv = ConvQNetwork((6, 6, 2), 3, ((4, 3, 1),), (5,), dtype=tf.float64, dueling=dueling, atoms=7)
    assert conv.logits(np.zeros((2, 6, 6, 2), np.uint8)).shape == (2, 3, 7)


def numpy_c51_loss(theta, agent, obs, action, reward, next_obs, terminated, target_theta, discount):
    """The C51 loss at θ from NumPy alone: the target distribution from θ⁻ (argmax of its means)."""
    def logits(flat, x):
        kernel = flat[:agent.online.kernels[0].size].reshape(agent.online.kernels[0].shape)
        bias = flat[kernel.size:]
        return (x @ kernel + bias).reshape(len(x), agent.num_actions, agent.config.atoms)
    support = np.linspace(agent.config.v_min, agent.config.v_max, agent.config.atoms)
    next_probs = reference.softmax(logits(target_theta, next_obs))
    best = (next_probs * support).sum(-1).argmax(axis=1)
    target = reference.categorical_projection(support, next_probs[np.arange(len(best)), best], reward, terminated,
                                              discount)
    return reference.categorical_cross_entropy(target, logits(theta, obs), action).mean()


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_one_update_matches_central_differences_of_the_numpy_loss(mode):
    rng = np.random.default_rng(4)
    config = DQNConfig(hidden=(), distributional=True, atoms=5, v_min=-2.0, v_max=2.0, optimizer="sgd",
                       learning_rate=0.5, max_grad_norm=None, dtype="float64", mode=mode, batch_size=6,
                       replay_capacity=16, discount=0.8)
    agent = DQN(3, 2, config, seed=0)
    agent.online.theta.assign(rng.normal(0, 0.5, agent.online.theta.shape))
    agent.target.theta.assign(rng.normal(0, 0.5, agent.target.theta.shape))
    batch = (rng.normal(size=(6, 3)), rng.integers(0, 2, 6), rng.uniform(-1, 1, 6), rng.normal(size=(6, 3)),
             np.array([0, 1, 0, 0, 0, 1], np.float64))
    theta, target_theta = agent.online.theta.numpy(), agent.target.theta.numpy()
    info = agent.learn(batch)
    np.testing.assert_allclose(float(info.loss), numpy_c51_loss(theta, agent, *batch, target_theta, 0.8),
                               rtol=0, atol=1e-12)
    h, gradient = 1e-6, np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        gradient[i] = (numpy_c51_loss(theta + step, agent, *batch, target_theta, 0.8)
                       - numpy_c51_loss(theta - step, agent, *batch, target_theta, 0.8)) / (2 * h)
    assert np.abs(gradient).max() > 1e-3
    np.testing.assert_allclose(agent.online.theta.numpy(), theta - 0.5 * gradient, rtol=0, atol=1e-8)
