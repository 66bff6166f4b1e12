"""PQN (Gallici et al. 2024, "Simplifying Deep Temporal Difference Learning", ICLR 2025): its
Q-network, optimizer and rollout buffer in variables, and the compiled kernels that call the pure
functions of rawdqn/algorithms/pqn.py (returns, loss, update, train: the equations are there).

N environments step together for T = rollout_steps steps, acting ε-greedily on Q(·; θ) with ε on
DQN's schedule (dqn.act, dqn.exploration); each env writes its steps into its row of the rollout
buffer on the device (rawdqn/engine/rollout.py). When the rows are full, `pqn.train` learns from
the T·N transitions: Peng's Q(λ) returns of the online network, then `epochs` passes of
`minibatches` steps each on ½(G − Q)², RAdam (or the configured optimizer) with its learning rate
decayed linearly over the run's gradient steps. No replay, no target network: the layer norms of
the network (config.layer_norm) keep it stable. Store, update when due and act are one compiled
call per environment step, as for DQN and A2C.
"""
import tensorflow as tf

from rawdqn import optim
from rawdqn.algorithms import dqn, pqn
from rawdqn.engine.kernel import compile_kernel
from rawdqn.engine.rollout import RolloutAgent
from rawdqn.network import QNetwork

# The second words of the stateless RNG keys: acting, and the minibatches' permutations.
ACT_STREAM, MINIBATCH_STREAM = 7_919, 15_485_863


class PQNAgent(RolloutAgent, tf.Module):
    """PQN's Q-network, optimizer, rollout buffer and compiled kernels. Observations as for DQN:
    vectors, or state indices one-hot encoded."""

    def __init__(self, obs_dim, num_actions, config, seed=0, discrete_obs=False, legal_actions=False, device=None,
                 num_envs=1, use_bias=True, obs_bounds=None, name=None):
        super().__init__(name=name)
        self.config = config.validate()
        self.obs_dim, self.num_actions, self.num_envs = int(obs_dim), int(num_actions), int(num_envs)
        self.seed, self.discrete_obs, self.legal_actions = int(seed), bool(discrete_obs), bool(legal_actions)
        self.device = device
        self.dtype = tf.float64 if self.config.dtype == "float64" else tf.float32
        with tf.device(device):
            self.online = QNetwork(self.obs_dim, self.num_actions, config.hidden, seed=self.seed, dtype=self.dtype,
                                   use_bias=use_bias, obs_bounds=obs_bounds, **config.head_options(), name="online")
            epsilon = {} if config.optimizer_epsilon is None else {"epsilon": config.optimizer_epsilon}
            self.optimizer = optim.make_optimizer(config.optimizer, config.learning_rate, **epsilon)
            self.optimizer.build(self.trained_variables)
            self.build_rollout(config.rollout_steps, config)
            self.build_watch(pqn.Info, len(self.watched_labels))
        mode = self.config.mode
        self._act = compile_kernel(self.act_fn, mode)
        self._begin = compile_kernel(self.begin_fn, mode)
        self._step = compile_kernel(self.step_fn, mode)
        self._q_values = compile_kernel(self.q_values_fn, mode)

    @property
    def trained_variables(self):
        return [self.online.theta]

    @property
    def networks_restored_by_keep_best(self):
        return (self.online,)

    # The diverged_info entries, in order (rawdqn/train.py's check_finite names them).
    watched_labels = ("loss", "mean Q", "gradient norm")

    @staticmethod
    def watched_values(info):
        return tf.stack([info.loss, info.mean_q, info.grad_norm])

    @property
    def gradient_steps_per_rollout(self):
        return int(self.config.epochs) * int(self.config.minibatches)

    @property
    def total_gradient_steps(self):
        """K of the learning rate's decay: the run's rollouts (rounded up) × epochs × minibatches."""
        rollout = self.num_envs * int(self.config.rollout_steps)
        return max(1, -(-int(self.config.total_steps) // rollout)) * self.gradient_steps_per_rollout

    # --- act ----------------------------------------------------------------
    def act_fn(self, obs, legal_mask=None):
        """dqn.act with ε(t), …, ε(t + B − 1) of the schedule, keyed by (seed, draws so far)."""
        key = tf.stack([tf.constant(self.seed + ACT_STREAM, tf.int32), self.act_draws])
        self.act_draws.assign_add(1)
        epsilon = dqn.exploration(self.config, self.schedule.step, tf.shape(obs)[0], self.dtype)
        return dqn.act(self.online, self.online.theta.read_value(), self.features(obs), epsilon, key, legal_mask)

    def q_values(self, obs):
        """Q(s, ·; θ) for a batch of observations."""
        return self._call_on_device(self._q_values, self._obs_tensor(obs))

    def q_values_fn(self, obs):
        return self.online(self.features(obs))

    # --- learn --------------------------------------------------------------
    def learn_fn(self, batch):
        """pqn.train on the rollout: θ and the optimizer's state read from their variables, the new
        ones written back; the learning rate decays by the gradient steps of the rollouts before."""
        inputs = self.network_inputs(batch)
        rollout = pqn.Rollout(inputs.obs, batch.action, batch.reward, inputs.next_obs, batch.terminated, batch.ended)
        rollouts_done = tf.cast(self.schedule.updates_done, tf.int32)
        key = tf.stack([tf.constant(self.seed + MINIBATCH_STREAM, tf.int32), rollouts_done])
        params, state, info = pqn.train(
            self.online, self.optimizer, self.online.theta.read_value(), self.optimizer.read_state(), rollout,
            self.config, key, tf.cast(self.schedule.updates_done, tf.int64) * self.gradient_steps_per_rollout,
            self.total_gradient_steps)
        self.online.theta.assign(params)
        self.optimizer.write_state(state)
        return info
