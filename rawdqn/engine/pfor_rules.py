"""Batched forms that tf.vectorized_map (pfor) needs to run a step body for K seeds under XLA.

pfor turns each op of a function traced for one seed into the op for all K. For a few ops it has
no batched form, or one XLA cannot compile (a tf.while_loop gathering finished seeds in
TensorArrays, a partition of the seeds by a condition). The forms here replace those, registered
in pfor's table when engine/seed_axis.py is imported:

    stateless RNG ops keyed per seed   Philox's key derivation and uniform draws as one batched
                                       computation (engine/philox.py: the bits of each seed's own
                                       op, in the form the program compiles to, set by
                                       `batched_philox`); any other draw once per seed
    Bitcast, TensorStridedSliceUpdate  the op on [K, ...], the slice behind a full seed axis
    TensorScatterUpdate                indices prefixed by the seed in their own dtype (int64 too)
    While                              one loop; where the condition differs by seed, the loop
                                       runs while any seed's holds, finished seeds keep their values
    If with a per-seed predicate       both branches for all K, each seed's outputs selected

The functions these convert are side-effect free: the seed axis traces the step body with the
state as values (engine/seed_axis.Bound), not variables.
"""
import contextlib

import tensorflow as tf
from tensorflow.python.ops.parallel_for import pfor as _pfor

from rawdqn.engine import philox


# Stateless RNG ops keyed per seed: pfor's own conversion is a tf.while_loop over a TensorArray,
# which XLA cannot compile without static shapes; K is static, so each op is made K times.
RNG_OPS = ("StatelessRandomGetKeyCounter", "StatelessRandomUniformV2", "StatelessRandomUniformIntV2",
           "StatelessRandomUniformFullIntV2", "StatelessRandomNormalV2", "StatelessTruncatedNormalV2")


def _rng_per_seed(pfor_input):
    """The op once per seed on that seed's inputs, its outputs stacked: [K, ...]."""
    (num_seeds,) = tf.get_static_value(pfor_input.pfor.loop_len_vector)
    dtypes = [output.dtype for output in pfor_input.outputs]
    per_seed = [_pfor._create_op(pfor_input.op_type, [x[k] if stacked else x for x, stacked, _ in pfor_input.inputs],
                                 dtypes, attrs=pfor_input.op.node_def.attr).outputs for k in range(int(num_seeds))]
    return [_pfor.wrap(tf.stack(outputs), True) for outputs in zip(*per_seed)]


# Whether the function being converted compiles under XLA (True) or runs on TensorFlow's kernels
# (False), whose float and seed conversions differ; None outside `batched_philox`: no batched draws.
_PHILOX_FORM = [None]
PHILOX, AUTO_SELECT = 1, 3   # the RNG algorithms whose draws on a CPU or GPU are Philox's


@contextlib.contextmanager
def batched_philox(xla):
    """Within the block, pfor draws Philox's keys and uniforms once for all K seeds, as `xla` (or
    TensorFlow's kernels) would draw them for each."""
    _PHILOX_FORM.append(bool(xla))
    try:
        yield
    finally:
        _PHILOX_FORM.pop()


def _batched_draw(pfor_input):
    """The op for all K seeds in one computation (engine/philox.py), where its shape is static and
    its algorithm Philox's; otherwise once per seed. Keys, counters and bounds may differ by seed."""
    xla, op_type = _PHILOX_FORM[-1], pfor_input.op_type
    stacked = [is_stacked for _, is_stacked, _ in pfor_input.inputs]
    if xla is None:
        return _rng_per_seed(pfor_input)
    num_seeds = _num_seeds(pfor_input)
    if op_type == "StatelessRandomGetKeyCounter":
        key, counter = philox.key_counter(_stacked(pfor_input.inputs[0].t, num_seeds) if not stacked[0]
                                          else pfor_input.stacked_input(0), xla)
        return [_pfor.wrap(key, True), _pfor.wrap(counter, True)]
    # The draw's shape as the step body's trace knew it (pfor's form of a shape is not a constant).
    shape = pfor_input.op.outputs[0].shape
    alg = tf.get_static_value(pfor_input.unstacked_input(3)) if not stacked[3] else None
    dtype = pfor_input.get_attr("dtype")
    if not shape.is_fully_defined() or alg not in (PHILOX, AUTO_SELECT):
        return _rng_per_seed(pfor_input)
    shape = shape.as_list()
    key, counter = (pfor_input.stacked_input(i) if stacked[i] else _stacked(pfor_input.inputs[i].t, num_seeds)
                    for i in (1, 2))
    if op_type == "StatelessRandomUniformV2" and dtype in (tf.float32, tf.float64):
        values = philox.uniform(shape, key, counter, dtype, xla)
    elif op_type == "StatelessRandomUniformIntV2" and dtype in (tf.int32, tf.int64):
        values = philox.uniform_int(shape, key, counter, *(pfor_input.inputs[i].t for i in (4, 5)), dtype)
    elif op_type == "StatelessRandomUniformFullIntV2" and dtype in (tf.int32, tf.uint32, tf.int64, tf.uint64):
        values = philox.uniform_full_int(shape, key, counter, dtype)
    else:
        return _rng_per_seed(pfor_input)
    return [_pfor.wrap(values, True)]


BATCHED_RNG_OPS = ("StatelessRandomGetKeyCounter", "StatelessRandomUniformV2", "StatelessRandomUniformIntV2",
                   "StatelessRandomUniformFullIntV2")
for _op in RNG_OPS:
    if _op not in _pfor._pfor_converter_registry:
        _pfor.RegisterPFor(_op)(_batched_draw if _op in BATCHED_RNG_OPS else _rng_per_seed)


@_pfor.RegisterPFor("Bitcast")
def _bitcast(pfor_input):
    """A bitcast reinterprets each element (or splits or joins the last axis): the leading [K] stays as is."""
    return _pfor.wrap(tf.bitcast(pfor_input.stacked_input(0), pfor_input.get_attr("type")), True)


@_pfor.RegisterPFor("TensorStridedSliceUpdate")
def _strided_slice_update(pfor_input):
    """input[begin:end:strides] = value (θ's gradient written piece by piece, engine/theta.py) for all K:
    the same slice one axis down, behind a full slice of the seed axis."""
    pfor_input.stack_inputs([0, 4])
    begin, end, strides = (pfor_input.unstacked_input(i) for i in (1, 2, 3))
    num_seeds = pfor_input.pfor.loop_len_vector

    def one_more(value, first):
        return tf.concat([tf.cast(first, value.dtype), value], axis=0)
    masks = {name: pfor_input.get_attr(name) << 1 for name in
             ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    return _pfor.wrap(tf.raw_ops.TensorStridedSliceUpdate(
        input=pfor_input.stacked_input(0), begin=one_more(begin, [0]), end=one_more(end, num_seeds),
        strides=one_more(strides, [1]), value=pfor_input.stacked_input(4), **masks), True)


_PFOR_IF = _pfor._pfor_converter_registry["If"]


def _function_converter(pfor_input, num_seeds):
    """Converts a function of the op (a branch, a loop's condition or body) for all K seeds."""
    pfor = pfor_input.pfor

    def convert(func, values, stacked):
        converter = _pfor.PFor(loop_var=pfor.loop_var, loop_len=num_seeds, pfor_ops=func.graph.get_operations(),
                               fallback_to_while_loop=pfor.fallback_to_while_loop, all_indices=pfor.all_indices,
                               all_indices_partitioned=pfor.all_indices_partitioned, pfor_config=pfor.pfor_config)
        return _pfor._convert_function_call(func, converter, [_pfor.wrap(v, s) for v, s in zip(values, stacked)])
    return convert


def _num_seeds(pfor_input):
    static = tf.get_static_value(pfor_input.pfor.loop_len_vector)   # K, kept static inside nested functions
    return int(static[0]) if static is not None else pfor_input.pfor.loop_len_vector[0]


def _stacked(value, num_seeds):
    return _pfor._stack(value, [num_seeds]).t


def _select(pred, new, old):
    """new where pred (one bool per seed), else old: [K, ...] each."""
    return tf.where(tf.reshape(pred, [-1] + [1] * (new.shape.rank - 1)), new, old)


def _while(pfor_input):
    """A tf.while_loop for all K seeds. Where every seed shares the condition (an update count, a
    rollout's epochs), one loop over the batched body; where it differs by seed (a redraw until a
    sample is valid), the loop runs while any seed's condition holds and a seed whose condition
    has ended keeps its values. (pfor's own conversion gathers finished seeds in TensorArrays and
    partitions them, which XLA cannot compile.)"""
    graph = pfor_input.op.graph
    cond_func, body_func = (graph._get_function(pfor_input.get_attr(name).name.encode()) for name in ("cond", "body"))
    num_seeds = _num_seeds(pfor_input)
    convert = _function_converter(pfor_input, num_seeds)
    # What the body passes through (captured values, e.g. a sample's size) leaves it as it came in, so
    # XLA still sees the constants among them.
    passed = {i for i, (x, y) in enumerate(zip(body_func.graph.inputs, body_func.graph.outputs)) if x is y}

    def build(stacked, report, masked=False):
        def condition(*values):
            (out,) = convert(cond_func, values, stacked)
            report["cond_stacked"] = out.is_stacked
            return tf.reduce_any(out.t) if masked else out.t

        def body(*values):
            outs = convert(body_func, values, stacked)
            report["stack"] = [i for i, (out, s) in enumerate(zip(outs, stacked)) if out.is_stacked and not s]
            outs = [_stacked(out.t, num_seeds) if s and not out.is_stacked else out.t for out, s in zip(outs, stacked)]
            if masked:   # seeds whose condition has ended keep their values
                (going,) = convert(cond_func, values, stacked)
                outs = [_select(going.t, new, old) if s else new for new, old, s in zip(outs, values, stacked)]
            return [values[i] if i in passed else out for i, out in enumerate(outs)]
        init = [_stacked(x.t, num_seeds) if s and not x.is_stacked else x.t
                for x, s in zip(pfor_input.inputs, stacked)]
        return tf.while_loop(condition, body, init, parallel_iterations=pfor_input.get_attr("parallel_iterations"))

    stacked = [x.is_stacked for x in pfor_input.inputs]
    while True:   # an input the body makes per-seed must enter per-seed: find the fixed point on a scratch trace
        report = {}
        try:
            tf.function(lambda: build(stacked, report), autograph=False).get_concrete_function()
        except ValueError:   # an output's shape gained the seed axis: report["stack"] says which
            if "stack" not in report:
                raise
        if report["cond_stacked"]:
            # Per seed: every value the body changes.
            stacked = [s or i not in passed for i, s in enumerate(stacked)]
            outputs = build(stacked, {}, masked=True)
            break
        if not report["stack"]:
            outputs = build(stacked, {})
            break
        stacked = [s or i in report["stack"] for i, s in enumerate(stacked)]
    return [_pfor.wrap(out, s) for out, s in zip(outputs, stacked)]


def _tensor_scatter_update(pfor_input):
    """tf.tensor_scatter_nd_update for all K: each index prefixed with its seed, in the indices'
    own dtype (pfor's form prefixes int32, which int64 indices, as the frame replay's, reject)."""
    pfor_input.stack_inputs([0, 1, 2])
    tensor, indices, updates = (pfor_input.stacked_input(i) for i in range(3))
    shape = tf.shape(indices, out_type=indices.dtype)
    seeds = tf.range(shape[0], dtype=indices.dtype)
    seed_index = tf.broadcast_to(tf.reshape(seeds, [-1] + [1] * (indices.shape.rank - 1)),
                                 tf.concat([shape[:-1], [1]], axis=0))
    return _pfor.wrap(tf.tensor_scatter_nd_update(tensor, tf.concat([seed_index, indices], axis=-1), updates), True)


def _if(pfor_input):
    """tf.cond for all K seeds: pfor's own form where the predicate is shared; where it differs by
    seed (a check per seed's values), both branches for all K and each seed's chosen outputs (pfor
    partitions the seeds instead, which XLA cannot compile). The branches are side-effect free
    here: the step body's state is values (`Bound`), not variables."""
    pred, pred_stacked, _ = pfor_input.input(0)
    if not pred_stacked:
        return _PFOR_IF(pfor_input)
    graph = pfor_input.op.graph
    num_seeds = _num_seeds(pfor_input)
    convert = _function_converter(pfor_input, num_seeds)
    values = [_stacked(x.t, num_seeds) if not x.is_stacked else x.t for x in pfor_input.inputs[1:]]
    branches = [[_stacked(out.t, num_seeds) if not out.is_stacked else out.t
                 for out in convert(graph._get_function(pfor_input.get_attr(name).name.encode()), values,
                                    [True] * len(values))]
                for name in ("then_branch", "else_branch")]
    return [_pfor.wrap(_select(pred, then, otherwise), True) for then, otherwise in zip(*branches)]


for _op in ("While", "StatelessWhile"):
    _pfor._pfor_converter_registry[_op] = _while
for _op in ("If", "StatelessIf"):
    _pfor._pfor_converter_registry[_op] = _if
_pfor._pfor_converter_registry["TensorScatterUpdate"] = _tensor_scatter_update
