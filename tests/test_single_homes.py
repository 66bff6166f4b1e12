"""Each concept has one home, and what depends on it reads it from there."""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import bellman, keep_best
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig
from rawdqn.policy import GreedyPolicy
from rawdqn.replay import transition_layout


@pytest.mark.parametrize("legal_actions, n_step, num_envs", [(False, 1, 1), (True, 1, 2), (False, 3, 2), (True, 3, 1)])
def test_the_memory_estimate_is_the_replay_it_allocates(legal_actions, n_step, num_envs):
    # Both read transition_layout: the estimate before allocation equals the bytes allocated.
    config = DQNConfig(hidden=(8,), replay_capacity=50, batch_size=8, n_step=n_step)
    agent = DQN(3, 4, config, legal_actions=legal_actions, num_envs=num_envs)
    assert agent.memory_needed()["replay"] == agent.replay.rows.shape.num_elements() * 4
    # [obs | next_obs | action | reward | terminated | legal' | ended], counted by hand.
    assert agent.replay.width == 3 + 3 + 3 + (4 if legal_actions else 0) + (n_step > 1)
    assert transition_layout(3, 4 if legal_actions else None, n_step).width == agent.replay.width


def test_rows_go_in_and_come_out_by_the_declared_fields():
    layout = transition_layout(2, num_actions=3, n_step=2)
    values = {"obs": [[1.0, 2.0]], "next_obs": [[3.0, 4.0]], "action": [2], "reward": [0.5], "terminated": [1.0],
              "next_legal_mask": [[1.0, 0.0, 1.0]], "ended": [1.0]}
    rows = layout.join(values, tf.float64).numpy()
    np.testing.assert_array_equal(rows, [[1, 2, 3, 4, 2, 0.5, 1, 1, 0, 1, 1]])
    assert layout.column(rows, "reward")[0] == 0.5
    np.testing.assert_array_equal(layout.columns(rows, "next_legal_mask"), [[1, 0, 1]])


def test_keep_best_takes_ties_to_the_later_weights_and_puts_them_back_into_every_network():
    assert keep_best.is_best(1.0, None) and keep_best.is_best(2.0, 2.0) and not keep_best.is_best(1.9, 2.0)
    agent = DQN(2, 2, DQNConfig(hidden=(4,)), seed=0)
    kept = [np.arange(agent.online.num_parameters, dtype=np.float32)]
    keep_best.put_back(kept, agent)
    for network in (agent.online, agent.target):   # the target starts from the kept weights too
        np.testing.assert_array_equal(network.theta.numpy(), kept[0])


def test_the_greedy_policy_is_masked_argmax_with_first_maximum_on_ties():
    agent = DQN(2, 3, DQNConfig(hidden=(), mode="function"), seed=0, legal_actions=True)
    agent.online.theta.assign([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0])   # W rows [1 1 0], [0 0 0]; b [0 0 5]
    policy = GreedyPolicy.of(agent, action_start=10)
    obs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]], np.float32)
    mask = np.array([[True, True, False], [False, True, False], [True, True, True]])
    # Q rows: [1, 1, 5], [1, 1, 5], [0, 0, 5]; the legal maxima: a tie → 0, only 1 legal → 1, 2.
    np.testing.assert_array_equal(policy.actions(obs, mask).numpy(), [10, 11, 12])
    np.testing.assert_array_equal(policy.actions(obs, mask).numpy() - 10,
                                  bellman.masked_argmax(agent.q_values(obs), mask).numpy())
    assert GreedyPolicy.of(agent, action_start=10) is policy   # compiled once per agent
