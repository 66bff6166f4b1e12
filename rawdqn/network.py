"""The Q-network: an MLP of raw variables, Q(s, ·; θ) for every action at once.

    h_0 = s,   h_i = relu(h_{i-1} W_i + b_i),   Q(s, ·) = h_L W_out + b_out

With `hidden=()` it is linear, Q(s, ·) = s W + b; over one-hot states and with
no bias, W is exactly a Q-table (W[s, a] = Q(s, a)).
"""
import math

import tensorflow as tf

INITIALIZERS = ("glorot_uniform", "zeros")


class QNetwork(tf.Module):
    """Q-values `[batch, num_actions]` from observations `[batch, obs_dim]`.

    Weights are Glorot-uniform, U(−√(6/(fan_in+fan_out)), +√(…)), drawn from a
    stateless RNG keyed by (seed, layer), so the same seed gives the same
    network whatever else has used TensorFlow's random state. Biases start at 0.
    """

    def __init__(self, obs_dim, num_actions, hidden=(64, 64), seed=0,
                 dtype=tf.float32, use_bias=True, initializer="glorot_uniform",
                 name=None):
        super().__init__(name=name)
        if int(obs_dim) < 1 or int(num_actions) < 1:
            raise ValueError(f"QNetwork needs obs_dim >= 1 and num_actions >= 1; "
                             f"got obs_dim={obs_dim}, num_actions={num_actions}")
        if any(int(width) < 1 for width in hidden):
            raise ValueError(f"hidden layer widths must be >= 1; got {tuple(hidden)}")
        if initializer not in INITIALIZERS:
            raise ValueError(f"initializer must be one of {INITIALIZERS}; got {initializer!r}")
        self.obs_dim = int(obs_dim)
        self.num_actions = int(num_actions)
        self.hidden = tuple(int(width) for width in hidden)
        self.dtype = tf.as_dtype(dtype)
        self.use_bias = bool(use_bias)
        sizes = (self.obs_dim, *self.hidden, self.num_actions)
        self.kernels = []
        self.biases = []
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if initializer == "zeros":
                kernel = tf.zeros([fan_in, fan_out], self.dtype)
            else:
                limit = math.sqrt(6.0 / (fan_in + fan_out))
                kernel = tf.random.stateless_uniform(
                    [fan_in, fan_out], seed=[int(seed), layer],
                    minval=-limit, maxval=limit, dtype=self.dtype)
            self.kernels.append(tf.Variable(kernel, name=f"kernel_{layer}"))
            if self.use_bias:
                self.biases.append(tf.Variable(tf.zeros([fan_out], self.dtype),
                                               name=f"bias_{layer}"))

    def __call__(self, obs, action_mask=None):
        """Q(s, ·); with `action_mask`, Q(s, ·) ⊙ mask (the tutorials' filtered output)."""
        x = tf.cast(tf.convert_to_tensor(obs, dtype_hint=self.dtype), self.dtype)
        last = len(self.kernels) - 1
        for layer, kernel in enumerate(self.kernels):
            x = tf.matmul(x, kernel)
            if self.use_bias:
                x = x + self.biases[layer]
            if layer < last:
                x = tf.nn.relu(x)
        if action_mask is not None:
            x = x * tf.cast(action_mask, self.dtype)
        return x

    @property
    def variables_in_order(self):
        """Kernels and biases, layer by layer: a stable order for copying and optimizers."""
        ordered = []
        for layer, kernel in enumerate(self.kernels):
            ordered.append(kernel)
            if self.use_bias:
                ordered.append(self.biases[layer])
        return ordered

    @property
    def num_parameters(self):
        return sum(int(tf.size(v)) for v in self.variables_in_order)
