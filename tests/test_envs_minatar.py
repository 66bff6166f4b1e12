"""rawdqn.envs' MinAtar Breakout, step by step against the minatar package's own game."""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import envs
from rawdqn.envs import minatar_breakout as breakout

minatar = pytest.importorskip("minatar", reason='the package to compare with: pip install "rawdqn[minatar]"')

FULL_ACTION = (0, 1, 3)   # Breakout-v1's minimal set in the package's full action set: 'n', 'l', 'r'


def package_game_at(physics):
    """A minatar Breakout game (no sticky actions) put into the state `physics` describes."""
    game = minatar.Environment("breakout", sticky_action_prob=0.0)
    inner, state = game.env, physics.astype(int)
    inner.ball_x, inner.ball_y, inner.ball_dir, inner.pos = (state[breakout.BALL_X], state[breakout.BALL_Y],
                                                             state[breakout.DIRECTION], state[breakout.PADDLE])
    inner.strike, inner.terminal = bool(state[breakout.STRIKE]), bool(state[breakout.TERMINAL])
    inner.last_x, inner.last_y = state[breakout.LAST_X], state[breakout.LAST_Y]
    inner.brick_map = state[breakout.BRICKS:].reshape(10, 10).astype(float)
    return game


def chasing_actions(obs, rng, random_share):
    """Move the paddle towards the ball, a random action with probability random_share: long
    episodes, so the bricks run out and refill."""
    paddle = obs[:, 9, :, 0].argmax(1)
    ball, trail = (obs[..., channel].reshape(len(obs), -1).argmax(1) % 10 for channel in (1, 2))
    aim = np.clip(ball + (ball - trail), 0, 9)   # where the ball will be next
    chase = np.where(aim < paddle, 1, np.where(aim > paddle, 2, 0))
    return np.where(rng.random(len(obs)) < random_share, rng.integers(0, 3, len(obs)), chase).astype(np.int32)


@pytest.mark.parametrize("jit", [False, True])
def test_breakout_matches_the_package_step_by_step(jit):
    env = envs.make("MinAtar/Breakout-v1")
    env.sticky_action_prob = 0.0   # sticky actions draw from different streams here and there: tested apart
    num_envs, steps, rng = 6, 1500, np.random.default_rng(0)
    step = tf.function(env.step, jit_compile=True) if jit else env.step
    state, obs = env.reset(tf.constant([7, 0]), num_envs)
    games = [package_game_at(row) for row in state.physics.numpy()]
    for game, frame in zip(games, obs.numpy()):
        np.testing.assert_array_equal(game.state(), frame.astype(bool))
    counts = {"reward": 0, "terminated": 0, "refills": 0, "right starts": 0}
    for t in range(steps):
        actions = chasing_actions(obs.numpy(), rng, 0.05)
        result = step(state, tf.constant(actions), tf.constant([7, t + 1]))
        for i, game in enumerate(games):
            bricks_before = np.count_nonzero(game.env.brick_map)
            reward, terminal = game.act(FULL_ACTION[actions[i]])
            counts["refills"] += np.count_nonzero(game.env.brick_map) > bricks_before
            np.testing.assert_array_equal(result.final_obs[i].numpy().astype(bool), game.state(), err_msg=f"step {t}")
            assert result.reward[i].numpy() == reward and bool(result.terminated[i]) == terminal, f"step {t}"
            if terminal:
                start = result.state.physics[i].numpy()
                counts["right starts"] += start[breakout.BALL_X] == 9
                games[i] = package_game_at(start)
                np.testing.assert_array_equal(result.obs[i].numpy().astype(bool), games[i].state())
        counts["reward"] += int(result.reward.numpy().sum())
        counts["terminated"] += int(result.terminated.numpy().sum())
        assert not result.truncated.numpy().any()
        state, obs = result.state, result.obs
    # The comparison reached every branch that matters: bricks broken, balls missed, a refill.
    assert counts["reward"] > 100 and counts["terminated"] > 10 and counts["refills"] >= 1, counts
    assert 0 < counts["right starts"] < counts["terminated"], counts


def test_breakout_start_states_are_the_two_corners_evenly():
    env = envs.make("MinAtar/Breakout-v1")
    physics = env.initial_physics(tf.constant([3, 4]), 4000).numpy()
    right = physics[:, breakout.BALL_X] == 9
    assert set(map(tuple, physics[:, [breakout.BALL_X, breakout.DIRECTION]].astype(int))) == {(0, 2), (9, 3)}
    assert abs(right.mean() - 0.5) < 4 * np.sqrt(0.25 / len(right))
    np.testing.assert_array_equal(physics[:, breakout.BALL_Y], 3)
    np.testing.assert_array_equal(physics[:, breakout.PADDLE], 4)
    np.testing.assert_array_equal(physics[:, breakout.BRICKS:].sum(1), 30)


def test_sticky_actions_repeat_the_applied_action_with_their_probability():
    """minatar.Environment.act: with probability p the last applied action replaces the chosen one,
    and the last action survives the auto-reset."""
    env = breakout.MinAtarBreakout(sticky_action_prob=0.3)
    num_envs, steps, rng = 64, 60, np.random.default_rng(1)
    state, _ = env.reset(tf.constant([5, 0]), num_envs)
    repeated = differed = 0
    for t in range(steps):
        last = state.physics[:, breakout.LAST_ACTION].numpy().astype(int)
        chosen = rng.integers(0, 3, num_envs).astype(np.int32)
        state = env.step(state, tf.constant(chosen), tf.constant([5, t + 1])).state
        applied = state.physics[:, breakout.LAST_ACTION].numpy().astype(int)
        assert np.all((applied == chosen) | (applied == last))
        differs = chosen != last
        differed += differs.sum()
        repeated += (applied[differs] == last[differs]).sum()
    share, standard_error = repeated / differed, np.sqrt(0.3 * 0.7 / differed)
    assert abs(share - 0.3) < 4 * standard_error, (share, differed)


def test_a_terminated_game_stands_still_as_the_package_does():
    env = envs.make("MinAtar/Breakout-v1")
    physics = env.initial_physics(tf.constant([1, 1]), 1).numpy()
    physics[0, breakout.TERMINAL] = 1
    stepped = env.next_physics(tf.constant(physics), tf.constant([2], tf.int32)).numpy()
    np.testing.assert_array_equal(stepped, physics)
    assert env.reward(tf.constant(stepped), None).numpy()[0] == 0
