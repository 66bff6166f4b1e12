"""TD error and the losses built on it: pure functions of tensors."""
import tensorflow as tf

from rawdqn.bellman import cast, check_rank


def action_mask(actions, num_actions, dtype):
    """One-hot mask of the taken actions, [batch, num_actions] (the tutorials' action mask)."""
    return tf.one_hot(tf.cast(actions, tf.int32), num_actions, dtype=dtype)


def td_error(q_values, actions, target):
    """δ = y − Q(s, a), with Q(s, a) = Σ_a' Q(s, a') · onehot(a)_a'.

    The target is wrapped in stop_gradient: gradients reach only Q(s, a).
    """
    q_values = tf.convert_to_tensor(q_values)
    check_rank(q_values, 2, "q_values")
    check_rank(tf.convert_to_tensor(actions), 1, "actions")
    mask = action_mask(actions, tf.shape(q_values)[-1], q_values.dtype)
    q_taken = tf.reduce_sum(q_values * mask, axis=-1)
    return tf.stop_gradient(cast(target, q_values.dtype)) - q_taken


def weighted_mean(values, weights=None):
    """mean_b(w_b · l_b), or mean_b(l_b) without weights (a prioritized replay's importance weights)."""
    if weights is None:
        return tf.reduce_mean(values)
    return tf.reduce_mean(tf.cast(weights, values.dtype) * values)


def squared_loss(td_error, weights=None):
    """L = mean(½ δ²)  (mean(w · ½δ²) with importance weights w).

    Keras' MeanSquaredError is mean(δ²), twice this: with it, the same learning
    rate takes steps twice as large.
    """
    return weighted_mean(0.5 * tf.square(td_error), weights)


def huber_loss(td_error, delta=1.0, weights=None):
    """L = mean(h(δ)), h(δ) = ½δ² if |δ| ≤ Δ else Δ(|δ| − ½Δ); its gradient is clip(δ, −Δ, Δ)
    (mean(w · h(δ)) with importance weights w)."""
    abs_error = tf.abs(td_error)
    delta = cast(delta, td_error.dtype)
    # Two branches, not ½min(|δ|,Δ)² + Δ(|δ| − min): that form's gradient is Δ + (min − Δ),
    # which loses small δ to rounding (1% off in float32 at δ = 1e-6).
    return weighted_mean(tf.where(abs_error <= delta, 0.5 * tf.square(td_error),
                                  delta * (abs_error - 0.5 * delta)), weights)


def categorical_cross_entropy(target_probs, logits, actions):
    """L_b = −Σ_i m_i log softmax(logits(s, a))_i per sample [batch] (Bellemare et al. 2017): the
    cross-entropy of the projected target m [batch, K] and the taken action's predicted
    distribution; logits [batch, actions, K]. The target gets no gradient."""
    logits = tf.convert_to_tensor(logits)
    check_rank(logits, 3, "logits")
    taken = tf.gather(logits, tf.cast(actions, tf.int32), axis=1, batch_dims=1)   # [batch, K]
    return -tf.reduce_sum(tf.stop_gradient(cast(target_probs, logits.dtype)) * tf.nn.log_softmax(taken, axis=-1),
                          axis=-1)


def policy_gradient_loss(log_probs, advantages, normalizer=None):
    """L = −(1/M) Σ_i log π(a_i|s_i) · Â_i, the advantages held fixed (no gradient), so that
    ∇L = −(1/M) Σ_i Â_i ∇ log π(a_i|s_i): the score-function estimate of −∇J (Williams 1992).

    log_probs and advantages of the same shape (rawdqn/policy_gradient.py); Â_i a return G_i
    (REINFORCE), G_i − b(s_i) with a baseline, or a GAE advantage (A2C); M = `normalizer`,
    by default their count (a mean). REINFORCE over E whole episodes takes M = E: the sum over
    each episode's steps, the mean over episodes, as TF-Agents' ReinforceAgent does.
    """
    log_probs = tf.convert_to_tensor(log_probs)
    advantages = tf.stop_gradient(cast(advantages, log_probs.dtype))
    total = tf.reduce_sum(log_probs * advantages)
    count = tf.cast(tf.size(log_probs), log_probs.dtype) if normalizer is None else cast(normalizer, log_probs.dtype)
    return -total / count


def quantile_huber_loss(quantiles, taus, target_samples, kappa=1.0):
    """The quantile regression loss of QR-DQN and IQN (Dabney et al. 2018a, eq. 10; Dopamine's form):

        u_ij = T_j − θ_i,   ρ_τ^κ(u) = |τ − 1[u < 0]| · H_κ(u) / κ
        L_b = Σ_i (1/N') Σ_j ρ_{τ_i}^κ(u_ij)

    H_κ(u) = ½u² for |u| ≤ κ, else κ(|u| − ½κ); κ = 0 is the plain quantile loss |τ − 1[u < 0]|·|u|.
    quantiles θ [B, N] at fractions taus [N] or [B, N]; target_samples T [B, N'] (no gradient
    flows into them). Returns [B].

    Worked example: θ = [0], τ = [0.25], T = [2, −2], κ = 1: u = [2, −2], H = [1.5, 1.5],
    weights |τ − 1[u<0]| = [0.25, 0.75] → L = (0.375 + 1.125) / 2 = 0.75."""
    quantiles = tf.convert_to_tensor(quantiles)
    dtype = quantiles.dtype if quantiles.dtype.is_floating else tf.float32
    quantiles = tf.cast(quantiles, dtype)
    target_samples = tf.stop_gradient(cast(target_samples, dtype))
    check_rank(quantiles, 2, "quantiles")
    check_rank(target_samples, 2, "target_samples")
    taus = cast(taus, dtype)
    taus = taus[None, :, None] if taus.shape.rank == 1 else taus[:, :, None]   # [B or 1, N, 1]
    errors = target_samples[:, None, :] - quantiles[:, :, None]                 # u_ij [B, N, N']
    weight = tf.abs(taus - tf.cast(errors < 0, dtype))
    if kappa == 0:
        return tf.reduce_sum(tf.reduce_mean(weight * tf.abs(errors), axis=2), axis=1)
    kappa = cast(kappa, dtype)
    magnitude = tf.abs(errors)
    huber = tf.where(magnitude <= kappa, 0.5 * tf.square(errors), kappa * (magnitude - 0.5 * kappa))
    return tf.reduce_sum(tf.reduce_mean(weight * huber / kappa, axis=2), axis=1)
