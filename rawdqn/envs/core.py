"""The shared shape of a batched, pure-function environment.

An environment is a set of pure functions over an explicit state, so a whole
rollout can live inside one `tf.function(jit_compile=True)` program:

    state, obs = env.reset(seed, num_envs)
    state, obs, reward, terminated, truncated, final_obs = env.step(state, action, seed)

Each subclass gives the physics of one task (`initial_physics`, `next_physics`,
`is_terminal`, `reward`, `observation`); this base class adds the time limit and
the auto-reset inside the batch.
"""

import collections

import tensorflow as tf

# The stateless RNG algorithm is named, not "auto_select", so that it does not
# change with the device.
RNG_ALGORITHM = "philox"
# Bits of a uniform sample's significand, by dtype.
_SIGNIFICAND_BITS = {tf.float32: 24, tf.float64: 53}


def uniform(seed, shape, low, high, dtype):
    """U[low, high) samples of dtype from stateless random bits:

        u = b 2^-p,   b = p random bits,   p = 24 (float32) or 53 (float64)
        sample = low + (high - low) u

    The bits come as int64 words; a float32 sample takes 32 of them (each word
    feeds two samples, its high and low halves), a float64 sample a whole word.
    Why not stateless_uniform's own float path: under XLA on CPU it runs about 5x
    slower, and its numbers differ between eager and compiled runs; these agree
    up to the last bit (XLA fuses the multiply-add).
    """
    precision = _SIGNIFICAND_BITS[dtype]
    words_per_sample = 1 if dtype == tf.float64 else 2
    shape = list(shape)
    count = shape[-1]
    drawn = shape[:-1] + [-(-count // words_per_sample)]
    words = tf.bitcast(
        tf.random.stateless_uniform(drawn, seed, minval=None, maxval=None, dtype=tf.int64, alg=RNG_ALGORITHM),
        tf.uint64,
    )
    if words_per_sample == 1:
        bits = tf.bitwise.right_shift(words, tf.constant(64 - precision, tf.uint64))
    else:
        upper_bits = tf.bitwise.right_shift(words, tf.constant(64 - precision, tf.uint64))
        lower_half = tf.bitwise.bitwise_and(words, tf.constant(0xFFFFFFFF, tf.uint64))
        lower_bits = tf.bitwise.right_shift(lower_half, tf.constant(32 - precision, tf.uint64))
        bits = tf.concat([upper_bits, lower_bits], axis=-1)[..., :count]
    unit = tf.cast(bits, dtype) * tf.constant(2.0**-precision, dtype)
    return tf.constant(low, dtype) + tf.constant(high - low, dtype) * unit


class EnvState(collections.namedtuple("EnvState", ["physics", "steps"])):
    """The whole state of N environments.

    physics: [N, physics_size] floats, the task's internal state (as gymnasium's
        `env.unwrapped.state`).
    steps: [N] int32, steps taken in the current episode (as the TimeLimit
        wrapper's `_elapsed_steps`).
    """

    __slots__ = ()


class StepResult(
    collections.namedtuple(
        "StepResult",
        ["state", "obs", "reward", "terminated", "truncated", "final_obs"],
    )
):
    """What `step` returns; unpacks as a plain 6-tuple.

    obs is the observation after auto-reset (the first observation of a new
    episode where the old one ended); final_obs is the true last observation of
    the step, equal to obs where the episode goes on. Store
    (obs_before, action, reward, final_obs, terminated) in the replay.
    """

    __slots__ = ()


def as_float_dtype(dtype):
    """Returns dtype as a tf.DType, float32 or float64 only."""
    try:
        dtype = tf.as_dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in (tf.float32, tf.float64):
        raise ValueError("dtype must be float32 or float64.")
    return dtype


class Env:
    """N copies of one task, stepped together, auto-reset when they end.

    Subclasses set the class attributes and the five physics methods.
    """

    env_id = None
    observation_size = None
    num_actions = None
    physics_size = None
    default_max_episode_steps = None

    def __init__(self, dtype=tf.float32, max_episode_steps=None):
        self.dtype = as_float_dtype(dtype)
        if max_episode_steps is None:
            max_episode_steps = self.default_max_episode_steps
        if not isinstance(max_episode_steps, int) or max_episode_steps < 1:
            raise ValueError("max_episode_steps must be a positive int.")
        self.max_episode_steps = max_episode_steps

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.env_id}, dtype={self.dtype.name}, "
            f"max_episode_steps={self.max_episode_steps})"
        )

    # The physics of one task; every method works on all N rows at once.

    def initial_physics(self, seed, num_envs):
        """[num_envs, physics_size] start states drawn from the reset distribution."""
        raise NotImplementedError

    def next_physics(self, physics, action):
        """[N, physics_size] state after one step under int32 actions [N]."""
        raise NotImplementedError

    def is_terminal(self, physics):
        """[N] bool, whether the state ends the episode (not the time limit)."""
        raise NotImplementedError

    def reward(self, physics, terminated):
        """[N] reward for arriving in `physics`."""
        raise NotImplementedError

    def observation(self, physics):
        """[N, observation_size] what the agent sees of `physics`."""
        raise NotImplementedError

    # The shared part: time limit and auto-reset.

    def reset(self, seed, num_envs):
        """Starts num_envs new episodes.

        Args:
          seed: [2] int32 or int64, the stateless RNG seed.
          num_envs: python int N.

        Returns:
          (EnvState with steps = 0, obs [N, observation_size]).
        """
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError("num_envs must be a positive int.")
        physics = self.initial_physics(seed, num_envs)
        state = EnvState(physics, tf.zeros([num_envs], tf.int32))
        return state, self.observation(physics)

    def step(self, state, action, seed):
        """One step of all N environments, restarting those that ended.

            physics' = next_physics(physics, action)
            terminated = is_terminal(physics')
            truncated = steps + 1 >= max_episode_steps
            done = terminated or truncated
            physics_out = initial_physics(seed) where done, else physics'

        As gymnasium's TimeLimit, truncated is set at the limit even when the same
        step also terminates; bootstrap on (1 - terminated).

        Args:
          state: EnvState of N environments.
          action: [N] int32 in [0, num_actions); not range-checked (no host sync).
          seed: [2] int, seeds the start states of the episodes that restart.

        Returns:
          StepResult(state, obs, reward, terminated, truncated, final_obs).
        """
        action = tf.convert_to_tensor(action)
        if action.dtype != tf.int32 or action.shape.rank != 1:
            raise ValueError(f"action must be int32 of shape [N], got {action.dtype.name} {action.shape}.")
        num_envs = state.physics.shape[0] or tf.shape(state.physics)[0]
        physics = self.next_physics(state.physics, action)
        terminated = self.is_terminal(physics)
        steps = state.steps + 1
        truncated = steps >= self.max_episode_steps
        done = tf.logical_or(terminated, truncated)
        reward = self.reward(physics, terminated)
        final_obs = self.observation(physics)

        # Every env draws a start state each step; a select is cheaper on a
        # device than gathering the few that ended.
        start = self.initial_physics(seed, num_envs)
        physics = tf.where(done[:, None], start, physics)
        obs = tf.where(tf.reshape(done, [-1] + [1] * (final_obs.shape.rank - 1)), self.observation(start), final_obs)
        steps = tf.where(done, tf.zeros_like(steps), steps)
        return StepResult(EnvState(physics, steps), obs, reward, terminated, truncated, final_obs)

    def sample_actions(self, seed, num_envs):
        """[num_envs] int32 actions, uniform over [0, num_actions): a random policy.

            action = (w num_actions) >> 32,   w = 32 random bits
        """
        words = tf.random.stateless_uniform(
            [num_envs], seed, minval=None, maxval=None, dtype=tf.int64, alg=RNG_ALGORITHM
        )
        upper = tf.bitwise.right_shift(tf.bitcast(words, tf.uint64), tf.constant(32, tf.uint64))
        scaled = upper * tf.constant(self.num_actions, tf.uint64)
        return tf.cast(tf.bitwise.right_shift(scaled, tf.constant(32, tf.uint64)), tf.int32)

    def uniform(self, seed, shape, low, high):
        """U[low, high) samples of self.dtype from the stateless RNG."""
        return uniform(seed, shape, low, high, self.dtype)

    def constant(self, value):
        """A python float as a scalar of self.dtype."""
        return tf.constant(value, self.dtype)
