import numpy as np
import pytest
import tensorflow as tf

from rawdqn import bellman


def test_q_learning_target_hand_derived():
    # γ = 0.9
    # row 0: r = 1, not terminated, max(2, 5) = 5 → 1 + 0.9·5 = 5.5
    # row 1: r = −1, terminated → −1
    # row 2: r = 0, not terminated, max(−3, −4) = −3 → −2.7
    target = bellman.q_learning_target(
        tf.constant([1.0, -1.0, 0.0]), tf.constant([0.0, 1.0, 0.0]), 0.9,
        tf.constant([[2.0, 5.0], [7.0, 8.0], [-3.0, -4.0]]))
    np.testing.assert_allclose(target.numpy(), [5.5, -1.0, -2.7], rtol=1e-6)


def test_legal_mask_restricts_the_max():
    # Legal actions: row 0 only action 0 (Q = 2), row 1 only action 1 (Q = −4), row 2 none.
    # γ = 0.5: [1 + 1, 0 − 2, 3 + 0] = [2, −2, 3]
    target = bellman.q_learning_target(
        tf.constant([1.0, 0.0, 3.0]), tf.zeros(3), 0.5,
        tf.constant([[2.0, 5.0], [7.0, -4.0], [9.0, 9.0]]),
        next_legal_mask=tf.constant([[True, False], [False, True], [False, False]]))
    np.testing.assert_allclose(target.numpy(), [2.0, -2.0, 3.0])


def test_double_q_target_uses_online_argmax_and_target_value():
    # online picks argmax [1, 0] → target values [10, 30]; γ = 0.5, r = [1, 2]
    # → [1 + 5, 2 + 15] = [6, 17]; with the plain target it would be [1 + 10, 2 + 20].
    target = bellman.double_q_learning_target(
        tf.constant([1.0, 2.0]), tf.zeros(2), 0.5,
        next_q_online=tf.constant([[0.0, 1.0], [3.0, 2.0]]),
        next_q_target=tf.constant([[20.0, 10.0], [30.0, 40.0]]))
    np.testing.assert_allclose(target.numpy(), [6.0, 17.0])


def test_discount_zero_and_one_and_per_row_discount():
    next_q = tf.constant([[1.0, 4.0], [2.0, 0.0]])
    reward = tf.constant([1.0, 1.0])
    np.testing.assert_allclose(bellman.q_learning_target(reward, tf.zeros(2), 0.0, next_q), [1.0, 1.0])
    np.testing.assert_allclose(bellman.q_learning_target(reward, tf.zeros(2), 1.0, next_q), [5.0, 3.0])
    np.testing.assert_allclose(
        bellman.q_learning_target(reward, tf.zeros(2), tf.constant([0.5, 0.25]), next_q), [3.0, 1.5])


def test_no_gradient_flows_into_the_target():
    next_q = tf.Variable([[1.0, 2.0]])
    with tf.GradientTape() as tape:
        target = bellman.q_learning_target(tf.constant([0.0]), tf.constant([0.0]), 0.9, next_q)
        total = tf.reduce_sum(target)
    assert tape.gradient(total, next_q) is None


def test_n_step_window_hand_derived():
    # γ = 0.5, rewards [1, 2, 4], bootstrap V = 8 (max_a' Q_target at the window's last s'):
    # the episode goes on: R = 1 + 0.5·2 + 0.25·4 = 3, γ^3 = 0.125, last 2: y = 3 + 0.125·8 = 4
    # terminated at step 1: R = 1 + 0.5·2 = 2, last 1, no bootstrap: y = 2
    # truncated at step 0: R = 1, γ^1 = 0.5, last 0: y = 1 + 0.5·8 = 5 (bootstraps; reward 2 is
    #   the next episode's)
    rewards = tf.constant([[1.0, 2.0, 4.0]] * 3)
    terminated = tf.constant([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    ended = tf.constant([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    window_return, bootstrap_discount, last = bellman.n_step_window(rewards, terminated, ended, 0.5)
    np.testing.assert_array_equal(window_return.numpy(), [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(bootstrap_discount.numpy(), [0.125, 0.25, 0.5])
    np.testing.assert_array_equal(last.numpy(), [2, 1, 0])
    terminated_last = tf.gather(terminated, last, axis=1, batch_dims=1)
    target = bellman.q_learning_target(window_return, terminated_last, bootstrap_discount, tf.fill([3, 2], 8.0))
    np.testing.assert_array_equal(target.numpy(), [4.0, 2.0, 5.0])


def test_rank_errors_are_one_line():
    with pytest.raises(ValueError, match="next Q-values must have rank 2"):
        bellman.q_learning_target(tf.zeros(2), tf.zeros(2), 0.9, tf.zeros(2))
    with pytest.raises(ValueError, match="reward must have rank 1"):
        bellman.q_learning_target(tf.zeros([2, 1]), tf.zeros(2), 0.9, tf.zeros([2, 2]))


def test_float64_and_xla_agree_with_eager():
    args = (tf.constant([1.0, 2.0], tf.float64), tf.constant([0.0, 1.0], tf.float64), 0.99,
            tf.constant([[0.1, 0.7], [0.3, 0.2]], tf.float64))
    eager = bellman.q_learning_target(*args)
    compiled = tf.function(bellman.q_learning_target, jit_compile=True)(*args)
    assert eager.dtype == tf.float64
    # XLA may fuse r + γ·max into one FMA: equal to the last bit or two, not bitwise.
    np.testing.assert_allclose(eager.numpy(), compiled.numpy(), rtol=1e-15)
    # A Python discount must reach float64 exactly (no float32 detour: 0.99 ≠ 0.9900000095).
    np.testing.assert_allclose(eager.numpy(), [1.0 + 0.99 * 0.7, 2.0], rtol=1e-15)
