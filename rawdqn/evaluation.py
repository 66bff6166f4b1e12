"""Greedy evaluation on gymnasium: the evaluation policy's undiscounted returns on fresh episodes.

The policy is the GreedyPolicy of the agent's online network (rawdqn/policy.py: argmax over the
legal actions, bellman.masked_argmax), ε-greedy with the run's eval_epsilon, over stacks of
frames on pixel envs. Training evaluates on seeds seed + SELECTION_EVAL_SEED (what keep_best
chooses by) and reports the kept weights on seed + FRESH_EVAL_SEED, episodes they were not
chosen by. The on-device loop's evaluations on its TF envs are rawdqn/engine/ondevice.py's.
"""
import gymnasium as gym
import numpy as np

from rawdqn.gym_env import encode_obs, env_kwargs_for, env_spec, legal_mask_of, make_env

EVAL_STEP_LIMIT = 1_000        # per evaluation episode, for envs without a time limit (CliffWalking)
PIXEL_EVAL_STEP_LIMIT = 27_000  # the same for pixel envs (MinAtar): the ALE's 108,000 frames at frame skip 4
SELECTION_EVAL_SEED = 10_000   # evaluation seeds: the run's seed + this, during training
FRESH_EVAL_SEED = 20_000       # and for the kept weights' final evaluation (keep_best)


def make_eval_env(env_id, history=1, pad="zeros", render_mode=None, env_kwargs=None, config=None):
    """The env an evaluation plays: make_env (with env_options(config) under env_kwargs), with
    `history` > 1 gymnasium's FrameStackObservation (zeros or the reset frame repeated before
    the first frame), whose stacks encode_obs lays out as the training stacks (checked in
    tests/test_pixels.py)."""
    env = make_env(env_id, render_mode=render_mode, **env_kwargs_for(env_id, config, env_kwargs))
    if history > 1:
        env = gym.wrappers.FrameStackObservation(env, history, padding_type="zero" if pad == "zeros" else "reset")
    return env


def evaluate(agent, env_id, episodes, seed, spec=None, env_kwargs=None, config=None):
    """Mean and std of the evaluation policy's undiscounted return over `episodes` episodes.

    The policy is ε-greedy with ε = config.eval_epsilon (0, greedy, without a config), over
    stacks of config.history frames on pixel envs. An episode ends at termination, at the
    env's time limit, or — where the env has none — after EVAL_STEP_LIMIT steps
    (PIXEL_EVAL_STEP_LIMIT for pixels): a greedy policy can loop forever.
    """
    history, pad, epsilon = (config.history, config.frame_pad, config.eval_epsilon) if config else (1, "zeros", 0.0)
    env = make_eval_env(env_id, history, pad, env_kwargs=env_kwargs, config=config)
    try:
        step_limit = env.spec.max_episode_steps if env.spec and env.spec.max_episode_steps else None
        if step_limit is None:
            pixels = (spec or env_spec(env, {})).frame_shape is not None
            step_limit = PIXEL_EVAL_STEP_LIMIT if pixels else EVAL_STEP_LIMIT
        returns = play_greedy(agent, env, episodes, seed, spec, step_limit, epsilon=epsilon)
    finally:
        env.close()
    return float(np.mean(returns)), float(np.std(returns))


def play_greedy(agent, env, episodes, seed, spec=None, step_limit=None, after_step=None, epsilon=0.0):
    """The returns of up to `episodes` episodes, the first from env.reset(seed=seed).

    a = argmax over legal a of Q(s, a; θ) (`agent` has `q_values`: a DQN or a GreedyPolicy);
    with `epsilon` > 0, a uniform legal action instead with probability ε (the draws from
    a generator seeded with `seed`). `after_step()` runs after the first reset and after
    every step; when it returns False, play stops there (the episode in progress counts
    with its return so far).
    """
    obs, info = env.reset(seed=seed)
    spec = spec or env_spec(env, info)
    rng = np.random.default_rng(seed)
    returns, playing = [], after_step() if after_step else True
    for _ in range(episodes):
        total, done, steps = 0.0, False, 0
        while playing and not done and (step_limit is None or steps < step_limit):
            steps += 1
            action = greedy_action(agent, obs, info, spec)
            if epsilon > 0 and rng.random() < epsilon:
                mask = legal_mask_of(info, spec)
                action = int(rng.choice(np.flatnonzero(mask) if mask is not None else spec.num_actions)) \
                    + spec.action_start
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
            playing = after_step() if after_step else True
        returns.append(total)
        if not playing:
            break
        obs, info = env.reset()
    return returns


def greedy_action(agent, obs, info, spec):
    """argmax over the legal actions of Q(s, ·; θ), as the environment numbers its actions:
    the GreedyPolicy of the agent's online network (rawdqn/policy.py), which `eval` also plays."""
    from rawdqn.policy import GreedyPolicy
    policy = agent if isinstance(agent, GreedyPolicy) else GreedyPolicy.of(agent, spec.action_start)
    mask = legal_mask_of(info, spec)
    return int(policy.actions(encode_obs(obs, spec)[None], None if mask is None else mask[None]).numpy()[0])
