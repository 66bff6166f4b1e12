"""The DQN agent: the variables that hold θ, θ⁻, the optimizer's state, the replay and the
loop's counters, and compiled kernels that read them, call the pure functions of
rawdqn/algorithms/dqn.py (act, update, sync; the equations are there) and write the results
back.

Each kernel has a `*_fn` version with no host-side checks, for composing inside a larger
compiled program (several updates per call, one environment step, a whole on-device loop).
"""
import tensorflow as tf

from rawdqn import device as devices, optim, schedule
from rawdqn.algorithms import dqn
from rawdqn.algorithms.dqn import LearnInfo
from rawdqn.config import DQNConfig
from rawdqn.engine.shell import AgentShell
from rawdqn.engine.kernel import compile_kernel, xla_part
from rawdqn.network import QNetwork, dense_layer_shapes
from rawdqn.replay import ReplayBuffer, Transition, transition_layout
from rawdqn.sum_tree import SumTree


class DQN(AgentShell, tf.Module):
    """Online and target Q-networks, optimizer and replay, with compiled kernels.

    `discrete_obs=True` means observations are state indices in [0, obs_dim),
    one-hot encoded on the device (the replay stores the int32 index).
    `legal_actions=True` makes the replay store next-state legal-action masks
    and the target maximise over legal actions only.
    """
    host_syncs = True   # the host's `step` program leaves the target syncs to `sync_owed` (step_fn)

    def __init__(self, obs_dim, num_actions, config=None, seed=0, discrete_obs=False,
                 legal_actions=False, device=None, use_bias=True,
                 initializer="glorot_uniform", num_envs=1, obs_bounds=None, prebuilt_windows=False, name=None):
        super().__init__(name=name)
        self.config = (config or DQNConfig()).validate()
        self.obs_dim = int(obs_dim)
        self.num_actions = int(num_actions)
        self.seed = int(seed)
        self.discrete_obs = bool(discrete_obs)
        self.legal_actions = bool(legal_actions)
        self.num_envs = int(num_envs)
        self.device = device
        self.obs_bounds = obs_bounds   # scale_observations: (low, high) of the observations, for the networks
        # Ape-X's learner: its replay's rows are n-step windows the actors built, each with its γ^m.
        self.prebuilt_windows = bool(prebuilt_windows)
        self.dtype = tf.float64 if self.config.dtype == "float64" else tf.float32
        if self.discrete_obs and self.obs_dim > 2 ** 24:
            raise ValueError(f"{self.obs_dim:,} discrete states: a one-hot input wider than 2²⁴ is not supported")
        memory = self.memory_needed()
        advice = "lower --replay-capacity or --hidden" + (" (or use --dtype float32)" if self.dtype.size > 4 else "")
        devices.check_fits(memory, device, advice)
        try:
            self._allocate(device, use_bias, initializer)
        except tf.errors.ResourceExhaustedError:
            raise devices.allocation_failed(memory, device, advice) from None
        mode = self.config.mode
        if mode == "hybrid":
            # A graph cuts θ with tf.split (an XLA cluster cannot hand a graph a custom gradient),
            # and the replay's sample and the optimizer's step run as XLA clusters (kernel.xla_part).
            for network in (self.online, self.target):
                network.theta_split = "autodiff"
            self.optimizer.update = xla_part(self.optimizer.update, mode)
        self.sample_part = xla_part(self.replay.sample_fn, mode)
        self._act = compile_kernel(self.act_fn, mode)
        self._learn = compile_kernel(self.learn_fn, mode)
        self._train = compile_kernel(self.train_fn, mode)
        self._sync = compile_kernel(self.sync_fn, mode)
        self._sync_owed = compile_kernel(self.sync_owed_fn, mode)
        self._q_values = compile_kernel(self.q_values_fn, mode)
        self._begin = compile_kernel(self.begin_fn, mode)
        self._step = compile_kernel(self.step_fn, mode)
        self._collect = compile_kernel(self.collect_fn, mode)

    @property
    def inputs_carry_ended(self):
        """An n-step replay's windows stop where an episode ended: `step` passes `ended` in."""
        return self.config.n_step > 1

    @property
    def networks_restored_by_keep_best(self):
        """What keep_best puts the best weights back into: the target starts from them too."""
        return (self.online, self.target)

    # The diverged_info entries, in order (rawdqn/train.py's check_finite names them).
    watched_labels = ("loss", "mean max Q-value", "gradient norm")

    @staticmethod
    def watched_values(info):
        return tf.stack([info.loss, info.mean_max_q, info.grad_norm])

    def memory_needed(self):
        """Bytes this agent allocates: {"replay": …, "networks and optimizer": …}.

        replay = capacity · (2 · obs width + action + reward + terminated [+ legal mask] [+ ended]) · dtype bytes
        (one row per transition, rawdqn/replay.py), plus a prioritized replay's sum-tree of
        2 · 2^⌈log₂ capacity⌉ float64 nodes; parameters (online, target, one slot
        per optimizer state, the gradient, and the initializer's draw) =
        (4 + slots) · Σ_layers (fan_in + 1) · fan_out · dtype bytes.
        """
        config, width = self.config, self.dtype.size
        obs_width = 1 if self.discrete_obs else self.obs_dim
        row = transition_layout(obs_width, self.num_actions if self.legal_actions else None,
                                1 if self.prebuilt_windows else config.n_step, self.prebuilt_windows).width * width
        head = config.head_options()
        parameters = sum((fan_in + 1) * fan_out for _, fan_in, fan_out in
                         dense_layer_shapes(self.obs_dim, config.hidden, self.num_actions, head["dueling"], head["atoms"],
                                            head["embedding"]))
        parameters *= 2 if config.noisy else 1   # a σ beside every μ
        copies = 4 + len(optim.OPTIMIZERS[config.optimizer].slot_names)
        tree = SumTree.bytes_for(config.replay_capacity) if config.prioritized else 0
        return {"replay": config.replay_capacity * row + tree, "networks and optimizer": copies * parameters * width}

    def _allocate(self, device, use_bias, initializer):
        with tf.device(device):
            self.build_model(use_bias, initializer)
            epsilon = {} if self.config.optimizer_epsilon is None else {"epsilon": self.config.optimizer_epsilon}
            self.optimizer = optim.make_optimizer(self.config.optimizer, self.config.learning_rate, **epsilon)
            self.optimizer.build(self.online.variables_in_order)
            self.act_draws = tf.Variable(0, dtype=tf.int32, trainable=False, name="act_draws")
            if self.config.implicit_quantiles:   # the levels τ drawn so far, a stateless RNG's counter
                self.level_draws = tf.Variable(0, dtype=tf.int32, trainable=False, name="level_draws")
            # The loop's state between env steps, for `step`: what it acted on and how.
            self.schedule = schedule.Schedule(self.config, name="schedule")
            self.current_obs = tf.Variable(tf.zeros([self.num_envs, *self.acting_shape], self.acting_dtype),
                                           trainable=False, name="current_obs")
            self.last_action = tf.Variable(tf.zeros([self.num_envs], tf.int32), trainable=False,
                                           name="last_action")
            self.last_info = LearnInfo(*(tf.Variable(tf.constant(float("nan"), self.dtype), trainable=False,
                                                     name=f"last_{field}") for field in LearnInfo._fields))
            self.diverged_at = tf.Variable(-1, dtype=tf.int64, trainable=False, name="diverged_at")
            self.diverged_info = tf.Variable(tf.zeros([3], self.dtype), trainable=False, name="diverged_info")

    def build_model(self, use_bias, initializer):
        """The online and target networks and the replay: MLPs and a ring of transition rows."""
        self.online, self.target = (self.q_network(name, use_bias, initializer) for name in ("online", "target"))
        self.replay = ReplayBuffer(
            self.config.replay_capacity,
            obs_shape=() if self.discrete_obs else (self.obs_dim,),
            obs_dtype=tf.int32 if self.discrete_obs else self.dtype,
            seed=self.seed + 1, reward_dtype=self.dtype,
            num_actions=self.num_actions if self.legal_actions else None,
            jit_compile=self.config.mode == "xla", n_step=1 if self.prebuilt_windows else self.config.n_step,
            discount=self.config.discount, stride=self.num_envs, prioritized=self.config.prioritized,
            row_discounts=self.prebuilt_windows,
            priority_exponent=self.config.priority_exponent, priority_epsilon=self.config.priority_epsilon)
        # What the agent acts on, per env: a state index or an observation vector.
        self.acting_shape = () if self.discrete_obs else (self.obs_dim,)
        self.acting_dtype = self.replay.obs_dtype

    def q_network(self, name, use_bias=True, initializer="glorot_uniform"):
        """A new Q-network of this agent's architecture and seed (online, target, or a copy kept aside)."""
        return QNetwork(self.obs_dim, self.num_actions, self.config.hidden, seed=self.seed, dtype=self.dtype,
                        use_bias=use_bias, initializer=initializer, **self.config.head_options(),
                        obs_bounds=self.obs_bounds, name=name)

    # --- act ----------------------------------------------------------------
    def act(self, obs, epsilon, legal_mask=None):
        """ε-greedy actions [batch] (int32) for observations [batch, ...]."""
        obs = self._obs_tensor(obs)
        epsilon = tf.constant(epsilon, self.dtype)
        with tf.device(self.device):
            if legal_mask is None:
                return self._act(obs, epsilon)
            return self._act(obs, epsilon, tf.convert_to_tensor(legal_mask, tf.bool))

    def act_fn(self, obs, epsilon, legal_mask=None):
        """dqn.act with θ, the noise of a noisy network, and the key (seed, act_draws)."""
        noise = self.noise_fn(self.online)
        key = tf.stack([self.seed, self.act_draws])
        self.act_draws.assign_add(1)
        obs = self.features(obs)
        levels = self.levels_fn(tf.shape(obs)[0], (self.config.quantile_samples[2],))[0] \
            if self.config.implicit_quantiles else None
        return dqn.act(self.online, self.online.theta.read_value(), obs, epsilon, key, legal_mask, noise, levels)

    def levels_fn(self, batch, counts):
        """An implicit quantile network's levels τ ~ U(0, 1), [batch, count] for each count, from a
        stateless RNG keyed by (seed, draws so far)."""
        key = tf.stack([self.seed + 104_729, self.level_draws])
        self.level_draws.assign_add(1)
        levels = tf.random.stateless_uniform([batch, sum(counts)], seed=key, dtype=self.dtype)
        return tf.split(levels, list(counts), axis=1)

    def noise_fn(self, network):
        """Fresh noise for one forward pass of a noisy network; None (μ alone) otherwise."""
        return network.sample_noise() if self.config.noisy else None

    def q_values(self, obs):
        """Q(s, ·; θ) for a batch of observations."""
        with tf.device(self.device):
            return self._q_values(self._obs_tensor(obs))

    def q_values_fn(self, obs):
        return self.online(self.features(obs))

    # --- learn --------------------------------------------------------------
    def learn(self, batch):
        """One gradient update on an explicit batch (a Transition or a 5/6-tuple); returns LearnInfo."""
        batch = Transition(*batch)
        if self.legal_actions and batch.next_legal_mask is None:
            raise ValueError("this agent has legal_actions=True: the batch needs next_legal_mask")
        tensors = Transition(
            self._obs_tensor(batch.obs), tf.convert_to_tensor(batch.action, tf.int32),
            tf.convert_to_tensor(batch.reward, self.dtype), self._obs_tensor(batch.next_obs),
            tf.cast(tf.convert_to_tensor(batch.terminated), self.dtype),
            None if not self.legal_actions else tf.cast(batch.next_legal_mask, tf.bool))
        with tf.device(self.device):
            return self._learn(tensors)

    def learn_fn(self, batch):
        """dqn.update on a batch: θ, θ⁻ and the optimizer's state read from their variables,
        θ' and the new state written back; a prioritized replay's drawn priorities updated."""
        batch = batch._replace(obs=self.features(batch.obs), next_obs=self.features(batch.next_obs),
                               next_legal_mask=batch.next_legal_mask if self.legal_actions else None)
        # Drawn in this order, each network's noise counter counting its forward passes (None: not noisy).
        noise = dqn.Noise(target_next=self.noise_fn(self.target),
                          online_next=self.noise_fn(self.online) if self.config.double_q else None,
                          online=self.noise_fn(self.online))
        levels = dqn.Levels()
        if self.config.implicit_quantiles:
            n, n_target, k = self.config.quantile_samples
            levels = dqn.Levels(*self.levels_fn(tf.shape(batch.reward)[0], (n_target, k, n)))
        result = dqn.update(self.config, self.online, self.optimizer, self.online.theta.read_value(),
                            self.target.theta.read_value(), self.optimizer.read_state(), batch, noise, levels)
        self.online.theta.assign(result.params)
        self.optimizer.write_state(result.optimizer_state)
        if batch.index is not None:   # drawn from a prioritized replay: p_i from the errors
            self.replay.priorities.update_from_errors_fn(batch.index, result.errors)
        return result.info

    def train(self, num_updates=1):
        """`num_updates` × (sample a batch from the replay, learn) in one compiled call."""
        if self.replay.size == 0:
            raise ValueError("cannot train from an empty replay buffer; add transitions first")
        with tf.device(self.device):
            return self._train(tf.constant(int(num_updates), tf.int32))

    def train_fn(self, num_updates):
        """Repeat sample → learn; returns the LearnInfo of the last update, which is kept
        (keep_info_fn) as the loop's are."""
        info = self.learn_fn(self.sample_fn())
        # The first update is unrolled so the loop carries LearnInfo's dtypes and shapes.
        info = tf.while_loop(
            lambda i, _: i < num_updates,
            lambda i, _: (i + 1, self.learn_fn(self.sample_fn())),
            (tf.constant(1, tf.int32), info))[1]
        self.keep_info_fn(info, tf.constant(True))
        return info

    def first_observations(self, count):
        """Up to `count` of the first observations stored (the run's fixed validation set)."""
        return self.replay.obs[:min(self.replay.size, count)].numpy()

    def sample_fn(self, step=None):
        """A batch of `batch_size` transitions drawn uniformly from the replay (a Transition);
        from a prioritized one, in proportion to priority, weighted with β(step) (default: the
        steps counted so far)."""
        return self.sample_part(*self.sample_inputs_fn(step))

    def sample_inputs_fn(self, step=None):
        """What the replay's sample_fn takes: (batch_size,), and a prioritized one's β(step)."""
        if self.config.prioritized:
            step = self.schedule.step if step is None else step
            return self.config.batch_size, schedule.importance_exponent(self.config, step)
        return (self.config.batch_size,)

    # --- one environment step ------------------------------------------------
    def begin(self, obs, legal_mask=None):
        """The first actions [num_envs] of a run, for observations [num_envs, ...]."""
        return self._call_on_device(self._begin, self._obs_tensor(obs), self._mask_tensor(legal_mask))

    def begin_fn(self, obs, legal_mask=None):
        return self.act_on_fn(obs, legal_mask)

    def act_on_fn(self, obs, legal_mask=None, epsilon=None):
        """a = ε-greedy(Q(s), ε) (default ε(t), …, ε(t + N − 1) at this step); remembers s and a
        for the next store."""
        if epsilon is None:
            epsilon = dqn.exploration(self.config, self.schedule.step, self.num_envs, self.dtype)
        action = self.act_fn(obs, epsilon, legal_mask)
        self.current_obs.assign(obs)
        self.last_action.assign(action)
        return action

    def step(self, next_obs, reward, terminated, obs, next_legal_mask=None, legal_mask=None, ended=None):
        """One compiled call per environment step: store, learn if due, sync if due, act.

        `next_obs` is the true observation after the last actions (a truncated episode's
        final one), `obs` what to act on now (the reset observation where an episode
        ended, else `next_obs`); `ended` [num_envs]: the episode is over (terminated or
        truncated; an n-step replay's windows stop there; default `terminated`). Returns the
        actions [num_envs] for `obs`.

        The inputs cross into the program as one tensor (`pack`): each tensor made on the
        host and passed to a call costs far more than the bytes it holds.
        """
        return self.run_step_program(tf.constant(self.pack(next_obs, reward, terminated, obs, next_legal_mask,
                                                           legal_mask, ended)))

    def observe_fn(self, next_obs, reward, terminated, obs, next_legal_mask=None, legal_mask=None, ended=None,
                   learn=True, sync=True):
        """One environment step's work after env.step, wherever the env runs (host or device):
        dqn.step with this agent's replay, networks and counters. `learn` off: the host knows
        no update or sync is due; `sync` off: the host makes the syncs owed (sync_owed_fn)."""
        return self.advance_fn(lambda: self.store_fn(next_obs, reward, terminated, next_legal_mask, ended),
                               obs, legal_mask, learn, sync)

    def step_fn(self, *inputs):
        """The host's step program: the syncs are left to sync_owed_fn, which the host calls when
        one falls due (XLA turns the sync's cond into a select over θ run at every call)."""
        return self.observe_fn(*self.unpack_fn(*inputs), sync=False)

    def sync_owed_fn(self):
        """The syncs owed at the schedule's step (dqn.sync_owed), a program of its own for the host."""
        counters = dqn.sync_owed(self.config, dqn.Counters(*self.schedule.read()), self.sync_fn)
        self.schedule.syncs_done.assign(counters.syncs_done)

    def advance_fn(self, store, obs, legal_mask=None, learn=True, sync=True):
        """dqn.step: store(), then the updates and the sync now due, then act on `obs`; the
        counters written back, the last update's LearnInfo kept and watched (keep_info_fn)."""
        # The collecting program reads and writes only the step count: each buffer costs it time.
        counters = dqn.Counters(*self.schedule.read()) if learn else \
            dqn.Counters(self.schedule.step.read_value(), None, None)
        counters, info, updates, action = dqn.step(
            self.config, counters, self.num_envs, store,
            learn=lambda step: self.learn_fn(self.sample_fn(step)),
            sync=self.sync_fn,
            act=lambda epsilon: self.act_on_fn(obs, legal_mask, tf.cast(epsilon, self.dtype)),
            last_info=LearnInfo(*(variable.read_value() for variable in self.last_info)) if learn else None,
            learning=learn, syncing=sync)
        if learn:
            self.schedule.write(counters)
            self.keep_info_fn(info, updates > 0)   # the first update not finite: the loop stops there
        else:
            self.schedule.step.assign(counters.step)
        return action

    def store_fn(self, next_obs, reward, terminated, next_legal_mask=None, ended=None):
        """replay ← (s, a, clip(r), s', terminated[, ended]) with s and a the ones begin_fn remembered."""
        self.replay.add_fn(self.current_obs.read_value(), self.last_action.read_value(), self.clip_reward_fn(reward),
                           next_obs, terminated, next_legal_mask, ended=ended)

    # --- target -------------------------------------------------------------
    def sync_target(self, tau=1.0):
        """θ⁻ ← τθ + (1 − τ)θ⁻; tau=1 is an exact copy."""
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1]; got {tau}")
        with tf.device(self.device):
            self._sync(tf.constant(tau, self.dtype))

    def sync_fn(self, tau):
        """θ⁻ ← dqn.sync(θ, θ⁻, τ), τ in the agent's dtype (schedule.due gives τ' in float64)."""
        self.target.theta.assign(dqn.sync(self.online.theta.read_value(), self.target.theta.read_value(),
                                          tf.cast(tau, self.dtype)))
