"""The layer norm (Ba et al. 2016; PQN's network) against float64 NumPy: its values, its
gradient by the hand-derived formula (reference.layer_norm_grad), and a Q-network with a
norm before each hidden relu."""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import network as networks, reference
from rawdqn.network import QNetwork


def compiled(function, mode):
    return function if mode == "eager" else tf.function(function, jit_compile=True)


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_the_norm_and_its_gradient_equal_the_references(mode):
    rng = np.random.default_rng(0)
    x, scale, offset, upstream = (rng.normal(size=shape) for shape in ((5, 7), (7,), (7,), (5, 7)))
    x[0] = 3.0   # a constant row: x − μ = 0, the output is β and ε keeps it finite

    def value_and_gradients(x, scale, offset):
        with tf.GradientTape() as tape:
            tape.watch([x, scale, offset])
            y = networks.layer_norm(x, scale, offset)
            loss = tf.reduce_sum(y * upstream)
        return (y, *tape.gradient(loss, [x, scale, offset]))
    y, dx, dscale, doffset = compiled(value_and_gradients, mode)(*(tf.constant(a) for a in (x, scale, offset)))
    np.testing.assert_allclose(y.numpy(), reference.layer_norm(x, scale, offset), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.numpy()[0], offset, rtol=1e-12)
    for got, expected in zip((dx, dscale, doffset), reference.layer_norm_grad(x, scale, upstream)):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["eager", "xla"])
@pytest.mark.parametrize("dueling", [False, True])
def test_a_q_network_normalises_each_hidden_layer_before_its_relu(mode, dueling):
    network = QNetwork(3, 4, (6, 5), seed=1, dtype=tf.float64, dueling=dueling, layer_norm=True)
    kernels = [kernel.numpy() for kernel in network.kernels]
    biases = [bias.numpy() for bias in network.biases]
    norms = [[view.numpy() for view in norm] for norm in network.norms]
    # γ = 1 and β = 0 at the start: move them, so the test sees where each is used.
    rng = np.random.default_rng(1)
    norms = [[g + rng.normal(scale=0.3, size=g.shape), b + rng.normal(scale=0.3, size=b.shape)] for g, b in norms]
    for view, value in zip([view for norm in network.norms for view in norm], [v for norm in norms for v in norm]):
        view.assign(value)
    obs = rng.normal(size=(8, 3))
    q = compiled(lambda o: network(o), mode)(tf.constant(obs)).numpy()

    def dense(x, layer, norm=None):
        y = x @ kernels[layer] + biases[layer]
        return y if norm is None else np.maximum(reference.layer_norm(y, *norms[norm]), 0.0)
    if dueling:   # 3 → 6 (shared), value 6 → 5 → 1, advantage 6 → 5 → 4; every hidden layer normed
        assert len(norms) == 3
        shared = dense(obs, 0, 0)
        expected = reference.dueling_q_values(dense(dense(shared, 1, 1), 2), dense(dense(shared, 3, 2), 4))
    else:
        assert len(norms) == 2
        expected = dense(dense(dense(obs, 0, 0), 1, 1), 2)
    np.testing.assert_allclose(q, expected, rtol=1e-12, atol=1e-12)


def test_layer_norm_and_radam_train_from_the_command_line(capsys, tmp_path):
    from cli_helpers import assert_usage_error, cli
    code, out, err = cli(capsys, "train", "--layer-norm", "--optimizer", "radam", "--steps", 300,
                         "--learning-starts", 100, "--hidden", 8, "--eval-interval", 0, "--no-keep-best",
                         "--eval-episodes", 1, "--logdir", tmp_path / "run")
    assert code == 0 and "evaluation: mean return" in out, err
    assert_usage_error(cli(capsys, "train", "--algo", "a2c", "--layer-norm", "--steps", 100),
                       "--layer-norm is a Q-learning option")
    assert_usage_error(cli(capsys, "train", "--optimizer", "radamw", "--steps", 100), "optimizer must be one of")
