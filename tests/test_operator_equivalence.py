"""A linear one-hot learner with each one-step target *is* its tabular learner, step by step.

With x = onehot(s), no bias and no hidden layer, Q(s, ·) = x W = W[s]: the weights are the
Q-table. One SGD step of rate α on L = ½δ², δ = y − W[s, a], changes W[s, a] alone, by +αδ:
the tabular update Q[s, a] ← Q[s, a] + α (y − Q[s, a]), whatever y is. So each target of
bellman.py, fed to the same losses and optimizer as DQN, is its tabular algorithm:

    SARSA            y = r + γ (1 − terminated) Q[s', a']                  (a' the next action taken)
    expected SARSA   y = r + γ (1 − terminated) Σ_a' π(a'|s') Q[s', a']      (π ε-greedy in Q)
    Q(λ), λ = 0      y = r + γ (1 − terminated) max_a' Q[s', a']            (Q-learning)

Each table, driven by the same ε-greedy stream on a toy-text environment, must agree with its
NumPy tabular learner (written here, loops over dicts of floats) to 1e-12 after every step."""
import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import bellman, losses, multistep, optim
from rawdqn.network import QNetwork

ALPHA, DISCOUNT, EPSILON = 0.1, 0.99, 0.3


def epsilon_greedy_probs(q_row):
    """π(·|s): ε/|A| everywhere, 1 − ε more on the first greedy action."""
    probs = np.full(len(q_row), EPSILON / len(q_row))
    probs[int(np.argmax(q_row))] += 1.0 - EPSILON
    return probs


def tabular_target(kind, table, reward, terminated, next_state, next_action):
    """The tabular algorithms' targets, written out."""
    if terminated:
        return reward
    row = table[next_state]
    if kind == "sarsa":
        return reward + DISCOUNT * row[next_action]
    if kind == "expected-sarsa":
        return reward + DISCOUNT * sum(p * q for p, q in zip(epsilon_greedy_probs(row), row))
    return reward + DISCOUNT * max(row)


def network_target(kind, network, theta, reward, terminated, next_state, next_action, num_states):
    """The same target from bellman.py / multistep.py on the network's Q-values."""
    next_q = network.apply(theta, tf.one_hot([next_state], num_states, dtype=tf.float64))
    reward, terminated = tf.constant([reward], tf.float64), tf.constant([float(terminated)], tf.float64)
    if kind == "sarsa":
        return bellman.sarsa_target(reward, terminated, DISCOUNT, next_q, [next_action])
    if kind == "expected-sarsa":
        probs = tf.constant([epsilon_greedy_probs(next_q.numpy()[0])], tf.float64)
        return bellman.expected_sarsa_target(reward, terminated, DISCOUNT, next_q, probs)
    # Q(λ) with λ = 0 over a one-step sequence: discounts are γ, or 0 where the step terminated.
    discounts = DISCOUNT * (1.0 - terminated)[None]
    return multistep.peng_q_lambda_returns(reward[None], discounts, next_q[None], 0.0)[0]


@pytest.mark.parametrize("env_id", ["CliffWalking-v1", "Taxi-v4"])
@pytest.mark.parametrize("kind", ["sarsa", "expected-sarsa", "q-lambda-0"])
def test_linear_learner_equals_tabular_learner_step_by_step(kind, env_id):
    env = gym.make(env_id)
    num_states, num_actions = int(env.observation_space.n), int(env.action_space.n)
    network = QNetwork(num_states, num_actions, hidden=(), dtype=tf.float64, use_bias=False, initializer="zeros")
    optimizer = optim.SGD(ALPHA)
    theta, state_opt = network.theta.read_value(), optim.OptimizerState(tf.constant(0, tf.int64), ())
    table = np.zeros((num_states, num_actions))
    rng = np.random.default_rng(3)

    def act(q_row):
        return int(rng.choice(num_actions, p=epsilon_greedy_probs(q_row)))
    state, _ = env.reset(seed=3)
    action = act(table[state])
    for _ in range(600):
        next_state, reward, terminated, truncated, _ = env.step(action)
        next_action = act(table[next_state])   # SARSA's a': the action taken next (unless the episode ended)
        y = tabular_target(kind, table, reward, terminated, next_state, next_action)
        table[state, action] += ALPHA * (y - table[state, action])

        target = network_target(kind, network, theta, reward, terminated, next_state, next_action, num_states)
        with tf.GradientTape() as tape:
            tape.watch(theta)
            q_values = network.apply(theta, tf.one_hot([state], num_states, dtype=tf.float64))
            loss = losses.squared_loss(losses.td_error(q_values, tf.constant([action]), target))
        (theta,), state_opt = optimizer.update([tape.gradient(loss, theta)], [theta], state_opt)
        np.testing.assert_allclose(tf.reshape(theta, [num_states, num_actions]).numpy(), table, rtol=0, atol=1e-12)

        if terminated or truncated:
            next_state, _ = env.reset()
            next_action = act(table[next_state])
        state, action = next_state, next_action
    assert np.count_nonzero(table) > 50   # rewards reached many entries: the tables are not trivially equal


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "CliffWalking-v1"])
def test_expected_sarsa_under_a_fixed_policy_converges_to_q_pi_from_the_linear_solve(env_id):
    """Expected SARSA's target, averaged over the environment's model (its expected update over
    every (s, a) at once), iterated from Q = 0, converges to Q^π, which the Bellman equation
    for π gives exactly as a linear system: (I − γ P Π) q = r̄, with P[(s, a), s'] the model's
    transitions (0 after a terminal one), Π[s', (s', a')] = π(a'|s') and r̄ the expected reward."""
    env = gym.make(env_id).unwrapped
    num_states, num_actions, gamma = env.observation_space.n, env.action_space.n, 0.9
    rng = np.random.default_rng(1)
    pi = rng.random((num_states, num_actions)) + 0.1
    pi /= pi.sum(1, keepdims=True)                                # a fixed stochastic policy
    rows = [(s, a, p, s2, r, float(done)) for s in range(num_states) for a in range(num_actions)
            for p, s2, r, done in env.P[s][a]]
    pairs, probs, next_states, rewards, terminated = (np.array(column, np.float64) for column in zip(
        *[(s * num_actions + a, p, s2, r, done) for s, a, p, s2, r, done in rows]))
    pairs, next_states = pairs.astype(int), next_states.astype(int)
    P, r_bar = np.zeros((num_states * num_actions, num_states)), np.zeros(num_states * num_actions)
    np.add.at(P, (pairs, next_states), probs * (1.0 - terminated))
    np.add.at(r_bar, pairs, probs * rewards)
    Pi = np.zeros((num_states, num_states * num_actions))
    for s in range(num_states):
        Pi[s, s * num_actions:(s + 1) * num_actions] = pi[s]
    q_pi = np.linalg.solve(np.eye(num_states * num_actions) - gamma * P @ Pi, r_bar)

    q = np.zeros(num_states * num_actions)
    for _ in range(400):   # γ^400 < 1e-18: the iterates have converged to the fixed point
        targets = bellman.expected_sarsa_target(rewards, terminated, gamma, q.reshape(num_states, -1)[next_states],
                                                pi[next_states]).numpy()
        q = np.bincount(pairs, weights=probs * targets, minlength=num_states * num_actions)
    np.testing.assert_allclose(q, q_pi, rtol=0, atol=1e-10)
    assert np.max(np.abs(q_pi)) > 0.01   # nonzero values: the comparison is not 0 = 0


def sample_steps(env, policy, steps, columns, rng):
    """`columns` runs of `policy` [S, A] on the model env.P, `steps` steps each, every episode
    followed by the next from the start state: (states, actions, rewards, terminated,
    next_states), each [steps, columns], time-major as multistep.py takes them."""
    num_states, num_actions = policy.shape
    outcomes = max(len(env.P[s][a]) for s in range(num_states) for a in range(num_actions))
    table = np.zeros((4, num_states, num_actions, outcomes))   # p, s', r, terminated per outcome
    for s in range(num_states):
        for a in range(num_actions):
            for k, outcome in enumerate(env.P[s][a]):
                table[:, s, a, k] = outcome
    cumulative = table[0].cumsum(-1)
    records = np.zeros((5, steps, columns))
    state = np.zeros(columns, int)
    for t in range(steps):
        action = (rng.random((columns, 1)) > policy[state].cumsum(-1)).sum(-1)
        k = (rng.random((columns, 1)) > cumulative[state, action]).sum(-1)
        next_state, reward, done = (table[i, state, action, k] for i in (1, 2, 3))
        records[:, t] = state, action, reward, done, next_state
        state = np.where(done > 0, 0, next_state).astype(int)
    states, actions, rewards, terminated, next_states = records
    return states.astype(int), actions.astype(int), rewards, terminated, next_states.astype(int)


@pytest.mark.parametrize("env_id", ["FrozenLake-v1"])
def test_lambda_returns_and_retrace_average_to_the_exact_values_along_sampled_episodes(env_id):
    """Bootstrapped from the exact values, a λ-return is an unbiased sample of them (a run cut
    at its last step bootstraps there, unbiased too): along episodes of π, E[G^λ_t | s_t, a_t] = Q^π(s_t, a_t) with v_t = V^π(s_{t+1}); along episodes
    of another policy μ, Retrace's G_t from Q^π has the same mean (each correction
    c_t(G_{t+1} − Q^π(s_{t+1}, a_{t+1})) has mean 0 given a_{t+1}). Q^π and V^π from the linear
    solve; every (s, a) seen 300 times or more must be within 5 standard errors."""
    env = gym.make(env_id).unwrapped
    num_states, num_actions, gamma, lambda_ = env.observation_space.n, env.action_space.n, 0.9, 0.7
    rng = np.random.default_rng(3)
    pi, mu = (rng.random((num_states, num_actions)) + 0.2 for _ in range(2))
    pi, mu = pi / pi.sum(1, keepdims=True), mu / mu.sum(1, keepdims=True)
    q_pi = exact_q(env, pi, gamma)
    v_pi = (pi * q_pi).sum(1)
    checked = 0
    for behaviour, operator in ((pi, "lambda"), (mu, "retrace")):
        states, actions, rewards, terminated, next_states = sample_steps(env, behaviour, 100, 2_000, rng)
        # a_{t+1}: the next row's action (after a terminal step, d_t = 0 hides it; the last row's
        # is never used: Retrace's last trace is 0)
        next_actions = np.concatenate([actions[1:], actions[-1:]])
        discounts = gamma * (1.0 - terminated)
        if operator == "lambda":
            returns = multistep.lambda_returns(rewards, discounts, v_pi[next_states], lambda_)
        else:
            returns = multistep.retrace_returns(rewards, discounts, q_pi[next_states], next_actions, pi[next_states],
                                                mu[next_states], lambda_)
        returns = returns.numpy()
        for s in range(num_states):
            for a in range(num_actions):
                sample = returns[(states == s) & (actions == a)]
                if sample.size >= 300:
                    error = abs(sample.mean() - q_pi[s, a])
                    assert error <= 5 * sample.std() / np.sqrt(sample.size) + 1e-12, (operator, s, a, error)
                    checked += 1
    assert checked >= 40 and np.max(q_pi) > 0.1


def exact_q(env, pi, gamma):
    """Q^π [S, A] from the model: (I − γ P Π) q = r̄ (as the expected SARSA test above solves it)."""
    num_states, num_actions = env.observation_space.n, env.action_space.n
    P, r_bar = np.zeros((num_states * num_actions, num_states)), np.zeros(num_states * num_actions)
    for s in range(num_states):
        for a in range(num_actions):
            for p, s2, r, done in env.P[s][a]:
                P[s * num_actions + a, s2] += p * (1.0 - float(done))
                r_bar[s * num_actions + a] += p * r
    Pi = np.zeros((num_states, num_states * num_actions))
    for s in range(num_states):
        Pi[s, s * num_actions:(s + 1) * num_actions] = pi[s]
    return np.linalg.solve(np.eye(num_states * num_actions) - gamma * P @ Pi, r_bar).reshape(num_states, num_actions)
