"""tf.cond and tf.while_loop for step bodies whose branches and loops update state.

In a compiled program the agents keep their state in tf.Variables, and a branch that assigns one
is an ordinary tf.cond. When the engine runs K seeds as one batch (engine/seed_axis.py), the
same step body is traced with each variable's value held in a Python object instead (a state
cell: `.value`), so what a branch or a loop body assigns must leave it as an output. `cond` and
`while_loop` do that for the cells the engine declares with `carrying(cells)`, and are plain
tf.cond and tf.while_loop otherwise.
"""
import contextlib

import tensorflow as tf

_carried = []   # the cells of the traces in progress, innermost last


@contextlib.contextmanager
def carrying(cells):
    """Within the block, `cond` and `while_loop` carry each cell's `.value` through their branches and bodies."""
    _carried.append(list(cells))
    try:
        yield
    finally:
        _carried.pop()


def _trimmed(build, cells):
    """build(cells) → (outputs, indices of the cells it changed), built twice: once carrying every
    cell, to see which the branches or the body change, then carrying only those (a value carried
    unchanged through a branch or a loop can cost a copy of it; the first build is left unused)."""
    before = [cell.value for cell in cells]
    outputs, changed = build(cells)
    if len(changed) == len(cells):
        return outputs
    for cell, value in zip(cells, before):
        cell.value = value
    return build([cells[i] for i in changed])[0]


def cond(pred, true_fn, false_fn):
    """tf.cond(pred, true_fn, false_fn), carrying the cells' values (the module docstring)."""
    if not _carried:
        return tf.cond(pred, true_fn, false_fn)

    def build(cells):
        before, changed = [cell.value for cell in cells], set()

        def branch(function):
            def run():
                for cell, value in zip(cells, before):
                    cell.value = value
                outputs = function()
                changed.update(i for i, (cell, value) in enumerate(zip(cells, before)) if cell.value is not value)
                return outputs, [cell.value for cell in cells]
            return run
        outputs, after = tf.cond(pred, branch(true_fn), branch(false_fn))
        for cell, value in zip(cells, after):
            cell.value = value
        return outputs, sorted(changed)
    return _trimmed(build, _carried[-1])


def while_loop(condition, body, loop_vars):
    """tf.while_loop(condition, body, loop_vars), carrying the cells' values (the module docstring)."""
    if not _carried:
        return tf.while_loop(condition, body, loop_vars)

    def build(cells):
        changed = set()

        def bind(values):
            for cell, value in zip(cells, values):
                cell.value = value

        def carried_condition(loop_vars, values):
            bind(values)
            return condition(*loop_vars)

        def carried_body(loop_vars, values):
            bind(values)
            outputs = tuple(body(*loop_vars))
            changed.update(i for i, (cell, value) in enumerate(zip(cells, values)) if cell.value is not value)
            return outputs, [cell.value for cell in cells]
        outputs, after = tf.while_loop(carried_condition, carried_body,
                                       (tuple(loop_vars), [cell.value for cell in cells]))
        bind(after)
        return outputs, sorted(changed)
    return _trimmed(build, _carried[-1])
