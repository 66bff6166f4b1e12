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


# ------------------------------------ SARSA, expected SARSA and Q(λ): --learner

@pytest.mark.parametrize("learner", ["sarsa", "expected-sarsa", "q-lambda"])
def test_the_linear_learner_on_rawdqns_operators_is_the_tabular_learner(learner):
    """One ε-greedy stream each; the linear one-hot learner's target comes from bellman.py /
    multistep.py in TensorFlow, the tabular one's from tabular.py in NumPy: after every update
    the tables agree to 1e-12, so both streams take the same actions throughout."""
    problem = verify.make_problem("CliffWalking-v1", 0.9, epsilon=0.0 if learner == "q-lambda" else 0.2)
    epsilon_at = lambda step: 0.2   # noqa: E731
    tabular_run = verify.train_tabular(problem, 1_500, seed=4, epsilon_at=epsilon_at, learner=learner)
    linear_run = verify.train_linear(problem, 1_500, seed=4, epsilon_at=epsilon_at, learner=learner)
    np.testing.assert_allclose(linear_run.q_table, tabular_run.q_table, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(linear_run.visits, tabular_run.visits)
    assert np.count_nonzero(tabular_run.q_table) > 60


def test_expected_sarsa_learns_q_star_epsilon_and_q_lambda_learns_q_star():
    """On deterministic FrozenLake, acting with ε = 0.2 throughout: where a pair was visited 500
    times or more, expected SARSA is within 0.01 of Q*_ε (and 0.1 or more from Q* somewhere),
    Watkins' Q(λ) within 1e-9 of Q*; SARSA's sampled target sits nearer Q*_ε than Q* on average."""
    q_star = verify.make_problem("FrozenLake-v1", 0.9, is_slippery=False)
    q_eps = verify.make_problem("FrozenLake-v1", 0.9, epsilon=0.2, is_slippery=False)
    runs = {learner: verify.train_tabular(q_star if learner == "q-lambda" else q_eps, 30_000, seed=0,
                                          epsilon_at=lambda step: 0.2, learner=learner)
            for learner in ("sarsa", "expected-sarsa", "q-lambda")}

    def errors(learner, reference):
        well_visited = runs[learner].visits >= 500
        assert well_visited.sum() >= 6
        return np.abs(runs[learner].q_table - reference.optimal_q)[well_visited]
    assert errors("expected-sarsa", q_eps).max() < 0.01 and errors("expected-sarsa", q_star).max() > 0.1
    assert errors("q-lambda", q_star).max() < 1e-9
    assert errors("sarsa", q_eps).mean() < errors("sarsa", q_star).mean()


def test_verify_learner_prints_its_reference_and_both_learners(capsys):
    assert cli.main(["verify", "--env", "CliffWalking-v1", "--learner", "sarsa", "--steps", "300"]) == 0
    text = capsys.readouterr().out
    assert "Q*_ε by value iteration with the ε-greedy backup, ε = 0.1" in text
    rows = {line.split("  ")[0]: line for line in text.splitlines()}
    for name in ("tabular SARSA", "linear SARSA", "Q*_ε (value iteration)"):
        assert name in rows
    assert cli.main(["verify", "--env", "FrozenLake-v1", "--learner", "q-lambda", "--lambda", "0.5",
                     "--steps", "300"]) == 0
    assert "λ = 0.5" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--learner", "q-lambda", "--lambda", "1.5"], "--lambda must be in [0, 1]; got 1.5"),
    (["--learner", "q-lambda", "--lambda", "-0.1"], "--lambda must be in [0, 1]; got -0.1"),
    (["--lambda", "0.5"], "--lambda is Q(λ)'s: add --learner q-lambda"),
    (["--learner", "sarsa", "--lambda", "0.5"], "--lambda is Q(λ)'s: add --learner q-lambda"),
    (["--learner", "td"], "invalid choice: 'td'"),
    (["--learner", "q-lambda", "--lambda", "x"], "invalid float value: 'x'"),
])
def test_verify_learner_and_lambda_errors_exit_2_with_one_line(argv, message, capsys):
    try:
        code = cli.main(["verify", "--env", "FrozenLake-v1", "--steps", "10", *argv])
    except SystemExit as stop:   # argparse's own errors exit from the parser
        code = stop.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and message in captured.err, captured.err
