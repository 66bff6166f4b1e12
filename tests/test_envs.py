"""The TF environments' contract: registry, resets, time limits, auto-reset,
determinism, and composing under XLA inside a tf.while_loop.

Agreement of the dynamics with gymnasium is in test_envs_gymnasium.py.
"""

import functools
import math

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import envs
from rawdqn.envs import acrobot

ENV_IDS = ["CartPole-v1", "MountainCar-v0", "Acrobot-v1"]
SEED = tf.constant([12, 34], tf.int32)


@functools.lru_cache(maxsize=None)
def rollout_program(env_id, num_envs, num_steps, dtype="float32", policy_action=None,
                    max_episode_steps=None, jit=True):
    """(env, program): num_steps steps of num_envs envs in one tf.while_loop.

    The policy is uniform random (or a fixed action). Cached, so tests that share
    a program compile it once; jit=False runs the same loop eagerly.
    """
    env = envs.make(env_id, dtype=dtype, max_episode_steps=max_episode_steps)

    def run(seed):
        state, obs = env.reset(seed, num_envs)
        dtypes = {"physics": env.dtype, "steps": tf.int32, "env_seed": tf.int32, "action": tf.int32,
                  "obs": env.dtype, "reward": env.dtype, "terminated": tf.bool,
                  "truncated": tf.bool, "final_obs": env.dtype}
        outputs = {key: tf.TensorArray(dtype, num_steps) for key, dtype in dtypes.items()}

        def body(t, state, outputs):
            step_seed = tf.random.experimental.stateless_fold_in(seed, t, alg="philox")
            action_seed, env_seed = tf.unstack(tf.random.experimental.stateless_split(step_seed, 2))
            if policy_action is None:
                action = env.sample_actions(action_seed, num_envs)
            else:
                action = tf.fill([num_envs], policy_action)
            result = env.step(state, action, env_seed)
            values = {"physics": state.physics, "steps": state.steps, "env_seed": env_seed,
                      "action": action, **result._asdict()}
            outputs = {key: out.write(t, values[key]) for key, out in outputs.items()}
            return t + 1, result.state, outputs

        _, _, outputs = tf.while_loop(lambda t, *_: t < num_steps, body, (0, state, outputs))
        return obs, {key: out.stack() for key, out in outputs.items()}

    return env, tf.function(run, jit_compile=True) if jit else run


def rollout(env_id, num_envs, num_steps, seed=SEED, **options):
    """(env, first obs, dict of [T, N, ...] arrays): physics and steps before each
    step, env_seed, action, then the StepResult fields (obs, reward, ...)."""
    env, program = rollout_program(env_id, num_envs, num_steps, **options)
    obs, outputs = program(seed)
    return env, obs.numpy(), {key: value.numpy() for key, value in outputs.items()}


# The random-policy rollout most tests share (compiled once per env).
SHARED = dict(num_envs=32, num_steps=520)


# Registry and input checks.


def test_available_lists_the_classic_ids_and_minatar_breakout():
    assert envs.available() == sorted(ENV_IDS + ["MinAtar/Breakout-v1"])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sizes_and_time_limits_are_gymnasiums(env_id):
    env = envs.make(env_id)
    reference = gym.make(env_id)
    assert env.observation_size == reference.observation_space.shape[0]
    assert env.num_actions == reference.action_space.n
    assert env.max_episode_steps == reference.spec.max_episode_steps
    assert env.dtype == tf.float32
    assert envs.make(env_id, dtype=tf.float64, max_episode_steps=7).max_episode_steps == 7


def test_bad_input_raises_one_line_value_errors():
    with pytest.raises(ValueError, match="available: Acrobot-v1, CartPole-v1, MinAtar/Breakout-v1, MountainCar-v0"):
        envs.make("Pong-v5")
    with pytest.raises(ValueError, match="float32 or float64"):
        envs.make("CartPole-v1", dtype="float16")
    with pytest.raises(ValueError, match="max_episode_steps"):
        envs.make("CartPole-v1", max_episode_steps=0)
    with pytest.raises(ValueError, match="CartPole-v1 has no sticky actions"):
        envs.make("CartPole-v1", sticky_actions=0.25)
    with pytest.raises(ValueError, match=r"sticky_action_prob must be in \[0, 1\]"):
        envs.make("MinAtar/Breakout-v1", sticky_actions=1.5)
    assert envs.make("MinAtar/Breakout-v1", sticky_actions=0.0).sticky_action_prob == 0.0
    env = envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="num_envs"):
        env.reset(SEED, 0)
    state, _ = env.reset(SEED, 3)
    with pytest.raises(ValueError, match="int32 of shape"):
        env.step(state, tf.zeros([3], tf.int64), SEED)


# Resets.


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_distribution(env_id, dtype):
    """Uniform start states on gymnasium's bounds, filled out to the edges, steps = 0."""
    env = envs.make(env_id, dtype=dtype)
    state, obs = env.reset(SEED, 20000)
    physics = state.physics.numpy()
    assert obs.dtype == env.dtype and physics.shape == (20000, env.physics_size)
    np.testing.assert_array_equal(state.steps.numpy(), 0)
    np.testing.assert_array_equal(obs.numpy(), env.observation(state.physics).numpy())

    if env_id == "MountainCar-v0":
        uniform, low, high = physics[:, :1], -0.6, -0.4
        np.testing.assert_array_equal(physics[:, 1], 0.0)
    else:
        bound = 0.05 if env_id == "CartPole-v1" else 0.1
        uniform, low, high = physics, -bound, bound
    width = high - low
    assert uniform.min() >= low and uniform.max() <= high
    assert np.all(uniform.min(axis=0) < low + 0.001 * width)
    assert np.all(uniform.max(axis=0) > high - 0.001 * width)
    np.testing.assert_allclose(uniform.mean(axis=0), (low + high) / 2, atol=0.01 * width)
    np.testing.assert_allclose(uniform.std(axis=0), width / math.sqrt(12), rtol=0.02)
    if env_id == "Acrobot-v1":
        # gymnasium stores Acrobot's start state as float32.
        np.testing.assert_array_equal(physics, physics.astype(np.float32))
    # Compiled, the same seed gives the same starts (XLA may fuse the last rounding).
    compiled, _ = tf.function(env.reset, jit_compile=True)(SEED, 20000)
    np.testing.assert_allclose(compiled.physics.numpy(), physics, rtol=0, atol=np.finfo(physics.dtype).eps)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sample_actions_is_uniform_and_the_same_compiled(env_id):
    env = envs.make(env_id)
    actions = env.sample_actions(SEED, 60000)
    assert actions.dtype == tf.int32
    counts = np.bincount(actions.numpy(), minlength=env.num_actions)
    assert len(counts) == env.num_actions
    np.testing.assert_allclose(counts / 60000, 1 / env.num_actions, atol=0.01)
    compiled = tf.function(env.sample_actions, jit_compile=True)(SEED, 60000)
    np.testing.assert_array_equal(compiled.numpy(), actions.numpy())


# Time limits and auto-reset.


def test_mountain_car_truncates_at_exactly_200_steps():
    """With no push the car never reaches the goal: every env truncates at steps 200 and 400."""
    _, _, out = rollout("MountainCar-v0", 64, 450, policy_action=1)
    ends = np.flatnonzero(out["truncated"].any(axis=1))
    np.testing.assert_array_equal(ends, [199, 399])
    assert out["truncated"][ends].all() and not out["terminated"].any()
    np.testing.assert_array_equal(out["steps"][:, 0], np.arange(450) % 200)
    np.testing.assert_array_equal(out["reward"], -1.0)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_truncation_is_at_the_time_limit_and_not_termination(env_id):
    """steps = limit - 1 truncates (terminated stays 0, to bootstrap); limit - 2 does not."""
    env = envs.make(env_id)
    limit = env.max_episode_steps
    state, _ = env.reset(SEED, 4)
    state = envs.EnvState(state.physics, tf.constant([limit - 1, limit - 2, 0, limit - 1]))
    action = tf.ones([4], tf.int32)  # the middle action: no force or torque (CartPole: right)
    result = env.step(state, action, SEED)
    np.testing.assert_array_equal(result.truncated.numpy(), [True, False, False, True])
    np.testing.assert_array_equal(result.terminated.numpy(), False)
    np.testing.assert_array_equal(result.state.steps.numpy(), [0, limit - 1, 1, 0])


def test_short_time_limit_from_make():
    _, _, out = rollout("MountainCar-v0", 8, 30, policy_action=1, max_episode_steps=7, jit=False)
    np.testing.assert_array_equal(np.flatnonzero(out["truncated"][:, 0]), [6, 13, 20, 27])


# A state that ends the episode in one step, for each env.
ENDING_STATES = {
    "CartPole-v1": [2.399, 1.0, 0.0, 0.0],  # x passes 2.4
    "MountainCar-v0": [0.49, 0.05],  # reaches the goal at 0.5 moving right
    "Acrobot-v1": [math.pi, 0.0, 0.0, 0.0],  # the chain points straight up
}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_auto_reset_keeps_the_true_final_obs(env_id):
    """Ended envs return final_obs of the true last state, obs of a fresh start; the rest continue."""
    env = envs.make(env_id)
    num_envs = 256
    start, _ = env.reset(SEED, num_envs)
    ending = np.arange(num_envs) % 2 == 0
    physics = np.where(ending[:, None], np.array(ENDING_STATES[env_id], np.float32), start.physics.numpy())
    state = envs.EnvState(tf.constant(physics), tf.fill([num_envs], 5))
    action = tf.fill([num_envs], env.num_actions - 1)
    result = env.step(state, action, tf.constant([5, 6]))

    done = (result.terminated | result.truncated).numpy()
    np.testing.assert_array_equal(result.terminated.numpy(), ending)
    np.testing.assert_array_equal(done, ending)
    true_next = env.observation(env.next_physics(tf.constant(physics), action)).numpy()
    np.testing.assert_array_equal(result.final_obs.numpy(), true_next)
    obs = result.obs.numpy()
    np.testing.assert_array_equal(obs[~done], true_next[~done])
    assert not np.allclose(obs[done], true_next[done], atol=0.1)
    # The restarted envs sit at a fresh start: steps 0 and the reset distribution.
    np.testing.assert_array_equal(result.state.steps.numpy(), np.where(done, 0, 6))
    np.testing.assert_array_equal(obs[done], env.observation(result.state.physics).numpy()[done])
    fresh, _ = env.reset(tf.constant([5, 6]), num_envs)
    np.testing.assert_array_equal(result.state.physics.numpy()[done], fresh.physics.numpy()[done])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_observations_stay_inside_gymnasiums_observation_space(env_id):
    """obs and final_obs of a long random rollout lie in gymnasium's Box; episodes end."""
    space = gym.make(env_id).observation_space
    _, first_obs, out = rollout(env_id, **SHARED)
    for values in (first_obs, out["obs"], out["final_obs"]):
        assert np.all(values >= space.low) and np.all(values <= space.high)
    assert (out["terminated"] | out["truncated"]).sum() >= SHARED["num_envs"]


# Determinism and compilation.


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_rollout_other_seed_other_rollout(env_id):
    _, first_obs, first = rollout(env_id, **SHARED)
    _, again_obs, again = rollout(env_id, **SHARED)
    _, other_obs, other = rollout(env_id, seed=tf.constant([12, 35]), **SHARED)
    np.testing.assert_array_equal(first_obs, again_obs)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first_obs, other_obs)
    assert not np.array_equal(first["final_obs"], other["final_obs"])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_while_loop_program_equals_steps_compiled_one_by_one(env_id):
    """Each step of the compiled while loop equals a separately compiled step from
    the same state, action and seed (restarts included), and the HLO holds the loop."""
    env, _, out = rollout(env_id, **SHARED)
    step = tf.function(env.step, jit_compile=True)
    done = out["terminated"] | out["truncated"]
    times = sorted(set(range(10)) | set(np.flatnonzero(done.any(axis=1))[:20].tolist()))
    assert done[times].any()
    for t in times:
        state = envs.EnvState(tf.constant(out["physics"][t]), tf.constant(out["steps"][t]))
        result = step(state, tf.constant(out["action"][t]), tf.constant(out["env_seed"][t]))
        for key in ("obs", "final_obs", "reward"):
            np.testing.assert_allclose(getattr(result, key).numpy(), out[key][t], rtol=1e-6, atol=1e-6)
        for key in ("terminated", "truncated"):
            np.testing.assert_array_equal(getattr(result, key).numpy(), out[key][t])
        np.testing.assert_array_equal(result.state.steps.numpy(), out["steps"][t + 1])
        restarted = done[t]
        np.testing.assert_array_equal(
            result.state.physics.numpy()[restarted], out["physics"][t + 1][restarted])
    if env_id == "CartPole-v1":
        _, program = rollout_program(env_id, **SHARED)
        assert " while(" in program.experimental_get_compiler_ir(SEED)(stage="hlo")


def test_env_runner_checkpoint_resumes_the_same_episodes(tmp_path):
    """EnvRunner state and RNG counter are variables: restore, and the next steps repeat."""
    runner = envs.EnvRunner(envs.make("CartPole-v1"), num_envs=32, seed=[1, 2])
    step = tf.function(runner.step, jit_compile=True)
    actions = [tf.constant(np.arange(32) % 2 == t % 3, tf.int32) for t in range(40)]
    for action in actions[:10]:
        step(action)
    path = tf.train.Checkpoint(runner=runner).write(str(tmp_path / "env"))
    first = [step(action) for action in actions[10:]]
    tf.train.Checkpoint(runner=runner).read(path).assert_consumed()
    again = [step(action) for action in actions[10:]]
    for a, b in zip(first, again):
        for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert sum(int(tf.reduce_sum(tf.cast(r.terminated, tf.int32))) for r in first) > 0
    np.testing.assert_array_equal(runner.obs.numpy(), again[-1].obs.numpy())
    assert int(runner.counter) == 1 + 10 + 30  # one fresh seed per reset or step


def test_acrobot_reward_is_zero_only_on_the_terminating_step():
    env = envs.make("Acrobot-v1")
    state = envs.EnvState(tf.constant([ENDING_STATES["Acrobot-v1"], [0.0] * 4]), tf.zeros([2], tf.int32))
    result = env.step(state, tf.constant([1, 1]), SEED)
    np.testing.assert_array_equal(result.terminated.numpy(), [True, False])
    np.testing.assert_array_equal(result.reward.numpy(), [0.0, -1.0])
    assert acrobot.MAX_VELOCITY_2 == 9 * math.pi
