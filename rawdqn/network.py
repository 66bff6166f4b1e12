"""The Q-network: an MLP of raw variables, Q(s, ·; θ) for every action at once.

    h_0 = s,   h_i = relu(h_{i-1} W_i + b_i),   Q(s, ·) = h_L W_out + b_out

θ is one vector variable, `theta`: W_0, b_0, W_1, b_1, … laid end to end, each layer's
kernel and bias a slice of it. One variable instead of one per layer is the same
arithmetic, and a compiled step then moves 1 buffer for the weights (and 1 per optimizer
slot) instead of 2L: on a small network each buffer a program touches costs more than its
arithmetic (bench/README.md, "where a step's time goes").

With `hidden=()` it is linear, Q(s, ·) = s W + b; over one-hot states and with
no bias, W is exactly a Q-table (W[s, a] = Q(s, a)).
"""
import math

import tensorflow as tf

INITIALIZERS = ("glorot_uniform", "zeros")


class ParameterView:
    """One layer's kernel or bias: θ[start:start + size] seen with its shape."""

    def __init__(self, theta, start, shape):
        self.theta, self.start, self.shape = theta, start, tuple(shape)
        self.size = math.prod(self.shape)
        self.dtype = theta.dtype

    def of(self, theta):
        """This slice of a θ-shaped tensor, reshaped."""
        return tf.reshape(theta[self.start:self.start + self.size], self.shape)

    def read_value(self):
        return self.of(self.theta.read_value())

    def numpy(self):
        return self.read_value().numpy()

    def assign(self, value):
        """Write this slice of θ (eagerly, or inside a compiled program)."""
        flat = tf.reshape(tf.convert_to_tensor(value, self.dtype), [self.size])
        self.theta[self.start:self.start + self.size].assign(flat)


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
        initial, shapes = [], []   # (kernel shape, bias shape or None) per layer
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            if initializer == "zeros":
                kernel = tf.zeros([fan_in, fan_out], self.dtype)
            else:
                limit = math.sqrt(6.0 / (fan_in + fan_out))
                kernel = tf.random.stateless_uniform(
                    [fan_in, fan_out], seed=[int(seed), layer],
                    minval=-limit, maxval=limit, dtype=self.dtype)
            initial.append(tf.reshape(kernel, [-1]))
            if self.use_bias:
                initial.append(tf.zeros([fan_out], self.dtype))
            shapes.append(((fan_in, fan_out), (fan_out,) if self.use_bias else None))
        self.theta = tf.Variable(tf.concat(initial, axis=0), name="theta")
        self.kernels, self.biases, start = [], [], 0
        for kernel_shape, bias_shape in shapes:
            self.kernels.append(ParameterView(self.theta, start, kernel_shape))
            start += self.kernels[-1].size
            if bias_shape:
                self.biases.append(ParameterView(self.theta, start, bias_shape))
                start += self.biases[-1].size

    def __call__(self, obs, action_mask=None):
        """Q(s, ·); with `action_mask`, Q(s, ·) ⊙ mask (the tutorials' filtered output)."""
        x = tf.cast(tf.convert_to_tensor(obs, dtype_hint=self.dtype), self.dtype)
        theta = self.theta.read_value()   # read once: one buffer, one gradient
        last = len(self.kernels) - 1
        for layer, kernel in enumerate(self.kernels):
            x = tf.matmul(x, kernel.of(theta))
            if self.use_bias:
                x = x + self.biases[layer].of(theta)
            if layer < last:
                x = tf.nn.relu(x)
        if action_mask is not None:
            x = x * tf.cast(action_mask, self.dtype)
        return x

    @property
    def layers_in_order(self):
        """Kernel and bias views, layer by layer: W_0, b_0, W_1, b_1, … (θ's layout)."""
        ordered = []
        for layer, kernel in enumerate(self.kernels):
            ordered.append(kernel)
            if self.use_bias:
                ordered.append(self.biases[layer])
        return ordered

    @property
    def variables_in_order(self):
        """The network's variables, for copying and optimizers: θ alone."""
        return [self.theta]

    @property
    def num_parameters(self):
        return int(self.theta.shape[0])
