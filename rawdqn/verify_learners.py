"""The table-style learners of `rawdqn verify`: one ε-greedy loop (`run_stream`) and its updates.

A tabular learner (rawdqn.tabular, NumPy float64) and a linear one-hot learner whose target is
rawdqn's operator (rawdqn.bellman / rawdqn.multistep, TensorFlow float64) share the loop and so
see the same transitions; with one-hot features one SGD step of rate α is the tabular update
    Q[s, a] += α (y − Q[s, a]).
"""
import dataclasses
import time

import numpy as np

from rawdqn import tabular

TABULAR_ALPHA = 0.1
LEARNER_NAMES = {"sarsa": "SARSA", "expected-sarsa": "expected SARSA", "q-lambda": "Watkins' Q(λ)"}
DEFAULT_LAMBDA = 0.8
# Q(λ)'s λ-returns span at most this many steps (an episode's end closes a sequence sooner).
SEQUENCE_LENGTH = 16


@dataclasses.dataclass
class Learner:
    """One learner's result: its final Q-table, visits, and |Q − Q*| over training."""
    name: str
    q_table: np.ndarray
    visits: np.ndarray
    curve_steps: list
    curve_error: list
    seconds: float
    error: float = float("nan")
    mean_error: float = float("nan")
    agreement: float = float("nan")
    eval_return: float = float("nan")


def max_visited_error(q_table, optimal_q, visits):
    """max over visited (s, a) of |Q(s, a) − Q*(s, a)| (0 if nothing was visited)."""
    seen = visits > 0
    return float(np.max(np.abs(q_table - optimal_q)[seen])) if seen.any() else 0.0


def snapshot_steps(total_steps, points=25):
    return set(np.unique(np.linspace(0, total_steps, points + 1).astype(int))[1:])


def run_stream(problem, steps, seed, epsilon_at, update, name, next_action_first=False, sequence_length=1):
    """The ε-greedy loop of the table-style learners: act on the table, step, and hand the
    transitions to `update(table, transitions) -> table` every `sequence_length` steps or where
    an episode ends. transitions: states, actions, rewards, terminated, next_states and
    next_actions (−1 unless next_action_first), NumPy arrays over the steps.

    next_action_first: draw a' from the table before the update, as SARSA does (it is taken next
    unless the episode ended; drawn in the true last state where it was truncated); otherwise
    each action is drawn from the table updated up to the step before (Q-learning). Greedy ties
    are broken at random."""
    env = problem.make_env()
    rng = np.random.default_rng(seed)
    q_table = np.zeros((problem.num_states, problem.num_actions))
    visits = np.zeros_like(q_table, dtype=np.int64)
    snapshots, curve_steps, curve_error = snapshot_steps(steps), [], []
    pending = []
    started = time.perf_counter()
    state, _ = env.reset(seed=seed)
    action = None
    for step in range(steps):
        if action is None:
            action = tabular.epsilon_greedy(q_table[state], epsilon_at(step), rng)
        next_state, reward, terminated, truncated, _ = env.step(action)
        visits[state, action] += 1
        next_action = (tabular.epsilon_greedy(q_table[next_state], epsilon_at(step + 1), rng)
                       if next_action_first and not terminated else -1)
        pending.append((state, action, reward, float(terminated), next_state, next_action))
        if len(pending) == sequence_length or terminated or truncated or step + 1 == steps:
            q_table = update(q_table, tuple(np.array(column) for column in zip(*pending)))
            pending = []
        state, action = next_state, next_action if next_action >= 0 else None
        if terminated or truncated:
            (state, _), action = env.reset(), None
        if step + 1 in snapshots:
            curve_steps.append(step + 1)
            curve_error.append(max_visited_error(q_table, problem.optimal_q, visits))
    env.close()
    return Learner(name, q_table, visits, curve_steps, curve_error, time.perf_counter() - started)


def tabular_update(learner, alpha, discount, epsilon, lambda_):
    """`run_stream`'s update for the tabular `learner` (rawdqn.tabular, NumPy float64)."""
    def update(q_table, transitions):
        states, actions, rewards, terminated, next_states, next_actions = transitions
        if learner == "q-lambda":
            return tabular.watkins_q_lambda_update(q_table, states, actions, rewards, terminated, next_states,
                                                   next_actions, alpha, discount, lambda_)
        (s, a, r, done, s2, a2), = zip(*transitions)
        if learner == "sarsa":
            return tabular.sarsa_update(q_table, s, a, r, s2, max(a2, 0), done, alpha, discount)
        if learner == "expected-sarsa":
            return tabular.expected_sarsa_update(q_table, s, a, r, s2, done, alpha, discount, epsilon)
        return tabular.q_learning_update(q_table, s, a, r, s2, done, alpha, discount)
    return update


def linear_update(learner, num_states, num_actions, alpha, discount, epsilon, lambda_):
    """`run_stream`'s update for a linear one-hot learner in TensorFlow (float64): Q(s, ·) = W[s],
    W₀ = 0, and for each transition, in order, one SGD step of rate α on ½(y − Q(s, a))² with y
    the target of rawdqn.bellman (SARSA, expected SARSA with π ε-greedy in Q) or, over the
    sequence, Watkins' Q(λ) return of rawdqn.multistep computed before the first step. With
    one-hot features the step is the tabular update Q[s, a] += α (y − Q[s, a])."""
    import tensorflow as tf   # imported only when this learner runs
    from rawdqn import bellman, losses, multistep, optim
    from rawdqn.network import QNetwork
    network = QNetwork(num_states, num_actions, hidden=(), dtype=tf.float64, use_bias=False, initializer="zeros")
    optimizer = optim.SGD(alpha)
    theta = tf.Variable(network.theta.read_value())

    def q_values(states):
        return network.apply(theta, tf.one_hot(states, num_states, dtype=tf.float64))

    @tf.function(reduce_retracing=True)
    def learn(states, actions, rewards, terminated, next_states, next_actions):
        next_q = q_values(next_states)
        if learner == "sarsa":
            targets = bellman.sarsa_target(rewards, terminated, discount, next_q, tf.maximum(next_actions, 0))
        elif learner == "expected-sarsa":
            greedy = tf.one_hot(tf.argmax(next_q, axis=-1), num_actions, dtype=tf.float64)
            probs = epsilon / num_actions + (1.0 - epsilon) * greedy
            targets = bellman.expected_sarsa_target(rewards, terminated, discount, next_q, probs)
        else:   # the sequence is one column of [T, B]; its next actions feed the trace cut
            discounts = discount * (1.0 - terminated)
            targets = multistep.watkins_q_lambda_returns(rewards[:, None], discounts[:, None], next_q[:, None],
                                                         next_actions[:, None], lambda_)[:, 0]
        for t in tf.range(tf.shape(states)[0]):
            with tf.GradientTape() as tape:
                tape.watch(theta)
                q = q_values(states[t:t + 1])
                loss = losses.squared_loss(losses.td_error(q, actions[t:t + 1], targets[t:t + 1]))
            (new_theta,), _ = optimizer.update([tape.gradient(loss, theta)], [theta],
                                               optim.OptimizerState(tf.constant(0, tf.int64), ()))
            theta.assign(new_theta)
        return tf.reshape(theta, [num_states, num_actions])

    def update(q_table, transitions):
        states, actions, rewards, terminated, next_states, next_actions = transitions
        return learn(tf.constant(states, tf.int32), tf.constant(actions, tf.int32), tf.constant(rewards, tf.float64),
                     tf.constant(terminated, tf.float64), tf.constant(next_states, tf.int32),
                     tf.constant(next_actions, tf.int32)).numpy()
    return update


def train_tabular(problem, steps, seed, epsilon_at, alpha=TABULAR_ALPHA, learner="q-learning", lambda_=DEFAULT_LAMBDA):
    """ε-greedy tabular `learner` (Q-learning: one `q_learning_update` per step)."""
    return run_stream(problem, steps, seed, epsilon_at,
                      tabular_update(learner, alpha, problem.discount, problem.epsilon, lambda_),
                      f"tabular {LEARNER_NAMES.get(learner, 'Q-learning')}", **stream_options(learner))


def train_linear(problem, steps, seed, epsilon_at, learner, alpha=TABULAR_ALPHA, lambda_=DEFAULT_LAMBDA):
    """ε-greedy linear one-hot `learner` on rawdqn's operators (`linear_update`)."""
    update = linear_update(learner, problem.num_states, problem.num_actions, alpha, problem.discount,
                           problem.epsilon, lambda_)
    return run_stream(problem, steps, seed, epsilon_at, update, f"linear {LEARNER_NAMES[learner]}",
                      **stream_options(learner))


def stream_options(learner):
    """SARSA and Q(λ) need the next action before they update; Q(λ) updates over sequences."""
    return {"next_action_first": learner in ("sarsa", "q-lambda"),
            "sequence_length": SEQUENCE_LENGTH if learner == "q-lambda" else 1}
