"""Ape-X DQN (Horgan et al. 2018) on Ray core: many actors, one learner with the device replay.

    actor i of N (a Ray actor: its own gymnasium vector env and copy of the online network)
        ε_i = ε^(1 + α · i / (N − 1))                         (ε 0.4, α 7; actor_epsilon)
        act ε_i-greedily; cut n-step windows with bellman.n_step_window (NStepWindows)
        their initial priorities from its own copy of the network, θ for θ⁻ too: the errors
        the learner's update ranks by (algorithms/dqn.py), e.g. |δ| with
            δ = R + γ^m (1 − terminated) max_a' Q(s_m, a'; θ) − Q(s, a; θ)
        every actor_steps steps of its envs: ship (windows, δ, finished episodes); the next
        collect is already queued, so it goes on at once
        take the newest weights the learner has published, without waiting for them
    the learner (this process: rawdqn's DQN, its prioritized replay on the device)
        replay ← what arrives, with priorities (|δ| + ε)^α
        the updates and target syncs owed for the env steps received so far (rawdqn/schedule.py's
        closed forms: train_frequency and gradient_steps set the ratio of updates to data)
        every weights_interval updates: θ into Ray's object store, for the actors

ApexRun is the loop's source (train.drive): one advance takes one shipment, so evaluation,
progress lines, checkpoints and Ctrl-C are the single-process run's. An actor that dies is
restarted by Ray (max_restarts); its unsent windows are lost, the run goes on.
"""
import os
import time

import numpy as np

from rawdqn import bellman, schedule
from rawdqn.errors import UsageError
from rawdqn.train import Trainer

ACTOR_SEED_STRIDE = 10_007   # actor i's envs and exploration are seeded seed + 1 + i · this
MAX_FAILURES = 5             # tries, of RESTART_SECONDS each, for a dead actor to come back
RESTART_SECONDS = 30
QUEUED = 2                   # collect calls queued per actor: it starts the next as soon as one ships


def actor_epsilon(index, num_actors, base=0.4, alpha=7.0):
    """ε_i = base^(1 + α · i / (N − 1)) (Horgan et al. 2018); one actor explores with `base`."""
    if num_actors == 1:
        return base
    return base ** (1.0 + alpha * index / (num_actors - 1))


def epsilon_range(num_actors):
    """The actors' ε_i, as a run's first lines give them."""
    return f"ε_i from {actor_epsilon(0, num_actors):.3g} to {actor_epsilon(num_actors - 1, num_actors):.3g}"


class NStepWindows:
    """n-step windows of N envs' steps, gathered as they come on the actor's host and cut by
    bellman.n_step_window, the function an n-step replay samples with.

    A window starting at step t of an env: R = Σ_{k<m} γ^k r_{t+k}, the observation after its
    last step, that step's `terminated`, and γ^m; m = n, or fewer where the episode ended inside
    it (terminated: no bootstrap; truncated: bootstrap from the true final observation). A
    window is complete once it is whole or its episode ended; `take` hands over the complete ones.
    """

    def __init__(self, num_envs, n_step, discount):
        self.n_step, self.discount = int(n_step), float(discount)
        self.pending = [[] for _ in range(num_envs)]   # per env: (obs, action, reward) of open windows' starts
        self.complete = []   # (obs, action, rewards to the window's end, next_obs, terminated, ended)

    def add(self, obs, action, reward, next_obs, terminated, ended):
        """One step of the N envs ([N, …] each)."""
        for env, pending in enumerate(self.pending):
            pending.append((obs[env], action[env], float(reward[env])))
            finished = bool(ended[env])
            if finished or len(pending) == self.n_step:
                starts = range(len(pending)) if finished else range(1)
                for start in starts:
                    self.complete.append((pending[start][0], pending[start][1], [step[2] for step in pending[start:]],
                                          next_obs[env], bool(terminated[env]) and finished, finished))
                del pending[:len(starts)]

    def take(self, obs_shape):
        """The complete windows as {"obs", "action", "reward" (R), "next_obs", "terminated",
        "discount" (γ^m)} arrays, and forget them."""
        windows, self.complete = self.complete, []
        if not windows:
            empty = np.zeros((0, *obs_shape))
            return {"obs": empty, "action": np.zeros(0, np.int32), "reward": np.zeros(0), "next_obs": empty,
                    "terminated": np.zeros(0), "discount": np.zeros(0)}
        obs, action, rewards, next_obs, terminated, ended = zip(*windows)
        # [W, n] rows: a window's rewards, `ended` at its last step if its episode ended there, then zeros.
        padded, ends = np.zeros((len(windows), self.n_step)), np.zeros((len(windows), self.n_step))
        for row, window_rewards in enumerate(rewards):
            padded[row, :len(window_rewards)] = window_rewards
            ends[row, len(window_rewards) - 1] = ended[row]
        terminated = np.array(terminated, np.float64)
        window_return, discount, _ = bellman.n_step_window(padded, ends * terminated[:, None], ends, self.discount)
        return {"obs": np.stack(obs), "action": np.array(action, np.int32), "reward": window_return.numpy(),
                "next_obs": np.stack(next_obs), "terminated": terminated, "discount": discount.numpy()}


class ApexActor:
    """One actor: N gymnasium envs, a copy of the online network, its own ε (a Ray actor's class)."""

    def __init__(self, env_id, config, seed, index, num_actors, obs_bounds=None):
        import rawdqn  # noqa: F401  (TensorFlow, quietly)
        import tensorflow as tf
        from rawdqn.gym_env import env_kwargs_for, make_envs
        from rawdqn.engine.kernel import compile_kernel
        from rawdqn.algorithms import dqn
        from rawdqn.network import QNetwork
        self.config, self.index = config, int(index)
        actor_seed = seed + 1 + self.index * ACTOR_SEED_STRIDE
        self.envs = make_envs("gymnasium", env_id, config.num_envs, actor_seed, env_kwargs=env_kwargs_for(env_id, config))
        self.obs = self.envs.reset()[0]
        self.spec = self.envs.spec
        self.network = QNetwork(self.spec.obs_dim, self.spec.num_actions, config.hidden, seed=seed,
                                **config.head_options(), obs_bounds=obs_bounds, name="online")
        forward = compile_kernel(lambda obs: self.network(obs), config.mode)
        self.q_values = lambda obs: forward(tf.convert_to_tensor(obs, tf.float32))

        def errors(batch):
            theta = self.network.theta.read_value()
            return dqn.loss(config, self.network, theta, batch, dqn.target(config, self.network, theta, theta, batch))[3]
        self.errors = compile_kernel(errors, config.mode)
        self.epsilon = actor_epsilon(self.index, num_actors, config.actor_epsilon_base, config.actor_epsilon_alpha)
        self.rng = np.random.default_rng([seed, self.index])
        self.windows = NStepWindows(config.num_envs, config.n_step, config.discount)
        self.episode_return = np.zeros(config.num_envs)
        self.version = -1

    def collect(self, weights, version, steps):
        """`steps` steps of the N envs with the newest weights; the windows they completed,
        their TD errors δ under this actor's network, and the episodes that ended."""
        if version > self.version:
            self.network.theta.assign(weights)
            self.version = version
        episodes = []
        for _ in range(int(steps)):
            greedy = np.argmax(self.q_values(self.obs).numpy(), axis=1)
            explore = self.rng.random(len(greedy)) < self.epsilon
            actions = np.where(explore, self.rng.integers(0, self.spec.num_actions, len(greedy)), greedy)
            step = self.envs.step(actions)
            self.windows.add(self.obs, actions, step.reward, step.next_obs, step.no_bootstrap, step.ended)
            self.episode_return += step.reward
            episodes += [float(r) for r in self.episode_return[step.ended]]
            self.episode_return[step.ended] = 0.0
            self.obs = step.obs
        batch = self.windows.take((self.spec.obs_dim,))
        batch["errors"] = self.td_errors(batch)
        batch.update(episodes=episodes, steps=int(steps) * self.config.num_envs, version=self.version,
                     actor=self.index, pid=os.getpid())
        return batch

    def td_errors(self, batch):
        """The errors dqn.loss ranks priorities by (δ, or a distributional head's cross-entropy),
        under this actor's network, with θ for θ⁻ too."""
        import tensorflow as tf
        from rawdqn.replay import Transition
        if len(batch["action"]) == 0:
            return np.zeros(0)
        tensors = {field: tf.convert_to_tensor(batch[field], tf.int32 if field == "action" else tf.float32)
                   for field in ("obs", "action", "reward", "next_obs", "terminated", "discount")}
        return self.errors(Transition(**tensors)).numpy()

    def weights(self):
        """(θ, version) this actor acts with now."""
        return self.network.theta.numpy(), self.version

    def pid(self):
        return os.getpid()


def check_reachable(address, seconds=5.0):
    """A ConnectionError unless HOST:PORT accepts a TCP connection within `seconds` ("auto": Ray's own lookup)."""
    import socket
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=seconds).close()
    except (OSError, ValueError) as error:
        raise ConnectionError(f"nothing answers at {address}: {error}") from None


def start_ray(num_actors, address=None):
    """ray.init on this machine (address None) or joining a cluster; one-line UsageErrors for no
    Ray, an unreachable address, or more actors than the cluster has CPUs (one each; the learner
    is this driver process, outside Ray's count)."""
    if num_actors < 1:
        raise UsageError(f"--actors must be >= 1; got {num_actors}")
    try:
        import ray
    except ImportError:
        raise UsageError('--distributed needs Ray: pip install "rawdqn[distributed]"') from None
    if not ray.is_initialized():
        try:
            if address is None:
                ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
            else:
                check_reachable(address)   # ray.init waits without end for an address nobody answers at
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise UsageError(f"cannot reach a Ray cluster at {address!r} ({str(error).splitlines()[0][:160]}); "
                             "start one with `ray start --head`, or drop --address to run on this machine") from None
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if num_actors > cpus:
        ray.shutdown()
        raise UsageError(f"--actors {num_actors} needs {num_actors} CPUs (one per actor); the Ray cluster has "
                         f"{cpus}: lower --actors or add nodes (ray start --address …)")
    return ray


class ApexRun(Trainer):
    """The learner: the loop's source for an Ape-X run (module docstring). `step` counts the env
    steps the actors have shipped; the agent is a DQN whose replay takes the actors' windows."""

    def __init__(self, env_id, config, seed=0, device=None, run_dir=None, log=print, checkpoint_interval=None,
                 num_actors=2, address=None):
        self.ray = start_ray(num_actors, address)
        super().__init__(env_id, config, seed, device, run_dir, log, checkpoint_interval,
                         agent_options={"prebuilt_windows": True})
        if self.spec.legal_actions or self.spec.discrete_obs or self.spec.frame_shape:
            raise UsageError(f"--distributed runs vector-observation envs without action masks; {env_id} is not one")
        obs_bounds = self.spec.observation_bounds(env_id) if config.scale_observations else None
        remote = self.ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(ApexActor)
        self.actors = [remote.remote(env_id, config, self.seed, i, num_actors, obs_bounds) for i in range(num_actors)]
        try:   # an actor that cannot start is an error now, not a restart loop later
            self.actor_pids = self.ray.get([actor.pid.remote() for actor in self.actors])
        except self.ray.exceptions.RayActorError as error:
            raise UsageError(f"an Ape-X actor failed to start: {str(error).strip().splitlines()[-1][:300]}") from None
        self.pending = {}             # the collect task in flight → its actor
        self.lost_batches = 0         # shipments lost with an actor that died
        self.weights_version = -1
        self.publish()

    def publish(self):
        """θ into the object store (version: the updates made), for the actors' next collect."""
        self.weights_version = int(self.agent.schedule.updates_done.numpy())
        self.weights_ref = self.ray.put(self.agent.online.theta.numpy())

    def submit(self, actor):
        task = actor.collect.remote(self.weights_ref, self.weights_version, self.config.actor_steps)
        self.pending[task] = actor

    def begin(self):
        self.publish()   # a resumed run's restored weights
        self.first_step, self.train_start = self.step, time.perf_counter()
        self.updates_seen = int(self.agent.schedule.updates_done.numpy())
        self.update_clock = (time.perf_counter(), self.updates_seen)
        for actor in self.actors:   # the actors never wait for the learner to take a shipment
            for _ in range(QUEUED):
                self.submit(actor)

    def advance(self):
        """One shipment: into the replay; then the updates and syncs now owed; weights published."""
        (task,), _ = self.ray.wait(list(self.pending), num_returns=1)
        actor = self.pending.pop(task)
        try:
            batch = self.ray.get(task)
        except self.ray.exceptions.RayActorError:   # the actor died: Ray restarts it; its batch is lost
            self.lost_batches += 1
            self.wait_for_restart(actor)
            self.submit(actor)
            return
        self.submit(actor)
        self.store(batch)
        self.learn_owed()

    def wait_for_restart(self, actor):
        """Block until Ray has the actor back (a few seconds: a process and TensorFlow's import);
        one that does not come back within MAX_FAILURES tries stops the run with one line."""
        index = self.actors.index(actor)
        for _ in range(MAX_FAILURES):
            try:
                self.actor_pids[index] = self.ray.get(actor.pid.remote(), timeout=RESTART_SECONDS)
                return
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.GetTimeoutError) as error:
                reason = str(error).strip().splitlines()[-1][:300]
        raise UsageError(f"Ape-X actor {index} did not come back after dying ({reason})")

    def store(self, batch):
        if len(batch["action"]):
            self.agent.replay.add(batch["obs"], batch["action"], batch["reward"], batch["next_obs"], batch["terminated"],
                                  discount=batch["discount"], errors=batch["errors"] if self.config.prioritized else None)
        self.step += batch["steps"]
        for episode_return in batch["episodes"]:
            self.episode_returns.append(episode_return)
            self.episode_lengths.append(0)
            self.episode_end_steps.append(self.step)
            self.directory.write_summary(self.step, {"episode/return": episode_return,
                                                     f"actor_{batch['actor']}/episode_return": episode_return})
        self.directory.write_summary(self.step, {"learner/weight_lag": self.weights_version - batch["version"],
                                                 "learner/replay_size": self.agent.replay.size})

    def learn_owed(self):
        """The updates and target syncs the env steps received so far are owed, as the single-process loop makes them."""
        agent, config, counters = self.agent, self.config, self.agent.schedule
        counters.step.assign(self.step)   # β(t) of the prioritized replay's weights
        owed = schedule.due(config, self.step, int(counters.updates_done.numpy()), int(counters.syncs_done.numpy()))
        if owed.updates > 0 and agent.replay.size >= config.batch_size:
            agent.train(owed.updates)   # keeps its last LearnInfo and notes a divergence, as the loop's updates do
            self.check_finite()
            before = int(counters.updates_done.numpy())
            counters.updates_done.assign_add(owed.updates)
            if (before + owed.updates) // config.weights_interval > before // config.weights_interval:
                self.publish()
        if owed.syncs > 0:
            agent.sync_target(owed.tau)
            counters.syncs_done.assign_add(owed.syncs)

    explores_by_schedule = False   # each actor has its own fixed ε_i

    def log_progress(self, steps_per_second):
        """The progress line, then the learner's: updates/s, replay size, shipments lost (and to TensorBoard)."""
        super().log_progress(steps_per_second)
        now, updates = time.perf_counter(), int(self.agent.schedule.updates_done.numpy())
        then, updates_then = self.update_clock
        rate = (updates - updates_then) / (now - then)
        self.log(f"         learner | {rate:7,.0f} updates/s | replay {self.agent.replay.size:,} | "
                 f"weights v{self.weights_version:,} | shipments lost {self.lost_batches}")
        self.directory.write_summary(self.step, {"learner/updates_per_second": rate,
                                                 "learner/lost_batches": self.lost_batches})
        self.update_clock = (now, updates)

    def extra_state(self):
        return {"distributed": {"actors": len(self.actors), "lost_batches": self.lost_batches}}

    def run(self):
        try:
            return super().run()
        finally:
            self.ray.shutdown()


def resume(saved, device=None, log=print, num_actors=None, address=None):
    """Continue the Ape-X run of `saved` (gym_run.read_resumable): the learner — weights, optimizer,
    replay, counters — from its checkpoint, with new actors on new episodes: as many as before, or
    `num_actors` (with the ε_i of that many), recorded as a change like any other."""
    from rawdqn import gym_run
    arguments = {key: value for key, value in saved.trainer_args.items() if key not in ("env_source", "env_seed")}
    before = saved.state["distributed"]["actors"]
    num_actors = before if num_actors is None else int(num_actors)
    run = ApexRun(device=device, log=log, num_actors=num_actors, address=address, **arguments)
    gym_run.restore(run, saved)
    if num_actors != before:
        run.changes.append({"step": run.step, "field": "actors", "from": before, "to": num_actors})
        run.history.append({"step": run.step, "config_change": {"actors": [before, num_actors]}})
        run.write_logs()
        log(f"rawdqn: from step {run.step:,}: actors {before} → {num_actors}")
    log(f"rawdqn: Ape-X resumed with {len(run.actors)} new actors ({epsilon_range(num_actors)}); "
        "their episodes start anew")
    return run.run()


def train(env_id, config, seed=0, device=None, logdir=None, log=print, checkpoint_interval=None, num_actors=2,
          address=None):
    """An Ape-X run of `num_actors` actors (rawdqn train --distributed); returns a TrainResult."""
    from rawdqn import gym_run
    config = config.validate()
    gym_run.check_new_run_dir(logdir)
    run = ApexRun(env_id, config, seed, device, logdir, log, checkpoint_interval, num_actors, address)
    gym_run.start(run)
    log(f"rawdqn: Ape-X with {num_actors} actors ({epsilon_range(num_actors)}), weights published every "
        f"{config.weights_interval} updates")
    log("rawdqn: Ape-X replay: prioritized by the actors' TD errors (Horgan et al. 2018)" if config.prioritized else
        "rawdqn: Ape-X replay: uniform (--no-prioritized), an ablation of Horgan et al.'s prioritized replay")
    return run.run()
