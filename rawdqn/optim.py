"""Gradient clipping and optimizers, written out.

Each optimizer's step is a pure function, `update(grads, params, state) → (params, state)`,
over lists of tensors; `state` is an OptimizerState (the step count t and each slot's
tensors). The optimizer is also a tf.Module holding that state in variables: `build(variables)`
creates them (eagerly, once), `apply(grads, variables)` reads them, runs `update` and writes
the results back, inside a compiled function or not.
"""
import collections

import tensorflow as tf

# t: updates made so far (int64); slots: per slot name, one tensor per parameter.
OptimizerState = collections.namedtuple("OptimizerState", ["step", "slots"])


def global_norm(tensors):
    """‖g‖ = √(Σ_i Σ_j g_ij²) over every tensor in the list."""
    return tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(t)) for t in tensors]))


def clip_by_global_norm(grads, max_norm, norm=None):
    """g_i ← g_i · c / max(‖g‖, c); returns (clipped grads, ‖g‖ before clipping).

    A norm at or below c leaves the gradients unchanged (scale exactly 1).
    `max_norm=None` disables clipping but still returns the norm. `norm`, if given, is
    ‖g‖ already computed (a network summing its layers in their order, say).
    """
    norm = global_norm(grads) if norm is None else norm
    if max_norm is None:
        return list(grads), norm
    max_norm = tf.cast(tf.convert_to_tensor(max_norm, dtype_hint=norm.dtype), norm.dtype)
    scale = max_norm / tf.maximum(norm, max_norm)
    return [g * tf.cast(scale, g.dtype) for g in grads], norm


class Optimizer(tf.Module):
    """The pure `update` over lists of tensors, and the variables that hold its state."""

    slot_names = ()

    def __init__(self, learning_rate, name=None):
        super().__init__(name=name)
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {learning_rate}")
        self.learning_rate = float(learning_rate)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.slots = {}
        self._built = False

    def build(self, variables):
        """Create one zero slot per variable for each name in `slot_names`."""
        if self._built:
            return
        for slot in self.slot_names:
            self.slots[slot] = [
                tf.Variable(tf.zeros_like(v), trainable=False, name=f"{slot}_{i}")
                for i, v in enumerate(variables)]
        self._built = True

    def update(self, grads, params, state, learning_rate=None):
        """One step: (params, state) → (params', state'), t' = t + 1; pure (reads and writes no variable).
        `learning_rate`: α for this step (a number or a scalar tensor: a schedule's), else the optimizer's."""
        step = state.step + 1
        new_params, new_slots = [], [[] for _ in self.slot_names]
        for i, (grad, param) in enumerate(zip(grads, params)):
            param, slots = self.update_one(tf.cast(grad, param.dtype), param,
                                           [slot[i] for slot in state.slots], step,
                                           self.rate(learning_rate, param.dtype))
            new_params.append(param)
            for kept, slot in zip(new_slots, slots):
                kept.append(slot)
        return new_params, OptimizerState(step, tuple(new_slots))

    def update_one(self, grad, param, slots, step, rate):
        """(param', slots') for one parameter tensor at step size `rate`; each optimizer writes its
        equation here."""
        raise NotImplementedError

    def read_state(self):
        """The state held in this optimizer's variables (build must have run)."""
        return OptimizerState(self.step.read_value(),
                              tuple([slot.read_value() for slot in self.slots[name]] for name in self.slot_names))

    def write_state(self, state):
        self.step.assign(state.step)
        for name, values in zip(self.slot_names, state.slots):
            for slot, value in zip(self.slots[name], values):
                slot.assign(value)

    def apply(self, grads, variables):
        """One update of `variables` by `grads` (same order as at `build`), in place."""
        if not self._built:
            if not tf.executing_eagerly():
                raise RuntimeError("call optimizer.build(variables) eagerly before "
                                   "using apply inside a tf.function")
            self.build(variables)
        params, state = self.update(grads, [variable.read_value() for variable in variables], self.read_state())
        for variable, value in zip(variables, params):
            variable.assign(value)
        self.write_state(state)

    def rate(self, learning_rate, dtype):
        """α as a tensor of `dtype`: a Python number becomes a constant of that dtype directly
        (through float32 it would lose float64's digits)."""
        learning_rate = self.learning_rate if learning_rate is None else learning_rate
        return tf.cast(learning_rate, dtype) if tf.is_tensor(learning_rate) else tf.constant(learning_rate, dtype)


class SGD(Optimizer):
    """v ← μ v + g;  θ ← θ − α v   (with μ = 0: θ ← θ − α g)."""

    def __init__(self, learning_rate=1e-2, momentum=0.0, name=None):
        super().__init__(learning_rate, name=name)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum}")
        self.momentum = float(momentum)
        self.slot_names = ("velocity",) if self.momentum else ()

    def update_one(self, grad, param, slots, step, rate):
        if self.momentum:
            grad = self.momentum * slots[0] + grad
            slots = [grad]
        return param - rate * grad, slots


class Adam(Optimizer):
    """Kingma & Ba (2015), Algorithm 1, with bias correction:

        t ← t + 1
        m ← β₁ m + (1 − β₁) g,      v ← β₂ v + (1 − β₂) g²
        m̂ = m / (1 − β₁ᵗ),          v̂ = v / (1 − β₂ᵗ)
        θ ← θ − α m̂ / (√v̂ + ε)
    """

    slot_names = ("m", "v")

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, name=None):
        super().__init__(learning_rate, name=name)
        for label, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{label} must be in [0, 1); got {beta}")
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)

    def moments(self, grad, slots, step, dtype):
        """(m, v, m̂, v̂, β₂, t) after this step's gradient, β₂ and t as tensors of `dtype`."""
        m, v = slots
        beta1, beta2 = tf.constant(self.beta1, dtype), tf.constant(self.beta2, dtype)
        t = tf.cast(step, dtype)
        m = beta1 * m + (1.0 - beta1) * grad
        v = beta2 * v + (1.0 - beta2) * tf.square(grad)
        return m, v, m / (1.0 - tf.pow(beta1, t)), v / (1.0 - tf.pow(beta2, t)), beta2, t

    def update_one(self, grad, param, slots, step, rate):
        m, v, m_hat, v_hat, _, _ = self.moments(grad, slots, step, param.dtype)
        return param - rate * m_hat / (tf.sqrt(v_hat) + self.epsilon), [m, v]


class RAdam(Adam):
    """Rectified Adam (Liu et al. 2020, Algorithm 2): Adam's moments, with the adaptive step
    switched on only once the variance of v̂ is tractable, and rectified by r_t:

        ρ_∞ = 2 / (1 − β₂) − 1,      ρ_t = ρ_∞ − 2t β₂ᵗ / (1 − β₂ᵗ)
        ρ_t ≥ 5:  θ ← θ − α r_t m̂ / (√v̂ + ε),   r_t = √((ρ_t − 4)(ρ_t − 2) ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2) ρ_t))
        else:     θ ← θ − α m̂

    The threshold 5 and ε outside the root are Optax's `radam` (which PQN's purejaxql runs) and
    PyTorch's; the paper's Algorithm 2 tests ρ_t > 4.
    """

    threshold = 5.0

    def update_one(self, grad, param, slots, step, rate):
        m, v, m_hat, v_hat, beta2, t = self.moments(grad, slots, step, param.dtype)
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho = rho_inf - 2.0 * t * tf.pow(beta2, t) / (1.0 - tf.pow(beta2, t))
        tractable = rho >= self.threshold
        safe_rho = tf.where(tractable, rho, self.threshold)   # r_t is real only for ρ_t > 4
        rectifier = tf.sqrt((safe_rho - 4.0) * (safe_rho - 2.0) * rho_inf
                            / ((rho_inf - 4.0) * (rho_inf - 2.0) * safe_rho))
        step_direction = tf.where(tractable, rectifier * m_hat / (tf.sqrt(v_hat) + self.epsilon), m_hat)
        return param - rate * step_direction, [m, v]


class RMSProp(Optimizer):
    """Tieleman & Hinton (2012):  s ← ρ s + (1 − ρ) g²;  θ ← θ − α g / (√s + ε)."""

    slot_names = ("mean_square",)

    def __init__(self, learning_rate=1e-3, rho=0.9, epsilon=1e-7, name=None):
        super().__init__(learning_rate, name=name)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must be in [0, 1); got {rho}")
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update_one(self, grad, param, slots, step, rate):
        rho = tf.constant(self.rho, param.dtype)
        mean_square = rho * slots[0] + (1.0 - rho) * tf.square(grad)
        return param - rate * grad / (tf.sqrt(mean_square) + self.epsilon), [mean_square]


class CenteredRMSProp(Optimizer):
    """RMSProp as DeepMind ran it for the Nature DQN (Graves 2013): centred, ε inside the root,

        ḡ ← ρ ḡ + (1 − ρ) g,      s ← ρ s + (1 − ρ) g²
        θ ← θ − α g / √(s − ḡ² + ε)

    s − ḡ² estimates the gradient's variance, not its second moment. Mnih et al. (2015),
    Extended Data Table 1: α 0.00025, ρ 0.95 ("gradient momentum" and "squared gradient
    momentum"), ε 0.01 ("min squared gradient"): the defaults. TF1's centred RMSProp, which
    Dopamine uses, is this update too (with ε 1e-5 there).
    """

    slot_names = ("mean_grad", "mean_square")
    epsilon_inside_root = True

    def __init__(self, learning_rate=2.5e-4, rho=0.95, epsilon=0.01, name=None):
        super().__init__(learning_rate, name=name)
        if not 0.0 <= rho < 1.0:
            raise ValueError(f"rho must be in [0, 1); got {rho}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0 (it keeps the root of the variance positive); got {epsilon}")
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update_one(self, grad, param, slots, step, rate):
        rho = tf.constant(self.rho, param.dtype)
        mean_grad = rho * slots[0] + (1.0 - rho) * grad
        mean_square = rho * slots[1] + (1.0 - rho) * tf.square(grad)
        variance = mean_square - tf.square(mean_grad)
        if self.epsilon_inside_root:
            denominator = tf.sqrt(variance + self.epsilon)
        else:   # the max only guards against rounding: s ≥ ḡ² in exact arithmetic
            denominator = tf.sqrt(tf.maximum(variance, 0.0)) + self.epsilon
        return param - rate * grad / denominator, [mean_grad, mean_square]


class TorchCenteredRMSProp(CenteredRMSProp):
    """torch.optim.RMSprop(centered=True): CenteredRMSProp's averages with ε outside the root,

        θ ← θ − α g / (√max(s − ḡ², 0) + ε)

    The MinAtar paper's code (Young & Tian 2019, examples/dqn.py) ran this form with α 2.5e-4,
    ρ 0.95, ε 0.01; as ε bounds the denominator at ε rather than √ε, its steps on a
    low-variance gradient are up to 1/√ε = 10× DeepMind's.
    """

    epsilon_inside_root = False


OPTIMIZERS = {"adam": Adam, "radam": RAdam, "sgd": SGD, "rmsprop": RMSProp, "rmsprop_centered": CenteredRMSProp,
              "rmsprop_centered_torch": TorchCenteredRMSProp}


def make_optimizer(name, learning_rate, **kwargs):
    """The optimizer called `name` (a key of OPTIMIZERS)."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}; got {name!r}") from None
    return cls(learning_rate=learning_rate, **kwargs)
