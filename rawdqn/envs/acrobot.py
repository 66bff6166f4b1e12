"""Acrobot-v1 (gymnasium 1.4 `AcrobotEnv`: "book" dynamics, RK4, no torque noise), batched."""

import math

import tensorflow as tf

from rawdqn.envs import core

TIME_STEP = 0.2
LINK_LENGTH_1 = 1.0
LINK_MASS_1 = 1.0
LINK_MASS_2 = 1.0
LINK_CENTER_1 = 0.5  # position of link 1's centre of mass
LINK_CENTER_2 = 0.5
LINK_INERTIA = 1.0  # moment of inertia of each link
GRAVITY = 9.8
MAX_VELOCITY_1 = 4 * math.pi
MAX_VELOCITY_2 = 9 * math.pi
RESET_BOUND = 0.1

# The constant products of the equations, grouped as gymnasium's Python
# evaluates them, so float64 runs agree with it to the last bit.
M2_L1_LC2 = LINK_MASS_2 * LINK_LENGTH_1 * LINK_CENTER_2
D1_CONSTANT = LINK_MASS_1 * LINK_CENTER_1**2
D1_SQUARES = LINK_LENGTH_1**2 + LINK_CENTER_2**2
D1_COS = 2 * LINK_LENGTH_1 * LINK_CENTER_2
D2_SQUARE = LINK_CENTER_2**2
D2_COS = LINK_LENGTH_1 * LINK_CENTER_2
PHI2_SCALE = LINK_MASS_2 * LINK_CENTER_2 * GRAVITY
PHI1_GRAVITY = (LINK_MASS_1 * LINK_CENTER_1 + LINK_MASS_2 * LINK_LENGTH_1) * GRAVITY
PHI1_CROSS = 2 * LINK_MASS_2 * LINK_LENGTH_1 * LINK_CENTER_2
THETA2_INERTIA = LINK_MASS_2 * LINK_CENTER_2**2 + LINK_INERTIA


class Acrobot(core.Env):
    """Swing the tip of a two-link chain above a line: torque -1 (0), 0 (1), +1 (2).

    physics = [theta1, theta2, theta1_dot, theta2_dot];
    observation = [cos theta1, sin theta1, cos theta2, sin theta2, theta1_dot, theta2_dot];
    reward -1 each step, 0 on the terminating step;
    terminated when -cos theta1 - cos(theta1 + theta2) > 1.
    """

    env_id = "Acrobot-v1"
    observation_size = 6
    num_actions = 3
    physics_size = 4
    default_max_episode_steps = 500

    def initial_physics(self, seed, num_envs):
        """Each of the 4 state entries ~ U(-0.1, 0.1), stored as float32 as gymnasium does."""
        if self.dtype == tf.float32:
            return self.uniform(seed, [num_envs, 4], -RESET_BOUND, RESET_BOUND)
        start = self.uniform(seed, [num_envs, 4], -RESET_BOUND, RESET_BOUND)
        return tf.cast(tf.cast(start, tf.float32), self.dtype)

    def derivatives(self, theta1, theta2, theta1_dot, theta2_dot, torque):
        """Time derivatives of the state, the "book" equations (Sutton & Barto):

            d1 = m1 lc1^2 + m2 (l1^2 + lc2^2 + 2 l1 lc2 cos theta2) + I1 + I2
            d2 = m2 (lc2^2 + l1 lc2 cos theta2) + I2
            phi2 = m2 lc2 g cos(theta1 + theta2 - pi/2)
            phi1 = -m2 l1 lc2 theta2_dot^2 sin theta2
                   - 2 m2 l1 lc2 theta2_dot theta1_dot sin theta2
                   + (m1 lc1 + m2 l1) g cos(theta1 - pi/2) + phi2
            theta2_acc = (torque + d2/d1 phi1 - m2 l1 lc2 theta1_dot^2 sin theta2 - phi2)
                         / (m2 lc2^2 + I2 - d2^2/d1)
            theta1_acc = -(d2 theta2_acc + phi1) / d1
        """
        c = self.constant
        cos_theta2 = tf.cos(theta2)
        sin_theta2 = tf.sin(theta2)
        d1 = (
            c(D1_CONSTANT) + c(LINK_MASS_2) * (c(D1_SQUARES) + c(D1_COS) * cos_theta2)
        ) + c(LINK_INERTIA) + c(LINK_INERTIA)
        d2 = c(LINK_MASS_2) * (c(D2_SQUARE) + c(D2_COS) * cos_theta2) + c(LINK_INERTIA)
        phi2 = c(PHI2_SCALE) * tf.cos(theta1 + theta2 - c(math.pi / 2.0))
        phi1 = (
            c(-M2_L1_LC2) * (theta2_dot * theta2_dot) * sin_theta2
            - c(PHI1_CROSS) * theta2_dot * theta1_dot * sin_theta2
            + c(PHI1_GRAVITY) * tf.cos(theta1 - c(math.pi / 2))
            + phi2
        )
        theta2_acc = (
            torque
            + d2 / d1 * phi1
            - c(M2_L1_LC2) * (theta1_dot * theta1_dot) * sin_theta2
            - phi2
        ) / (c(THETA2_INERTIA) - d2 * d2 / d1)
        theta1_acc = -(d2 * theta2_acc + phi1) / d1
        return theta1_dot, theta2_dot, theta1_acc, theta2_acc

    def next_physics(self, physics, action):
        """One RK4 step of length 0.2 s, then angles wrapped and speeds clipped:

            k1 = f(s), k2 = f(s + dt/2 k1), k3 = f(s + dt/2 k2), k4 = f(s + dt k3)
            s' = s + dt/6 (k1 + 2 k2 + 2 k3 + k4)
            theta1', theta2' wrapped into [-pi, pi]
            theta1_dot' clipped to +-4 pi, theta2_dot' to +-9 pi
        """
        c = self.constant
        torque = tf.cast(action - 1, self.dtype)
        start = tf.unstack(physics, axis=1)

        def shifted(k, scale):
            return [s + c(scale) * dk for s, dk in zip(start, k)]

        k1 = self.derivatives(*start, torque)
        k2 = self.derivatives(*shifted(k1, TIME_STEP / 2.0), torque)
        k3 = self.derivatives(*shifted(k2, TIME_STEP / 2.0), torque)
        k4 = self.derivatives(*shifted(k3, TIME_STEP), torque)
        theta1, theta2, theta1_dot, theta2_dot = [
            s + c(TIME_STEP / 6.0) * (a + c(2.0) * b + c(2.0) * d + e)
            for s, a, b, d, e in zip(start, k1, k2, k3, k4)
        ]
        return tf.stack(
            [
                self.wrap_angle(theta1),
                self.wrap_angle(theta2),
                tf.clip_by_value(theta1_dot, c(-MAX_VELOCITY_1), c(MAX_VELOCITY_1)),
                tf.clip_by_value(theta2_dot, c(-MAX_VELOCITY_2), c(MAX_VELOCITY_2)),
            ],
            axis=1,
        )

    def wrap_angle(self, angle):
        """Shifts by whole turns into [-pi, pi], as gymnasium's `wrap` loops:

            while a > pi: a -= 2 pi;   while a < -pi: a += 2 pi
        """
        c = self.constant
        turn = c(math.pi - -math.pi)
        # ceil counts the loop's iterations; one turn (by far the usual case) is exact.
        turns_over = tf.math.ceil((angle - c(math.pi)) / turn)
        turns_under = tf.math.ceil((c(-math.pi) - angle) / turn)
        angle = tf.where(angle > c(math.pi), angle - turn * turns_over, angle)
        return tf.where(angle < c(-math.pi), angle + turn * turns_under, angle)

    def is_terminal(self, physics):
        """The tip is above the line: -cos theta1 - cos(theta2 + theta1) > 1."""
        theta1 = physics[:, 0]
        theta2 = physics[:, 1]
        return -tf.cos(theta1) - tf.cos(theta2 + theta1) > self.constant(1.0)

    def reward(self, physics, terminated):
        """-1 each step, 0 on the terminating step."""
        return tf.where(terminated, self.constant(0.0), self.constant(-1.0))

    def observation(self, physics):
        """[cos theta1, sin theta1, cos theta2, sin theta2, theta1_dot, theta2_dot]."""
        theta1, theta2, theta1_dot, theta2_dot = tf.unstack(physics, axis=1)
        return tf.stack(
            [tf.cos(theta1), tf.sin(theta1), tf.cos(theta2), tf.sin(theta2), theta1_dot, theta2_dot],
            axis=1,
        )
