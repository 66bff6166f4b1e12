"""Tests for rawdqn/tabular.py: each expected value is derived by hand in a comment,
or comes from an independent computation (a loop-based Bellman residual, an exact
linear-solve policy evaluation)."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rawdqn import tabular
from test_operator_equivalence import exact_q

# FrozenLake actions: 0 left, 1 down, 2 right, 3 up. CliffWalking: 0 up, 1 right, 2 down, 3 left.
FROZEN_LEFT, FROZEN_DOWN, FROZEN_RIGHT, FROZEN_UP = 0, 1, 2, 3
CLIFF_UP, CLIFF_RIGHT, CLIFF_DOWN, CLIFF_LEFT = 0, 1, 2, 3
FROZEN_HOLES, FROZEN_GOAL = (5, 7, 11, 12), 15

# A 2-state, 2-action MDP solved on paper below (P[s][a] = [(prob, next_state, reward, terminated)]).
#   state 0, action 0: stay in 0, reward 0.
#   state 0, action 1: 1/2 go to 1 with reward 1; 1/2 reward 0 and terminate.
#   state 1, action 0: stay in 1, reward 1.
#   state 1, action 1: reward 3 and terminate.
TWO_STATE_P = {
    0: {0: [(1.0, 0, 0.0, False)], 1: [(0.5, 1, 1.0, False), (0.5, 0, 0.0, True)]},
    1: {0: [(1.0, 1, 1.0, False)], 1: [(1.0, 0, 3.0, True)]},
}


def test_module_imports_no_tensorflow():
    # Load the file directly (the package __init__ imports TensorFlow on purpose).
    path = Path(tabular.__file__)
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('tabular_alone', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert 'tensorflow' not in sys.modules, 'tabular.py imported tensorflow'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------ q_learning_update


def test_q_learning_update_bootstraps_from_next_state():
    q_table = np.array([[1.0, 2.0], [3.0, 4.0]])
    before = q_table.copy()
    # target = 1 + 0.9 * max(3, 4) = 4.6;  Q[0,1] = 2 + 0.5 * (4.6 - 2) = 3.3
    new = tabular.q_learning_update(q_table, 0, 1, 1.0, 1, False, alpha=0.5, discount=0.9)
    np.testing.assert_allclose(new, [[1.0, 3.3], [3.0, 4.0]], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(q_table, before)  # pure: input untouched


def test_q_learning_update_terminated_does_not_bootstrap():
    q_table = np.array([[1.0, 2.0], [3.0, 4.0]])
    # target = 1 (terminated);  Q[0,1] = 2 + 0.5 * (1 - 2) = 1.5
    new = tabular.q_learning_update(q_table, 0, 1, 1.0, 1, True, alpha=0.5, discount=0.9)
    assert new[0, 1] == pytest.approx(1.5, abs=1e-12)


def test_q_learning_update_alpha_one_replaces_with_target():
    q_table = np.array([[7.0, 0.0], [-1.0, -2.0]])
    # target = 0 + 0.5 * max(-1, -2) = -0.5; alpha = 1 writes the target itself.
    new = tabular.q_learning_update(q_table, 0, 0, 0.0, 1, 0, alpha=1.0, discount=0.5)
    assert new[0, 0] == pytest.approx(-0.5, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(alpha=0.0), "alpha"),
        (dict(alpha=1.5), "alpha"),
        (dict(discount=-0.1), "discount"),
        (dict(discount=1.1), "discount"),
        (dict(q_table=np.zeros(4)), "rank 2"),
        (dict(state=2), "state"),
        (dict(next_state=-1), "next_state"),
        (dict(action=2), "action"),
    ],
)
def test_q_learning_update_rejects_bad_inputs(kwargs, message):
    args = dict(q_table=np.zeros((2, 2)), state=0, action=0, reward=1.0, next_state=1,
                terminated=False, alpha=0.5, discount=0.9)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        tabular.q_learning_update(**args)


# ------------------------------------------- SARSA, expected SARSA, Watkins' Q(λ)

HAND_TABLE = [[1.0, 2.0], [3.0, 4.0]]


def test_sarsa_update_bootstraps_from_the_next_action_taken():
    # s=0, a=1, r=1, s'=1, a'=0, α=0.5, γ=0.9: y = 1 + 0.9 · Q[1, 0] = 3.7; Q[0, 1] = 2 + 0.5 · (3.7 − 2) = 2.85.
    table = tabular.sarsa_update(HAND_TABLE, 0, 1, 1.0, 1, 0, False, alpha=0.5, discount=0.9)
    np.testing.assert_allclose(table, [[1.0, 2.85], [3.0, 4.0]], rtol=0, atol=1e-12)
    # terminated: y = 1; Q[0, 1] = 2 + 0.5 · (1 − 2) = 1.5.
    table = tabular.sarsa_update(HAND_TABLE, 0, 1, 1.0, 1, 0, True, alpha=0.5, discount=0.9)
    assert table[0, 1] == pytest.approx(1.5, abs=1e-12)
    with pytest.raises(ValueError, match="next_action must be in"):
        tabular.sarsa_update(HAND_TABLE, 0, 1, 1.0, 1, 2, False, alpha=0.5, discount=0.9)


def test_expected_sarsa_update_bootstraps_from_the_epsilon_greedy_mean():
    # ε = 0.2 over 2 actions: π(·|1) = (0.1, 0.9), E_π Q[1] = 0.1 · 3 + 0.9 · 4 = 3.9;
    # y = 1 + 0.9 · 3.9 = 4.51; Q[0, 1] = 2 + 0.5 · (4.51 − 2) = 3.255.
    table = tabular.expected_sarsa_update(HAND_TABLE, 0, 1, 1.0, 1, False, alpha=0.5, discount=0.9, epsilon=0.2)
    assert table[0, 1] == pytest.approx(3.255, abs=1e-12)
    # ε = 0 is Q-learning's update.
    np.testing.assert_array_equal(
        tabular.expected_sarsa_update(HAND_TABLE, 0, 1, 1.0, 1, False, alpha=0.5, discount=0.9, epsilon=0.0),
        tabular.q_learning_update(HAND_TABLE, 0, 1, 1.0, 1, False, alpha=0.5, discount=0.9))
    with pytest.raises(ValueError, match="epsilon must be in"):
        tabular.expected_sarsa_update(HAND_TABLE, 0, 1, 1.0, 1, False, alpha=0.5, discount=0.9, epsilon=1.5)


@pytest.mark.parametrize("next_action, expected_q01", [(0, 1.5), (1, 1.75)])
def test_watkins_q_lambda_update_by_hand(next_action, expected_q01):
    # Q = [[0, 0], [5, 3], [1, 2]], γ = 0.5, λ = 0.5, α = 0.5; steps (s 0, a 1, r 1 → s 1) and (s 1, a 0, r 2 → s 2).
    # G_1 = 2 + 0.5 · max Q[2] = 3 (the sequence's last step bootstraps).
    # a_1 = 0 is greedy in s 1 (Q[1] = [5, 3]): G_0 = 1 + 0.5 · (5 + 0.5 · (3 − 5)) = 3 → Q[0, 1] = 0.5 · 3 = 1.5;
    # a_1 = 1 is not: the trace is cut, G_0 = 1 + 0.5 · 5 = 3.5 → Q[0, 1] = 1.75. Either way Q[1, 0] = 5 + 0.5 · (3 − 5) = 4.
    table = tabular.watkins_q_lambda_update([[0.0, 0.0], [5.0, 3.0], [1.0, 2.0]], [0, 1], [1, 0], [1.0, 2.0],
                                            [0.0, 0.0], [1, 2], [next_action, 0], alpha=0.5, discount=0.5, lambda_=0.5)
    np.testing.assert_allclose(table, [[0.0, expected_q01], [4.0, 3.0], [1.0, 2.0]], rtol=0, atol=1e-12)


def test_watkins_q_lambda_updates_a_repeated_pair_in_order():
    # A self-loop on (0, 0) twice, the second step terminal, γ = 0.5, λ = 1, α = 0.5, Q = 0:
    # G_1 = 1; a_1 = 0 is greedy among the tied zeros (first max): G_0 = 1 + 0.5 · (0 + (1 − 0)) = 1.5.
    # In order: Q[0, 0] = 0.5 · 1.5 = 0.75, then 0.75 + 0.5 · (1 − 0.75) = 0.875.
    table = tabular.watkins_q_lambda_update(np.zeros((1, 2)), [0, 0], [0, 0], [1.0, 1.0], [0.0, 1.0], [0, 0],
                                            [0, 0], alpha=0.5, discount=0.5, lambda_=1.0)
    assert table[0, 0] == pytest.approx(0.875, abs=1e-12)
    with pytest.raises(ValueError, match="lambda_ must be in"):
        tabular.watkins_q_lambda_update(np.zeros((1, 2)), [0], [0], [1.0], [1.0], [0], [0], 0.5, 0.5, lambda_=2.0)


# ---------------------------------------------------------------- value_iteration


def test_value_iteration_two_state_mdp_by_hand():
    # discount 0.5.
    # State 1: staying forever is worth 1 / (1 - 0.5) = 2 < 3, so V(1) = 3:
    #   Q(1,0) = 1 + 0.5 * 3 = 2.5,  Q(1,1) = 3.
    # State 0: Q(0,1) = 0.5 * (1 + 0.5 * 3) + 0.5 * 0 = 1.25 > Q(0,0) = 0.5 * V(0), so V(0) = 1.25:
    #   Q(0,0) = 0.5 * 1.25 = 0.625.
    q_star = tabular.value_iteration(TWO_STATE_P, 2, 2, discount=0.5, tol=1e-12)
    np.testing.assert_allclose(q_star, [[0.625, 1.25], [2.5, 3.0]], rtol=0, atol=1e-10)


def test_epsilon_greedy_value_iteration_two_state_mdp_by_hand():
    # discount 0.5, ε = 0.2 over 2 actions: a state is worth 0.9 · max + 0.1 · min of its Q.
    # State 1 (Q(1,1) = 3 the larger): V1 = 0.9 · 3 + 0.1 · (1 + 0.5 V1) → V1 = 2.8 / 0.95 = 56/19,
    #   Q(1,0) = 1 + 28/19 = 47/19 < 3.
    # State 0: Q(0,1) = 0.5 · (1 + 0.5 V1) = 47/38; V0 = 0.9 · 47/38 + 0.1 · 0.5 V0 → V0 = 423/361,
    #   Q(0,0) = 0.5 V0 = 423/722 < 47/38.
    q_eps = tabular.value_iteration(TWO_STATE_P, 2, 2, discount=0.5, tol=1e-13, epsilon=0.2)
    np.testing.assert_allclose(q_eps, [[423 / 722, 47 / 38], [47 / 19, 3.0]], rtol=0, atol=1e-11)
    with pytest.raises(ValueError, match="epsilon must be in"):
        tabular.value_iteration(TWO_STATE_P, 2, 2, discount=0.5, epsilon=-0.1)


def test_epsilon_greedy_value_iteration_is_the_value_of_its_own_epsilon_greedy_policy():
    # Q*_ε = Q^π for π ε-greedy in Q*_ε: solve (I − γ P Π) q = r̄ exactly for that π on slippery FrozenLake.
    env = gym.make("FrozenLake-v1").unwrapped
    epsilon, discount, num_states, num_actions = 0.3, 0.95, 16, 4
    q_eps = tabular.value_iteration(env.P, num_states, num_actions, discount, tol=1e-13, epsilon=epsilon)
    pi = np.full((num_states, num_actions), epsilon / num_actions)
    pi[np.arange(num_states), q_eps.argmax(axis=1)] += 1.0 - epsilon
    np.testing.assert_allclose(q_eps, exact_q(env, pi, discount), rtol=0, atol=1e-10)
    q_star = tabular.value_iteration(env.P, num_states, num_actions, discount, tol=1e-13)
    assert np.max(q_star - q_eps) > 0.05   # exploring costs value: the two fixed points differ


def test_value_iteration_discount_zero_is_expected_reward():
    # discount 0: Q(s,a) = sum p * r = [[0, 0.5*1 + 0.5*0], [1, 3]].
    q_star = tabular.value_iteration(TWO_STATE_P, 2, 2, discount=0.0)
    np.testing.assert_allclose(q_star, [[0.0, 0.5], [1.0, 3.0]], rtol=0, atol=1e-12)


def test_value_iteration_accepts_list_transitions_and_duplicate_next_states():
    # One action, two outcomes landing in the same state 0, one terminating:
    # Q = 0.5 * (2 + 0.5 Q) + 0.5 * 2  =>  Q = 2 + 0.25 Q  =>  Q = 8/3.
    transitions = [[[(0.5, 0, 2.0, False), (0.5, 0, 2.0, True)]]]
    q_star = tabular.value_iteration(transitions, 1, 1, discount=0.5, tol=1e-13)
    assert q_star[0, 0] == pytest.approx(8 / 3, abs=1e-11)


def test_value_iteration_deterministic_frozenlake_is_discounted_distance():
    env = gym.make("FrozenLake-v1", is_slippery=False)
    q_star = tabular.value_iteration(env.unwrapped.P, 16, 4, discount=0.9, tol=1e-12)
    # Reward 1 only on entering the goal, so V*(s) = 0.9 ** (steps_to_goal(s) - 1).
    # Start (0) is 6 steps away: V = 0.9 ** 5 = 0.59049. State 14 is 1 step: Q*(14, right) = 1.
    # From 14, going up lands in 10 (2 steps from the goal): Q*(14, up) = 0.9 * 0.9 = 0.81.
    assert q_star[0].max() == pytest.approx(0.59049, abs=1e-10)
    assert q_star[14, FROZEN_RIGHT] == pytest.approx(1.0, abs=1e-12)
    assert q_star[14, FROZEN_UP] == pytest.approx(0.81, abs=1e-10)
    # Holes and the goal are absorbing and terminated: nothing more to collect.
    np.testing.assert_array_equal(q_star[list(FROZEN_HOLES) + [FROZEN_GOAL]], 0.0)


def test_value_iteration_cliffwalking_undiscounted_by_hand():
    env = gym.make("CliffWalking-v1")
    q_star = tabular.value_iteration(env.unwrapped.P, 48, 4, discount=1.0, tol=1e-10)
    start = 36  # bottom-left; the cliff is 37..46, the goal 47.
    # Shortest safe path: up, 11 x right, down = 13 steps at -1 each.
    # Right from the start steps into the cliff: -100 and back to the start (not terminated).
    # Left or down bump the wall: -1 and stay at the start.
    np.testing.assert_allclose(q_star[start], [-13.0, -113.0, -14.0, -14.0], rtol=0, atol=1e-8)


def _bellman_residual(transitions, q_table, discount):
    """max |Q - T Q| computed with plain loops over P, independent of the vectorised code."""
    residual = 0.0
    for state in range(q_table.shape[0]):
        for action in range(q_table.shape[1]):
            backup = 0.0
            for prob, next_state, reward, terminated in transitions[state][action]:
                backup += prob * (reward + discount * (1 - terminated) * max(q_table[next_state]))
            residual = max(residual, abs(q_table[state, action] - backup))
    return residual


@pytest.mark.parametrize("discount", [0.9, 0.99])
def test_value_iteration_satisfies_bellman_optimality_on_slippery_frozenlake(discount):
    transitions = gym.make("FrozenLake-v1").unwrapped.P
    tol = 1e-10
    q_star = tabular.value_iteration(transitions, 16, 4, discount=discount, tol=tol)
    # A contraction step of size < tol means the residual is < tol too (up to rounding).
    assert _bellman_residual(transitions, q_star, discount) < 10 * tol
    assert q_star.max() > 0.1  # not the trivial all-zero fixed point


def _exact_policy_value(transitions, policy, num_states, discount):
    """V^pi by solving (I - discount * P_pi_continue) V = R_pi with np.linalg.solve."""
    continue_matrix = np.zeros((num_states, num_states))
    reward = np.zeros(num_states)
    for state in range(num_states):
        for prob, next_state, r, terminated in transitions[state][int(policy[state])]:
            reward[state] += prob * r
            continue_matrix[state, next_state] += prob * (1 - terminated)
    return np.linalg.solve(np.eye(num_states) - discount * continue_matrix, reward)


def test_value_iteration_slippery_frozenlake_undiscounted_matches_exact_policy_value():
    transitions = gym.make("FrozenLake-v1").unwrapped.P  # slippery: 1/3 each for the intended and two side moves
    q_star = tabular.value_iteration(transitions, 16, 4, discount=1.0, tol=1e-12)
    policy = tabular.greedy_policy(q_star)
    exact = _exact_policy_value(transitions, policy, 16, discount=1.0)
    # The greedy policy's exact success probability equals V*, state by state.
    np.testing.assert_allclose(exact, q_star.max(axis=1), rtol=0, atol=1e-9)
    # The widely reported optimum for the 4x4 map with no time limit: 14/17 from the start.
    assert q_star[0].max() == pytest.approx(14 / 17, abs=1e-9)
    np.testing.assert_array_equal(q_star[list(FROZEN_HOLES) + [FROZEN_GOAL]], 0.0)


def test_value_iteration_improper_undiscounted_task_raises():
    # One state that loops forever with reward 1: with discount 1 the values grow without bound.
    transitions = {0: {0: [(1.0, 0, 1.0, False)]}}
    with pytest.raises(RuntimeError, match="did not converge in 50 iterations"):
        tabular.value_iteration(transitions, 1, 1, discount=1.0, max_iterations=50)


@pytest.mark.parametrize(
    "transitions, message",
    [
        ({0: {0: [(0.5, 0, 0.0, False)]}}, "sum to 0.5"),
        ({0: {0: [(1.0, 3, 0.0, False)]}}, "next_state"),
        ({0: {0: [(1.5, 0, 0.0, False), (-0.5, 0, 0.0, True)]}}, "negative"),
        ({0: {}}, r"no entry P\[0\]\[0\]"),
    ],
)
def test_value_iteration_rejects_bad_transitions(transitions, message):
    with pytest.raises(ValueError, match=message):
        tabular.value_iteration(transitions, 1, 1, discount=0.5)


def test_value_iteration_rejects_bad_discount():
    with pytest.raises(ValueError, match="discount"):
        tabular.value_iteration(TWO_STATE_P, 2, 2, discount=1.5)


# ------------------------------------------------------------------- q_learning


def test_q_learning_random_behaviour_recovers_exact_q_star_on_deterministic_frozenlake():
    # Off-policy: with epsilon = 1 (uniform behaviour) and alpha = 1 on a deterministic
    # env, every update writes r + 0.9 * max Q(s'), so once each pair has been tried
    # after its successor settled the table equals Q* exactly.
    env = gym.make("FrozenLake-v1", is_slippery=False)
    q_table = tabular.q_learning(env, episodes=2000, alpha=1.0, discount=0.9, epsilon=1.0, seed=0)
    q_star = tabular.value_iteration(env.unwrapped.P, 16, 4, discount=0.9, tol=1e-12)
    np.testing.assert_allclose(q_table, q_star, rtol=0, atol=1e-9)


def test_q_learning_epsilon_greedy_learns_shortest_path_on_deterministic_frozenlake():
    env = gym.make("FrozenLake-v1", is_slippery=False)
    q_table = tabular.q_learning(env, episodes=500, alpha=0.5, discount=0.9, epsilon=0.2, seed=1)
    policy = tabular.greedy_policy(q_table)
    # Follow the greedy policy: it must reach the goal in the optimal 6 steps.
    state, _ = env.reset(seed=0)
    for step in range(1, 7):
        state, reward, terminated, truncated, _ = env.step(int(policy[state]))
        if terminated:
            break
    assert (state, reward, step) == (FROZEN_GOAL, 1.0, 6)


def test_q_learning_same_seed_same_table():
    # CliffWalking pays -1 every step, so even a short run fills the table (no all-zero tie).
    env = gym.make("CliffWalking-v1")
    kwargs = dict(episodes=10, alpha=0.5, discount=0.9, epsilon=0.5, max_episode_steps=50)
    first = tabular.q_learning(env, seed=3, **kwargs)
    second = tabular.q_learning(env, seed=3, **kwargs)
    other = tabular.q_learning(env, seed=4, **kwargs)
    assert first.min() < 0
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_q_learning_step_cap_ends_episodes():
    # CliffWalking has no time limit. With a cap of 1 step every episode acts once, from
    # the start 36; alpha 1 and discount 0 write Q[36, a] = r: -100 for right (the cliff),
    # -1 for the rest. 40 uniform tries miss an action with probability ~4 * 0.75**40 ~ 4e-5.
    env = gym.make("CliffWalking-v1")
    q_table = tabular.q_learning(env, episodes=40, alpha=1.0, discount=0.0, epsilon=1.0, seed=0, max_episode_steps=1)
    assert np.count_nonzero(q_table) == np.count_nonzero(q_table[36])  # only the start state acted
    np.testing.assert_array_equal(q_table[36], [-1.0, -100.0, -1.0, -1.0])  # 40 tries hit all 4 actions


class _OneStepEnv(gym.Env):
    """One state, one action, reward 1; every episode ends after one step,
    either terminated or truncated."""

    observation_space = spaces.Discrete(1)
    action_space = spaces.Discrete(1)

    def __init__(self, terminate):
        self.terminate = terminate

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, 1.0, self.terminate, not self.terminate, {}


def test_q_learning_truncated_episodes_bootstrap():
    # alpha 1, discount 0.5, truncated: Q <- 1 + 0.5 Q from Q = 0 gives 1, 1.5, 1.75.
    q_table = tabular.q_learning(_OneStepEnv(terminate=False), 3, alpha=1.0, discount=0.5, epsilon=0.0, seed=0)
    assert q_table[0, 0] == pytest.approx(1.75, abs=1e-12)


def test_q_learning_terminated_episodes_do_not_bootstrap():
    # Terminated: Q <- 1 every time.
    q_table = tabular.q_learning(_OneStepEnv(terminate=True), 3, alpha=1.0, discount=0.5, epsilon=0.0, seed=0)
    assert q_table[0, 0] == pytest.approx(1.0, abs=1e-12)


def test_q_learning_rejects_box_observations():
    env = gym.make("CartPole-v1")
    with pytest.raises(ValueError, match=r"q_learning needs Discrete observation and action spaces; got Box\("):
        tabular.q_learning(env, episodes=1, alpha=0.5, discount=0.9, epsilon=0.1, seed=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(alpha=0.0), "alpha"), (dict(discount=2.0), "discount"), (dict(epsilon=-0.1), "epsilon")],
)
def test_q_learning_rejects_bad_hyperparameters(kwargs, message):
    args = dict(episodes=1, alpha=0.5, discount=0.9, epsilon=0.1, seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        tabular.q_learning(gym.make("FrozenLake-v1"), **args)


# ------------------------------------------------------------------ policies


def test_greedy_policy_breaks_ties_by_first_max():
    q_table = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [-1.0, -3.0, -2.0]])
    np.testing.assert_array_equal(tabular.greedy_policy(q_table), [0, 1, 0])


def test_evaluate_policy_on_deterministic_frozenlake():
    env = gym.make("FrozenLake-v1", is_slippery=False)
    # A hand path from the start: down, down, right, down, right, right reaches the goal.
    path = np.zeros(16, dtype=int)
    for state, action in [(0, FROZEN_DOWN), (4, FROZEN_DOWN), (8, FROZEN_RIGHT),
                          (9, FROZEN_DOWN), (13, FROZEN_RIGHT), (14, FROZEN_RIGHT)]:
        path[state] = action
    np.testing.assert_array_equal(tabular.evaluate_policy(env, path, episodes=3, seed=0), [1.0, 1.0, 1.0])
    # Always left bumps the wall at the start until the 100-step time limit: return 0.
    always_left = np.full(16, FROZEN_LEFT)
    np.testing.assert_array_equal(tabular.evaluate_policy(env, always_left, episodes=2, seed=0), [0.0, 0.0])


def test_evaluate_policy_step_cap_stops_a_looping_policy():
    env = gym.make("CliffWalking-v1")  # no time limit
    always_left = np.full(48, CLIFF_LEFT)
    # Bumping the left wall costs -1 per step; the cap ends the episode after 25 steps.
    returns = tabular.evaluate_policy(env, always_left, episodes=1, seed=0, max_episode_steps=25)
    np.testing.assert_array_equal(returns, [-25.0])
