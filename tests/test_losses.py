import numpy as np
import tensorflow as tf

from rawdqn import losses


def test_td_error_selects_the_taken_action():
    # Q = [[1, 2], [3, 4]], actions [1, 0], y = [5, 5] → δ = [5 − 2, 5 − 3] = [3, 2]
    delta = losses.td_error(tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([1, 0]),
                            tf.constant([5.0, 5.0]))
    np.testing.assert_allclose(delta.numpy(), [3.0, 2.0])


def test_squared_loss_is_half_mean_square_and_half_of_keras_mse():
    # δ = [3, 2] → ½·(9 + 4)/2 = 3.25; Keras' MSE would be 6.5
    delta = tf.constant([3.0, 2.0])
    np.testing.assert_allclose(losses.squared_loss(delta).numpy(), 3.25)


def test_huber_loss_values_and_gradient():
    # Δ = 1: δ = 0.5 → ½·0.25 = 0.125;  δ = −3 → 1·(3 − 0.5) = 2.5;  mean = 1.3125
    delta = tf.Variable([0.5, -3.0])
    with tf.GradientTape() as tape:
        loss = losses.huber_loss(delta, 1.0)
    np.testing.assert_allclose(loss.numpy(), 1.3125)
    # dL/dδ = clip(δ, −1, 1)/2 = [0.25, −0.5]
    np.testing.assert_allclose(tape.gradient(loss, delta).numpy(), [0.25, -0.5])


def test_gradient_reaches_only_the_taken_q_and_not_the_target():
    # L = mean ½δ², δ = y − Q(s, a): dL/dQ(s_i, a_i) = −δ_i / B, zero elsewhere; dL/dy = 0.
    q_values = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
    target = tf.Variable([5.0, 5.0])
    with tf.GradientTape(persistent=True) as tape:
        loss = losses.squared_loss(losses.td_error(q_values, tf.constant([1, 0]), target))
    np.testing.assert_allclose(tape.gradient(loss, q_values).numpy(), [[0.0, -1.5], [-1.0, 0.0]])
    assert tape.gradient(loss, target) is None
