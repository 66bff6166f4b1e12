"""The reader's layer: each agent family as pure functions of explicit tensors.

Nothing here imports rawdqn.engine (a test checks it): a reader goes from an agent's module
to rawdqn/bellman.py, losses.py and optim.py and has read the algorithm.
"""
