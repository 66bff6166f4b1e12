"""The engine: how the reader's layer (rawdqn/algorithms/) runs fast.

Kernels and their modes (eager, tf.function, XLA, hybrid) and the cheap call into a compiled
function (kernel.py). The engine calls the pure functions of rawdqn/algorithms/; it never
restates an equation, and nothing under rawdqn/algorithms/ imports it.
"""
