"""The TF environments against gymnasium 1.4, step by step.

Two checks per environment:
  * one step from copied states: thousands of (state, elapsed steps, action) rows
    taken from gymnasium episodes and from states set near the edges (walls,
    goal lines, angle wraps, the time limit), all stepped as ONE batch by the
    compiled TF step, in float32 and float64;
  * whole episodes in float64: gymnasium's start state copied once, then the TF
    env runs on its own state through the recorded actions (one compiled scan).
"""

import math

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from gymnasium.envs.classic_control import acrobot as gym_acrobot

from rawdqn import envs
from rawdqn.envs import acrobot

ENV_IDS = ["CartPole-v1", "MountainCar-v0", "Acrobot-v1"]


def random_policy(rng):
    return lambda obs, num_actions: int(rng.integers(num_actions))


def goal_policy(env_id):
    """A hand-made policy that lasts long (CartPole) or reaches the goal (the others)."""
    if env_id == "CartPole-v1":
        return lambda o, _: int(o[2] + 0.5 * o[3] + 0.01 * o[0] + 0.1 * o[1] > 0)
    if env_id == "MountainCar-v0":
        return lambda o, _: 2 if o[1] >= 0 else 0
    return lambda o, _: 2 if o[4] + o[5] > 0 else 0


def run_gym_episode(gym_env, seed, policy):
    """One gymnasium episode as arrays: the state before each step, action and outcome."""
    obs, _ = gym_env.reset(seed=seed)
    rows = {"state": [], "action": [], "obs": [], "reward": [], "terminated": [], "truncated": []}
    done = False
    while not done:
        state = np.array(gym_env.unwrapped.state, dtype=np.float64)
        action = policy(obs, gym_env.action_space.n)
        obs, reward, terminated, truncated, _ = gym_env.step(action)
        for key, value in zip(rows, (state, action, obs, reward, terminated, truncated)):
            rows[key].append(value)
        done = terminated or truncated
    return {key: np.array(value) for key, value in rows.items()}


def edge_state(env_id, rng):
    """A random state near where the dynamics have corners."""
    if env_id == "CartPole-v1":
        x = rng.choice([-1, 1]) * rng.uniform(2.2, 2.6) if rng.random() < 0.5 else rng.uniform(-2, 2)
        theta = (rng.choice([-1, 1]) * rng.uniform(0.18, 0.24) if rng.random() < 0.5
                 else rng.uniform(-0.2, 0.2))
        return np.array([x, rng.normal(0, 2), theta, rng.normal(0, 2)])
    if env_id == "MountainCar-v0":
        position = rng.uniform(-1.2, -1.1) if rng.random() < 0.3 else rng.uniform(-1.2, 0.6)
        return np.array([position, rng.uniform(-0.07, 0.07)])
    # Acrobot: any angle, speeds up to and a little past the clip.
    return np.array([
        rng.uniform(-math.pi, math.pi),
        rng.uniform(-math.pi, math.pi),
        rng.uniform(-1.1, 1.1) * acrobot.MAX_VELOCITY_1,
        rng.uniform(-1.1, 1.1) * acrobot.MAX_VELOCITY_2,
    ])


def record_transitions(env_id, episodes, edge_rows, seed):
    """Gymnasium one-step transitions as arrays: state, elapsed, action -> outcome."""
    gym_env = gym.make(env_id)
    limit = gym_env.spec.max_episode_steps
    rng = np.random.default_rng(seed)
    rows = []

    def gym_step(action):
        state = np.array(gym_env.unwrapped.state, dtype=np.float64)
        elapsed = gym_env._elapsed_steps
        obs, reward, terminated, truncated, _ = gym_env.step(action)
        rows.append((state, elapsed, action, obs, reward, terminated, truncated,
                     np.array(gym_env.unwrapped.state, dtype=np.float64)))
        return obs, terminated or truncated

    policies = [random_policy(rng), goal_policy(env_id)]
    for episode in range(episodes):
        obs, _ = gym_env.reset(seed=seed + episode)
        done = False
        while not done:
            obs, done = gym_step(policies[episode % 2](obs, gym_env.action_space.n))

    gym_env.reset(seed=seed)
    for row in range(edge_rows):
        gym_env.unwrapped.state = edge_state(env_id, rng)
        if env_id == "CartPole-v1":
            gym_env.unwrapped.steps_beyond_terminated = None  # else it returns reward 0
        gym_env._elapsed_steps = limit - 1 if row % 4 == 0 else int(rng.integers(limit - 1))
        gym_step(int(rng.integers(gym_env.action_space.n)))

    columns = list(zip(*rows))
    names = ["state", "elapsed", "action", "obs", "reward", "terminated", "truncated", "next_state"]
    return {name: np.array(column) for name, column in zip(names, columns)}


@pytest.fixture(scope="module", params=ENV_IDS)
def transitions(request):
    env_id = request.param
    return env_id, record_transitions(env_id, episodes=6, edge_rows=2000, seed=7)


def test_transitions_cover_the_corners(transitions):
    """The recorded rows hit every branch the comparison is meant to check."""
    env_id, data = transitions
    assert data["terminated"].sum() > 20
    assert (data["truncated"] & ~data["terminated"]).sum() > 20
    assert (data["truncated"] & data["terminated"]).sum() > 0
    if env_id == "MountainCar-v0":
        at_wall = data["next_state"][:, 0] == -1.2
        assert at_wall.sum() > 20 and (data["next_state"][at_wall, 1] == 0).all()
    if env_id == "Acrobot-v1":
        unwrapped_change = np.abs(data["next_state"][:, :2] - data["state"][:, :2])
        assert (unwrapped_change > math.pi).sum() > 20  # angles wrapped
        assert (np.abs(data["next_state"][:, 3]) == acrobot.MAX_VELOCITY_2).sum() > 20  # speed clipped


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_step_from_copied_state_matches_gymnasium(transitions, dtype):
    """final_obs, reward, terminated, truncated and the next state agree row by row."""
    env_id, data = transitions
    env = envs.make(env_id, dtype=dtype)
    state = envs.EnvState(
        tf.constant(data["state"], env.dtype), tf.constant(data["elapsed"], tf.int32)
    )
    step = tf.function(env.step, jit_compile=True)
    result = step(state, tf.constant(data["action"], tf.int32), tf.constant([1, 2]))

    final_obs = result.final_obs.numpy()
    next_state = result.state.physics.numpy()
    done = data["terminated"] | data["truncated"]
    # Acrobot above 4 pi rad/s: float32 rounding of the speed-squared terms grows
    # over the 0.2 s RK4 step, so those rows get a looser float32 bound (the
    # float64 run checks them tightly).
    fast = np.zeros(len(final_obs), bool)
    if env_id == "Acrobot-v1" and dtype == "float32":
        fast = np.abs(data["state"][:, 2:]).max(axis=1) > acrobot.MAX_VELOCITY_1
        np.testing.assert_allclose(final_obs[fast], data["obs"][fast], rtol=0, atol=2e-3)
        moving_on = fast & ~done
        np.testing.assert_allclose(next_state[moving_on], data["next_state"][moving_on], rtol=0, atol=2e-3)
    # gymnasium's obs are float32, its states float64.
    obs_tolerance, state_tolerance = (1e-5, 1e-5) if dtype == "float32" else (1e-6, 1e-12)
    np.testing.assert_allclose(final_obs[~fast], data["obs"][~fast], rtol=obs_tolerance, atol=obs_tolerance)
    moving_on = ~fast & ~done
    np.testing.assert_allclose(next_state[moving_on], data["next_state"][moving_on],
                               rtol=state_tolerance, atol=state_tolerance)
    np.testing.assert_array_equal(result.reward.numpy(), data["reward"])
    np.testing.assert_array_equal(result.terminated.numpy(), data["terminated"])
    np.testing.assert_array_equal(result.truncated.numpy(), data["truncated"])

    steps = result.state.steps.numpy()
    np.testing.assert_array_equal(steps[~done], data["elapsed"][~done] + 1)
    np.testing.assert_array_equal(steps[done], 0)
    np.testing.assert_array_equal(result.obs.numpy()[~done], result.final_obs.numpy()[~done])


def scan_steps(env, physics, steps, actions):
    """Runs [T, N] actions from EnvState(physics, steps) in one compiled scan.

    Returns final_obs, reward, terminated, truncated, each [T, N, ...].
    """

    @tf.function(jit_compile=True)
    def run(physics, steps, actions):
        def body(carry, inputs):
            action, t = inputs
            result = env.step(carry[0], action, tf.stack([t, t]))
            return (result.state, result.final_obs, result.reward, result.terminated, result.truncated)

        num_envs = physics.shape[0]
        initial = (envs.EnvState(physics, steps), env.observation(physics),
                   tf.zeros([num_envs], env.dtype), tf.zeros([num_envs], tf.bool),
                   tf.zeros([num_envs], tf.bool))
        return tf.scan(body, (actions, tf.range(actions.shape[0])), initializer=initial)[1:]

    outputs = run(tf.constant(physics, env.dtype), tf.constant(steps, tf.int32),
                  tf.constant(actions, tf.int32))
    return [output.numpy() for output in outputs]


SEGMENT = 100


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_whole_episodes_float64_match_gymnasium(env_id):
    """The TF env, on its own float64 state, tracks gymnasium through whole episodes.

    Each episode is cut into 100-step segments and gymnasium's state (and elapsed
    steps) is copied in at the start of each: XLA fuses a*b + c into one rounding,
    so the last bit differs from numpy, and CartPole and Acrobot under replayed
    actions are chaotic enough to grow that to 1e-6 in about 200 steps. All segments
    run as one batch. Two random episodes and two under a goal-seeking policy, so
    both terminations and truncations at the time limit are in the trajectories.
    """
    gym_env = gym.make(env_id)
    rng = np.random.default_rng(3)
    episodes = [
        run_gym_episode(gym_env, seed, policy)
        for seed, policy in enumerate([random_policy(rng), goal_policy(env_id)] * 2)
    ]
    segments = [
        {key: value[first: first + SEGMENT] for key, value in rows.items()} | {"first": first}
        for rows in episodes
        for first in range(0, len(rows["action"]), SEGMENT)
    ]
    actions = np.zeros([SEGMENT, len(segments)], np.int32)
    for column, segment in enumerate(segments):
        actions[: len(segment["action"]), column] = segment["action"]
    physics = np.stack([segment["state"][0] for segment in segments])
    steps = np.array([segment["first"] for segment in segments])

    env = envs.make(env_id, dtype="float64")
    final_obs, reward, terminated, truncated = scan_steps(env, physics, steps, actions)
    for column, segment in enumerate(segments):
        length = len(segment["action"])
        np.testing.assert_allclose(final_obs[:length, column], segment["obs"], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(reward[:length, column], segment["reward"])
        np.testing.assert_array_equal(terminated[:length, column], segment["terminated"])
        np.testing.assert_array_equal(truncated[:length, column], segment["truncated"])
    endings = {"terminated" if rows["terminated"][-1] else "truncated" for rows in episodes}
    assert endings == {"terminated", "truncated"}


def test_acrobot_wrap_matches_gymnasium_loop():
    """wrap_angle's closed form equals gymnasium's while-loop wrap, several turns included."""
    angles = np.concatenate([
        np.linspace(-7 * math.pi, 7 * math.pi, 2001),
        [math.pi, -math.pi, math.pi + 1e-12, -math.pi - 1e-12, 3 * math.pi],
    ])
    expected = np.array([gym_acrobot.wrap(a, -math.pi, math.pi) for a in angles])
    env = envs.make("Acrobot-v1", dtype="float64")
    wrapped = tf.function(env.wrap_angle, jit_compile=True)(tf.constant(angles)).numpy()
    np.testing.assert_allclose(wrapped, expected, rtol=0, atol=1e-14)
    assert np.all(np.abs(wrapped) <= math.pi)
