"""Tabular reference: Q-learning and value iteration in NumPy.

The exact answers the deep agent is measured against on small discrete tasks
(FrozenLake, CliffWalking). NumPy only: importing this module must never import
TensorFlow.

Tie-breaking: `q_learning` breaks ties in its greedy action uniformly at random
with its seeded Generator (so a zero-initialised table does not always pick
action 0); `greedy_policy` breaks ties deterministically by the first max.
"""

import numpy as np
from gymnasium import spaces

__all__ = [
    "q_learning_update",
    "q_learning",
    "value_iteration",
    "greedy_policy",
    "evaluate_policy",
]


# ---------------------------------------------------------------- validation


def _check_alpha(alpha):
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1]; got {alpha}")


def _check_discount(discount):
    if not 0 <= discount <= 1:
        raise ValueError(f"discount must be in [0, 1]; got {discount}")


def _check_q_table(q_table):
    q_table = np.asarray(q_table, dtype=np.float64)
    if q_table.ndim != 2:
        raise ValueError(f"q_table must have rank 2 [num_states, num_actions]; got shape {q_table.shape}")
    return q_table


def _check_index(name, value, size):
    if not 0 <= value < size:
        raise ValueError(f"{name} must be in [0, {size}); got {value}")


def _discrete_sizes(env, caller):
    """(num_states, num_actions) of an env whose spaces are Discrete starting at 0."""
    observation_space, action_space = env.observation_space, env.action_space
    if not (isinstance(observation_space, spaces.Discrete) and isinstance(action_space, spaces.Discrete)):
        bad = observation_space if not isinstance(observation_space, spaces.Discrete) else action_space
        raise ValueError(f"{caller} needs Discrete observation and action spaces; got {bad}")
    if observation_space.start != 0 or action_space.start != 0:
        raise ValueError(f"{caller} needs Discrete spaces starting at 0; got {observation_space}, {action_space}")
    return int(observation_space.n), int(action_space.n)


# ---------------------------------------------------------------- Q-learning


def q_learning_update(q_table, state, action, reward, next_state, terminated, alpha, discount):
    """One Q-learning update (Watkins 1989), returned as a new table:

        Q[s, a] <- Q[s, a] + alpha * (r + discount * (1 - terminated) * max_a' Q[s', a'] - Q[s, a])

    Pure: q_table is not modified. A truncated (time-limit) step is passed with
    terminated = 0, so it still bootstraps from next_state.
    """
    q_table = _check_q_table(q_table)
    _check_alpha(alpha)
    _check_discount(discount)
    num_states, num_actions = q_table.shape
    _check_index("state", state, num_states)
    _check_index("next_state", next_state, num_states)
    _check_index("action", action, num_actions)
    target = reward + discount * (1.0 - float(terminated)) * q_table[next_state].max()
    new_table = q_table.copy()
    new_table[state, action] += alpha * (target - q_table[state, action])
    return new_table


def _epsilon_greedy(q_row, epsilon, rng):
    """Uniform random action with probability epsilon, else a greedy one (random among ties)."""
    if rng.random() < epsilon:
        return int(rng.integers(q_row.shape[0]))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[rng.integers(best.shape[0])])


def q_learning(env, episodes, alpha, discount, epsilon, seed, max_episode_steps=None):
    """Tabular epsilon-greedy Q-learning on an env with Discrete spaces.

    Starts from Q = 0 and applies `q_learning_update` after every step:

        Q[s, a] <- Q[s, a] + alpha * (r + discount * (1 - terminated) * max_a' Q[s', a'] - Q[s, a])

    Terminated steps do not bootstrap; truncated ones (the env's time limit, or
    `max_episode_steps` if given) do. Actions come from a numpy Generator seeded
    by `seed`; greedy ties are broken uniformly at random by that Generator. The
    env is reset with `seed` on the first episode only, so later episodes
    continue its RNG stream. Returns the trained q_table [num_states, num_actions].
    """
    num_states, num_actions = _discrete_sizes(env, "q_learning")
    _check_alpha(alpha)
    _check_discount(discount)
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be in [0, 1]; got {epsilon}")
    if episodes < 0:
        raise ValueError(f"episodes must be >= 0; got {episodes}")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be >= 1 or None; got {max_episode_steps}")
    rng = np.random.default_rng(seed)
    q_table = np.zeros((num_states, num_actions), dtype=np.float64)
    for episode in range(episodes):
        state, _ = env.reset(seed=seed if episode == 0 else None)
        steps, done = 0, False
        while not done:
            action = _epsilon_greedy(q_table[state], epsilon, rng)
            next_state, reward, terminated, truncated, _ = env.step(action)
            q_table = q_learning_update(
                q_table, state, action, reward, next_state, terminated, alpha, discount
            )
            steps += 1
            hit_step_limit = max_episode_steps is not None and steps >= max_episode_steps
            done = terminated or truncated or hit_step_limit
            state = next_state
    return q_table


# ----------------------------------------------------------- value iteration


def _dense_model(transitions, num_states, num_actions):
    """Dense arrays from gymnasium's P[s][a] = [(prob, next_state, reward, terminated), ...].

    Returns (expected_reward [S, A], continue_prob [S, A, S']) where
        expected_reward[s, a]   = sum p * r
        continue_prob[s, a, s'] = sum p * (1 - terminated) over entries landing in s'.
    """
    expected_reward = np.zeros((num_states, num_actions))
    continue_prob = np.zeros((num_states, num_actions, num_states))
    for state in range(num_states):
        for action in range(num_actions):
            try:
                outcomes = transitions[state][action]
            except (KeyError, IndexError):
                raise ValueError(f"transitions has no entry P[{state}][{action}]") from None
            total_prob = 0.0
            for prob, next_state, reward, terminated in outcomes:
                if prob < 0:
                    raise ValueError(f"P[{state}][{action}] has a negative probability {prob}")
                _check_index(f"P[{state}][{action}] next_state", next_state, num_states)
                total_prob += prob
                expected_reward[state, action] += prob * reward
                continue_prob[state, action, next_state] += prob * (1.0 - float(terminated))
            if abs(total_prob - 1.0) > 1e-9:
                raise ValueError(f"P[{state}][{action}] probabilities sum to {total_prob}, not 1")
    return expected_reward, continue_prob


def value_iteration(transitions, num_states, num_actions, discount, tol=1e-10, max_iterations=100_000):
    """Optimal action values Q* by value iteration (Bellman 1957) on a known model.

    Iterates the Bellman optimality operator from Q = 0,

        Q(s, a) <- sum_{(p, s', r, term) in P[s][a]} p * (r + discount * (1 - term) * max_a' Q(s', a')),

    until max |Q_new - Q| < tol. transitions is gymnasium toy-text `env.unwrapped.P`.
    With discount = 1 it converges when the task is proper (every optimal policy
    terminates, e.g. CliffWalking, FrozenLake); otherwise it raises RuntimeError
    after max_iterations. Returns Q* [num_states, num_actions].
    """
    _check_discount(discount)
    if not tol > 0:
        raise ValueError(f"tol must be > 0; got {tol}")
    if num_states < 1 or num_actions < 1:
        raise ValueError(f"num_states and num_actions must be >= 1; got {num_states}, {num_actions}")
    expected_reward, continue_prob = _dense_model(transitions, num_states, num_actions)
    q_table = np.zeros((num_states, num_actions))
    change = np.inf
    for _ in range(max_iterations):
        new_q_table = expected_reward + discount * continue_prob @ q_table.max(axis=1)
        change = np.max(np.abs(new_q_table - q_table))
        q_table = new_q_table
        if change < tol:
            return q_table
    raise RuntimeError(
        f"value_iteration did not converge in {max_iterations} iterations (last max change {change:.3g}); "
        f"with discount={discount} the task may not be proper (some state never terminates)"
    )


# ------------------------------------------------------------------ policies


def greedy_policy(q_table):
    """Greedy policy pi(s) = argmax_a Q[s, a]; ties go to the first max. Returns int [num_states]."""
    return np.argmax(_check_q_table(q_table), axis=1)


def evaluate_policy(env, policy, episodes, seed, max_episode_steps=10_000):
    """Undiscounted return sum_t r_t of a deterministic tabular policy, per episode.

    policy: int [num_states], the action for each state. The env is reset with
    `seed` on the first episode only. An episode ends when the env terminates or
    truncates, or after max_episode_steps (so a looping policy cannot hang).
    Returns the returns as float64 [episodes].
    """
    num_states, num_actions = _discrete_sizes(env, "evaluate_policy")
    policy = np.asarray(policy)
    if policy.shape != (num_states,):
        raise ValueError(f"policy must have shape ({num_states},); got {policy.shape}")
    if np.any((policy < 0) | (policy >= num_actions)):
        raise ValueError(f"policy actions must be in [0, {num_actions})")
    returns = np.zeros(episodes, dtype=np.float64)
    for episode in range(episodes):
        state, _ = env.reset(seed=seed if episode == 0 else None)
        for _ in range(max_episode_steps):
            state, reward, terminated, truncated, _ = env.step(int(policy[state]))
            returns[episode] += reward
            if terminated or truncated:
                break
    return returns
