"""Noisy nets (Fortunato et al. 2018, factorised Gaussian) against NumPy.

The network's factored product x μ_W + ((x ⊙ f_in) σ_W) ⊙ f_out against the whole noise
matrix written out (reference.noisy_linear); the noise's statistics against its moments;
the update against central differences of the NumPy loss under the same noise.
"""
import math

import numpy as np
import pytest
import tensorflow as tf

from rawdqn import reference
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig
from rawdqn.network import QNetwork


def layers(net, theta=None):
    """[(μ_W, μ_b, σ_W, σ_b)] per layer, from θ (or the network's)."""
    theta = net.theta.numpy() if theta is None else theta
    out = []
    for kernel, bias, (sigma_kernel, sigma_bias) in zip(net.kernels, net.biases, net.noise_scales):
        out.append(tuple(theta[v.start:v.start + v.size].reshape(v.shape) for v in (kernel, bias, sigma_kernel, sigma_bias)))
    return out


def numpy_forward(net, obs, noise, theta=None):
    x = np.asarray(obs, np.float64)
    params = layers(net, theta)
    for index, (params_l, (noise_in, noise_out)) in enumerate(zip(params, noise)):
        x = reference.noisy_linear(x, *params_l, noise_in, noise_out)
        if index < len(params) - 1:
            x = np.maximum(x, 0)
    return x


def test_initialisation_follows_the_paper():
    net = QNetwork(5, 3, (7,), noisy=True, noisy_sigma=0.5, dtype=tf.float64)
    for (mu_kernel, mu_bias, sigma_kernel, sigma_bias), fan_in in zip(layers(net), (5, 7)):
        bound = 1 / math.sqrt(fan_in)
        assert np.abs(mu_kernel).max() <= bound and np.abs(mu_bias).max() <= bound and np.abs(mu_bias).max() > 0
        np.testing.assert_array_equal(sigma_kernel, 0.5 / math.sqrt(fan_in))
        np.testing.assert_array_equal(sigma_bias, 0.5 / math.sqrt(fan_in))
    assert net.num_parameters == 2 * ((5 + 1) * 7 + (7 + 1) * 3)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_forward_matches_the_noise_matrix_written_out(compiled):
    rng = np.random.default_rng(0)
    net = QNetwork(4, 3, (6, 5), noisy=True, dtype=tf.float64)
    net.theta.assign(rng.normal(0, 0.5, net.theta.shape))
    obs = rng.normal(size=(7, 4))

    def forward(obs):
        noise = net.sample_noise()
        return net(obs, noise=noise), noise
    if compiled:
        forward = tf.function(forward, jit_compile=True)
    q_values, noise = forward(tf.constant(obs))
    noise = [(a.numpy(), b.numpy()) for a, b in noise]
    np.testing.assert_allclose(q_values.numpy(), numpy_forward(net, obs, noise), rtol=0, atol=1e-12)
    # Without noise, μ alone (evaluation and export).
    zero = [(np.zeros_like(a), np.zeros_like(b)) for a, b in noise]
    np.testing.assert_allclose(net(tf.constant(obs)).numpy(), numpy_forward(net, obs, zero), rtol=0, atol=1e-12)


def test_noise_statistics():
    # One noisy linear layer with μ = 0: y_j = f(ε_j) (Σ_i σ_ij x_i f(ε_i) + σ_bj), whose mean is 0 and
    # variance E f² · (E f² Σ_i σ_ij² x_i² + σ_bj²), E f(ε)² = E|ε| = √(2/π); fresh noise every pass.
    net = QNetwork(3, 2, (), noisy=True, dtype=tf.float64)
    sigma_kernel = np.array([[0.5, 1.0], [0.2, 0.3], [1.5, 0.1]])
    sigma_bias = np.array([0.4, 0.8])
    net.theta.assign(np.concatenate([np.zeros(8), sigma_kernel.ravel(), sigma_bias]))
    x = tf.constant([[1.0, -2.0, 0.5]], tf.float64)
    draw = tf.function(lambda: net(x, noise=net.sample_noise())[0])
    samples = np.array([draw().numpy() for _ in range(20_000)])
    moment = math.sqrt(2 / math.pi)
    variance = moment * (moment * (sigma_kernel ** 2 * np.array([1.0, 4.0, 0.25])[:, None]).sum(0) + sigma_bias ** 2)
    assert np.all(np.abs(samples.mean(0)) < 4 * np.sqrt(variance / 20_000)), samples.mean(0)
    np.testing.assert_allclose(samples.var(0), variance, rtol=0.05)
    assert len({tuple(row) for row in samples[:100]}) == 100   # a new draw each forward pass
    again = QNetwork(3, 2, (), noisy=True, dtype=tf.float64)   # the same seed: the same noise sequence
    np.testing.assert_array_equal(again.sample_noise()[0][0].numpy(), QNetwork(3, 2, (), noisy=True, dtype=tf.float64)
                                  .sample_noise()[0][0].numpy())


def numpy_loss(theta, agent, batch, online_noise, target_noise):
    obs, action, reward, next_obs, terminated = batch
    target = reference.q_learning_target(reward, terminated, agent.config.discount,
                                         numpy_forward(agent.target, next_obs, target_noise))
    return reference.squared_loss(reference.td_error(numpy_forward(agent.online, obs, online_noise, theta),
                                                     action, target))


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_one_update_matches_central_differences_under_the_same_noise(mode):
    rng = np.random.default_rng(3)
    config = DQNConfig(hidden=(4,), noisy=True, optimizer="sgd", learning_rate=0.2, max_grad_norm=None,
                       dtype="float64", mode=mode, batch_size=5, replay_capacity=16, discount=0.9)
    agent = DQN(3, 2, config, seed=2)
    agent.online.theta.assign(rng.normal(0, 0.5, agent.online.theta.shape))
    batch = (rng.normal(size=(5, 3)), rng.integers(0, 2, 5), rng.normal(size=5), rng.normal(size=(5, 3)),
             np.array([0, 1, 0, 0, 0], np.float64))
    # The noise learn will draw: each network's next pass, read here and the counters put back.
    noises = []
    for network in (agent.online, agent.target):
        draws = int(network.noise_draws.numpy())
        noises.append([(a.numpy(), b.numpy()) for a, b in network.sample_noise()])
        network.noise_draws.assign(draws)
    theta = agent.online.theta.numpy()
    agent.learn(batch)
    h, gradient = 1e-6, np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        gradient[i] = (numpy_loss(theta + step, agent, batch, *noises) - numpy_loss(theta - step, agent, batch, *noises)) / (2 * h)
    sigma_part = slice(agent.online.noise_scales[0][0].start, None)
    assert np.abs(gradient[sigma_part]).max() > 1e-3   # the σ's learn too
    np.testing.assert_allclose(agent.online.theta.numpy(), theta - 0.2 * gradient, rtol=0, atol=1e-8)


def test_noisy_agents_do_not_explore_by_epsilon():
    # ε_start = 1 would make every action uniform; a noisy agent acts greedily on its noisy Q.
    config = DQNConfig(hidden=(8,), noisy=True, epsilon_start=1.0, epsilon_end=1.0, mode="function")
    agent = DQN(4, 3, config, seed=0)
    obs = np.random.default_rng(0).normal(size=(1, 4))
    for _ in range(20):
        draws = int(agent.online.noise_draws.numpy())
        noise = agent.online.sample_noise()
        agent.online.noise_draws.assign(draws)
        greedy = int(np.argmax(agent.online(obs, noise=noise).numpy()))
        assert int(agent.begin(obs)[0]) == greedy
