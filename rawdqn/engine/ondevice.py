"""The on-device program: TF envs, replay, learning and target syncs as one compiled loop.

One call of the program runs K iterations of a tf.while_loop under jit_compile=True;
each iteration steps N environments per agent at once, then runs the agent's own step
body, `agent.observe_fn` — the very body of the gymnasium loop's one compiled call:

    s', r, terminated, truncated, s_final = env.step(s, a)     (auto-reset inside the batch)
    replay ← (s, a, r, s_final, terminated)           a truncated row bootstraps from s_final
    step += N; the updates and target syncs now due   (schedule.due, the agent's counters)
    a = ε-greedy(Q(s'; θ), ε(step … step + N − 1))    the N actions of the next iteration

so the update-to-data ratio is gradient_steps / train_frequency per environment step
whatever N is, counted exactly in integers. Every piece of loop state is a tf.Variable of
the `OnDeviceTrainer` module, so `tf.train.Checkpoint(trainer=...)` saves a run. Each call
also returns which episodes ended at which iteration, and their returns.

A frame environment (rawdqn/envs/minatar_breakout.py) gets the pixel agent through the
same make_agent: the stack of the last `history` frames it acts on is a variable of the
agent (updated by its observe_fn; evaluation carries its own through agent.acting_obs_fn)
and the frame replay assembles stacks at sample time, on the device like the rest.

`num_seeds` agents train side by side in the same program: agent i is the agent
that `seed + i` alone would train (its own weights, exploration, replay sampling
and environment stream), its per-iteration work unrolled in the loop body.

rawdqn/ondevice.py is the run around the program: the loop's hooks between calls.
"""
import dataclasses
import time

import numpy as np
import tensorflow as tf

from rawdqn import bellman, control, envs, keep_best
from rawdqn.errors import UsageError
from rawdqn.evaluation import PIXEL_EVAL_STEP_LIMIT
from rawdqn.gym_env import EnvSpec
from rawdqn.gym_run import make_agent
from rawdqn.config import check_seed
from rawdqn.network import PolicyNetwork
from rawdqn.policy_agent import PolicyGradientAgent
from rawdqn.engine.seed_axis import SeedAxis
from rawdqn.pqn_agent import PixelPQN, PQNAgent

# The second word of each agent's environment seed: [seed, ENV_STREAM].
ENV_STREAM = 0x5EED

def check_env(env_id):
    """A one-line UsageError unless rawdqn/envs/ has a TensorFlow version of env_id."""
    if env_id not in envs.available():
        raise UsageError(f"--on-device has no TensorFlow version of {env_id}; "
                         f"available: {', '.join(envs.available())}")


def env_spec(env):
    """The EnvSpec of a TF env, as rawdqn/gym_env.py's env_spec describes the gymnasium one:
    vectors, or frames (observation_shape) of values up to frame_max."""
    frame_shape = getattr(env, "observation_shape", None)
    return EnvSpec(env.observation_size, env.num_actions, False, 0, False, frame_shape,
                   getattr(env, "frame_max", 255.0))


class AgentEnvs(tf.Module):
    """One agent, its N environments, and the return of the episode each one is in."""

    def __init__(self, env, config, seed, num_envs, device=None, name=None):
        super().__init__(name=name)
        self.seed = int(seed)
        spec = env_spec(env)
        if config.algo == "dqn":   # DQN, or PixelDQN where the observations are frames
            self.agent = make_agent(spec, config, self.seed, device)
            with tf.device(device):   # the weights that scored best in greedy evaluations
                self.best = self.agent.q_network("best")
        elif config.algo == "pqn":   # the same step body, with a Q-network (rawdqn/pqn_agent.py)
            self.agent = (PixelPQN(spec.frame_shape, env.num_actions, config, seed=self.seed, device=device,
                                   num_envs=num_envs, frame_max=spec.frame_max, name="agent") if spec.frame_shape else
                          PQNAgent(env.observation_size, env.num_actions, config, seed=self.seed, device=device,
                                   num_envs=num_envs, name="agent"))
            with tf.device(device):
                self.best = self.agent.q_network("best")
        elif spec.frame_shape:
            raise UsageError(f"--algo {config.algo} takes vector observations; {env.env_id} has frames: use --algo dqn")
        else:   # the policy-gradient agents' step body has the same inputs (rawdqn/policy_agent.py)
            self.agent = PolicyGradientAgent(env.observation_size, env.num_actions, config,
                                             episode_steps=env.max_episode_steps, seed=self.seed, device=device,
                                             num_envs=num_envs, name="agent")
            with tf.device(device):
                self.best = PolicyNetwork(env.observation_size, env.num_actions, config.hidden, seed=self.seed,
                                     dtype=self.agent.dtype, **config.head_options(), name="best")
        self.agent.sync_target()
        with tf.device(device):
            self.best_score = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_score")
            self.best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="best_step")
            self.envs = envs.EnvRunner(env, num_envs, [self.seed, ENV_STREAM], name="envs")
            self.episode_return = tf.Variable(tf.zeros([num_envs], env.dtype), trainable=False,
                                              name="episode_return")
            # Totals over the whole run, and over the current call (for logging).
            self.episodes = tf.Variable(0, dtype=tf.int64, trainable=False, name="episodes")
            self.call_episodes = tf.Variable(0, dtype=tf.int64, trainable=False, name="call_episodes")
            self.call_return_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                               name="call_return_sum")

    def begin_call_fn(self):
        for variable in (self.call_episodes, self.call_return_sum):
            variable.assign(tf.zeros_like(variable))
        # An agent that has never acted chooses its first actions (begin_fn) for the envs' first observations.
        agent = self.agent
        control.cond(agent.act_draws == 0, lambda: agent.begin_fn(self.envs.obs.read_value()),
                lambda: agent.last_action.read_value())

    def step_fn(self):
        """One iteration for this agent: its N envs step with the actions it chose, then the
        agent's own step body (agent.observe_fn: store, learn and sync if due, act). Returns
        which envs' episodes ended and the returns their episodes have now, each [N]."""
        result = self.envs.step(self.agent.last_action.read_value())
        # next_obs is the true final observation; truncated rows keep terminated = 0.
        done = tf.logical_or(result.terminated, result.truncated)
        self.agent.observe_fn(result.final_obs, result.reward, tf.cast(result.terminated, self.agent.dtype),
                              result.obs, ended=tf.cast(done, self.agent.dtype))
        episode_return = self.episode_return + result.reward
        ended = tf.reduce_sum(tf.cast(done, tf.int64))
        self.episodes.assign_add(ended)
        self.call_episodes.assign_add(ended)
        self.call_return_sum.assign_add(tf.cast(
            tf.reduce_sum(tf.where(done, episode_return, tf.zeros_like(episode_return))), tf.float64))
        self.episode_return.assign(tf.where(done, tf.zeros_like(episode_return), episode_return))
        return done, episode_return

    def shared_variables(self):
        """The counters every seed of a run holds alike (engine/seed_axis.py): the agent's
        (its shared_counters) and the env runner's calls."""
        return self.agent.shared_counters + [self.envs.counter]

    def keep_if_best(self, score, step):
        """Copy the online weights to `best` if they are the best so far (keep_best.is_best)."""
        if keep_best.is_best(score, float(self.best_score.numpy())):   # −∞ until one is kept
            for best, online in zip(self.best.variables_in_order, self.agent.online.variables_in_order):
                best.assign(online)
            self.best_score.assign(score)
            self.best_step.assign(step)

    def use_best(self):
        """Put the kept weights back in the agent (for evaluating and writing them)."""
        keep_best.put_back([variable.read_value() for variable in self.best.variables_in_order], self.agent)


@dataclasses.dataclass
class CallStats:
    """What one call of the program reports, per agent where it is a list."""
    step: int
    updates: int
    syncs: int
    episodes: list            # episodes finished during the call, per agent
    mean_return: list         # their mean return (nan if none finished)
    loss: list                # the loss of the last update so far (nan before the first)
    # Per agent, (iteration of the call, env, return) of each episode that ended, in order.
    episode_ends: list = dataclasses.field(default_factory=list, repr=False)

    def row(self):
        """The call as a history row (without the episodes, which episodes.jsonl holds)."""
        return {name: value for name, value in dataclasses.asdict(self).items() if name != "episode_ends"}


class CompiledCache:
    """Compiled helper functions by argument; not a tf.Module, so checkpoints ignore it."""

    def __init__(self):
        self.greedy_returns = {}


class OnDeviceTrainer(tf.Module):
    """`num_seeds` agents with N TF environments each, trained by one compiled loop."""

    def __init__(self, env_id, config, seed=0, num_envs=None, num_seeds=1,
                 device=None, max_episode_steps=None, seed_axis="unrolled", name=None):
        """num_envs: the config's unless given (then the config says so too); max_episode_steps
        the config's unless given, else the env's own time limit. seed_axis: how the seeds run,
        'unrolled' (one after another in the loop body) or 'batched' (engine/seed_axis.py)."""
        super().__init__(name=name)
        check_env(env_id)
        num_envs = config.num_envs if num_envs is None else num_envs
        if seed_axis not in ("unrolled", "batched"):
            raise UsageError(f"--seed-axis must be unrolled or batched; got {seed_axis!r}")
        if int(num_envs) < 1 or int(num_seeds) < 1:
            raise UsageError(f"--num-envs and --seeds must be >= 1; got {num_envs} and {num_seeds}")
        config = config.replace(num_envs=int(num_envs))
        self.env_id, self.config, self.seed = env_id, config.validate(), check_seed(seed, int(num_seeds))
        self.num_envs, self.num_seeds, self.device = int(num_envs), int(num_seeds), device
        if self.num_envs > self.config.replay_capacity:
            raise UsageError(f"--num-envs {num_envs} writes more transitions per iteration than "
                             f"replay_capacity ({self.config.replay_capacity}) holds")
        if max_episode_steps is None:
            max_episode_steps = self.config.max_episode_steps
        try:
            self.env = envs.make(env_id, dtype=self.config.dtype, max_episode_steps=max_episode_steps,
                                 sticky_actions=self.config.sticky_actions)
        except ValueError as error:
            raise UsageError(str(error)) from None
        self.seed_runs = [AgentEnvs(self.env, self.config, self.seed + i, self.num_envs, device,
                                name=f"seed_{self.seed + i}") for i in range(self.num_seeds)]
        self.seed_axis = (SeedAxis(self.seed_runs, AgentEnvs.shared_variables, self.config.mode == "xla")
                          if seed_axis == "batched" and self.num_seeds > 1 else None)
        # autograph=False: the loop has no Python control flow on tensors, and converting
        # the agent and env code takes longer than tracing it.
        self._run = tf.function(self.run_fn, jit_compile=self.config.mode == "xla", autograph=False)
        # A plain holder: a dict assigned to a tf.Module is tracked, and a checkpoint
        # cannot save tf.functions keyed by int.
        self._compiled = CompiledCache()

    @property
    def agents(self):
        return [seed_run.agent for seed_run in self.seed_runs]

    # The agents' schedules count in step (rawdqn/schedule.py); agent 0's stands for all.
    @property
    def step(self):
        return self.seed_runs[0].agent.schedule.step

    @property
    def updates_done(self):
        return self.seed_runs[0].agent.schedule.updates_done

    @property
    def syncs_done(self):
        return self.seed_runs[0].agent.schedule.syncs_done

    # --- the compiled program ----------------------------------------------------
    def run_fn(self, iterations):
        """`iterations` iterations in one tf.while_loop; returns the call's counters and sums.

        An iteration steps every agent's N envs once and runs each agent's step body
        (`AgentEnvs.step_fn`): the body of the gymnasium loop's compiled call.
        """
        if self.seed_axis is not None:
            return self.batched_run_fn(iterations)
        for seed_run in self.seed_runs:
            seed_run.begin_call_fn()
        # Row i of each agent's [iterations_per_call, N] buffers: which episodes ended at
        # iteration i and their returns (a static shape, so XLA updates the rows in place).
        rows = [self.config.iterations_per_call, self.num_envs]
        buffers = [(tf.zeros(rows, tf.bool), tf.zeros(rows, self.env.dtype)) for _ in self.seed_runs]

        def body(i, buffers):
            kept = []
            for seed_run, (ended, returns) in zip(self.seed_runs, buffers):
                done, episode_return = seed_run.step_fn()
                at = tf.reshape(i, [1, 1])
                kept.append((tf.tensor_scatter_nd_update(ended, at, done[None]),
                             tf.tensor_scatter_nd_update(returns, at, episode_return[None])))
            return i + 1, kept
        _, buffers = tf.while_loop(lambda i, _: i < iterations, body, (tf.constant(0, tf.int32), buffers))
        return self.call_results(tf.stack([ended for ended, _ in buffers]),
                                 tf.stack([returns for _, returns in buffers]))

    def batched_run_fn(self, iterations):
        """run_fn with the K agents as one batch (engine/seed_axis.py): their state read into [K, ...]
        tensors, `iterations` batched step bodies, the state written back."""
        axis = self.seed_axis
        per_seed, shared = axis.read()
        per_seed, shared, _ = axis.map(lambda seed_run: seed_run.begin_call_fn() or tf.constant(0), per_seed, shared)
        rows = [self.num_seeds, self.config.iterations_per_call, self.num_envs]
        buffers = (tf.zeros(rows, tf.bool), tf.zeros(rows, self.env.dtype))

        def body(i, buffers, per_seed, shared):
            per_seed, shared, (done, episode_return) = axis.map(lambda seed_run: seed_run.step_fn(), per_seed, shared)
            at = tf.stack([tf.range(self.num_seeds), tf.fill([self.num_seeds], i)], axis=1)
            buffers = (tf.tensor_scatter_nd_update(buffers[0], at, done),
                       tf.tensor_scatter_nd_update(buffers[1], at, episode_return))
            return i + 1, buffers, per_seed, shared
        _, (ended, end_returns), per_seed, shared = tf.while_loop(
            lambda i, *_: i < iterations, body, (tf.constant(0, tf.int32), buffers, per_seed, shared))
        axis.write(per_seed, shared)
        return self.call_results(ended, end_returns)

    def call_results(self, ended, end_returns):
        """What a call returns: the counters, each agent's episodes, return sum and last loss over
        the call, and the [K, iterations_per_call, N] episode ends and their returns."""
        return {"step": self.step.read_value(), "updates": self.updates_done.read_value(),
                "syncs": self.syncs_done.read_value(),
                "episodes": tf.stack([seed_run.call_episodes.read_value() for seed_run in self.seed_runs]),
                "return_sum": tf.stack([seed_run.call_return_sum.read_value() for seed_run in self.seed_runs]),
                "loss": tf.stack([tf.cast(seed_run.agent.last_info.loss, tf.float64) for seed_run in self.seed_runs]),
                "ended": ended, "end_returns": end_returns}

    # --- the host side -----------------------------------------------------------
    def run(self, iterations):
        """Run `iterations` iterations, in calls of at most iterations_per_call (the length
        of the episode-end buffers); returns CallStats over all of them."""
        iterations, most = int(iterations), self.config.iterations_per_call
        episodes, return_sum = np.zeros(self.num_seeds, np.int64), np.zeros(self.num_seeds)
        episode_ends, done = [[] for _ in self.seed_runs], 0
        while True:
            count = min(most, iterations - done)
            with tf.device(self.device):
                out = self._run(tf.constant(count, tf.int32))
            out = {name: value.numpy() for name, value in out.items()}
            episodes += out["episodes"]
            return_sum += out["return_sum"]
            for ends, ended, returns in zip(episode_ends, out["ended"][:, :count], out["end_returns"][:, :count]):
                at, env = np.nonzero(ended)   # row-major: by iteration, then env
                ends.extend(zip((at + done).tolist(), env.tolist(), returns[at, env].tolist()))
            done += count
            if done >= iterations:
                break
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_return = np.where(episodes > 0, return_sum / np.maximum(episodes, 1), np.nan)
        return CallStats(int(out["step"]), int(out["updates"]), int(out["syncs"]), episodes.tolist(),
                         mean_return.tolist(), [float(x) for x in out["loss"]], episode_ends)

    def compile(self, eval_episodes=0):
        """Compile the program (a call of 0 iterations) and, with eval_episodes, the greedy
        evaluation; returns the seconds it took."""
        start = time.perf_counter()
        self.run(0)
        if eval_episodes:
            self.greedy_returns(0, eval_episodes)
        return time.perf_counter() - start

    def greedy_returns_fn(self, seed, num_episodes):
        """Undiscounted returns [num_seeds, num_episodes] of each agent's greedy policy,
        one episode in each of num_episodes fresh TF envs, stepped until all have ended or, where
        the env has no time limit, for as many steps as evaluation on gymnasium allows
        (PIXEL_EVAL_STEP_LIMIT): a greedy policy can loop forever."""
        step_limit = min(self.env.max_episode_steps, PIXEL_EVAL_STEP_LIMIT)
        returns = []
        for i, seed_run in enumerate(self.seed_runs):
            agent = seed_run.agent
            run_seed = tf.random.experimental.stateless_fold_in(seed, i, alg=envs.core.RNG_ALGORITHM)
            state, obs = self.env.reset(run_seed, num_episodes)
            # What the agent acts on (a pixel agent: the stack of its last frames).
            template = agent.current_obs
            acting = agent.acting_obs_fn(tf.zeros([num_episodes, *template.shape[1:]], template.dtype), obs,
                                         tf.ones([num_episodes], tf.bool))
            total = tf.zeros([num_episodes], self.env.dtype)
            done = tf.zeros([num_episodes], tf.bool)

            def body(t, state, acting, total, done, agent=agent, run_seed=run_seed):
                action = bellman.masked_argmax(agent.q_values_fn(acting))   # the greedy policy
                step_seed = tf.random.experimental.stateless_fold_in(run_seed, t + 1,
                                                                      alg=envs.core.RNG_ALGORITHM)
                result = self.env.step(state, action, step_seed)
                # Only the first episode of each env counts.
                total += tf.where(done, tf.zeros_like(result.reward), result.reward)
                done = done | result.terminated | result.truncated
                acting = agent.acting_obs_fn(acting, result.obs, tf.zeros_like(done))
                return t + 1, result.state, acting, total, done

            _, _, _, total, _ = tf.while_loop(
                lambda t, state, acting, total, done: tf.logical_and(t < step_limit, tf.logical_not(tf.reduce_all(done))),
                body, (tf.constant(0, tf.int32), state, acting, total, done))
            returns.append(total)
        return tf.stack(returns)

    def greedy_returns(self, seed, num_episodes=16):
        """Each agent's greedy returns on the TF env (fast; for choosing snapshots), [num_seeds, episodes]."""
        function = self._compiled.greedy_returns.get(num_episodes)
        if function is None:
            function = self._compiled.greedy_returns[num_episodes] = tf.function(
                lambda seed: self.greedy_returns_fn(seed, num_episodes),
                jit_compile=self.config.mode == "xla", autograph=False)
        with tf.device(self.device):
            return function(tf.constant([seed, 0x0E7A1], tf.int32)).numpy()

    def checkpoint(self):
        """A tf.train.Checkpoint of every variable: weights, optimizer, replay, envs, counters."""
        return tf.train.Checkpoint(trainer=self)
