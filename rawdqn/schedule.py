"""When to explore, learn and sync: the schedule, in closed form, counted on the device.

With t the environment steps done so far, f = train_frequency, g = gradient_steps,
L = learning_starts, C = target_update_interval:

    ε(t)          = ε_start + (ε_end − ε_start) · min(1, t / decay_steps)
    updates(t)    = g · #{u ∈ [L, t) : u mod f = 0} = g · max(0, ⌈t / f⌉ − ⌈L / f⌉)
    syncs(t)      = #{u ∈ [0, t) : u mod C = 0}     = ⌈t / C⌉

Step u (0-based) stores its transition, then makes the updates and the sync that fall at u:
after t steps the loop has made exactly updates(t) updates and syncs(t) syncs, whether the
t steps came one at a time (a gymnasium env) or N at a time (a vector env, the TF envs).
`Schedule` keeps t and what has been done in int64 variables, so a compiled program asks it
what is due and a checkpoint holds it; the functions also take plain Python ints (tests).
"""
import collections
import numbers

import tensorflow as tf


def ceil_div(a, b):
    """⌈a / b⌉ for integers a ≥ 0, b ≥ 1 (tensors or ints)."""
    return (a + b - 1) // b


def epsilon(config, steps, dtype=tf.float64):
    """ε(t) = ε_start + (ε_end − ε_start) · min(1, t / decay_steps) (DQNConfig.exploration_decay_steps):
    a float for a Python step (the host's logs), a tensor of `dtype` for a tensor or list of steps."""
    decay_steps = config.exploration_decay_steps
    on_host = isinstance(steps, numbers.Real)
    if on_host:
        progress = 1.0 if decay_steps <= 0 else min(1.0, steps / decay_steps)
    else:
        steps = tf.cast(steps, tf.float64)
        progress = tf.ones_like(steps) if decay_steps <= 0 else tf.minimum(steps / decay_steps, 1.0)
    value = config.epsilon_start + (config.epsilon_end - config.epsilon_start) * progress
    return value if on_host else tf.cast(value, dtype)


def pqn_total_gradient_steps(config, num_envs):
    """K of PQN's learning-rate decay: the run's rollouts of num_envs × rollout_steps (rounded up)
    × epochs × minibatches."""
    rollouts = max(1, ceil_div(int(config.total_steps), num_envs * int(config.rollout_steps)))
    return rollouts * int(config.epochs) * int(config.minibatches)


def pqn_learning_rate_at(config, step, new_rate=None):
    """PQN: (gradient steps made by env step `step`, the decayed rate they end at: algorithms/
    pqn.learning_rate's α_k), or `new_rate` there (a resumed run that sets --learning-rate)."""
    from rawdqn.algorithms import pqn   # it imports this module
    done = step // (config.num_envs * config.rollout_steps) * config.epochs * config.minibatches
    if new_rate is not None:
        return done, float(new_rate)
    start, rate = config.learning_rate_decay_from or (0, config.learning_rate)
    return done, float(pqn.learning_rate(rate, done, pqn_total_gradient_steps(config, config.num_envs), start))


def importance_exponent(config, steps):
    """β(t) = β_0 + (β_end − β_0) · min(1, t / total_steps): a prioritized replay's importance-weight
    exponent, annealed (to 1, Schaul et al. 2016) by the end of the run, float64."""
    progress = tf.minimum(tf.cast(steps, tf.float64) / float(config.total_steps), 1.0)
    start, end = config.importance_exponent_start, config.importance_exponent_end
    return start + (end - start) * progress


def updates_owed(config, step):
    """g · max(0, ⌈t / f⌉ − ⌈L / f⌉): the updates made by the time `step` steps are done."""
    frequency = config.train_frequency
    phases = ceil_div(step, frequency) - ceil_div(config.learning_starts, frequency)
    # Plain (or NumPy) integers first: the host asks this twice per env step, and tf.is_tensor costs ~30 µs.
    return config.gradient_steps * (max(phases, 0) if isinstance(phases, numbers.Integral) else tf.maximum(phases, 0))


def crosses(interval, done_before, done_steps):
    """Whether going from `done_before` to `done_steps` steps passes a multiple of `interval`
    (0: never). With steps N at a time, a hook every `interval` steps fires here."""
    return bool(interval) and done_steps // interval > done_before // interval


HooksDue = collections.namedtuple("HooksDue", "evaluate log checkpoint finished")


def hooks_due(config, checkpoint_interval, done_before, done_steps, goal=None):
    """Which of the loop's host hooks fall between done_before and done_steps steps: an
    evaluation and a checkpoint where a multiple of their interval is crossed (not at the
    end, `goal`, default total_steps, which has its own), a progress line at its interval
    and at the end. A run counted in updates (total_updates) passes updates for steps."""
    finished = done_steps >= (config.total_steps if goal is None else goal)
    return HooksDue(crosses(config.eval_interval, done_before, done_steps) and not finished,
                    crosses(config.log_interval, done_before, done_steps) or finished,
                    crosses(checkpoint_interval, done_before, done_steps) and not finished, finished)


def syncs_owed(config, step):
    """⌈t / C⌉: the target syncs made by the time `step` steps are done."""
    return ceil_div(step, config.target_update_interval)


Due = collections.namedtuple("Due", "updates syncs tau")


def due(config, step, updates_done, syncs_done):
    """What is owed once `step` steps are done, `updates_done` updates and `syncs_done` syncs made:

        updates = updates(t) − updates_done,    syncs = syncs(t) − syncs_done
        τ' = 1 − (1 − τ)^syncs                  the syncs owed as one θ⁻ ← τ'θ + (1 − τ')θ⁻

    k Polyak syncs with no update between them are one with τ' (τ itself for one, bit for bit;
    1 for copies). The device's Schedule, the host's choice of program and Ape-X's learner all
    ask this: Python ints give ints and a float, tensors give tensors."""
    updates = updates_owed(config, step) - updates_done
    syncs = syncs_owed(config, step) - syncs_done
    if isinstance(syncs, numbers.Integral):
        return Due(updates, syncs, config.tau if syncs == 1 else 1.0 - (1.0 - config.tau) ** syncs)
    tau = tf.constant(config.tau, tf.float64)
    return Due(updates, syncs, tf.where(syncs == 1, tau, 1.0 - tf.pow(1.0 - tau, tf.cast(syncs, tf.float64))))


def nothing_due(config, steps_before, steps_after):
    """Whether going from steps_before to steps_after steps owes no update and no sync."""
    return (updates_owed(config, steps_after) == updates_owed(config, steps_before)
            and syncs_owed(config, steps_after) == syncs_owed(config, steps_before))


class Schedule(tf.Module):
    """The loop's counters on the device: steps done, updates done, syncs done."""

    def __init__(self, config, name=None):
        super().__init__(name=name)
        self.config = config
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.updates_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates_done")
        self.syncs_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="syncs_done")

    def read(self):
        """(step, updates_done, syncs_done) as tensors, for algorithms.dqn.step."""
        return self.step.read_value(), self.updates_done.read_value(), self.syncs_done.read_value()

    def write(self, counters):
        for variable, value in zip((self.step, self.updates_done, self.syncs_done), counters):
            variable.assign(value)
