"""DQN as pure functions of explicit tensors: the file to read to learn the algorithm.

Deep Q-learning (Mnih et al. 2015), with the parts of Rainbow (Hessel et al. 2018) that change
its target or its loss written once each, as a branch here:

    act     a = a uniform legal action if u < ε, else argmax_{a legal} Q(s, a; θ)
    target  y = r + γ^m (1 − terminated) Q(s', a*; θ⁻),   a* = argmax_{a' legal} Q(s', a'; θ⁻)
            double Q (van Hasselt et al. 2016): a* = argmax_{a' legal} Q(s', a'; θ)
            distributional (Bellemare et al. 2017): m = Φ(r + γ^m (1 − terminated) z, p(s', a*; θ⁻))
            quantile regression (Dabney et al. 2018a): T_j = r + γ^m (1 − terminated) θ_j(s', a*; θ⁻)
            implicit quantiles (Dabney et al. 2018b): T_j = r + γ^m (1 − terminated) Z_τ'_j(s', a*; θ⁻),
                a* = argmax_a (1/K) Σ_k Z_τ̃_k(s', a), τ'_j, τ̃_k ~ U(0, 1)
            Munchausen (Vieillard et al. 2020): y = r + α clip(τ log π(a|s), l₀, 0)
                + γ^m (1 − terminated) Σ_a' π(a'|s') [Q(s', a'; θ⁻) − τ log π(a'|s')],  π = softmax(Q(·; θ⁻)/τ)
    loss    δ = y − Q(s, a; θ),   L(θ) = (1/B) Σ_b w_b ℓ(δ_b),   ℓ = ½δ² or Huber
            distributional: L(θ) = (1/B) Σ_b w_b (−Σ_i m_i log p_i(s, a; θ))
            quantile regression: L(θ) = (1/B) Σ_b w_b Σ_i (1/N') Σ_j ρ^κ_{τ_i}(T_j − θ_i(s, a; θ)),
                τ_i = (2i + 1)/2N, or for implicit quantiles N levels τ_i ~ U(0, 1) and θ_i = Z_τ_i
    update  g = ∇_θ L,   g ← g · c / max(‖g‖, c),   (θ, optimizer state) ← optimizer(θ, g, state)
    sync    θ⁻ ← τθ + (1 − τ)θ⁻
    step    store → t ← t + N → the updates and the sync owed at t (schedule.due) → act

Nothing here reads or writes a variable: every function takes θ, θ⁻, the optimizer's state
and the batch as tensors and returns new tensors. `network` is a Q-network of
rawdqn/network.py used as a function of its parameters, `network.apply(θ, obs, noise)`;
`batch` is a replay.Transition of network inputs (m-step windows carry their γ^m in
`discount`, a prioritized replay's draws their importance weights in `weight`); `config` a
DQNConfig. rawdqn/agent.py keeps θ, θ⁻ and the optimizer's state in variables and calls
these functions; rawdqn/train.py is the loop. examples/dqn_cartpole.py trains CartPole with
nothing but this module.
"""
import collections

import tensorflow as tf

from rawdqn import bellman, control, losses, optim, schedule

LearnInfo = collections.namedtuple(
    "LearnInfo", ["loss", "mean_td_error", "mean_abs_td_error", "mean_max_q", "grad_norm"])

# A noisy network's noise for each forward pass of an update (network.sample_noise()); None: μ alone.
Noise = collections.namedtuple("Noise", ["target_next", "online_next", "online"], defaults=[None] * 3)

# update's result: new θ and optimizer state, what to log, and each sample's error for its priority.
Update = collections.namedtuple("Update", ["params", "optimizer_state", "info", "errors"])

# An implicit quantile network's levels τ ~ U(0, 1) for each forward pass of an update: the
# target's N' [B, N'], the K that choose a* [B, K], the online N of the loss [B, N]; None elsewhere.
Levels = collections.namedtuple("Levels", ["target_next", "chooser", "online"], defaults=[None] * 3)

# The loop's int64 counters: environment steps done, updates made, target syncs made.
Counters = collections.namedtuple("Counters", ["step", "updates_done", "syncs_done"])


def q_values(network, params, obs, noise=None, levels=None):
    """Q(s, ·; θ) [B, A]; a distributional head's Q(s, a) = Σ_i z_i p_i(s, a), a quantile head's
    the mean of its quantiles, an implicit one's Q(s, a) = (1/K) Σ_k Z_τ_k(s, a) over the levels [B, K]."""
    return network.apply(params, obs, noise, levels)


def act(network, params, obs, epsilon, key, legal_mask=None, noise=None, levels=None):
    """ε-greedy actions [B] (int32): a = uniform legal action if u < ε, else argmax_{a legal} Q(s, a; θ).

    u and the random action come from stateless uniforms keyed by `key` ([2] int32: a seed
    and a counter), so the same key gives the same actions. `epsilon`: a scalar or [B]."""
    values = q_values(network, params, obs, noise, levels)
    greedy = bellman.masked_argmax(values, legal_mask)
    uniforms = tf.random.stateless_uniform([tf.shape(values)[0], network.num_actions + 1], seed=key,
                                           dtype=values.dtype)
    # argmax of i.i.d. uniforms over the legal actions is a uniform legal action.
    random_action = bellman.masked_argmax(uniforms[:, 1:], legal_mask)
    return tf.where(uniforms[:, 0] < epsilon, random_action, greedy)


def target(config, network, params, target_params, batch, noise=Noise(), levels=Levels()):
    """The Bellman target (no gradient flows into it): y = r + γ^m (1 − terminated) Q(s', a*; θ⁻)
    [B], or a branch of the module docstring's: a distributional head's projected distribution
    m [B, K] over network.support, a quantile head's samples T [B, N']."""
    discount = config.discount if batch.discount is None else batch.discount   # γ, or γ^m per window
    legal = batch.next_legal_mask
    if config.distributional:
        support = network.support
        next_logits = network.apply_logits(target_params, batch.next_obs, noise.target_next)
        next_q = bellman.categorical_q_values(support, next_logits)
        if config.double_q:
            next_q_online = network.apply_logits(params, batch.next_obs, noise.online_next)
            best = bellman.masked_argmax(bellman.categorical_q_values(support, next_q_online), legal)
        else:
            best = bellman.masked_argmax(next_q, legal)
        next_probs = tf.nn.softmax(tf.gather(next_logits, best, axis=1, batch_dims=1), axis=-1)
        return bellman.categorical_projection(support, next_probs, batch.reward, batch.terminated, discount)
    if config.quantile_regression or config.implicit_quantiles:
        next_quantiles = network.apply_logits(target_params, batch.next_obs, noise.target_next,
                                              levels.target_next)   # [B, A, N']
        if config.double_q:
            chooser = network.apply(params, batch.next_obs, noise.online_next, levels.chooser)
        elif config.implicit_quantiles:
            chooser = network.apply(target_params, batch.next_obs, None, levels.chooser)
        else:
            chooser = tf.reduce_mean(next_quantiles, axis=-1)
        best = bellman.masked_argmax(chooser, legal)
        chosen = tf.gather(next_quantiles, best, axis=1, batch_dims=1)
        return bellman.quantile_target(batch.reward, batch.terminated, discount, chosen)
    next_q = network.apply(target_params, batch.next_obs, noise.target_next)
    if config.munchausen:
        # The same noise sample as s': one draw of the noisy θ⁻, evaluated at both states.
        q_target = network.apply(target_params, batch.obs, noise.target_next)
        return bellman.munchausen_target(batch.reward, batch.terminated, discount, q_target, batch.action, next_q,
                                         config.munchausen_temperature, config.munchausen_alpha,
                                         config.munchausen_log_clip)
    if config.double_q:
        next_q_online = network.apply(params, batch.next_obs, noise.online_next)
        return bellman.double_q_learning_target(batch.reward, batch.terminated, discount, next_q_online, next_q,
                                                legal)
    return bellman.q_learning_target(batch.reward, batch.terminated, discount, next_q, legal)


def loss(config, network, params, batch, y, noise=None, levels=None):
    """(L(θ), δ [B], Q(s, ·; θ) [B, A], the errors a prioritized replay ranks by [B]).

    δ = y − Q(s, a; θ); a distributional head's δ is the target's mean Σ_i z_i m_i minus
    Q(s, a), and its priorities are the cross-entropies (Hessel et al. 2018)."""
    if config.distributional:
        logits = network.apply_logits(params, batch.obs, noise)
        cross_entropy = losses.categorical_cross_entropy(y, logits, batch.action)
        q_values = bellman.categorical_q_values(network.support, logits)
        td_error = losses.td_error(q_values, batch.action, tf.reduce_sum(y * network.support, axis=-1))
        return losses.weighted_mean(cross_entropy, batch.weight), td_error, q_values, cross_entropy
    if config.quantile_regression or config.implicit_quantiles:   # y: the target's samples [B, N']
        all_quantiles = network.apply_logits(params, batch.obs, noise, levels)   # [B, A, N]
        quantiles = tf.gather(all_quantiles, batch.action, axis=1, batch_dims=1)
        taus = levels if config.implicit_quantiles else \
            (2.0 * tf.range(network.atoms, dtype=quantiles.dtype) + 1.0) / (2.0 * network.atoms)
        per_sample = losses.quantile_huber_loss(quantiles, taus, y, config.quantile_kappa)
        q_values = tf.reduce_mean(all_quantiles, axis=-1)
        td_error = losses.td_error(q_values, batch.action, tf.reduce_mean(y, axis=-1))
        return losses.weighted_mean(per_sample, batch.weight), td_error, q_values, per_sample
    q_values = network.apply(params, batch.obs, noise)
    td_error = losses.td_error(q_values, batch.action, y)
    per_sample = losses.huber_loss if config.loss == "huber" else losses.squared_loss
    return per_sample(td_error, weights=batch.weight), td_error, q_values, td_error


def update(config, network, optimizer, params, target_params, optimizer_state, batch, noise=Noise(), levels=Levels()):
    """One gradient step on a batch: y = target(θ, θ⁻), g = ∇_θ L(θ; y), g ← g · c / max(‖g‖, c),
    (θ', state') = optimizer(θ, g, state). Returns Update(θ', state', LearnInfo, errors for the priorities)."""
    y = target(config, network, params, target_params, batch, noise, levels)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(params)
        loss_value, td_error, q_values, errors = loss(config, network, params, batch, y, noise.online, levels.online)
    params, optimizer_state, grad_norm = apply_gradient(network, optimizer, params, optimizer_state,
                                                        tape.gradient(loss_value, params), config.max_grad_norm)
    info = LearnInfo(loss_value, tf.reduce_mean(td_error), tf.reduce_mean(tf.abs(td_error)),
                     tf.reduce_mean(tf.reduce_max(q_values, axis=-1)), grad_norm)
    return Update(params, optimizer_state, info, errors)


def apply_gradient(network, optimizer, params, optimizer_state, grad, max_grad_norm, learning_rate=None):
    """g ← g · c / max(‖g‖, c), then (θ', state') = optimizer(θ, g, state) at `learning_rate`
    (default: the optimizer's). Returns (θ', state', ‖g‖ before clipping)."""
    # ‖g‖ summed layer by layer, in θ's order.
    (grad,), grad_norm = optim.clip_by_global_norm([grad], max_grad_norm, optim.global_norm(network.layer_values(grad)))
    (params,), optimizer_state = optimizer.update([grad], [params], optimizer_state, learning_rate)
    return params, optimizer_state, grad_norm


def sync(params, target_params, tau):
    """θ⁻ ← τθ + (1 − τ)θ⁻; τ = 1 is an exact copy."""
    # τ = 1 must copy bit for bit, not compute 1·θ + 0·θ⁻ (NaN where θ⁻ is inf).
    return tf.where(tau >= 1.0, params, tau * params + (1.0 - tau) * target_params)


def exploration(config, step, num_steps, dtype=tf.float64):
    """ε for the next N steps [N]: ε(t), …, ε(t + N − 1) (schedule.epsilon, computed in float64);
    zero for noisy nets, which explore through their weights (Fortunato et al. 2018)."""
    epsilon = schedule.epsilon(config, step + tf.range(num_steps, dtype=tf.int64), dtype)
    return tf.zeros_like(epsilon) if config.noisy else epsilon


def step(config, counters, num_steps, store, learn, sync, act, last_info, learning=True, syncing=True):
    """One environment step's work for N environments, in the order of Mnih et al. (2015),
    Algorithm 1:

        store()        replay ← (s, a, r, s', terminated)
        t ← t + N
        (k, syncs, τ') = schedule.due(t, updates done, syncs done)
        k × learn(t)   θ ← update(θ, θ⁻, a batch drawn from the replay at step t)
        sync(τ')       θ⁻ ← τ'θ + (1 − τ')θ⁻, if a sync is owed
        act(ε)         a' = ε-greedy(Q(s'; θ)) with ε(t), …, ε(t + N − 1)

    The replay, θ and θ⁻ live in variables the engine updates in place (copying a ring of 10⁵
    rows every step would cost more than the step), so those effects come in as functions;
    what is owed, and when, is here. `learning` off: the caller knows nothing is owed at t (a
    smaller program, which reads only counters.step). `syncing` off: the caller makes the syncs
    owed after the step with `sync_owed` (the same arithmetic: act reads θ alone, and the next
    update is the first to read θ⁻). Returns (counters', the last update's LearnInfo or
    `last_info`, the updates made, a'); ε goes to `act` in float64."""
    store()
    t = counters.step + tf.cast(num_steps, tf.int64)
    epsilon = exploration(config, t, num_steps)
    if not learning:
        return counters._replace(step=t), last_info, tf.constant(0, tf.int64), act(epsilon)
    owed = schedule.due(config, t, counters.updates_done, counters.syncs_done)
    _, info = control.while_loop(lambda i, _: i < owed.updates, lambda i, _: (i + 1, learn(t)),
                            (tf.constant(0, tf.int64), last_info))

    counters = Counters(t, counters.updates_done + owed.updates, counters.syncs_done)
    if syncing:
        counters = sync_owed(config, counters, sync)
    return counters, info, owed.updates, act(epsilon)


def sync_owed(config, counters, sync):
    """sync(τ') if syncs are owed at counters.step (schedule.due); returns the counters with them made."""
    owed = schedule.due(config, counters.step, counters.updates_done, counters.syncs_done)

    def sync_now():
        sync(owed.tau)
        return tf.constant(0)
    control.cond(owed.syncs > 0, sync_now, lambda: tf.constant(0))
    return counters._replace(syncs_done=counters.syncs_done + owed.syncs)
