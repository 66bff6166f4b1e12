"""A linear one-hot DQN *is* tabular Q-learning: one `DQN.learn` ≡ one `q_learning_update`.

With one-hot features x = onehot(s), no bias and no hidden layer, Q(s, ·) = x W = W[s], so
the weight matrix is the Q-table. For a batch of one transition (s, a, r, s', terminated):

    y = r + γ (1 − terminated) max_a' W⁻[s', a']      (target net, synced: W⁻ = W)
    δ = y − W[s, a],   L = ½ δ²
    ∂L/∂W[s, a] = −δ,  every other entry of ∂L/∂W is 0
    SGD, learning rate α:   W[s, a] ← W[s, a] + α δ

which is Watkins' update Q[s, a] ← Q[s, a] + α (y − Q[s, a]) with Q = W. Both are driven by
the same stream of transitions from a seeded uniform-random behaviour policy; the tables
must agree to 1e-10 after every single step. Time-limit truncations are passed with
terminated = 0, so both bootstrap from the true final state.

`scripts/equivalence.py` runs the full 10,000 transitions per environment.
"""
import gymnasium as gym
import numpy as np
import pytest

from rawdqn import tabular
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig

ALPHA = 0.1      # neither 0.1 nor 0.99 is exact in binary: the agreement is not luck of round numbers
DISCOUNT = 0.99
TOLERANCE = 1e-10


def transitions(env_id, steps, seed):
    """(s, a, r, s', terminated) from a uniform-random policy; resets after terminated or truncated."""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    state, _ = env.reset(seed=seed)
    for _ in range(steps):
        action = int(rng.integers(env.action_space.n))
        next_state, reward, terminated, truncated, _ = env.step(action)
        yield int(state), action, float(reward), int(next_state), bool(terminated)
        state = next_state
        if terminated or truncated:
            state, _ = env.reset()
    env.close()


def tabular_dqn(num_states, num_actions, mode):
    config = DQNConfig(hidden=(), optimizer="sgd", learning_rate=ALPHA, discount=DISCOUNT,
                       loss="squared", max_grad_norm=None, batch_size=1, replay_capacity=1,
                       dtype="float64", mode=mode)
    return DQN(num_states, num_actions, config, discrete_obs=True, use_bias=False,
               initializer="zeros")


def assert_dqn_tracks_tabular(env_id, steps, mode, seed=0):
    env = gym.make(env_id)
    num_states, num_actions = int(env.observation_space.n), int(env.action_space.n)
    agent = tabular_dqn(num_states, num_actions, mode)
    q_table = np.zeros((num_states, num_actions))
    rewarded = terminated_steps = 0
    for step, (state, action, reward, next_state, terminated) in enumerate(
            transitions(env_id, steps, seed)):
        agent.sync_target()  # W⁻ = W: the target is the current table, as in tabular Q-learning
        agent.learn(([state], [action], [reward], [next_state], [float(terminated)]))
        q_table = tabular.q_learning_update(q_table, state, action, reward, next_state,
                                            terminated, ALPHA, DISCOUNT)
        deviation = np.max(np.abs(agent.online.kernels[0].numpy() - q_table))
        assert deviation <= TOLERANCE, (
            f"{env_id} step {step}: max |W − Q| = {deviation:.3g} after "
            f"(s={state}, a={action}, r={reward}, s'={next_state}, terminated={terminated})")
        rewarded += reward != 0
        terminated_steps += terminated
    # The stream must exercise the update: non-zero rewards and, where reachable, terminations.
    assert rewarded > 0 and np.count_nonzero(q_table) > 0
    return terminated_steps


@pytest.mark.parametrize("env_id, steps", [
    ("FrozenLake-v1", 1000),   # slippery: holes terminate often, the goal now and then
    ("CliffWalking-v1", 600),  # −1 per step, −100 and back to the start off the cliff
    ("Taxi-v4", 600),          # 500 states, −1 / −10, truncated at 200 steps (bootstraps)
])
def test_linear_one_hot_dqn_equals_tabular_q_learning_at_every_step(env_id, steps):
    assert_dqn_tracks_tabular(env_id, steps, mode="xla")


def test_equivalence_holds_for_eager_kernels_too():
    # FrozenLake terminates often (holes), and with seed 1 the random walk reaches the goal
    # within 300 steps: the bootstrap, the terminal branch and a non-zero reward are all hit.
    assert assert_dqn_tracks_tabular("FrozenLake-v1", 300, mode="eager", seed=1) > 0


def test_the_equivalence_check_can_fail():
    # With γ off by 1e-6 in the DQN only, the tables drift apart: the 1e-10 check has teeth.
    env_id = "Taxi-v4"
    agent = DQN(500, 6, DQNConfig(hidden=(), optimizer="sgd", learning_rate=ALPHA,
                                  discount=DISCOUNT + 1e-6, loss="squared", max_grad_norm=None,
                                  batch_size=1, replay_capacity=1, dtype="float64"),
                discrete_obs=True, use_bias=False, initializer="zeros")
    q_table = np.zeros((500, 6))
    worst = 0.0
    for state, action, reward, next_state, terminated in transitions(env_id, 300, seed=0):
        agent.sync_target()
        agent.learn(([state], [action], [reward], [next_state], [float(terminated)]))
        q_table = tabular.q_learning_update(q_table, state, action, reward, next_state,
                                            terminated, ALPHA, DISCOUNT)
        worst = max(worst, np.max(np.abs(agent.online.kernels[0].numpy() - q_table)))
    assert worst > TOLERANCE
