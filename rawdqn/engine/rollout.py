"""The rollout buffer on the device, for the agents that learn from what their N envs just did:
REINFORCE and A2C (rawdqn/policy_agent.py) and PQN (rawdqn/pqn_agent.py).

Each environment writes its steps into its own row of a buffer on the device. An agent says
how many slots a row holds, when an update is due (`due_fn`) and how much of each row it takes
(`used_slots_fn`); what follows the slots taken moves to the front of its row. The store, the
update when due and the next action are one compiled call per environment step, as for DQN.

Needs of the agent, beyond AgentShell's: act_fn(obs, legal_mask), learn_fn(batch) → info and
trained_variables; its __init__ calls set_spaces, makes its networks, then build_optimizer,
build_rollout and build_watch.
"""
import collections

import tensorflow as tf

from rawdqn import control, optim, schedule
from rawdqn.engine.shell import AgentShell

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


class RolloutAgent(AgentShell):
    """The buffer, its counters and the one step program of an agent that learns from rollouts
    (the module docstring). Subclasses are tf.Modules that call `build_rollout` in __init__."""

    def set_spaces(self, obs_dim, num_actions, config, seed, discrete_obs, legal_actions, device, num_envs):
        """The agent's sizes, config (validated), seed, device and dtype."""
        self.config = config.validate()
        self.obs_dim, self.num_actions, self.num_envs = int(obs_dim), int(num_actions), int(num_envs)
        self.seed, self.discrete_obs, self.legal_actions = int(seed), bool(discrete_obs), bool(legal_actions)
        self.device = device
        self.dtype = tf.float64 if self.config.dtype == "float64" else tf.float32

    @property
    def shared_counters(self):
        """AgentShell's, and the rollout's length (every seed's envs step together)."""
        return super().shared_counters + [self.length]

    def build_optimizer(self):
        """config.optimizer over trained_variables, its slots made (call under the agent's device)."""
        config = self.config
        epsilon = {} if config.optimizer_epsilon is None else {"epsilon": config.optimizer_epsilon}
        self.optimizer = optim.make_optimizer(config.optimizer, config.learning_rate, **epsilon)
        self.optimizer.build(self.trained_variables)

    @property
    def inputs_carry_ended(self):
        return True   # an episode's end, terminated or truncated, is where its return stops

    def build_rollout(self, capacity, config, obs_shape=None, obs_dtype=None):
        """The schedule, the acting state and the buffer of `capacity` slots per env, as
        variables (call under the agent's device). Observations are what the agent acts on:
        state indices, vectors of obs_dim, or `obs_shape` of `obs_dtype` (a pixel agent's stacks)."""
        self.capacity = int(capacity)
        if obs_shape is None:
            obs_shape = () if self.discrete_obs else (self.obs_dim,)
            obs_dtype = tf.int32 if self.discrete_obs else self.dtype
        obs_shape = tuple(obs_shape)
        rows = [self.num_envs, self.capacity]
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

    def build_watch(self, info_type, watched):
        """last_info (an `info_type` of variables, NaN until the first update) and the divergence
        watch over `watched` values (call under the agent's device, after build_rollout)."""
        self.last_info = info_type(*(tf.Variable(tf.constant(float("nan"), self.dtype), trainable=False,
                                                 name=f"last_{field}") for field in info_type._fields))
        self.diverged_at = tf.Variable(-1, dtype=tf.int64, trainable=False, name="diverged_at")
        self.diverged_info = tf.Variable(tf.zeros([watched], self.dtype), trainable=False, name="diverged_info")

    def sync_target(self, tau=1.0):
        """No target network: nothing to sync."""

    def first_observations(self, count):
        return None   # no replay to draw a validation set from: the average max Q is DQN's

    # --- act ----------------------------------------------------------------
    def act(self, obs, legal_mask=None):
        """The behaviour policy's actions [batch] (int32) for observations [batch, ...]."""
        return self._call_on_device(self._act, self._obs_tensor(obs), self._mask_tensor(legal_mask))

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
        """One compiled call per environment step (DQN.step's inputs): store, update if due, act on `obs`."""
        packed = self.pack(next_obs, reward, terminated, obs, next_legal_mask, legal_mask, ended)
        return self.run_step_program(tf.constant(packed))

    # The iteration (env steps / N) at which the rows were last emptied, read from the device
    # at the first step program (None: not yet, or the counters were restored since).
    host_emptied = None

    def nothing_due(self, steps_before, steps_after):
        """Whether the env step to steps_after leaves the rows short of full, so no update is due:
        where rows_full_fn decides, the rows fill every `capacity` iterations after they were last
        emptied (each update takes them whole); any other due_fn is the device's to decide."""
        if not self.learns_on_full_rows:
            return False
        if self.host_emptied is None:
            self.host_emptied = steps_before // self.num_envs - int(self.length.numpy()[0])
        return (steps_after // self.num_envs - self.host_emptied) % self.capacity != 0

    learns_on_full_rows = True   # due_fn is rows_full_fn and used_slots_fn every slot

    def forget_host_counters(self):
        super().forget_host_counters()
        self.host_emptied = None

    def observe_fn(self, next_obs, reward, terminated, obs, next_legal_mask=None, legal_mask=None, ended=None,
                   learn=True):
        """buffer ← (s, a, r, terminated, ended, s'); step += N; the update if due; a' from the
        behaviour policy on obs. (DQN.observe_fn's inputs; next_legal_mask is not needed.)
        `learn` off: the caller knows no update is due (a smaller program)."""
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
        if learn:
            control.cond(self.due_fn(), self.learn_from_buffer_fn, lambda: tf.constant(False))
        return self.act_on_fn(obs, legal_mask)

    def rows_full_fn(self):
        """Every row is full (the envs step together, so all rows fill at once): a rollout's update is due."""
        return self.length[0] >= self.capacity

    due_fn = rows_full_fn

    def used_slots_fn(self):
        """[N]: the slots of each row an update takes (all that are written)."""
        return self.length.read_value()

    # --- learn --------------------------------------------------------------
    def learn_from_buffer_fn(self):
        """One update on the slots `used_slots_fn` says, then what follows them moved to the front of each row."""
        slots = tf.range(self.capacity)[None, :]
        used = self.used_slots_fn()
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

    def read_params(self):
        return [variable.read_value() for variable in self.trained_variables]

    def network_inputs(self, batch):
        return batch._replace(obs=self.features(batch.obs), next_obs=self.features(batch.next_obs))
