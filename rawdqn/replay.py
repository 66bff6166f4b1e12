"""Experience replay: a ring of device-resident tf.Variables.

A transition is (obs, action, reward, next_obs, terminated[, next_legal_mask]).
`next_obs` is always the true observation after the action — for a time-limit
truncation, the final observation, never the one the reset returned.
"""
import collections

import tensorflow as tf

from rawdqn.kernel import compile_kernel

Transition = collections.namedtuple(
    "Transition", ["obs", "action", "reward", "next_obs", "terminated", "next_legal_mask"],
    defaults=[None])


class ReplayBuffer(tf.Module):
    """Fixed-capacity ring: write position i ↦ (cursor + i) mod capacity.

    `sample(n)` draws n indices uniformly from [0, size) with a stateless RNG
    keyed by (seed, draws so far), so the RNG state is one checkpointable
    counter and every draw is reproducible.
    """

    def __init__(self, capacity, obs_shape, obs_dtype=tf.float32, seed=0,
                 reward_dtype=tf.float32, num_actions=None, jit_compile=True, name=None):
        super().__init__(name=name)
        capacity = int(capacity)
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1; got {capacity}")
        self.capacity = capacity
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.obs_dtype = tf.as_dtype(obs_dtype)
        self.reward_dtype = tf.as_dtype(reward_dtype)
        self.seed = int(seed)
        self.obs = tf.Variable(tf.zeros((capacity, *self.obs_shape), self.obs_dtype), name="obs")
        self.next_obs = tf.Variable(tf.zeros((capacity, *self.obs_shape), self.obs_dtype),
                                    name="next_obs")
        self.action = tf.Variable(tf.zeros([capacity], tf.int32), name="action")
        self.reward = tf.Variable(tf.zeros([capacity], self.reward_dtype), name="reward")
        self.terminated = tf.Variable(tf.zeros([capacity], self.reward_dtype), name="terminated")
        # Only environments with illegal actions store which next actions are legal.
        self.num_actions = None if num_actions is None else int(num_actions)
        self.next_legal_mask = None
        if self.num_actions is not None:
            self.next_legal_mask = tf.Variable(tf.ones([capacity, self.num_actions], tf.bool),
                                               name="next_legal_mask")
        self.cursor = tf.Variable(0, dtype=tf.int32, name="cursor")
        self.count = tf.Variable(0, dtype=tf.int32, name="count")
        self.draws = tf.Variable(0, dtype=tf.int32, name="draws")
        mode = "xla" if jit_compile else "function"
        self._add = compile_kernel(self.add_fn, mode)
        self._sample = compile_kernel(self.sample_fn, mode)

    @property
    def size(self):
        """How many transitions the ring holds (≤ capacity)."""
        return int(self.count.numpy())

    def __len__(self):
        return self.size

    def add(self, obs, action, reward, next_obs, terminated, next_legal_mask=None):
        """Write a batch of N ≤ capacity transitions, wrapping around the ring."""
        obs = tf.convert_to_tensor(obs, self.obs_dtype)
        n = obs.shape[0] if obs.shape.rank else None
        if obs.shape.rank != len(self.obs_shape) + 1 or tuple(obs.shape[1:]) != self.obs_shape:
            raise ValueError(f"replay.add expects obs of shape [N, {', '.join(map(str, self.obs_shape))}]"
                             f"; got {obs.shape}")
        if n is not None and n > self.capacity:
            raise ValueError(f"cannot add {n} transitions at once to a replay of capacity "
                             f"{self.capacity}; add them in batches of at most {self.capacity}")
        if (next_legal_mask is None) != (self.next_legal_mask is None):
            raise ValueError("pass next_legal_mask exactly when the replay was built with num_actions")
        args = [obs, tf.convert_to_tensor(action, tf.int32),
                tf.convert_to_tensor(reward, self.reward_dtype),
                tf.convert_to_tensor(next_obs, self.obs_dtype),
                tf.cast(tf.convert_to_tensor(terminated), self.reward_dtype)]
        if next_legal_mask is not None:
            args.append(tf.cast(tf.convert_to_tensor(next_legal_mask), tf.bool))
        for tensor, name in zip(args[1:5], ("action", "reward", "next_obs", "terminated")):
            if tensor.shape.rank is not None and tensor.shape[0] != n:
                raise ValueError(f"replay.add: {name} has {tensor.shape[0]} rows but obs has {n}")
        self._add(*args)

    def add_fn(self, obs, action, reward, next_obs, terminated, next_legal_mask=None):
        """The ring write, for use inside a compiled program (no host checks)."""
        n = tf.shape(action)[0]
        indices = tf.math.floormod(self.cursor + tf.range(n), self.capacity)[:, None]
        self.obs.scatter_nd_update(indices, obs)
        self.next_obs.scatter_nd_update(indices, next_obs)
        self.action.scatter_nd_update(indices, action)
        self.reward.scatter_nd_update(indices, reward)
        self.terminated.scatter_nd_update(indices, terminated)
        if next_legal_mask is not None:
            self.next_legal_mask.scatter_nd_update(indices, next_legal_mask)
        self.cursor.assign(tf.math.floormod(self.cursor + n, self.capacity))
        self.count.assign(tf.minimum(self.count + n, self.capacity))

    def sample(self, batch_size):
        """A Transition of `batch_size` rows drawn uniformly, with replacement, from the filled part."""
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer; add transitions first")
        return self._sample(tf.constant(batch_size))

    def sample_fn(self, batch_size):
        """Uniform indices from [0, size) keyed by (seed, draws); compiled-program version."""
        batch_size = tf.convert_to_tensor(batch_size, tf.int32)
        indices = tf.random.stateless_uniform(
            [batch_size], seed=tf.stack([tf.constant(self.seed, tf.int32), self.draws]),
            minval=0, maxval=tf.maximum(self.count, 1), dtype=tf.int32)
        self.draws.assign_add(1)
        next_legal_mask = None
        if self.next_legal_mask is not None:
            next_legal_mask = tf.gather(self.next_legal_mask, indices)
        return Transition(tf.gather(self.obs, indices), tf.gather(self.action, indices),
                          tf.gather(self.reward, indices), tf.gather(self.next_obs, indices),
                          tf.gather(self.terminated, indices), next_legal_mask)

    @property
    def nbytes(self):
        """Bytes held on the device by the ring's storage."""
        return sum(int(tf.size(v)) * v.dtype.size for v in self.variables)
