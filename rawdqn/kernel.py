"""How a kernel runs: eagerly, as a tf.function graph, or XLA-compiled; and cheap dispatch.

On a small network the Python cost of calling a tf.function (~100–300 µs on a
CPU) is as large as the computation, so compiled kernels are called through
cached concrete functions.
"""
import time

import tensorflow as tf


COMPILE_SECONDS = 0.0  # every kernel's first call per input signature: tracing and XLA compilation


def compile_seconds():
    """Seconds this process has spent so far in kernels' first calls (tracing and compiling)."""
    return COMPILE_SECONDS


def compile_kernel(fn, mode):
    """Run `fn` eagerly, as a tf.function graph, or XLA-compiled (mode 'eager'|'function'|'xla')."""
    if mode == "eager":
        return fn
    if mode == "function":
        return Kernel(tf.function(fn))
    if mode == "xla":
        return Kernel(tf.function(fn, jit_compile=True))
    raise ValueError(f"mode must be eager, function or xla; got {mode!r}")


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
    """concrete(*args) without re-binding the arguments to its signature on every call.

    ConcreteFunction.__call__ re-checks every argument against the function type
    (~100 µs of Python on a small CPU, as much as `act`'s whole computation). The
    key in `Kernel` already fixes shapes and dtypes, so the flat tensors go
    straight to `_call_flat` with the captured variables; where this TensorFlow
    has no `_call_flat`, the public call.
    """
    call_flat = getattr(concrete, "_call_flat", None)
    if call_flat is None:
        return lambda args, flat: concrete(*args)
    captured = concrete.captured_inputs
    return lambda args, flat: call_flat([x for x in flat if x is not None], captured)
