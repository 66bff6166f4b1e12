"""The training loop: the one place that decides when to act, store, learn, sync, log and evaluate.

    for t = 0 … T−1:
        a_t  = ε-greedy(Q(s_t; θ), ε(t))
        s_{t+1}, r_t, terminated, truncated = env.step(a_t)
        replay ← (s_t, a_t, r_t, s_{t+1}, terminated)   # s_{t+1} is the true final obs
        if terminated or truncated: s_{t+1} = env.reset()
        every train_frequency steps (after learning_starts): gradient_steps × learn(sample)
        every target_update_interval steps: θ⁻ ← τθ + (1 − τ)θ⁻

Everything after env.step — store, learn if due, sync if due, and the next ε-greedy
action — is one compiled call, `agent.step` (rawdqn/schedule.py says what is due, from
counters on the device); Python steps the environment and keeps the episode bookkeeping.
`drive` is that loop's host side for every source: gymnasium and envpool envs (Trainer,
one env step per advance) and the TF envs on the device (rawdqn/ondevice.py, whose
compiled program runs the same `agent.observe_fn` K iterations per advance).
With a run directory, the loop also writes a checkpoint every checkpoint_interval steps
and at the end; SIGINT or SIGTERM writes one and stops; `resume` continues from one
exactly. A loss or Q-value that is not finite stops the run (TrainingDiverged).
"""
import dataclasses
import os
import time

import numpy as np

from rawdqn import checkpoint, summary
from rawdqn.agent import DQN
from rawdqn.config import check_seed, preset
from rawdqn.device import resolve_device
from rawdqn.errors import UsageError
from rawdqn.gym_env import FRESH_EVAL_SEED, SELECTION_EVAL_SEED, EnvError, evaluate, make_envs
from rawdqn.kernel import compile_seconds
from rawdqn.rundir import RunDirectory, config_record, TrainingInterrupted, prepare_run_dir  # noqa: F401 (TrainingInterrupted: re-exported)
from rawdqn.schedule import crosses, hooks_due


@dataclasses.dataclass
class TrainResult:
    agent: DQN
    episode_returns: list
    eval_mean: float
    eval_std: float
    steps_per_second: float
    history: list


class TrainingDiverged(UsageError):
    """The loss or a Q-value became NaN or infinite; the message names the step."""


DIVERGENCE_CHECK_INTERVAL = 1_000   # steps between reads of the agent's divergence flag (besides the hooks)
VALIDATION_SIZE = 512       # fixed observations for the average max Q (the tutorials' avg_max_q_value)
RECENT_EPISODES = 20
# What a resumed run cannot change: the shapes and dtypes of the variables it restores.
# Every other hyperparameter may change from the step it resumes at (recorded in config.json
# and history.jsonl); with none changed, the run continues bit for bit.
FIXED_FIELDS = ("hidden", "replay_capacity", "optimizer", "dtype", "num_envs")


def drive(run):
    """The loop's host side, for every environment source: advance until total_steps, and
    after each advance the hooks that fall due — divergence check, evaluation, progress
    line, checkpoint, stop on a signal — then finish.

    `run.advance()` is one environment step and one compiled call for gymnasium and
    envpool envs (Trainer), one call of K iterations for the TF envs on the device
    (rawdqn/ondevice.py's OnDeviceRun); it moves `run.step` on by the steps it made. A hook
    is due when the step count crosses a multiple of its interval (schedule.hooks_due).
    """
    config, directory = run.config, run.directory
    with run.opened():
        run.begin()
        # steps/s of training alone: what run.seconds_aside() counts (compilation, evaluations) is set aside.
        window = (time.perf_counter(), run.step, run.seconds_aside())
        while run.step < run.total_steps:
            done_before = run.step
            run.advance()
            due = hooks_due(config, directory.saving_interval, done_before, run.step)
            if due.evaluate or due.log or due.checkpoint or crosses(DIVERGENCE_CHECK_INTERVAL, done_before, run.step):
                run.check_finite()
            if due.evaluate:
                run.evaluate_now()
            if due.log:
                (start, step, aside), now, now_aside = window, time.perf_counter(), run.seconds_aside()
                run.log_progress((run.step - step) / max(now - start - (now_aside - aside), 1e-9))
                window = (now, run.step, now_aside)
            if due.checkpoint:
                run.save_checkpoint()
            directory.stop_if_signalled(run.step, run.save_checkpoint)
        return run.finish()


def check_finite(agent, directory, who=""):
    """Stop with TrainingDiverged if an update's loss, mean max Q or gradient norm was not finite."""
    diverged_at = int(agent.diverged_at.numpy())
    if diverged_at < 0:
        return
    values = agent.diverged_info.numpy()
    label, value = next((label, value) for label, value in
                        zip(("loss", "mean max Q-value", "gradient norm"), values) if not np.isfinite(value))
    raise TrainingDiverged(
        f"{who}training diverged at step {diverged_at:,}: the {label} became {value} after a "
        f"gradient update; {directory.last_good()}. Try a lower --learning-rate, --max-grad-norm or --loss huber")


class Trainer:
    """One run: the environment, the agent, and the loop's host-side state.

    The agent (a tf.Module) holds every tensor; the Trainer holds the rest — the step,
    the episode in progress, the returns so far, the current observation — and
    `loop_state()` / `restore_loop_state()` are exactly what a checkpoint adds to the
    agent's variables.
    """

    def __init__(self, env_id, config, seed=0, device=None, run_dir=None, log=print,
                 checkpoint_interval=None, vectorize=None, env_kwargs=None, action_masks=True,
                 agent_options=None, on_step=None, env_source="gymnasium", env_seed=None):
        """For callers that study a run (rawdqn verify), not for `rawdqn train`'s runs, which
        do not save them: env_kwargs go to gym.make, action_masks=False ignores an env's
        action masks, agent_options to DQN (use_bias, initializer), and on_step(trainer,
        obs, actions, env_step) runs after every environment step with the observations
        acted on and the actions taken. env_source: "gymnasium" or "envpool" (gym_env.make_envs);
        env_seed: the environments' seed, if not `seed`."""
        self.env_id, self.config, self.seed, self.log = env_id, config.validate(), check_seed(seed), log
        self.directory = RunDirectory(run_dir, checkpoint_interval)
        self.env_source = env_source
        self.envs = make_envs(env_source, env_id, self.config.num_envs, self.seed if env_seed is None else env_seed,
                              vectorize, env_kwargs, action_masks)
        self.first_reset = self.envs.reset()
        self.new_episodes = True           # the envs are at first_reset (not at a checkpoint's state)
        self.spec = self.envs.spec
        self.on_step = on_step
        self.agent = DQN(self.spec.obs_dim, self.spec.num_actions, self.config, seed=self.seed,
                         discrete_obs=self.spec.discrete_obs, legal_actions=self.spec.legal_actions,
                         device=resolve_device(device), num_envs=self.config.num_envs, **(agent_options or {}))
        self.agent.sync_target()
        self.step = 0                      # environment steps done (num_envs per loop iteration)
        num_envs = self.config.num_envs    # the episodes in progress, one per environment
        self.episode_return, self.episode_length = [0.0] * num_envs, [0] * num_envs
        self.episode_returns, self.episode_lengths, self.episode_end_steps = [], [], []
        self.history = []
        self.validation_obs = None
        self.best, self.best_weights = None, []   # keep_best: the best periodic evaluation
        self.changes = []                  # hyperparameters changed on resume: {step, field, from, to}
        self.final_evaluation = None       # the seed, episodes and result of the last evaluation
        self.eval_seconds = 0.0            # time spent in periodic evaluations (not in steps/s)

    @property
    def run_dir(self):
        return self.directory.path

    # --- the gymnasium source's part of the loop (drive calls these) ------------
    @property
    def total_steps(self):
        return self.config.total_steps

    def opened(self):
        return self.directory.open(self.logs_on_failure)

    def begin(self):
        """The first actions: for the first observations, or as the checkpoint left them."""
        self.first_step, self.train_start = self.step, time.perf_counter()
        if self.new_episodes:
            self.actions, self.obs = self.agent.begin(*self.first_reset).numpy(), self.first_reset[0]
        else:   # chosen before the checkpoint was written, and saved with the agent
            self.actions, self.obs = self.agent.last_action.numpy(), self.agent.current_obs.numpy()

    def advance(self):
        """One environment step of the N envs and one compiled call, `agent.step`: it stores
        the N transitions, makes the updates and the target sync the schedule says are
        due, and returns the next N actions. With N > 1 the run ends at the first multiple
        of N at or past total_steps."""
        step = self.envs.step(self.actions)
        if not np.all(np.isfinite(step.reward)):
            raise EnvError(f"{self.env_id} returned a non-finite reward "
                           f"({step.reward[~np.isfinite(step.reward)][0]}) at step {self.step + 1:,}")
        acted, taken, self.obs = self.obs, self.actions, step.obs
        # The replay gets the true final observation; terminated (not truncated) stops bootstrapping.
        self.actions = self.agent.step(step.next_obs, step.reward, step.terminated, step.obs,
                                       step.next_legal, step.legal).numpy()
        self.step += self.config.num_envs
        if self.on_step:
            self.on_step(self, acted, taken, step)
        self.count_episodes(step)

    def finish(self):
        """The final greedy evaluation (of the kept weights, with keep_best), and the last checkpoint."""
        config = self.config
        total_time = time.perf_counter() - self.train_start
        eval_mean, eval_std = self.evaluate_now(final=True)
        eval_seed = self.seed + SELECTION_EVAL_SEED
        if config.keep_best:
            eval_mean, eval_std = self.keep_best_weights(eval_mean)
            eval_seed = self.seed + FRESH_EVAL_SEED
        # `rawdqn eval RUN` replays these episodes by default and prints the same number.
        self.final_evaluation = {"seed": eval_seed, "episodes": config.eval_episodes,
                                 "mean": eval_mean, "std": eval_std}
        self.log(f"evaluation: mean return {eval_mean:.2f} ± {eval_std:.2f} over {config.eval_episodes} "
                 f"greedy episodes ({self.step - self.first_step:,} steps in {total_time:.1f} s)")
        if self.run_dir:
            self.save_checkpoint()
        return TrainResult(self.agent, self.episode_returns, eval_mean, eval_std,
                           (self.step - self.first_step) / total_time, self.history)

    def run(self):
        """Train from `self.step` to total_steps, then evaluate the greedy policy (see drive)."""
        result = drive(self)
        self.envs.close()
        return result

    def count_episodes(self, step):
        """Add each environment's reward to its episode; record the episodes that ended."""
        for i, (reward, ended) in enumerate(zip(step.reward.tolist(), step.ended.tolist())):
            self.episode_return[i] += reward
            self.episode_length[i] += 1
            if ended:
                self.end_episode(i, self.step)

    def end_episode(self, env_index, done_steps):
        episode_return, episode_length = self.episode_return[env_index], self.episode_length[env_index]
        self.episode_returns.append(episode_return)
        self.episode_lengths.append(episode_length)
        self.episode_end_steps.append(done_steps)
        self.directory.write_summary(done_steps, {"episode/return": episode_return, "episode/length": episode_length})
        self.episode_return[env_index], self.episode_length[env_index] = 0.0, 0

    def check_finite(self):
        check_finite(self.agent, self.directory)

    def seconds_aside(self):
        """Seconds so far that were not training: kernel compilation and greedy evaluations."""
        return compile_seconds() + self.eval_seconds

    def evaluate_now(self, final=False):
        start, compiling = time.perf_counter(), compile_seconds()
        eval_mean, eval_std = evaluate(self.agent, self.env_id, self.config.eval_episodes,
                                       self.seed + SELECTION_EVAL_SEED, self.spec, self.envs.env_kwargs)
        self.eval_seconds += time.perf_counter() - start - (compile_seconds() - compiling)
        self.history.append({"step": self.step, "eval_mean": eval_mean, "eval_std": eval_std})
        if not final:
            self.log(f"step {self.step:>8,} | eval return {eval_mean:8.2f} ± {eval_std:.2f}")
            if self.config.keep_best and (self.best is None or eval_mean >= self.best["eval_mean"]):
                # Ties go to the later, longer-trained weights.
                self.best = {"step": self.step, "eval_mean": eval_mean}
                self.best_weights = [v.numpy() for v in self.agent.online.variables_in_order]
        self.directory.write_summary(self.step, {"eval/return_mean": eval_mean, "eval/return_std": eval_std})
        return eval_mean, eval_std

    def keep_best_weights(self, final_mean):
        """Swap in the best-evaluated weights if they beat the final ones, then evaluate the
        kept policy on fresh episodes (the selection episodes would flatter it)."""
        best = self.best
        if best is not None and best["eval_mean"] > final_mean:
            for weights in (self.agent.online, self.agent.target):
                for variable, value in zip(weights.variables_in_order, self.best_weights):
                    variable.assign(value)
            self.log(f"final weights: eval return {final_mean:.2f}; keeping the weights of step "
                     f"{best['step']:,} (eval return {best['eval_mean']:.2f})")
        else:
            self.log(f"final weights: eval return {final_mean:.2f}; keeping them (the best so far)")
        return evaluate(self.agent, self.env_id, self.config.eval_episodes,
                        self.seed + FRESH_EVAL_SEED, self.spec, self.envs.env_kwargs)

    def log_progress(self, steps_per_second):
        epsilon = self.config.epsilon_at(self.step - 1)
        recent = self.episode_returns[-RECENT_EPISODES:]
        learned = {}
        if int(self.agent.schedule.updates_done.numpy()) > 0:
            learned = {name: float(variable.numpy()) for name, variable in self.agent.last_info._asdict().items()}
            if self.validation_obs is None:
                # The first observations collected, fixed for the rest of the run.
                self.validation_obs = self.agent.replay.obs[:min(self.agent.replay.size, VALIDATION_SIZE)].numpy()
        row = {"step": self.step, "steps_per_second": steps_per_second,
               "episodes": len(self.episode_returns),
               "recent_return": float(np.mean(recent)) if recent else float("nan"),
               "epsilon": epsilon,
               "loss": learned.get("loss", float("nan")),
               "mean_abs_td_error": learned.get("mean_abs_td_error", float("nan")),
               "mean_max_q": learned.get("mean_max_q", float("nan")),
               "avg_max_q_validation": self.average_max_q()}
        self.history.append(row)
        loss_text = f"{row['loss']:.4f}" if learned else "-"
        self.log(f"step {self.step:>8,}/{self.config.total_steps:,} | {steps_per_second:7,.0f} steps/s | "
                 f"return(last {len(recent)}) {row['recent_return']:8.2f} | loss {loss_text} | "
                 f"eps {epsilon:.3f}")
        self.directory.write_summary(self.step, {
            "train/loss": row["loss"], "train/mean_abs_td_error": row["mean_abs_td_error"],
            "train/mean_max_q": row["mean_max_q"], "train/avg_max_q_validation": row["avg_max_q_validation"],
            "train/epsilon": epsilon, "train/steps_per_second": steps_per_second})

    def average_max_q(self):
        """mean over the validation observations of max_a Q(s, a; θ)."""
        if self.validation_obs is None:
            return float("nan")
        return float(np.mean(np.max(self.agent.q_values(self.validation_obs).numpy(), axis=-1)))

    # --- checkpoints -----------------------------------------------------------
    def save_checkpoint(self):
        """Write everything needed to continue exactly, and the logs; returns the checkpoint's path."""
        state = {"env_id": self.env_id, "env_source": self.env_source, "seed": self.seed,
                 "config": dataclasses.asdict(self.config),
                 "spec": dataclasses.asdict(self.spec), "step": self.step, "loop": self.loop_state(),
                 "checkpoint_interval": self.directory.checkpoint_interval, "changes": self.changes,
                 "final_evaluation": self.final_evaluation}
        # The observation acted on and the action chosen are the agent's variables.
        arrays = {}
        if self.validation_obs is not None:
            arrays["validation_obs"] = self.validation_obs
        arrays.update({f"best_weight_{i}": value for i, value in enumerate(self.best_weights)})
        return self.directory.save(self.step, self.agent, state, arrays,
                                   self.envs.saved_state(), self.logs())

    def loop_state(self):
        return {"episode_return": self.episode_return, "episode_length": self.episode_length,
                "episode_returns": self.episode_returns, "episode_lengths": self.episode_lengths,
                "episode_end_steps": self.episode_end_steps, "history": self.history, "best": self.best}

    def restore_loop_state(self, state, arrays):
        loop = state["loop"]
        self.step = int(state["step"])
        # Checkpoints from before vector envs hold one episode in progress, not a list.
        self.episode_return = list(np.atleast_1d(loop["episode_return"]).tolist())
        self.episode_length = list(np.atleast_1d(loop["episode_length"]).tolist())
        self.episode_returns, self.episode_lengths = loop["episode_returns"], loop["episode_lengths"]
        self.episode_end_steps, self.history = loop["episode_end_steps"], loop["history"]
        self.best = loop.get("best")
        count = len([key for key in arrays if key.startswith("best_weight_")])
        self.best_weights = [arrays[f"best_weight_{i}"] for i in range(count)]
        self.validation_obs = arrays.get("validation_obs")

    def logs(self):
        """What config.json, history.jsonl and episodes.jsonl hold now."""
        return {"config": config_record(self.env_id, self.seed, self.config, self.changes,
                                        checkpoint_interval=self.directory.checkpoint_interval,
                                        env_source=self.env_source),
                "history": self.history,
                "episodes": [{"step": step, "return": ret, "length": length} for step, ret, length
                             in zip(self.episode_end_steps, self.episode_returns, self.episode_lengths)]}

    def logs_on_failure(self, reason):
        self.history.append({"step": self.step, "stopped": reason})
        return self.logs()

    def write_logs(self):
        self.directory.write_logs(self.logs())


def train(env_id="CartPole-v1", config=None, seed=0, device=None, logdir=None, log=print,
          checkpoint_interval=None, env_source="gymnasium"):
    """Train a DQN on `env_id` and evaluate its greedy policy; returns a TrainResult.

    With `logdir`, the run writes config.json, history.jsonl, episodes.jsonl, TensorBoard
    events and a checkpoint every `checkpoint_interval` steps and at the end, and
    SIGINT/SIGTERM save a checkpoint before stopping (raising TrainingInterrupted).
    env_source: "gymnasium" or "envpool" (rawdqn/gym_env.py's make_envs).
    """
    config = (config or preset(env_id)).validate()
    if logdir and checkpoint.latest(logdir):
        raise UsageError(f"{logdir} already holds a run; continue it with --resume {logdir} "
                         "or choose another --logdir")
    if logdir and os.path.exists(os.path.join(logdir, "config.json")):
        raise UsageError(f"{logdir} holds the logs of a run that stopped before its first checkpoint "
                         "(see its history.jsonl); choose another --logdir or delete that one")
    trainer = Trainer(env_id, config, seed, device, logdir, log, checkpoint_interval, env_source=env_source)
    if logdir:
        prepare_run_dir(logdir)  # after the environment is known to work: no empty run dirs
    envs = (f" × {config.num_envs} (envpool)" if env_source == "envpool" else
            f" × {config.num_envs} (a gymnasium vector env)" if config.num_envs > 1 else "")
    log(f"rawdqn: training DQN on {env_id}{envs} for {config.total_steps:,} steps (seed {seed}, "
        f"{trainer.agent.online.num_parameters:,} parameters, {config.mode} kernels)")
    log(f"rawdqn: {config.describe_exploration()}")
    if logdir:
        trainer.write_logs()
        log(f"rawdqn: logs and checkpoints in {logdir} (every {trainer.directory.checkpoint_interval:,} steps); "
            f"continue an interrupted run with: rawdqn train --resume {logdir}")
    return trainer.run()


def resume(path, device=None, log=print, checkpoint_interval=None, env_id=None, seed=None, **changes):
    """Continue the run whose checkpoint is at `path` (a run directory or one checkpoint).

    The run keeps every setting it was started with (its checkpoint interval too) except
    the `changes` given here, which take effect at the resumed step and are recorded in
    config.json and history.jsonl. `env_id`, `seed` and FIXED_FIELDS cannot change.
    """
    run_dir, checkpoint_dir = checkpoint.find(path)
    state, arrays, env_saved = checkpoint.load_state(checkpoint_dir)
    if state.get("on_device"):   # one agent's run directory inside an on-device run with several seeds
        raise checkpoint.CheckpointError(f"{run_dir} is one agent of the on-device run in {os.path.dirname(run_dir)}; "
                                         f"resume the whole run: rawdqn train --resume {os.path.dirname(run_dir)}")
    saved = checkpoint.config_from_state(state, checkpoint_dir)
    if env_id is not None and env_id != state["env_id"]:
        raise checkpoint.CheckpointError(f"{path} is a run on {state['env_id']}, not {env_id}; "
                                         "a resumed run keeps its environment")
    if seed is not None and int(seed) != state["seed"]:
        raise checkpoint.CheckpointError(f"{path} is a run with seed {state['seed']}, not {seed}; "
                                         "a resumed run keeps its seed")
    for name in FIXED_FIELDS:
        if name in changes and changes[name] != getattr(saved, name):
            raise checkpoint.CheckpointError(
                f"--{name.replace('_', '-')} {changes[name]} differs from the checkpoint's {getattr(saved, name)}; "
                f"a resumed run keeps the shapes of what it restores ({', '.join('--' + f.replace('_', '-') for f in FIXED_FIELDS)}); "
                "every other hyperparameter may change")
    config = saved.resumed_with(**changes).validate()
    if config.total_steps <= state["step"]:
        raise UsageError(f"{path} has already run {state['step']:,} of {config.total_steps:,} steps; "
                         f"pass --steps above {state['step']:,} to train further")
    prepare_run_dir(run_dir)
    interval = checkpoint_interval or state.get("checkpoint_interval")
    env_source = state.get("env_source", "gymnasium")
    # envpool's state cannot be saved: its envs start new episodes, from a seed of their own.
    env_seed = state["seed"] + state["step"] if env_source == "envpool" else None
    trainer = Trainer(state["env_id"], config, state["seed"], device, run_dir, log, interval,
                      env_source=env_source, env_seed=env_seed)
    if dataclasses.asdict(trainer.spec) != state["spec"]:
        raise checkpoint.CheckpointError(
            f"{checkpoint_dir} was made on an environment with spaces {state['spec']}, but "
            f"{state['env_id']} now has {dataclasses.asdict(trainer.spec)}")
    checkpoint.restore_agent(checkpoint_dir, trainer.agent)
    try:
        continued = trainer.envs.restore_state(env_saved)
        trainer.new_episodes = not continued
        trainer.restore_loop_state(state, arrays)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise checkpoint.CheckpointError(f"checkpoint {checkpoint_dir} is corrupt "
                                         f"({type(error).__name__}: {error})") from None
    trainer.changes = list(state.get("changes", []))
    changed = {name: (getattr(saved, name), getattr(config, name)) for name in dataclasses.asdict(config)
               if getattr(saved, name) != getattr(config, name)}
    if changed:
        trainer.changes += [{"step": trainer.step, "field": name, "from": old, "to": new}
                            for name, (old, new) in changed.items()]
        trainer.history.append({"step": trainer.step, "config_change": {name: [old, new] for name, (old, new)
                                                                         in changed.items()}})
    # An older checkpoint becomes the latest, so later saves never replace the one `latest` names.
    checkpoint.publish(checkpoint.checkpoints_dir(run_dir), os.path.basename(checkpoint_dir))
    trainer.directory.last_checkpoint, trainer.directory.saved_step = checkpoint_dir, trainer.step
    summary.drop_after(run_dir, trainer.step)
    trainer.write_logs()
    log(f"rawdqn: resuming DQN on {state['env_id']} at step {trainer.step:,} of {config.total_steps:,} "
        f"(seed {state['seed']}, from {checkpoint_dir}; checkpoints every {trainer.directory.checkpoint_interval:,} steps)")
    for name, (old, new) in changed.items():
        log(f"rawdqn: from step {trainer.step:,}: {name} {old} → {new}")
    if not continued:
        trainer.episode_return = [0.0] * config.num_envs
        trainer.episode_length = [0] * config.num_envs
        log(f"rawdqn: {env_source} cannot save its environments' state: the episodes in progress at step "
            f"{trainer.step:,} are dropped and new ones begin (the agent, its replay and counters continue from the checkpoint)")
    log(f"rawdqn: {config.describe_exploration()}")
    return trainer.run()
