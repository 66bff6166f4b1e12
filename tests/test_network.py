import numpy as np
import pytest
import tensorflow as tf

from rawdqn.network import QNetwork


def set_weights(net, values):
    """W_0, b_0, W_1, … into their slices of θ."""
    for view, value in zip(net.layers_in_order, values):
        view.assign(np.asarray(value, view.dtype.as_numpy_dtype))


def test_forward_matches_hand_computation():
    # One hidden unit: h = relu(s·W1 + b1), Q = h·W2 + b2.
    # s = [1, 2], W1 = [[1], [-1]], b1 = [3]  →  h = relu(1 − 2 + 3) = 2
    # W2 = [[1, -2]], b2 = [0.5, 0]           →  Q = [2.5, −4]
    # s = [0, 5]                              →  h = relu(−5 + 3) = 0, Q = [0.5, 0]
    net = QNetwork(2, 2, hidden=(1,))
    set_weights(net, [[[1.0], [-1.0]], [3.0], [[1.0, -2.0]], [0.5, 0.0]])
    q_values = net(tf.constant([[1.0, 2.0], [0.0, 5.0]]))
    np.testing.assert_allclose(q_values.numpy(), [[2.5, -4.0], [0.5, 0.0]])


def test_action_mask_filters_output():
    # Q = [2.5, −4] masked by the taken action [0, 1] → [0, −4] (the tutorials' filtered output).
    net = QNetwork(2, 2, hidden=(1,))
    set_weights(net, [[[1.0], [-1.0]], [3.0], [[1.0, -2.0]], [0.5, 0.0]])
    masked = net(tf.constant([[1.0, 2.0]]), tf.constant([[0.0, 1.0]]))
    np.testing.assert_allclose(masked.numpy(), [[0.0, -4.0]])


def test_linear_network_without_bias_is_a_table():
    # hidden=() and one-hot input: Q(s, ·) is row s of the single kernel.
    net = QNetwork(3, 2, hidden=(), use_bias=False, initializer="zeros")
    assert len(net.layers_in_order) == 1
    table = np.arange(6, dtype=np.float32).reshape(3, 2)
    set_weights(net, [table])
    np.testing.assert_array_equal(net(tf.one_hot([2, 0], 3)).numpy(), table[[2, 0]])


def test_same_seed_same_weights_and_different_seed_different_weights():
    a, b, c = (QNetwork(4, 2, seed=s) for s in (7, 7, 8))
    for va, vb in zip(a.variables_in_order, b.variables_in_order):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert not np.array_equal(a.kernels[0].numpy(), c.kernels[0].numpy())


def test_glorot_bounds_and_float64():
    net = QNetwork(10, 6, hidden=(30,), dtype=tf.float64)
    limit = np.sqrt(6.0 / (10 + 30))
    kernel = net.kernels[0].numpy()
    assert kernel.dtype == np.float64
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit
    assert net(np.zeros((1, 10))).dtype == tf.float64
    assert net.num_parameters == 10 * 30 + 30 + 30 * 6 + 6


def test_bad_sizes_raise_clear_errors():
    with pytest.raises(ValueError, match="num_actions"):
        QNetwork(4, 0)
    with pytest.raises(ValueError, match="hidden"):
        QNetwork(4, 2, hidden=(0,))


def test_theta_is_the_layers_end_to_end():
    # θ = [W_0 (3×2, row-major) | b_0 (2) | W_1 (2×1) | b_1 (1)]: each view reads and writes its slice.
    net = QNetwork(3, 1, hidden=(2,))
    values = [np.arange(6.0).reshape(3, 2), [6.0, 7.0], [[8.0], [9.0]], [10.0]]
    set_weights(net, values)
    np.testing.assert_array_equal(net.theta.numpy(), np.arange(11.0))
    for view, value in zip(net.layers_in_order, values):
        np.testing.assert_array_equal(view.numpy(), value)
    assert net.variables_in_order == [net.theta] and net.num_parameters == 11
