"""IQN (Dabney et al. 2018b): the network's quantiles Z_τ and the update's target and loss
against float64 NumPy loops (rawdqn/reference.py), and the agent on the command line."""
import numpy as np
import pytest
import tensorflow as tf

from cli_helpers import assert_usage_error, cli
from rawdqn import reference
from rawdqn.algorithms import dqn
from rawdqn.config import DQNConfig
from rawdqn.network import ConvQNetwork, QNetwork
from rawdqn.replay import Transition


def layers(network):
    return [(kernel.numpy(), bias.numpy()) for kernel, bias in zip(network.kernels, network.biases)]


def mlp_torso(params, obs):
    hidden = np.asarray(obs, np.float64)
    for kernel, bias in params:
        hidden = np.maximum(hidden @ kernel + bias, 0.0)
    return hidden


def compiled(function, mode):
    return function if mode == "eager" else tf.function(function, jit_compile=True)


@pytest.mark.parametrize("mode", ["eager", "xla"])
@pytest.mark.parametrize("dueling", [False, True])
def test_the_mlp_quantiles_equal_the_reference(mode, dueling):
    network = QNetwork(3, 4, (6, 5), seed=1, dtype=tf.float64, dueling=dueling, embedding=8, policy_samples=5)
    params = layers(network)
    rng = np.random.default_rng(0)
    obs, taus = rng.normal(size=(7, 3)), rng.uniform(size=(7, 9))
    z = compiled(lambda o, t: network.logits(o, taus=t), mode)(tf.constant(obs), tf.constant(taus)).numpy()
    embedding = params[-1]
    psi = mlp_torso(params[:1], obs)   # ψ: what a dueling head would share, the layers before the last hidden one
    if dueling:   # value stream 6 → 5 → 1, advantage stream 6 → 5 → 4
        head = lambda x: reference.dueling_mlp_q_values([], params[1:3], params[3:5], x)  # noqa: E731
    else:
        head = lambda x: reference.mlp_q_values(params[1:3], x)  # noqa: E731
    expected = reference.implicit_quantiles(psi, *embedding, head, taus)
    assert z.shape == (7, 4, 9)
    np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)
    # Q: the mean over the K midpoints (2k + 1)/2K, by default
    midpoints = np.tile((2 * np.arange(5) + 1) / 10, (7, 1))
    q = compiled(lambda o: network(o), mode)(tf.constant(obs)).numpy()
    np.testing.assert_allclose(q, reference.implicit_quantiles(psi, *embedding, head, midpoints).mean(-1),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_the_conv_quantiles_equal_the_reference(mode):
    network = ConvQNetwork((6, 6, 2), 3, convs=((4, 3, 1),), hidden=(5,), seed=2, dtype=tf.float64, scale=1.0,
                           embedding=6, policy_samples=3)
    params = layers(network)
    rng = np.random.default_rng(1)
    frames, taus = rng.uniform(size=(4, 6, 6, 2)), rng.uniform(size=(4, 5))
    z = compiled(lambda f, t: network.logits(f, taus=t), mode)(tf.constant(frames), tf.constant(taus)).numpy()
    psi = reference.conv_features(params[:1], [1], frames, scale=1.0)   # ψ: the convolutions, flattened
    expected = reference.implicit_quantiles(psi, *params[-1], lambda x: reference.mlp_q_values(params[1:3], x), taus)
    np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("double_q", [False, True])
def test_the_target_and_the_loss_against_the_reference(double_q):
    """T_j = r + γ(1 − terminated) Z_τ'_j(s', a*; θ⁻), a* = argmax_a mean_k Z_τ̃_k(s', a) under θ⁻
    (double Q: θ), and L = mean_b Σ_i mean_j ρ^κ_τ_i(T_j − Z_τ_i(s, a; θ))."""
    config = DQNConfig(implicit_quantiles=True, double_q=double_q, discount=0.9, quantile_embedding=4)
    network = QNetwork(3, 2, (6, 5), seed=3, dtype=tf.float64, embedding=4)
    rng = np.random.default_rng(2)
    # θ⁻ unlike θ: a scaled θ (zero biases, relu) would rank the actions as θ does.
    online = network.theta.read_value()
    target_params = online + tf.constant(rng.normal(scale=0.3, size=online.shape))
    batch = Transition(tf.constant(rng.normal(size=(5, 3))), tf.constant([0, 1, 1, 0, 1]),
                       tf.constant(rng.normal(size=5)), tf.constant(rng.normal(size=(5, 3))),
                       tf.constant([0.0, 1.0, 0.0, 0.0, 0.0], tf.float64))
    levels = dqn.Levels(*(tf.constant(rng.uniform(size=(5, m))) for m in (7, 3, 6)))   # N' = 7, K = 3, N = 6

    def quantiles(theta, obs, taus):   # the reference network at θ
        network.theta.assign(theta)
        params = layers(network)
        return reference.implicit_quantiles(mlp_torso(params[:1], obs), *params[-1],
                                            lambda x: reference.mlp_q_values(params[1:3], x), taus)
    next_target = quantiles(target_params, batch.next_obs.numpy(), levels.target_next.numpy())
    chooser = quantiles(online if double_q else target_params, batch.next_obs.numpy(), levels.chooser.numpy())
    best = chooser.mean(-1).argmax(-1)
    expected = batch.reward.numpy()[:, None] + 0.9 * (1 - batch.terminated.numpy())[:, None] * \
        next_target[np.arange(5), best]
    chosen = quantiles(online, batch.obs.numpy(), levels.online.numpy())[np.arange(5), batch.action.numpy()]
    expected_loss = reference.quantile_huber_loss(chosen, levels.online.numpy(), expected, 1.0)
    network.theta.assign(online)
    y = dqn.target(config, network, online, target_params, batch, levels=levels)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    loss, _, _, per_sample = dqn.loss(config, network, online, batch, y, levels=levels.online)
    np.testing.assert_allclose(per_sample.numpy(), expected_loss, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(loss.numpy(), expected_loss.mean(), rtol=1e-12)


def test_iqn_trains_exports_and_evaluates_from_the_command_line(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli(capsys, "train", "--algo", "iqn", "--dueling", "--double-q", "--n-step", 3, "--prioritized",
                         "--quantile-samples", "8,8,4", "--steps", 400, "--learning-starts", 100, "--hidden", 8,
                         "--eval-interval", 0, "--no-keep-best", "--eval-episodes", 2, "--logdir", run)
    assert code == 0, err
    assert out.splitlines()[0].startswith("rawdqn: training IQN on CartPole-v1 for 400 steps")
    assert cli(capsys, "eval", run, "--episodes", 2)[0] == 0
    assert cli(capsys, "export", run, "--out", tmp_path / "policy")[0] == 0
    code, out, err = cli(capsys, "train", "--algo", "qr-dqn", "--steps", 200, "--learning-starts", 100, "--hidden", 8,
                         "--eval-interval", 0, "--no-keep-best", "--eval-episodes", 1, "--logdir", tmp_path / "qr")
    assert code == 0 and out.splitlines()[0].startswith("rawdqn: training QR-DQN on CartPole-v1"), err


@pytest.mark.parametrize("args, message", [
    (("--algo", "iqn", "--noisy"), "--implicit-quantiles does not combine with --noisy"),
    (("--algo", "iqn", "--quantile-regression"), "--quantile-regression and --implicit-quantiles each replace"),
    (("--implicit-quantiles", "--quantile-samples", "64,0,32"), "expected three whole numbers >= 1"),
    (("--implicit-quantiles", "--quantile-samples", "64,64"), "expected three whole numbers >= 1"),
    (("--implicit-quantiles", "--quantile-embedding", "0"), "quantile_embedding must be >= 1"),
    (("--algo", "a2c", "--implicit-quantiles"), "--implicit-quantiles is a DQN option"),
    (("--algo", "iqm"), "algo must be one of"),
])
def test_bad_iqn_flags_are_one_line_errors(capsys, args, message):
    assert_usage_error(cli(capsys, "train", *args, "--steps", 100), message)


def test_one_frame_through_a_large_fc_layer_acts():
    """Acting in one env: a single row, where a plain network pads a second row for XLA's sake
    (network.dense_layers); an implicit network's M rows per state need no pad. MinAtar's shape,
    its fc kernel 1,024 × 64 (2¹⁶ elements)."""
    network = ConvQNetwork((10, 10, 4), 3, convs=((16, 3, 1),), hidden=(64,), seed=3, dtype=tf.float64,
                           scale=1.0, embedding=8, policy_samples=4)
    params = layers(network)
    frame = np.random.default_rng(4).uniform(size=(1, 10, 10, 4))
    q = tf.function(lambda f: network(f), jit_compile=True)(tf.constant(frame)).numpy()
    psi = reference.conv_features(params[:1], [1], frame, scale=1.0)
    midpoints = ((2 * np.arange(4) + 1) / 8)[None]
    expected = reference.implicit_quantiles(psi, *params[-1], lambda x: reference.mlp_q_values(params[1:3], x),
                                            midpoints).mean(-1)
    np.testing.assert_allclose(q, expected, rtol=1e-12, atol=1e-12)


def test_iqn_trains_on_minatar_from_the_command_line(capsys, tmp_path):
    pytest.importorskip("minatar", reason="MinAtar IQN needs the minatar extra: pip install \"rawdqn[minatar]\"")
    code, out, err = cli(capsys, "train", "--env", "MinAtar/Breakout-v1", "--algo", "iqn", "--steps", 300,
                         "--learning-starts", 200, "--replay-capacity", 1000, "--quantile-samples", "4,4,2",
                         "--eval-episodes", 1, "--logdir", tmp_path / "run")
    assert code == 0 and "training IQN on MinAtar/Breakout-v1" in out, err
