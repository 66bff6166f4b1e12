"""Policy-gradient agents: REINFORCE (Williams 1992) and A2C (Mnih et al. 2016, synchronous).

The policy network π(·|s; θ) and the state value V(s; φ) (A2C's critic, REINFORCE's optional
baseline) in variables, the rollout buffer on the device, and compiled kernels that call the
pure functions of rawdqn/algorithms/policy_gradient.py (act, update; the equations are there).

Each environment writes its steps into its own row of a buffer on the device: REINFORCE's
holds (E + 1) × max_episode_steps slots, the E finished episodes an update needs and the one
in progress; an update takes every finished episode and moves what follows the last one to the
front of its row. A2C's holds n slots, all of which each update takes. A truncated episode's
return bootstraps from V of its true final observation (0 for REINFORCE without a baseline);
a terminated one's from nothing. The store, the update when due and the next action are one
compiled call per environment step, as for DQN.

A2C is the synchronous form of Mnih et al.'s A3C: there, each of many actor-learner threads
computes this gradient on its own n-step rollout and applies it to shared parameters without
waiting (asynchronously); A2C steps the N envs in lockstep and applies one gradient for all of
them, which uses a GPU or XLA better and is as good in practice (Wu et al. 2017, OpenAI Baselines).
"""
import tensorflow as tf

from rawdqn.algorithms import policy_gradient
from rawdqn.algorithms.policy_gradient import PolicyInfo
from rawdqn.engine.kernel import compile_kernel
from rawdqn.engine.rollout import Episodes, RolloutAgent
from rawdqn.network import PolicyNetwork, ValueNetwork


class PolicyGradientAgent(RolloutAgent, tf.Module):
    """The policy network (and V), its optimizer, the rollout buffer and compiled kernels:
    REINFORCE or A2C as config.algo says.

    `episode_steps` (REINFORCE) is the longest episode the buffer must hold (config.max_episode_steps,
    else the env's time limit). Observations as for DQN: vectors, or state indices one-hot encoded.
    """

    def __init__(self, obs_dim, num_actions, config, episode_steps=None, seed=0, discrete_obs=False,
                 legal_actions=False, device=None, num_envs=1, use_bias=True, obs_bounds=None, name=None):
        super().__init__(name=name)
        self.set_spaces(obs_dim, num_actions, config, seed, discrete_obs, legal_actions, device, num_envs)
        self.a2c = self.config.algo == "a2c"
        if self.a2c:
            capacity = int(config.rollout_steps)   # slots per env
        elif episode_steps is None:
            raise ValueError("REINFORCE needs episode_steps, the longest episode its buffer must hold")
        else:
            capacity = (int(config.episodes_per_update) + 1) * int(episode_steps)
        with tf.device(device):
            self.policy = PolicyNetwork(self.obs_dim, self.num_actions, config.hidden, seed=self.seed, dtype=self.dtype,
                                        use_bias=use_bias, obs_bounds=obs_bounds, name="policy")
            self.critic = (ValueNetwork(self.obs_dim, 1, config.hidden, seed=self.seed + 1, dtype=self.dtype,
                                        use_bias=use_bias, obs_bounds=obs_bounds, name="critic")
                           if config.baseline or self.a2c else None)
            self.build_optimizer()
            self.build_rollout(capacity, config)
            self.build_watch(PolicyInfo, len(self.watched_labels))
        mode = self.config.mode
        self._act = compile_kernel(self.act_fn, mode)
        self._begin = compile_kernel(self.begin_fn, mode)
        self._step = compile_kernel(self.step_fn, mode)
        self._collect = compile_kernel(self.collect_fn, mode)
        self._gradients = compile_kernel(self.gradients_fn, mode)
        self._logits = compile_kernel(self.logits_fn, mode)

    @property
    def trained_variables(self):
        """θ, then φ with a baseline: what the optimizer steps."""
        return [self.policy.theta] + ([self.critic.theta] if self.critic is not None else [])

    @property
    def networks_restored_by_keep_best(self):
        """What keep_best puts the best weights back into."""
        return (self.policy,)

    # The diverged_info entries, in order (rawdqn/train.py's check_finite names them).
    watched_labels = ("loss", "policy entropy", "gradient norm")

    @staticmethod
    def watched_values(info):
        return tf.stack([info.loss, info.entropy, info.grad_norm])

    @property
    def online(self):
        """The network evaluation, export and keep_best read: the policy's logits (argmax: the greedy action)."""
        return self.policy

    # --- act ----------------------------------------------------------------
    def act_fn(self, obs, legal_mask=None):
        """a ~ π(·|s) by Gumbel-max on uniforms from a stateless RNG keyed by (seed, draws so far)."""
        key = tf.stack([self.seed + 104_729, self.act_draws])
        self.act_draws.assign_add(1)
        return policy_gradient.act(self.policy, self.policy.theta.read_value(), self.features(obs), key, legal_mask)

    def logits(self, obs):
        """The policy's logits for a batch of observations."""
        return self._call_on_device(self._logits, self._obs_tensor(obs))

    # The name evaluation reads, as for a DQN: the argmax of the logits, the most probable
    # action, is the greedy policy's, as the argmax of a DQN's Q-values is.
    q_values = logits

    def logits_fn(self, obs):
        return self.policy(self.features(obs))

    q_values_fn = logits_fn   # what the greedy evaluations of the on-device loop call

    # --- learn --------------------------------------------------------------
    @property
    def learns_on_full_rows(self):
        """A2C's rollouts (RolloutAgent's rows_full_fn, every slot); REINFORCE's updates follow episode ends."""
        return self.a2c

    def due_fn(self):
        """A2C: the rollout's rows are full; REINFORCE: E episodes have finished."""
        if self.learns_on_full_rows:
            return self.rows_full_fn()
        return self.episodes_waiting >= self.config.episodes_per_update

    def used_slots_fn(self):
        """A2C: every slot; REINFORCE: row n's slots up to and including its last finished episode's end."""
        if self.learns_on_full_rows:
            return super().used_slots_fn()
        slots = tf.range(self.capacity)[None, :]
        written = slots < self.length[:, None]
        ended = self.buffer.ended.read_value() > 0
        return tf.reduce_max(tf.where(ended & written, slots + 1, 0), axis=1)

    def learn_fn(self, batch):
        """policy_gradient.update on a batch: (θ, φ) and the optimizer's state read from their
        variables, the new ones written back; returns PolicyInfo."""
        params, state, info = policy_gradient.update(
            self.config, self.policy, self.critic, self.optimizer, self.read_params(), self.optimizer.read_state(),
            self.network_inputs(batch), self.a2c)
        for variable, value in zip(self.trained_variables, params):
            variable.assign(value)
        self.optimizer.write_state(state)
        return info

    def gradients(self, batch):
        """(PolicyInfo, [∇_θ L, ∇_φ L]) for an explicit Episodes batch, with no step taken."""
        batch = Episodes(*(None if value is None else tf.convert_to_tensor(value) for value in batch))
        return self._call_on_device(self._gradients, batch)

    def gradients_fn(self, batch):
        return policy_gradient.gradients(self.config, self.policy, self.critic, self.read_params(),
                                         self.network_inputs(batch), self.a2c)
