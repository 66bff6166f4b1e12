"""The kernels the benchmark times, each a function of explicit tensor inputs.

For every configuration (device, dtype, hidden sizes) one `Setup` holds a DQN
on CartPole's shapes (4 observations, 2 actions) with a full replay, and
builds each kernel as `(fn, inputs, flops_per_step)`:

  fn(*inputs_for_one_step) -> tensors; its LAST output is read after the
  kernel's last write, so forcing it to the host waits for all the work.

`compile_repeated(kernel, mode, K)` runs K steps inside one compiled call
(a tf.while_loop over inputs stacked [K, ...]) so dispatch overhead and compute
can be told apart. Every step gets its own input slice: with one input
repeated, XLA could hoist a pure kernel (a forward pass) out of the loop.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from bench import flops
from rawdqn import bellman, envs, losses
from rawdqn.agent import DQN, compile_kernel
from rawdqn.config import DQNConfig
from rawdqn.replay import Transition

OBS_DIM = 4
NUM_ACTIONS = 2

# name -> (what it runs, batch)
KERNELS = {
    "act_b1": ("act: ε-greedy actions for 1 observation", 1),
    "act_b256": ("act: ε-greedy actions for 256 observations", 256),
    "learn_b32": ("learn: target → loss → grad → clip → Adam, batch 32", 32),
    "learn_b128": ("learn: target → loss → grad → clip → Adam, batch 128", 128),
    "learn_b512": ("learn: target → loss → grad → clip → Adam, batch 512", 512),
    "add_1": ("replay.add: 1 transition", 1),
    "add_256": ("replay.add: 256 transitions", 256),
    "sample_b128": ("replay.sample: 128 transitions", 128),
    "loss_grad_b128": ("q_learning_target + squared loss + gradient, batch 128", 128),
    "adam": ("optimizer step alone (Adam on given gradients)", None),
    "sync_target": ("sync_target: hard copy θ⁻ ← θ", None),
    "iteration": ("one training iteration: act(1) → CartPole step → add(1) → sample(128) → learn", 128),
}


@dataclasses.dataclass
class Kernel:
    name: str
    fn: object
    inputs: list  # one list of tensors per step: stacked [K, ...] by `stack_inputs`
    flops: int  # per step


class Setup:
    """One DQN (online, target, Adam, replay) on one device, dtype and network size."""

    def __init__(self, device, dtype, hidden, replay_capacity=100_000, seed=0):
        self.device, self.dtype_name, self.hidden = device, dtype, tuple(hidden)
        self.dtype = tf.as_dtype(dtype)
        self.sizes = flops.layer_sizes(OBS_DIM, self.hidden, NUM_ACTIONS)
        self.rng = np.random.default_rng(seed)
        config = DQNConfig(hidden=self.hidden, dtype=dtype, batch_size=128,
                           replay_capacity=replay_capacity, mode="xla")
        with tf.device(device):
            self.agent = DQN(OBS_DIM, NUM_ACTIONS, config, seed=seed, device=device)
            replay = self.agent.replay
            replay.add(*self.random_transitions(replay_capacity))
            self.env = envs.make("CartPole-v1", dtype=dtype)
            state, obs = self.env.reset(tf.constant([seed, 0], tf.int32), 1)
            self.env_physics = tf.Variable(state.physics, name="env_physics")
            self.env_steps = tf.Variable(state.steps, name="env_steps")
            self.env_obs = tf.Variable(obs, name="env_obs")
            self.env_calls = tf.Variable(0, dtype=tf.int32, name="env_calls")

    # --- inputs -------------------------------------------------------------
    def random_transitions(self, n):
        rng, dtype = self.rng, self.dtype.as_numpy_dtype
        return (rng.normal(size=(n, OBS_DIM)).astype(dtype),
                rng.integers(0, NUM_ACTIONS, n).astype(np.int32),
                rng.normal(size=n).astype(dtype),
                rng.normal(size=(n, OBS_DIM)).astype(dtype),
                (rng.random(n) < 0.05).astype(dtype))

    def tensors(self, arrays):
        with tf.device(self.device):
            return [tf.constant(a) for a in arrays]

    # --- memory -------------------------------------------------------------
    def memory(self):
        agent = self.agent
        nbytes = lambda variables: sum(int(np.prod(v.shape)) * v.dtype.size for v in variables)
        return {"replay_bytes": int(agent.replay.nbytes),
                "model_bytes": nbytes(agent.online.variables + agent.target.variables
                                      + agent.optimizer.variables),
                "parameters": flops.num_parameters(self.sizes)}

    # --- kernels ------------------------------------------------------------
    def last_variable(self):
        """The variable every update writes last (read to fence the device)."""
        return self.agent.online.variables_in_order[-1]

    def build(self, name, steps):
        """Kernel `name` with inputs for `steps` steps."""
        return getattr(self, "_build_" + name.split("_")[0])(name, steps)

    def _batch(self, name):
        return KERNELS[name][1]

    def _build_act(self, name, steps):
        agent, batch = self.agent, self._batch(name)

        def act(obs, epsilon):
            return agent.act_fn(obs, epsilon)

        inputs = [self.tensors([self.rng.normal(size=(batch, OBS_DIM)).astype(self.dtype.as_numpy_dtype),
                                np.asarray(0.1, self.dtype.as_numpy_dtype)]) for _ in range(steps)]
        return Kernel(name, act, inputs, flops.act(batch, self.sizes))

    def _build_learn(self, name, steps):
        agent, last = self.agent, self.last_variable()

        def learn(*batch):
            info = agent.learn_fn(Transition(*batch))
            return info, last.read_value()

        inputs = [self.tensors(self.random_transitions(self._batch(name))) for _ in range(steps)]
        return Kernel(name, learn, inputs, flops.learn(self._batch(name), self.sizes))

    def _build_add(self, name, steps):
        replay = self.agent.replay

        def add(*transitions):
            replay.add_fn(*transitions)
            return replay.count.read_value(), replay.cursor.read_value()

        n = int(name.split("_")[1])
        inputs = [self.tensors(self.random_transitions(n)) for _ in range(steps)]
        return Kernel(name, add, inputs, 0)

    def _build_sample(self, name, steps):
        replay, batch = self.agent.replay, self._batch(name)

        def sample(dummy):
            out = replay.sample_fn(batch)
            return tuple(t for t in out if t is not None), replay.draws.read_value()

        inputs = [self.tensors([np.int32(i)]) for i in range(steps)]
        return Kernel(name, sample, inputs, 0)

    def _build_loss(self, name, steps):
        agent, batch = self.agent, self._batch(name)
        discount = agent.config.discount

        def loss_grad(obs, action, reward, next_obs, terminated):
            target = bellman.q_learning_target(reward, terminated, discount,
                                               agent.target(next_obs))
            variables = agent.online.variables_in_order
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(variables)
                loss = losses.squared_loss(
                    losses.td_error(agent.online(obs), action, target))
            grads = tape.gradient(loss, variables)
            return loss, grads[::-1]  # the first layer's gradient is computed last

        inputs = [self.tensors(self.random_transitions(batch)) for _ in range(steps)]
        return Kernel(name, loss_grad, inputs, flops.loss_and_gradient(batch, self.sizes))

    def _build_adam(self, name, steps):
        agent, last = self.agent, self.last_variable()
        variables = agent.online.variables_in_order

        def adam(*grads):
            agent.optimizer.apply(list(grads), variables)
            return last.read_value()

        scale = 1e-3
        inputs = [self.tensors([(scale * self.rng.normal(size=v.shape)).astype(self.dtype.as_numpy_dtype)
                                for v in variables]) for _ in range(steps)]
        return Kernel(name, adam, inputs, flops.optimizer_step(self.sizes))

    def _build_sync(self, name, steps):
        agent = self.agent
        last = agent.target.variables_in_order[-1]

        def sync(tau):
            agent.sync_fn(tau)
            return last.read_value()

        inputs = [self.tensors([np.asarray(1.0, self.dtype.as_numpy_dtype)]) for _ in range(steps)]
        return Kernel(name, sync, inputs, flops.sync_target(self.sizes))

    def _build_iteration(self, name, steps):
        agent, env, last = self.agent, self.env, self.last_variable()
        batch = agent.config.batch_size
        seed = agent.seed

        def iteration(epsilon):
            obs = self.env_obs.read_value()
            action = agent.act_fn(obs, epsilon)
            env_seed = tf.stack([tf.constant(seed, tf.int32), self.env_calls])
            self.env_calls.assign_add(1)
            state = envs.EnvState(self.env_physics.read_value(), self.env_steps.read_value())
            result = env.step(state, action, env_seed)
            agent.replay.add_fn(obs, action, result.reward, result.final_obs,
                                tf.cast(result.terminated, agent.dtype))
            self.env_physics.assign(result.state.physics)
            self.env_steps.assign(result.state.steps)
            self.env_obs.assign(result.obs)
            info = agent.learn_fn(agent.replay.sample_fn(batch))
            return info, last.read_value()

        inputs = [self.tensors([np.asarray(0.1, self.dtype.as_numpy_dtype)]) for _ in range(steps)]
        total = (flops.act(1, self.sizes) + flops.learn(batch, self.sizes))
        return Kernel(name, iteration, inputs, total)


def stack_inputs(inputs):
    """Per-step input lists → one list of tensors stacked [K, ...]."""
    return [tf.stack(column) for column in zip(*inputs)]


def compile_repeated(kernel, mode, steps, device):
    """A callable running `steps` steps of the kernel in one call, compiled per `mode`.

    Returns (call, args): call(*args) does the work. With steps == 1 the kernel
    is compiled as it is (what a user's single call costs); with steps > 1 it is
    a tf.while_loop whose step i takes input slice i.
    """
    fn = kernel.fn
    with tf.device(device):
        if steps == 1:
            return compile_kernel(fn, mode), list(kernel.inputs[0])
        stacked = stack_inputs(kernel.inputs)

    def repeated(*stacked):
        step_inputs = lambda i: [tf.gather(column, i) for column in stacked]
        first = fn(*step_inputs(0))  # unrolled: the loop carries its structure

        def body(i, _):
            return i + 1, fn(*step_inputs(i))

        return tf.while_loop(lambda i, _: i < steps, body, (tf.constant(1), first))[1]

    return compile_kernel(repeated, mode), stacked
