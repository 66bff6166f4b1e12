"""PQN as pure functions of explicit tensors (Gallici et al. 2024, "Simplifying Deep Temporal
Difference Learning", ICLR 2025): Q-learning without a replay or a target network.

N environments step together for T steps, acting ε-greedily on Q(·; θ) (dqn.act). The rollout's
targets are Peng's Q(λ) returns of the same online network:

    returns   G_t = r_t + d_t [(1 − λ_t) max_a Q(s_{t+1}, a; θ) + λ_t G_{t+1}],  G_{T−1} = r + d max_a Q(s_T, a; θ)
              d_t = γ (1 − terminated_t),   λ_t = λ (1 − ended_t)

(multistep.peng_q_lambda_returns): a truncated episode bootstraps from its true last observation,
and no trace runs into the next episode. θ then makes `epochs` passes over the T·N transitions in
`minibatches` random minibatches of M, each a step on

    loss      L(θ) = (1/M) Σ ½ (G − Q(s, a; θ))²
    update    g = ∇_θ L,  g ← g · c / max(‖g‖, c),  θ ← RAdam(θ, g) with α decayed linearly (or constant)

The network's layer norms (network.py, `layer_norm`) are what lets it learn stably without a
target network (the paper's section 4). `network` is a Q-network used as a function of θ, as in
dqn.py; a rollout's tensors are time-major, [T, N, ...].
"""
import collections

import tensorflow as tf

from rawdqn import losses, multistep
from rawdqn.algorithms import dqn

# One rollout of N envs over T steps, [T, N, ...]: s_t, a_t, r_t, s_{t+1} (the true last observation
# where an episode was truncated), terminated_t (no bootstrap), ended_t (terminated or truncated).
Rollout = collections.namedtuple("Rollout", ["obs", "action", "reward", "next_obs", "terminated", "ended"])

Info = collections.namedtuple("Info", ["loss", "mean_q", "grad_norm"])


def returns(network, params, rollout, discount, lambda_):
    """Peng's Q(λ) returns G [T, N] of the rollout under θ (no gradient flows into them)."""
    steps, envs = tf.shape(rollout.reward)[0], tf.shape(rollout.reward)[1]
    flat_next = tf.reshape(rollout.next_obs, tf.concat([[steps * envs], tf.shape(rollout.next_obs)[2:]], 0))
    next_q = tf.reshape(network.apply(params, flat_next), [steps, envs, network.num_actions])
    discounts = discount * (1.0 - rollout.terminated)
    lambdas = lambda_ * (1.0 - tf.cast(rollout.ended, rollout.reward.dtype))
    return multistep.peng_q_lambda_returns(rollout.reward, discounts, next_q, lambdas)


def loss(network, params, obs, action, target):
    """(L(θ) = (1/M) Σ ½ (G − Q(s, a; θ))², Q(s, ·; θ)) on a minibatch."""
    q_values = network.apply(params, obs)
    return losses.squared_loss(losses.td_error(q_values, action, target)), q_values


def update(network, optimizer, params, optimizer_state, obs, action, target, max_grad_norm, learning_rate):
    """One step on a minibatch: ∇_θ L → global-norm clip → optimizer at `learning_rate`.
    Returns (θ', optimizer state', Info)."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(params)
        loss_value, q_values = loss(network, params, obs, action, target)
    params, optimizer_state, grad_norm = dqn.apply_gradient(network, optimizer, params, optimizer_state,
                                                            tape.gradient(loss_value, params), max_grad_norm,
                                                            learning_rate)
    return params, optimizer_state, Info(loss_value, tf.reduce_mean(q_values), grad_norm)


def learning_rate(initial, updates_done, total_updates, start=0):
    """α_k = α_s (1 − (k − s) / (K − s)): linear decay from α_s = `initial` at update s to 0 at the
    run's K updates (the paper's anneal, s = 0; a resumed run that was lengthened decays on from
    where its rate was, s its updates done then)."""
    progress = tf.cast(updates_done - start, tf.float64) / float(total_updates - start)
    return initial * tf.maximum(1.0 - progress, 0.0)


def minibatch_indices(key, transitions, minibatches):
    """A random permutation of the T·N transitions cut into `minibatches` equal parts,
    [minibatches, T·N / minibatches], from a stateless RNG keyed by `key` ([2] int32)."""
    order = tf.argsort(tf.random.stateless_uniform([transitions], seed=key))
    return tf.reshape(order, [minibatches, -1])


def train(network, optimizer, params, optimizer_state, rollout, config, key, updates_done, total_updates):
    """A rollout's learning: G under θ once, then `epochs` × `minibatches` updates, α decayed by
    the updates made so far (unless learning_rate_decay is off). `config` holds discount, q_lambda, epochs,
    minibatches, max_grad_norm, learning_rate, learning_rate_decay and learning_rate_decay_from. Returns (θ', optimizer state', the last Info)."""
    target = tf.reshape(returns(network, params, rollout, config.discount, config.q_lambda), [-1])
    obs = tf.reshape(rollout.obs, tf.concat([[-1], tf.shape(rollout.obs)[2:]], 0))
    action = tf.reshape(rollout.action, [-1])
    steps = config.epochs * config.minibatches
    # Update k takes minibatch k mod M of epoch k div M: each epoch a fresh permutation.
    orders = tf.concat([minibatch_indices(tf.stack([key[0], key[1] * config.epochs + epoch]), tf.shape(action)[0],
                                          config.minibatches) for epoch in range(config.epochs)], axis=0)

    start, initial = config.learning_rate_decay_from or (0, config.learning_rate)

    def body(k, params, optimizer_state, info):
        rows = orders[k]
        alpha = (learning_rate(initial, tf.cast(updates_done, tf.int64) + tf.cast(k, tf.int64), total_updates, start)
                 if config.learning_rate_decay else tf.constant(config.learning_rate, tf.float64))
        params, optimizer_state, info = update(network, optimizer, params, optimizer_state, tf.gather(obs, rows),
                                               tf.gather(action, rows), tf.gather(target, rows), config.max_grad_norm,
                                               alpha)
        return k + 1, params, optimizer_state, info

    # A loop, not unrolled: the program stays one update long however many updates a rollout makes.
    nothing = tf.zeros([], target.dtype)
    _, params, optimizer_state, info = tf.while_loop(
        lambda k, *_: k < steps, body, (tf.constant(0), params, optimizer_state, Info(nothing, nothing, nothing)))
    return params, optimizer_state, info
