"""REINFORCE (Williams 1992) and A2C (Mnih et al. 2016, synchronous) as pure functions.

A softmax policy π(a|s; θ) = softmax(logits(s; θ)) over the legal actions and a state value
V(s; φ) (A2C's critic, REINFORCE's optional baseline), each an MLP of rawdqn/network.py used
as a function of its parameters:

    act     a ~ π(·|s; θ)   (Gumbel-max on stateless uniforms keyed by `key`)
    REINFORCE, on E finished episodes:
            G_t = Σ_{k≥t} γ^{k−t} r_k,   Â_t = G_t − V(s_t; φ) (baseline), else G_t
            L_π = −(1/E) Σ_episodes Σ_t [γ^t] log π(a_t|s_t; θ) Â_t
    A2C, on n steps of N envs:
            Â_t = GAE(λ) of δ_t = r_t + γ V(s_{t+1}; φ) − V(s_t; φ),   G_t = Â_t + V(s_t; φ)
            L_π = −mean_t log π(a_t|s_t; θ) Â_t
    both    L = L_π + c_V mean_t ½(G_t − V(s_t; φ))² − c_H mean_t H(π(·|s_t; θ))
            (Â standardised first with normalize_advantages; no gradient through Â or G)
    update  g = ∇_{θ,φ} L,   g ← g · c / max(‖g‖, c),   ((θ, φ), state) ← optimizer((θ, φ), g, state)

A truncated episode's return bootstraps from V of its true final observation (0 for
REINFORCE without a baseline), a terminated one's from nothing (rawdqn/policy_gradient.py).
`batch` is time-major [T, N] (rawdqn/policy_agent.py's Episodes: obs, action, reward,
terminated, ended, next_obs, legal_mask, valid, step, episodes) of network inputs; `params`
is [θ] or [θ, φ]. rawdqn/policy_agent.py keeps them in variables and calls these functions.
"""
import collections

import tensorflow as tf

from rawdqn import losses, optim
from rawdqn.policy_gradient import (discounted_returns, entropy, generalized_advantages, log_probability,
                                    sample_actions)

PolicyInfo = collections.namedtuple("PolicyInfo", ["loss", "policy_loss", "value_loss", "entropy", "grad_norm"])


def act(policy, theta, obs, key, legal_mask=None):
    """a ~ π(·|s; θ) [B] (int32), never an illegal action; the draws keyed by `key` ([2] int32)."""
    logits = policy.apply(theta, obs)
    uniforms = tf.random.stateless_uniform(tf.shape(logits), seed=key, dtype=logits.dtype)
    return sample_actions(logits, uniforms, legal_mask)


def advantages_and_returns(config, batch, values, next_values, a2c):
    """(Â, G) [T, N]: A2C's GAE(λ) advantages and their returns, or REINFORCE's returns and
    their advantages over the baseline; Â standardised over the valid steps with
    normalize_advantages, and weighted by γ^t with score_discounting."""
    values, next_values = tf.stop_gradient(values), tf.stop_gradient(next_values)
    reward = tf.cast(batch.reward, values.dtype)
    if a2c:
        advantages = generalized_advantages(reward, batch.terminated, batch.ended, values, next_values,
                                            config.discount, config.gae_lambda)
        returns = advantages + values
    else:
        returns = discounted_returns(reward, batch.terminated, batch.ended, config.discount, next_values)
        advantages = returns - values
    if config.normalize_advantages:
        weight = tf.cast(batch.valid, values.dtype)
        count = tf.maximum(tf.reduce_sum(weight), 1.0)
        mean = tf.reduce_sum(advantages * weight) / count
        std = tf.sqrt(tf.reduce_sum(tf.square(advantages - mean) * weight) / count)
        advantages = (advantages - mean) / (std + 1e-8)
    if config.score_discounting:
        advantages *= tf.pow(tf.cast(config.discount, values.dtype), tf.cast(batch.step, values.dtype))
    return advantages, returns


def loss(config, policy, critic, params, batch, a2c):
    """(L, PolicyInfo without grad_norm): the module docstring's L over the valid steps."""
    valid = tf.cast(batch.valid, tf.bool)
    shape = tf.shape(batch.action)

    def flat(x):   # [T, N, ...] → [T·N, ...]
        return tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
    logits = policy.apply(params[0], flat(batch.obs))
    weight = tf.cast(valid, logits.dtype)
    count = tf.maximum(tf.reduce_sum(weight), 1.0)
    legal = None if batch.legal_mask is None else flat(batch.legal_mask)
    log_probs = tf.reshape(log_probability(logits, flat(batch.action), legal), shape)
    step_entropy = tf.reshape(entropy(logits, legal), shape)
    if critic is not None:
        values = tf.reshape(critic.apply(params[1], flat(batch.obs))[:, 0], shape)
        next_values = tf.reshape(critic.apply(params[1], flat(batch.next_obs))[:, 0], shape)
    else:
        values = next_values = tf.zeros(shape, logits.dtype)
    advantages, returns = advantages_and_returns(config, batch, values, next_values, a2c)
    zeros = tf.zeros_like(log_probs)
    # REINFORCE: the sum over each episode, the mean over episodes; A2C: the mean over steps.
    normalizer = count if a2c else tf.maximum(tf.cast(batch.episodes, logits.dtype), 1.0)
    policy_loss = losses.policy_gradient_loss(tf.where(valid, log_probs, zeros), tf.where(valid, advantages, zeros),
                                              normalizer=normalizer)
    value_loss = tf.reduce_sum(0.5 * tf.square(returns - values) * weight) / count
    mean_entropy = tf.reduce_sum(tf.where(valid, step_entropy, zeros)) / count
    total = policy_loss - config.entropy_coef * mean_entropy
    if critic is not None:
        total += config.value_coef * value_loss
    return total, PolicyInfo(total, policy_loss, value_loss, mean_entropy, None)


def gradients(config, policy, critic, params, batch, a2c):
    """(PolicyInfo with ‖g‖, [∇_θ L, ∇_φ L]) with no step taken."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(params)
        total, info = loss(config, policy, critic, params, batch, a2c)
    grads = tape.gradient(total, params)
    return info._replace(grad_norm=optim.global_norm(grads)), grads


def update(config, policy, critic, optimizer, params, optimizer_state, batch, a2c):
    """One step: ∇_{θ,φ} L → global-norm clip → optimizer. Returns (params', optimizer state', PolicyInfo)."""
    info, grads = gradients(config, policy, critic, params, batch, a2c)
    grads, grad_norm = optim.clip_by_global_norm(grads, config.max_grad_norm)
    params, optimizer_state = optimizer.update(grads, params, optimizer_state)
    return params, optimizer_state, info._replace(grad_norm=grad_norm)
