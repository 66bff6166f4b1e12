"""A sum-tree in one device variable: sampling proportional to priorities in O(log N).

The leaves are the priorities p_0 … p_{N−1} (padded with zeros to L = 2^⌈log₂ N⌉); each
inner node holds the sum of its two children, so the root is Σ p:

    tree[1] = Σ p,   tree[i] = tree[2i] + tree[2i + 1],   tree[L + k] = p_k

`find(u)` for u ∈ [0, Σ p) walks from the root to the leaf k with
Σ_{j<k} p_j ≤ u < Σ_{j≤k} p_j, going right and subtracting the left sum where u is at least
that sum: with u ~ U[0, Σ p), P(k) = p_k / Σ p (Schaul et al. 2016, "proportional"). An
update writes the leaves, then recomputes their ancestors level by level: O(B log N) for B
leaves, log₂ L gathers and scatters, each a fixed shape, so it compiles under XLA. The tree
is float64, so that a million priorities add up without float32's 2⁻²⁴ losing the small ones.
"""
import math

import tensorflow as tf


class SumTree(tf.Module):
    """Priorities of `size` items, sampled in proportion (module docstring)."""

    def __init__(self, size, name=None):
        super().__init__(name=name)
        self.size = int(size)
        self.depth = max(1, math.ceil(math.log2(self.size)))
        self.leaves = 2 ** self.depth
        self.tree = tf.Variable(tf.zeros([2 * self.leaves], tf.float64), trainable=False, name="tree")

    def total_fn(self):
        """Σ p (the root)."""
        return self.tree[1]

    def priorities_fn(self, indices):
        """p_k for items `indices` [B]."""
        return tf.gather(self.tree, self.leaves + tf.cast(indices, tf.int32))

    def update_fn(self, indices, priorities):
        """p_k ← priorities for items `indices` [B], then each ancestor's sum. Repeated indices
        must carry the same priority (a batch sampled with replacement: the same TD error)."""
        node = self.leaves + tf.cast(indices, tf.int32)
        self.tree.scatter_nd_update(node[:, None], tf.cast(priorities, tf.float64))
        for _ in range(self.depth):
            node = node // 2
            tree = self.tree.read_value()
            self.tree.scatter_nd_update(node[:, None], tf.gather(tree, 2 * node) + tf.gather(tree, 2 * node + 1))

    def find_fn(self, values):
        """The items k [B] (int32) whose prefix sums bracket `values` [B] (each in [0, Σ p))."""
        tree = self.tree.read_value()
        values = tf.cast(values, tf.float64)
        node = tf.ones_like(values, tf.int32)
        for _ in range(self.depth):
            left = tf.gather(tree, 2 * node)
            # Right where u reaches past the left sum, unless rounding has left nothing there.
            go_right = (values >= left) & (tf.gather(tree, 2 * node + 1) > 0)
            values = tf.where(go_right, values - left, values)
            node = 2 * node + tf.cast(go_right, tf.int32)
        return node - self.leaves

    @staticmethod
    def bytes_for(size):
        """Bytes a tree of `size` items holds: 2 · 2^⌈log₂ size⌉ float64 nodes (for memory checks)."""
        return 16 * 2 ** max(1, math.ceil(math.log2(int(size))))

    @property
    def nbytes(self):
        return self.tree.shape.num_elements() * self.tree.dtype.size


class Priorities(SumTree):
    """A prioritized replay's SumTree (Schaul et al. 2016, proportional): p = (|δ| + ε)^α from the
    errors of what was drawn, and the largest p so far (`max_priority`, 1 at first) for what is new."""

    def __init__(self, size, exponent=0.6, epsilon=1e-6, name=None):
        super().__init__(size, name=name)
        self.exponent, self.epsilon = float(exponent), float(epsilon)
        self.max_priority = tf.Variable(tf.constant(1.0, tf.float64), trainable=False, name="max_priority")

    def update_from_errors_fn(self, indices, error):
        """p_k ← (|error_k| + ε)^α for items `indices` (a TD error, or a distributional agent's loss)."""
        priority = tf.pow(tf.abs(tf.cast(error, tf.float64)) + self.epsilon, self.exponent)
        self.update_fn(indices, priority)
        self.max_priority.assign(tf.maximum(self.max_priority, tf.reduce_max(priority)))
