"""K seeds as one batch (rawdqn/engine/seed_axis.py): the step body traced once, run for all K.

Compared against each module run on its own: a toy module whose body has every construct the
agents' bodies use (assignments, scatters, a shared condition, a loop with a shared count, a loop
and a branch whose conditions differ by seed, keyed stateless draws), then the on-device agents
against single-seed runs of the same seeds.
"""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import control
from rawdqn.config import DQNConfig
from rawdqn.engine.seed_axis import SeedAxis
from rawdqn.ondevice import OnDeviceTrainer, preset


class Toy(tf.Module):
    """State: a shared counter, per-seed values, a buffer written row by row; a seed of its own."""

    def __init__(self, seed):
        super().__init__()
        self.seed = seed
        self.count = tf.Variable(0, dtype=tf.int64)
        self.x = tf.Variable(tf.fill([3], tf.constant(float(seed), tf.float64)))
        self.buffer = tf.Variable(tf.zeros([4, 3], tf.float64))
        self.draws = tf.Variable(0, dtype=tf.int32)

    def step_fn(self):
        key = tf.stack([self.seed + 11, self.draws])
        self.draws.assign_add(1)
        noise = tf.random.stateless_uniform([3], seed=key, dtype=tf.float64)
        # int64 indices, as the frame replay's (pfor's own scatter rule takes int32 only)
        self.buffer.scatter_nd_update([[self.count % 4]], (self.x + noise)[None])
        self.count.assign_add(1)

        def grow():   # a loop every seed runs alike (its count is shared), assigning state
            def body(i):
                self.x.assign(self.x * 1.5 + noise)
                return (i + 1,)
            return control.while_loop(lambda i: i < self.count % 3 + 1, body, (tf.constant(0, tf.int64),))[0]
        control.cond(self.count % 2 == 0, grow, lambda: tf.constant(0, tf.int64))
        # A loop and a branch whose conditions differ by seed (pure: values in, values out).
        halvings = tf.while_loop(lambda n, v: tf.reduce_max(v) > 2.0 + n, lambda n, v: (n + 1, v / 2.0),
                                 (tf.constant(0.0, tf.float64), self.x.read_value()))[0]
        sign = tf.cond(tf.reduce_sum(self.x) > 10.0, lambda: tf.constant(-1.0, tf.float64),
                       lambda: tf.constant(1.0, tf.float64))
        self.x.assign(self.x * sign)
        return halvings, noise


def shared(toy):
    return [toy.count, toy.draws]


def test_a_batched_body_equals_each_module_run_alone():
    steps, seeds = 6, (3, 4, 9)
    alone = []
    for seed in seeds:
        toy = Toy(seed)
        body = tf.function(toy.step_fn, jit_compile=True, autograph=False)
        outputs = [[value.numpy() for value in body()] for _ in range(steps)]
        alone.append((outputs, [v.numpy() for v in toy.variables]))

    toys = [Toy(seed) for seed in seeds]
    axis = SeedAxis(toys, shared, xla=True)

    @tf.function(jit_compile=True, autograph=False)
    def batched():
        per_seed, common = axis.read()
        outputs = []
        for _ in range(steps):
            per_seed, common, out = axis.map(lambda toy: toy.step_fn(), per_seed, common)
            outputs.append(out)
        axis.write(per_seed, common)
        return outputs
    outputs = batched()
    for k, (expected_outputs, expected_variables) in enumerate(alone):
        for step in range(steps):
            for got, expected in zip(outputs[step], expected_outputs[step]):
                np.testing.assert_array_equal(got[k].numpy(), expected)
        for got, expected in zip(toys[k].variables, expected_variables):
            np.testing.assert_array_equal(got.numpy(), expected)
    assert len({float(toy.x.numpy()[0]) for toy in toys}) == len(seeds)   # the seeds did differ


def online_theta(trainer):
    return [run.agent.online.theta.numpy().astype(np.float64) for run in trainer.seed_runs]


DQN_SMALL = DQNConfig(total_steps=100_000, hidden=(16,), batch_size=8, replay_capacity=4_096, num_envs=3,
                      learning_starts=24, train_frequency=3, gradient_steps=2, target_update_interval=30,
                      exploration_fraction=0.05, mode="xla")


@pytest.mark.parametrize("algo, dtype", [("dqn", "float64"), ("pqn", "float64"), ("a2c", "float64"),
                                         pytest.param("dqn", "float32", marks=pytest.mark.slow)])
def test_seed_k_of_a_batched_run_is_the_run_of_seed_s_plus_k(algo, dtype):
    """Three seeds as one batch against each seed trained alone: the same episodes (the same
    actions), and θ equal to float rounding after hundreds of updates (the batched matmuls and
    reductions may round differently from one seed's; float64 shows the agreement is rounding)."""
    if algo == "dqn":
        config, iterations = DQN_SMALL, 400
    else:
        config = preset("CartPole-v1", algo).replace(num_envs=3, rollout_steps=8, hidden=(16,))
        iterations = 400
    config = config.replace(dtype=dtype)
    seed, num_seeds = 5, 3
    batched = OnDeviceTrainer("CartPole-v1", config, seed=seed, num_seeds=num_seeds, seed_axis="batched")
    stats = batched.run(iterations)
    assert stats.updates >= 50   # PQN: rollouts, of epochs × minibatches gradient steps each
    for k in range(num_seeds):
        alone = OnDeviceTrainer("CartPole-v1", config, seed=seed + k)
        expected = alone.run(iterations)
        assert stats.episode_ends[k] == expected.episode_ends[0]
        assert (stats.step, stats.updates) == (expected.step, expected.updates)
        tolerance = 1e-9 if dtype == "float64" else 1e-3
        np.testing.assert_allclose(online_theta(batched)[k], online_theta(alone)[0], rtol=0, atol=tolerance)


@pytest.mark.slow
def test_pixel_dqn_seeds_as_a_batch_match_single_runs():
    """MinAtar Breakout on the device: frames, the frame replay's redraws (a loop whose condition
    differs by seed) and the conv network, two seeds as one batch against each alone."""
    config = preset("MinAtar/Breakout-v1").replace(num_envs=4, replay_capacity=2_000, learning_starts=64,
                                                   batch_size=8, convs=((4, 3, 1),), hidden=(16,))
    seed, iterations = 2, 120
    batched = OnDeviceTrainer("MinAtar/Breakout-v1", config, seed=seed, num_seeds=2, seed_axis="batched")
    stats = batched.run(iterations)
    assert stats.updates >= 100
    for k in range(2):
        alone = OnDeviceTrainer("MinAtar/Breakout-v1", config, seed=seed + k)
        expected = alone.run(iterations)
        assert stats.episode_ends[k] == expected.episode_ends[0]
        np.testing.assert_allclose(online_theta(batched)[k], online_theta(alone)[0], rtol=0, atol=1e-5)
