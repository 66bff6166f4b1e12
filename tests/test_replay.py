import numpy as np
import pytest
import tensorflow as tf

from rawdqn.replay import ReplayBuffer


def add_rows(replay, first, count):
    """Add transitions first … first+count−1; obs = [i, −i], action = i % 3, reward = i."""
    ids = np.arange(first, first + count)
    replay.add(np.stack([ids, -ids], 1), ids % 3, ids.astype(np.float32),
               np.stack([ids + 1, -ids - 1], 1), (ids % 2).astype(np.float32))


def test_wraps_around_the_ring():
    # Capacity 5: add 0..2 then 3..6 → slots hold [5, 6, 2, 3, 4], cursor at 2.
    replay = ReplayBuffer(5, (2,))
    add_rows(replay, 0, 3)
    assert replay.size == 3 and int(replay.cursor.numpy()) == 3
    add_rows(replay, 3, 4)
    np.testing.assert_array_equal(replay.reward.numpy(), [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(replay.obs.numpy()[:, 1], [-5, -6, -2, -3, -4])
    np.testing.assert_array_equal(replay.next_obs.numpy()[:, 0], [6, 7, 3, 4, 5])
    np.testing.assert_array_equal(replay.action.numpy(), [2, 0, 2, 0, 1])
    np.testing.assert_array_equal(replay.terminated.numpy(), [1, 0, 0, 1, 0])
    assert replay.size == 5 and int(replay.cursor.numpy()) == 2


def test_samples_only_from_the_filled_part_and_rows_stay_together():
    replay = ReplayBuffer(100, (2,), seed=3)
    add_rows(replay, 0, 7)
    rewards = np.concatenate([replay.sample(64).reward.numpy() for _ in range(20)])
    assert set(rewards.astype(int)) == set(range(7))  # all 7 drawn, nothing from empty slots
    batch = replay.sample(32)
    ids = batch.reward.numpy()
    np.testing.assert_array_equal(batch.obs.numpy(), np.stack([ids, -ids], 1))
    np.testing.assert_array_equal(batch.action.numpy(), ids.astype(int) % 3)
    np.testing.assert_array_equal(batch.next_obs.numpy()[:, 0], ids + 1)


def test_sampling_is_uniform():
    # 4 filled slots, 40,000 draws: each count ~ Binomial(40000, 1/4), sd ≈ 87; allow 5 sd.
    replay = ReplayBuffer(16, (2,), seed=0)
    add_rows(replay, 0, 4)
    draws = np.concatenate([replay.sample(1000).reward.numpy() for _ in range(40)]).astype(int)
    counts = np.bincount(draws, minlength=4)
    assert np.all(np.abs(counts - 10_000) < 5 * 87), counts


def test_same_seed_same_samples_and_the_counter_is_the_rng_state():
    a, b = ReplayBuffer(10, (2,), seed=5), ReplayBuffer(10, (2,), seed=5)
    for replay in (a, b):
        add_rows(replay, 0, 10)
    first = a.sample(8).reward.numpy()
    np.testing.assert_array_equal(first, b.sample(8).reward.numpy())
    b.draws.assign(0)  # rewinding the counter replays the draw
    np.testing.assert_array_equal(first, b.sample(8).reward.numpy())
    assert not np.array_equal(first, a.sample(8).reward.numpy())


def test_clear_errors():
    replay = ReplayBuffer(4, (2,))
    with pytest.raises(ValueError, match="empty replay"):
        replay.sample(2)
    with pytest.raises(ValueError, match="cannot add 5 transitions at once to a replay of capacity 4"):
        add_rows(replay, 0, 5)
    with pytest.raises(ValueError, match=r"obs of shape \[N, 2\]"):
        replay.add(np.zeros((2, 3)), [0, 0], [0.0, 0.0], np.zeros((2, 3)), [0, 0])
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        ReplayBuffer(0, (2,))


def test_add_and_sample_compose_inside_one_xla_program():
    replay = ReplayBuffer(8, (2,), seed=1)

    @tf.function(jit_compile=True)
    def add_then_sample(obs, action, reward, terminated):
        replay.add_fn(obs, action, reward, obs + 1.0, terminated)
        return replay.sample_fn(4)

    batch = add_then_sample(tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([0, 1]),
                            tf.constant([10.0, 20.0]), tf.constant([0.0, 1.0]))
    assert set(batch.reward.numpy()) <= {10.0, 20.0}
    assert replay.size == 2


def test_legal_masks_are_stored_when_asked():
    replay = ReplayBuffer(4, (), obs_dtype=tf.int32, num_actions=3)
    replay.add([0, 1], [2, 0], [1.0, 0.0], [1, 2], [0.0, 1.0],
               next_legal_mask=[[True, False, True], [False, False, True]])
    batch = replay.sample(16)
    for next_state, mask in zip(batch.next_obs.numpy(), batch.next_legal_mask.numpy()):
        expected = [True, False, True] if next_state == 1 else [False, False, True]
        np.testing.assert_array_equal(mask, expected)
    # 4 rows of [obs | next_obs | action | reward | terminated | 3 mask columns] in float32, 3 int32 counters.
    assert replay.nbytes == 4 * (1 + 1 + 3 + 3) * 4 + 3 * 4


def test_a_transition_is_one_row_in_the_documented_layout():
    # [obs | next_obs | action | reward | terminated | next legal mask], in the reward's dtype.
    replay = ReplayBuffer(3, (2,), reward_dtype=tf.float64, num_actions=2)
    replay.add([[1.5, -2.0]], [1], [0.25], [[3.0, 4.0]], [1.0], next_legal_mask=[[False, True]])
    rows = replay.rows.numpy()
    assert rows.dtype == np.float64
    np.testing.assert_array_equal(rows[0], [1.5, -2.0, 3.0, 4.0, 1.0, 0.25, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(rows[1, -2:], [1.0, 1.0])   # empty slots: every action legal
    assert replay.action.dtype == tf.int32 and replay.next_legal_mask.dtype == tf.bool


def test_integer_observations_beyond_float32_exactness_are_refused():
    replay = ReplayBuffer(2, (), obs_dtype=tf.int32)
    with pytest.raises(ValueError, match="not exact in a float32 replay"):
        replay.add([2 ** 24], [0], [0.0], [0], [0.0])
    wide = ReplayBuffer(2, (), obs_dtype=tf.int32, reward_dtype=tf.float64)
    wide.add([2 ** 24 + 1], [0], [0.0], [0], [0.0])
    assert int(wide.obs.numpy()[0]) == 2 ** 24 + 1
