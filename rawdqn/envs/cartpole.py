"""CartPole-v1 (gymnasium 1.4 `CartPoleEnv`, Euler integration), batched."""

import math

import tensorflow as tf

from rawdqn.envs import core

GRAVITY = 9.8
CART_MASS = 1.0
POLE_MASS = 0.1
TOTAL_MASS = POLE_MASS + CART_MASS
HALF_POLE_LENGTH = 0.5
POLE_MASS_LENGTH = POLE_MASS * HALF_POLE_LENGTH
FORCE = 10.0
TIME_STEP = 0.02
# Written as gymnasium writes it, so the float64 value is bit-identical.
ANGLE_LIMIT = 12 * 2 * math.pi / 360
POSITION_LIMIT = 2.4
RESET_BOUND = 0.05


class CartPole(core.Env):
    """Balance a pole on a cart pushed left (action 0) or right (action 1).

    physics = observation = [x, x_dot, theta, theta_dot]; reward 1 every step,
    the terminating one included; terminated when |x| > 2.4 or |theta| > 12 deg.
    """

    env_id = "CartPole-v1"
    observation_size = 4
    num_actions = 2
    physics_size = 4
    default_max_episode_steps = 500

    def initial_physics(self, seed, num_envs):
        """Each of the 4 state entries ~ U(-0.05, 0.05)."""
        return self.uniform(seed, [num_envs, 4], -RESET_BOUND, RESET_BOUND)

    def next_physics(self, physics, action):
        """One Euler step of the cart-pole equations (Barto, Sutton, Anderson 1983).

            F = +10 if action == 1 else -10
            temp = (F + m_p l theta_dot^2 sin theta) / (m_c + m_p)
            theta_acc = (g sin theta - cos theta temp)
                        / (l (4/3 - m_p cos^2 theta / (m_c + m_p)))
            x_acc = temp - m_p l theta_acc cos theta / (m_c + m_p)
            x += tau x_dot;  x_dot += tau x_acc
            theta += tau theta_dot;  theta_dot += tau theta_acc
        """
        c = self.constant
        x, x_dot, theta, theta_dot = tf.unstack(physics, axis=1)
        force = tf.where(tf.equal(action, 1), c(FORCE), c(-FORCE))
        cos_theta = tf.cos(theta)
        sin_theta = tf.sin(theta)
        # Same operation order as gymnasium, so float64 runs agree to the last bit.
        temp = (force + c(POLE_MASS_LENGTH) * (theta_dot * theta_dot) * sin_theta) / c(TOTAL_MASS)
        theta_acc = (c(GRAVITY) * sin_theta - cos_theta * temp) / (
            c(HALF_POLE_LENGTH)
            * (c(4.0 / 3.0) - c(POLE_MASS) * (cos_theta * cos_theta) / c(TOTAL_MASS))
        )
        x_acc = temp - c(POLE_MASS_LENGTH) * theta_acc * cos_theta / c(TOTAL_MASS)
        return tf.stack(
            [
                x + c(TIME_STEP) * x_dot,
                x_dot + c(TIME_STEP) * x_acc,
                theta + c(TIME_STEP) * theta_dot,
                theta_dot + c(TIME_STEP) * theta_acc,
            ],
            axis=1,
        )

    def is_terminal(self, physics):
        """|x| > 2.4 or |theta| > 12 degrees."""
        x = physics[:, 0]
        theta = physics[:, 2]
        return tf.logical_or(
            tf.abs(x) > self.constant(POSITION_LIMIT),
            tf.abs(theta) > self.constant(ANGLE_LIMIT),
        )

    def reward(self, physics, terminated):
        """1 for every step, the terminating one included."""
        return tf.ones_like(physics[:, 0])

    def observation(self, physics):
        """The state itself."""
        return physics
