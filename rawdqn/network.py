"""The Q-network: an MLP of raw variables, Q(s, ·; θ) for every action at once.

    h_0 = s,   h_i = relu(h_{i-1} W_i + b_i),   Q(s, ·) = h_L W_out + b_out

θ is one vector variable, `theta`: W_0, b_0, W_1, b_1, … laid end to end, each layer's
kernel and bias a slice of it. One variable instead of one per layer is the same
arithmetic, and a compiled step then moves 1 buffer for the weights (and 1 per optimizer
slot) instead of 2L: on a small network each buffer a program touches costs more than its
arithmetic (bench/README.md, "where a step's time goes").

With `obs_bounds=(low, high)` (scale_observations) the input is first mapped to [−1, 1] per
component, h_0 = 2(s − low)/(high − low) − 1, so that a feature of tiny range (MountainCar's
velocity, ±0.07) starts out weighing as much as the others; the bounds are constants of
the network, so an exported model takes raw observations.

With `hidden=()` it is linear, Q(s, ·) = s W + b; over one-hot states and with no bias, W is
exactly a Q-table (W[s, a] = Q(s, a)).

`dueling=True` (Wang et al. 2016) splits the network after the layers it shares into a value
stream and an advantage stream, each with its own copy of the last hidden layer (the paper's
Atari network: the convs shared, then fc 512 → 1 and fc 512 → |A|):

    Q(s, a) = V(s) + A(s, a) − (1/|A|) Σ_a' A(s, a')        (dueling_q_values)

θ then holds the shared layers, the value stream's, then the advantage stream's.

`noisy=True` (Fortunato et al. 2018, factorised Gaussian) makes every fully connected layer

    y = x (μ_W + σ_W ⊙ f(ε_in) f(ε_out)ᵀ) + μ_b + σ_b ⊙ f(ε_out),   f(ε) = sgn(ε) √|ε|,  ε ~ N(0, 1)

computed as x μ_W + ((x ⊙ f(ε_in)) σ_W) ⊙ f(ε_out) + …, so the noise costs one more product per
layer and no [fan_in, fan_out] draw. μ ~ U[−1/√p, 1/√p], σ = σ₀/√p (p = fan_in, σ₀ = 0.5).
θ holds the μ's where a plain network holds its weights, and the σ's after them; a network
called with `noise=None` (evaluation, export) uses μ alone.

`atoms=K > 1` makes it distributional (C51, Bellemare et al. 2017): K logits per action over
the support z = linspace(v_min, v_max, K) (`logits`), Q(s, a) = Σ_i z_i softmax(logits(s, a))_i;
a dueling head combines V and A atom by atom (Hessel et al. 2018).

`embedding=n > 0` makes it an implicit quantile network (IQN, Dabney et al. 2018b, eq. 4):
Z_τ(s, ·) = f(ψ(s) ⊙ φ(τ)), φ(τ) = relu(Σ_{i<n} cos(π i τ) w_i + b), ψ the layers a dueling
head would share, f the rest (`embed`; its Q-values: `default_taus`).

`layer_norm=True` puts LN(x) = γ ⊙ (x − μ)/√(σ² + ε) + β before every hidden fully connected
layer's relu (Ba et al. 2016; PQN's network, Gallici et al. 2024); γ and β last in θ.

`ConvQNetwork` is the pixel version (Mnih et al. 2015), θ laid out the same way:

    h_0 = frames / 255,   h_i = relu(conv(h_{i-1}, K_i, stride_i) + c_i)   (VALID padding)
    z_0 = flatten(h_C),   z_j = relu(z_{j-1} W_j + b_j),   Q(s, ·) = z_L W_out + b_out
"""
import math

import tensorflow as tf

from rawdqn import conv
from rawdqn.engine.theta import INITIALIZERS, ParameterView, ThetaLayout, split_theta  # noqa: F401

def dueling_q_values(value, advantage):
    """Q(s, a) = V(s) + A(s, a) − mean_a' A(s, a')   (Wang et al. 2016, eq. 9).

    value [batch, 1], advantage [batch, num_actions] → [batch, num_actions] (or, atom by atom,
    [batch, 1, K] and [batch, num_actions, K]). Subtracting the mean makes V and A
    identifiable: the advantages of each state average to zero.
    """
    return value + advantage - tf.reduce_mean(advantage, axis=1, keepdims=True)


LAYER_NORM_EPSILON = 1e-6   # Flax's LayerNorm, which PQN's purejaxql uses


def layer_norm(x, scale, offset, epsilon=LAYER_NORM_EPSILON):
    """γ ⊙ (x − μ)/√(σ² + ε) + β over the last axis (Ba et al. 2016), the variance of the centred x."""
    centred = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    variance = tf.reduce_mean(tf.square(centred), axis=-1, keepdims=True)
    return centred * tf.math.rsqrt(variance + epsilon) * scale + offset


def dense_layer_shapes(fan_in, hidden, num_actions, dueling=False, atoms=1, embedding=0):
    """(kernel shape, fan_in, fan_out) of each fully connected layer from a `fan_in`-wide input,
    θ's order: hidden … → num_actions · atoms; dueling: the shared hidden[:-1], then the value
    stream (hidden[-1] → atoms), then the advantage stream (hidden[-1] → num_actions · atoms);
    with an IQN `embedding` of n cosines, φ's layer n → width of ψ last."""
    def chain(sizes):
        return [((a, b), a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    embedding_layer = chain((embedding, (fan_in, *hidden)[max(len(hidden) - 1, 0)])) if embedding else []
    if not dueling:
        return chain((fan_in, *hidden, num_actions * atoms)) + embedding_layer
    shared = (fan_in, *hidden[:-1])
    stream_in = shared[-1]
    return (chain(shared) + chain((stream_in, *hidden[-1:], atoms))
            + chain((stream_in, *hidden[-1:], num_actions * atoms)) + embedding_layer)


def standard_normal(count, seed, dtype):
    """`count` N(0, 1) draws by Box–Muller, z = √(−2 ln u₁) cos 2πu₂, from uniforms made of
    stateless uint32 bits, u = (bits + ½) / 2³² (float32: the top 24 bits): TensorFlow's own stateless float draws
    differ between its kernels and XLA's, its raw bits do not, so every mode gets the same noise
    (in float32, to the last bit of log and cos)."""
    bits = tf.random.stateless_uniform([2, count], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
    if dtype == tf.float64:
        uniform = (tf.cast(bits, tf.float64) + 0.5) / 2.0 ** 32
    else:   # float32 holds 24 bits exactly (and its log and cos are ~4× cheaper than float64's here)
        uniform = (tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), dtype) + 0.5) / 2.0 ** 24
    return tf.sqrt(-2.0 * tf.math.log(uniform[0])) * tf.cos(2.0 * math.pi * uniform[1])


class ThetaNetwork(ThetaLayout, tf.Module):
    """A network whose parameters are one vector θ (rawdqn/engine/theta.py: its layout and
    initialisation): the forward pass, its head, and a noisy network's noise."""

    @property
    def noisy(self):
        return getattr(self, "noisy_from", None) is not None

    def sample_noise(self):
        """Fresh factorised noise for one forward pass: (f(ε_in), f(ε_out)) per noisy layer,
        f(ε) = sgn(ε)√|ε|, from a stateless RNG keyed by (seed, passes so far)."""
        widths = [(kernel.shape[0], kernel.shape[1]) for kernel in self.kernels[self.noisy_from:]]
        total = sum(fan_in + fan_out for fan_in, fan_out in widths)
        seed = tf.stack([self.noise_seed + 7_919, self.noise_draws])
        self.noise_draws.assign_add(1)
        draws = standard_normal(total, seed, self.dtype)
        shaped = tf.sign(draws) * tf.sqrt(tf.abs(draws))
        # Through a conditional (always taken: Box–Muller's draws are finite), so that XLA keeps the
        # noise a buffer of its own: fused into the products' loops instead, it was recomputed for
        # every multiply (a 256×256 MLP's noisy forward at batch 128: 2.35 ms, with this 0.55 ms).
        shaped = tf.cond(tf.reduce_all(tf.math.is_finite(shaped)), lambda: shaped, lambda: tf.zeros_like(shaped))
        noise, start = [], 0
        for fan_in, fan_out in widths:
            noise.append((shaped[start:start + fan_in], shaped[start + fan_in:start + fan_in + fan_out]))
            start += fan_in + fan_out
        return noise

    def dense_layers(self, x, parameters, first, noise=None, taus=None):
        """The fully connected layers from layer `first` on: x W_first + b_first, relu, …, the
        last layer linear; with dueling, the shared layers, then dueling_q_values(value stream,
        advantage stream), atom by atom. `parameters` is unpack(θ). [batch, num_actions · atoms];
        an implicit quantile network's at the levels `taus` [batch, M]: [batch, num_actions · M]."""
        kernels, biases = parameters[:2]
        # XLA:CPU emits a one-row product by a large kernel (acting in one env, a conv network's fc
        # layer) as a loop fused with θ's slice, ~3× slower than the two-row product it sends to Eigen:
        # pad one row, drop it after (bench/README.md, Pong); not an implicit network (M rows a state).
        single_row = not self.embedding and x.shape[0] == 1 and kernels[first].shape.num_elements() >= 2 ** 16
        if single_row:
            x = tf.concat([x, tf.zeros_like(x)], axis=0)
        last = len(kernels) - (1 if self.embedding else 0)   # φ's layer is θ's last
        if self.embedding:
            split = last - (2 if self.dueling else 1) * self.stream_depth
            psi = tf.nn.relu(self.chain(x, parameters, first, split, noise)) if split > first else x
            x, first = self.embed(psi, taus, kernels[last], biases[last] if self.use_bias else None), split
        if self.dueling:
            stream = self.stream_depth
            x = tf.nn.relu(self.chain(x, parameters, first, last - 2 * stream, noise)) if last - 2 * stream > first else x
            value = self.chain(x, parameters, last - 2 * stream, last - stream, noise)
            advantage = self.chain(x, parameters, last - stream, last, noise)
            if self.atoms > 1:
                value, advantage = value[:, None, :], tf.reshape(advantage, [-1, self.num_actions, self.atoms])
            x = tf.reshape(dueling_q_values(value, advantage), [-1, self.num_actions * self.atoms])
        else:
            x = self.chain(x, parameters, first, last, noise)
        if single_row:
            x = x[:1]
        if self.embedding:   # rows b·M + m → [batch, num_actions · M], quantile m of action a at a·M + m
            x = tf.transpose(tf.reshape(x, [tf.shape(taus)[0], tf.shape(taus)[1], self.num_actions]), [0, 2, 1])
            x = tf.reshape(x, [tf.shape(taus)[0], -1])
        return x

    def embed(self, psi, taus, kernel, bias):
        """ψ(s) ⊙ φ(τ), φ(τ) = relu(Σ_{i<n} cos(π i τ) w_i + b): [batch · M, width of ψ], row b·M + m
        for state b at level taus[b, m]."""
        cosines = tf.cos(math.pi * tf.range(self.embedding, dtype=self.dtype) * tf.cast(taus, self.dtype)[..., None])
        phi = tf.matmul(tf.reshape(cosines, [-1, self.embedding]), kernel)
        phi = tf.nn.relu(phi if bias is None else phi + bias)
        return tf.repeat(psi, tf.shape(taus)[1], axis=0) * phi

    def default_taus(self, batch):
        """The K = policy_samples midpoints (2k + 1)/2K for every state, [batch, K]: Q = ∫₀¹ Z_τ dτ
        by the midpoint rule, so evaluation and export need no random draw."""
        midpoints = (2.0 * tf.range(self.policy_samples, dtype=self.dtype) + 1.0) / (2.0 * self.policy_samples)
        return tf.tile(midpoints[None], [batch, 1])

    def set_head(self, atoms, v_min, v_max, quantile=False, embedding=0, policy_samples=32):
        """One output per action; K = atoms logits per action over the support z; with
        `quantile`, K quantiles of the return per action (QR-DQN, Dabney et al. 2018a); with an
        `embedding` of n cosines, the quantiles at any levels τ (IQN, Dabney et al. 2018b)."""
        self.atoms, self.quantile = int(atoms), bool(quantile)
        self.embedding, self.policy_samples = int(embedding), int(policy_samples)
        if self.embedding:
            if self.embedding < 1 or self.policy_samples < 1 or self.atoms != 1 or self.quantile:
                raise ValueError(f"an implicit quantile head needs n >= 1 cosines and K >= 1 levels, and no other "
                                 f"head; got n={embedding}, K={policy_samples}, atoms={atoms}, quantile={quantile}")
            self.support = None
            return
        if self.quantile:
            if self.atoms < 1:
                raise ValueError(f"a quantile head needs at least one quantile; got {atoms}")
            self.support = None
            return
        if self.atoms < 1 or (self.atoms > 1 and not v_min < v_max):
            raise ValueError(f"a distributional head needs atoms >= 2 and v_min < v_max; got {atoms}, {v_min}, {v_max}")
        self.support = tf.linspace(tf.constant(v_min, self.dtype), tf.constant(v_max, self.dtype), self.atoms) \
            if self.atoms > 1 else None

    def __call__(self, obs, action_mask=None, parameters=None, noise=None, taus=None):
        """Q(s, ·) [batch, num_actions]; with `action_mask`, Q(s, ·) ⊙ mask (the tutorials'
        filtered output); `parameters`: unpack(θ) made elsewhere, else θ is read and cut here;
        `noise`: a noisy network's sample_noise() (None: its μ alone).
        A distributional head's Q(s, a) = Σ_i z_i softmax(logits(s, a))_i; a quantile head's
        the mean of its quantiles, (1/K) Σ_i θ_i(s, a); an implicit one's the mean of Z_τ over
        `taus` [batch, M] (default: default_taus)."""
        outputs = self.outputs(obs, parameters, noise, taus)
        if self.quantile or self.embedding:
            outputs = tf.reduce_mean(self.as_logits(outputs), axis=-1)
        elif self.atoms > 1:
            outputs = tf.reduce_sum(tf.nn.softmax(self.as_logits(outputs), axis=-1) * self.support, axis=-1)
        if action_mask is not None:
            outputs = outputs * tf.cast(action_mask, self.dtype)
        return outputs

    def logits(self, obs, parameters=None, noise=None, taus=None):
        """A distributional head's logits, or a quantile head's quantiles, [batch, num_actions, atoms];
        an implicit one's Z_τ at `taus` [batch, M]: [batch, num_actions, M]."""
        return self.as_logits(self.outputs(obs, parameters, noise, taus))

    def as_logits(self, outputs):
        if self.embedding:   # M levels, as many as the call asked for
            return tf.reshape(outputs, [tf.shape(outputs)[0], self.num_actions, -1])
        return tf.reshape(outputs, [-1, self.num_actions, self.atoms])

    def chain(self, x, parameters, begin, end, noise=None):
        """Layers begin … end − 1 in turn, relu between them, the last one linear; with `noise`
        (sample_noise()), the noisy layers' x (μ_W + σ_W ⊙ f_in f_outᵀ) + μ_b + σ_b ⊙ f_out."""
        kernels, biases = parameters[:2]
        for layer in range(begin, end):
            noisy = noise is not None and layer >= self.noisy_from
            x_in = x
            x = tf.matmul(x_in, kernels[layer])
            if noisy:
                scales = parameters[2][layer - self.noisy_from]
                noise_in, noise_out = noise[layer - self.noisy_from]
                x = x + tf.matmul(x_in * noise_in, scales[0]) * noise_out
            if self.use_bias:
                x = x + biases[layer]
                if noisy:
                    x = x + scales[1] * noise_out
            if layer in self.normed:
                x = layer_norm(x, *parameters[3][self.normed[layer]])
            if layer < end - 1:
                x = tf.nn.relu(x)
        return x

    def hidden_dense_layers(self, first, last):
        """The fully connected layers first … last − 1 that a relu follows (all but the outputs)."""
        outputs = {last - 1} | ({last - self.stream_depth - 1} if self.dueling else set())
        return tuple(layer for layer in range(first, last) if layer not in outputs)

    @property
    def stream_depth(self):
        """Layers in each dueling stream: its copy of the last hidden layer (if any) and its output."""
        return 1 + min(1, len(self.hidden))



class QNetwork(ThetaNetwork):
    """Q-values `[batch, num_actions]` from observations `[batch, obs_dim]` (initialised as
    ThetaNetwork says)."""

    def __init__(self, obs_dim, num_actions, hidden=(64, 64), seed=0,
                 dtype=tf.float32, use_bias=True, initializer="glorot_uniform",
                 dueling=False, atoms=1, v_min=-10.0, v_max=10.0, noisy=False, noisy_sigma=0.5, obs_bounds=None,
                 quantile=False, embedding=0, policy_samples=32, layer_norm=False, name=None):
        super().__init__(name=name)
        if int(obs_dim) < 1 or int(num_actions) < 1:
            raise ValueError(f"QNetwork needs obs_dim >= 1 and num_actions >= 1; "
                             f"got obs_dim={obs_dim}, num_actions={num_actions}")
        if any(int(width) < 1 for width in hidden):
            raise ValueError(f"hidden layer widths must be >= 1; got {tuple(hidden)}")
        self.obs_dim, self.num_actions = int(obs_dim), int(num_actions)
        self.hidden, self.dtype = tuple(int(width) for width in hidden), tf.as_dtype(dtype)
        self.use_bias, self.dueling = bool(use_bias), bool(dueling)
        self.set_head(atoms, v_min, v_max, quantile, embedding, policy_samples)
        layers = dense_layer_shapes(self.obs_dim, self.hidden, self.num_actions, self.dueling, self.atoms,
                                    self.embedding)
        dense = len(layers) - (1 if self.embedding else 0)
        self.build_theta(layers, seed, initializer, noisy_from=0 if noisy else None, noisy_sigma=noisy_sigma,
                         normed=self.hidden_dense_layers(0, dense) if layer_norm else ())
        self.obs_bounds = None
        if obs_bounds is not None:
            low, high = (tf.constant(bound, tf.float64) for bound in obs_bounds)
            if low.shape != [self.obs_dim] or high.shape != [self.obs_dim] or not bool(tf.reduce_all(high > low)):
                raise ValueError(f"obs_bounds must be two vectors of {self.obs_dim} with high > low; got {obs_bounds}")
            self.obs_bounds = (tuple(float(x) for x in obs_bounds[0]), tuple(float(x) for x in obs_bounds[1]))
            # h_0 = s · scale + shift, computed in float64 and held in the network's dtype.
            self.input_scale = tf.cast(2.0 / (high - low), self.dtype)
            self.input_shift = tf.cast(-2.0 * low / (high - low) - 1.0, self.dtype)

    def outputs(self, obs, parameters=None, noise=None, taus=None):
        """The head's outputs [batch, num_actions · atoms] (ThetaNetwork.__call__ makes them Q-values)."""
        x = tf.cast(tf.convert_to_tensor(obs, dtype_hint=self.dtype), self.dtype)
        if self.embedding and taus is None:
            taus = self.default_taus(tf.shape(x)[0])
        if self.obs_bounds is not None:
            x = x * self.input_scale + self.input_shift
        if parameters is None:
            parameters = self.unpack(self.theta.read_value())   # read once: one buffer, one gradient
        return self.dense_layers(x, parameters, 0, noise, taus)


class PolicyNetwork(QNetwork):
    """The same MLP read as a softmax policy's logits [batch, num_actions]: π(·|s; θ) =
    softmax(logits) (rawdqn/policy_agent.py). Its greedy action, argmax of the logits, is the
    most probable one."""


class ValueNetwork(QNetwork):
    """The same MLP read as a state value V(s; φ) [batch, 1] (num_actions = 1): A2C's critic,
    REINFORCE's baseline."""


# (filters, kernel size, stride) per conv layer, and the fully connected widths after them.
NATURE_CONVS, NATURE_HIDDEN = ((32, 8, 4), (64, 4, 2), (64, 3, 1)), (512,)   # Mnih et al. 2015, 84×84×4
MINATAR_CONVS, MINATAR_HIDDEN = ((16, 3, 1),), (128,)                        # Young & Tian 2019, 10×10×C


class ConvQNetwork(ThetaNetwork):
    """Q-values `[batch, num_actions]` from frames `[batch, height, width, channels]` (module docstring).

    Frames may be uint8: they cross to the device as bytes and are cast and scaled there.
    data_format "NHWC" (what CPUs run fastest) or "NCHW" (cuDNN's preferred layout): the
    frames arrive as NHWC either way and are transposed on the device; θ's kernels are
    [kh, kw, in, out] in both. conv_gradients, one form for every conv layer or a tuple of one
    per layer: "tf" differentiates `tf.nn.conv2d` with TensorFlow's own gradient; "forward"
    (NHWC only) uses rawdqn/conv.py's conv2d, whose gradients are forward convolutions: the
    fast form under XLA on a CPU for large inputs; "im2col" (NHWC only) is conv.conv2d_im2col,
    one matrix product: the fast form there for small ones (MinAtar's 10×10).
    """

    def __init__(self, frame_shape, num_actions, convs=NATURE_CONVS, hidden=NATURE_HIDDEN, seed=0,
                 dtype=tf.float32, scale=1 / 255, data_format="NHWC", use_bias=True,
                 initializer="glorot_uniform", conv_gradients="tf", dueling=False, atoms=1, v_min=-10.0, quantile=False,
                 v_max=10.0, noisy=False, noisy_sigma=0.5, embedding=0, policy_samples=32, layer_norm=False, name=None):
        super().__init__(name=name)
        height, width, channels = (int(size) for size in frame_shape)
        if data_format not in ("NHWC", "NCHW"):
            raise ValueError(f"data_format must be NHWC or NCHW; got {data_format!r}")
        self.conv_gradients = conv.layer_forms(conv_gradients, len(convs), data_format)
        self.frame_shape, self.num_actions = (height, width, channels), int(num_actions)
        self.convs, self.hidden = tuple(tuple(int(x) for x in conv) for conv in convs), tuple(int(w) for w in hidden)
        self.dtype, self.scale, self.data_format = tf.as_dtype(dtype), float(scale), data_format
        self.use_bias, self.dueling = bool(use_bias), bool(dueling)
        self.set_head(atoms, v_min, v_max, quantile, embedding, policy_samples)
        layers, self.flat_size = self.layer_shapes(frame_shape, self.num_actions, self.convs, self.hidden,
                                                   self.dueling, self.atoms, self.embedding)
        dense = len(layers) - (1 if self.embedding else 0)
        self.build_theta(layers, seed, initializer, noisy_from=len(self.convs) if noisy else None,
                         noisy_sigma=noisy_sigma,
                         normed=self.hidden_dense_layers(len(self.convs), dense) if layer_norm else ())

    @staticmethod
    def layer_shapes(frame_shape, num_actions, convs, hidden, dueling=False, atoms=1, embedding=0):
        """Per layer (θ-shape, fan_in, fan_out), and the flattened conv output's size: VALID
        padding, so each conv maps H to (H − k) // s + 1 (conv.layer_inputs)."""
        shapes, layers = conv.layer_inputs(frame_shape, convs), []
        for (height, width, channels), (filters, size, stride) in zip(shapes, convs):
            if height < size or width < size:
                raise ValueError(f"a {size}×{size} conv does not fit a {height}×{width} input "
                                 f"(frames {tuple(frame_shape)}, convs {tuple(convs)})")
            layers.append(((size, size, channels, filters), size * size * channels, size * size * filters))
        flat_size = math.prod(shapes[-1])
        return layers + dense_layer_shapes(flat_size, tuple(hidden), num_actions, dueling, atoms, embedding), flat_size

    def outputs(self, frames, parameters=None, noise=None, taus=None):
        x = tf.cast(tf.convert_to_tensor(frames), self.dtype) * tf.constant(self.scale, self.dtype)
        if self.embedding and taus is None:
            taus = self.default_taus(tf.shape(x)[0])
        channels_first = self.data_format == "NCHW"
        if channels_first:
            x = tf.transpose(x, [0, 3, 1, 2])
        if parameters is None:
            parameters = self.unpack(self.theta.read_value())
        kernels, biases = parameters[:2]
        for layer, (_, _, stride) in enumerate(self.convs):
            x = conv.convolve(self.conv_gradients[layer], x, kernels[layer], stride, self.data_format)
            if self.use_bias:
                x = tf.nn.bias_add(x, biases[layer], data_format=self.data_format)
            x = tf.nn.relu(x)
        if channels_first:   # flatten in NHWC order, so θ means the same in both layouts
            x = tf.transpose(x, [0, 2, 3, 1])
        x = tf.reshape(x, [-1, self.flat_size])
        return self.dense_layers(x, parameters, len(self.convs), noise, taus)
