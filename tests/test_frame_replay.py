"""The frame replay against its NumPy reference (rawdqn/reference.py's FrameReplayReference).

The reference keeps whole episodes as lists and derives each transition's stacks from the
episode itself; the replay keeps one ring of frames per env. Over random episode layouts —
terminations and truncations, one to three envs, rings small enough to wrap many times —
every sampled transition must be one the reference can still sample, equal to it frame
for frame, and together the samples must reach every one of them.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rawdqn.frame_replay import FrameReplay
from rawdqn.reference import FrameReplayReference

FRAME = (3, 2)
CHANNEL_FRAME = (3, 2, 2)   # MinAtar's kind: [H, W, C], its stacks [H, W, history · C]


def numbered_frame(number, shape):
    """A frame whose pixels are its number; channel c of a [H, W, C] frame holds number + 100·c."""
    frame = np.full(shape, number % 100, np.uint8)
    if len(shape) == 3:
        frame += (100 * np.arange(shape[2])).astype(np.uint8)
    return frame


def play(replay, reference, rng, steps, end_probability):
    """Random frames and endings for all envs, written to both."""
    n = replay.num_envs
    counter = iter(range(1, 10**6))   # distinct frames: each a constant image of its own number
    make = lambda: np.stack([numbered_frame(next(counter), replay.frame_shape) for _ in range(n)])  # noqa: E731
    first = make()
    replay.begin(first)
    reference.begin(first)
    for _ in range(steps):
        action = rng.integers(0, 6, n)
        reward = rng.normal(size=n).astype(np.float32)
        ended = rng.random(n) < end_probability
        terminated = ended & (rng.random(n) < 0.5)    # the rest are truncations
        next_frame, reset_frame = make(), make()
        replay.add(action, reward, terminated, next_frame, ended, reset_frame)
        reference.add(action, reward, terminated, next_frame, ended, reset_frame)


@settings(max_examples=25, deadline=None)
@given(slots=st.integers(6, 14), num_envs=st.integers(1, 3), history=st.sampled_from([1, 2, 4]),
       pad=st.sampled_from(["zeros", "repeat"]), steps=st.integers(1, 40),
       end_probability=st.sampled_from([0.0, 0.2, 0.5]), seed=st.integers(0, 2**16),
       frame_shape=st.sampled_from([FRAME, CHANNEL_FRAME]))
def test_samples_are_exactly_the_transitions_the_reference_can_sample(slots, num_envs, history, pad, steps,
                                                                      end_probability, seed, frame_shape):
    rng = np.random.default_rng(seed)
    replay = FrameReplay(slots, frame_shape, num_envs, history, pad, seed=seed, jit_compile=False)
    reference = FrameReplayReference(slots, num_envs, history, pad)
    play(replay, reference, rng, steps, end_probability)
    expected = reference.transitions()
    assert replay.num_transitions() == len(expected)
    if not expected:
        return
    obs, action, reward, next_obs, terminated, env, logical = (x.numpy() for x in replay.sample(600)[:7])
    seen = set()
    assert obs.shape[1:] == replay.input_shape()
    for i in range(len(env)):
        key = (int(env[i]), int(logical[i]))
        assert key in expected, f"sampled {key}, which the reference cannot sample"
        ref_obs, ref_action, ref_reward, ref_next, ref_terminated = expected[key]
        np.testing.assert_array_equal(obs[i], ref_obs)
        np.testing.assert_array_equal(next_obs[i], ref_next)
        assert (action[i], terminated[i]) == (ref_action, ref_terminated)
        assert reward[i] == np.float32(ref_reward)
        seen.add(key)
    # 600 draws over at most 3 × 14 transitions: missing one has probability < 42 · e^(−600/42).
    assert seen == set(expected)


def test_sampling_is_uniform_over_the_valid_transitions():
    # Chi-squared against the uniform distribution over what can be sampled; fixed seed.
    rng = np.random.default_rng(7)
    replay = FrameReplay(12, FRAME, 2, history=4, seed=3)   # compiled (XLA), as the training loop runs it
    reference = FrameReplayReference(12, 2, 4)
    play(replay, reference, rng, 30, 0.15)
    expected = reference.transitions()
    counts = dict.fromkeys(expected, 0)
    draws = 0
    for _ in range(20):
        obs, _, _, next_obs, _, env, logical = replay.sample(500)[:7]
        for i, key in enumerate(zip(env.numpy().tolist(), logical.numpy().tolist())):
            counts[key] += 1   # a KeyError here is a sample the reference cannot make
            if i < 20:   # the compiled stacks too, frame for frame
                np.testing.assert_array_equal(obs[i].numpy(), expected[key][0])
                np.testing.assert_array_equal(next_obs[i].numpy(), expected[key][3])
        draws += 500
    observed = np.array(list(counts.values()))
    chi2 = float(np.sum((observed - draws / len(counts)) ** 2 / (draws / len(counts))))
    # 99.9th percentile of χ² with k − 1 degrees of freedom (Wilson–Hilferty), k = len(counts).
    k = len(counts) - 1
    critical = k * (1 - 2 / (9 * k) + 3.09 * np.sqrt(2 / (9 * k))) ** 3
    assert chi2 < critical, (chi2, critical, len(counts))


def test_a_million_transitions_fit_in_the_issue_budget():
    # 84×84 frames: 7,056 bytes each, plus 14 bytes per slot of action, reward, flags and step;
    # with 1,000 episodes per 1,000,000 transitions (Pong's are ~1,000+ steps) the ring needs
    # 1,001,000 slots.  Bytes ≤ 1.05 × 10⁶ × 84 × 84, computed here without allocating them.
    slots = 1_000_000 + 1_000
    per_slot = 84 * 84 + 4 + 4 + 1 + 1 + 4
    assert slots * per_slot <= 1.05 * 1_000_000 * 84 * 84
    small = FrameReplay(100, (84, 84), 1, jit_compile=False)
    assert small.nbytes == 100 * per_slot + 8 + 4   # the same layout, measured on a small ring


def test_too_few_slots_and_unknown_padding_are_refused():
    with pytest.raises(ValueError, match="at least history \\+ 1 = 5 slots"):
        FrameReplay(4, FRAME)
    with pytest.raises(ValueError, match="pad must be one of"):
        FrameReplay(10, FRAME, pad="edge")
    with pytest.raises(ValueError, match="without a complete transition"):
        FrameReplay(10, FRAME).sample(4)


def test_the_compiled_add_updates_the_ring_in_place():
    # A copy of the frames buffer in the optimized HLO would cost 7 GB of memory traffic per
    # env step at Atari scale (an earlier add_fn, with two scatters and a read between, had one).
    import tensorflow as tf
    replay = FrameReplay(300, (84, 84))
    frame = tf.zeros([1, 84, 84], tf.uint8)
    replay.begin(frame)
    args = (tf.zeros([1], tf.int32), tf.zeros([1], tf.float32), tf.zeros([1], tf.bool), frame, tf.zeros([1], tf.bool), frame)
    hlo = tf.function(replay.add_fn, jit_compile=True).experimental_get_compiler_ir(*args)(stage="optimized_hlo")
    frames_shape = "u8[1,300,84,84]"
    assert frames_shape in hlo
    assert not [line for line in hlo.splitlines() if frames_shape in line and " copy(" in line]


@pytest.mark.parametrize("history", [1, 4])
def test_beginning_again_mid_episode_cuts_that_episode_off(history):
    # A resumed run whose envs cannot be restored begins new episodes in the middle of old
    # ones: no transition may run from the cut-off episode's last frame into the new one.
    rng = np.random.default_rng(5)
    replay = FrameReplay(40, FRAME, 2, history, seed=1, jit_compile=False)
    reference = FrameReplayReference(40, 2, history)
    play(replay, reference, rng, 7, 0.0)
    play(replay, reference, rng, 5, 0.0)   # begins again, without an episode end
    expected = reference.transitions()
    assert replay.num_transitions() == len(expected) == 2 * (7 + 5)
    _, _, _, _, _, env, logical = (x.numpy() for x in replay.sample(500)[:7])
    assert {(int(e), int(l)) for e, l in zip(env, logical)} == set(expected)


@settings(max_examples=15, deadline=None)
@given(slots=st.integers(8, 14), num_envs=st.integers(1, 3), history=st.sampled_from([1, 4]),
       n_step=st.integers(2, 4), steps=st.integers(1, 40), end_probability=st.sampled_from([0.0, 0.2, 0.5]),
       seed=st.integers(0, 2**16))
def test_n_step_windows_are_exactly_the_reference_ones(slots, num_envs, history, n_step, steps, end_probability,
                                                        seed):
    # Each sampled window against the reference's, walked through each episode's own lists:
    # cut at a termination or at its episode's end, never into the next episode, and
    # sampled only once written; across wrap-around of rings of 8–14 slots.
    rng = np.random.default_rng(seed)
    replay = FrameReplay(slots, FRAME, num_envs, history, seed=seed, jit_compile=False, n_step=n_step, discount=0.9)
    reference = FrameReplayReference(slots, num_envs, history, n_step=n_step, discount=0.9)
    play(replay, reference, rng, steps, end_probability)
    expected = reference.transitions()
    assert replay.num_transitions() == len(expected)
    if not expected:
        return
    obs, action, reward, next_obs, terminated, env, logical, discount = (x.numpy() for x in replay.sample(600)[:8])
    seen = set()
    for i in range(len(env)):
        key = (int(env[i]), int(logical[i]))
        assert key in expected, f"sampled {key}, which the reference cannot sample"
        ref_obs, ref_action, ref_return, ref_next, ref_terminated, ref_discount = expected[key]
        np.testing.assert_array_equal(obs[i], ref_obs)
        np.testing.assert_array_equal(next_obs[i], ref_next)
        assert (action[i], terminated[i]) == (ref_action, ref_terminated)
        np.testing.assert_allclose(reward[i], ref_return, rtol=0, atol=1e-12)   # float32 rewards, summed in float64
        np.testing.assert_allclose(discount[i], ref_discount, rtol=1e-12)
        seen.add(key)
    assert seen == set(expected)


@pytest.mark.parametrize("num_envs,slots,history,n_step", [(1, 9, 4, 1), (2, 12, 2, 3), (3, 10, 4, 2)])
def test_prioritized_draws_are_valid_starts_in_proportion_to_priority(num_envs, slots, history, n_step):
    # Every valid start (the reference's) is drawn, nothing else is, and frequencies follow the
    # priorities set from known errors (χ², fixed seed), across wrap-around.
    import tensorflow as tf
    rng = np.random.default_rng(slots)
    replay = FrameReplay(slots, FRAME, num_envs, history, seed=2, jit_compile=False, n_step=n_step, discount=0.9,
                         prioritized=True, priority_exponent=0.7)
    reference = FrameReplayReference(slots, num_envs, history, n_step=n_step, discount=0.9)
    play(replay, reference, rng, 3 * slots, 0.25)
    expected = reference.transitions()
    assert expected
    keys = sorted(expected)
    leaves = np.array([env * slots + logical % slots for env, logical in keys])
    # Before any update, each valid start has been given the largest priority (1: none learned yet).
    held = replay.priorities.priorities_fn(tf.constant(leaves, tf.int32)).numpy()
    np.testing.assert_array_equal(held, 1.0)
    errors = rng.uniform(0.1, 3.0, len(keys))
    replay.priorities.update_from_errors_fn(tf.constant(leaves, tf.int32), tf.constant(errors))
    priority = (errors + 1e-6) ** 0.7
    counts = dict.fromkeys(keys, 0)
    for _ in range(10):
        sample = replay.sample(1000, importance_exponent=0.6)
        env, logical, weight = sample.env.numpy(), sample.slot.numpy(), sample.weight.numpy()
        drawn_priority = np.array([priority[keys.index((int(e), int(l)))] for e, l in zip(env, logical)])
        np.testing.assert_allclose(weight, drawn_priority ** -0.6 / (drawn_priority ** -0.6).max(), rtol=1e-6)
        for e, l in zip(env.tolist(), logical.tolist()):
            counts[(e, l)] += 1   # a KeyError: a start the reference cannot sample
        np.testing.assert_array_equal(sample.obs[:5].numpy(), [expected[(int(e), int(l))][0]
                                                              for e, l in zip(env[:5], logical[:5])])
    observed = np.array([counts[key] for key in keys])
    expected_counts = priority / priority.sum() * observed.sum()
    chi2 = float(np.sum((observed - expected_counts) ** 2 / expected_counts))
    k = len(keys) - 1
    assert chi2 < k * (1 - 2 / (9 * k) + 3.09 * np.sqrt(2 / (9 * k))) ** 3, (chi2, k)
