"""Convergence to Q*: tabular Q-learning and DQN measured against value iteration.

    Q*  = value_iteration(P, γ)      P = env.unwrapped.P, gymnasium's exact model of the task
    for each learner — tabular Q-learning, a linear one-hot DQN (its weights are a Q-table)
    and an MLP DQN — trained for the same number of ε-greedy steps:

`--learner sarsa|expected-sarsa|q-lambda` measures another target the same way: its tabular
learner (rawdqn.tabular, NumPy) beside a linear one-hot learner whose target is the operator of
rawdqn.bellman / rawdqn.multistep (TensorFlow, float64, one SGD step of rate α per sample). SARSA
and expected SARSA learn the values of the ε-greedy policy they follow, so they are measured
against Q*_ε, value iteration with the ε-greedy backup (1 − ε) max + ε mean at the schedule's
final ε; Watkins' Q(λ) cuts its trace after an exploratory action and is measured against Q*.
        error      = max over visited (s, a) of |Q(s, a) − Q*(s, a)|
        agreement  = fraction of decision states (reachable, Q*(s, ·) not constant) where the
                     greedy action is optimal: Q*(s, argmax_a Q(s, a)) ≥ max_a Q*(s, a) − tol
        return     = mean undiscounted return of the greedy policy

Time-limit truncations bootstrap (terminated = 0), so every learner estimates the same
infinite-horizon Q* that value iteration computes from P.
"""
import dataclasses
import functools
import time

import gymnasium as gym
import numpy as np

from rawdqn import schedule, tabular
from rawdqn.config import check_seed
from rawdqn.presets import preset
from rawdqn.errors import UsageError
from rawdqn.verify_learners import (  # noqa: F401 (train_linear, max_visited_error: part of verify's API)
    DEFAULT_LAMBDA, Learner, max_visited_error, snapshot_steps, train_linear, train_tabular)

ENVS = ("FrozenLake-v1", "CliffWalking-v1", "Taxi-v4")

# γ per environment. FrozenLake: 0.95 (slippery: values stay informative, and Q-learning's
# error scales with 1/(1 − γ)); CliffWalking and Taxi: 0.99 (long, deterministic paths).
DISCOUNTS = {"FrozenLake-v1": 0.95, "CliffWalking-v1": 0.99, "Taxi-v4": 0.99}
DEFAULT_DISCOUNT = 0.99
DEFAULT_STEPS = {"FrozenLake-v1": 50_000, "CliffWalking-v1": 20_000, "Taxi-v4": 100_000}
TIE_TOLERANCE = 1e-6       # actions whose Q* is within this of the max count as optimal
LEARNERS = ("q-learning", "sarsa", "expected-sarsa", "q-lambda")
EVAL_EPISODES = 200
EVAL_MAX_STEPS = 1_000     # CliffWalking has no time limit: a looping greedy policy must stop


class VerifyError(UsageError):
    """An environment `rawdqn verify` cannot solve exactly; the message says why in one line."""


@dataclasses.dataclass
class Problem:
    """The environment, its exact model and Q*."""
    env_id: str
    discount: float
    num_states: int
    num_actions: int
    optimal_q: np.ndarray
    decision_states: np.ndarray
    env_kwargs: dict = dataclasses.field(default_factory=dict)
    epsilon: float = 0.0   # > 0: optimal_q is Q*_ε, the fixed point of the ε-greedy backup
    reference: str = "Q*"

    def make_env(self):
        return gym.make(self.env_id, **self.env_kwargs)


def make_problem(env_id, discount=None, epsilon=0.0, **env_kwargs):
    """Q* of `env_id` by value iteration (Q*_ε with the ε-greedy backup where epsilon > 0);
    UsageError for envs without Discrete spaces or a model P.

    `env_kwargs` go to gym.make (e.g. is_slippery=False for a deterministic FrozenLake).
    """
    try:
        env = gym.make(env_id, **env_kwargs)
    except gym.error.Error as error:
        raise VerifyError(f"unknown environment {env_id!r} ({error}); "
                          f"rawdqn verify supports {', '.join(ENVS)}") from None
    try:
        if not isinstance(env.observation_space, gym.spaces.Discrete) or \
                not isinstance(env.action_space, gym.spaces.Discrete):
            raise VerifyError(f"{env_id} has a {type(env.observation_space).__name__} observation "
                              f"space; rawdqn verify needs Discrete states and actions "
                              f"(e.g. {', '.join(ENVS)})")
        model = getattr(env.unwrapped, "P", None)
        if model is None:
            raise VerifyError(f"{env_id} exposes no transition model env.unwrapped.P, so Q* cannot "
                              f"be computed; rawdqn verify supports {', '.join(ENVS)}")
        num_states, num_actions = int(env.observation_space.n), int(env.action_space.n)
        discount = DISCOUNTS.get(env_id, DEFAULT_DISCOUNT) if discount is None else float(discount)
        optimal_q = tabular.value_iteration(model, num_states, num_actions, discount, tol=1e-10, epsilon=epsilon)
        start = np.flatnonzero(getattr(env.unwrapped, "initial_state_distrib", np.ones(num_states)))
        reachable = reachable_states(model, start, num_states)
        spread = optimal_q.max(axis=1) - optimal_q.min(axis=1)
        decision = np.flatnonzero(reachable & (spread > TIE_TOLERANCE))
    finally:
        env.close()
    return Problem(env_id, discount, num_states, num_actions, optimal_q, decision, env_kwargs, epsilon,
                   "Q*" if epsilon == 0 else "Q*_ε")


def reachable_states(model, start, num_states):
    """States reachable from `start` under some policy (following non-terminal transitions)."""
    reachable = np.zeros(num_states, bool)
    frontier = list(start)
    reachable[frontier] = True
    while frontier:
        state = frontier.pop()
        for outcomes in model[state].values():
            for prob, next_state, _, terminated in outcomes:
                if prob > 0 and not terminated and not reachable[next_state]:
                    reachable[next_state] = True
                    frontier.append(int(next_state))
    return reachable


def policy_agreement(q_table, problem):
    """Fraction of decision states whose greedy action is optimal under Q* (ties allowed)."""
    states = problem.decision_states
    if states.size == 0:
        return 1.0
    chosen = np.argmax(q_table[states], axis=1)
    optimal = problem.optimal_q[states]
    return float(np.mean(optimal[np.arange(states.size), chosen]
                         >= optimal.max(axis=1) - TIE_TOLERANCE))


def greedy_return(problem, q_table, episodes=EVAL_EPISODES, seed=10_000):
    """Mean undiscounted return of π(s) = argmax_a Q(s, a) (first max on ties)."""
    env = problem.make_env()
    try:
        returns = tabular.evaluate_policy(env, tabular.greedy_policy(q_table), episodes, seed,
                                          max_episode_steps=EVAL_MAX_STEPS)
    finally:
        env.close()
    return float(np.mean(returns))


def dqn_config(problem, steps, kind, **overrides):
    """The environment's preset with γ = the problem's; 'linear' keeps the preset's linear SGD
    Q-function, 'mlp' swaps in one hidden ReLU layer of 64 and Adam. `overrides`: any
    DQNConfig field."""
    # 4 updates every 4 steps: the preset's one update per step, in a quarter of the calls.
    config = preset(problem.env_id).replace(total_steps=steps, discount=problem.discount,
                                            train_frequency=4, gradient_steps=4, mode="xla")
    if kind == "mlp":
        config = config.replace(hidden=(64,), optimizer="adam", learning_rate=1e-3,
                                max_grad_norm=None)
    else:
        config = config.replace(hidden=())
    return config.replace(**overrides).validate()


def train_dqn(problem, steps, seed, kind, **overrides):
    """Train a DQN on one-hot states with rawdqn's training loop (`rawdqn.train.Trainer`),
    recording visit counts and |Q − Q*| at the snapshot steps from its on_step hook.

    'linear' is Q(s, ·) = W[s] (no bias, W₀ = 0: a Q-table learned by SGD from replay);
    'mlp' is one hidden layer of 64 ReLUs. Taxi's action masks are not used: Q* and the
    tabular learner maximise over every action.
    """
    from rawdqn.train import Trainer  # TensorFlow is imported only when a DQN is trained
    # The Trainer's own greedy evaluation is not this table's (greedy_return below): keep it short.
    config = dqn_config(problem, steps, kind, **overrides).replace(eval_interval=0, keep_best=False,
                                                                  eval_episodes=1, log_interval=steps)
    linear = kind == "linear"
    all_states = np.arange(problem.num_states, dtype=np.int32)
    visits = np.zeros((problem.num_states, problem.num_actions), np.int64)
    snapshots, curve_steps, curve_error = snapshot_steps(steps), [], []

    def record(trainer, obs, actions, env_step):
        np.add.at(visits, (obs, actions), 1)
        if trainer.step in snapshots:
            curve_steps.append(trainer.step)
            curve_error.append(max_visited_error(trainer.agent.q_values(all_states).numpy(), problem.optimal_q, visits))

    started = time.perf_counter()
    trainer = Trainer(problem.env_id, config, seed, log=lambda line: None, env_kwargs=problem.env_kwargs,
                      action_masks=False, on_step=record,
                      agent_options={"use_bias": False, "initializer": "zeros"} if linear else None)
    trainer.run()
    name = "DQN linear one-hot" if linear else "DQN MLP (64)"
    return Learner(name, trainer.agent.q_values(all_states).numpy().astype(np.float64), visits,
                   curve_steps, curve_error, time.perf_counter() - started)


def verify(env_id, steps=None, seed=0, discount=None, log=print, learner="q-learning", lambda_=DEFAULT_LAMBDA):
    """The reference values and the learners of `learner` on `env_id`; returns (problem, [Learner, ...]).

    q-learning: tabular Q-learning, a linear one-hot DQN and an MLP DQN against Q*; sarsa,
    expected-sarsa: the tabular and the linear learner against Q*_ε (ε: the schedule's final);
    q-lambda: Watkins' Q(λ), tabular and linear, against Q*."""
    check_seed(seed)
    if learner not in LEARNERS:
        raise VerifyError(f"--learner must be one of {', '.join(LEARNERS)}; got {learner!r}")
    if not 0.0 <= lambda_ <= 1.0:
        raise VerifyError(f"--lambda must be in [0, 1]; got {lambda_}")
    steps = DEFAULT_STEPS.get(env_id, 50_000) if steps is None else int(steps)
    if steps < 1:
        raise VerifyError(f"--steps must be >= 1; got {steps}")
    problem = make_problem(env_id, discount)
    config = dqn_config(problem, steps, "linear")
    epsilon_at = functools.partial(schedule.epsilon, config)   # one ε schedule for all
    on_policy = learner in ("sarsa", "expected-sarsa")
    if on_policy:
        problem = make_problem(env_id, discount, epsilon=config.epsilon_end)
    described = f"value iteration with the ε-greedy backup, ε = {problem.epsilon}" if on_policy else "value iteration"
    log(f"rawdqn verify: {env_id}, γ = {problem.discount}, {steps:,} steps per learner, "
        f"seed {seed}; {problem.reference} by {described} ({problem.num_states} states × "
        f"{problem.num_actions} actions, {problem.decision_states.size} decision states)"
        + (f"; λ = {lambda_}" if learner == "q-lambda" else ""))
    learners = []
    for train in ((lambda: train_tabular(problem, steps, seed, epsilon_at)),
                  (lambda: train_dqn(problem, steps, seed, "linear")),
                  (lambda: train_dqn(problem, steps, seed, "mlp"))) if learner == "q-learning" else \
            ((lambda: train_tabular(problem, steps, seed, epsilon_at, learner=learner, lambda_=lambda_)),
             (lambda: train_linear(problem, steps, seed, epsilon_at, learner, lambda_=lambda_))):
        learners.append(train())
        log(f"  trained {learners[-1].name} in {learners[-1].seconds:.1f} s")
    for trained in learners:
        seen = trained.visits > 0
        trained.error = max_visited_error(trained.q_table, problem.optimal_q, trained.visits)
        trained.mean_error = float(np.mean(np.abs(trained.q_table - problem.optimal_q)[seen]))
        trained.agreement = policy_agreement(trained.q_table, problem)
        trained.eval_return = greedy_return(problem, trained.q_table)
    return problem, learners


def format_table(problem, learners):
    """The comparison as a fixed-width text table, the reference's own greedy policy in the last row."""
    ref = problem.reference
    header = (f"{'learner':<22} {f'max|Q−{ref}|':>10} {f'mean|Q−{ref}|':>11} {'policy = π*':>14} "
              f"{'eval return':>12} {'visited (s,a)':>14}")
    lines = [header, "-" * len(header)]
    total_pairs = problem.num_states * problem.num_actions
    decisions = problem.decision_states.size
    for learner in learners:
        agree = int(round(learner.agreement * decisions))
        lines.append(f"{learner.name:<22} {learner.error:>10.4f} {learner.mean_error:>11.4f} "
                     f"{f'{agree}/{decisions}':>8} {learner.agreement:>4.0%} "
                     f"{learner.eval_return:>12.3f} "
                     f"{f'{int((learner.visits > 0).sum())}/{total_pairs}':>14}")
    optimal_return = greedy_return(problem, problem.optimal_q)
    lines.append(f"{ref + ' (value iteration)':<22} {0.0:>10.4f} {0.0:>11.4f} "
                 f"{f'{decisions}/{decisions}':>8} {1:>4.0%} {optimal_return:>12.3f} {'':>14}")
    return "\n".join(lines)


def equivalence_run(env_id, steps, seed=0, alpha=0.1, discount=0.99, mode="xla"):
    """Drive a linear one-hot DQN and tabular Q-learning with one stream of transitions.

    The DQN has no bias and zero initial weights (so W is a Q-table), batch size 1, SGD with
    learning rate α, no clipping, the squared loss ½δ², and its target synced before every
    update; then one `DQN.learn` on (s, a, r, s', terminated) is one
    `tabular.q_learning_update`. Transitions come from a seeded uniform-random behaviour
    policy; truncated episodes pass terminated = 0. Yields, after every step,
    (step, max |W − Q|, reward, terminated, truncated).
    """
    from rawdqn.agent import DQN
    from rawdqn.config import DQNConfig
    env = gym.make(env_id)
    num_states, num_actions = int(env.observation_space.n), int(env.action_space.n)
    config = DQNConfig(hidden=(), optimizer="sgd", learning_rate=alpha, discount=discount,
                       loss="squared", max_grad_norm=None, batch_size=1, replay_capacity=1,
                       dtype="float64", mode=mode)
    agent = DQN(num_states, num_actions, config, seed=seed, discrete_obs=True, use_bias=False,
                initializer="zeros")
    q_table = np.zeros((num_states, num_actions))
    rng = np.random.default_rng(seed)
    state, _ = env.reset(seed=seed)
    for step in range(steps):
        action = int(rng.integers(num_actions))
        next_state, reward, terminated, truncated, _ = env.step(action)
        agent.sync_target()
        agent.learn(([state], [action], [float(reward)], [next_state], [float(terminated)]))
        q_table = tabular.q_learning_update(q_table, state, action, reward, next_state,
                                            terminated, alpha, discount)
        deviation = float(np.max(np.abs(agent.online.kernels[0].numpy() - q_table)))
        yield step, deviation, float(reward), bool(terminated), bool(truncated)
        state = next_state
        if terminated or truncated:
            state, _ = env.reset()
    env.close()
