"""Timing: compile apart, warm up, force results to the host, repeat, take the median.

    compile   the first call (tracing + XLA compilation + first run), its own column
    warm-up   two more calls, untimed
    calibrate one timed call gives n, the calls per block (a block lasts ~block_seconds)
    measure   `repeats` blocks; in each, n calls, every call's result forced to the
              host (`.numpy()` on its last output) before the next; per-call time =
              block time / n. Reported: median, quartiles, min and max over blocks.
    cpu       the process CPU time (all threads) per call, median over the same blocks:
              on a loaded machine wall time includes waiting for a core, CPU time
              does not (but it counts spinning worker threads).
"""
import statistics
import time

import numpy as np
import tensorflow as tf


def force(result):
    """Copy the last tensor of `result` to the host (waits for the work that produced it)."""
    flat = [t for t in tf.nest.flatten(result) if t is not None]
    if not flat:
        return None
    last = flat[-1]
    return last.numpy() if hasattr(last, "numpy") else np.asarray(last)


def summarize(samples):
    """Median, quartiles, min, max of per-call seconds; spread = (q3 − q1) / median."""
    ordered = sorted(samples)
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1, q3 = ordered[0], ordered[-1]
    median = statistics.median(ordered)
    return {"median_s": median, "q1_s": q1, "q3_s": q3, "min_s": ordered[0],
            "max_s": ordered[-1], "spread": (q3 - q1) / median if median > 0 else 0.0,
            "blocks": len(ordered)}


def time_call(call, repeats=15, block_seconds=0.02, max_calls_per_block=100_000,
              warmup=2):
    """Time `call()` as described above; returns a dict of seconds per call."""
    start = time.perf_counter()
    force(call())
    compile_s = time.perf_counter() - start
    for _ in range(warmup):
        force(call())
    start = time.perf_counter()
    force(call())
    single = time.perf_counter() - start
    calls = int(max(1, min(max_calls_per_block, block_seconds / max(single, 1e-7))))
    samples, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            force(call())
        samples.append((time.perf_counter() - start) / calls)
        cpu.append((time.process_time() - start_cpu) / calls)
    result = summarize(samples)
    result.update(compile_s=compile_s, calls_per_block=calls, cpu_s=statistics.median(cpu))
    return result


def time_interleaved(calls, repeats=15, block_seconds=0.02, max_calls_per_block=100_000):
    """Time several callables in alternating blocks (A B C A B C ...), so load changes hit
    them alike; returns {name: summary} plus per-round seconds (`rounds_s`) for ratios."""
    prepared = {}
    for name, call in calls.items():
        start = time.perf_counter()
        force(call())
        compile_s = time.perf_counter() - start
        for _ in range(2):
            force(call())
        start = time.perf_counter()
        force(call())
        single = time.perf_counter() - start
        prepared[name] = (call, int(max(1, min(max_calls_per_block, block_seconds / max(single, 1e-7)))),
                          compile_s)
    samples = {name: [] for name in calls}
    cpu = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (call, n, _) in prepared.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                force(call())
            samples[name].append((time.perf_counter() - start) / n)
            cpu[name].append((time.process_time() - start_cpu) / n)
    out = {}
    for name, (_, n, compile_s) in prepared.items():
        out[name] = summarize(samples[name])
        out[name].update(compile_s=compile_s, calls_per_block=n, cpu_s=statistics.median(cpu[name]),
                         rounds_s=samples[name])
    return out
