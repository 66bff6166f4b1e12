"""The conv Q-network (Mnih et al. 2015's shape) against a float64 NumPy im2col reference.

The reference (rawdqn/reference.py's conv_q_values) builds each output position's patch
as a row and multiplies by the flattened kernel: no TensorFlow, no convolution routine.
"""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import reference
from rawdqn.network import MINATAR_CONVS, MINATAR_HIDDEN, NATURE_CONVS, NATURE_HIDDEN, ConvQNetwork

SMALL = dict(frame_shape=(11, 9, 3), num_actions=4, convs=((5, 3, 2), (6, 2, 1)), hidden=(7,))


def reference_params(net):
    """θ's slices as the reference's (kernel, bias) pairs, conv layers then dense layers."""
    pairs = [(kernel.numpy(), bias.numpy()) for kernel, bias in zip(net.kernels, net.biases)]
    return pairs[:len(net.convs)], [stride for _, _, stride in net.convs], pairs[len(net.convs):]


def random_theta(net, rng):
    net.theta.assign(rng.normal(0.0, 0.5, net.theta.shape))   # biases non-zero too


def test_conv2d_by_im2col_matches_a_hand_computation():
    # x = [[0, 1, 2], [3, 4, 5], [6, 7, 8]] (one channel), K = [[1, 0], [0, -1]], stride 1:
    # out[i, j] = x[i, j] − x[i+1, j+1] = −4 everywhere.  Stride 2: only out[0, 0] = 0 − 4 = −4.
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    kernel = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
    np.testing.assert_array_equal(reference.conv2d_valid(x, kernel, 1)[0, :, :, 0], [[-4, -4], [-4, -4]])
    np.testing.assert_array_equal(reference.conv2d_valid(x, kernel, 2)[0, :, :, 0], [[-4]])


@pytest.mark.parametrize("conv_gradients", ["tf", "forward", "im2col", ("im2col", "forward")])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_forward_matches_the_float64_reference(compiled, conv_gradients):
    rng = np.random.default_rng(0)
    net = ConvQNetwork(**SMALL, dtype=tf.float64, conv_gradients=conv_gradients)
    random_theta(net, rng)
    frames = rng.integers(0, 256, (6, *SMALL["frame_shape"]), dtype=np.uint8)
    forward = tf.function(net, jit_compile=True) if compiled else net
    got = forward(tf.constant(frames)).numpy()
    expected = reference.conv_q_values(*reference_params(net), frames)
    assert got.shape == (6, SMALL["num_actions"])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_one_frame_through_a_large_fc_layer_matches_the_reference(compiled):
    # A first dense kernel of ≥ 2¹⁶ entries (here 36 × 2048) takes the one-row path of
    # dense_layers (a zero row padded on, dropped after): the acting forward of one env.
    rng = np.random.default_rng(2)
    net = ConvQNetwork(**dict(SMALL, hidden=(2048,)), dtype=tf.float64)
    assert net.kernels[len(net.convs)].size >= 2 ** 16
    random_theta(net, rng)
    frames = rng.integers(0, 256, (1, *SMALL["frame_shape"]), dtype=np.uint8)
    forward = tf.function(net, jit_compile=True) if compiled else net
    got = forward(tf.constant(frames)).numpy()
    assert got.shape == (1, SMALL["num_actions"])
    np.testing.assert_allclose(got, reference.conv_q_values(*reference_params(net), frames), rtol=0, atol=1e-12)


def test_nchw_layout_gives_the_same_q_values_under_xla():
    # NCHW is cuDNN's layout; XLA runs it on the CPU too. θ means the same in both layouts.
    rng = np.random.default_rng(1)
    nhwc = ConvQNetwork(**SMALL, dtype=tf.float64)
    nchw = ConvQNetwork(**SMALL, dtype=tf.float64, data_format="NCHW")
    random_theta(nhwc, rng)
    nchw.theta.assign(nhwc.theta)
    frames = tf.constant(rng.integers(0, 256, (3, *SMALL["frame_shape"]), dtype=np.uint8))
    np.testing.assert_allclose(tf.function(nchw, jit_compile=True)(frames).numpy(),
                               reference.conv_q_values(*reference_params(nhwc), frames.numpy()), rtol=0, atol=1e-12)


@pytest.mark.parametrize("conv_gradients", ["tf", "forward", "im2col", ("forward", "im2col")])
def test_gradient_matches_central_differences_of_the_reference(conv_gradients):
    # d/dε of Σ_b,a w_ba Q(s_b, a; θ + ε·u) at ε = 0, along a random direction u; under XLA.
    rng = np.random.default_rng(2)
    net = ConvQNetwork(**SMALL, dtype=tf.float64, conv_gradients=conv_gradients)
    random_theta(net, rng)
    frames = rng.integers(0, 256, (4, *SMALL["frame_shape"]), dtype=np.uint8)
    weights = rng.normal(size=(4, SMALL["num_actions"]))

    @tf.function(jit_compile=True)
    def gradient():
        with tf.GradientTape() as tape:
            objective = tf.reduce_sum(net(frames) * weights)
        return tape.gradient(objective, net.theta)
    directional = float(tf.reduce_sum(gradient() * (u := rng.normal(size=net.theta.shape))))
    theta, eps = net.theta.numpy(), 1e-6

    def reference_objective(point):
        net.theta.assign(point)
        return float(np.sum(reference.conv_q_values(*reference_params(net), frames) * weights))
    numeric = (reference_objective(theta + eps * u) - reference_objective(theta - eps * u)) / (2 * eps)
    assert directional == pytest.approx(numeric, rel=1e-6)


def test_uint8_frames_are_scaled_on_the_device():
    # uint8 frames in, scaled by 1/255 inside, equal float frames scaled on the host into an unscaled network.
    net, unscaled = ConvQNetwork(**SMALL), ConvQNetwork(**SMALL, scale=1.0)
    frames = np.random.default_rng(3).integers(0, 256, (2, *SMALL["frame_shape"]), dtype=np.uint8)
    np.testing.assert_allclose(net(frames).numpy(), unscaled(frames.astype(np.float32) / 255).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_nature_and_minatar_shapes_and_parameter_counts():
    # Nature, 84×84×4 → 20×20×32 → 9×9×64 → 7×7×64 = 3,136 → 512 → 18 actions:
    # 8·8·4·32+32 = 8,224;  4·4·32·64+64 = 32,832;  3·3·64·64+64 = 36,928;
    # 3,136·512+512 = 1,606,144;  512·18+18 = 9,234;  in all 1,693,362 (Mnih et al. 2015).
    nature = ConvQNetwork((84, 84, 4), 18, NATURE_CONVS, NATURE_HIDDEN)
    assert nature.flat_size == 3_136 and nature.num_parameters == 1_693_362
    assert nature(np.zeros((2, 84, 84, 4), np.uint8)).shape == (2, 18)
    # MinAtar Breakout, 10×10×4 → 8×8×16 = 1,024 → 128 → 3:  3·3·4·16+16 = 592;  1,024·128+128 = 131,200;  128·3+3 = 387.
    minatar = ConvQNetwork((10, 10, 4), 3, MINATAR_CONVS, MINATAR_HIDDEN)
    assert minatar.flat_size == 1_024 and minatar.num_parameters == 592 + 131_200 + 387


def test_auto_picks_each_layer_form_by_its_shape_under_xla_on_the_cpu():
    # MinAtar's 10×10 input: 8·8 windows of 3·3·C values, 2,304 for C = 4, within
    # conv.IM2COL_MAX_PATCH_VALUES (8,192); the Nature network's 84×84×4 input: 20·20 windows
    # of 8·8·4 = 102,400 values, beyond it.
    from rawdqn.pixel_agent import conv_q_network
    from rawdqn.presets import preset
    minatar = preset("MinAtar/Breakout-v1")
    assert conv_q_network((10, 10, 4), 3, minatar).conv_gradients == ("im2col",)
    nature = minatar.replace(convs=NATURE_CONVS, hidden=NATURE_HIDDEN)
    assert conv_q_network((84, 84), 6, nature.replace(history=4)).conv_gradients == ("forward",) * 3
    assert conv_q_network((10, 10, 4), 3, minatar.replace(mode="hybrid")).conv_gradients == ("tf",)
    assert conv_q_network((10, 10, 4), 3, minatar.replace(conv_gradients="forward")).conv_gradients == ("forward",)


@pytest.mark.parametrize("conv_gradients, data_format", [("im2col", "NCHW"), ("forward", "NCHW"), ("fft", "NHWC"),
                                                         (("tf",), "NHWC")])   # one form for two layers
def test_a_bad_conv_form_is_refused(conv_gradients, data_format):
    with pytest.raises(ValueError, match="conv_gradients must be one of"):
        ConvQNetwork(**SMALL, conv_gradients=conv_gradients, data_format=data_format)


def test_a_conv_that_does_not_fit_the_frame_is_refused():
    with pytest.raises(ValueError, match="a 8×8 conv does not fit a 6×6 input"):
        ConvQNetwork((6, 6, 1), 2, NATURE_CONVS)
