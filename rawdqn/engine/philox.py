"""Philox-4x32-10 in TensorFlow ops, batched over a leading seed axis: the bits that
TensorFlow's stateless RNG ops draw, for K keys in one computation.

pfor has no batched form of a stateless RNG op keyed per seed, so a program of K seeds made
every draw K times (engine/pfor_rules.py). These functions draw once for all K, bit for bit
what seed k's own op draws (tests/test_philox.py holds them to the ops, eager and under XLA):

    (key, counter) = StatelessRandomGetKeyCounter(seed):
        (s0, s1) as 64-bit values (an int32 seed sign-extended; under XLA each seed's low 32
        bits) split into four 32-bit words c, m = Philox(c, SEED_KEY); key = (m0, m1), counter = (0, 0, m2, m3)
    block i = Philox(counter + i, key), 4 words; the blocks fill the output in order
    Philox (Salmon et al. 2011): 10 rounds of
        (c0, c1, c2, c3) ← (hi(B·c2) ⊕ c1 ⊕ k0, lo(B·c2), hi(A·c0) ⊕ c3 ⊕ k1, lo(A·c0)),
        (k0, k1) ← (k0 + W0, k1 + W1)
    floats in [0, 1): 1.m − 1 with m a word's low 23 bits (float64: 52 bits of two words) on
        TensorFlow's kernels, its high 23 (the high 52 of the pair) under XLA
    integers in [lo, hi): lo + bits mod (hi − lo), 64-bit values from two words, low word first

Words are kept in uint64 tensors holding 32 bits, so a product of two words is exact.
"""
import math

import tensorflow as tf

A, B = 0xD2511F53, 0xCD9E8D57          # the multipliers
W0, W1 = 0x9E3779B9, 0xBB67AE85        # the key's increments per round
SEED_KEY = (0x3EC8F720, 0x02461E29)    # the key that scrambles a seed into (key, counter)
WORD = 0xFFFFFFFF


def _u64(value):
    return tf.constant(value, tf.uint64)


def _hi(x):
    return tf.bitwise.right_shift(x, _u64(32))


def _lo(x):
    return tf.bitwise.bitwise_and(x, _u64(WORD))


def _join(low, high):
    """A 64-bit value from two words."""
    return tf.bitwise.bitwise_or(low, tf.bitwise.left_shift(high, _u64(32)))


def philox(counter, key):
    """Philox-4x32-10 of four counter words under two key words (any broadcastable shapes)."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    xor = tf.bitwise.bitwise_xor
    for _ in range(10):
        p0, p1 = _u64(A) * c0, _u64(B) * c2
        c0, c1, c2, c3 = xor(xor(_hi(p1), c1), k0), _lo(p1), xor(xor(_hi(p0), c3), k1), _lo(p0)
        k0, k1 = _lo(k0 + _u64(W0)), _lo(k1 + _u64(W1))
    return c0, c1, c2, c3


def key_counter(seeds, xla):
    """StatelessRandomGetKeyCounter for seeds [K, 2] (int32 or int64): key [K, 1], counter [K, 2], uint64.
    TensorFlow's kernel takes each seed as an int64 (an int32 sign-extended); XLA takes its low
    32 bits, zero-extended."""
    if xla:
        seeds = tf.cast(tf.bitcast(tf.cast(seeds, tf.int32), tf.uint32), tf.uint64)
    else:
        seeds = tf.bitcast(tf.cast(seeds, tf.int64), tf.uint64)
    s0, s1 = seeds[:, 0], seeds[:, 1]
    m0, m1, m2, m3 = philox((_lo(s0), _hi(s0), _lo(s1), _hi(s1)), (_u64(SEED_KEY[0]), _u64(SEED_KEY[1])))
    return _join(m0, m1)[:, None], tf.stack([tf.zeros_like(m2), _join(m2, m3)], axis=1)


def words(key, counter, count):
    """The first `count` words [K, count] (uint64 holding 32 bits) drawn from key [K, 1], counter [K, 2]."""
    blocks = -(-count // 4)
    low, high = counter[:, :1], counter[:, 1:]
    step = tf.constant([list(range(blocks))], tf.uint64)
    moved = low + step                                       # the 128-bit counter + i: carry into the high half
    high = high + tf.cast(moved < low, tf.uint64)
    key = key[:, :1]
    block = philox((_lo(moved), _hi(moved), _lo(high), _hi(high)), (_lo(key), _hi(key)))
    return tf.reshape(tf.stack(block, axis=-1), [-1, 4 * blocks])[:, :count]


def _pairs(bits):
    """Word pairs (2i, 2i + 1) [K, n, 2] of bits [K, 2n]."""
    return tf.reshape(bits, [tf.shape(bits)[0], -1, 2])


def uniform(shape, key, counter, dtype, xla):
    """StatelessRandomUniformV2: [K, *shape] floats in [0, 1), as TensorFlow's kernels make them
    or, with `xla`, as XLA does."""
    count = math.prod(shape)
    if dtype == tf.float32:
        bits = words(key, counter, count)
        mantissa = tf.bitwise.right_shift(bits, _u64(9)) if xla else tf.bitwise.bitwise_and(bits, _u64(0x7FFFFF))
        one_point = tf.bitwise.bitwise_or(tf.cast(mantissa, tf.uint32), tf.constant(0x3F800000, tf.uint32))
        values = tf.bitcast(one_point, tf.float32) - 1.0
    elif dtype == tf.float64:
        pair = _pairs(words(key, counter, 2 * count))
        even, odd = pair[..., 0], pair[..., 1]
        if xla:
            mantissa = tf.bitwise.right_shift(_join(even, odd), _u64(12))
        else:
            mantissa = _join(odd, tf.bitwise.bitwise_and(even, _u64(0xFFFFF)))
        values = tf.bitcast(tf.bitwise.bitwise_or(mantissa, _u64(0x3FF0000000000000)), tf.float64) - 1.0
    else:
        raise ValueError(f"no batched Philox uniform for {dtype!r}")
    return tf.reshape(values, [-1, *shape])


def _integers(shape, key, counter, dtype):
    """Uniform bits [K, count] as uint64: one word each for 32-bit dtypes, two (low first) for 64-bit."""
    count = math.prod(shape)
    if dtype.size == 4:
        return words(key, counter, count)
    pair = _pairs(words(key, counter, 2 * count))
    return _join(pair[..., 0], pair[..., 1])


def uniform_int(shape, key, counter, minval, maxval, dtype):
    """StatelessRandomUniformIntV2 for int32 or int64: [K, *shape] integers lo + bits mod (hi − lo)
    in [minval, maxval); the bounds scalars or [K], one per seed."""
    if dtype not in (tf.int32, tf.int64):
        raise ValueError(f"no batched Philox uniform_int for {dtype!r}")
    # In the dtype's own width, as the ops compute it: a 64-bit remainder costs several 32-bit ones.
    unsigned = tf.uint32 if dtype == tf.int32 else tf.uint64
    low = tf.reshape(tf.cast(minval, dtype), [-1, 1])
    span = tf.bitcast(tf.reshape(tf.cast(maxval, dtype), [-1, 1]) - low, unsigned)
    offset = tf.math.floormod(tf.cast(_integers(shape, key, counter, dtype), unsigned), span)
    return tf.reshape(low + tf.bitcast(offset, dtype), [-1, *shape])   # wrapping, as the ops' lo + offset


def uniform_full_int(shape, key, counter, dtype):
    """StatelessRandomUniformFullIntV2: [K, *shape] integers over the dtype's whole range."""
    bits = _integers(shape, key, counter, dtype)
    unsigned = tf.cast(bits, tf.uint32) if dtype.size == 4 else bits
    return tf.reshape(unsigned if dtype == unsigned.dtype else tf.bitcast(unsigned, dtype), [-1, *shape])
