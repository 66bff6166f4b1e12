"""What the stateful agents share around the pure functions of rawdqn/algorithms/.

An agent stepped by the host (a gymnasium or envpool loop) makes one compiled call per
environment step. Its inputs cross into the program as one tensor, one row per environment
laid out by `step_layout` (each tensor made on the host and passed to a call costs far more
than the bytes it holds), and the host picks between two programs from the schedule's closed
forms: `step` (store, the updates and syncs due, act) or, where nothing is due, `collect` (store,
act), which touches a fraction of the variables and so dispatches faster. Both are the agent's
one `observe_fn`, with `learn` on or off.

Needs of the agent: obs_dim, num_actions, num_envs, discrete_obs, legal_actions, dtype, device,
inputs_carry_ended, schedule, observe_fn, _step and _collect (compiled step_fn and collect_fn;
with host_syncs, _sync_owed),
last_info, diverged_at, diverged_info and watched_values(info).
"""
import functools

import numpy as np
import tensorflow as tf

from rawdqn import schedule
from rawdqn.replay import RowLayout


class AgentShell:
    """Observations into network input, packed step inputs, the program each step runs, and the
    divergence watch (the module docstring)."""

    host_step = None   # the host's copy of schedule.step (None: read it from the device)
    host_syncs = False   # True: `step` leaves the target syncs to the `sync_owed` program, called when due

    # --- observations ---------------------------------------------------------
    def features(self, obs):
        """Network input: the observation, or one_hot(state) for discrete observations."""
        if self.discrete_obs:
            return tf.one_hot(tf.cast(obs, tf.int32), self.obs_dim, dtype=self.dtype)
        return tf.cast(obs, self.dtype)

    def clip_reward_fn(self, reward):
        """r, or clip(r, −c, c) with c = config.reward_clip: what the loss sees (returns are counted unclipped)."""
        clip = self.config.reward_clip
        return reward if clip is None else tf.clip_by_value(reward, -clip, clip)

    def acting_obs_fn(self, previous, obs, ended):
        """What the agent acts on after observing `obs`: obs itself (a pixel agent: its stack of frames)."""
        return obs

    def _obs_tensor(self, obs):
        if self.discrete_obs:
            return tf.convert_to_tensor(obs, tf.int32)
        return tf.convert_to_tensor(obs, self.dtype)

    def _mask_tensor(self, legal_mask):
        return None if legal_mask is None else tf.convert_to_tensor(legal_mask, tf.bool)

    def _call_on_device(self, kernel, *args):
        with tf.device(self.device):
            return kernel(*args)

    # --- one host step: packed inputs, and the program that runs them ------------
    @functools.cached_property
    def step_layout(self):
        """A step's inputs per env, in the agent's dtype: [s' | r | terminated | s | legal' | legal | ended].
        A discrete state is its index (exact: obs_dim ≤ 2²⁴); masks are 0/1 and there only for an
        agent with legal_actions; `ended` only where inputs_carry_ended."""
        width = 1 if self.discrete_obs else self.obs_dim
        masks = self.num_actions if self.legal_actions else 0
        return RowLayout([("next_obs", width), ("reward", 1), ("terminated", 1), ("obs", width),
                          ("next_legal_mask", masks), ("legal_mask", masks), ("ended", int(self.inputs_carry_ended))])

    def pack(self, next_obs, reward, terminated, obs, next_legal_mask=None, legal_mask=None, ended=None):
        """The step's inputs as one NumPy array [num_envs, step_layout.width] (`ended` defaults to `terminated`)."""
        layout = self.step_layout
        values = dict(next_obs=next_obs, reward=reward, terminated=terminated, obs=obs, next_legal_mask=next_legal_mask,
                      legal_mask=legal_mask, ended=terminated if ended is None else ended)
        rows = np.empty((self.num_envs, layout.width), self.dtype.as_numpy_dtype)
        for name, width in layout.fields:
            rows[:, layout.slices[name]] = np.reshape(values[name], (self.num_envs, width))
        return rows

    def unpack_fn(self, packed):
        """`pack`'s columns back as (next_obs, reward, terminated, obs, next_legal_mask, legal_mask, ended)."""
        layout = self.step_layout
        next_obs, obs = layout.columns(packed, "next_obs"), layout.columns(packed, "obs")
        if self.discrete_obs:
            next_obs, obs = tf.cast(next_obs[:, 0], tf.int32), tf.cast(obs[:, 0], tf.int32)
        masks = (None, None)
        if self.legal_actions:
            masks = (layout.columns(packed, "next_legal_mask") > 0, layout.columns(packed, "legal_mask") > 0)
        ended = layout.column(packed, "ended") if self.inputs_carry_ended else None
        return (next_obs, layout.column(packed, "reward"), layout.column(packed, "terminated"), obs, *masks, ended)

    def observe(self, env_step):
        """`step` for a gym_env.EnvStep: the loop's one compiled call per environment step."""
        return self.step(env_step.next_obs, env_step.reward, env_step.no_bootstrap, env_step.obs,
                         env_step.next_legal, env_step.legal, env_step.ended)

    def run_step_program(self, *inputs):
        """step_fn(*inputs), or collect_fn where the schedule owes nothing at this step
        (schedule.nothing_due, the closed forms the device's counters follow)."""
        if self.host_step is None:
            self.host_step = int(self.schedule.step.numpy())
        before, self.host_step = self.host_step, self.host_step + self.num_envs
        idle = self.nothing_due(before, self.host_step)
        action = self._call_on_device(self._collect if idle else self._step, *inputs)
        if self.host_syncs and schedule.syncs_owed(self.config, self.host_step) > schedule.syncs_owed(self.config, before):
            self._call_on_device(self._sync_owed)
        return action

    def forget_host_counters(self):
        """The device's counters were restored: the host's copies are read from them again."""
        self.host_step = None

    def nothing_due(self, steps_before, steps_after):
        """Whether the env step from steps_before to steps_after owes no update and no sync."""
        return schedule.nothing_due(self.config, steps_before, steps_after)

    def step_fn(self, *inputs):
        """One host-stepped environment step: observe_fn of the unpacked inputs."""
        return self.observe_fn(*self.unpack_fn(*inputs))

    def collect_fn(self, *inputs):
        """step_fn where no update or sync is due: store and act."""
        return self.observe_fn(*self.unpack_fn(*inputs), learn=False)

    @property
    def shared_counters(self):
        """The counters every seed of a run holds alike, carried once when the seeds run as one
        batch (engine/seed_axis.py): the schedule's and the acting RNG's draws."""
        return [self.schedule.step, self.schedule.updates_done, self.schedule.syncs_done, self.act_draws]

    # --- the divergence watch ------------------------------------------------------
    def keep_info_fn(self, info, updated):
        """last_info ← info; if `updated` (an update was made) and a watched value is not finite,
        and none was before: diverged_at ← this step, diverged_info ← the watched values (the
        loop reads them and stops: rawdqn/train.py's check_finite)."""
        for variable, value in zip(self.last_info, info):
            variable.assign(value)
        watched = self.watched_values(info)
        newly = (self.diverged_at < 0) & updated & tf.logical_not(tf.reduce_all(tf.math.is_finite(watched)))
        self.diverged_at.assign(tf.where(newly, self.schedule.step, self.diverged_at))
        self.diverged_info.assign(tf.where(newly, watched, self.diverged_info))
