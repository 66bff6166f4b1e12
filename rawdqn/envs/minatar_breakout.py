"""MinAtar Breakout (Young & Tian 2019; the `minatar` package's `breakout.py`), batched.

A 10×10 grid: the paddle on the bottom row, a ball moving along diagonals, three rows of
bricks (rows 1–3). Each step, in the package's order:

    paddle ← clip(paddle ∓ 1, 0, 9) for left / right
    (x', y') = (x, y) + d(dir),  d = (−1, −1), (+1, −1), (+1, +1), (−1, +1) for dir 0…3
    x' off the grid:  x' clipped, dir ← [1, 0, 3, 2][dir]                    (side wall)
    then y' < 0:      y' = 0, dir ← [3, 2, 1, 0][dir]                         (top wall)
    or a brick at (y', x'):  unless the ball struck one last step: r = 1, the brick goes,
                      y' = y, dir ← [3, 2, 1, 0][dir]; the ball is "striking" either way
    or y' = 9:        no bricks left → rows 1–3 refill; then the paddle under the old x
                      bounces it straight back (dir ← [3, 2, 1, 0][dir], y' = y), under the
                      new x' at an angle (dir ← [2, 3, 0, 1][dir], y' = y), else terminated

Observation: [10, 10, 4] uint8 0/1 channels paddle, ball, trail (the ball's last cell),
brick, as `Env.state()` (bool there). Actions are MinAtar/Breakout-v1's minimal set: 0
no-op, 1 left, 2 right. Sticky actions as `minatar.Environment.act`: with probability
`sticky_action_prob` (0.1 by default, as the package) the previous action is repeated, the
previous action carried across episodes as the package does. Reset: the ball at row 3, on
the left edge moving down-right or on the right edge moving down-left, with probability ½
each; the paddle in column 4. MinAtar registers no time limit; nor does this env by default.
tests/test_envs_minatar.py checks it step by step against the package.
"""

import tensorflow as tf

from rawdqn.envs import core

SIZE = 10
# physics columns (all small integers, exact in float32)
BALL_X, BALL_Y, DIRECTION, PADDLE, STRIKE, LAST_X, LAST_Y, TERMINAL, REWARD, LAST_ACTION = range(10)
BRICKS = 10                                   # columns 10 … 109: brick[y, x] at 10 + 10 y + x
NO_OP, LEFT, RIGHT = 0, 1, 2                  # the minimal action set: the package's 'n', 'l', 'r'
STEP_X, STEP_Y = (-1, 1, 1, -1), (-1, -1, 1, 1)
REFLECT_X, REFLECT_Y, REFLECT_CORNER = (1, 0, 3, 2), (3, 2, 1, 0), (2, 3, 0, 1)
NO_TIME_LIMIT = 2**31 - 1


def _starting_bricks():
    return [1 if 1 <= cell // SIZE <= 3 else 0 for cell in range(SIZE * SIZE)]


class MinAtarBreakout(core.Env):
    """Break bricks with a ball and a paddle; +1 per brick; terminated when the ball is missed."""

    env_id = "MinAtar/Breakout-v1"
    observation_shape = (SIZE, SIZE, 4)
    observation_size = SIZE * SIZE * 4
    observation_dtype = tf.uint8
    frame_max = 1.0                           # 0/1 channels, as the package's bool state
    num_actions = 3
    physics_size = BRICKS + SIZE * SIZE
    default_max_episode_steps = NO_TIME_LIMIT

    def __init__(self, dtype=tf.float32, max_episode_steps=None, sticky_action_prob=0.1):
        super().__init__(dtype=dtype, max_episode_steps=max_episode_steps)
        if not 0.0 <= sticky_action_prob <= 1.0:
            raise ValueError(f"sticky_action_prob must be in [0, 1]; got {sticky_action_prob}")
        self.sticky_action_prob = float(sticky_action_prob)

    def initial_physics(self, seed, num_envs):
        """Row 3; (x, dir) = (0, 2) or (9, 3), each with probability ½; paddle 4; rows 1–3 of bricks."""
        right = tf.cast(self.uniform(seed, [num_envs], 0.0, 1.0) >= self.constant(0.5), tf.int32)
        ball_x, direction = 9 * right, 2 + right
        zero = tf.zeros_like(ball_x)
        scalars = [ball_x, zero + 3, direction, zero + 4, zero, ball_x, zero + 3, zero, zero, zero]
        bricks = tf.tile(tf.constant([_starting_bricks()], tf.int32), [num_envs, 1])
        return tf.cast(tf.concat([tf.stack(scalars, axis=1), bricks], axis=1), self.dtype)

    def next_physics(self, physics, action):
        """One step of the package's `Env.act` (module docstring); a terminated env stays put."""
        state = tf.cast(physics, tf.int32)
        ball_x, ball_y, direction, paddle, strike, terminal = (
            state[:, BALL_X], state[:, BALL_Y], state[:, DIRECTION], state[:, PADDLE], state[:, STRIKE],
            state[:, TERMINAL])
        bricks = state[:, BRICKS:]
        paddle = tf.clip_by_value(paddle - tf.cast(action == LEFT, tf.int32) + tf.cast(action == RIGHT, tf.int32),
                                  0, SIZE - 1)

        def turn(table):
            return tf.gather(tf.constant(table, tf.int32), direction)

        new_x = ball_x + tf.gather(tf.constant(STEP_X), direction)
        new_y = ball_y + tf.gather(tf.constant(STEP_Y), direction)
        off_side = tf.logical_or(new_x < 0, new_x > SIZE - 1)
        new_x = tf.clip_by_value(new_x, 0, SIZE - 1)
        direction = tf.where(off_side, turn(REFLECT_X), direction)
        top = new_y < 0
        cell = tf.clip_by_value(new_y, 0, SIZE - 1) * SIZE + new_x
        at_brick = tf.logical_and(~top, tf.gather(bricks, cell, batch_dims=1) == 1)
        breaks = tf.logical_and(at_brick, strike == 0)
        bottom = tf.logical_and(tf.logical_and(~top, ~at_brick), new_y == SIZE - 1)
        straight = tf.logical_and(bottom, ball_x == paddle)
        corner = tf.logical_and(tf.logical_and(bottom, ~straight), new_x == paddle)
        missed = tf.logical_and(bottom, tf.logical_and(~straight, ~corner))

        bricks = bricks - tf.cast(breaks, tf.int32)[:, None] * tf.one_hot(cell, SIZE * SIZE, dtype=tf.int32)
        refill = tf.logical_and(bottom, tf.reduce_sum(bricks, axis=1) == 0)
        bricks = tf.where(refill[:, None], tf.constant([_starting_bricks()], tf.int32), bricks)
        new_y = tf.where(top, 0, tf.where(tf.logical_or(breaks, tf.logical_or(straight, corner)), ball_y, new_y))
        direction = tf.where(tf.logical_or(top, tf.logical_or(breaks, straight)), turn(REFLECT_Y),
                             tf.where(corner, turn(REFLECT_CORNER), direction))
        scalars = [new_x, new_y, direction, paddle, tf.cast(at_brick, tf.int32), ball_x, ball_y,
                   tf.cast(missed, tf.int32), tf.cast(breaks, tf.int32), state[:, LAST_ACTION]]
        stepped = tf.cast(tf.concat([tf.stack(scalars, axis=1), bricks], axis=1), self.dtype)
        # The package returns (0, terminal) and changes nothing once terminal.
        stopped = tf.concat([physics[:, :REWARD], tf.zeros_like(physics[:, REWARD:REWARD + 1]),
                             physics[:, REWARD + 1:]], axis=1)
        return tf.where((terminal == 1)[:, None], stopped, stepped)

    def is_terminal(self, physics):
        """The ball reached the bottom row away from the paddle."""
        return physics[:, TERMINAL] == self.constant(1.0)

    def reward(self, physics, terminated):
        """+1 for the brick broken this step."""
        return physics[:, REWARD]

    def observation(self, physics):
        """[N, 10, 10, 4] uint8 channels paddle, ball, trail, brick."""
        state = tf.cast(physics, tf.int32)

        def one_cell(y, x):
            return tf.one_hot(y * SIZE + x, SIZE * SIZE, dtype=tf.uint8)

        channels = [one_cell(tf.fill(tf.shape(state[:, PADDLE]), SIZE - 1), state[:, PADDLE]),
                    one_cell(state[:, BALL_Y], state[:, BALL_X]), one_cell(state[:, LAST_Y], state[:, LAST_X]),
                    tf.cast(state[:, BRICKS:], tf.uint8)]
        return tf.reshape(tf.stack(channels, axis=-1), [-1, *self.observation_shape])

    def sticky_actions(self, last_action, action, seed):
        """a_applied = a_last if u < p else a, u ~ U[0, 1) per env (minatar.Environment.act)."""
        sticks = self.uniform(seed, [action.shape[0] or tf.shape(action)[0]], 0.0, 1.0) < self.constant(self.sticky_action_prob)
        return tf.where(sticks, last_action, action)

    def step(self, state, action, seed):
        """core.Env.step on the action actually applied (sticky), which is remembered across
        the auto-reset as the package remembers it across `reset`."""
        action = tf.convert_to_tensor(action)
        last_action = tf.cast(state.physics[:, LAST_ACTION], tf.int32)
        applied = self.sticky_actions(last_action, action, tf.random.experimental.stateless_fold_in(seed, 1))
        result = super().step(state, applied, seed)
        physics = tf.concat([result.state.physics[:, :LAST_ACTION], tf.cast(applied, self.dtype)[:, None],
                             result.state.physics[:, LAST_ACTION + 1:]], axis=1)
        return result._replace(state=result.state._replace(physics=physics))
