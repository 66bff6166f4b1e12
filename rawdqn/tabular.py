"""Tabular reference: Q-learning, SARSA, expected SARSA, Watkins' Q(λ) and value iteration in NumPy.

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
    "sarsa_update",
    "expected_sarsa_update",
    "watkins_q_lambda_update",
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


def _one_step_update(q_table, state, action, reward, next_state, terminated, alpha, discount, next_value):
    """Q[s, a] += α (r + γ (1 − terminated) next_value(Q[s']) − Q[s, a]) on a copy of the table."""
    q_table = _check_q_table(q_table)
    _check_alpha(alpha)
    _check_discount(discount)
    num_states, num_actions = q_table.shape
    _check_index("state", state, num_states)
    _check_index("next_state", next_state, num_states)
    _check_index("action", action, num_actions)
    target = reward + discount * (1.0 - float(terminated)) * next_value(q_table[next_state])
    new_table = q_table.copy()
    new_table[state, action] += alpha * (target - q_table[state, action])
    return new_table


def q_learning_update(q_table, state, action, reward, next_state, terminated, alpha, discount):
    """One Q-learning update (Watkins 1989), returned as a new table:

        Q[s, a] <- Q[s, a] + alpha * (r + discount * (1 - terminated) * max_a' Q[s', a'] - Q[s, a])

    Pure: q_table is not modified. A truncated (time-limit) step is passed with
    terminated = 0, so it still bootstraps from next_state.
    """
    return _one_step_update(q_table, state, action, reward, next_state, terminated, alpha, discount, np.max)


def sarsa_update(q_table, state, action, reward, next_state, next_action, terminated, alpha, discount):
    """One SARSA update (Rummery & Niranjan 1994; Sutton & Barto 2018, §6.4), a new table:

        Q[s, a] <- Q[s, a] + alpha * (r + discount * (1 - terminated) * Q[s', a'] - Q[s, a])

    a' is the action the behaviour policy takes in s' (drawn, not taken, when the episode was
    truncated there)."""
    _check_index("next_action", next_action, np.shape(q_table)[-1])
    return _one_step_update(q_table, state, action, reward, next_state, terminated, alpha, discount,
                            lambda row: row[next_action])


def epsilon_greedy_value(q_row, epsilon):
    """E_π Q(s, ·) for π ε-greedy in Q: (1 − ε) max_a Q(s, a) + ε mean_a Q(s, a) (however ties
    among the maxima are broken, the greedy mass lands on the max)."""
    return (1.0 - epsilon) * np.max(q_row, axis=-1) + epsilon * np.mean(q_row, axis=-1)


def expected_sarsa_update(q_table, state, action, reward, next_state, terminated, alpha, discount, epsilon):
    """One expected SARSA update (van Seijen et al. 2009) with π ε-greedy in Q, a new table:

        Q[s, a] <- Q[s, a] + alpha * (r + discount * (1 - terminated) * E_π Q[s', ·] - Q[s, a]),
        E_π Q[s', ·] = (1 - ε) max_a' Q[s', a'] + ε mean_a' Q[s', a']"""
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be in [0, 1]; got {epsilon}")
    return _one_step_update(q_table, state, action, reward, next_state, terminated, alpha, discount,
                            lambda row: epsilon_greedy_value(row, epsilon))


def watkins_q_lambda_update(q_table, states, actions, rewards, terminated, next_states, next_actions,
                            alpha, discount, lambda_):
    """Watkins' Q(λ) over one sequence (forward view, Sutton & Barto 2018, §12.10), a new table.

    The λ-returns come from the table as it is, backwards from the sequence's end, where the
    last one bootstraps (terminated = 0 there means cut by the sequence, not the episode):

        G_t = r_t + γ (1 − terminated_t) [max_a Q[s_{t+1}, a] + λ_t (G_{t+1} − max_a Q[s_{t+1}, a])],
        λ_t = λ · 1[a_{t+1} = argmax_a Q[s_{t+1}, a]]   (the first max; 0 at the last step)

    then each (s_t, a_t) in order: Q[s_t, a_t] += α (G_t − Q[s_t, a_t]). λ = 0 is Q-learning's
    target; the trace is cut after an exploratory action, so the returns estimate Q*."""
    q_table = _check_q_table(q_table)
    _check_alpha(alpha)
    _check_discount(discount)
    if not 0 <= lambda_ <= 1:
        raise ValueError(f"lambda_ must be in [0, 1]; got {lambda_}")
    returns = np.zeros(len(rewards))
    following = 0.0
    for t in reversed(range(len(rewards))):
        next_row = q_table[next_states[t]]
        greedy = t + 1 < len(rewards) and next_actions[t] == int(np.argmax(next_row))
        trace = lambda_ if greedy else 0.0
        best = float(np.max(next_row))
        following = rewards[t] + discount * (1.0 - float(terminated[t])) * (best + trace * (following - best))
        returns[t] = following
    new_table = q_table.copy()
    for state, action, target in zip(states, actions, returns):
        new_table[state, action] += alpha * (target - new_table[state, action])
    return new_table


def epsilon_greedy(q_row, epsilon, rng):
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
            action = epsilon_greedy(q_table[state], epsilon, rng)
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


def value_iteration(transitions, num_states, num_actions, discount, tol=1e-10, max_iterations=100_000, epsilon=0.0):
    """Optimal action values Q* by value iteration (Bellman 1957) on a known model.

    Iterates the Bellman optimality operator from Q = 0,

        Q(s, a) <- sum_{(p, s', r, term) in P[s][a]} p * (r + discount * (1 - term) * max_a' Q(s', a')),

    until max |Q_new - Q| < tol. transitions is gymnasium toy-text `env.unwrapped.P`.
    With discount = 1 it converges when the task is proper (every optimal policy
    terminates, e.g. CliffWalking, FrozenLake); otherwise it raises RuntimeError
    after max_iterations. Returns Q* [num_states, num_actions].

    With epsilon > 0 the next state is valued under the ε-greedy policy instead of the greedy one,
    (1 − ε) max_a' Q(s', a') + ε mean_a' Q(s', a') (`epsilon_greedy_value`), still a
    γ-contraction: its fixed point Q*_ε is where SARSA and expected SARSA converge while they
    act ε-greedily with that ε (Sutton & Barto 2018, §6.4–6.6: the near-optimal ε-soft values).
    """
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be in [0, 1]; got {epsilon}")
    _check_discount(discount)
    if not tol > 0:
        raise ValueError(f"tol must be > 0; got {tol}")
    if num_states < 1 or num_actions < 1:
        raise ValueError(f"num_states and num_actions must be >= 1; got {num_states}, {num_actions}")
    expected_reward, continue_prob = _dense_model(transitions, num_states, num_actions)
    q_table = np.zeros((num_states, num_actions))
    change = np.inf
    for _ in range(max_iterations):
        new_q_table = expected_reward + discount * continue_prob @ epsilon_greedy_value(q_table, epsilon)
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
