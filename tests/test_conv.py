"""rawdqn/conv.py: a convolution whose gradients are forward convolutions, against the float64
NumPy im2col reference (rawdqn/reference.py), eager and under XLA, strides 1 to 4."""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import conv, reference

# (x shape, kernel shape, stride): Nature's three layers at batch 2, MinAtar's, and shapes where
# the kernel is not a multiple of the stride and rows are left over at the bottom and right.
CASES = [((2, 84, 84, 4), (8, 8, 4, 3), 4), ((2, 20, 20, 5), (4, 4, 5, 6), 2), ((2, 9, 9, 6), (3, 3, 6, 4), 1),
         ((3, 10, 10, 4), (3, 3, 4, 16), 1), ((2, 11, 13, 3), (5, 5, 3, 4), 3), ((1, 7, 6, 2), (3, 2, 2, 3), 2)]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize("x_shape, kernel_shape, stride", CASES)
def test_value_and_gradients_equal_the_im2col_reference(x_shape, kernel_shape, stride, compiled):
    rng = np.random.default_rng(sum(x_shape) + stride)
    x, kernel = rng.normal(size=x_shape), rng.normal(size=kernel_shape)
    expected = reference.conv2d_valid(x, kernel, stride)
    out_gradient = rng.normal(size=expected.shape)   # L = Σ out ⊙ G, so ∂L/∂out = G

    def value_and_gradients(x, kernel):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            out = conv.conv2d(x, kernel, stride)
            loss = tf.reduce_sum(out * out_gradient)
        return (out, *tape.gradient(loss, [x, kernel]))

    run = tf.function(value_and_gradients, jit_compile=True) if compiled else value_and_gradients
    out, x_gradient, kernel_gradient = run(tf.constant(x), tf.constant(kernel))
    expected_x_gradient, expected_kernel_gradient = reference.conv2d_valid_gradients(x, kernel, stride, out_gradient)
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(x_gradient.numpy(), expected_x_gradient, rtol=0, atol=1e-12)
    np.testing.assert_allclose(kernel_gradient.numpy(), expected_kernel_gradient, rtol=0, atol=1e-12)


def test_the_gradient_reference_equals_central_differences():
    # The reference's own check: d/dε Σ conv(x + ε u, K + ε v) ⊙ G at ε = 0 equals ⟨∂x, u⟩ + ⟨∂K, v⟩.
    rng = np.random.default_rng(5)
    x, kernel, stride = rng.normal(size=(2, 7, 8, 3)), rng.normal(size=(3, 3, 3, 2)), 2
    out_gradient = rng.normal(size=reference.conv2d_valid(x, kernel, stride).shape)
    u, v = rng.normal(size=x.shape), rng.normal(size=kernel.shape)
    x_gradient, kernel_gradient = reference.conv2d_valid_gradients(x, kernel, stride, out_gradient)
    eps = 1e-6
    loss = lambda t: np.sum(reference.conv2d_valid(x + t * u, kernel + t * v, stride) * out_gradient)
    numeric = (loss(eps) - loss(-eps)) / (2 * eps)
    assert np.sum(x_gradient * u) + np.sum(kernel_gradient * v) == pytest.approx(numeric, rel=1e-7)
