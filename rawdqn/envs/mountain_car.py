"""MountainCar-v0 (gymnasium 1.4 `MountainCarEnv`, goal_velocity = 0), batched."""

import tensorflow as tf

from rawdqn.envs import core

MIN_POSITION = -1.2
MAX_POSITION = 0.6
MAX_SPEED = 0.07
GOAL_POSITION = 0.5
GOAL_VELOCITY = 0.0
FORCE = 0.001
GRAVITY = 0.0025
RESET_LOW = -0.6
RESET_HIGH = -0.4


class MountainCar(core.Env):
    """Drive an underpowered car up the right hill: push left (0), none (1), right (2).

    physics = observation = [position, velocity]; reward -1 every step;
    terminated when position >= 0.5 and velocity >= 0.
    """

    env_id = "MountainCar-v0"
    observation_size = 2
    num_actions = 3
    physics_size = 2
    default_max_episode_steps = 200

    def initial_physics(self, seed, num_envs):
        """position ~ U(-0.6, -0.4), velocity = 0."""
        position = self.uniform(seed, [num_envs], RESET_LOW, RESET_HIGH)
        return tf.stack([position, tf.zeros_like(position)], axis=1)

    def next_physics(self, physics, action):
        """
            v' = clip(v + (action - 1) 0.001 - 0.0025 cos(3 p), -0.07, 0.07)
            p' = clip(p + v', -1.2, 0.6)
            v' = 0 if p' == -1.2 and v' < 0   (the car stops at the left wall)
        """
        c = self.constant
        position, velocity = tf.unstack(physics, axis=1)
        push = tf.cast(action - 1, self.dtype)
        velocity = velocity + (push * c(FORCE) + tf.cos(c(3.0) * position) * c(-GRAVITY))
        velocity = tf.clip_by_value(velocity, c(-MAX_SPEED), c(MAX_SPEED))
        position = tf.clip_by_value(position + velocity, c(MIN_POSITION), c(MAX_POSITION))
        at_wall = tf.logical_and(tf.equal(position, c(MIN_POSITION)), velocity < c(0.0))
        velocity = tf.where(at_wall, tf.zeros_like(velocity), velocity)
        return tf.stack([position, velocity], axis=1)

    def is_terminal(self, physics):
        """position >= 0.5 and velocity >= 0."""
        return tf.logical_and(
            physics[:, 0] >= self.constant(GOAL_POSITION),
            physics[:, 1] >= self.constant(GOAL_VELOCITY),
        )

    def reward(self, physics, terminated):
        """-1 for every step."""
        return -tf.ones_like(physics[:, 0])

    def observation(self, physics):
        """The state itself."""
        return physics

