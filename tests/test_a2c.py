"""A2C (rawdqn/policy_agent.py, algo 'a2c'): its critic trained on a fixed policy of a small MDP
converges to V^π from the linear solve; each update learns from exactly the last rollout_steps
steps of every env; runs resume bit for bit."""
import numpy as np
import pytest

from rawdqn.config import DQNConfig
from rawdqn.policy_agent import PolicyGradientAgent
from test_checkpoint import interrupted_and_resumed
from test_policy_gradient import small_mdp
from test_reinforce import play_and_record


class FixedPolicyA2C(PolicyGradientAgent):
    """A2C whose updates leave π at the θ it is given: with plain SGD and no clipping the
    critic's step does not depend on the policy's, so this is the critic's update alone."""

    def learn_fn(self, batch):
        theta = self.policy.theta.read_value()
        info = super().learn_fn(batch)
        self.policy.theta.assign(theta)
        return info


def critic_after_training(seed, num_envs=16, steps=6_000, discount=0.9):
    """A2C's critic trained on the MDP under the fixed π(θ): its table averaged over the second
    half of training (iterate averaging), and V^π."""
    mdp, rng = small_mdp(seed)
    theta = rng.normal(size=(4, 3))
    config = DQNConfig(algo="a2c", hidden=(), discount=discount, optimizer="sgd", learning_rate=0.05, value_coef=1.0,
                       entropy_coef=0.0, max_grad_norm=None, normalize_advantages=False, rollout_steps=5,
                       dtype="float64")
    agent = FixedPolicyA2C(4, 3, config, seed=seed, discrete_obs=True, use_bias=False, num_envs=num_envs)
    agent.policy.theta.assign(theta.reshape(-1))
    states = rng.choice(4, num_envs, p=mdp.start)
    actions = agent.begin(states).numpy()
    averaged, count = np.zeros(4), 0
    for t in range(steps):
        rewards = mdp.rewards[states, actions]
        following = np.array([rng.choice(5, p=np.append(mdp.transitions[s, a], 1 - mdp.transitions[s, a].sum()))
                              for s, a in zip(states, actions)])
        terminated = following == 4
        next_states = np.where(terminated, 0, following)   # a terminal state's value is never used
        reset = np.where(terminated, rng.choice(4, num_envs, p=mdp.start), next_states)
        actions = agent.step(next_states, rewards, terminated.astype(float), reset, ended=terminated.astype(float)).numpy()
        states = reset
        if t >= steps // 2 and (t + 1) % config.rollout_steps == 0:
            averaged += agent.critic.theta.numpy()
            count += 1
    return averaged / count, mdp.values(theta, discount)[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_critic_converges_to_the_value_of_the_policy(seed):
    # The critic's update is the n-step TD one, whose fixed point is V^π however the states are
    # weighted; 1,200 SGD updates (α 0.05) of 80 steps each, the last 600 averaged. What is left is
    # noise and an O(α) bias from consecutive rollouts sharing their states (|error| ≤ 0.02 here).
    critic, exact = critic_after_training(seed)
    assert np.max(np.abs(critic - exact)) < 0.04, (critic, exact)
    assert np.max(np.abs(exact)) > 0.5   # far from the zero start


@pytest.mark.parametrize("num_envs,seed", [(1, 0), (4, 1)])
def test_each_a2c_update_learns_from_the_last_rollout_of_every_env(num_envs, seed):
    config = DQNConfig(algo="a2c", hidden=(8,), rollout_steps=4, mode="eager", dtype="float64")
    seen, played = play_and_record(num_envs, 30, seed, config=config)
    assert [t for t, _ in seen] == [3, 7, 11, 15, 19, 23, 27]
    for update, (t, batch) in enumerate(seen):
        assert batch.valid.all() and batch.obs.shape[:2] == (4, num_envs)
        for n in range(num_envs):
            for k, (obs, action, reward, terminated, ended, next_obs) in enumerate(played[n][4 * update:4 * update + 4]):
                np.testing.assert_array_equal(batch.obs[k, n], obs)
                np.testing.assert_array_equal(batch.next_obs[k, n], next_obs)
                assert (batch.action[k, n], batch.reward[k, n], batch.terminated[k, n], batch.ended[k, n]) == \
                       (action, reward, float(terminated), float(ended))


def test_an_interrupted_and_resumed_a2c_run_ends_bit_for_bit_like_an_uninterrupted_one(tmp_path):
    config = DQNConfig(algo="a2c", total_steps=400, num_envs=4, hidden=(16,), learning_rate=1e-2, entropy_coef=0.01,
                       eval_episodes=1, eval_interval=200, log_interval=100, mode="function")
    _, resumed = interrupted_and_resumed(str(tmp_path / "run"), config, seed=2, stop_at=200)
    assert int(resumed.agent.schedule.updates_done.numpy()) == 400 // (4 * 5)


def test_a2c_on_the_device_updates_once_a_rollout_and_replays_from_a_checkpoint(tmp_path):
    # The on-device loop runs the same step body: with N = 4 envs and rollouts of 5, 23 iterations
    # make 4 updates; restored from a checkpoint, the same 23 iterations give the same run.
    config = DQNConfig(algo="a2c", hidden=(8,), rollout_steps=5, learning_rate=1e-2, mode="xla")
    trainer = replays_from_a_checkpoint(config, tmp_path, lambda agent: agent.policy.theta)
    assert int(trainer.agents[0].optimizer.step.numpy()) == 4


def replays_from_a_checkpoint(config, tmp_path, theta_of, iterations=23, updates=4):
    """An OnDeviceTrainer of 4 CartPole envs (episodes of 12 steps) run `iterations` iterations twice
    from one checkpoint: `updates` updates each time, θ moved, every variable equal bit for bit."""
    from rawdqn.ondevice import OnDeviceTrainer
    trainer = OnDeviceTrainer("CartPole-v1", config, seed=0, num_envs=4, max_episode_steps=12)
    path = trainer.checkpoint().write(str(tmp_path / "ckpt"))
    initial = theta_of(trainer.agents[0]).numpy()
    runs = []
    for _ in range(2):
        trainer.checkpoint().read(path).assert_consumed()
        stats = trainer.run(iterations)
        runs.append((stats.updates, [v.numpy() for v in trainer.variables]))
    assert runs[0][0] == runs[1][0] == updates
    assert not np.array_equal(theta_of(trainer.agents[0]).numpy(), initial)
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    return trainer
