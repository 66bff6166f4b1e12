"""Environment steps per second: the TF envs under XLA against gymnasium.

    python bench/envs.py [--num-envs 1 64 1024 4096] [--steps-per-call 256] [--repeats 5]

Each TF env runs a random policy for K steps per compiled call, inside one
tf.while_loop; compile time is measured apart (the first call), the outputs are
copied to the host before the clock stops, and the median of several timed
calls is reported. gymnasium's single env (and its numpy vector env where one is
registered) runs the same random policy in the same process for the ratio.

On a machine shared with other work, wall-clock rates swing with the load, so
each rate also comes as steps per CPU-second of this process (all its threads),
which the neighbours disturb much less; the load average is printed with them.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rawdqn  # noqa: E402,F401  (first: it imports TensorFlow without the CUDA start-up noise)
import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rawdqn import envs  # noqa: E402
from rawdqn.gym_env import EnvError, register_family  # noqa: E402


def make_rollout(env, num_envs, steps_per_call):
    """A compiled call running steps_per_call random-policy steps of num_envs envs.

    Returns (state, obs, total_reward, episodes_ended) so nothing is dead code.
    """

    @tf.function(jit_compile=True)
    def rollout(state, seed, call_index):
        def body(t, state, total_reward, episodes):
            # One seed per step from (call, step); action and reset draws use
            # the two halves of a split.
            step_seed = tf.random.experimental.stateless_fold_in(
                seed, call_index * steps_per_call + t, alg="philox"
            )
            action_seed, env_seed = tf.unstack(
                tf.random.experimental.stateless_split(step_seed, 2, alg="philox")
            )
            action = env.sample_actions(action_seed, num_envs)
            result = env.step(state, action, env_seed)
            done = tf.logical_or(result.terminated, result.truncated)
            return (
                t + 1,
                result.state,
                total_reward + tf.reduce_sum(result.reward),
                episodes + tf.reduce_sum(tf.cast(done, tf.int32)),
            )

        _, state, total_reward, episodes = tf.while_loop(
            lambda t, *_: t < steps_per_call,
            body,
            (tf.constant(0), state, tf.zeros([], env.dtype), tf.constant(0)),
        )
        return state, total_reward, episodes

    return rollout


def timed(run, steps):
    """(steps per wall second, steps per CPU second) of one call of run()."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return steps / (time.perf_counter() - wall), steps / max(time.process_time() - cpu, 1e-9)


def medians(rates):
    """Medians of a list of (wall rate, cpu rate) pairs."""
    return tuple(statistics.median(column) for column in zip(*rates))


def bench_tf(env_id, num_envs, steps_per_call, repeats):
    """(compile seconds, median steps/s, median steps/CPU-s) for one TF env."""
    env = envs.make(env_id)
    seed = tf.constant([0, 1], tf.int32)
    state, _ = env.reset(seed, num_envs)
    rollout = make_rollout(env, num_envs, steps_per_call)

    start = time.perf_counter()
    state, total_reward, episodes = rollout(state, seed, tf.constant(0))
    total_reward.numpy()
    compile_seconds = time.perf_counter() - start

    def call(index):
        nonlocal state
        state, total_reward, episodes = rollout(state, seed, tf.constant(index))
        # Force every output to the host before stopping the clock.
        state.physics.numpy(), state.steps.numpy(), total_reward.numpy(), episodes.numpy()

    rates = [timed(lambda: call(index), num_envs * steps_per_call) for index in range(1, repeats + 1)]
    return (compile_seconds, *medians(rates))


def bench_gym_single(env_id, steps, repeats):
    """Median (steps/s, steps/CPU-s) of one gymnasium env (with its wrappers), random policy."""
    register_family(env_id)
    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    num_actions = env.action_space.n
    def run(actions):
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

    rates = [timed(lambda: run(rng.integers(num_actions, size=steps).tolist()), steps)
             for _ in range(repeats)]
    return medians(rates)


def bench_gym_vector(env_id, num_envs, steps, repeats):
    """Median (steps/s, steps/CPU-s) of gymnasium's numpy vector env, None where none is registered."""
    if gym.spec(env_id).vector_entry_point is None:
        return None
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    def run(actions):
        for action in actions:
            env.step(action)

    rates = [timed(lambda: run(rng.integers(env.single_action_space.n, size=(steps, num_envs))),
                   num_envs * steps) for _ in range(repeats)]
    env.close()
    return medians(rates)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=envs.available())
    parser.add_argument("--num-envs", nargs="+", type=int, default=[1, 64, 1024, 4096])
    parser.add_argument("--steps-per-call", type=int, default=256, help="K, steps per compiled call")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--gym-steps", type=int, default=5000, help="steps per timed gymnasium run")
    args = parser.parse_args(argv)

    print(f"tensorflow {tf.__version__}, gymnasium {gym.__version__}, {os.cpu_count()} cpus, "
          f"K = {args.steps_per_call}, median of {args.repeats}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print("rates in env steps per wall second, and [per CPU-second of this process]")
    header = (f"{'env':<19} {'N':>5} {'compile s':>9} {'TF steps/s':>11} {'[TF /CPU-s]':>12} "
              f"{'gym vec/s':>10} {'[vec /CPU-s]':>12} {'TF/vec':>7} {'TF/gym':>7}")
    print(header)
    print("-" * len(header))
    for env_id in args.envs:
        try:
            single, single_cpu = bench_gym_single(env_id, args.gym_steps, args.repeats)
        except EnvError as error:   # MinAtar's reference needs the minatar extra
            print(f"{env_id:<19} skipped: {error}")
            continue
        print(f"{env_id:<19} {'gym':>5} {'':>9} {single:>11,.0f} [{single_cpu:>10,.0f}]"
              "   gymnasium single env, wrappers on")
        for num_envs in args.num_envs:
            compile_seconds, rate, rate_cpu = bench_tf(env_id, num_envs, args.steps_per_call, args.repeats)
            vector = bench_gym_vector(env_id, num_envs, max(50, args.gym_steps // num_envs), args.repeats)
            if vector:
                vector_text = f"{vector[0]:>10,.0f} [{vector[1]:>10,.0f}] {rate / vector[0]:>7.1f}"
            else:
                vector_text = f"{'-':>10} {'-':>12} {'-':>7}"
            print(f"{env_id:<19} {num_envs:>5} {compile_seconds:>9.2f} {rate:>11,.0f} [{rate_cpu:>10,.0f}] "
                  f"{vector_text} {rate / single:>7.1f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")

if __name__ == "__main__":
    main()
