"""Exact NumPy float64 references for the deep Q-learning math.

Each function here is the slow, obvious version of one piece of the TF core
(`bellman.py`, `losses.py`, `optim.py`, `network.py`, the target sync), written
so the TF tests can compare against it. NumPy only: importing this module must
never import TensorFlow.

Shapes: `B` is the batch size, `A` the number of actions. Every function
converts its inputs to float64 and returns new arrays; inputs are never modified.
"""

import numpy as np

__all__ = [
    "q_learning_target",
    "double_q_learning_target",
    "td_error",
    "squared_loss",
    "squared_loss_grad",
    "huber_loss",
    "huber_loss_grad",
    "global_norm",
    "clip_by_global_norm",
    "sgd_step",
    "adam_step",
    "rmsprop_step",
    "polyak_update",
    "mlp_q_values",
    "sarsa_target",
    "expected_sarsa_target",
    "persistent_q_learning_target",
    "munchausen_target",
    "lambda_returns",
    "n_step_return_mixture",
    "retrace_returns",
    "vtrace",
    "quantile_huber_loss",
]


# ---------------------------------------------------------------- validation


def _as_float(name, value, rank):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != rank:
        raise ValueError(f"{name} must have rank {rank}; got shape {array.shape}")
    return array


def _check_batch(reward, terminated, next_q):
    """Validates reward [B], terminated [B] in {0, 1}, next_q [B, A]."""
    if reward.shape != terminated.shape or reward.shape[0] != next_q.shape[0]:
        raise ValueError(
            f"batch sizes differ: reward {reward.shape}, terminated "
            f"{terminated.shape}, next_q {next_q.shape}"
        )
    if not np.all((terminated == 0) | (terminated == 1)):
        raise ValueError("terminated must hold only 0 or 1")


def _as_discount(discount, batch_size):
    discount = np.asarray(discount, dtype=np.float64)
    if discount.ndim not in (0, 1) or (discount.ndim == 1 and discount.shape != (batch_size,)):
        raise ValueError(f"discount must be a scalar or shape ({batch_size},); got shape {discount.shape}")
    if np.any((discount < 0) | (discount > 1)):
        raise ValueError(f"discount must be in [0, 1]; got {discount}")
    return discount


def _as_mask(mask, shape):
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"next_legal_mask must have shape {shape}; got {mask.shape}")
    return mask.astype(bool)


def _as_actions(actions, q_values):
    actions = np.asarray(actions)
    if actions.ndim != 1 or actions.shape[0] != q_values.shape[0]:
        raise ValueError(f"actions must have shape ({q_values.shape[0]},); got {actions.shape}")
    if not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(f"actions must be integers; got dtype {actions.dtype}")
    if np.any((actions < 0) | (actions >= q_values.shape[1])):
        raise ValueError(f"actions must be in [0, {q_values.shape[1]}); got {actions}")
    return actions


def _as_float_list(arrays):
    return [np.array(a, dtype=np.float64) for a in arrays]


def _check_same_shapes(first, second, names=("params", "grads")):
    if len(first) != len(second):
        raise ValueError(f"got {len(first)} {names[0]} but {len(second)} {names[1]}")
    for i, (a, b) in enumerate(zip(first, second)):
        if a.shape != b.shape:
            raise ValueError(f"{names[0]}[{i}] has shape {a.shape} but {names[1]}[{i}] has {b.shape}")


def _check_positive(name, value):
    if not value > 0:
        raise ValueError(f"{name} must be > 0; got {value}")


def _check_unit_interval(name, value):
    """Checks 0 <= value < 1 (decay rates)."""
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1); got {value}")


# ------------------------------------------------------------------- targets


def _legal_max(next_q, mask):
    """max over legal a' of next_q[:, a']; 0 for a row with no legal action."""
    masked = np.where(mask, next_q, -np.inf)
    # Replace the -inf of empty rows before any arithmetic so no nan can appear.
    return np.where(mask.any(axis=1), masked.max(axis=1), 0.0)


def _legal_argmax(q_values, mask):
    """First argmax over legal actions (np.argmax returns the first max)."""
    return np.argmax(np.where(mask, q_values, -np.inf), axis=1)


def q_learning_target(reward, terminated, discount, next_q, next_legal_mask=None):
    """Q-learning target (Watkins 1989; Mnih et al. 2015):

        target_i = reward_i + discount_i * (1 - terminated_i) * max_{a' legal} next_q[i, a']

    reward, terminated: [B]; next_q: [B, A]; discount: scalar or [B];
    next_legal_mask: bool [B, A] or None (all legal). A row with no legal
    action contributes 0 for the max term. Returns target [B].
    """
    reward = _as_float("reward", reward, 1)
    terminated = _as_float("terminated", terminated, 1)
    next_q = _as_float("next_q", next_q, 2)
    _check_batch(reward, terminated, next_q)
    discount = _as_discount(discount, reward.shape[0])
    mask = _as_mask(next_legal_mask, next_q.shape)
    return reward + discount * (1.0 - terminated) * _legal_max(next_q, mask)


def double_q_learning_target(
    reward, terminated, discount, next_q_online, next_q_target, next_legal_mask=None
):
    """Double Q-learning target (van Hasselt et al. 2016):

        best_action_i = argmax_{a' legal} next_q_online[i, a']     (first max on ties)
        target_i = reward_i + discount_i * (1 - terminated_i) * next_q_target[i, best_action_i]

    The online network chooses the action, the target network values it.
    Shapes as in `q_learning_target`; a row with no legal action contributes 0.
    Returns target [B].
    """
    reward = _as_float("reward", reward, 1)
    terminated = _as_float("terminated", terminated, 1)
    next_q_online = _as_float("next_q_online", next_q_online, 2)
    next_q_target = _as_float("next_q_target", next_q_target, 2)
    _check_batch(reward, terminated, next_q_online)
    if next_q_online.shape != next_q_target.shape:
        raise ValueError(
            f"next_q_online {next_q_online.shape} and next_q_target {next_q_target.shape} differ"
        )
    discount = _as_discount(discount, reward.shape[0])
    mask = _as_mask(next_legal_mask, next_q_online.shape)
    best_action = _legal_argmax(next_q_online, mask)
    next_value = next_q_target[np.arange(reward.shape[0]), best_action]
    next_value = np.where(mask.any(axis=1), next_value, 0.0)
    return reward + discount * (1.0 - terminated) * next_value


# -------------------------------------------------------------------- losses


def td_error(q_values, actions, target):
    """Temporal-difference error:

        td_error_i = target_i - q_values[i, actions_i]

    q_values: [B, A]; actions: int [B]; target: [B]. Returns td_error [B].
    """
    q_values = _as_float("q_values", q_values, 2)
    target = _as_float("target", target, 1)
    actions = _as_actions(actions, q_values)
    if target.shape[0] != q_values.shape[0]:
        raise ValueError(f"target must have shape ({q_values.shape[0]},); got {target.shape}")
    return target - q_values[np.arange(q_values.shape[0]), actions]


def squared_loss(td_error):
    """Mean squared TD loss:  L = (1/B) * sum_i 0.5 * td_error_i ** 2."""
    td_error = _as_float("td_error", td_error, 1)
    return float(np.mean(0.5 * td_error**2))


def _grad_at_actions(q_values, actions, grad_of_loss_wrt_td_error):
    """Scatters dL/dQ[i, a_i] = -dL/dtd_error_i (since td_error = target - Q); zero elsewhere."""
    grad = np.zeros_like(q_values)
    grad[np.arange(q_values.shape[0]), actions] = -grad_of_loss_wrt_td_error
    return grad


def squared_loss_grad(q_values, actions, target):
    """Gradient of `squared_loss(td_error(q_values, actions, target))` w.r.t. q_values:

        dL/dQ[i, a] = -td_error_i / B   if a == actions_i,   0 otherwise.

    The target is a constant (no gradient flows into it). Returns [B, A].
    """
    q_values = _as_float("q_values", q_values, 2)
    error = td_error(q_values, actions, target)
    return _grad_at_actions(q_values, np.asarray(actions), error / error.shape[0])


def huber_loss(td_error, delta=1.0):
    """Mean Huber loss (Huber 1964):

        h(x) = 0.5 * x**2                    if |x| <= delta
             = delta * (|x| - 0.5 * delta)   otherwise
        L = (1/B) * sum_i h(td_error_i)
    """
    _check_positive("delta", delta)
    td_error = _as_float("td_error", td_error, 1)
    abs_error = np.abs(td_error)
    per_item = np.where(abs_error <= delta, 0.5 * td_error**2, delta * (abs_error - 0.5 * delta))
    return float(np.mean(per_item))


def huber_loss_grad(q_values, actions, target, delta=1.0):
    """Gradient of `huber_loss(td_error(q_values, actions, target), delta)` w.r.t. q_values:

        dL/dQ[i, a] = -clip(td_error_i, -delta, delta) / B   if a == actions_i,   0 otherwise.

    Returns [B, A].
    """
    _check_positive("delta", delta)
    q_values = _as_float("q_values", q_values, 2)
    error = td_error(q_values, actions, target)
    clipped = np.clip(error, -delta, delta)
    return _grad_at_actions(q_values, np.asarray(actions), clipped / error.shape[0])


# ------------------------------------------------------------ gradient clip


def global_norm(arrays):
    """Global norm of a list of arrays:  ||g|| = sqrt(sum_k sum_j g_k[j] ** 2)."""
    arrays = _as_float_list(arrays)
    return float(np.sqrt(sum(np.sum(a**2) for a in arrays)))


def clip_by_global_norm(grads, max_norm):
    """Rescales all gradients together so their global norm is at most max_norm:

        scale = max_norm / max(||g||, max_norm);   g_k <- scale * g_k

    A norm at or below max_norm (including zero) leaves the gradients unchanged.
    Returns (clipped_grads, norm) where norm is the global norm before clipping.
    """
    _check_positive("max_norm", max_norm)
    grads = _as_float_list(grads)
    norm = global_norm(grads)
    scale = max_norm / max(norm, max_norm)
    return [scale * g for g in grads], norm


# ---------------------------------------------------------------- optimizers


def _start_state(state, slot_names, params):
    """Copies the optimizer's per-parameter slots, or makes zero slots when state is None."""
    if state is None:
        return {name: [np.zeros_like(p) for p in params] for name in slot_names}
    missing = [name for name in slot_names if name not in state]
    if missing:
        raise ValueError(f"optimizer state is missing {missing}")
    slots = {name: _as_float_list(state[name]) for name in slot_names}
    for name in slot_names:
        _check_same_shapes(params, slots[name], ("params", name))
    return slots


def _check_step_inputs(params, grads, learning_rate):
    params = _as_float_list(params)
    grads = _as_float_list(grads)
    _check_same_shapes(params, grads)
    _check_positive("learning_rate", learning_rate)
    return params, grads


def sgd_step(params, grads, state, learning_rate, momentum=0.0):
    """Stochastic gradient descent with heavy-ball momentum:

        velocity <- momentum * velocity + g
        theta    <- theta - learning_rate * velocity

    With momentum = 0 this is theta - learning_rate * g.
    state: None (fresh) or {"velocity": [arrays]}. Returns (new_params, new_state).
    """
    params, grads = _check_step_inputs(params, grads, learning_rate)
    _check_unit_interval("momentum", momentum)
    state = _start_state(state, ["velocity"], params)
    velocity = [momentum * v + g for v, g in zip(state["velocity"], grads)]
    new_params = [p - learning_rate * v for p, v in zip(params, velocity)]
    return new_params, {"velocity": velocity}


def adam_step(params, grads, state, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """Adam (Kingma & Ba 2015, Algorithm 1), epsilon outside the square root:

        t <- t + 1
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t);   v_hat = v / (1 - beta2**t)
        theta <- theta - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    state: None (fresh) or {"step": t, "m": [arrays], "v": [arrays]} (the
    paper's names for the first and second moment estimates).
    Returns (new_params, new_state).
    """
    params, grads = _check_step_inputs(params, grads, learning_rate)
    _check_unit_interval("beta1", beta1)
    _check_unit_interval("beta2", beta2)
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0; got {epsilon}")
    if state is not None and "step" not in state:
        raise ValueError("optimizer state is missing ['step']")
    moments = _start_state(state, ["m", "v"], params)
    step = 1 if state is None else int(state["step"]) + 1
    m = [beta1 * m_k + (1 - beta1) * g for m_k, g in zip(moments["m"], grads)]
    v = [beta2 * v_k + (1 - beta2) * g**2 for v_k, g in zip(moments["v"], grads)]
    new_params = []
    for p, m_k, v_k in zip(params, m, v):
        m_hat = m_k / (1 - beta1**step)
        v_hat = v_k / (1 - beta2**step)
        new_params.append(p - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon))
    return new_params, {"step": step, "m": m, "v": v}


def radam_step(params, grads, state, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8, threshold=5.0):
    """RAdam (Liu et al. 2020, Algorithm 2; threshold and epsilon as Optax's radam):

        t <- t + 1;  m, v, m_hat, v_hat as adam_step
        rho_inf = 2 / (1 - beta2) - 1;   rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        rho_t >= threshold:  r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                             theta <- theta - learning_rate * r_t * m_hat / (sqrt(v_hat) + epsilon)
        otherwise:           theta <- theta - learning_rate * m_hat

    state: as adam_step's. Returns (new_params, new_state).
    """
    params, grads = _check_step_inputs(params, grads, learning_rate)
    _check_unit_interval("beta1", beta1)
    _check_unit_interval("beta2", beta2)
    moments = _start_state(state, ["m", "v"], params)
    step = 1 if state is None else int(state["step"]) + 1
    m = [beta1 * m_k + (1 - beta1) * g for m_k, g in zip(moments["m"], grads)]
    v = [beta2 * v_k + (1 - beta2) * g**2 for v_k, g in zip(moments["v"], grads)]
    rho_inf = 2 / (1 - beta2) - 1
    rho = rho_inf - 2 * step * beta2**step / (1 - beta2**step)
    new_params = []
    for p, m_k, v_k in zip(params, m, v):
        m_hat = m_k / (1 - beta1**step)
        if rho >= threshold:
            v_hat = v_k / (1 - beta2**step)
            r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            new_params.append(p - learning_rate * r * m_hat / (np.sqrt(v_hat) + epsilon))
        else:
            new_params.append(p - learning_rate * m_hat)
    return new_params, {"step": step, "m": m, "v": v}


def rmsprop_step(params, grads, state, learning_rate, rho=0.9, epsilon=1e-7):
    """RMSProp (Tieleman & Hinton 2012), no momentum, not centred:

        mean_square <- rho * mean_square + (1 - rho) * g**2
        theta <- theta - learning_rate * g / (sqrt(mean_square) + epsilon)

    state: None (fresh) or {"mean_square": [arrays]}. Returns (new_params, new_state).
    """
    params, grads = _check_step_inputs(params, grads, learning_rate)
    _check_unit_interval("rho", rho)
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0; got {epsilon}")
    state = _start_state(state, ["mean_square"], params)
    mean_square = [rho * s + (1 - rho) * g**2 for s, g in zip(state["mean_square"], grads)]
    new_params = [
        p - learning_rate * g / (np.sqrt(s) + epsilon)
        for p, g, s in zip(params, grads, mean_square)
    ]
    return new_params, {"mean_square": mean_square}


def rmsprop_centered_step(params, grads, state, learning_rate, rho=0.95, epsilon=0.01):
    """DeepMind's centred RMSProp (the Nature DQN's), epsilon inside the square root:

        mean_grad <- rho * mean_grad + (1 - rho) * g
        mean_square <- rho * mean_square + (1 - rho) * g**2
        theta <- theta - learning_rate * g / sqrt(mean_square - mean_grad**2 + epsilon)

    state: None (fresh) or {"mean_grad": [...], "mean_square": [...]}. Returns (new_params, new_state).
    """
    params, grads = _check_step_inputs(params, grads, learning_rate)
    _check_unit_interval("rho", rho)
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0; got {epsilon}")
    state = _start_state(state, ["mean_grad", "mean_square"], params)
    mean_grad = [rho * m + (1 - rho) * g for m, g in zip(state["mean_grad"], grads)]
    mean_square = [rho * s + (1 - rho) * g**2 for s, g in zip(state["mean_square"], grads)]
    new_params = [p - learning_rate * g / np.sqrt(s - m**2 + epsilon)
                  for p, g, m, s in zip(params, grads, mean_grad, mean_square)]
    return new_params, {"mean_grad": mean_grad, "mean_square": mean_square}


def rmsprop_centered_torch_step(params, grads, state, learning_rate, rho=0.95, epsilon=0.01):
    """torch.optim.RMSprop(centered=True), epsilon outside the square root:

        mean_grad, mean_square as in rmsprop_centered_step
        theta <- theta - learning_rate * g / (sqrt(max(mean_square - mean_grad**2, 0)) + epsilon)
    """
    params, grads = _check_step_inputs(params, grads, learning_rate)
    _check_unit_interval("rho", rho)
    state = _start_state(state, ["mean_grad", "mean_square"], params)
    mean_grad = [rho * m + (1 - rho) * g for m, g in zip(state["mean_grad"], grads)]
    mean_square = [rho * s + (1 - rho) * g**2 for s, g in zip(state["mean_square"], grads)]
    new_params = [p - learning_rate * g / (np.sqrt(np.maximum(s - m**2, 0.0)) + epsilon)
                  for p, g, m, s in zip(params, grads, mean_grad, mean_square)]
    return new_params, {"mean_grad": mean_grad, "mean_square": mean_square}


# --------------------------------------------------------------- target sync


def polyak_update(online_params, target_params, tau):
    """Soft target update (Lillicrap et al. 2016):

        target_k <- tau * online_k + (1 - tau) * target_k

    tau = 1 is a hard copy, tau = 0 leaves the target unchanged. Returns the new target list.
    """
    if not 0 <= tau <= 1:
        raise ValueError(f"tau must be in [0, 1]; got {tau}")
    online_params = _as_float_list(online_params)
    target_params = _as_float_list(target_params)
    _check_same_shapes(online_params, target_params, ("online_params", "target_params"))
    return [tau * o + (1 - tau) * t for o, t in zip(online_params, target_params)]


# ------------------------------------------------------------------- network


def mlp_q_values(params, obs):
    """Forward pass of an MLP Q-network:

        h_0 = obs;   h_k = relu(h_{k-1} @ kernel_k + bias_k)  for hidden layers
        q_values = h_{L-1} @ kernel_L + bias_L               (linear output)

    params: list of (kernel [in, out], bias [out]) pairs, first to last layer.
    obs: [B, obs_dim]. Returns q_values [B, A].
    """
    if len(params) == 0:
        raise ValueError("mlp_q_values needs at least one (kernel, bias) layer")
    hidden = _as_float("obs", obs, 2)
    for index, (kernel, bias) in enumerate(params):
        kernel = _as_float(f"kernel {index}", kernel, 2)
        bias = _as_float(f"bias {index}", bias, 1)
        if kernel.shape[0] != hidden.shape[1] or kernel.shape[1] != bias.shape[0]:
            raise ValueError(
                f"layer {index}: input width {hidden.shape[1]}, kernel {kernel.shape}, bias {bias.shape} do not fit"
            )
        hidden = hidden @ kernel + bias
        if index < len(params) - 1:
            hidden = np.maximum(hidden, 0.0)
    return hidden


def dueling_q_values(value, advantage):
    """Q(s, a) = V(s) + A(s, a) − (1/|A|) Σ_a' A(s, a')   (Wang et al. 2016, eq. 9).

    value: [B, 1]; advantage: [B, A]. Returns [B, A].
    """
    value = _as_float("value", value, 2)
    advantage = _as_float("advantage", advantage, 2)
    return value + advantage - advantage.mean(axis=1, keepdims=True)


def dueling_mlp_q_values(shared_params, value_params, advantage_params, features):
    """A dueling head over `features` [B, F]: the shared layers (each followed by relu), then

        V = mlp_q_values(value_params, h),  A = mlp_q_values(advantage_params, h)
        q_values = dueling_q_values(V, A)

    Each *_params is a list of (kernel, bias) pairs as mlp_q_values takes them.
    """
    hidden = _as_float("features", features, 2)
    for kernel, bias in shared_params:
        hidden = np.maximum(hidden @ _as_float("kernel", kernel, 2) + _as_float("bias", bias, 1), 0.0)
    return dueling_q_values(mlp_q_values(value_params, hidden), mlp_q_values(advantage_params, hidden))


def noise_shape(noise):
    """f(ε) = sgn(ε) √|ε|, Fortunato et al. 2018's factorised-noise transform."""
    noise = np.asarray(noise, np.float64)
    return np.sign(noise) * np.sqrt(np.abs(noise))


def noisy_linear(x, mu_kernel, mu_bias, sigma_kernel, sigma_bias, noise_in, noise_out):
    """y = x (μ_W + σ_W ⊙ ε_W) + μ_b + σ_b ⊙ ε_b with the whole noise matrix ε_W = f_in f_outᵀ
    written out, ε_b = f_out (noise_in, noise_out: already f(ε))."""
    weight_noise = np.outer(noise_in, noise_out)
    return x @ (mu_kernel + sigma_kernel * weight_noise) + mu_bias + sigma_bias * noise_out


def conv2d_valid(x, kernel, stride):
    """VALID cross-correlation by im2col: out[b, i, j, o] = Σ_{p,q,c} x[b, i·s+p, j·s+q, c] · K[p, q, c, o].

    x: [B, H, W, C]; kernel: [kh, kw, C, O]. Each output position's input patch becomes
    one row of a matrix, and the convolution is that matrix times the flattened kernel.
    """
    x = _as_float("x", x, 4)
    kernel = _as_float("kernel", kernel, 4)
    batch, height, width, channels = x.shape
    kh, kw, kernel_channels, out_channels = kernel.shape
    if kernel_channels != channels:
        raise ValueError(f"kernel has {kernel_channels} input channels, x has {channels}")
    out_h, out_w = (height - kh) // stride + 1, (width - kw) // stride + 1
    patches = np.empty((batch, out_h, out_w, kh, kw, channels))
    for i in range(out_h):
        for j in range(out_w):
            patches[:, i, j] = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
    columns = patches.reshape(batch * out_h * out_w, kh * kw * channels)
    return (columns @ kernel.reshape(kh * kw * channels, out_channels)).reshape(batch, out_h, out_w, out_channels)


def conv2d_valid_gradients(x, kernel, stride, out_gradient):
    """∂L/∂x and ∂L/∂K of conv2d_valid, given ∂L/∂out [B, out_h, out_w, O], by im2col:

        ∂L/∂K[p, q, c, o] = Σ_{b,i,j} x[b, i·s+p, j·s+q, c] · ∂L/∂out[b, i, j, o]     (patchesᵀ · ∂L/∂out)
        ∂L/∂x[b, i·s+p, j·s+q, c] += Σ_o K[p, q, c, o] · ∂L/∂out[b, i, j, o]           (each patch's share)
    """
    x = _as_float("x", x, 4)
    kernel = _as_float("kernel", kernel, 4)
    out_gradient = _as_float("out_gradient", out_gradient, 4)
    batch, height, width, channels = x.shape
    kh, kw, _, out_channels = kernel.shape
    out_h, out_w = out_gradient.shape[1:3]
    x_gradient, kernel_gradient = np.zeros_like(x), np.zeros_like(kernel)
    for i in range(out_h):
        for j in range(out_w):
            rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
            dout = out_gradient[:, i, j, :]                                        # [B, O]
            kernel_gradient += np.einsum("bpqc,bo->pqco", x[:, rows, cols, :], dout)
            x_gradient[:, rows, cols, :] += np.einsum("pqco,bo->bpqc", kernel, dout)
    return x_gradient, kernel_gradient


def conv_features(conv_params, strides, frames, scale=1 / 255):
    """h_0 = frames · scale;  h_i = relu(conv(h_{i-1}, K_i, stride_i) + c_i) (VALID);  flatten(h_C)
    in [H, W, C] order, [B, H_C · W_C · C_C]. conv_params: (kernel [kh, kw, in, out], bias [out])
    per conv layer; strides: one per conv layer; frames: [B, H, W, C]."""
    hidden = _as_float("frames", frames, 4) * scale
    if len(conv_params) != len(strides):
        raise ValueError(f"{len(conv_params)} conv layers but {len(strides)} strides")
    for (kernel, bias), stride in zip(conv_params, strides):
        hidden = np.maximum(conv2d_valid(hidden, kernel, stride) + _as_float("bias", bias, 1), 0.0)
    return hidden.reshape(hidden.shape[0], -1)


def conv_q_values(conv_params, strides, dense_params, frames, scale=1 / 255):
    """Forward pass of a conv Q-network (Mnih et al. 2015's shape):

        q_values = mlp_q_values(dense_params, conv_features(conv_params, strides, frames, scale))

    dense_params: as mlp_q_values'. Returns [B, A].
    """
    return mlp_q_values(dense_params, conv_features(conv_params, strides, frames, scale))


# ------------------------------------------------------------------- distributional (C51)


def categorical_projection(support, next_probs, reward, terminated, discount):
    """Bellemare et al. 2017, Algorithm 1, as written: for each atom j,

        T z_j = clip(r + γ(1 − terminated) z_j, V_min, V_max),  b_j = (T z_j − V_min) / Δz,
        l = ⌊b_j⌋, u = ⌈b_j⌉,  m_l += p_j (u − b_j),  m_u += p_j (b_j − l)   (m_l += p_j if l = u)

    support [K]; next_probs [B, K]; reward, terminated [B]; discount scalar or [B]. Returns m [B, K].
    """
    support = _as_float("support", support, 1)
    next_probs = _as_float("next_probs", next_probs, 2)
    reward, terminated = _as_float("reward", reward, 1), _as_float("terminated", terminated, 1)
    discount = np.broadcast_to(_as_discount(discount, len(reward)), reward.shape)
    v_min, v_max, atoms = support[0], support[-1], len(support)
    delta = (v_max - v_min) / (atoms - 1)
    target = np.zeros_like(next_probs)
    for b in range(len(reward)):
        for j in range(atoms):
            shifted = min(max(reward[b] + discount[b] * (1.0 - terminated[b]) * support[j], v_min), v_max)
            position = (shifted - v_min) / delta
            lower, upper = int(np.floor(position)), int(np.ceil(position))
            if lower == upper:
                target[b, lower] += next_probs[b, j]
            else:
                target[b, lower] += next_probs[b, j] * (upper - position)
                target[b, upper] += next_probs[b, j] * (position - lower)
    return target


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def categorical_cross_entropy(target_probs, logits, actions):
    """−Σ_i m_i log softmax(logits[b, a_b])_i for each sample b."""
    logits = np.asarray(logits, np.float64)
    taken = logits[np.arange(len(actions)), np.asarray(actions)]
    log_probs = taken - taken.max(axis=-1, keepdims=True)
    log_probs = log_probs - np.log(np.exp(log_probs).sum(axis=-1, keepdims=True))
    return -(np.asarray(target_probs, np.float64) * log_probs).sum(axis=-1)


# ------------------------------------------------------------------- n-step replay


def n_step_window(rewards, terminated, ended, discount):
    """(R, γ^m, last) of each [n]-long window (rows of [B, n] arrays), by walking it:

        R = Σ_{k ≤ last} γ^k r_k,   last = the first k < n with terminated_k or ended_k, else n − 1,
        m = last + 1
    """
    rewards, terminated, ended = (np.asarray(a, np.float64) for a in (rewards, terminated, ended))
    results = []
    for row_rewards, row_terminated, row_ended in zip(rewards, terminated, ended):
        total, last = 0.0, len(row_rewards) - 1
        for k, reward in enumerate(row_rewards):
            total += discount ** k * reward
            if row_terminated[k] or row_ended[k]:
                last = k
                break
        results.append((total, discount ** (last + 1), last))
    return tuple(np.array(column) for column in zip(*results))


class NStepReplayReference:
    """What an n-step rawdqn.replay.ReplayBuffer must return, from each env's own episodes.

    N envs add one transition each per step; the ring keeps the last `capacity` transitions
    in write order (step t, env e is the (t·N + e)-th written). Transition t of env e can be
    sampled iff it is kept and its window is written: t·N + e < written − (n − 1)·N. Its
    window is env e's transitions t, t+1, … up to n of them, ending with the first that
    ended its episode (terminated or truncated).
    """

    def __init__(self, capacity, num_envs, n_step, discount):
        self.capacity, self.num_envs, self.n_step, self.discount = capacity, num_envs, n_step, discount
        self.history = [[] for _ in range(num_envs)]   # per env: (obs, action, reward, next_obs, terminated, ended)

    def add(self, obs, action, reward, next_obs, terminated, ended):
        for env in range(self.num_envs):
            self.history[env].append((np.array(obs[env]), int(action[env]), float(reward[env]),
                                      np.array(next_obs[env]), float(terminated[env]), float(ended[env])))

    def transitions(self):
        """{(env, t): (obs, action, R, next_obs at the window's end, its terminated, γ^m)}."""
        steps = len(self.history[0])
        written = steps * self.num_envs
        result = {}
        for env, rows in enumerate(self.history):
            for t in range(steps):
                order = t * self.num_envs + env
                if not written - self.capacity <= order < written - (self.n_step - 1) * self.num_envs:
                    continue
                total, k = 0.0, 0
                while True:
                    _, _, reward, next_obs, terminated, ended = rows[t + k]
                    total += self.discount ** k * reward
                    if terminated or ended or k == self.n_step - 1:
                        break
                    k += 1
                result[(env, t)] = (rows[t][0], rows[t][1], total, next_obs, terminated, self.discount ** (k + 1))
        return result


# ------------------------------------------------------------------- frame replay


class FrameReplayReference:
    """What rawdqn.frame_replay.FrameReplay must hold, from the episodes themselves.

    Each env keeps the list of its episodes' frames; an episode of T transitions occupies
    T + 1 consecutive slots of that env (its frames f_0 … f_T), and only the last `slots`
    slots are kept. Transition t of an episode: obs = [f_{t−h+1}, …, f_t], next_obs =
    [f_{t−h+2}, …, f_{t+1}], positions before f_0 padded with zeros or with f_0 ("repeat").
    It can be sampled iff every frame it stacks (obs and next_obs) is among the kept slots.
    """

    def __init__(self, slots, num_envs, history, pad="zeros", n_step=1, discount=1.0):
        self.slots, self.history, self.pad = slots, history, pad
        self.n_step, self.discount = n_step, discount
        self.episodes = [[] for _ in range(num_envs)]   # per env: [{"frames", "actions", ...}]

    def begin(self, frames):
        for env, frame in enumerate(frames):
            self.begin_one(env, frame)

    def add(self, action, reward, terminated, next_frame, ended, reset_frame):
        for env in range(len(self.episodes)):
            episode = self.episodes[env][-1]
            episode["actions"].append(int(action[env]))
            episode["rewards"].append(float(reward[env]))
            episode["terminated"].append(bool(terminated[env]))
            episode["frames"].append(np.array(next_frame[env]))
            if ended[env]:
                self.begin_one(env, reset_frame[env])

    def begin_one(self, env, frame):
        self.episodes[env].append({"frames": [np.array(frame)], "actions": [], "rewards": [], "terminated": []})

    def padded_stack(self, frames, newest):
        first = frames[0]
        out = []
        for position in range(newest - self.history + 1, newest + 1):
            out.append(frames[position] if position >= 0 else
                       (first if self.pad == "repeat" else np.zeros_like(first)))
        # [H, W] frames stack on a new last axis; [H, W, C] frames lay their channels end to end.
        return np.stack(out, axis=-1) if first.ndim == 2 else np.concatenate(out, axis=-1)

    def transitions(self):
        """{(env, slot counted from the run's start): (obs, action, reward, next_obs, terminated)};
        with n_step > 1, (obs, action, Σ_{k<m} γ^k r_{t+k}, next_obs at t + m, terminated_{t+m−1}, γ^m)
        for the window t … t+m−1 of up to n transitions, which ends at a termination or at the
        episode's last transition, and can be sampled only once it is all there."""
        result = {}
        for env, episodes in enumerate(self.episodes):
            total = sum(len(episode["frames"]) for episode in episodes)
            oldest_kept = total - self.slots
            start = 0   # the slot of this episode's f_0
            for number, episode in enumerate(episodes):
                frames, steps = episode["frames"], len(episode["actions"])
                finished = number < len(episodes) - 1   # a later episode began: this one's end is known
                for t in range(steps):
                    first_needed = start + max(0, t - self.history + 1)
                    window = self.window(episode, t, finished)
                    if first_needed >= oldest_kept and window is not None:
                        window_return, m = window
                        row = (self.padded_stack(frames, t), episode["actions"][t], window_return,
                               self.padded_stack(frames, t + m), float(episode["terminated"][t + m - 1]))
                        result[(env, start + t)] = row if self.n_step == 1 else row + (self.discount ** m,)
                start += len(frames)
        return result

    def window(self, episode, t, finished):
        """(Σ γ^k r_{t+k}, m) of transition t's window, or None while it is not all written."""
        steps, total = len(episode["actions"]), 0.0
        for k in range(self.n_step):
            if t + k >= steps:
                return None   # the episode goes on beyond what was written
            total += self.discount ** k * episode["rewards"][t + k]
            if episode["terminated"][t + k] or (finished and t + k == steps - 1):
                return total, k + 1
        return total, self.n_step


# --------------------------------------------------------------- policy gradients


def discounted_returns(rewards, terminated, ended, discount, next_values):
    """G_t of each env's rollout column [T, N], by walking each episode piece forwards:
    G_t = Σ_{k=t}^{c} γ^{k−t} r_k + γ^{c−t+1} (1 − terminated_c) V(s_{c+1}), with c the first
    step at or after t where the return is cut (its episode ended, or the rollout's last)."""
    rewards, terminated, ended, next_values = (np.asarray(a, np.float64)
                                               for a in (rewards, terminated, ended, next_values))
    steps, envs = rewards.shape
    returns = np.zeros_like(rewards)
    for n in range(envs):
        for t in range(steps):
            total, c = 0.0, t
            while True:
                total += discount ** (c - t) * rewards[c, n]
                if ended[c, n] or c == steps - 1:
                    break
                c += 1
            returns[t, n] = total + discount ** (c - t + 1) * (1.0 - terminated[c, n]) * next_values[c, n]
    return returns


def generalized_advantages(rewards, terminated, ended, values, next_values, discount, lam):
    """A_t = Σ_{k=t}^{c} (γλ)^{k−t} δ_k with δ_k = r_k + γ(1 − terminated_k) V(s_{k+1}) − V(s_k)
    and c as in discounted_returns, summed forwards; [T, N]."""
    rewards, terminated, ended, values, next_values = (np.asarray(a, np.float64) for a in
                                                       (rewards, terminated, ended, values, next_values))
    td_errors = rewards + discount * (1.0 - terminated) * next_values - values
    steps, envs = rewards.shape
    advantages = np.zeros_like(rewards)
    for n in range(envs):
        for t in range(steps):
            c = t
            while True:
                advantages[t, n] += (discount * lam) ** (c - t) * td_errors[c, n]
                if ended[c, n] or c == steps - 1:
                    break
                c += 1
    return advantages


def log_policy(logits, legal_mask=None):
    """log softmax over the legal actions; −∞ at the illegal ones; [B, A]."""
    logits = np.asarray(logits, np.float64)
    legal = np.ones(logits.shape, bool) if legal_mask is None else np.asarray(legal_mask, bool)
    result = np.full(logits.shape, -np.inf)
    for b in range(logits.shape[0]):
        chosen = logits[b, legal[b]]
        result[b, legal[b]] = chosen - (chosen.max() + np.log(np.sum(np.exp(chosen - chosen.max()))))
    return result


def entropy(logits, legal_mask=None):
    """−Σ_{a legal} π(a) log π(a) per row."""
    log_probs = log_policy(logits, legal_mask)
    finite = np.isfinite(log_probs)
    return -np.sum(np.where(finite, np.exp(np.where(finite, log_probs, 0.0)) * np.where(finite, log_probs, 0.0), 0.0),
                   axis=-1)


class TabularMDP:
    """A finite MDP with known dynamics: P[s, a, s'] (rows sum to ≤ 1; the missing mass is the
    probability of terminating), expected rewards R[s, a], start distribution ρ₀[s]. With a
    tabular softmax policy π(a|s) = softmax(θ[s])_a, its exact policy gradient."""

    def __init__(self, transitions, rewards, start):
        self.transitions = np.asarray(transitions, np.float64)
        self.rewards = np.asarray(rewards, np.float64)
        self.start = np.asarray(start, np.float64)

    def policy(self, theta):
        return softmax(np.asarray(theta, np.float64))

    def values(self, theta, discount):
        """(V^π [S], Q^π [S, A]) from the linear solve V = r_π + γ P_π V."""
        policy = self.policy(theta)
        reward_pi = np.sum(policy * self.rewards, axis=1)
        transition_pi = np.einsum("sa,sat->st", policy, self.transitions)
        value = np.linalg.solve(np.eye(len(reward_pi)) - discount * transition_pi, reward_pi)
        return value, self.rewards + discount * self.transitions @ value

    def visitation(self, theta, weight):
        """η(s) = Σ_t w^t Pr(s_t = s): ρ₀ᵀ (I − w P_π)⁻¹ (w = γ: the discounted visitation of the
        policy-gradient theorem; w = 1: expected visits per episode)."""
        policy = self.policy(theta)
        transition_pi = np.einsum("sa,sat->st", policy, self.transitions)
        return np.linalg.solve((np.eye(len(self.start)) - weight * transition_pi).T, self.start)

    def policy_gradient(self, theta, discount, visitation_weight=None):
        """∇_θ J(θ), J = E[Σ_t γ^t r_t] = ρ₀ᵀ V^π, by the policy-gradient theorem (Sutton et al. 2000):

            ∂J/∂θ[s, b] = η(s) Σ_a Q^π(s, a) ∂π(a|s)/∂θ[s, b] = η(s) π(b|s) (Q^π(s, b) − V^π(s))

        with η the discounted visitation. `visitation_weight=1` weights states by their
        undiscounted visits instead: what REINFORCE without its γ^t factor estimates."""
        policy = self.policy(theta)
        value, q_values = self.values(theta, discount)
        visits = self.visitation(theta, discount if visitation_weight is None else visitation_weight)
        return visits[:, None] * policy * (q_values - value[:, None])

    def sample_episode(self, theta, rng, max_steps=10_000):
        """(states, actions, rewards) of one episode of π, with rewards drawn as R[s, a] exactly."""
        policy = self.policy(theta)
        states, actions, rewards = [], [], []
        state = rng.choice(len(self.start), p=self.start)
        for _ in range(max_steps):
            action = rng.choice(policy.shape[1], p=policy[state])
            states.append(state), actions.append(action), rewards.append(self.rewards[state, action])
            row = self.transitions[state, action]
            following = rng.choice(len(row) + 1, p=np.append(row, max(0.0, 1.0 - row.sum())))
            if following == len(row):
                break
            state = following
        return np.array(states), np.array(actions), np.array(rewards)


# ------------------------------------------------- more one-step targets, and multi-step returns
# Loops over the batch and over time, in float64: the obvious form of bellman.py's other targets
# and multistep.py's returns.


def sarsa_target(reward, terminated, discount, next_q, next_action):
    """y_b = r_b + γ (1 − terminated_b) Q(s'_b, a'_b)."""
    reward, terminated, next_q = (np.asarray(x, np.float64) for x in (reward, terminated, next_q))
    return np.array([reward[b] + discount * (1.0 - terminated[b]) * next_q[b, int(next_action[b])]
                     for b in range(len(reward))])


def expected_sarsa_target(reward, terminated, discount, next_q, next_probs):
    """y_b = r_b + γ (1 − terminated_b) Σ_a π(a|s'_b) Q(s'_b, a)."""
    reward, terminated, next_q, next_probs = (np.asarray(x, np.float64)
                                              for x in (reward, terminated, next_q, next_probs))
    return np.array([reward[b] + discount * (1.0 - terminated[b]) * sum(
        next_probs[b, a] * next_q[b, a] for a in range(next_q.shape[1])) for b in range(len(reward))])


def persistent_q_learning_target(reward, terminated, discount, next_q, action, action_gap_scale):
    """y_b = r_b + γ (1 − terminated_b) [(1 − α) max_a Q(s'_b, a) + α Q(s'_b, a_b)]."""
    reward, terminated, next_q = (np.asarray(x, np.float64) for x in (reward, terminated, next_q))
    alpha = float(action_gap_scale)
    return np.array([reward[b] + discount * (1.0 - terminated[b]) * (
        (1.0 - alpha) * max(next_q[b]) + alpha * next_q[b, int(action[b])]) for b in range(len(reward))])


def softmax_policy(q, temperature):
    """(π = softmax(q/τ), log π) for one row, the maximum subtracted first."""
    z = (np.asarray(q, np.float64) - max(q)) / temperature
    log_pi = z - np.log(np.sum(np.exp(z)))
    return np.exp(log_pi), log_pi


def munchausen_target(reward, terminated, discount, q_target, action, next_q_target, temperature, alpha, log_clip):
    """y_b = r_b + α clip(τ log π(a_b|s_b), l₀, 0) + γ (1 − terminated_b) Σ_a π(a|s'_b)(Q⁻(s'_b, a) − τ log π(a|s'_b))."""
    reward, terminated = np.asarray(reward, np.float64), np.asarray(terminated, np.float64)
    targets = []
    for b in range(len(reward)):
        _, log_pi = softmax_policy(q_target[b], temperature)
        bonus = alpha * min(max(temperature * log_pi[int(action[b])], log_clip), 0.0)
        next_pi, next_log_pi = softmax_policy(next_q_target[b], temperature)
        soft_value = sum(next_pi[a] * (float(next_q_target[b][a]) - temperature * next_log_pi[a])
                         for a in range(len(next_pi)))
        targets.append(reward[b] + bonus + discount * (1.0 - terminated[b]) * soft_value)
    return np.array(targets)


def lambda_returns(rewards, discounts, next_values, lambda_):
    """G_t = r_t + d_t[(1 − λ_t) v_t + λ_t G_{t+1}], G_{T−1} = r + d v, by a loop from the end."""
    rewards, discounts, next_values = (np.asarray(x, np.float64) for x in (rewards, discounts, next_values))
    lambdas = np.broadcast_to(np.asarray(lambda_, np.float64), rewards.shape)
    steps, batch = rewards.shape
    returns = np.zeros((steps, batch))
    for b in range(batch):
        for t in reversed(range(steps)):
            if t == steps - 1:
                returns[t, b] = rewards[t, b] + discounts[t, b] * next_values[t, b]
            else:
                returns[t, b] = rewards[t, b] + discounts[t, b] * (
                    (1.0 - lambdas[t, b]) * next_values[t, b] + lambdas[t, b] * returns[t + 1, b])
    return returns


def n_step_return_mixture(rewards, discounts, next_values, lambda_):
    """The λ-return by its definition, G_t = (1 − λ) Σ_{n=1}^{T−t−1} λ^{n−1} G_t^(n) + λ^{T−t−1} G_t^(T−t),
    with G_t^(n) = Σ_{k<n} (Π_{j<k} d_{t+j}) r_{t+k} + (Π_{j<n} d_{t+j}) v_{t+n−1} (a scalar λ)."""
    rewards, discounts, next_values = (np.asarray(x, np.float64) for x in (rewards, discounts, next_values))
    steps, batch = rewards.shape
    returns = np.zeros((steps, batch))
    for b in range(batch):
        for t in range(steps):
            def n_step(n):
                total, scale = 0.0, 1.0
                for k in range(n):
                    total += scale * rewards[t + k, b]
                    scale *= discounts[t + k, b]
                return total + scale * next_values[t + n - 1, b]
            horizon = steps - t
            returns[t, b] = (1.0 - lambda_) * sum(lambda_ ** (n - 1) * n_step(n) for n in range(1, horizon)) \
                + lambda_ ** (horizon - 1) * n_step(horizon)
    return returns


def retrace_returns(rewards, discounts, next_q, next_actions, next_target_probs, next_behaviour_probs, lambda_):
    """G_t = r_t + d_t[Σ_a π Q(s_{t+1}, a) + c_t (G_{t+1} − Q(s_{t+1}, a_{t+1}))], c_t = λ min(1, π/μ), c_{T−1} = 0."""
    rewards, discounts = np.asarray(rewards, np.float64), np.asarray(discounts, np.float64)
    next_q, pi, mu = (np.asarray(x, np.float64) for x in (next_q, next_target_probs, next_behaviour_probs))
    steps, batch = rewards.shape
    returns = np.zeros((steps, batch))
    for b in range(batch):
        for t in reversed(range(steps)):
            a = int(next_actions[t, b])
            expected = float(np.dot(pi[t, b], next_q[t, b]))
            correction = 0.0 if t == steps - 1 else \
                lambda_ * min(1.0, pi[t, b, a] / mu[t, b, a]) * (returns[t + 1, b] - next_q[t, b, a])
            returns[t, b] = rewards[t, b] + discounts[t, b] * (expected + correction)
    return returns


def vtrace(values, bootstrap_value, rewards, discounts, log_rhos, clip_rho=1.0, clip_c=1.0, clip_pg_rho=1.0,
           lambda_=1.0):
    """(vs, pg_advantages) by Espeholt et al.'s sum, v_t = V(x_t) + Σ_{s≥t} (Π_{i<s} d_i c_i) δ_s (i from t)."""
    values, rewards, discounts, log_rhos = (np.asarray(x, np.float64) for x in (values, rewards, discounts, log_rhos))
    bootstrap_value = np.asarray(bootstrap_value, np.float64)
    steps, batch = rewards.shape
    rhos = np.exp(log_rhos)

    def clip(bound, x):
        return x if bound is None else min(bound, x)
    vs, advantages = np.zeros((steps, batch)), np.zeros((steps, batch))
    for b in range(batch):
        following = [values[t + 1, b] if t + 1 < steps else bootstrap_value[b] for t in range(steps)]
        for t in range(steps):
            total, scale = values[t, b], 1.0
            for s in range(t, steps):
                delta = clip(clip_rho, rhos[s, b]) * (rewards[s, b] + discounts[s, b] * following[s] - values[s, b])
                total += scale * delta
                scale *= discounts[s, b] * lambda_ * clip(clip_c, rhos[s, b])
            vs[t, b] = total
        for t in range(steps):
            next_vs = vs[t + 1, b] if t + 1 < steps else bootstrap_value[b]
            advantages[t, b] = clip(clip_pg_rho, rhos[t, b]) * (rewards[t, b] + discounts[t, b] * next_vs - values[t, b])
    return vs, advantages


def quantile_huber_loss(quantiles, taus, target_samples, kappa=1.0):
    """L_b = Σ_i (1/N') Σ_j |τ_i − 1[u_ij < 0]| H_κ(u_ij)/κ, u_ij = T_bj − θ_bi (κ = 0: |τ − 1[u<0]|·|u|)."""
    quantiles, target_samples = np.asarray(quantiles, np.float64), np.asarray(target_samples, np.float64)
    taus = np.broadcast_to(np.asarray(taus, np.float64), quantiles.shape)
    losses = []
    for b in range(quantiles.shape[0]):
        total = 0.0
        for i in range(quantiles.shape[1]):
            for j in range(target_samples.shape[1]):
                u = target_samples[b, j] - quantiles[b, i]
                weight = abs(taus[b, i] - (1.0 if u < 0 else 0.0))
                if kappa == 0:
                    total += weight * abs(u) / target_samples.shape[1]
                else:
                    huber = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
                    total += weight * huber / kappa / target_samples.shape[1]
        losses.append(total)
    return np.array(losses)


def implicit_quantiles(psi, embedding_kernel, embedding_bias, head, taus):
    """IQN's Z_τ(s, ·) (Dabney et al. 2018b, eq. 4), one state and one level at a time:

        φ_j(τ) = relu(Σ_{i<n} cos(π i τ) W_ij + b_j),   Z_τ(s, ·) = head(ψ(s) ⊙ φ(τ))

    psi: ψ(s) [B, D] (the torso's output); embedding_kernel [n, D]; head: a function of
    features [1, D] → [1, A] (mlp_q_values or dueling_mlp_q_values of the head's layers);
    taus [B, M]. Returns [B, A, M]."""
    psi, taus = _as_float("psi", psi, 2), _as_float("taus", taus, 2)
    kernel, bias = _as_float("embedding_kernel", embedding_kernel, 2), _as_float("embedding_bias", embedding_bias, 1)
    out = np.zeros((psi.shape[0], 0, taus.shape[1])).tolist()
    for b in range(psi.shape[0]):
        columns = []
        for m in range(taus.shape[1]):
            phi = np.maximum(np.cos(np.pi * np.arange(kernel.shape[0]) * taus[b, m]) @ kernel + bias, 0.0)
            columns.append(head((psi[b] * phi)[None])[0])
        out[b] = np.stack(columns, axis=1)
    return np.stack(out)


def layer_norm(x, scale, offset, epsilon=1e-6):
    """LN(x) = γ (x − μ)/√(σ² + ε) + β per row (Ba et al. 2016), μ and σ² over the last axis."""
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return np.asarray(scale) * (x - mean) / np.sqrt(variance + epsilon) + np.asarray(offset)


def layer_norm_grad(x, scale, upstream, epsilon=1e-6):
    """(∂L/∂x, ∂L/∂γ, ∂L/∂β) given g = ∂L/∂LN(x), with x̂ = (x − μ)/s, s = √(σ² + ε) and F features:

        ∂L/∂x = (1/s)(gγ − mean(gγ) − x̂ mean(gγ x̂)),   ∂L/∂γ = Σ_rows g x̂,   ∂L/∂β = Σ_rows g
    """
    x, g = np.asarray(x, np.float64), np.asarray(upstream, np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    s = np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + epsilon)
    x_hat = (x - mean) / s
    g_scaled = g * np.asarray(scale)
    dx = (g_scaled - g_scaled.mean(axis=-1, keepdims=True) - x_hat * (g_scaled * x_hat).mean(axis=-1, keepdims=True)) / s
    return dx, (g * x_hat).reshape(-1, x.shape[-1]).sum(axis=0), g.reshape(-1, x.shape[-1]).sum(axis=0)
