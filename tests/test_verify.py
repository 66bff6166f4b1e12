"""Convergence to Q* and the `rawdqn verify` command.

Q* comes from value iteration on gymnasium's own model (env.unwrapped.P) and is itself
checked against values derived by hand from shortest paths.
"""
import gymnasium as gym
import numpy as np
import pytest

from rawdqn import cli, verify


# ------------------------------------------------------------------ Q* by hand

def test_q_star_of_deterministic_frozen_lake_is_discounted_shortest_path():
    # Reward 1 only on reaching G, γ = 0.9: V*(s) = γ^(d − 1), d = fewest moves from s to G.
    #   S F F F      d:  6 5 4 5        V*: .59049 .6561 .729 .6561
    #   F H F H          5 · 3 ·            .6561  0     .81   0
    #   F F F H          4 3 2 ·            .729   .81   .9    0
    #   H F F G          · 2 1 ·            0      .9    1     0
    problem = verify.make_problem("FrozenLake-v1", discount=0.9, is_slippery=False)
    d = np.array([[6, 5, 4, 5], [5, 0, 3, 0], [4, 3, 2, 0], [0, 2, 1, 0]])
    expected = np.where(d > 0, 0.9 ** (d - 1.0), 0.0)
    np.testing.assert_allclose(problem.optimal_q.max(axis=1).reshape(4, 4), expected, atol=1e-9)


def test_q_star_of_cliff_walking_is_the_13_step_path_along_the_cliff():
    # From the start, 13 moves (up, 11 × right, down) at −1 each: V* = −Σ_{k<13} γ^k.
    problem = verify.make_problem("CliffWalking-v1", discount=0.99)
    assert problem.optimal_q[36].max() == pytest.approx(-sum(0.99 ** k for k in range(13)), abs=1e-8)
    # Stepping right from the start falls off the cliff: −100 and back to the start.
    assert problem.optimal_q[36, 1] == pytest.approx(-100 + 0.99 * problem.optimal_q[36].max(),
                                                     abs=1e-8)


def test_agreement_counts_ties_as_optimal_and_error_looks_only_at_visited_pairs():
    # Hand-made Q* over 3 decision states: state 0 has a tie between actions 0 and 1.
    problem = verify.Problem("hand", 0.9, 3, 2, np.array([[1.0, 1.0], [0.0, 2.0], [5.0, 4.0]]),
                             np.array([0, 1, 2]))
    # Greedy: state 0 → 1 (tied, optimal), state 1 → 0 (wrong), state 2 → 0 (right): 2/3.
    q_table = np.array([[0.0, 0.5], [9.0, 1.0], [5.0, 4.5]])
    assert verify.policy_agreement(q_table, problem) == pytest.approx(2 / 3)
    # Only (1, 1) and (2, 1) were visited: |1 − 2| = 1 and |4.5 − 4| = 0.5; (1, 0)'s 9 is ignored.
    visits = np.array([[0, 0], [0, 3], [0, 1]])
    assert verify.max_visited_error(q_table, problem.optimal_q, visits) == 1.0


# --------------------------------------------- the DQN finds the optimal policy

def test_dqn_greedy_policy_is_optimal_on_deterministic_frozen_lake():
    problem = verify.make_problem("FrozenLake-v1", discount=0.9, is_slippery=False)
    # A linear one-hot DQN learning off-policy from a uniform-random behaviour policy
    # (ε = 1 throughout: Q-learning learns Q* from any data that covers the pairs), with
    # frequent target syncs so values travel back the 6-step path quickly. Learning rate
    # 3 on a batch of 32 is ≈ 0.1 per sample of the mean loss.
    learner = verify.train_dqn(problem, 3000, seed=0, kind="linear", learning_starts=100,
                               target_update_interval=20, learning_rate=3.0,
                               epsilon_start=1.0, epsilon_end=1.0)
    goal_reachable = problem.optimal_q.max(axis=1) > 0  # the only reward is at the goal
    assert goal_reachable.sum() == 11  # every cell but the 4 holes and G itself
    for state in np.flatnonzero(goal_reachable):
        action = int(np.argmax(learner.q_table[state]))
        optimal = problem.optimal_q[state]
        assert optimal[action] >= optimal.max() - 1e-9, (
            f"state {state}: DQN picks {action} (Q* {optimal[action]:.4f}) but Q* = {optimal}; "
            f"DQN Q = {learner.q_table[state]}")
    # Following that greedy policy from S reaches G.
    assert verify.greedy_return(problem, learner.q_table, episodes=1) == 1.0


# --------------------------------------------------------------- the command

def test_verify_command_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "frozen.png"
    assert cli.main(["verify", "--env", "FrozenLake-v1", "--steps", "400", "--plot", str(out)]) == 0
    text = capsys.readouterr().out
    assert "γ = 0.95" in text
    rows = {line.split("  ")[0]: line for line in text.splitlines()}
    for name in ("tabular Q-learning", "DQN linear one-hot", "DQN MLP (64)", "Q* (value iteration)"):
        assert name in rows
    # Q*'s own greedy policy agrees with itself on every decision state.
    assert "100%" in rows["Q* (value iteration)"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class NoModelEnv(gym.Env):
    """Discrete states and actions, but no transition model P."""
    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        return 0, {}

    def step(self, action):
        return 0, 0.0, True, False, {}


@pytest.mark.parametrize("argv, message", [
    (["--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
    (["--env", "CartPole-v1"], "needs Discrete states and actions"),
    (["--env", "rawdqn-test/NoModel-v0"], "no transition model"),
    (["--env", "Taxi-v4", "--steps", "0"], "--steps must be >= 1"),
    (["--env", "Taxi-v4", "--discount", "1.5"], "--discount must be in [0, 1)"),
])
def test_verify_errors_exit_2_with_one_line(argv, message, capsys):
    if "rawdqn-test/NoModel-v0" not in gym.registry:
        gym.register("rawdqn-test/NoModel-v0", entry_point=NoModelEnv)
    assert cli.main(["verify", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err, captured.err
    assert "Traceback" not in captured.err


def test_plot_without_matplotlib_exits_2_before_training(monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    assert cli.main(["verify", "--env", "FrozenLake-v1", "--plot", "x.png"]) == 2
    assert "install rawdqn[plot] for plots" in capsys.readouterr().err
