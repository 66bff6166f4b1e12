"""How a kernel runs: eagerly, as a tf.function graph, or XLA-compiled; and cheap dispatch.

On a small network the Python cost of calling a tf.function (~100–300 µs on a
CPU) is as large as the computation, so compiled kernels are called through
cached concrete functions.
"""
import itertools
import time

import tensorflow as tf
from tensorflow.python import pywrap_tfe
from tensorflow.python.eager import context, core

from rawdqn.config import MODES


COMPILE_SECONDS = 0.0  # every kernel's first call per input signature: tracing and XLA compilation


def compile_seconds():
    """Seconds this process has spent so far in kernels' first calls (tracing and compiling)."""
    return COMPILE_SECONDS


def compile_kernel(fn, mode):
    """Run `fn` eagerly, as a tf.function graph, or XLA-compiled (mode 'eager'|'function'|'xla');
    'hybrid' is a graph whose xla_part pieces are XLA clusters. Kernels branch and loop with
    tf.cond / tf.while_loop (rawdqn/control.py), so AutoGraph is off: converting the agents'
    Python would take most of a MinAtar run's first 5,000 steps (9.0 s against 4.9 s)."""
    if mode == "eager":
        return fn
    if mode in ("function", "hybrid"):
        return Kernel(tf.function(fn, autograph=False))
    if mode == "xla":
        return Kernel(tf.function(fn, jit_compile=True, autograph=False))
    raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")


def xla_part(fn, mode):
    """`fn` as an XLA cluster inside a kernel's graph in mode 'hybrid'; `fn` itself otherwise.

    Hybrid is for conv networks on a CPU: XLA:CPU compiles the gradient's convolutions as
    generic loops, TensorFlow's graph runs them on oneDNN's kernels, and XLA runs what the
    graph does slowly (the replay's gathers, θ's cuts and writes, the optimizer's passes).
    """
    return tf.function(fn, jit_compile=True) if mode == "hybrid" else fn


class Kernel:
    """A tf.function called through concrete functions cached by input shapes and dtypes.

    A concrete function skips tf.function's per-call argument matching, which
    on a small network costs as much as the computation (~100 µs on CPU).
    """

    def __init__(self, function):
        self.function = function
        self.calls = {}  # (shape, dtype) of each input → a call taking (args, flat args)

    def __call__(self, *args):
        flat = tf.nest.flatten(args)
        key = tuple(None if x is None else (tuple(x.shape), x.dtype) for x in flat)
        call = self.calls.get(key)
        if call is None:
            start = time.perf_counter()
            call = self.calls[key] = direct_call(self.function.get_concrete_function(*args))
            result = call(args, flat)
            global COMPILE_SECONDS
            COMPILE_SECONDS += time.perf_counter() - start
            return result
        return call(args, flat)


def direct_call(concrete):
    """concrete(*args) without TensorFlow's per-call Python: one TFE_Py_Execute of the function.

    ConcreteFunction.__call__ re-checks every argument against the function type, and its
    _call_flat then asks about gradient tapes, forward-mode accumulators and cancellation
    before it executes the function. For `collect` (store and act) on a 2-core CPU that is
    192 µs through the public call, 116 µs through _call_flat and 99 µs direct
    (bench/dispatch.py, medians of interleaved blocks). The key in `Kernel` already fixes
    shapes and dtypes and kernels are never differentiated from outside, so the flat
    tensors and the captured variables go straight to the function's op, on the device in
    scope at the call; its flat outputs are packed into the function's structure. In graph
    mode, or where this TensorFlow lacks the pieces, the public call.
    """
    try:
        atomic = concrete._inference_function
        name, pack = atomic.name.decode("utf-8"), atomic.function_type.pack_output
        num_outputs = len(atomic.function_type.flat_outputs)
        ctx = context.context()
        attrs = tuple(itertools.chain(*ctx.function_call_options.as_attrs().items()))
        execute = pywrap_tfe.TFE_Py_Execute
    except (AttributeError, TypeError):
        return lambda args, flat: concrete(*args)
    captured = list(concrete.captured_inputs)

    def call(args, flat):
        if not ctx.executing_eagerly():
            return concrete(*args)
        inputs = [x for x in flat if x is not None] + captured
        try:
            outputs = execute(ctx._handle, ctx.device_name, name, inputs, attrs, num_outputs)
        except core._NotOkStatusException as error:   # as tf.errors.* (ResourceExhaustedError, …)
            raise core._status_to_exception(error) from None
        return pack(outputs or None)
    return call
