"""The one-θ parameter layout: a network's parameters as one vector variable θ.

θ holds W_0, b_0, W_1, b_1, … laid end to end (then a noisy network's σ's), each layer's
kernel and bias a slice of it (ParameterView). One variable instead of one per layer is the
same arithmetic, and a compiled step then moves 1 buffer for the weights (and 1 per optimizer
slot) instead of 2L: on a small network each buffer a program touches costs more than its
arithmetic (bench/README.md, "where a step's time goes").

The networks of rawdqn/network.py are built on this layout; the pure functions of
rawdqn/algorithms/ see θ only as a tensor they pass to `network.apply(θ, obs)`.
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


def split_theta(theta, sizes):
    """θ cut into consecutive pieces of `sizes`; the gradient writes each piece's gradient into
    its place in one zero vector (in place under XLA). Autodiff's own forms are slower under
    XLA:CPU: a slice per layer pads every layer's gradient to θ's length and sums the pads,
    and tf.split's gradient, a concatenation, ran 4× slower still (bench/conv.py)."""
    @tf.custom_gradient
    def split(theta):
        def gradient(*piece_gradients):
            flat, start = tf.zeros_like(theta), 0
            for size, piece_gradient in zip(sizes, piece_gradients):
                if piece_gradient is not None:
                    flat = tf.raw_ops.TensorStridedSliceUpdate(input=flat, begin=[start], end=[start + size],
                                                               strides=[1], value=piece_gradient)
                start += size
            return flat
        return tf.split(theta, sizes), gradient
    return split(theta)


class ThetaLayout:
    """θ, its views, and a network as a function of an explicit θ (needs `dtype`, `use_bias`,
    `kernels`, `biases` set by build_theta, and the network's __call__ and logits).

    Kernels are Glorot-uniform, U(−√(6/(fan_in+fan_out)), +√(…)), drawn from a stateless
    RNG keyed by (seed, layer), so the same seed gives the same network whatever else has
    used TensorFlow's random state. Biases start at 0.
    """

    def build_theta(self, layers, seed, initializer, noisy_from=None, noisy_sigma=0.5, normed=()):
        """layers: (kernel shape, fan_in, fan_out) per layer; sets theta, kernels, biases (and, for
        the noisy layers noisy_from …, their σ's in `noise_scales`, after every μ in θ; for the
        layers in `normed`, a layer norm's scale γ = 1 and offset β = 0 in `norms`, last)."""
        if initializer not in INITIALIZERS:
            raise ValueError(f"initializer must be one of {INITIALIZERS}; got {initializer!r}")
        self.noisy_from = noisy_from
        self.noise_seed = int(seed)
        initial, shapes, scales = [], [], []   # (kernel shape, bias shape or None) per layer; σ's
        for layer, (kernel_shape, fan_in, fan_out) in enumerate(layers):
            noisy = noisy_from is not None and layer >= noisy_from
            if initializer == "zeros":
                kernel = tf.zeros(kernel_shape, self.dtype)
            elif noisy:   # Fortunato et al. 2018, factorised
                bound = 1.0 / math.sqrt(fan_in)
                kernel = tf.random.stateless_uniform(kernel_shape, seed=[int(seed), layer],
                                                     minval=-bound, maxval=bound, dtype=self.dtype)
            else:
                limit = math.sqrt(6.0 / (fan_in + fan_out))
                kernel = tf.random.stateless_uniform(kernel_shape, seed=[int(seed), layer],
                                                     minval=-limit, maxval=limit, dtype=self.dtype)
            initial.append(tf.reshape(kernel, [-1]))
            bias_shape = (kernel_shape[-1],) if self.use_bias else None
            if bias_shape:
                bias = tf.random.stateless_uniform(bias_shape, seed=[int(seed), layer + 10_000], minval=-bound,
                                                   maxval=bound, dtype=self.dtype) \
                    if noisy and initializer != "zeros" else tf.zeros(bias_shape, self.dtype)
                initial.append(bias)
            shapes.append((kernel_shape, bias_shape))
            if noisy:
                scales.append([(kernel_shape, noisy_sigma / math.sqrt(fan_in))]
                              + ([(bias_shape, noisy_sigma / math.sqrt(fan_in))] if bias_shape else []))
        initial += [tf.fill([math.prod(shape)], tf.constant(value, self.dtype)) for layer in scales for shape, value in layer]
        self.normed = {layer: index for index, layer in enumerate(normed)}   # layer → its norm
        norm_widths = [layers[layer][2] for layer in normed]
        initial += [tf.constant(value, self.dtype, [width]) for width in norm_widths for value in (1.0, 0.0)]
        self.theta = tf.Variable(tf.concat(initial, axis=0), name="theta")
        self.kernels, self.biases, self.noise_scales, start = [], [], [], 0
        for kernel_shape, bias_shape in shapes:
            self.kernels.append(ParameterView(self.theta, start, kernel_shape))
            start += self.kernels[-1].size
            if bias_shape:
                self.biases.append(ParameterView(self.theta, start, bias_shape))
                start += self.biases[-1].size
        for layer in scales:   # (σ_W, σ_b) per noisy layer
            views = []
            for shape, _ in layer:
                views.append(ParameterView(self.theta, start, shape))
                start += views[-1].size
            self.noise_scales.append(views)
        self.norms = []
        for width in norm_widths:   # (γ, β) per normed layer
            self.norms.append([ParameterView(self.theta, start, (width,)), ParameterView(self.theta, start + width, (width,))])
            start += 2 * width
        if noisy_from is not None:
            self.noise_draws = tf.Variable(0, dtype=tf.int32, trainable=False, name="noise_draws")

    # How θ is cut into layers when a gradient flows through it: by split_theta ("custom": the
    # fast form under XLA) or by tf.split, whose gradient is a concatenation ("autodiff": what a
    # TensorFlow graph runs well, mode 'hybrid'). The values and the gradient are the same.
    theta_split = "custom"

    def apply(self, theta, obs, noise=None, taus=None):
        """Q(s, ·; θ) [batch, num_actions] for an explicit θ (a tensor of θ's layout); an implicit
        quantile network's mean over the levels `taus` [batch, M]."""
        return self(obs, parameters=self.unpack(theta, differentiable=self.theta_split == "custom"), noise=noise,
                    taus=taus)

    def apply_logits(self, theta, obs, noise=None, taus=None):
        """A distributional head's logits [batch, num_actions, atoms] for an explicit θ; a quantile
        head's quantiles; an implicit one's Z_τ at `taus` [batch, M]: [batch, num_actions, M]."""
        return self.logits(obs, parameters=self.unpack(theta, differentiable=self.theta_split == "custom"),
                           noise=noise, taus=taus)

    def layer_values(self, theta):
        """A θ-shaped tensor (θ itself, its gradient) cut into layers W_0, b_0, W_1, …, σ's."""
        return [view.of(theta) for view in self.layers_in_order]

    def unpack(self, theta, differentiable=True):
        """θ as (kernels, biases), each layer's tensors, cut by split_theta (or, where the
        gradient is taken with respect to the layers themselves, by a plain split); a noisy
        network's as (kernels, biases, scales), scales its [σ_W, σ_b] per noisy layer; with
        layer norms, (kernels, biases, scales or [], norms), norms [γ, β] per normed layer."""
        views = self.layers_in_order
        sizes = [view.size for view in views]
        pieces = split_theta(theta, sizes) if differentiable else tf.split(theta, sizes)
        tensors = [tf.reshape(piece, view.shape) for piece, view in zip(pieces, views)]
        per_layer = 2 if self.use_bias else 1
        count = len(self.kernels) * per_layer
        norm_count = 2 * len(self.norms)
        norm_tensors = tensors[len(tensors) - norm_count:]
        tensors, scale_tensors = tensors[:count], tensors[count:len(tensors) - norm_count]
        if not self.use_bias:
            kernels, biases = tensors, [None] * len(tensors)
        else:
            kernels, biases = tensors[0::2], tensors[1::2]
        scales = [scale_tensors[i:i + per_layer] for i in range(0, len(scale_tensors), per_layer)]
        if self.norms:
            return kernels, biases, scales, [norm_tensors[i:i + 2] for i in range(0, norm_count, 2)]
        return (kernels, biases, scales) if self.noisy else (kernels, biases)

    @property
    def layers_in_order(self):
        """Kernel and bias views, layer by layer: W_0, b_0, W_1, b_1, …, then a noisy network's
        σ_W, σ_b per noisy layer (θ's layout)."""
        ordered = []
        for layer, kernel in enumerate(self.kernels):
            ordered.append(kernel)
            if self.use_bias:
                ordered.append(self.biases[layer])
        return (ordered + [view for layer in getattr(self, "noise_scales", []) for view in layer]
                + [view for norm in self.norms for view in norm])

    @staticmethod
    def in_order(parameters):
        """unpack's (kernels, biases[, scales[, norms]]) as W_0, b_0, W_1, b_1, …, σ's, γ's and β's
        (layers_in_order's order)."""
        kernels, biases = parameters[:2]
        ordered = [tensor for pair in zip(kernels, biases) for tensor in pair if tensor is not None]
        return ordered + [tensor for group in parameters[2:] for layer in group for tensor in layer]

    @property
    def variables_in_order(self):
        """The network's variables, for copying and optimizers: θ alone."""
        return [self.theta]

    @property
    def num_parameters(self):
        return int(self.theta.shape[0])
