"""Experience replay: a ring of device-resident tf.Variables.

A transition is (obs, action, reward, next_obs, terminated[, next_legal_mask]).
`next_obs` is always the true observation after the action — for a time-limit
truncation, the final observation, never the one the reset returned.
"""
import collections
import math

import tensorflow as tf

from rawdqn import bellman
from rawdqn.engine.kernel import compile_kernel
from rawdqn.sum_tree import Priorities

# `discount`: the γ^m each sampled target bootstraps with, from an n-step replay (None: γ);
# `weight` and `index`: a prioritized replay's importance weights and the slots drawn.
Transition = collections.namedtuple(
    "Transition", ["obs", "action", "reward", "next_obs", "terminated", "next_legal_mask", "discount",
                   "weight", "index"], defaults=[None] * 4)


class RowLayout:
    """Named fields side by side in one row: field i holds columns [start_i, start_i + width_i).

    The one declaration of a row's columns, read by whatever writes, reads or sizes such rows
    (the replay's transitions, the inputs of a host-stepped agent's step)."""

    def __init__(self, fields):
        """fields: (name, width) pairs in column order; a field of width 0 is left out."""
        self.fields, self.slices, start = [], {}, 0
        for name, width in fields:
            if width:
                self.fields.append((name, int(width)))
                self.slices[name] = slice(start, start + int(width))
                start += int(width)
        self.width = start

    def __contains__(self, name):
        return name in self.slices

    def join(self, values, dtype):
        """[N, width] rows from {name: [N] or [N, …] tensor}, each field cast to `dtype`."""
        return tf.concat([tf.reshape(tf.cast(values[name], dtype), [-1, width]) for name, width in self.fields], 1)

    def columns(self, rows, name):
        """Field `name` of [..., width] rows: [..., width_i]."""
        return rows[..., self.slices[name]]

    def column(self, rows, name):
        """Field `name` of [..., width] rows: [...] for a one-column field, else [..., width_i]."""
        where = self.slices[name]
        return rows[..., where.start] if where.stop - where.start == 1 else rows[..., where]


def transition_layout(obs_width, num_actions=None, n_step=1, row_discounts=False):
    """A transition's row: [obs | next_obs | action | reward | terminated | next legal mask (0/1,
    with num_actions) | ended (n-step replays) | γ^m (rows that are windows already)]."""
    return RowLayout([("obs", obs_width), ("next_obs", obs_width), ("action", 1), ("reward", 1), ("terminated", 1),
                      ("next_legal_mask", num_actions or 0), ("ended", int(n_step > 1)),
                      ("discount", int(row_discounts))])


class ReplayBuffer(tf.Module):
    """Fixed-capacity ring: write position i ↦ (cursor + i) mod capacity.

    Every transition is one row of one variable, `rows` [capacity, width], in the reward's
    dtype: [obs | next_obs | action | reward | terminated | next legal mask (0/1)]. An
    integer observation or action is held exactly as a float (|value| < 2²⁴ in float32).
    One buffer, one write and one gather per batch: a compiled step that touched one
    variable per field paid for each of them (bench/README.md). `obs`, `action`, … read
    the columns back with their own dtypes and shapes.

    `sample(n)` draws n indices uniformly from [0, size) with a stateless RNG
    keyed by (seed, draws so far), so the RNG state is one checkpointable
    counter and every draw is reproducible.

    With n_step > 1 each row also holds `ended` (the episode is over after it: terminated or
    truncated) and a sample is an n-step window (bellman.n_step_window): N envs write their
    rows together, so env e's transitions lie `stride` = N slots apart, and the window of the
    transition in slot i is slots i, i + N, …, i + (n−1)N (mod capacity), cut at its episode's
    end. Only the transitions whose whole window is written can be drawn: the oldest
    size − (n−1)N, uniformly (as Dopamine's buffer, the newest n−1 of each env wait until
    their window is complete, even where their episode has ended).

    With `prioritized` (Schaul et al. 2016, proportional), slot i is drawn with probability
    P(i) = p_i / Σ_j p_j from a SumTree, where p_i = (|δ_i| + ε)^α after each update
    (priorities.update_from_errors_fn, with a sample's `index`) and a new transition gets the largest p so far (as soon as its
    window is complete: until then its p is 0); each draw carries the importance weight
        w_i = (M · P(i))^−β / max_batch w,   M the transitions that can be drawn,
    normalised by the batch's largest (as Dopamine does) so that it only scales updates down.

    With `row_discounts` each row also holds the γ^m its target bootstraps with: rows that are
    n-step windows already (Ape-X's actors build them, rawdqn/distributed/), sampled as they
    are; `add(..., errors=)` then gives new rows the priorities (|δ| + ε)^α of the TD errors
    the actors computed, instead of the largest so far.
    """

    def __init__(self, capacity, obs_shape, obs_dtype=tf.float32, seed=0,
                 reward_dtype=tf.float32, num_actions=None, jit_compile=True, n_step=1, discount=None,
                 stride=1, prioritized=False, priority_exponent=0.6, priority_epsilon=1e-6, row_discounts=False,
                 name=None):
        super().__init__(name=name)
        capacity = int(capacity)
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1; got {capacity}")
        self.capacity = capacity
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.obs_dtype = tf.as_dtype(obs_dtype)
        self.reward_dtype = tf.as_dtype(reward_dtype)
        self.seed = int(seed)
        # Only environments with illegal actions store which next actions are legal.
        self.num_actions = None if num_actions is None else int(num_actions)
        self.obs_width = math.prod(self.obs_shape)
        self.n_step, self.stride = int(n_step), int(stride)
        if self.n_step < 1 or self.stride < 1 or (self.n_step > 1 and discount is None):
            raise ValueError(f"an n-step replay needs n_step >= 1, stride >= 1 and a discount; "
                             f"got n_step={n_step}, stride={stride}, discount={discount}")
        self.discount = discount
        self.row_discounts = bool(row_discounts)
        if self.row_discounts and self.n_step > 1:
            raise ValueError("rows with their own discounts are windows already: use n_step=1")
        self.layout = transition_layout(self.obs_width, self.num_actions, self.n_step, self.row_discounts)
        self.width = self.layout.width
        rows = tf.zeros([capacity, self.width], self.reward_dtype)
        if self.num_actions is not None:   # empty slots: every action legal
            legal = self.layout.slices["next_legal_mask"]
            rows = tf.concat([rows[:, :legal.start], tf.ones([capacity, self.num_actions], self.reward_dtype),
                              rows[:, legal.stop:]], 1)
        self.rows = tf.Variable(rows, name="rows")
        self.prioritized = bool(prioritized)
        if self.prioritized:
            self.priorities = Priorities(capacity, priority_exponent, priority_epsilon, name="priorities")
        self.cursor = tf.Variable(0, dtype=tf.int32, name="cursor")
        self.count = tf.Variable(0, dtype=tf.int32, name="count")
        self.draws = tf.Variable(0, dtype=tf.int32, name="draws")
        mode = "xla" if jit_compile else "function"
        self._add = compile_kernel(self.add_fn, mode)
        self._sample = compile_kernel(self.sample_fn, mode)

    # --- the row layout ---------------------------------------------------------
    def to_rows(self, obs, action, reward, next_obs, terminated, next_legal_mask=None, ended=None, discount=None):
        """[N, width] rows from a batch of N transitions (`ended`: n-step replays only, default
        `terminated`; `discount`: with row_discounts)."""
        return self.layout.join(dict(obs=obs, next_obs=next_obs, action=action, reward=reward, terminated=terminated,
                                     next_legal_mask=next_legal_mask, discount=discount,
                                     ended=terminated if ended is None else ended), self.reward_dtype)

    def from_rows(self, rows):
        """A Transition of the fields of [N, width] rows, each in its own dtype and shape."""
        layout = self.layout
        shape = tf.concat([tf.shape(rows)[:1], tf.constant(self.obs_shape, tf.int32)], 0)

        def observations(name):
            return tf.reshape(tf.cast(layout.column(rows, name), self.obs_dtype), shape)
        mask = layout.column(rows, "next_legal_mask") > 0 if "next_legal_mask" in layout else None
        return Transition(observations("obs"), tf.cast(layout.column(rows, "action"), tf.int32),
                          layout.column(rows, "reward"), observations("next_obs"), layout.column(rows, "terminated"),
                          mask, layout.column(rows, "discount") if self.row_discounts else None)

    def contents(self):
        """Every slot as a Transition [capacity, …] (filled or not; `size` says how many are)."""
        return self.from_rows(self.rows)

    obs, action, reward, next_obs, terminated, next_legal_mask = (   # Transition._fields, in order
        property(lambda self, field=field: getattr(self.contents(), field), doc=f"the `{field}` column")
        for field in Transition._fields[:6])

    @property
    def size(self):
        """How many transitions the ring holds (≤ capacity)."""
        return int(self.count.numpy())

    def __len__(self):
        return self.size

    def add(self, obs, action, reward, next_obs, terminated, next_legal_mask=None, valid=None, ended=None,
            discount=None, errors=None):
        """Write a batch of N ≤ capacity transitions, wrapping around the ring (with `valid`
        [N], only the rows where it is true; see add_fn; `ended` [N]: the episode is over,
        for an n-step replay, where it defaults to `terminated`)."""
        obs = tf.convert_to_tensor(obs, self.obs_dtype)
        n = obs.shape[0] if obs.shape.rank else None
        if obs.shape.rank != len(self.obs_shape) + 1 or tuple(obs.shape[1:]) != self.obs_shape:
            raise ValueError(f"replay.add expects obs of shape [N, {', '.join(map(str, self.obs_shape))}]"
                             f"; got {obs.shape}")
        if n is not None and n > self.capacity:
            raise ValueError(f"cannot add {n} transitions at once to a replay of capacity "
                             f"{self.capacity}; add them in batches of at most {self.capacity}")
        if (next_legal_mask is None) != (self.num_actions is None):
            raise ValueError("pass next_legal_mask exactly when the replay was built with num_actions")
        if self.obs_dtype.is_integer and self.reward_dtype.size < 8 and obs.shape.num_elements() \
                and int(tf.reduce_max(tf.abs(obs))) >= 2 ** 24:
            raise ValueError("integer observations of 2²⁴ or more are not exact in a float32 replay; "
                             "use reward_dtype=tf.float64")
        args = [obs, tf.convert_to_tensor(action, tf.int32),
                tf.convert_to_tensor(reward, self.reward_dtype),
                tf.convert_to_tensor(next_obs, self.obs_dtype),
                tf.cast(tf.convert_to_tensor(terminated), self.reward_dtype)]
        if next_legal_mask is not None:
            args.append(tf.cast(tf.convert_to_tensor(next_legal_mask), tf.bool))
        if valid is not None:
            valid = tf.convert_to_tensor(valid, tf.bool)
        for tensor, name in zip(args[1:5] + [valid], ("action", "reward", "next_obs", "terminated", "valid")):
            if tensor is not None and tensor.shape.rank is not None and tensor.shape[0] != n:
                raise ValueError(f"replay.add: {name} has {tensor.shape[0]} rows but obs has {n}")
        if valid is not None and self.n_step > 1:
            raise ValueError("an n-step replay finds an env's next transition N slots on: add all N rows (no valid)")
        if valid is not None:
            args += [None, valid] if next_legal_mask is None else [valid]
        if self.n_step > 1:
            ended = args[4] if ended is None else tf.cast(tf.convert_to_tensor(ended), self.reward_dtype)
            args += [None] * (6 - len(args)) + [None, ended]
        if self.row_discounts:
            if discount is None or (errors is not None and not self.prioritized):
                raise ValueError("a replay with row_discounts takes each row's discount (and errors only if prioritized)")
            args += [None] * (8 - len(args)) + [tf.convert_to_tensor(discount, self.reward_dtype),
                                                 None if errors is None else tf.convert_to_tensor(errors, tf.float64)]
        self._add(*args)

    def add_fn(self, obs, action, reward, next_obs, terminated, next_legal_mask=None, valid=None, ended=None,
               discount=None, errors=None):
        """The ring write, for use inside a compiled program (no host checks).

        With `valid` [N] (bool), only the valid rows are written, in their order, at
        cursor, cursor + 1, …; the other slots of the N written keep what they held (a
        source whose step can be a reset, not a transition: envpool's next-step autoreset).
        """
        rows = self.to_rows(obs, action, reward, next_obs, terminated, next_legal_mask, ended, discount)
        n = tf.shape(rows)[0]
        indices = tf.math.floormod(self.cursor + tf.range(n), self.capacity)
        added = n
        if valid is not None:
            valid = tf.cast(valid, tf.bool)
            added = tf.reduce_sum(tf.cast(valid, tf.int32))
            first_valid = tf.argsort(tf.cast(tf.logical_not(valid), tf.int32), stable=True)
            rows = tf.where((tf.range(n) < added)[:, None], tf.gather(rows, first_valid),
                            tf.gather(self.rows, indices))
        self.rows.scatter_nd_update(indices[:, None], rows)
        if self.prioritized and errors is not None:   # (|δ| + ε)^α of the errors given (valid rows: all)
            self.priorities.update_from_errors_fn(indices, errors)
        elif self.prioritized:
            self.prioritize_new_fn(indices, added)
        self.cursor.assign(tf.math.floormod(self.cursor + added, self.capacity))
        self.count.assign(tf.minimum(self.count + added, self.capacity))

    def prioritize_new_fn(self, indices, added):
        """New slots get the largest priority so far; an n-step replay's get 0 until their window is
        complete, and the slots whose window these rows complete ((n−1)·stride back) get it then."""
        fresh = tf.range(tf.shape(indices)[0]) < added
        tree = self.priorities
        if self.n_step == 1:
            tree.update_fn(indices, tf.where(fresh, tree.max_priority, tree.priorities_fn(indices)))
            return
        tree.update_fn(indices, tf.where(fresh, tf.zeros_like(tree.max_priority), tree.priorities_fn(indices)))
        back = (self.n_step - 1) * self.stride
        completed = tf.math.floormod(indices - back, self.capacity)
        exists = fresh & (self.count + tf.range(tf.shape(indices)[0]) >= back)   # written before, not a pad
        tree.update_fn(completed, tf.where(exists, tree.max_priority, tree.priorities_fn(completed)))

    def sample(self, batch_size, importance_exponent=1.0):
        """A Transition of `batch_size` rows drawn uniformly, with replacement, from the filled part
        (prioritized: in proportion to priority, weighted with β = importance_exponent)."""
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer; add transitions first")
        if self.size <= (self.n_step - 1) * self.stride:
            raise ValueError(f"an {self.n_step}-step replay of {self.stride} env(s) samples once it holds more than "
                             f"{(self.n_step - 1) * self.stride} transitions; it holds {self.size}")
        if self.prioritized:
            return self._sample(tf.constant(batch_size), tf.constant(float(importance_exponent), tf.float64))
        return self._sample(tf.constant(batch_size))

    def sample_fn(self, batch_size, importance_exponent=None):
        """Uniform indices from [0, size) keyed by (seed, draws); compiled-program version.
        With n_step > 1, n-step windows (the class docstring); prioritized, draws in proportion
        to priority with importance weights for β = importance_exponent."""
        batch_size = tf.convert_to_tensor(batch_size, tf.int32)
        seed = tf.stack([self.seed, self.draws])
        self.draws.assign_add(1)
        complete = self.count - (self.n_step - 1) * self.stride   # transitions whose window is written
        if self.prioritized:
            tree = self.priorities
            total = tree.total_fn()
            first = tree.find_fn(tf.random.stateless_uniform([batch_size], seed=seed, dtype=tf.float64) * total)
            probability = tree.priorities_fn(first) / total
            weight = tf.pow(tf.cast(complete, tf.float64) * probability, -tf.cast(importance_exponent, tf.float64))
            batch = self.transitions_at(first)
            return batch._replace(weight=tf.cast(weight / tf.reduce_max(weight), self.reward_dtype), index=first)
        if self.n_step == 1:
            indices = tf.random.stateless_uniform([batch_size], seed=seed, minval=0,
                                                  maxval=tf.maximum(self.count, 1), dtype=tf.int32)
            return self.from_rows(tf.gather(self.rows, indices))
        age = tf.random.stateless_uniform([batch_size], seed=seed, minval=0, maxval=tf.maximum(complete, 1),
                                          dtype=tf.int32)   # 0: the oldest transition held
        return self.transitions_at(tf.math.floormod(self.cursor - self.count + age, self.capacity))

    def transitions_at(self, first):
        """The transitions starting in slots `first` [B]: rows, or n-step windows."""
        if self.n_step == 1:
            return self.from_rows(tf.gather(self.rows, first))   # with row_discounts, their γ^m too
        slots = tf.math.floormod(first[:, None] + self.stride * tf.range(self.n_step)[None, :], self.capacity)
        window = tf.gather(self.rows, slots)   # [batch, n, width]
        layout = self.layout
        window_return, bootstrap_discount, last = bellman.n_step_window(
            layout.column(window, "reward"), layout.column(window, "terminated"), layout.column(window, "ended"),
            self.discount)
        start, end = self.from_rows(window[:, 0]), self.from_rows(tf.gather(window, last, axis=1, batch_dims=1))
        return Transition(start.obs, start.action, window_return, end.next_obs, end.terminated,
                          end.next_legal_mask, bootstrap_discount)

    @property
    def nbytes(self):
        """Bytes held on the device by the ring's storage."""
        return sum(v.shape.num_elements() * v.dtype.size for v in self.variables)   # tf.size is int32: it overflows at 2³¹
