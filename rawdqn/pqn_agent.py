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
import math

import tensorflow as tf

from rawdqn import schedule
from rawdqn.algorithms import dqn, pqn
from rawdqn.engine.kernel import compile_kernel
from rawdqn.engine.rollout import RolloutAgent
from rawdqn.network import QNetwork
from rawdqn.pixel_agent import FrameInputs, conv_q_network

# The second words of the stateless RNG keys: acting, and the minibatches' permutations.
ACT_STREAM, MINIBATCH_STREAM = 7_919, 15_485_863


class PQNAgent(RolloutAgent, tf.Module):
    """PQN's Q-network, optimizer, rollout buffer and compiled kernels. Observations as for DQN:
    vectors, or state indices one-hot encoded."""

    def __init__(self, obs_dim, num_actions, config, seed=0, discrete_obs=False, legal_actions=False, device=None,
                 num_envs=1, use_bias=True, obs_bounds=None, name=None):
        super().__init__(name=name)
        self.set_spaces(obs_dim, num_actions, config, seed, discrete_obs, legal_actions, device, num_envs)
        with tf.device(device):
            self.online = self.q_network("online", use_bias, obs_bounds)
            self.build_optimizer()
            self.build_rollout(config.rollout_steps, config, *self.rollout_obs())
            self.build_watch(pqn.Info, len(self.watched_labels))
        mode = self.config.mode
        self._act = compile_kernel(self.act_fn, mode)
        self._begin = compile_kernel(self.begin_fn, mode)
        self._step = compile_kernel(self.step_fn, mode)
        self._collect = compile_kernel(self.collect_fn, mode)
        self._q_values = compile_kernel(self.q_values_fn, mode)

    def q_network(self, name, use_bias=True, obs_bounds=None):
        """The MLP Q-network of config.hidden (with its layer norms where config.layer_norm)."""
        return QNetwork(self.obs_dim, self.num_actions, self.config.hidden, seed=self.seed, dtype=self.dtype,
                        use_bias=use_bias, obs_bounds=obs_bounds, **self.config.head_options(), name=name)

    def rollout_obs(self):
        """(shape, dtype) of the observations the buffer keeps, or () for the state or vector the env gives."""
        return ()

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
        """K of the learning rate's decay (schedule.pqn_total_gradient_steps)."""
        return schedule.pqn_total_gradient_steps(self.config, self.num_envs)

    # --- act ----------------------------------------------------------------
    def act_fn(self, obs, legal_mask=None):
        """dqn.act with ε(t), …, ε(t + B − 1) of the schedule, keyed by (seed, draws so far)."""
        key = tf.stack([self.seed + ACT_STREAM, self.act_draws])
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
        rollout = pqn.Rollout(inputs.obs, batch.action, self.clip_reward_fn(batch.reward), inputs.next_obs,
                              batch.terminated, batch.ended)
        rollouts_done = tf.cast(self.schedule.updates_done, tf.int32)
        key = tf.stack([self.seed + MINIBATCH_STREAM, rollouts_done])
        params, state, info = pqn.train(
            self.online, self.optimizer, self.online.theta.read_value(), self.optimizer.read_state(), rollout,
            self.config, key, tf.cast(self.schedule.updates_done, tf.int64) * self.gradient_steps_per_rollout,
            self.total_gradient_steps)
        self.online.theta.assign(params)
        self.optimizer.write_state(state)
        return info


class PixelPQN(FrameInputs, PQNAgent):
    """PQN on frames [H, W] or [H, W, C]: the conv Q-network of config.convs and config.hidden
    (layer norms on its hidden fully connected layers), and the rollout buffer keeping the stacks
    of the last `history` frames the agent acted on and the stacks after each step. The host
    sends one frame per env and step (FrameInputs), as for PixelDQN."""

    def __init__(self, frame_shape, num_actions, config, seed=0, device=None, num_envs=1, frame_max=255.0, name=None):
        self.set_frames(frame_shape, frame_max, config.history)
        super().__init__(math.prod(self.input_shape), num_actions, config, seed=seed, device=device,
                         num_envs=num_envs, name=name)

    def q_network(self, name, use_bias=True, obs_bounds=None):
        return conv_q_network(self.frame_shape, self.num_actions, self.config, self.seed, name, self.device,
                              use_bias=use_bias, scale=1 / self.frame_max)

    def rollout_obs(self):
        return self.input_shape, tf.uint8

    def observe(self, env_step):
        """One compiled call per environment step: FrameInputs.frame_inputs's two tensors."""
        return self.run_step_program(*self.frame_inputs(env_step))

    def begin_fn(self, frames, legal_mask=None):
        return self.act_on_fn(self.first_stack_fn(frames))

    def observe_fn(self, next_frame, reward, terminated, frame, next_legal_mask=None, legal_mask=None, ended=None,
                   learn=True):
        """PQNAgent's observe_fn on stacks: the step's next stack is the stack acted on with f_{t+1}
        appended (the true last frame where the episode ended); the agent then acts on the
        stack with `frame` appended, or the next episode's first stack where it ended."""
        ended = terminated if ended is None else ended
        ends = tf.cast(ended, tf.bool)
        stack = self.current_obs.read_value()
        next_stack = self.stack_fn(stack, next_frame, tf.zeros_like(ends))
        return super().observe_fn(next_stack, reward, terminated, self.stack_fn(stack, frame, ends), ended=ended,
                                  learn=learn)
