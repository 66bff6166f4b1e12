"""DQN on CartPole-v1, top to bottom: the reader's script.

    python examples/dqn_cartpole.py [--steps 50000] [--seed 0] [--dtype float32|float64]

Everything the algorithm does is a call into rawdqn/algorithms/dqn.py (act, update, sync), in
the paper's order: act → env step → store → learn if due → sync if due. The network, the
replay ring, the optimizer and the schedule's closed forms are rawdqn's own modules; the
hyperparameters are `rawdqn train`'s CartPole preset. With the same seed and dtype this
script and `rawdqn train --env CartPole-v1 --no-keep-best` end with the same θ, bit for bit
(tests/test_example.py): the script and the engine are the same math.
"""
import argparse

import gymnasium as gym
import numpy as np
import tensorflow as tf

from rawdqn import optim, schedule
from rawdqn.algorithms import dqn
from rawdqn.config import preset
from rawdqn.network import QNetwork
from rawdqn.replay import ReplayBuffer


def train(steps=50_000, seed=0, dtype="float32", log=print):
    """Train DQN for `steps` environment steps; returns (θ, the episodes' returns)."""
    config = preset("CartPole-v1").replace(total_steps=steps, dtype=dtype)
    float_type = tf.float64 if dtype == "float64" else tf.float32
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    num_actions, obs_dim = int(env.action_space.n), int(env.observation_space.shape[0])

    # θ and θ⁻ start equal: the same architecture and seed give the same draw.
    network = QNetwork(obs_dim, num_actions, config.hidden, seed=seed, dtype=float_type)
    params = network.theta.read_value()
    target_params = tf.identity(params)
    optimizer = optim.Adam(config.learning_rate)
    optimizer_state = optim.OptimizerState(tf.constant(0, tf.int64), ([tf.zeros_like(params)], [tf.zeros_like(params)]))
    replay = ReplayBuffer(config.replay_capacity, obs_shape=(obs_dim,), obs_dtype=float_type, seed=seed + 1,
                          reward_dtype=float_type, discount=config.discount)

    # The pure functions, compiled as rawdqn compiles them (XLA).
    @tf.function(jit_compile=True)
    def act(params, obs, epsilon, key):
        return dqn.act(network, params, obs, epsilon, key)

    @tf.function(jit_compile=True)
    def learn(params, target_params, optimizer_state, batch):
        return dqn.update(config, network, optimizer, params, target_params, optimizer_state, batch)

    @tf.function(jit_compile=True)
    def sync(params, target_params, tau):
        return dqn.sync(params, target_params, tau)

    returns, episode_return = [], 0.0
    for t in range(steps):
        # ε-greedy on Q(s; θ), ε(t) decaying linearly; the exploration draws keyed by (seed, t).
        epsilon = tf.constant(schedule.epsilon(config, t), float_type)
        key = tf.constant([seed, t], tf.int32)
        action = int(act(params, tf.constant(obs[None], float_type), epsilon, key)[0])

        next_obs, reward, terminated, truncated, _ = env.step(action)
        # next_obs is the true last observation even where the episode was truncated: its
        # target bootstraps from it; only `terminated` stops bootstrapping.
        replay.add(obs[None], [action], [reward], next_obs[None], [float(terminated)])
        episode_return += reward
        obs = next_obs
        if terminated or truncated:
            returns.append(episode_return)
            episode_return, (obs, _) = 0.0, env.reset()

        # The updates due after t + 1 steps: g every f steps once learning has started.
        for _ in range(schedule.updates_owed(config, t + 1) - schedule.updates_owed(config, t)):
            batch = replay.sample(config.batch_size)
            params, optimizer_state, info, _ = learn(params, target_params, optimizer_state, batch)
        # θ⁻ ← τθ + (1 − τ)θ⁻ every C steps.
        if schedule.syncs_owed(config, t + 1) > schedule.syncs_owed(config, t):
            target_params = sync(params, target_params, tf.constant(config.tau, float_type))

        if (t + 1) % 5_000 == 0 and returns:
            log(f"step {t + 1:,}: mean return of the last 10 episodes {np.mean(returns[-10:]):.1f}, "
                f"ε {float(epsilon):.3f}")
    return params, returns, network


def evaluate(network, params, episodes=10, seed=10_000):
    """Mean return of the greedy policy argmax_a Q(s, a; θ) over fresh episodes."""
    env, total = gym.make("CartPole-v1"), 0.0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            q_values = network.apply(params, tf.constant(obs[None], params.dtype))
            obs, reward, terminated, truncated, _ = env.step(int(tf.argmax(q_values[0])))
            total, done = total + reward, terminated or truncated
    return total / episodes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="DQN on CartPole-v1 from rawdqn.algorithms.dqn")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args()
    params, returns, network = train(args.steps, args.seed, args.dtype)
    print(f"greedy evaluation: mean return {evaluate(network, params):.1f} over 10 episodes")
