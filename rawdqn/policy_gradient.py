"""The pieces of a policy-gradient agent (REINFORCE, A2C): pure functions of tensors.

A rollout is time-major: rewards, terminated and ended of shape [T, N] (T steps of N
environments, step t of env n at [t, n]), `ended` = terminated or truncated. As in
rawdqn/bellman.py, `terminated` means the MDP ended, so nothing follows it; a truncated
episode (a time limit) goes on in the MDP, so its return bootstraps from the value of its
true final observation; and no return ever runs from one episode into the next. The last
step of a rollout is cut like a truncation: what follows it is bootstrapped, with
`next_values` V(s_{t+1}) (zeros for REINFORCE without a critic).

The categorical policy π(a|s) = softmax(logits(s))_a over the legal actions only: an
illegal action has probability 0, log-probability −∞, and adds nothing to the entropy.
The losses built from these are in rawdqn/losses.py; NumPy twins in rawdqn/reference.py.
"""
import tensorflow as tf

from rawdqn.bellman import cast, check_rank


def _rollout(rewards, terminated, ended, *values):
    rewards = tf.convert_to_tensor(rewards)
    dtype = rewards.dtype if rewards.dtype.is_floating else tf.float32
    tensors = [tf.cast(rewards, dtype), cast(terminated, dtype), cast(ended, dtype)] + [cast(v, dtype) for v in values]
    for tensor, name in zip(tensors, ("rewards", "terminated", "ended", "values", "next_values")):
        check_rank(tensor, 2, name)
    return tensors


def cut_after(ended):
    """1 where a step's return stops following the rollout: its episode ended there, or the
    rollout does ([T, N], the last row all ones)."""
    return tf.concat([ended[:-1], tf.ones_like(ended[-1:])], axis=0)


def discounted_returns(rewards, terminated, ended, discount, next_values):
    """Returns-to-go, computed backwards from the rollout's end:

        G_t = r_t + γ (1 − terminated_t) · { V(s_{t+1})  where the return is cut after t
                                            { G_{t+1}     otherwise

    cut after t: the episode ended there (terminated: the factor is 0 anyway; truncated:
    bootstrap from the true final observation), or t is the rollout's last step. Over
    whole episodes with next_values 0 this is REINFORCE's G_t = Σ_{k≥t} γ^{k−t} r_k; with a
    critic and T steps, A2C's bootstrapped n-step return. All inputs [T, N]; returns [T, N].
    """
    rewards, terminated, ended, next_values = _rollout(rewards, terminated, ended, next_values)
    discount = cast(discount, rewards.dtype)
    cut = cut_after(ended)

    def back(following, step):
        reward, terminated_t, cut_t, next_value = step
        return reward + discount * (1.0 - terminated_t) * (cut_t * next_value + (1.0 - cut_t) * following)
    return tf.scan(back, (rewards, terminated, cut, next_values), initializer=tf.zeros_like(rewards[0]),
                   reverse=True)


def generalized_advantages(rewards, terminated, ended, values, next_values, discount, lam):
    """GAE(λ) (Schulman et al. 2016), computed backwards from the rollout's end:

        δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t)
        A_t = δ_t + γλ (1 − cut_t) A_{t+1}          (cut as in discounted_returns)

    λ = 1 gives A_t = G_t − V(s_t) with G_t the discounted_returns; λ = 0 the one-step TD
    error. The critic's target is A_t + V(s_t). values V(s_t) and next_values V(s_{t+1})
    (at a truncation, of the true final observation) [T, N]; returns [T, N].
    """
    rewards, terminated, ended, values, next_values = _rollout(rewards, terminated, ended, values, next_values)
    discount, lam = cast(discount, rewards.dtype), cast(lam, rewards.dtype)
    td_errors = rewards + discount * (1.0 - terminated) * next_values - values

    def back(following, step):
        td_error, cut_t = step
        return td_error + discount * lam * (1.0 - cut_t) * following
    return tf.scan(back, (td_errors, cut_after(ended)), initializer=tf.zeros_like(rewards[0]), reverse=True)


def log_policy(logits, legal_mask=None):
    """log π(·|s) = logits − log Σ_{a legal} exp(logits_a), and −∞ at illegal actions; [..., A]."""
    logits = tf.convert_to_tensor(logits)
    if legal_mask is None:
        return tf.nn.log_softmax(logits, axis=-1)
    legal = tf.cast(legal_mask, tf.bool)
    lowest = tf.fill(tf.shape(logits), tf.constant(logits.dtype.min, logits.dtype))
    log_probs = tf.nn.log_softmax(tf.where(legal, logits, lowest), axis=-1)
    return tf.where(legal, log_probs, tf.fill(tf.shape(logits), tf.constant(-float("inf"), logits.dtype)))


def log_probability(logits, actions, legal_mask=None):
    """log π(a|s) of the actions taken: logits [B, A], actions [B] → [B]."""
    return tf.gather(log_policy(logits, legal_mask), tf.cast(actions, tf.int32), axis=-1, batch_dims=1)


def entropy(logits, legal_mask=None):
    """H(π(·|s)) = −Σ_{a legal} π(a|s) log π(a|s): logits [B, A] → [B]."""
    log_probs = log_policy(logits, legal_mask)
    finite = tf.math.is_finite(log_probs)
    return -tf.reduce_sum(tf.where(finite, tf.exp(log_probs) * log_probs, tf.zeros_like(log_probs)), axis=-1)


def sample_actions(logits, uniforms, legal_mask=None):
    """a ~ π(·|s) by the Gumbel-max trick: argmax_a (log π(a|s) − log(−log u_a)), u ~ U(0, 1)
    i.i.d. [B, A]; illegal actions are never drawn. Returns int32 [B]."""
    gumbel = -tf.math.log(-tf.math.log(tf.cast(uniforms, logits.dtype)))
    return tf.argmax(log_policy(logits, legal_mask) + gumbel, axis=-1, output_type=tf.int32)
