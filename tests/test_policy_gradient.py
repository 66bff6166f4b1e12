"""The policy-gradient pieces (rawdqn/policy_gradient.py, losses.policy_gradient_loss) against
float64 NumPy references that walk each episode forwards, and hand-derived values; and the
exact policy gradient of rawdqn/reference.py's TabularMDP against finite differences of J."""
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings, strategies as st

from rawdqn import losses, policy_gradient, reference
from test_prioritized import assert_frequencies_match

MODES = {"eager": lambda f: f, "xla": lambda f: tf.function(f, jit_compile=True)}


def random_rollout(rng, steps, envs, end_probability):
    terminated = rng.random((steps, envs)) < end_probability / 2
    ended = terminated | (rng.random((steps, envs)) < end_probability / 2)   # truncated where not terminated
    return (rng.normal(size=(steps, envs)), terminated.astype(np.float64), ended.astype(np.float64),
            rng.normal(size=(steps, envs)), rng.normal(size=(steps, envs)))


@settings(max_examples=25, deadline=None)
@given(steps=st.integers(1, 12), envs=st.integers(1, 3), end_probability=st.sampled_from([0.0, 0.3, 0.7]),
       discount=st.sampled_from([0.0, 0.5, 0.99, 1.0]), lam=st.sampled_from([0.0, 0.5, 0.95, 1.0]),
       seed=st.integers(0, 2**16))
def test_returns_and_advantages_equal_the_forward_walks(steps, envs, end_probability, discount, lam, seed):
    rewards, terminated, ended, values, next_values = random_rollout(np.random.default_rng(seed), steps, envs,
                                                                     end_probability)
    want_returns = reference.discounted_returns(rewards, terminated, ended, discount, next_values)
    want_advantages = reference.generalized_advantages(rewards, terminated, ended, values, next_values, discount, lam)
    for wrap in MODES.values():
        got = wrap(policy_gradient.discounted_returns)(tf.constant(rewards), terminated, ended, discount, next_values)
        np.testing.assert_allclose(got.numpy(), want_returns, rtol=0, atol=1e-12)
        got = wrap(policy_gradient.generalized_advantages)(tf.constant(rewards), terminated, ended, values,
                                                           next_values, discount, lam)
        np.testing.assert_allclose(got.numpy(), want_advantages, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_gae_with_lambda_one_is_the_return_minus_the_value_and_with_zero_the_td_error(seed):
    rewards, terminated, ended, values, next_values = random_rollout(np.random.default_rng(seed), 20, 4, 0.3)
    # Within an episode V(s_{t+1}) is the next step's V(s_t): the sum of δ's telescopes.
    next_values[:-1] = np.where(ended[:-1] > 0, next_values[:-1], values[1:])
    returns = policy_gradient.discounted_returns(tf.constant(rewards), terminated, ended, 0.9, next_values)
    one = policy_gradient.generalized_advantages(tf.constant(rewards), terminated, ended, values, next_values, 0.9, 1.0)
    np.testing.assert_allclose(one.numpy(), returns.numpy() - values, rtol=0, atol=1e-12)
    zero = policy_gradient.generalized_advantages(tf.constant(rewards), terminated, ended, values, next_values, 0.9, 0.0)
    np.testing.assert_allclose(zero.numpy(), rewards + 0.9 * (1 - terminated) * next_values - values, rtol=0, atol=1e-12)


def test_returns_by_hand_terminated_truncated_and_the_rollout_end():
    # One env, γ = 0.5, rewards 1, 2, 3, 4, 5; step 1 terminates, step 3 is truncated
    # (V of its true final observation: 10), the rollout ends after step 4 (V(s_5) = 20):
    #   G_4 = 5 + 0.5·20 = 15;  G_3 = 4 + 0.5·10 = 9;  G_2 = 3 + 0.5·9 = 7.5
    #   G_1 = 2 (terminated: nothing after);  G_0 = 1 + 0.5·2 = 2
    rewards = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]])
    terminated = np.array([[0.0], [1.0], [0.0], [0.0], [0.0]])
    ended = np.array([[0.0], [1.0], [0.0], [1.0], [0.0]])
    next_values = np.array([[7.0], [8.0], [9.0], [10.0], [20.0]])   # used only where a return is cut
    got = policy_gradient.discounted_returns(tf.constant(rewards), terminated, ended, 0.5, next_values)
    np.testing.assert_array_equal(got.numpy()[:, 0], [2.0, 2.0, 7.5, 9.0, 15.0])


@pytest.mark.parametrize("masked", [False, True])
def test_log_policy_and_entropy_against_the_reference(masked):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(30, 5)) * 3
    mask = rng.random((30, 5)) < 0.6 if masked else None
    if masked:
        mask[np.arange(30), rng.integers(0, 5, 30)] = True   # every row has a legal action
    for wrap in MODES.values():
        log_probs = wrap(policy_gradient.log_policy)(tf.constant(logits), mask)
        np.testing.assert_allclose(log_probs.numpy(), reference.log_policy(logits, mask), rtol=0, atol=1e-12)
        got = wrap(policy_gradient.entropy)(tf.constant(logits), mask)
        np.testing.assert_allclose(got.numpy(), reference.entropy(logits, mask), rtol=0, atol=1e-12)
    # Equal logits over k legal actions: log π = −log k, H = log k.
    flat = np.zeros((5, 5))
    legal = np.tril(np.ones((5, 5), bool))
    np.testing.assert_allclose(policy_gradient.entropy(tf.constant(flat), legal).numpy(), np.log(np.arange(1, 6)),
                               rtol=0, atol=1e-15)


def test_sampled_actions_follow_the_masked_softmax():
    # χ² of 40,000 draws per row against π; illegal actions never drawn.
    logits = np.array([[0.0, 1.0, 2.0, -1.0], [3.0, 0.0, 0.0, 0.0]])
    mask = np.array([[True, True, True, False], [False, True, True, True]])
    draws = 40_000
    uniforms = tf.random.stateless_uniform([draws, 2, 4], seed=[3, 4], dtype=tf.float64)
    sample = tf.function(policy_gradient.sample_actions, jit_compile=True)
    actions = sample(tf.reshape(tf.tile(tf.constant(logits)[None], [draws, 1, 1]), [-1, 4]),
                     tf.reshape(uniforms, [-1, 4]), tf.reshape(tf.tile(mask[None], [draws, 1, 1]), [-1, 4]))
    actions = actions.numpy().reshape(draws, 2)
    probs = np.exp(reference.log_policy(logits, mask))
    for row in range(2):
        assert_frequencies_match(actions[:, row], probs[row])


def test_policy_gradient_loss_is_minus_the_mean_and_gives_no_gradient_to_the_advantages():
    log_probs = tf.Variable([-0.5, -1.0, -2.0], dtype=tf.float64)
    advantages = tf.Variable([1.0, -2.0, 4.0], dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss = losses.policy_gradient_loss(log_probs, advantages)
    grad_log_probs, grad_advantages = tape.gradient(loss, [log_probs, advantages])
    assert loss.numpy() == pytest.approx(-(-0.5 + 2.0 - 8.0) / 3, abs=1e-15)
    np.testing.assert_allclose(grad_log_probs.numpy(), [-1 / 3, 2 / 3, -4 / 3], rtol=0, atol=1e-15)
    assert grad_advantages is None
    # Over E = 2 episodes: the sum over steps, halved.
    assert losses.policy_gradient_loss(log_probs, advantages, normalizer=2).numpy() == pytest.approx(6.5 / 2, abs=1e-15)


def small_mdp(seed=0, states=4, actions=3):
    """Random dynamics with a 15–35% chance per step of ending the episode."""
    rng = np.random.default_rng(seed)
    transitions = rng.random((states, actions, states))
    transitions *= rng.uniform(0.65, 0.85, (states, actions, 1)) / transitions.sum(axis=2, keepdims=True)
    return reference.TabularMDP(transitions, rng.normal(size=(states, actions)), np.full(states, 1 / states)), rng


@pytest.mark.parametrize("discount", [0.9, 1.0])
def test_the_exact_policy_gradient_is_the_derivative_of_j(discount):
    # The policy-gradient theorem's ∇J against central differences of J(θ) = ρ₀ᵀ V^π (float64).
    mdp, rng = small_mdp()
    theta = rng.normal(size=(4, 3))

    def objective(parameters):
        return mdp.start @ mdp.values(parameters, discount)[0]
    numeric = np.zeros_like(theta)
    for index in np.ndindex(theta.shape):
        step = np.zeros_like(theta)
        step[index] = 1e-6
        numeric[index] = (objective(theta + step) - objective(theta - step)) / 2e-6
    np.testing.assert_allclose(mdp.policy_gradient(theta, discount), numeric, rtol=0, atol=1e-8)


def test_sampled_episodes_have_the_values_the_linear_solve_gives():
    # The MDP's episode sampler and its V^π agree: mean discounted return from the start ≈ ρ₀ᵀV^π.
    mdp, rng = small_mdp(1)
    theta = rng.normal(size=(4, 3))
    returns = []
    for _ in range(20_000):
        _, _, rewards = mdp.sample_episode(theta, rng)
        returns.append(np.sum(0.9 ** np.arange(len(rewards)) * rewards))
    want = mdp.start @ mdp.values(theta, 0.9)[0]
    assert abs(np.mean(returns) - want) < 4 * np.std(returns) / np.sqrt(len(returns))
