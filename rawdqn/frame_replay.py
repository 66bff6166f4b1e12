"""A replay of pixel frames that stores each frame once and stacks them when sampling.

An Atari observation is the last `history` frames (4 × 84 × 84). Storing stacks would
hold every frame 2·history times (in obs and next_obs of `history` transitions); here
each environment has a ring of S slots, one frame per slot, written in order:

    slot:    f_0  f_1  …  f_T   g_0  g_1  …          (f: one episode, g: the next)
    step:     0    1   …   T     0    1   …          (steps since the episode's reset)
    final:    0    0   …   1     0    0   …          (f_T: the episode's last frame)

Transition t of an episode starts at the slot of f_t: its action, reward and
`terminated` are stored there, and

    obs      = [f_{t−h+1}, …, f_t]        next_obs = [f_{t−h+2}, …, f_{t+1}]

so a truncated episode bootstraps from its true final frame f_T. Frames from before the
episode's reset are never stacked in: those positions are zeros (pad="zeros", Dopamine's
convention) or the episode's first frame repeated (pad="repeat", gymnasium's
FrameStackObservation). An episode of T transitions takes T + 1 slots, so S slots hold
S·(1 − 1/(T+1)) transitions.

A slot L (counted since the run began, L mod S in the ring) starts a transition that can
be sampled iff it is not an episode's last frame, its next slot is written, and no frame
of its stack has been overwritten: L − min(h − 1, step_L) ≥ written − S. `sample` draws
(env, L) uniformly over those by rejection: draws outside them are redrawn, so each valid
transition is equally likely (tested against a NumPy reference in tests/test_frame_replay.py).

With n_step > 1 a sample is the n-step window of transitions L, L+1, … (bellman.n_step_window),
cut where a transition is terminated or its next slot is an episode's last frame; next_obs is
the stack ending at the window's last next frame. A start is valid only once its window is
written: up to its cut, or all n transitions.

With `prioritized` (Schaul et al. 2016, proportional) each (env, slot) is a leaf of a SumTree:
a slot's priority is 0 while it cannot start a transition (just written, an episode's last
frame, its window incomplete) and the largest so far once it can; draws are in proportion
to priority, and the few starts whose stack an overwrite has since cut are redrawn (their
priority is dropped as their slot is written again). Importance weights are P(i)^−β over the
batch's largest, the form replay.ReplayBuffer's docstring gives (the M and Σ p cancel).
"""
import collections

import numpy as np
import tensorflow as tf

from rawdqn import bellman
from rawdqn.engine.kernel import compile_kernel
from rawdqn.sum_tree import Priorities

PADDINGS = ("zeros", "repeat")
MAX_REDRAWS = 10_000   # a cap on rejection rounds per sample, so a program can never spin forever

# A sample: obs and next_obs [B, H, W, history · C] uint8; env and slot (logical) of each start;
# discount γ^m with n_step > 1; weight and index (its SumTree leaf) when prioritized; else None.
FrameSample = collections.namedtuple(
    "FrameSample", "obs action reward next_obs terminated env slot discount weight index", defaults=[None] * 3)


def input_shape_of(frame_shape, history):
    """A stack of `history` frames [H, W] or [H, W, C]: (H, W, history · C), C = 1 for [H, W]."""
    channels = frame_shape[2] if len(frame_shape) == 3 else 1
    return (*frame_shape[:2], history * channels)


class FrameReplay(tf.Module):
    """`num_envs` rings of `slots` frames [height, width] (uint8) with each slot's action,
    reward, terminated, final flag and step in its episode (module docstring)."""

    def __init__(self, slots, frame_shape, num_envs=1, history=4, pad="zeros", seed=0,
                 jit_compile=True, n_step=1, discount=None, prioritized=False, priority_exponent=0.6,
                 priority_epsilon=1e-6, name=None):
        super().__init__(name=name)
        if int(slots) < history + 1:
            raise ValueError(f"a frame replay needs at least history + 1 = {history + 1} slots; got {slots}")
        if pad not in PADDINGS:
            raise ValueError(f"pad must be one of {PADDINGS}; got {pad!r}")
        self.slots, self.num_envs, self.history = int(slots), int(num_envs), int(history)
        self.n_step, self.discount = int(n_step), discount
        if self.n_step < 1 or (self.n_step > 1 and discount is None) or self.slots < self.n_step + 1:
            raise ValueError(f"an n-step frame replay needs 1 <= n_step < slots and a discount; "
                             f"got n_step={n_step}, slots={slots}, discount={discount}")
        self.frame_shape, self.pad, self.seed = tuple(int(d) for d in frame_shape), pad, int(seed)
        shape = [self.num_envs, self.slots]
        self.frames = tf.Variable(tf.zeros(shape + list(self.frame_shape), tf.uint8), name="frames")
        self.action = tf.Variable(tf.zeros(shape, tf.int32), name="action")
        self.reward = tf.Variable(tf.zeros(shape, tf.float32), name="reward")
        self.terminated = tf.Variable(tf.zeros(shape, tf.int8), name="terminated")
        self.final = tf.Variable(tf.zeros(shape, tf.int8), name="final")
        self.step = tf.Variable(tf.zeros(shape, tf.int32), name="step")
        self.written = tf.Variable(tf.zeros([self.num_envs], tf.int64), name="written")   # slots, per env
        self.draws = tf.Variable(0, dtype=tf.int32, name="draws")
        self.prioritized = bool(prioritized)
        if self.prioritized:   # leaf env · slots + slot
            self.priorities = Priorities(self.num_envs * self.slots, priority_exponent, priority_epsilon,
                                         name="priorities")
        mode = "xla" if jit_compile else "function"
        self._begin = compile_kernel(self.begin_fn, mode)
        self._add = compile_kernel(self.add_fn, mode)
        self._sample = compile_kernel(self.sample_fn, mode)

    # --- writing ---------------------------------------------------------------------
    def ring_index(self, logical):
        """[env, slot] pairs for logical slots [N] (env i's slot logical[i] mod S)."""
        return tf.stack([tf.range(self.num_envs, dtype=tf.int64), tf.math.floormod(logical, self.slots)], axis=1)

    def write_slots(self, index, frame, step, final):
        """Scatter (frame, step in episode, final flag) into the [env, slot] pairs `index`."""
        self.frames.scatter_nd_update(index, tf.cast(frame, tf.uint8))
        self.step.scatter_nd_update(index, tf.cast(step, tf.int32))
        self.final.scatter_nd_update(index, tf.cast(final, tf.int8))

    def begin(self, frames):
        """The first frame of every env's first episode, [N, height, width]."""
        self._begin(tf.convert_to_tensor(frames, tf.uint8))

    def begin_fn(self, frames):
        """Also after an episode cut short (a resumed run whose envs start anew): the slot
        before is marked final, so no transition runs from it into this episode."""
        previous = self.ring_index(self.written - 1)
        self.final.scatter_nd_update(previous, tf.where(self.written > 0, tf.ones([self.num_envs], tf.int8),
                                                        tf.gather_nd(self.final.read_value(), previous)))
        zeros = tf.zeros([self.num_envs], tf.int32)
        self.write_slots(self.ring_index(self.written), frames, zeros, zeros)
        if self.prioritized:
            self.set_leaves(self.ring_index(self.written), tf.zeros([self.num_envs], tf.float64))
        self.written.assign_add(tf.ones_like(self.written))

    def add(self, action, reward, terminated, next_frame, ended, reset_frame):
        """One step of the N envs: a_t, r_t, terminated [N]; f_{t+1} [N, H, W] (the true last
        frame where an episode ended); ended [N] (terminated or truncated); and the first
        frame of the next episode where one ended (ignored elsewhere)."""
        self._add(tf.convert_to_tensor(action, tf.int32), tf.convert_to_tensor(reward, tf.float32),
                  tf.convert_to_tensor(terminated, tf.bool), tf.convert_to_tensor(next_frame, tf.uint8),
                  tf.convert_to_tensor(ended, tf.bool), tf.convert_to_tensor(reset_frame, tf.uint8))

    def add_fn(self, action, reward, terminated, next_frame, ended, reset_frame):
        current = self.ring_index(self.written - 1)   # the slot of f_t
        self.action.scatter_nd_update(current, tf.cast(action, tf.int32))
        self.reward.scatter_nd_update(current, tf.cast(reward, tf.float32))
        self.terminated.scatter_nd_update(current, tf.cast(terminated, tf.int8))
        # f_{t+1} goes to the next slot; where an episode ended, the next one's first frame to
        # the slot after. One scatter per variable (a second scatter after a read made XLA copy
        # the whole ring): an env that did not end writes its f_{t+1} row twice instead.
        ended = tf.cast(ended, tf.bool)
        next_index, after_index = self.ring_index(self.written), self.ring_index(self.written + 1)
        next_step = tf.gather_nd(self.step.read_value(), current) + 1
        zeros = tf.zeros([self.num_envs], tf.int32)
        self.write_slots(tf.concat([next_index, tf.where(ended[:, None], after_index, next_index)], 0),
                         tf.concat([next_frame, tf.where(self.per_frame(ended), reset_frame, next_frame)], 0),
                         tf.concat([next_step, tf.where(ended, zeros, next_step)], 0),
                         tf.concat([tf.cast(ended, tf.int32), zeros], 0))
        written_before = self.written.read_value()
        self.written.assign_add(1 + tf.cast(ended, tf.int64))
        if self.prioritized:
            self.prioritize_new_fn(next_index, after_index, written_before)

    # --- priorities ------------------------------------------------------------------
    def leaf(self, index):
        """SumTree leaves of [env, slot] pairs [B, 2]."""
        return tf.cast(index[:, 0] * self.slots + index[:, 1], tf.int32)

    def set_leaves(self, index, priorities):
        self.priorities.update_fn(self.leaf(index), priorities)

    def prioritize_new_fn(self, next_index, after_index, written_before):
        """The slots just written start nothing yet (p = 0); the starts this step completes —
        the last n before it, where their window is now written — get the largest p so far."""
        zeros = tf.zeros([self.num_envs], tf.float64)
        self.set_leaves(tf.concat([next_index, after_index], 0), tf.concat([zeros, zeros], 0))
        env = tf.range(self.num_envs, dtype=tf.int32)
        for back in range(self.n_step):
            logical = written_before - 1 - back
            index = self.ring_index(logical)
            current = self.priorities.priorities_fn(self.leaf(index))
            newly = self.can_start(env, logical) & (current == 0)
            self.set_leaves(index, tf.where(newly, tf.broadcast_to(self.priorities.max_priority, tf.shape(current)),
                                            current))

    # --- sampling --------------------------------------------------------------------
    def sample(self, batch_size, importance_exponent=1.0):
        """A FrameSample of `batch_size` transitions drawn uniformly with replacement (prioritized:
        in proportion to priority, weighted with β = importance_exponent). With n_step > 1 the
        reward is the window's Σ γ^k r_k (float64)."""
        if self.num_transitions() == 0:
            raise ValueError("cannot sample from a frame replay without a complete transition; add steps first")
        if self.prioritized:
            return self._sample(tf.constant(int(batch_size)), tf.constant(float(importance_exponent), tf.float64))
        return self._sample(tf.constant(int(batch_size)))

    def can_start(self, env, logical):
        """Whether logical slot `logical` of `env` starts a transition that can be sampled."""
        written = tf.gather(self.written, env)
        index = tf.stack([tf.cast(env, tf.int64), tf.math.floormod(logical, self.slots)], axis=1)
        back = tf.minimum(tf.cast(tf.gather_nd(self.step.read_value(), index), tf.int64), self.history - 1)
        valid = ((logical >= 0) & (logical + 1 < written) & (logical - back >= written - self.slots)
                 & (tf.gather_nd(self.final.read_value(), index) == 0))
        if self.n_step == 1:
            return valid
        # The window is written up to its first cut (or through all n transitions).
        later = logical[:, None] + tf.range(self.n_step, dtype=tf.int64)[None, :]   # transition k's slot
        terminated, ends = self.window_flags(env, later)
        blocked = (terminated | ends) | (later + 1 >= written[:, None])
        first_blocked = tf.reduce_min(tf.where(blocked, tf.range(self.n_step, dtype=tf.int64)[None, :],
                                               self.n_step - 1), axis=1)
        return valid & (tf.gather(later, first_blocked, axis=1, batch_dims=1) + 1 < written)

    def window_flags(self, env, later):
        """For the slots `later` [B, n] of each env: (terminated there, its next slot an episode's last frame)."""
        env = tf.broadcast_to(tf.cast(env, tf.int64)[:, None], tf.shape(later))
        here = tf.stack([env, tf.math.floormod(later, self.slots)], axis=-1)
        after = tf.stack([env, tf.math.floormod(later + 1, self.slots)], axis=-1)
        return (tf.gather_nd(self.terminated.read_value(), here) != 0,
                tf.gather_nd(self.final.read_value(), after) != 0)

    def sample_fn(self, batch_size, importance_exponent=None):
        batch_size = tf.convert_to_tensor(batch_size, tf.int32)
        # Draws over the last `span` slots of every env cover every valid start uniformly.
        span = tf.maximum(tf.minimum(tf.constant(self.slots, tf.int64), tf.reduce_max(self.written)), 1)

        def draw(round_number):
            seed = tf.stack([self.seed, self.draws + round_number])
            if self.prioritized:   # a leaf in proportion to priority, then its slot's logical index
                total = self.priorities.total_fn()
                leaf = self.priorities.find_fn(tf.random.stateless_uniform([batch_size], seed=seed, dtype=tf.float64) * total)
                env, ring = leaf // self.slots, tf.cast(leaf % self.slots, tf.int64)
                oldest = tf.gather(self.written, env) - self.slots
                return env, oldest + tf.math.floormod(ring - oldest, self.slots)
            pick = tf.random.stateless_uniform([batch_size], seed=seed, minval=0, maxval=self.num_envs * span,
                                               dtype=tf.int64)   # (env, offset) uniform over N × span
            env = tf.cast(pick // span, tf.int32)
            return env, tf.gather(self.written, env) - span + pick % span

        def redraw(round_number, env, logical, accepted):
            new_env, new_logical = draw(round_number)
            return (round_number + 1, tf.where(accepted, env, new_env), tf.where(accepted, logical, new_logical),
                    accepted | self.can_start(new_env, new_logical))

        env, logical = draw(0)
        rounds, env, logical, _ = tf.while_loop(
            lambda round_number, env, logical, accepted: (round_number < MAX_REDRAWS)
            & tf.logical_not(tf.reduce_all(accepted)),
            redraw, (tf.constant(1, tf.int32), env, logical, self.can_start(env, logical)))
        self.draws.assign_add(rounds)
        index = tf.stack([tf.cast(env, tf.int64), tf.math.floormod(logical, self.slots)], axis=1)
        sample = self.transitions_at(env, logical, index)
        if not self.prioritized:
            return sample
        leaf = self.leaf(index)
        weight = tf.pow(self.priorities.priorities_fn(leaf), -tf.cast(importance_exponent, tf.float64))
        return sample._replace(weight=tf.cast(weight / tf.reduce_max(weight), tf.float32), index=leaf)

    def transitions_at(self, env, logical, index):
        """The FrameSample of the starts (env, logical), [env, slot] `index`."""
        if self.n_step > 1:
            later = logical[:, None] + tf.range(self.n_step, dtype=tf.int64)[None, :]
            terminated, ends = self.window_flags(env, later)
            rewards = tf.gather_nd(self.reward.read_value(), tf.stack(
                [tf.broadcast_to(tf.cast(env, tf.int64)[:, None], tf.shape(later)), tf.math.floormod(later, self.slots)], -1))
            window_return, bootstrap_discount, last = bellman.n_step_window(
                tf.cast(rewards, tf.float64), terminated, ends, self.discount)
            last = tf.cast(last, tf.int64)
            return FrameSample(self.stack(env, logical), tf.gather_nd(self.action.read_value(), index), window_return,
                               self.stack(env, logical + last + 1),
                               tf.cast(tf.gather(terminated, last, axis=1, batch_dims=1), tf.float32), env, logical,
                               bootstrap_discount)
        return FrameSample(self.stack(env, logical), tf.gather_nd(self.action.read_value(), index),
                           tf.gather_nd(self.reward.read_value(), index), self.stack(env, logical + 1),
                           tf.cast(tf.gather_nd(self.terminated.read_value(), index), tf.float32), env, logical)

    def per_frame(self, mask):
        """A [B] mask shaped to select whole frames in tf.where."""
        return tf.reshape(mask, [-1] + [1] * len(self.frame_shape))

    def stack(self, env, newest):
        """The frames of slots newest − h + 1 … newest, oldest first, as the network's input:
        [B, H, W, history] for [H, W] frames, [B, H, W, history · C] for [H, W, C] frames
        (frame k's channels at k·C … k·C + C − 1). Frames from before the episode's reset
        are zeros or its first frame (pad)."""
        env = tf.cast(env, tf.int64)
        step = tf.cast(tf.gather_nd(self.step.read_value(), tf.stack([env, tf.math.floormod(newest, self.slots)], 1)), tf.int64)
        first = tf.gather_nd(self.frames.read_value(), tf.stack([env, tf.math.floormod(newest - step, self.slots)], 1))
        layers = []
        for back in range(self.history - 1, -1, -1):
            frame = tf.gather_nd(self.frames.read_value(), tf.stack([env, tf.math.floormod(newest - back, self.slots)], 1))
            pad = first if self.pad == "repeat" else tf.zeros_like(frame)
            layers.append(tf.where(self.per_frame(back <= step), frame, pad))
        return tf.stack(layers, axis=-1) if len(self.frame_shape) == 2 else tf.concat(layers, axis=-1)

    # --- what it holds ---------------------------------------------------------------
    def num_transitions(self):
        """How many transitions can be sampled now (computed on the host)."""
        written = self.written.numpy()
        step, final, terminated = self.step.numpy(), self.final.numpy(), self.terminated.numpy()
        total = 0
        for env in range(self.num_envs):
            logical = np.arange(max(0, written[env] - self.slots), written[env] - 1)
            ring = logical % self.slots
            back = np.minimum(step[env, ring], self.history - 1)
            valid = (final[env, ring] == 0) & (logical - back >= written[env] - self.slots)
            if self.n_step > 1:
                valid &= self.windows_written(logical, written[env], terminated[env], final[env])
            total += int(np.sum(valid))
        return total

    def windows_written(self, starts, written, terminated, final):
        """Whether each start's n-step window is written up to its cut (host side; one env's
        logical start slots [M], its slot count written, its rings of terminated and final flags):
        going through k = 0 … n − 1, a window whose slot start + k has no next slot yet is not
        written; one cut at k (terminated there, or its next slot a last frame) is."""
        undecided, written_so_far = np.ones(len(starts), bool), np.zeros(len(starts), bool)
        for k in range(self.n_step):
            slot = starts + k
            unwritten = slot + 1 >= written
            cut = (terminated[slot % self.slots] != 0) | (final[(slot + 1) % self.slots] != 0)
            written_so_far |= undecided & ~unwritten & cut
            undecided &= ~unwritten & ~cut
        return written_so_far | undecided

    @property
    def size(self):
        """num_transitions(): what ReplayBuffer calls its size."""
        return self.num_transitions()

    def input_shape(self):
        """The shape of one stacked observation: (H, W, history · C)."""
        return input_shape_of(self.frame_shape, self.history)

    @property
    def nbytes(self):
        """Bytes held on the device: frames, plus 14 bytes of per-slot fields."""
        return sum(v.shape.num_elements() * v.dtype.size for v in self.variables)   # tf.size is int32: it overflows at 2³¹
