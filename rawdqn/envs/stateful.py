"""A thin stateful wrapper: the state of N environments held in tf.Variables."""

import tensorflow as tf

from rawdqn.envs import core


class EnvRunner(tf.Module):
    """N environments whose state lives in variables, so tf.train.Checkpoint saves it.

    Each call draws its RNG seed as fold_in(seed, counter) and then counts up, so a
    restored runner continues the exact same episodes.
    """

    def __init__(self, env, num_envs, seed, name=None):
        """env: from rawdqn.envs.make; num_envs: python int; seed: [2] ints."""
        super().__init__(name=name)
        self.env = env
        self.num_envs = num_envs
        self.seed = tf.Variable(tf.cast(seed, tf.int32), trainable=False, name="seed")
        self.counter = tf.Variable(0, dtype=tf.int32, trainable=False, name="counter")
        state, obs = env.reset(self.next_seed(), num_envs)
        self.physics = tf.Variable(state.physics, trainable=False, name="physics")
        self.steps = tf.Variable(state.steps, trainable=False, name="steps")
        self.obs = tf.Variable(obs, trainable=False, name="obs")

    def next_seed(self):
        """A fresh [2] seed for one call: fold_in(seed, counter), then counter += 1."""
        seed = tf.random.experimental.stateless_fold_in(
            self.seed, self.counter, alg=core.RNG_ALGORITHM
        )
        self.counter.assign_add(1)
        return seed

    @property
    def state(self):
        """The current EnvState (read from the variables)."""
        return core.EnvState(tf.identity(self.physics), tf.identity(self.steps))

    def reset(self):
        """Starts new episodes in all N environments; returns obs."""
        state, obs = self.env.reset(self.next_seed(), self.num_envs)
        self._assign(state, obs)
        return obs

    def step(self, action):
        """Steps all N environments with int32 actions [N]; returns the StepResult."""
        result = self.env.step(self.state, action, self.next_seed())
        self._assign(result.state, result.obs)
        return result

    def _assign(self, state, obs):
        self.physics.assign(state.physics)
        self.steps.assign(state.steps)
        self.obs.assign(obs)
