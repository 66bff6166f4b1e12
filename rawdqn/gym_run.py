"""A gymnasium run's state and hooks: what `train.drive` calls around the loop.

The agent (a tf.Module) holds every tensor; a GymnasiumRun holds the rest — the step, the
episodes in progress, the returns so far, the evaluations — and what its hooks do:
evaluate greedily and keep the best weights, write the progress line and TensorBoard,
checkpoint (`loop_state()` / `restore_loop_state()` are exactly what a checkpoint adds to
the agent's variables), and prepare a new run directory or a resumed one. The loop itself,
act → step → store → learn → sync, is rawdqn/train.py's `Trainer` and `drive`.
"""
import dataclasses
import os
import time

import numpy as np

from rawdqn import checkpoint, compat, keep_best, schedule, summary
from rawdqn.agent import DQN
from rawdqn.policy_agent import PolicyGradientAgent
from rawdqn.pqn_agent import PixelPQN, PQNAgent
from rawdqn.pixel_agent import PixelDQN
from rawdqn.config import check_seed
from rawdqn.device import resolve_device
from rawdqn.errors import UsageError
from rawdqn.evaluation import FRESH_EVAL_SEED, SELECTION_EVAL_SEED, evaluate
from rawdqn.gym_env import EnvSpec, env_kwargs_for, make_envs, time_limit
from rawdqn.engine.kernel import compile_seconds
from rawdqn.rundir import RunDirectory, config_record, prepare_run_dir

VALIDATION_SIZE = 512       # fixed observations for the average max Q (the tutorials' avg_max_q_value)
RECENT_EPISODES = 20
# What a resumed run cannot change: the shapes and dtypes of the variables it restores.
# Every other hyperparameter may change from the step it resumes at (recorded in config.json
# and history.jsonl); with none changed, the run continues bit for bit.
# Fixed for a run's life: the shapes of what a checkpoint holds, and the env options restoring
# its environments' state would silently overwrite (no-op starts, MinAtar's sticky actions).
FIXED_FIELDS = ("hidden", "convs", "history", "replay_capacity", "optimizer", "dtype", "num_envs",
                "noop_max", "sticky_actions", "terminal_on_life_loss")


class GymnasiumRun:
    """One run on gymnasium (or envpool) environments: the envs, the agent, the host-side state, the hooks."""

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
        env_kwargs = env_kwargs_for(env_id, self.config, env_kwargs)
        self.envs = make_envs(env_source, env_id, self.config.num_envs, self.seed if env_seed is None else env_seed,
                              vectorize, env_kwargs, action_masks, self.config.terminal_on_life_loss)
        self.first_reset = self.envs.reset()
        self.new_episodes = True           # the envs are at first_reset (not at a checkpoint's state)
        self.spec = self.envs.spec
        self.on_step = on_step
        self.agent = make_agent(self.spec, self.config, self.seed, resolve_device(device), agent_options, env_id)
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
    def seconds_aside(self):
        """Seconds so far that were not training: kernel compilation and greedy evaluations."""
        return compile_seconds() + self.eval_seconds

    def evaluate_now(self, final=False):
        start, compiling = time.perf_counter(), compile_seconds()
        eval_mean, eval_std = evaluate(self.agent, self.env_id, self.config.eval_episodes,
                                       self.seed + SELECTION_EVAL_SEED, self.spec, self.envs.env_kwargs, self.config)
        self.eval_seconds += time.perf_counter() - start - (compile_seconds() - compiling)
        self.history.append({"step": self.step, "eval_mean": eval_mean, "eval_std": eval_std})
        if not final:
            self.log(f"step {self.step:>8,} | eval return {eval_mean:8.2f} ± {eval_std:.2f}")
            if self.config.keep_best and keep_best.is_best(eval_mean, self.best and self.best["eval_mean"]):
                self.best = {"step": self.step, "eval_mean": eval_mean}
                self.best_weights = [v.numpy() for v in self.agent.online.variables_in_order]
        self.directory.write_summary(self.step, {"eval/return_mean": eval_mean, "eval/return_std": eval_std})
        return eval_mean, eval_std

    def keep_best_weights(self, final_mean):
        """Swap in the best-evaluated weights if they beat the final ones, then evaluate the
        kept policy on fresh episodes (the selection episodes would flatter it)."""
        best = self.best
        if not keep_best.is_best(final_mean, best and best["eval_mean"]):
            keep_best.put_back(self.best_weights, self.agent)
            self.log(f"final weights: eval return {final_mean:.2f}; keeping the weights of step "
                     f"{best['step']:,} (eval return {best['eval_mean']:.2f})")
        else:
            self.log(f"final weights: eval return {final_mean:.2f}; keeping them (the best so far)")
        return evaluate(self.agent, self.env_id, self.config.eval_episodes,
                        self.seed + FRESH_EVAL_SEED, self.spec, self.envs.env_kwargs, self.config)

    def log_progress(self, steps_per_second):
        epsilon = schedule.epsilon(self.config, self.step - 1)
        recent = self.episode_returns[-RECENT_EPISODES:]
        learned = {}
        updates = int(self.agent.schedule.updates_done.numpy())
        return_text = f"return(last {len(recent)}) {np.mean(recent):8.2f}" if recent else "no episode ended yet"
        if self.config.algo in ("reinforce", "a2c"):
            return self.log_policy_progress(steps_per_second, recent, return_text, updates)
        if updates > 0:
            learned = {name: float(variable.numpy()) for name, variable in self.agent.last_info._asdict().items()}
            if self.validation_obs is None:
                # The first observations collected, fixed for the rest of the run.
                self.validation_obs = self.agent.first_observations(VALIDATION_SIZE)
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
                 f"{return_text} | loss {loss_text}" + (f" | eps {epsilon:.3f}" if self.explores_by_schedule else ""))
        self.directory.write_summary(self.step, {
            "train/loss": row["loss"], "train/mean_abs_td_error": row["mean_abs_td_error"],
            "train/mean_max_q": row["mean_max_q"], "train/avg_max_q_validation": row["avg_max_q_validation"],
            "train/epsilon": epsilon, "train/steps_per_second": steps_per_second})

    def log_policy_progress(self, steps_per_second, recent, return_text, updates):
        """log_progress for a policy-gradient agent: its loss's parts, the policy's entropy, the updates made."""
        learned = {name: float(variable.numpy()) for name, variable in self.agent.last_info._asdict().items()}
        row = {"step": self.step, "steps_per_second": steps_per_second, "episodes": len(self.episode_returns),
               "recent_return": float(np.mean(recent)) if recent else float("nan"), "updates": updates, **learned}
        self.history.append(row)
        learned_text = f"loss {row['loss']:.4f} | entropy {row['entropy']:.3f}" if updates else "loss -"
        total = self.config.total_updates
        clock = (f"update {updates:>6,}/{total:,} | step {self.step:>8,}" if total else
                 f"step {self.step:>8,}/{self.config.total_steps:,} | updates {updates:,}")
        self.log(f"{clock} | {steps_per_second:7,.0f} steps/s | {return_text} | {learned_text}")
        self.directory.write_summary(self.step, {**{f"train/{name}": value for name, value in learned.items()},
                                                 "train/updates": updates, "train/steps_per_second": steps_per_second})

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
                 "final_evaluation": self.final_evaluation, **self.extra_state()}
        # The observation acted on and the action chosen are the agent's variables.
        arrays = {}
        if self.validation_obs is not None:
            arrays["validation_obs"] = self.validation_obs
        arrays.update({f"best_weight_{i}": value for i, value in enumerate(self.best_weights)})
        return self.directory.save(self.step, self.agent, state, arrays,
                                   self.envs.saved_state(), self.logs())

    # ε follows config's schedule (an Ape-X run's actors each have their own fixed ε instead).
    explores_by_schedule = True

    def extra_state(self):
        """What a kind of run adds to its checkpoint's state.json (an Ape-X run: its actors)."""
        return {}

    def loop_state(self):
        return {"episode_return": self.episode_return, "episode_length": self.episode_length,
                "episode_returns": self.episode_returns, "episode_lengths": self.episode_lengths,
                "episode_end_steps": self.episode_end_steps, "history": self.history, "best": self.best}

    def restore_loop_state(self, state, arrays):
        loop = state["loop"]
        self.step = int(state["step"])
        self.episode_return = compat.per_env(loop["episode_return"])
        self.episode_length = compat.per_env(loop["episode_length"])
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




def make_agent(spec, config, seed, device=None, agent_options=None, env_id=None):
    """The agent config.algo names for an env's spaces: REINFORCE (its buffer holds episodes of
    up to env_id's time limit), A2C or PQN; PixelDQN (conv network, frame replay) where observations
    are frames, else DQN (MLP, transition replay)."""
    if config.scale_observations:
        agent_options = {**(agent_options or {}), "obs_bounds": spec.observation_bounds(env_id or "the env")}
    if config.algo == "pqn" and spec.frame_shape:
        return PixelPQN(spec.frame_shape, spec.num_actions, config, seed=seed, device=device, num_envs=config.num_envs,
                        frame_max=spec.frame_max)
    if config.algo == "pqn":
        return PQNAgent(spec.obs_dim, spec.num_actions, config, seed=seed, discrete_obs=spec.discrete_obs,
                        legal_actions=spec.legal_actions, device=device, num_envs=config.num_envs,
                        **(agent_options or {}))
    if config.algo != "dqn":
        episode_steps = time_limit(env_id, config) if config.algo == "reinforce" and env_id else None
        if config.algo == "reinforce" and episode_steps is None:
            raise UsageError("--algo reinforce learns from whole episodes and this env has no time limit; "
                             "give it one with --max-episode-steps")
        return PolicyGradientAgent(spec.obs_dim, spec.num_actions, config, episode_steps, seed=seed,
                                   discrete_obs=spec.discrete_obs, legal_actions=spec.legal_actions, device=device,
                                   num_envs=config.num_envs, **(agent_options or {}))
    if spec.frame_shape:
        if agent_options:
            raise UsageError("a pixel agent takes no agent options (nor --scale-observations)")
        try:
            return PixelDQN(spec.frame_shape, spec.num_actions, config, seed=seed, device=device,
                            num_envs=config.num_envs, frame_max=spec.frame_max)
        except ValueError as error:   # no conv layers, or a conv that does not fit the frames
            raise UsageError(str(error)) from None
    return DQN(spec.obs_dim, spec.num_actions, config, seed=seed, discrete_obs=spec.discrete_obs,
               legal_actions=spec.legal_actions, device=device, num_envs=config.num_envs, **(agent_options or {}))


# --- a new run, a resumed run ----------------------------------------------------
def check_new_run_dir(logdir):
    """A one-line UsageError if `logdir` already holds a run or its logs."""
    if logdir and checkpoint.latest(logdir):
        raise UsageError(f"{logdir} already holds a run; continue it with --resume {logdir} "
                         "or choose another --logdir")
    if logdir and os.path.exists(os.path.join(logdir, "config.json")):
        raise UsageError(f"{logdir} holds the logs of a run that stopped before its first checkpoint "
                         "(see its history.jsonl); choose another --logdir or delete that one")


def start(run):
    """Create the run directory (after the environment is known to work: no empty run
    dirs), write its first logs and say what the run will do."""
    config, logdir, log = run.config, run.run_dir, run.log
    if logdir:
        prepare_run_dir(logdir)
    envs = (f" × {config.num_envs} (envpool)" if run.env_source == "envpool" else
            f" × {config.num_envs} (a gymnasium vector env)" if config.num_envs > 1 else "")
    length = f"{config.total_updates:,} updates" if config.total_updates else f"{config.total_steps:,} steps"
    log(f"rawdqn: training {config.algo_name} on {run.env_id}{envs} for {length} (seed {run.seed}, "
        f"{run.agent.online.num_parameters:,} parameters, {config.mode} kernels)")
    log(f"rawdqn: {config.describe_exploration()}")
    if logdir:
        run.write_logs()
        log(f"rawdqn: logs and checkpoints in {logdir} (every {run.directory.checkpoint_interval:,} steps); "
            f"continue an interrupted run with: rawdqn train --resume {logdir}")


@dataclasses.dataclass
class Resumable:
    """A checkpoint read and checked, and the arguments that rebuild its run."""
    trainer_args: dict
    saved_config: object
    state: dict
    arrays: dict
    env_saved: object
    checkpoint_dir: str
    run_dir: str


def read_resumable(path, checkpoint_interval, env_id, seed, changes):
    """Read the checkpoint at `path` and check the changes asked for (see train.resume)."""
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
    config = saved.resumed_with(state["step"], **changes).validate()
    if config.total_steps <= state["step"]:
        raise UsageError(f"{path} has already run {state['step']:,} of {config.total_steps:,} steps; "
                         f"pass --steps above {state['step']:,} to train further")
    prepare_run_dir(run_dir)
    env_source = state.get("env_source", "gymnasium")
    # envpool's state cannot be saved: its envs start new episodes, from a seed of their own.
    env_seed = state["seed"] + state["step"] if env_source == "envpool" else None
    trainer_args = {"env_id": state["env_id"], "config": config, "seed": state["seed"], "run_dir": run_dir,
                    "checkpoint_interval": checkpoint_interval or state.get("checkpoint_interval"),
                    "env_source": env_source, "env_seed": env_seed}
    return Resumable(trainer_args, saved, state, arrays, env_saved, checkpoint_dir, run_dir)


def restore(run, resumable):
    """Put the checkpoint's agent, environments and loop state into the freshly built `run`."""
    state, checkpoint_dir, saved, config, log = (resumable.state, resumable.checkpoint_dir,
                                                 resumable.saved_config, run.config, run.log)
    if run.spec.frame_shape and "frame_max" not in state["spec"] and run.spec.frame_max != 255:
        raise checkpoint.CheckpointError(
            f"{checkpoint_dir} was trained when every frame was divided by 255, but {state['env_id']}'s "
            f"frames are now divided by their largest value, {run.spec.frame_max:g}; train the run again")
    if run.spec != EnvSpec.from_record(state["spec"]):
        raise checkpoint.CheckpointError(
            f"{checkpoint_dir} was made on an environment with spaces {state['spec']}, but "
            f"{state['env_id']} now has {dataclasses.asdict(run.spec)}")
    checkpoint.restore_agent(checkpoint_dir, run.agent)
    try:
        continued = run.envs.restore_state(resumable.env_saved)
        run.new_episodes = not continued
        run.restore_loop_state(state, resumable.arrays)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise checkpoint.CheckpointError(f"checkpoint {checkpoint_dir} is corrupt "
                                         f"({type(error).__name__}: {error})") from None
    run.changes = list(state.get("changes", []))
    changed = {name: (getattr(saved, name), getattr(config, name)) for name in dataclasses.asdict(config)
               if getattr(saved, name) != getattr(config, name)}
    if changed:
        run.changes += [{"step": run.step, "field": name, "from": old, "to": new}
                        for name, (old, new) in changed.items()]
        run.history.append({"step": run.step, "config_change": {name: [old, new] for name, (old, new)
                                                                 in changed.items()}})
    # An older checkpoint becomes the latest, so later saves never replace the one `latest` names.
    checkpoint.publish(checkpoint.checkpoints_dir(resumable.run_dir), os.path.basename(checkpoint_dir))
    run.directory.last_checkpoint, run.directory.saved_step = checkpoint_dir, run.step
    summary.drop_after(resumable.run_dir, run.step)
    run.write_logs()
    log(f"rawdqn: resuming {config.algo_name} on {state['env_id']} at step {run.step:,} of {config.total_steps:,} "
        f"(seed {state['seed']}, from {checkpoint_dir}; checkpoints every {run.directory.checkpoint_interval:,} steps)")
    for name, (old, new) in changed.items():
        log(f"rawdqn: from step {run.step:,}: {name} {old} → {new}")
    if not continued:
        run.episode_return = [0.0] * config.num_envs
        run.episode_length = [0] * config.num_envs
        log(f"rawdqn: {run.env_source} cannot save its environments' state: the episodes in progress at step "
            f"{run.step:,} are dropped and new ones begin (the agent, its replay and counters continue from the checkpoint)")
    log(f"rawdqn: {config.describe_exploration()}")
