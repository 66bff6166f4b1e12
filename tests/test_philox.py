"""The batched Philox (rawdqn/engine/philox.py) against TensorFlow's own stateless RNG ops, seed by
seed: the same bits on TensorFlow's kernels and under XLA, for every seed, shape and dtype drawn;
and the generator itself against the Philox-4x32-10 known-answer vectors of Random123."""
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings, strategies as st

from rawdqn.engine import philox

PHILOX = tf.constant(1)   # RNG_ALG_PHILOX
FORMS = {"kernels": dict(jit_compile=False), "xla": dict(jit_compile=True)}


def _words(values):
    return tuple(tf.constant(np.array(values, np.uint64)) for values in values)


def test_the_generator_gives_random123s_known_answers():
    # Random123's kat_vectors, philox4x32 with 10 rounds: (counter, key) → output.
    cases = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for counter, key, expected in cases:
        got = philox.philox(_words(counter), _words(key))
        assert tuple(int(word.numpy()) for word in got) == expected


def draw(kind, seed, shape, dtype, bounds, alg=PHILOX):
    """What one seed's ops draw: tf.random's path (GetKeyCounter, then the V2 op with `alg`)."""
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    if kind == "uniform":
        return tf.raw_ops.StatelessRandomUniformV2(shape=shape, key=key, counter=counter, alg=alg, dtype=dtype)
    if kind == "int":
        low, high = (tf.constant(bound, dtype) for bound in bounds)
        return tf.raw_ops.StatelessRandomUniformIntV2(shape=shape, key=key, counter=counter, alg=alg,
                                                      minval=low, maxval=high)
    return tf.raw_ops.StatelessRandomUniformFullIntV2(shape=shape, key=key, counter=counter, alg=alg, dtype=dtype)


def batched(kind, seeds, shape, dtype, bounds, xla):
    key, counter = philox.key_counter(seeds, xla)
    if kind == "uniform":
        return philox.uniform(shape, key, counter, dtype, xla)
    if kind == "int":
        low, high = (tf.constant(bound, dtype) for bound in bounds)
        return philox.uniform_int(shape, key, counter, low, high, dtype)
    return philox.uniform_full_int(shape, key, counter, dtype)


DRAWS = st.sampled_from([("uniform", tf.float32), ("uniform", tf.float64), ("int", tf.int32), ("int", tf.int64),
                         ("full", tf.int32), ("full", tf.uint32), ("full", tf.int64), ("full", tf.uint64)])


@pytest.mark.parametrize("form", sorted(FORMS))
@settings(max_examples=12, deadline=None)
@given(draw_kind=DRAWS, seed_dtype=st.sampled_from([tf.int32, tf.int64]),
       seeds=st.lists(st.tuples(st.integers(-2 ** 31, 2 ** 31 - 1), st.integers(-2 ** 31, 2 ** 31 - 1)),
                      min_size=1, max_size=4),
       shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       low=st.integers(-1000, 1000), span=st.integers(1, 2 ** 31 - 1001), alg=st.sampled_from([1, 3]))
def test_k_seeds_draw_in_one_computation_what_each_seeds_own_op_draws(form, draw_kind, seed_dtype, seeds, shape,
                                                                       low, span, alg):
    """Philox (1) or the automatic choice (3), which is Philox on a CPU or GPU."""
    kind, dtype = draw_kind
    bounds = (low, low + span)
    seeds = tf.constant(seeds, seed_dtype)
    one = tf.function(lambda seed: draw(kind, seed, shape, dtype, bounds, tf.constant(alg)), autograph=False,
                      **FORMS[form])
    expected = np.stack([one(seeds[k]).numpy() for k in range(seeds.shape[0])])
    all_k = tf.function(lambda s: batched(kind, s, shape, dtype, bounds, form == "xla"), autograph=False,
                        **FORMS[form])
    np.testing.assert_array_equal(all_k(seeds).numpy(), expected)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_int64_seeds_beyond_32_bits_and_a_counter_that_carries(form):
    """Seeds past 2³¹ (XLA keeps their low 32 bits; the kernels all 64), and a counter whose low
    64 bits wrap inside one draw: block i is Philox(counter + i) on all 128 bits."""
    xla = form == "xla"
    seeds = tf.constant([[2 ** 33 + 7, 123], [7, -(2 ** 40) - 5]], tf.int64)
    one = tf.function(lambda seed: draw("full", seed, [9], tf.uint32, None), autograph=False, **FORMS[form])
    all_k = tf.function(lambda s: batched("full", s, [9], tf.uint32, None, xla), autograph=False, **FORMS[form])
    np.testing.assert_array_equal(all_k(seeds).numpy(), np.stack([one(seeds[k]).numpy() for k in range(2)]))
    key = tf.constant([[0x0123456789ABCDEF]], tf.uint64)
    counter = tf.constant([[2 ** 64 - 2, 5]], tf.uint64)   # blocks 0, 1 at high 5; blocks 2, 3 at high 6
    op = tf.function(lambda: tf.raw_ops.StatelessRandomUniformFullIntV2(
        shape=[16], key=key[0], counter=counter[0], alg=PHILOX, dtype=tf.uint32), autograph=False, **FORMS[form])
    words = tf.function(lambda: philox.words(key, counter, 16), autograph=False, **FORMS[form])
    np.testing.assert_array_equal(words().numpy()[0], op().numpy())
