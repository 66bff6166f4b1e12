"""Multi-step returns over sequences: λ-returns, Q(λ), Retrace, V-trace.

Every function is time-major: arrays are [T, B] (step t of sequence b), Q-values [T, B, A].
`discounts` [T, B] is γ at step t, or 0 where step t terminated (the convention of TRFL and
rlax), so a termination cuts every return at that step; "next" arrays are about s_{t+1}, the
state after step t (next_q[t] = Q(s_{t+1}, ·), next_values[t] = V(s_{t+1})). Each return is
computed backwards from the sequence's end, where it bootstraps from the last next value.
No gradient flows into a return.
"""
import tensorflow as tf

from rawdqn.bellman import cast, check_rank


def _sequences(rewards, discounts, *others):
    rewards = tf.convert_to_tensor(rewards)
    dtype = rewards.dtype if rewards.dtype.is_floating else tf.float32
    rewards, discounts = cast(rewards, dtype), cast(discounts, dtype)
    check_rank(rewards, 2, "rewards")
    check_rank(discounts, 2, "discounts")
    return (rewards, discounts, *(cast(x, dtype) for x in others))


def _backwards(step, last, *sequences):
    """G_t = step(G_{t+1}, x_t…) for t = T−1 … 0, starting from G_T = `last`; returns [T, …]."""
    return tf.scan(lambda following, xs: step(following, *xs), sequences, initializer=last, reverse=True)


def lambda_returns(rewards, discounts, next_values, lambda_):
    """G_t = r_t + d_t [(1 − λ) v_t + λ G_{t+1}],   G_{T−1} = r_{T−1} + d_{T−1} v_{T−1}

    (Sutton & Barto 2018, §12.1, written recursively; v_t = V(s_{t+1})). λ = 0 is the one-step
    TD target, λ = 1 the discounted return bootstrapped from v at the sequence's end. `lambda_`
    is a number or [T, B] (a trace that varies by step, as Watkins' Q(λ) and Retrace cut it).

    Worked example (T = 2): r = [1, 2], d = [0.5, 0.5], v = [10, 20], λ = 0.5:
    G_1 = 2 + 0.5 · 20 = 12;  G_0 = 1 + 0.5 · (0.5 · 10 + 0.5 · 12) = 6.5."""
    rewards, discounts, next_values = _sequences(rewards, discounts, next_values)
    lambdas = tf.broadcast_to(cast(lambda_, rewards.dtype), tf.shape(rewards))
    # G_T is taken as v_{T−1}: then G_{T−1} = r + d[(1 − λ)v + λv] = r + d·v whatever λ is.
    return tf.stop_gradient(_backwards(
        lambda following, r, d, v, lam: r + d * ((1.0 - lam) * v + lam * following),
        next_values[-1], rewards, discounts, next_values, lambdas))


def peng_q_lambda_returns(rewards, discounts, next_q, lambda_):
    """Peng's Q(λ) (Peng & Williams 1996): the λ-return with v_t = max_a Q(s_{t+1}, a),
    G_t = r_t + d_t [(1 − λ) max_a Q(s_{t+1}, a) + λ G_{t+1}]; the trace is never cut."""
    return lambda_returns(rewards, discounts, tf.reduce_max(next_q, axis=-1), lambda_)


def watkins_q_lambda_returns(rewards, discounts, next_q, next_actions, lambda_):
    """Watkins' Q(λ) (Watkins 1989): Peng's return with the trace cut after a non-greedy action,
    λ_t = λ · 1[a_{t+1} = argmax_a Q(s_{t+1}, a)]: a return never follows an exploratory step."""
    next_q = tf.convert_to_tensor(next_q)
    greedy = tf.equal(tf.cast(next_actions, tf.int32), tf.argmax(next_q, axis=-1, output_type=tf.int32))
    lambdas = tf.where(greedy, cast(lambda_, next_q.dtype), tf.zeros([], next_q.dtype))
    return lambda_returns(rewards, discounts, tf.reduce_max(next_q, axis=-1), lambdas)


def retrace_returns(rewards, discounts, next_q, next_actions, next_target_probs, next_behaviour_probs, lambda_):
    """Retrace(λ) (Munos et al. 2016, eq. 3 written recursively):

        c_t = λ min(1, π(a_{t+1}|s_{t+1}) / μ(a_{t+1}|s_{t+1}))
        G_t = r_t + d_t [E_π Q(s_{t+1}, ·) + c_t (G_{t+1} − Q(s_{t+1}, a_{t+1}))],   c_{T−1} = 0

    next_target_probs and next_behaviour_probs: π(·|s_{t+1}) and μ(·|s_{t+1}), [T, B, A]. With
    π = μ every trace is λ: on-policy, Retrace is the λ-return of expected SARSA's target."""
    rewards, discounts, next_q, pi, mu = _sequences(rewards, discounts, next_q, next_target_probs,
                                                     next_behaviour_probs)
    actions = tf.cast(next_actions, tf.int32)
    taken_q = tf.gather(next_q, actions, axis=-1, batch_dims=2)
    ratio = tf.gather(pi, actions, axis=-1, batch_dims=2) / tf.gather(mu, actions, axis=-1, batch_dims=2)
    traces = cast(lambda_, rewards.dtype) * tf.minimum(ratio, 1.0)
    expected = tf.reduce_sum(pi * next_q, axis=-1)
    # G_T is taken as Q(s_T, a_T): then the last correction is 0, G_{T−1} = r + d E_π Q(s_T, ·).
    return tf.stop_gradient(_backwards(
        lambda following, r, d, e, q, c: r + d * (e + c * (following - q)),
        taken_q[-1], rewards, discounts, expected, taken_q, traces))


def vtrace(values, bootstrap_value, rewards, discounts, log_rhos, clip_rho=1.0, clip_c=1.0, clip_pg_rho=1.0,
           lambda_=1.0):
    """V-trace targets and policy-gradient advantages (Espeholt et al. 2018, IMPALA, §4.1):

        ρ_t = min(ρ̄, π/μ),   c_t = λ min(c̄, π/μ)   (π/μ = exp(log_rhos); None: no clip)
        δ_t = ρ_t (r_t + d_t V(x_{t+1}) − V(x_t))
        v_t = V(x_t) + δ_t + d_t c_t (v_{t+1} − V(x_{t+1})),     v_T = V(x_T) = bootstrap_value
        A_t = min(ρ̄_pg, π/μ) (r_t + d_t v_{t+1} − V(x_t))

    values [T, B] = V(x_t), bootstrap_value [B]. Returns (vs [T, B], pg_advantages [T, B]).
    With π = μ and no clipping, v_t is the λ-return of V (lambda_returns)."""
    rewards, discounts, values, log_rhos = _sequences(rewards, discounts, values, log_rhos)
    bootstrap_value = cast(bootstrap_value, rewards.dtype)
    rhos = tf.exp(log_rhos)

    def clipped(bound):
        return rhos if bound is None else tf.minimum(cast(bound, rhos.dtype), rhos)
    next_values = tf.concat([values[1:], bootstrap_value[None]], axis=0)
    deltas = clipped(clip_rho) * (rewards + discounts * next_values - values)
    traces = cast(lambda_, rhos.dtype) * clipped(clip_c)
    corrections = _backwards(lambda following, delta, d, c: delta + d * c * following,
                             tf.zeros_like(bootstrap_value), deltas, discounts, traces)   # v_t − V(x_t)
    vs = values + corrections
    next_vs = tf.concat([vs[1:], bootstrap_value[None]], axis=0)
    advantages = clipped(clip_pg_rho) * (rewards + discounts * next_vs - values)
    return tf.stop_gradient(vs), tf.stop_gradient(advantages)
