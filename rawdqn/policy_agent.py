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
import collections

import tensorflow as tf

from rawdqn import optim, schedule
from rawdqn.algorithms import policy_gradient
from rawdqn.algorithms.policy_gradient import PolicyInfo
from rawdqn.engine.shell import AgentShell
from rawdqn.engine.kernel import compile_kernel
from rawdqn.network import PolicyNetwork, ValueNetwork

# What an update learns from, time-major [T, N] (step t of column n), as the buffer holds it:
# obs [T, N, ...], action, reward, terminated, ended, next_obs (the true one after step t),
# legal_mask [T, N, A] or None, valid (the slot holds a step of a finished episode),
# step (t within its episode), episodes (how many finished episodes the batch holds).
Episodes = collections.namedtuple(
    "Episodes", "obs action reward terminated ended next_obs legal_mask valid step episodes")



def time_major(rows):
    """[N, T, ...] (a row per env) → [T, N, ...]."""
    rows = tf.convert_to_tensor(rows)
    return tf.transpose(rows, [1, 0] + list(range(2, rows.shape.rank)))


class PolicyGradientAgent(AgentShell, tf.Module):
    """The policy network (and V), its optimizer, the rollout buffer and compiled kernels:
    REINFORCE or A2C as config.algo says.

    `episode_steps` (REINFORCE) is the longest episode the buffer must hold (config.max_episode_steps,
    else the env's time limit). Observations as for DQN: vectors, or state indices one-hot encoded.
    """

    def __init__(self, obs_dim, num_actions, config, episode_steps=None, seed=0, discrete_obs=False,
                 legal_actions=False, device=None, num_envs=1, use_bias=True, obs_bounds=None, name=None):
        super().__init__(name=name)
        self.config = config.validate()
        self.obs_dim, self.num_actions, self.num_envs = int(obs_dim), int(num_actions), int(num_envs)
        self.seed, self.discrete_obs, self.legal_actions = int(seed), bool(discrete_obs), bool(legal_actions)
        self.device = device
        self.dtype = tf.float64 if self.config.dtype == "float64" else tf.float32
        self.a2c = self.config.algo == "a2c"
        if self.a2c:
            self.capacity = int(config.rollout_steps)   # slots per env
        elif episode_steps is None:
            raise ValueError("REINFORCE needs episode_steps, the longest episode its buffer must hold")
        else:
            self.capacity = (int(config.episodes_per_update) + 1) * int(episode_steps)
        obs_shape = () if self.discrete_obs else (self.obs_dim,)
        obs_dtype = tf.int32 if self.discrete_obs else self.dtype
        rows = [self.num_envs, self.capacity]
        with tf.device(device):
            self.policy = PolicyNetwork(self.obs_dim, self.num_actions, config.hidden, seed=self.seed, dtype=self.dtype,
                                        use_bias=use_bias, obs_bounds=obs_bounds, name="policy")
            self.critic = (ValueNetwork(self.obs_dim, 1, config.hidden, seed=self.seed + 1, dtype=self.dtype,
                                        use_bias=use_bias, obs_bounds=obs_bounds, name="critic")
                           if config.baseline or self.a2c else None)
            epsilon = {} if config.optimizer_epsilon is None else {"epsilon": config.optimizer_epsilon}
            self.optimizer = optim.make_optimizer(config.optimizer, config.learning_rate, **epsilon)
            self.optimizer.build(self.trained_variables)
            self.schedule = schedule.Schedule(config, name="schedule")   # steps and updates done
            self.act_draws = tf.Variable(0, dtype=tf.int32, trainable=False, name="act_draws")
            self.current_obs = tf.Variable(tf.zeros([self.num_envs, *obs_shape], obs_dtype), trainable=False,
                                           name="current_obs")
            self.current_legal = tf.Variable(tf.ones([self.num_envs, self.num_actions], tf.bool), trainable=False,
                                             name="current_legal")
            self.last_action = tf.Variable(tf.zeros([self.num_envs], tf.int32), trainable=False, name="last_action")
            self.buffer = Episodes(
                tf.Variable(tf.zeros(rows + list(obs_shape), obs_dtype), trainable=False, name="obs"),
                tf.Variable(tf.zeros(rows, tf.int32), trainable=False, name="action"),
                tf.Variable(tf.zeros(rows, self.dtype), trainable=False, name="reward"),
                tf.Variable(tf.zeros(rows, self.dtype), trainable=False, name="terminated"),
                tf.Variable(tf.zeros(rows, self.dtype), trainable=False, name="ended"),
                tf.Variable(tf.zeros(rows + list(obs_shape), obs_dtype), trainable=False, name="next_obs"),
                tf.Variable(tf.ones(rows + [self.num_actions], tf.bool), trainable=False, name="legal_mask")
                if self.legal_actions else None,
                None,
                tf.Variable(tf.zeros(rows, tf.int32), trainable=False, name="step"),
                None)
            self.length = tf.Variable(tf.zeros([self.num_envs], tf.int32), trainable=False, name="length")
            self.episode_step = tf.Variable(tf.zeros([self.num_envs], tf.int32), trainable=False, name="episode_step")
            self.episodes_waiting = tf.Variable(0, dtype=tf.int64, trainable=False, name="episodes_waiting")
            self.last_info = PolicyInfo(*(tf.Variable(tf.constant(float("nan"), self.dtype), trainable=False,
                                                      name=f"last_{field}") for field in PolicyInfo._fields))
            self.diverged_at = tf.Variable(-1, dtype=tf.int64, trainable=False, name="diverged_at")
            self.diverged_info = tf.Variable(tf.zeros([3], self.dtype), trainable=False, name="diverged_info")
        mode = self.config.mode
        self._act = compile_kernel(self.act_fn, mode)
        self._begin = compile_kernel(self.begin_fn, mode)
        self._step = compile_kernel(self.step_fn, mode)
        self._gradients = compile_kernel(self.gradients_fn, mode)
        self._logits = compile_kernel(self.logits_fn, mode)

    @property
    def inputs_carry_ended(self):
        return True   # an episode's end, terminated or truncated, is where its return stops

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
    def act(self, obs, legal_mask=None):
        """Actions drawn from π(·|s) [batch] (int32) for observations [batch, ...]."""
        return self._call_on_device(self._act, self._obs_tensor(obs), self._mask_tensor(legal_mask))

    def act_fn(self, obs, legal_mask=None):
        """a ~ π(·|s) by Gumbel-max on uniforms from a stateless RNG keyed by (seed, draws so far)."""
        key = tf.stack([tf.constant(self.seed + 104_729, tf.int32), self.act_draws])
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

    def first_observations(self, count):
        return None   # no replay to draw a validation set from: the average max Q is DQN's

    def sync_target(self, tau=1.0):
        """No target network: nothing to sync."""

    # --- one environment step ------------------------------------------------
    def begin(self, obs, legal_mask=None):
        """The first actions [num_envs] of a run, for observations [num_envs, ...]."""
        return self._call_on_device(self._begin, self._obs_tensor(obs), self._mask_tensor(legal_mask))

    def begin_fn(self, obs, legal_mask=None):
        return self.act_on_fn(obs, legal_mask)

    def act_on_fn(self, obs, legal_mask=None):
        action = self.act_fn(obs, legal_mask)
        self.current_obs.assign(obs)
        if legal_mask is not None:
            self.current_legal.assign(legal_mask)
        self.last_action.assign(action)
        return action

    def step(self, next_obs, reward, terminated, obs, next_legal_mask=None, legal_mask=None, ended=None):
        """One compiled call per environment step (DQN.step's inputs): store, update if E
        episodes have finished, act on `obs`."""
        packed = self.pack(next_obs, reward, terminated, obs, next_legal_mask, legal_mask, ended)
        return self._call_on_device(self._step, tf.constant(packed))

    def observe_fn(self, next_obs, reward, terminated, obs, next_legal_mask=None, legal_mask=None, ended=None):
        """buffer ← (s, a, r, terminated, ended, s'); step += N; the update if E episodes are
        waiting; a' ~ π(·|obs). (DQN.observe_fn's inputs; next_legal_mask is not needed.)"""
        ended = terminated if ended is None else ended
        slot = tf.stack([tf.range(self.num_envs), self.length], axis=1)
        writes = {"obs": self.current_obs.read_value(), "action": self.last_action.read_value(),
                  "reward": reward, "terminated": terminated, "ended": ended, "next_obs": next_obs,
                  "step": self.episode_step.read_value()}
        if self.legal_actions:
            writes["legal_mask"] = self.current_legal.read_value()
        for field, value in writes.items():
            variable = getattr(self.buffer, field)
            variable.scatter_nd_update(slot, tf.cast(value, variable.dtype))
        ended_now = tf.cast(ended, tf.bool)
        self.length.assign_add(tf.ones_like(self.length))
        self.episode_step.assign(tf.where(ended_now, tf.zeros_like(self.episode_step), self.episode_step + 1))
        self.episodes_waiting.assign_add(tf.reduce_sum(tf.cast(ended_now, tf.int64)))
        self.schedule.step.assign_add(self.num_envs)
        # A2C: its envs step together, so every row fills at once.
        due = self.length[0] >= self.capacity if self.a2c else self.episodes_waiting >= self.config.episodes_per_update
        tf.cond(due, self.learn_from_buffer_fn, lambda: tf.constant(False))
        return self.act_on_fn(obs, legal_mask)

    # --- learn --------------------------------------------------------------
    def learn_from_buffer_fn(self):
        """One update on the buffer's rollout (A2C: all of it) or finished episodes (REINFORCE),
        then each row's episode in progress moved to its front."""
        slots = tf.range(self.capacity)[None, :]
        if self.a2c:
            used = self.length.read_value()
        else:   # used[n]: the slots of row n up to and including its last finished episode's end
            written = slots < self.length[:, None]
            ended = self.buffer.ended.read_value() > 0
            used = tf.reduce_max(tf.where(ended & written, slots + 1, 0), axis=1)
        valid = slots < used[:, None]
        rows = self.buffer._replace(valid=valid)
        batch = Episodes(*(None if variable is None else time_major(variable) for variable in rows[:-1]),
                         self.episodes_waiting.read_value())
        info = self.learn_fn(batch)
        source = tf.minimum(slots + used[:, None], self.capacity - 1)   # row n's slot k ← its slot k + used[n]
        for variable in self.buffer:
            if isinstance(variable, tf.Variable):
                variable.assign(tf.gather(variable.read_value(), source, axis=1, batch_dims=1))
        self.length.assign_sub(used)
        self.episodes_waiting.assign(tf.zeros_like(self.episodes_waiting))
        self.schedule.updates_done.assign_add(1)
        self.keep_info_fn(info, tf.constant(True))
        return tf.constant(True)

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

    def read_params(self):
        return [variable.read_value() for variable in self.trained_variables]

    def network_inputs(self, batch):
        return batch._replace(obs=self.features(batch.obs), next_obs=self.features(batch.next_obs))

    def gradients(self, batch):
        """(PolicyInfo, [∇_θ L, ∇_φ L]) for an explicit Episodes batch, with no step taken."""
        batch = Episodes(*(None if value is None else tf.convert_to_tensor(value) for value in batch))
        return self._call_on_device(self._gradients, batch)

    def gradients_fn(self, batch):
        return policy_gradient.gradients(self.config, self.policy, self.critic, self.read_params(),
                                         self.network_inputs(batch), self.a2c)
