"""Bellman targets: pure functions of tensors, with no gradient into the target.

All take `reward` and `terminated` of shape [batch], `discount` a scalar or
[batch], Q-values of shape [batch, num_actions], and return [batch].
`terminated` means the MDP ended (no bootstrap); a time-limit truncation is
*not* terminated and must bootstrap from the true final observation.
"""
import tensorflow as tf


def check_rank(tensor, rank, name):
    """Raise a one-line ValueError when a tensor's static rank is not `rank`."""
    actual = tensor.shape.rank
    if actual is not None and actual != rank:
        raise ValueError(f"{name} must have rank {rank}; got shape {tensor.shape}")


def cast(value, dtype):
    """`value` as a `dtype` tensor; Python numbers convert directly, with no float32 detour.

    (tf.cast(0.99, tf.float64) is 0.9900000095: the literal becomes float32 first.)
    """
    return tf.cast(tf.convert_to_tensor(value, dtype_hint=dtype), dtype)


def _inputs(reward, terminated, discount, *q_values):
    reward = tf.convert_to_tensor(reward)
    dtype = reward.dtype if reward.dtype.is_floating else tf.float32
    reward = tf.cast(reward, dtype)
    terminated = cast(terminated, dtype)
    discount = cast(discount, dtype)
    check_rank(reward, 1, "reward")
    check_rank(terminated, 1, "terminated")
    q_values = [cast(q, dtype) for q in q_values]
    for q in q_values:
        check_rank(q, 2, "next Q-values")
    return reward, terminated, discount, q_values


def masked_max(q_values, legal_mask=None):
    """max_a' Q(s', a') over legal actions; 0 for a row with no legal action."""
    if legal_mask is None:
        return tf.reduce_max(q_values, axis=-1)
    legal = tf.cast(legal_mask, tf.bool)
    lowest = tf.fill(tf.shape(q_values), tf.constant(q_values.dtype.min, q_values.dtype))
    best = tf.reduce_max(tf.where(legal, q_values, lowest), axis=-1)
    return tf.where(tf.reduce_any(legal, axis=-1), best, tf.zeros_like(best))


def masked_argmax(q_values, legal_mask=None):
    """argmax_a' Q(s', a') over legal actions (first maximum on ties), int32."""
    if legal_mask is not None:
        lowest = tf.fill(tf.shape(q_values), tf.constant(q_values.dtype.min, q_values.dtype))
        q_values = tf.where(tf.cast(legal_mask, tf.bool), q_values, lowest)
    return tf.argmax(q_values, axis=-1, output_type=tf.int32)


def q_learning_target(reward, terminated, discount, next_q, next_legal_mask=None):
    """y = r + γ · (1 − terminated) · max_{a' legal} Q_target(s', a')   (Mnih et al. 2015)."""
    reward, terminated, discount, (next_q,) = _inputs(reward, terminated, discount, next_q)
    bootstrap = masked_max(next_q, next_legal_mask)
    return tf.stop_gradient(reward + discount * (1.0 - terminated) * bootstrap)


def double_q_learning_target(reward, terminated, discount, next_q_online, next_q_target,
                             next_legal_mask=None):
    """y = r + γ · (1 − terminated) · Q_target(s', argmax_{a' legal} Q_online(s', a'))

    Double DQN (van Hasselt et al. 2016): the online network picks the action,
    the target network values it.
    """
    reward, terminated, discount, (next_q_online, next_q_target) = _inputs(
        reward, terminated, discount, next_q_online, next_q_target)
    best_action = masked_argmax(next_q_online, next_legal_mask)
    bootstrap = tf.gather(next_q_target, best_action, axis=1, batch_dims=1)
    if next_legal_mask is not None:
        any_legal = tf.reduce_any(tf.cast(next_legal_mask, tf.bool), axis=-1)
        bootstrap = tf.where(any_legal, bootstrap, tf.zeros_like(bootstrap))
    return tf.stop_gradient(reward + discount * (1.0 - terminated) * bootstrap)


def n_step_window(rewards, terminated, ended, discount):
    """One n-step window of an env's consecutive transitions k = 0 … n−1, cut at its episode's end.

    The window runs to the first k whose transition ends the episode (terminated, or ended:
    truncated) and never reaches into the next episode; its length is
        m = 1 + Σ_{k<n−1} alive_{k+1},   alive_k = Π_{j<k} (1 − stop_j),   stop = max(terminated, ended)
    and its target, with last = m − 1, is
        y = R + γ^m · (1 − terminated_last) · max_a' Q_target(s'_last, a'),   R = Σ_{k<m} γ^k r_k
    so a full window bootstraps with γ^n, a truncated one from its true final observation with
    γ^m, and a terminated one not at all.

    `rewards`, `terminated`, `ended` are [batch, n]. Returns (R [batch], γ^m [batch], last [batch]
    int32): feed R, terminated[last] and γ^m to q_learning_target as reward, terminated, discount.
    """
    rewards = tf.convert_to_tensor(rewards)
    dtype = rewards.dtype if rewards.dtype.is_floating else tf.float32
    rewards = tf.cast(rewards, dtype)
    check_rank(rewards, 2, "rewards")
    stop = tf.maximum(cast(terminated, dtype), cast(ended, dtype))
    check_rank(stop, 2, "terminated")
    discount = cast(discount, dtype)
    n = tf.shape(rewards)[1]
    alive = tf.math.cumprod(1.0 - stop, axis=1, exclusive=True)   # 1 up to and including the first stop
    powers = tf.pow(discount, tf.cast(tf.range(n), dtype))        # γ^0 … γ^{n−1}
    length = tf.reduce_sum(alive, axis=1)
    window_return = tf.reduce_sum(powers * alive * rewards, axis=1)
    return (tf.stop_gradient(window_return), tf.pow(discount, length),
            tf.cast(length, tf.int32) - 1)


def categorical_projection(support, next_probs, reward, terminated, discount):
    """The C51 target distribution (Bellemare et al. 2017, Algorithm 1): the distribution of
    r + γ(1 − terminated) Z(s', a*) projected onto the fixed atoms z_0 < … < z_{K−1}:

        T z_j = clip(r + γ (1 − terminated) z_j, z_0, z_{K−1}),   b_j = (T z_j − z_0) / Δz
        m_i = Σ_j p_j · max(0, 1 − |b_j − i|)

    the triangle form of the paper's floor/ceil split (p_j (u − b_j) to l = ⌊b_j⌋, p_j (b_j − l)
    to u = ⌈b_j⌉, all of p_j to b_j where it is a whole number): the same numbers without a
    scatter, and Σ_i m_i = Σ_j p_j, since each b_j ∈ [0, K−1] splits its weight between the two
    atoms nearest it.

    support [K] (evenly spaced), next_probs [batch, K] (p = Z(s', a*)'s probabilities), reward and
    terminated [batch], discount a scalar or [batch] (γ^m of an n-step window). Returns m
    [batch, K], with no gradient.
    """
    support = tf.convert_to_tensor(support)
    dtype = support.dtype
    check_rank(support, 1, "support")
    next_probs = cast(next_probs, dtype)
    check_rank(next_probs, 2, "next_probs")
    reward, terminated, discount = cast(reward, dtype), cast(terminated, dtype), cast(discount, dtype)
    check_rank(reward, 1, "reward")
    check_rank(terminated, 1, "terminated")
    atoms = tf.shape(support)[0]
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / tf.cast(atoms - 1, dtype)
    bootstrap = discount * (1.0 - terminated)   # scalar or [batch] → [batch]
    shifted = tf.clip_by_value(reward[:, None] + bootstrap[..., None] * support[None, :], v_min, v_max)
    position = (shifted - v_min) / delta                                   # b_j, [batch, K]
    atom_index = tf.cast(tf.range(atoms), dtype)
    weight = tf.nn.relu(1.0 - tf.abs(position[:, None, :] - atom_index[None, :, None]))   # [batch, i, j]
    return tf.stop_gradient(tf.reduce_sum(weight * next_probs[:, None, :], axis=-1))


def categorical_q_values(support, logits):
    """Q(s, a) = Σ_i z_i · softmax(logits(s, a))_i: logits [batch, actions, K] → [batch, actions]."""
    return tf.reduce_sum(tf.nn.softmax(logits, axis=-1) * support, axis=-1)


def quantile_target(reward, terminated, discount, next_quantiles):
    """T_j = r + γ (1 − terminated) θ_j(s', a*),  j = 1 … N   (QR-DQN, Dabney et al. 2018a, Algorithm 1):
    the target distribution's samples, next_quantiles [B, N] the quantiles of the action a* chosen
    at s'. Returns [B, N]."""
    reward, terminated, discount, (next_quantiles,) = _inputs(reward, terminated, discount, next_quantiles)
    return tf.stop_gradient(reward[:, None] + (discount * (1.0 - terminated))[..., None] * next_quantiles)


# --- more one-step targets (TRFL's and rlax's), in q_learning_target's argument order -------------
def sarsa_target(reward, terminated, discount, next_q, next_action):
    """y = r + γ · (1 − terminated) · Q(s', a')   (Rummery & Niranjan 1994): a' is the action
    taken next, so the target follows the behaviour policy.

    Worked example: r = 1, γ = 0.9, Q(s', ·) = [2, 5], a' = 0 → y = 1 + 0.9 · 2 = 2.8."""
    reward, terminated, discount, (next_q,) = _inputs(reward, terminated, discount, next_q)
    bootstrap = tf.gather(next_q, tf.cast(next_action, tf.int32), axis=1, batch_dims=1)
    return tf.stop_gradient(reward + discount * (1.0 - terminated) * bootstrap)


def expected_sarsa_target(reward, terminated, discount, next_q, next_probs):
    """y = r + γ · (1 − terminated) · Σ_a' π(a'|s') Q(s', a')   (van Seijen et al. 2009).

    Worked example: r = 1, γ = 0.9, Q(s', ·) = [2, 5], π(·|s') = [0.25, 0.75]
    → y = 1 + 0.9 · (0.5 + 3.75) = 4.825."""
    reward, terminated, discount, (next_q, next_probs) = _inputs(reward, terminated, discount, next_q, next_probs)
    bootstrap = tf.reduce_sum(next_probs * next_q, axis=-1)
    return tf.stop_gradient(reward + discount * (1.0 - terminated) * bootstrap)


def persistent_q_learning_target(reward, terminated, discount, next_q, action, action_gap_scale):
    """y = r + γ · (1 − terminated) · [(1 − α) max_a' Q(s', a') + α Q(s', a)]   (Bellemare et al. 2016,
    persistent advantage learning; a is the action taken at s, α = action_gap_scale).

    Repeating a keeps its value: the action gap grows, which makes greedy choices sturdier to
    estimation error. Worked example: r = 0, γ = 1, Q(s', ·) = [2, 5], a = 0, α = 0.5 → y = 3.5."""
    reward, terminated, discount, (next_q,) = _inputs(reward, terminated, discount, next_q)
    alpha = cast(action_gap_scale, reward.dtype)
    kept = tf.gather(next_q, tf.cast(action, tf.int32), axis=1, batch_dims=1)
    bootstrap = (1.0 - alpha) * tf.reduce_max(next_q, axis=-1) + alpha * kept
    return tf.stop_gradient(reward + discount * (1.0 - terminated) * bootstrap)


def munchausen_target(reward, terminated, discount, q_target, action, next_q_target, temperature, alpha, log_clip):
    """Munchausen DQN's target (Vieillard et al. 2020, eq. 2 with the clipped bonus):

        y = r + α · clip(τ log π(a|s), l₀, 0)
              + γ (1 − terminated) Σ_a' π(a'|s') [Q⁻(s', a') − τ log π(a'|s')]

    π = softmax(Q⁻/τ) of the target network, τ = temperature, l₀ = log_clip (−1 in the paper),
    and τ log π(a|s) = Q⁻(s, a) − τ logsumexp(Q⁻(s, ·)/τ), computed by log-sum-exp so a small
    τ does not overflow. q_target = Q⁻(s, ·), next_q_target = Q⁻(s', ·), both [B, A].

    Worked example: Q⁻(s, ·) = Q⁻(s', ·) = [0, 0], τ = 1, α = 0.9, l₀ = −1, r = 1, γ = 0.5, a = 0:
    π = [½, ½], τ log π = −ln 2 ≈ −0.693 (inside [−1, 0]), so
    y = 1 + 0.9 · (−0.693) + 0.5 · (0 + 0.693) ≈ 0.723."""
    reward, terminated, discount, (q_target, next_q_target) = _inputs(
        reward, terminated, discount, q_target, next_q_target)
    tau = cast(temperature, reward.dtype)

    def scaled_log_policy(q):   # τ log softmax(q/τ)
        return q - tau * tf.reduce_logsumexp(q / tau, axis=-1, keepdims=True)
    taken = tf.gather(scaled_log_policy(q_target), tf.cast(action, tf.int32), axis=1, batch_dims=1)
    bonus = cast(alpha, reward.dtype) * tf.clip_by_value(taken, cast(log_clip, reward.dtype), 0.0)
    next_log = scaled_log_policy(next_q_target)
    next_probs = tf.nn.softmax(next_q_target / tau, axis=-1)
    bootstrap = tf.reduce_sum(next_probs * (next_q_target - next_log), axis=-1)
    return tf.stop_gradient(reward + bonus + discount * (1.0 - terminated) * bootstrap)
