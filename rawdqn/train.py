"""The training loop: the one place that decides when to act, store, learn, sync, log and evaluate.

    for t = 0 … T−1:
        a_t  = ε-greedy(Q(s_t; θ), ε(t))
        s_{t+1}, r_t, terminated, truncated = env.step(a_t)
        replay ← (s_t, a_t, r_t, s_{t+1}, terminated)   # s_{t+1} is the true final obs
        if terminated or truncated: s_{t+1} = env.reset()
        every train_frequency steps (after learning_starts): gradient_steps × learn(sample)
        every target_update_interval steps: θ⁻ ← τθ + (1 − τ)θ⁻
"""
import collections
import dataclasses
import json
import os
import time

import gymnasium as gym
import numpy as np
import tensorflow as tf

from rawdqn.agent import DQN
from rawdqn.config import DQNConfig, preset
from rawdqn.errors import UsageError


class EnvError(UsageError):
    """An environment rawdqn cannot train on; the message says why in one line."""


@dataclasses.dataclass
class EnvSpec:
    """What the agent needs to know about an environment's spaces."""
    obs_dim: int
    num_actions: int
    discrete_obs: bool
    action_start: int
    legal_actions: bool


def make_env(env_id, render_mode=None):
    """gym.make with rawdqn's checks: Discrete actions, Box or Discrete observations."""
    try:
        env = gym.make(env_id, render_mode=render_mode)
    except gym.error.Error as error:
        raise EnvError(f"unknown environment {env_id!r} ({error}); "
                       "pass a registered gymnasium id such as CartPole-v1") from None
    except ImportError as error:
        raise EnvError(f"environment {env_id!r} needs a package that is not installed: {error}") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise EnvError(f"{env_id} has a {type(env.action_space).__name__} action space; "
                       "DQN needs a Discrete action space")
    if not isinstance(env.observation_space, (gym.spaces.Box, gym.spaces.Discrete)):
        env.close()
        raise EnvError(f"{env_id} has a {type(env.observation_space).__name__} observation space; "
                       "rawdqn supports Box and Discrete observations")
    return env


def env_spec(env, info):
    """Sizes and encodings for `env`; `info` is the first reset's info (for action masks)."""
    space = env.observation_space
    discrete_obs = isinstance(space, gym.spaces.Discrete)
    obs_dim = int(space.n) if discrete_obs else int(np.prod(space.shape))
    return EnvSpec(obs_dim, int(env.action_space.n), discrete_obs,
                   int(env.action_space.start), "action_mask" in info)


def encode_obs(obs, spec):
    """A state index for Discrete observations (one-hot on the device), else a flat float vector."""
    if spec.discrete_obs:
        return np.int32(obs)
    return np.asarray(obs, np.float32).reshape(-1)


def legal_mask_of(info, spec):
    return np.asarray(info["action_mask"], bool) if spec.legal_actions else None


def resolve_device(device):
    """'cpu' → /CPU:0, 'gpu' → /GPU:0 (an EnvError-style message if none), None → TF's choice."""
    if device in (None, "", "auto"):
        return None
    if device == "cpu":
        return "/CPU:0"
    if device == "gpu":
        if not tf.config.list_physical_devices("GPU"):
            raise EnvError("--device gpu was asked for but TensorFlow sees no GPU; use --device cpu")
        return "/GPU:0"
    raise EnvError(f"device must be cpu or gpu; got {device!r}")


def evaluate(agent, env_id, episodes, seed, spec=None):
    """Mean and std of the greedy policy's undiscounted return over `episodes` episodes."""
    env = make_env(env_id)
    obs, info = env.reset(seed=seed)
    spec = spec or env_spec(env, info)
    returns = []
    for _ in range(episodes):
        total, done = 0.0, False
        while not done:
            q_values = agent.q_values(encode_obs(obs, spec)[None]).numpy()[0]
            mask = legal_mask_of(info, spec)
            if mask is not None:
                q_values = np.where(mask, q_values, -np.inf)
            obs, reward, terminated, truncated, info = env.step(int(np.argmax(q_values)) + spec.action_start)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
        obs, info = env.reset()
    env.close()
    return float(np.mean(returns)), float(np.std(returns))


class StagedTransitions:
    """Transitions gathered on the host, written to the device ring in one call before learning."""

    def __init__(self, legal_actions):
        self.legal_actions = legal_actions
        self.rows = []

    def append(self, obs, action, reward, next_obs, terminated, next_legal_mask):
        self.rows.append((obs, action, reward, next_obs, terminated, next_legal_mask))

    def flush(self, replay):
        capacity = replay.capacity
        while self.rows:
            chunk, self.rows = self.rows[:capacity], self.rows[capacity:]
            obs, action, reward, next_obs, terminated, legal = zip(*chunk)
            replay.add(np.stack(obs), np.asarray(action, np.int32), np.asarray(reward, np.float64),
                       np.stack(next_obs), np.asarray(terminated, np.float64),
                       np.stack(legal) if self.legal_actions else None)


@dataclasses.dataclass
class TrainResult:
    agent: DQN
    episode_returns: list
    eval_mean: float
    eval_std: float
    steps_per_second: float
    history: list


def train(env_id="CartPole-v1", config=None, seed=0, device=None, logdir=None, log=print):
    """Train a DQN on `env_id` and evaluate its greedy policy; returns a TrainResult."""
    config = (config or preset(env_id)).validate()
    device = resolve_device(device)
    env = make_env(env_id)
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    spec = env_spec(env, info)
    if not np.all(np.isfinite(np.asarray(obs, np.float64))):
        raise EnvError(f"{env_id} returned a non-finite observation at reset")
    agent = DQN(spec.obs_dim, spec.num_actions, config, seed=seed,
                discrete_obs=spec.discrete_obs, legal_actions=spec.legal_actions, device=device)
    agent.sync_target()
    log(f"rawdqn: training DQN on {env_id} for {config.total_steps:,} steps (seed {seed}, "
        f"{agent.online.num_parameters:,} parameters, {config.mode} kernels)")
    if logdir:
        os.makedirs(logdir, exist_ok=True)
        with open(os.path.join(logdir, "config.json"), "w") as f:
            json.dump({"env_id": env_id, "seed": seed, **dataclasses.asdict(config)}, f, indent=2)

    staged = StagedTransitions(spec.legal_actions)
    episode_returns, history = [], []
    recent = collections.deque(maxlen=20)
    episode_return, last_info = 0.0, None
    obs_encoded = encode_obs(obs, spec)
    window_start, window_step, train_start = time.perf_counter(), 0, time.perf_counter()
    for step in range(config.total_steps):
        epsilon = config.epsilon_at(step)
        mask = legal_mask_of(info, spec)
        action = int(agent.act(obs_encoded[None], epsilon, None if mask is None else mask[None]).numpy()[0])
        next_obs, reward, terminated, truncated, info = env.step(action + spec.action_start)
        if not np.isfinite(reward):
            raise EnvError(f"{env_id} returned a non-finite reward ({reward}) at step {step}")
        next_encoded = encode_obs(next_obs, spec)
        # A truncated transition keeps terminated=0 and its true final observation.
        staged.append(obs_encoded, action, float(reward), next_encoded, float(terminated),
                      legal_mask_of(info, spec))
        episode_return += float(reward)
        if terminated or truncated:
            episode_returns.append(episode_return)
            recent.append(episode_return)
            episode_return = 0.0
            next_obs, info = env.reset()
            next_encoded = encode_obs(next_obs, spec)
        obs_encoded = next_encoded

        if step >= config.learning_starts and step % config.train_frequency == 0:
            staged.flush(agent.replay)
            last_info = agent.train(config.gradient_steps)
        if step % config.target_update_interval == 0:
            agent.sync_target(config.tau)

        done_steps = step + 1
        if config.eval_interval and done_steps % config.eval_interval == 0 and done_steps < config.total_steps:
            eval_mean, eval_std = evaluate(agent, env_id, config.eval_episodes, seed + 10_000, spec)
            history.append({"step": done_steps, "eval_mean": eval_mean, "eval_std": eval_std})
            log(f"step {done_steps:>8,} | eval return {eval_mean:8.2f} ± {eval_std:.2f}")
        if done_steps % config.log_interval == 0 or done_steps == config.total_steps:
            now = time.perf_counter()
            steps_per_second = (done_steps - window_step) / max(now - window_start, 1e-9)
            window_start, window_step = now, done_steps
            row = {"step": done_steps, "steps_per_second": steps_per_second,
                   "episodes": len(episode_returns),
                   "recent_return": float(np.mean(recent)) if recent else float("nan"),
                   "epsilon": epsilon,
                   "loss": float(last_info.loss) if last_info else float("nan"),
                   "mean_max_q": float(last_info.mean_max_q) if last_info else float("nan")}
            history.append(row)
            loss_text = f"{row['loss']:.4f}" if last_info else "-"
            log(f"step {done_steps:>8,}/{config.total_steps:,} | {steps_per_second:7,.0f} steps/s | "
                f"return(last {len(recent)}) {row['recent_return']:8.2f} | loss {loss_text} | "
                f"eps {epsilon:.3f}")
    staged.flush(agent.replay)
    env.close()
    total_time = time.perf_counter() - train_start
    eval_mean, eval_std = evaluate(agent, env_id, config.eval_episodes, seed + 10_000, spec)
    history.append({"step": config.total_steps, "eval_mean": eval_mean, "eval_std": eval_std})
    log(f"evaluation: mean return {eval_mean:.2f} ± {eval_std:.2f} over {config.eval_episodes} "
        f"greedy episodes ({config.total_steps:,} steps in {total_time:.1f} s)")
    if logdir:
        with open(os.path.join(logdir, "history.jsonl"), "w") as f:
            for row in history:
                f.write(json.dumps(row) + "\n")
    return TrainResult(agent, episode_returns, eval_mean, eval_std,
                       config.total_steps / total_time, history)
