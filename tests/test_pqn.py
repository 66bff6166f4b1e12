"""PQN's pure functions (rawdqn/algorithms/pqn.py) against float64 NumPy written here: the
rollout's Peng's Q(λ) targets across terminations and truncations, and one update of a
layer-normed network through its hand-written backward pass, clipping and RAdam."""
import collections

import numpy as np
import pytest
import tensorflow as tf

from rawdqn import optim, reference
from rawdqn.algorithms import pqn
from rawdqn.network import QNetwork


def q_of(network, obs):
    """The network's Q-values in NumPy: x W0 + b0 → LN(γ, β) → relu → · W1 + b1."""
    (w0, w1), (b0, b1) = [k.numpy() for k in network.kernels], [b.numpy() for b in network.biases]
    gamma, beta = (view.numpy() for view in network.norms[0])
    hidden = np.maximum(reference.layer_norm(obs @ w0 + b0, gamma, beta), 0.0)
    return hidden @ w1 + b1


def layer_normed_network(seed=0):
    network = QNetwork(3, 2, (5,), seed=seed, dtype=tf.float64, layer_norm=True)
    rng = np.random.default_rng(seed + 10)
    for view in network.norms[0]:   # away from γ = 1, β = 0, so the test sees them used
        view.assign(view.numpy() + rng.normal(scale=0.3, size=view.shape))
    return network


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_the_returns_equal_pengs_q_lambda_written_step_by_step(mode):
    network, rng = layer_normed_network(), np.random.default_rng(1)
    steps, envs, gamma, lam = 6, 3, 0.9, 0.65
    obs, next_obs = rng.normal(size=(steps, envs, 3)), rng.normal(size=(steps, envs, 3))
    reward = rng.normal(size=(steps, envs))
    terminated, ended = np.zeros((steps, envs)), np.zeros((steps, envs))
    terminated[2, 0] = ended[2, 0] = 1.0        # a termination inside the rollout
    ended[3, 1] = 1.0                           # a truncation inside: bootstrap, cut the trace
    terminated[5, 2] = ended[5, 2] = 1.0        # a termination at its last step
    rollout = pqn.Rollout(*(tf.constant(x) for x in (obs, np.zeros((steps, envs), np.int32), reward, next_obs,
                                                     terminated, ended)))
    compute = lambda: pqn.returns(network, network.theta.read_value(), rollout, gamma, lam)  # noqa: E731
    got = (tf.function(compute, jit_compile=True)() if mode == "xla" else compute()).numpy()
    best_next = q_of(network, next_obs.reshape(-1, 3)).max(-1).reshape(steps, envs)
    expected = np.zeros((steps, envs))
    for n in range(envs):
        for t in reversed(range(steps)):
            bootstrap = gamma * (1.0 - terminated[t, n])
            if t == steps - 1 or ended[t, n]:
                expected[t, n] = reward[t, n] + bootstrap * best_next[t, n]
            else:
                expected[t, n] = reward[t, n] + bootstrap * ((1 - lam) * best_next[t, n] + lam * expected[t + 1, n])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert expected[2, 0] == reward[2, 0]   # terminated: no bootstrap


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_one_update_equals_a_numpy_update(mode):
    """½ mean (G − Q(s, a))² backpropagated by hand through the output layer, the relu, the
    layer norm (reference.layer_norm_grad) and the first layer; clipped by global norm; then
    reference.radam_step at the decayed α."""
    network, rng = layer_normed_network(2), np.random.default_rng(3)
    batch, max_norm, alpha = 7, 0.5, pqn.learning_rate(1e-2, 3, 10)
    obs, action, target = rng.normal(size=(batch, 3)), rng.integers(0, 2, batch), rng.normal(size=batch) * 3
    optimizer = optim.RAdam(1e-2)
    optimizer.build([network.theta])
    params, state = network.theta.read_value(), optimizer.read_state()

    def step():
        return pqn.update(network, optimizer, params, state, tf.constant(obs), tf.constant(action, tf.int32),
                          tf.constant(target), max_norm, alpha)
    new_params, _, info = tf.function(step, jit_compile=True)() if mode == "xla" else step()

    (w0, w1), (b0, b1) = [k.numpy() for k in network.kernels], [b.numpy() for b in network.biases]
    gamma, beta = (view.numpy() for view in network.norms[0])
    pre = obs @ w0 + b0
    normed = reference.layer_norm(pre, gamma, beta)
    hidden = np.maximum(normed, 0.0)
    q = hidden @ w1 + b1
    error = target - q[np.arange(batch), action]
    loss = np.mean(0.5 * error ** 2)
    d_q = np.zeros_like(q)
    d_q[np.arange(batch), action] = -error / batch
    d_w1, d_b1, d_hidden = hidden.T @ d_q, d_q.sum(0), d_q @ w1.T
    d_pre, d_gamma, d_beta = reference.layer_norm_grad(pre, gamma, d_hidden * (normed > 0))
    grads = [obs.T @ d_pre, d_pre.sum(0), d_w1, d_b1, d_gamma, d_beta]   # θ's order: layers, then norms
    clipped, norm = reference.clip_by_global_norm(grads, max_norm)
    assert norm > max_norm   # the clip is exercised
    theta = [w0, b0, w1, b1, gamma, beta]
    stepped, _ = reference.radam_step(theta, clipped, None, float(alpha))
    np.testing.assert_allclose(info.loss.numpy(), loss, rtol=1e-12)
    np.testing.assert_allclose(info.grad_norm.numpy(), norm, rtol=1e-12)
    np.testing.assert_allclose(new_params.numpy(), np.concatenate([x.ravel() for x in stepped]), rtol=1e-12,
                               atol=1e-12)


def test_a_rollouts_training_makes_epochs_times_minibatches_updates_on_a_permutation():
    indices = pqn.minibatch_indices(tf.constant([4, 2]), 12, 3).numpy()
    assert indices.shape == (3, 4) and sorted(indices.ravel()) == list(range(12))
    np.testing.assert_allclose([pqn.learning_rate(2.0, k, 4).numpy() for k in (0, 1, 4, 6)], [2.0, 1.5, 0.0, 0.0])
    network, rng = layer_normed_network(4), np.random.default_rng(5)
    rollout = pqn.Rollout(tf.constant(rng.normal(size=(4, 3, 3))), tf.constant(rng.integers(0, 2, (4, 3)), tf.int32),
                          tf.constant(rng.normal(size=(4, 3))), tf.constant(rng.normal(size=(4, 3, 3))),
                          tf.zeros((4, 3), tf.float64), tf.zeros((4, 3), tf.float64))
    config = collections.namedtuple("Config", "discount q_lambda epochs minibatches max_grad_norm learning_rate")(
        0.99, 0.65, 2, 3, 10.0, 1e-3)
    optimizer = optim.RAdam(1e-3)
    optimizer.build([network.theta])
    params, state, info = pqn.train(network, optimizer, network.theta.read_value(), optimizer.read_state(), rollout,
                                    config, tf.constant([0, 1]), 0, 100)
    assert int(state.step) == 6 and np.isfinite(info.loss.numpy())
    assert not np.allclose(params.numpy(), network.theta.numpy())
