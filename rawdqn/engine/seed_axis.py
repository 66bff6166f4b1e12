"""K seeds as one batch: the agents' unchanged step body, run once for all K by tf.vectorized_map.

The K agents of an on-device run are K modules with their own variables (so each saves,
restores and writes its run directory as one run does). The seed axis is made in the program:

    at a call's start     state[k] ← agent k's variables, stacked: [K, ...] for each variable
    each iteration        state ← vectorized_map(step body of agent 0, bound to state[k])
    at a call's end       agent k's variables ← state[k]

The step body is traced once, against agent 0's module whose variables are bound (`bound`) to
the values of one seed; tf.vectorized_map (pfor) turns every op of that trace into its batched
form: the K networks' matmuls one batched matmul, the K optimizers' steps one, and so on.

Counters that every seed holds alike — the schedule's steps, updates and syncs, the draws
made, the rollout's length — are declared by the agent (`shared_counters`) and carried once,
unbatched: the conditions they decide (an update due, a sync owed) stay one branch for all K,
as they must for XLA, where pfor would otherwise split the batch by the condition.
"""
import contextlib
import operator

import tensorflow as tf

from rawdqn import control
from rawdqn.engine import pfor_rules   # the batched forms tf.vectorized_map needs here


class Bound:
    """A variable's value inside a traced step body: reads give the value, assigns replace it.

    Stands in for a tf.Variable with the part of its interface the step bodies use (read_value,
    assign, assign_add, assign_sub, scatter_nd_update, indexing, arithmetic, conversion)."""

    def __init__(self, variable, value):
        self.dtype, self.shape, self.name = variable.dtype, variable.shape, variable.name
        self.value = tf.convert_to_tensor(value, self.dtype)

    def read_value(self):
        return self.value

    def assign(self, value, read_value=True):
        self.value = tf.ensure_shape(tf.cast(value, self.dtype), self.shape)
        return self.value

    def assign_add(self, delta, read_value=True):
        return self.assign(self.value + tf.cast(delta, self.dtype))

    def assign_sub(self, delta, read_value=True):
        return self.assign(self.value - tf.cast(delta, self.dtype))

    def scatter_nd_update(self, indices, updates):
        return self.assign(tf.tensor_scatter_nd_update(self.value, indices, tf.cast(updates, self.dtype)))

    def __getitem__(self, key):
        return self.value[key]

    def __hash__(self):
        return id(self)


def _operator(function, reverse=False):
    if reverse:
        return lambda self, other: function(other, self.value)
    return lambda self, *other: function(self.value, *other)


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    _function = getattr(operator, _name + "_") if _name in ("and", "or") else getattr(operator, _name)
    setattr(Bound, f"__{_name}__", _operator(_function))
    setattr(Bound, f"__r{_name}__", _operator(_function, reverse=True))
for _name in ("lt", "le", "gt", "ge", "neg", "invert", "abs"):
    setattr(Bound, f"__{_name}__", _operator(getattr(operator, _name)))
Bound.__eq__ = lambda self, other: tf.equal(self.value, other)
Bound.__ne__ = lambda self, other: tf.not_equal(self.value, other)
tf.register_tensor_conversion_function(Bound, lambda bound, dtype=None, name=None, as_ref=False: bound.value)


SEED_NAMES = ("seed", "noise_seed")   # the int attributes that key an object's stateless RNG draws


def _is_tracking_attribute(name):
    return name.startswith(("_self_", "_tf_", "_obj_", "_checkpoint", "_maybe_initialized"))


def _items(value):
    """The leaves of nested lists, tuples and dicts (and a tf.Module's tracking wrappers of them)."""
    value = getattr(value, "__wrapped__", value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _items(item)]
    return [value]


def _objects(module):
    """The rawdqn objects reachable from `module` through attributes and containers, in a fixed order."""
    found, seen = [], set()

    def visit(obj):
        seen.add(id(obj))
        found.append(obj)
        for name, value in sorted(vars(obj).items()):
            if not _is_tracking_attribute(name):
                for item in _items(value):
                    if type(item).__module__.startswith("rawdqn") and id(item) not in seen:
                        visit(item)
    visit(module)
    return found


def _seed_words(module):
    """(object, name, value) of every int attribute in SEED_NAMES reachable from `module`."""
    return [(obj, name, value) for obj in _objects(module) for name, value in sorted(vars(obj).items())
            if name in SEED_NAMES and isinstance(value, int) and not isinstance(value, bool)]


@contextlib.contextmanager
def bound(module, values, words=()):
    """Within the block, every variable v reachable from `module` (through rawdqn objects, lists,
    tuples, named tuples and dicts) reads as values[id(v)] (a Bound), and each (object, name,
    word) of `words` sets that seed attribute to the tensor `word`. The attributes are restored
    on exit; the variables themselves are never touched."""
    def substitute(value):
        if isinstance(value, tf.Variable):
            return values.get(id(value), value)
        value = getattr(value, "__wrapped__", value)   # a tf.Module's tracking wrapper of a tuple or dict
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*(substitute(item) for item in value))
        if isinstance(value, list):
            return [substitute(item) for item in value]
        if isinstance(value, tuple):
            return tuple(substitute(item) for item in value)
        if isinstance(value, dict):
            return {key: substitute(item) for key, item in value.items()}
        return value

    changes = []   # (object, attribute, its value, its value within the block)
    for obj in _objects(module):
        for name, value in list(vars(obj).items()):
            new = value if _is_tracking_attribute(name) else substitute(value)
            if new is not value:
                changes.append((obj, name, value, new))
    changes += [(obj, name, getattr(obj, name), word) for obj, name, word in words]
    try:
        for obj, name, _, new in changes:
            object.__setattr__(obj, name, new)
        yield
    finally:
        for obj, name, value, _ in reversed(changes):
            object.__setattr__(obj, name, value)


class SeedAxis:
    """K modules of one structure (K agents with their envs) run as one batch (the module docstring).

    `shared(module)` lists the variables of a module whose values all K hold alike (read from
    module 0, carried once); `xla`: the program compiles under XLA (its RNG draws follow XLA's
    conversions, engine/philox.py)."""

    def __init__(self, modules, shared, xla):
        self.template, self.num_seeds, self.xla = modules[0], len(modules), bool(xla)
        self.variables = [list(module.variables) for module in modules]
        layouts = {tuple((v.name, tuple(v.shape), v.dtype) for v in variables) for variables in self.variables}
        if len(layouts) != 1:
            raise ValueError("the seed axis needs K modules of one structure")
        shared_ids = {id(v) for v in shared(self.template)}
        self.is_shared = [id(v) in shared_ids for v in self.variables[0]]
        words = [_seed_words(module) for module in modules]
        self.seed_words = tf.constant([[value for _, _, value in seed_words] for seed_words in words], tf.int32)
        self.word_slots = [(obj, name) for obj, name, _ in words[0]]

    def read(self):
        """(per-seed values [K, ...] of the unshared variables, values of the shared ones)."""
        per_seed = [tf.stack([variables[j].read_value() for variables in self.variables])
                    for j, shared in enumerate(self.is_shared) if not shared]
        shared = [variable.read_value() for variable, shared in zip(self.variables[0], self.is_shared) if shared]
        return per_seed, shared

    def write(self, per_seed, shared):
        """Every module's variables ← its slice of `per_seed`, and `shared`."""
        per_seed, shared = iter(per_seed), iter(shared)
        for j, is_shared in enumerate(self.is_shared):
            if is_shared:
                value = next(shared)
                for variables in self.variables:
                    variables[j].assign(value)
            else:
                values = tf.unstack(next(per_seed), self.num_seeds)
                for variables, value in zip(self.variables, values):
                    variables[j].assign(value)

    def map(self, function, per_seed, shared):
        """function(module 0), traced once with module 0 bound to seed k's values, run for all K:
        returns (per_seed', shared', function's outputs with a leading [K])."""
        template_variables = self.variables[0]

        def one_seed(elems):
            values, words = elems
            values, shared_values = iter(values), iter(shared)
            slots = {id(variable): Bound(variable, next(shared_values) if is_shared else next(values))
                     for variable, is_shared in zip(template_variables, self.is_shared)}
            words = [(obj, name, word) for (obj, name), word in
                     zip(self.word_slots, tf.unstack(words, len(self.word_slots)))]
            with bound(self.template, slots, words), control.carrying(slots.values()):
                outputs = function(self.template)
            # tf.identity: an unchanged shared value is a tensor of the caller's graph, which pfor cannot return.
            new = [tf.identity(slots[id(variable)].value) for variable in template_variables]
            return ([value for value, is_shared in zip(new, self.is_shared) if not is_shared],
                    [value for value, is_shared in zip(new, self.is_shared) if is_shared], outputs)

        with pfor_rules.batched_philox(self.xla):   # each seed's draws as its own ops would draw them
            per_seed, shared, outputs = tf.vectorized_map(one_seed, (per_seed, self.seed_words))
        return per_seed, [value[0] for value in shared], outputs
