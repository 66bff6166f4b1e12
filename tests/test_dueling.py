"""The dueling head (Wang et al. 2016) against float64 NumPy references.

    Q(s, a) = V(s) + A(s, a) − mean_a' A(s, a')

The references (rawdqn/reference.py: dueling_q_values, dueling_mlp_q_values, conv_features)
are NumPy only; the update is checked against central differences of the NumPy loss.
"""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import reference
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig
from rawdqn.network import ConvQNetwork, QNetwork, dense_layer_shapes, dueling_q_values
from rawdqn.pixel_agent import conv_parameter_count


def pairs(net):
    return [(kernel.numpy(), bias.numpy()) for kernel, bias in zip(net.kernels, net.biases)]


def dueling_reference(net, features):
    """The reference head over `features`, θ's dense layers split as dense_layer_shapes lays them out."""
    dense = pairs(net)[len(getattr(net, "convs", ())):]
    depth = net.stream_depth
    shared, value, advantage = dense[:-2 * depth], dense[-2 * depth:-depth], dense[-depth:]
    return reference.dueling_mlp_q_values(shared, value, advantage, features)


def test_dueling_q_values_by_hand():
    # V = 1, A = (1, 2, 6): mean A = 3, so Q = 1 + (−2, −1, 3) = (−1, 0, 4).
    value, advantage = np.array([[1.0]]), np.array([[1.0, 2.0, 6.0]])
    np.testing.assert_array_equal(reference.dueling_q_values(value, advantage), [[-1.0, 0.0, 4.0]])
    np.testing.assert_array_equal(dueling_q_values(tf.constant(value), tf.constant(advantage)).numpy(),
                                  [[-1.0, 0.0, 4.0]])


def test_the_layout_duplicates_the_last_hidden_layer_per_stream():
    assert [shape for shape, _, _ in dense_layer_shapes(4, (8, 6), 3, dueling=True)] == [
        (4, 8), (8, 6), (6, 1), (8, 6), (6, 3)]
    assert [shape for shape, _, _ in dense_layer_shapes(4, (), 3, dueling=True)] == [(4, 1), (4, 3)]
    net = QNetwork(4, 3, (8, 6), dueling=True)
    assert net.num_parameters == 4 * 8 + 8 + 2 * (8 * 6 + 6) + 6 + 1 + 6 * 3 + 3


@pytest.mark.parametrize("hidden", [(5, 7), (6,), ()], ids=["two-hidden", "one-hidden", "linear"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_mlp_forward_matches_the_float64_reference(hidden, compiled):
    rng = np.random.default_rng(len(hidden))
    net = QNetwork(4, 3, hidden, dtype=tf.float64, dueling=True)
    net.theta.assign(rng.normal(0.0, 0.7, net.theta.shape))
    obs = rng.normal(size=(9, 4))
    forward = tf.function(net, jit_compile=True) if compiled else net
    got = forward(tf.constant(obs)).numpy()
    np.testing.assert_allclose(got, dueling_reference(net, obs), rtol=0, atol=1e-12)
    # What makes V and A identifiable: Q − V averages to 0 over the actions.
    depth = net.stream_depth
    dense = pairs(net)
    shared_out = obs
    for kernel, bias in dense[:-2 * depth]:
        shared_out = np.maximum(shared_out @ kernel + bias, 0)
    value = reference.mlp_q_values(dense[-2 * depth:-depth], shared_out)
    np.testing.assert_allclose((got - value).mean(axis=1), 0.0, atol=1e-12)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_conv_forward_matches_the_float64_reference(compiled):
    rng = np.random.default_rng(3)
    shape = dict(frame_shape=(10, 10, 4), num_actions=6, convs=((16, 3, 1),), hidden=(8,))
    net = ConvQNetwork(**shape, dtype=tf.float64, scale=1.0, dueling=True,
                       conv_gradients="forward" if compiled else "tf")
    net.theta.assign(rng.normal(0.0, 0.3, net.theta.shape))
    frames = rng.integers(0, 2, (5, 10, 10, 4), dtype=np.uint8)
    forward = tf.function(net, jit_compile=True) if compiled else net
    got = forward(tf.constant(frames)).numpy()
    convs = pairs(net)[:1]
    features = reference.conv_features(convs, [1], frames, scale=1.0)
    np.testing.assert_allclose(got, dueling_reference(net, features), rtol=0, atol=1e-12)
    assert net.num_parameters == conv_parameter_count((10, 10, 4), 6, ((16, 3, 1),), (8,), dueling=True)


def numpy_loss(theta, net, obs, action, reward, next_obs, terminated, target_theta, discount):
    """½ mean δ² of the dueling network at θ (NumPy only), the target from θ⁻ (Q-learning)."""
    def q_values(flat, x):
        dense, start = [], 0
        for kernel, bias in zip(net.kernels, net.biases):
            k = flat[start:start + kernel.size].reshape(kernel.shape)
            start += kernel.size
            dense.append((k, flat[start:start + bias.size]))
            start += bias.size
        depth = net.stream_depth
        return reference.dueling_mlp_q_values(dense[:-2 * depth], dense[-2 * depth:-depth], dense[-depth:], x)
    target = reference.q_learning_target(reward, terminated, discount, q_values(target_theta, next_obs))
    return reference.squared_loss(reference.td_error(q_values(theta, obs), action, target))


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_one_update_matches_central_differences_of_the_numpy_loss(mode):
    # SGD without clipping: θ' = θ − α ∇L(θ), ∇L from (L(θ + h e_i) − L(θ − h e_i)) / 2h in NumPy.
    rng = np.random.default_rng(7)
    config = DQNConfig(hidden=(5, 4), dueling=True, optimizer="sgd", learning_rate=0.1, max_grad_norm=None,
                       dtype="float64", mode=mode, batch_size=6, replay_capacity=16, discount=0.9)
    agent = DQN(4, 3, config, seed=1)
    agent.online.theta.assign(rng.normal(0.0, 0.6, agent.online.theta.shape))
    agent.target.theta.assign(rng.normal(0.0, 0.6, agent.target.theta.shape))
    batch = (rng.normal(size=(6, 4)), rng.integers(0, 3, 6), rng.normal(size=6), rng.normal(size=(6, 4)),
             np.array([0, 1, 0, 0, 1, 0], np.float64))
    theta, target_theta = agent.online.theta.numpy(), agent.target.theta.numpy()
    agent.learn(batch)
    h = 1e-6
    gradient = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        gradient[i] = (numpy_loss(theta + step, agent.online, *batch, target_theta, 0.9)
                       - numpy_loss(theta - step, agent.online, *batch, target_theta, 0.9)) / (2 * h)
    assert np.abs(gradient).max() > 1e-3   # the update moves θ: the comparison can fail
    np.testing.assert_allclose(agent.online.theta.numpy(), theta - 0.1 * gradient, rtol=0, atol=1e-8)
