"""An on-device run: the host's side of the compiled program (rawdqn/engine/ondevice.py).

Python only sees the program between calls, to log, evaluate and checkpoint; train.drive is
the loop, this module its source (OnDeviceRun). Each call returns which episodes ended at
which iteration, and their returns, so the host writes the same episodes.jsonl as the
gymnasium loop.

With eval_interval > 0, every eval_interval steps each agent's greedy policy plays 32
episodes of the TF env (one small compiled program) and the best-scoring weights are
kept (rawdqn/keep_best.py); the run reports the final weights' and the kept weights'
evaluations on the real gymnasium env, the kept ones on fresh episodes.
"""
import contextlib
import dataclasses
import json
import math
import os
import time

import numpy as np

from rawdqn import checkpoint, compat, schedule, summary
from rawdqn.config import DQNConfig
from rawdqn.presets import ON_DEVICE
from rawdqn.presets import preset as config_preset
from rawdqn.engine.ondevice import ENV_STREAM, AgentEnvs, OnDeviceTrainer, check_env, env_spec  # noqa: F401
from rawdqn.errors import UsageError
from rawdqn.evaluation import FRESH_EVAL_SEED, SELECTION_EVAL_SEED, evaluate
from rawdqn.gym_env import env_kwargs_for
from rawdqn.rundir import RunDirectory, config_record, default_run_dir, prepare_run_dir, seed_run_dir
from rawdqn.train import check_finite, drive


def preset(env_id, algo=None):
    """The on-device DQNConfig for env_id (rawdqn/config.py's table; num_envs and
    iterations_per_call included); for a policy-gradient `algo`, its preset, as on gymnasium."""
    check_env(env_id)
    if algo not in (None, "dqn"):
        return config_preset(env_id, algo=algo)
    return config_preset(env_id, ON_DEVICE)

# Greedy episodes of the TF env per evaluation during training (eval_interval > 0).
SELECTION_EPISODES = 32
# Where the whole program's state is checkpointed, inside the run's --logdir.
PROGRAM_DIR = "ondevice"


@dataclasses.dataclass
class OnDeviceResult:
    trainer: OnDeviceTrainer
    seeds: list
    eval_means: list             # the reported evaluation: of the kept weights with eval_interval, else final
    eval_stds: list
    final_eval_means: list       # the final weights' evaluation
    steps: int                   # environment steps per agent
    train_seconds: float         # wall time of the training calls (compile excluded)
    compile_seconds: float
    history: list


class OnDeviceRun:
    """The host side of an on-device run, between the program's calls: log, evaluate and
    keep the best weights, checkpoint every checkpoint_interval steps, stop on SIGINT or
    SIGTERM with a checkpoint, and resume from one exactly.

    LOGDIR/ondevice/step-N/ holds the program's every variable and this object's state; at
    every checkpoint and at the end each agent is also an ordinary run directory
    (`write_run`): LOGDIR itself with one seed, LOGDIR/seedS/ with several.
    """

    def __init__(self, env_id, config, seed, num_seeds, device, log, logdir, checkpoint_interval=None,
                 seed_axis=None):
        self.trainer = OnDeviceTrainer(env_id, config, seed, num_seeds=num_seeds, device=device,
                                       seed_axis=seed_axis or "unrolled")
        self.env_id, self.config, self.log = env_id, self.trainer.config, log
        self.directory = RunDirectory(logdir, checkpoint_interval)
        self.history, self.train_seconds, self.compile_seconds = [], 0.0, 0.0
        # Per agent: [end step, return, length] of every finished episode (episodes.jsonl),
        # and the steps each env's unfinished episode has run so far.
        self.episodes = [[] for _ in range(num_seeds)]
        self.open_lengths = [[0] * self.trainer.num_envs for _ in range(num_seeds)]
        self.step, self.call_row = 0, None
        # Per agent: its run directory's open TensorBoard file, and how many history rows and
        # episodes it holds (write_run appends the rest).
        self.summaries, self.summarized = [None] * num_seeds, [(0, 0)] * num_seeds
        self.selection_episodes = SELECTION_EPISODES if config.eval_interval else 0

    @property
    def total_steps(self):
        """total_steps rounded up to whole iterations of N steps."""
        return math.ceil(self.config.total_steps / self.trainer.num_envs) * self.trainer.num_envs

    @property
    def progress(self):
        return self.step   # drive's clock: steps

    @property
    def goal(self):
        return self.total_steps

    def state(self):
        trainer = self.trainer
        return {"env_id": self.env_id, "seed": trainer.seed, "num_seeds": trainer.num_seeds,
                "config": dataclasses.asdict(self.config), "step": int(trainer.step.numpy()),
                "checkpoint_interval": self.directory.checkpoint_interval,
                "history": self.history, "train_seconds": self.train_seconds,
                "episodes": self.episodes, "open_lengths": self.open_lengths}

    def run_dir(self, seed_index):
        """Agent seed_index's run directory: LOGDIR with one seed, LOGDIR/seedS with several."""
        seed_run = self.trainer.seed_runs[seed_index]
        return seed_run_dir(self.directory.path, seed_run.seed) if self.trainer.num_seeds > 1 else self.directory.path

    def save_checkpoint(self, runs=True):
        """LOGDIR/ondevice/step-N: the program's variables and the host's state, whole or not at
        all; with `runs`, each agent's run directory too (its current weights, no final evaluation)."""
        path = checkpoint.save_variables(os.path.join(self.directory.path, PROGRAM_DIR),
                                         int(self.trainer.step.numpy()), self.state(), trainer=self.trainer)
        self.directory.last_checkpoint = path
        if runs:
            for i in range(self.trainer.num_seeds):
                self.write_run(i, None)
        return path

    def write_run(self, seed_index, final_evaluation):
        """Agent `seed_index`'s run directory (`write_run`), its TensorBoard appended to."""
        i, run_dir = seed_index, self.run_dir(seed_index)
        if self.summaries[i] is None:
            prepare_run_dir(run_dir)
            self.summaries[i] = summary.Summaries(run_dir)
        path = write_run(run_dir, self.trainer, i, self.history, final_evaluation, self.episodes[i],
                         self.summaries[i], self.summarized[i])
        self.summarized[i] = (len(self.history), len(self.episodes[i]))
        return path

    def resumed(self):
        """After the host's state is restored from a checkpoint: each agent's TensorBoard holds
        what was logged up to it (written with the checkpoint, never ahead of one)."""
        self.summarized = [(len(self.history), len(episodes)) for episodes in self.episodes]

    # --- the on-device source's part of the loop (rawdqn/train.py's drive calls these) ---
    @contextlib.contextmanager
    def opened(self):
        # Each agent's run directory has TensorBoard events and logs of its own (write_run),
        # its event file flushed and closed however the loop ends.
        try:
            with self.directory.stop_on_signals():
                yield
        finally:
            for i, summaries in enumerate(self.summaries):
                if summaries is not None:
                    summaries.close()
                    self.summaries[i] = None

    def begin(self):
        self.compile_seconds = self.trainer.compile(self.selection_episodes)
        self.log(f"rawdqn: compiled the training loop in {self.compile_seconds:.1f} s")
        self.step = int(self.trainer.step.numpy())

    def advance(self):
        """One call of the program: iterations_per_call iterations of N steps, fewer where
        the run or an evaluation falls due sooner."""
        config, num_envs, before = self.config, self.trainer.num_envs, self.step
        iterations = min(config.iterations_per_call, (self.total_steps - before) // num_envs)
        if config.eval_interval:   # end the call where the evaluation is due
            next_eval = (before // config.eval_interval + 1) * config.eval_interval
            iterations = min(iterations, max(1, math.ceil(next_eval / num_envs) - before // num_envs))
        start = time.perf_counter()
        stats = self.trainer.run(iterations)
        self.train_seconds += time.perf_counter() - start
        self.record_episodes(before, iterations, stats.episode_ends)
        self.step = stats.step
        self.call_row = stats.row()
        self.history.append(self.call_row)

    def record_episodes(self, before, iterations, episode_ends):
        """Each ended episode as the gymnasium loop records it: the step count after its
        iteration (before + (t + 1)·N), its return, and its length in steps."""
        num_envs = self.trainer.num_envs
        for episodes, open_lengths, ends in zip(self.episodes, self.open_lengths, episode_ends):
            started = [-length for length in open_lengths]   # the iteration each env's episode began at
            for at, env, episode_return in ends:
                episodes.append([before + (at + 1) * num_envs, episode_return, at + 1 - started[env]])
                started[env] = at + 1
            open_lengths[:] = [iterations - start for start in started]

    def check_finite(self):
        for seed_run in self.trainer.seed_runs:
            check_finite(seed_run.agent, self.directory, f"seed {seed_run.seed}: " if self.trainer.num_seeds > 1 else "")

    def evaluate_now(self):
        """Choosing weights is part of training: its time counts in train_seconds and steps/s."""
        start = time.perf_counter()
        self.select_weights(self.step)
        self.train_seconds += time.perf_counter() - start

    def seconds_aside(self):
        return 0.0

    def log_progress(self, steps_per_second):
        row, config = self.call_row, self.config
        # "-": no episode ended during the call.
        returns = " ".join(f"{r:7.1f}" if r == r else f"{'-':>7}" for r in row["mean_return"])
        losses = " ".join(f"{l:.4f}" for l in row["loss"])
        self.log(f"step {self.step:>8,}/{self.total_steps:,} | {steps_per_second:9,.0f} steps/s | "
                 f"return {returns} | loss {losses}" + (f" | eps {schedule.epsilon(config, self.step):.3f}"
                                                        if config.algo in ("dqn", "pqn") else ""))
        row["steps_per_second"] = steps_per_second   # the call's row, not a selection row after it

    def run(self):
        """Call the program until total_steps, with the hooks between calls (train.drive)."""
        return drive(self)

    def select_weights(self, step):
        """Each agent's greedy return on SELECTION_EPISODES TF episodes; keep its weights if best so far."""
        episode_returns = self.trainer.greedy_returns(step, self.selection_episodes)
        returns = episode_returns.mean(axis=1)
        for seed_run, score in zip(self.trainer.seed_runs, returns):
            seed_run.keep_if_best(float(score), step)
        self.history.append({"step": step, "greedy_return": returns.tolist(),
                             "greedy_std": episode_returns.std(axis=1).tolist()})

    def finish(self):
        """Evaluate each agent on gymnasium (the kept weights on fresh episodes) and write the runs."""
        trainer, config = self.trainer, self.config
        if config.eval_interval:   # the final weights are candidates too
            self.select_weights(int(trainer.step.numpy()))
        steps = int(trainer.step.numpy())
        logdir = self.directory.path
        # The program as training left it (before the kept weights are swapped in below), so a
        # resumed run with more --steps continues from the final weights.
        saved = self.save_checkpoint(runs=False) if logdir else None
        timing = f"{steps:,} steps in {self.train_seconds:.1f} s; compile {self.compile_seconds:.1f} s"
        eval_means, eval_stds, final_means, final_evaluations = [], [], [], []
        multi = trainer.num_seeds > 1
        spec, env_kwargs, policy = env_spec(trainer.env), env_kwargs_for(self.env_id, config), config.describe_evaluation()
        for seed_run in trainer.seed_runs:
            prefix = f"seed {seed_run.seed}: " if multi else ""
            eval_seed = seed_run.seed + SELECTION_EVAL_SEED
            mean, std = evaluate(seed_run.agent, self.env_id, config.eval_episodes, eval_seed, spec, env_kwargs, config)
            final_means.append(mean)
            if config.eval_interval:
                self.log(f"{prefix}final weights: mean return {mean:.2f} ± {std:.2f} over {config.eval_episodes} "
                         f"{policy} episodes")
                # Fresh episodes: other seeds than the selection's TF episodes and the line above.
                seed_run.use_best()
                eval_seed = seed_run.seed + FRESH_EVAL_SEED
                mean, std = evaluate(seed_run.agent, self.env_id, config.eval_episodes, eval_seed, spec, env_kwargs, config)
                prefix += (f"kept weights (step {int(seed_run.best_step.numpy()):,}, greedy "
                           f"{seed_run.best_score.numpy():.1f} on {self.selection_episodes} TF episodes): ")
            eval_means.append(mean)
            eval_stds.append(std)
            final_evaluations.append({"seed": eval_seed, "episodes": config.eval_episodes, "mean": mean, "std": std})
            self.log(f"{prefix}evaluation: mean return {mean:.2f} ± {std:.2f} over {config.eval_episodes} "
                     f"{policy} episodes ({timing})")
        if multi:
            self.log(f"rawdqn: {trainer.num_seeds} agents, evaluation mean over agents {np.mean(eval_means):.2f} "
                     f"(min {np.min(eval_means):.2f}, max {np.max(eval_means):.2f}); "
                     f"{steps * trainer.num_seeds / self.train_seconds:,.0f} env steps/s in all")
        if logdir:
            for i, seed_run in enumerate(trainer.seed_runs):
                path = self.write_run(i, final_evaluations[i])
                self.log(f"rawdqn: {'seed ' + str(seed_run.seed) + ': ' if multi else ''}run directory "
                         f"{self.run_dir(i)} (checkpoint {path}); rawdqn eval/export/watch/plot read it")
            self.log(f"rawdqn: saved the trainer's variables to {saved}")
        return OnDeviceResult(trainer, [seed_run.seed for seed_run in trainer.seed_runs], eval_means, eval_stds, final_means,
                              steps, self.train_seconds, self.compile_seconds, self.history)


def train_on_device(env_id="CartPole-v1", config=None, seed=0, num_seeds=1, device=None, log=print,
                    logdir=None, checkpoint_interval=None, seed_axis=None):
    """Train `num_seeds` agents on env_id with the on-device loop (config.num_envs envs each,
    config.iterations_per_call iterations per call); evaluate each on gymnasium."""
    config = (config or preset(env_id)).validate()
    if logdir and (checkpoint.latest_in(os.path.join(logdir, PROGRAM_DIR)) or checkpoint.latest(logdir)):
        raise UsageError(f"{logdir} already holds a run; continue it with --resume {logdir} "
                         "or choose another --logdir")
    run = OnDeviceRun(env_id, config, seed, num_seeds, device, log, logdir, checkpoint_interval, seed_axis)
    if logdir:
        prepare_run_dir(logdir)  # after the agents are known to fit: no empty run dirs
    trainer = run.trainer
    seeds = [seed_run.seed for seed_run in trainer.seed_runs]
    log(f"rawdqn: training {config.algo_name} on-device on {env_id} for {run.total_steps:,} steps "
        f"(seed{'s' if num_seeds > 1 else ''} {', '.join(map(str, seeds))}; "
        f"{trainer.num_envs} envs, {config.iterations_per_call} iterations per call, "
        f"{trainer.agents[0].online.num_parameters:,} parameters, "
        f"{config.gradient_steps}/{config.train_frequency} updates per env step)")
    log(f"rawdqn: {config.describe_exploration()}")
    if logdir:
        log(f"rawdqn: checkpoints in {os.path.join(logdir, PROGRAM_DIR)} (every "
            f"{run.directory.checkpoint_interval:,} steps); continue an interrupted run with: "
            f"rawdqn train --resume {logdir}")
    return run.run()


def is_on_device_run(path):
    """Whether `path` is the --logdir of an on-device run (it holds LOGDIR/ondevice/latest)."""
    return checkpoint.latest_in(os.path.join(path, PROGRAM_DIR)) is not None


def resume(logdir, device=None, log=print, checkpoint_interval=None, total_steps=None, seed_axis=None):
    """Continue the on-device run in `logdir` from its latest checkpoint, bit for bit.

    Only total_steps may change (every other setting is compiled into the program); seed_axis
    (how several seeds run: engine/seed_axis.py) may, and then agrees to float rounding.
    """
    root = os.path.join(logdir, PROGRAM_DIR)
    saved = checkpoint.latest_in(root)
    try:
        with open(os.path.join(saved, "state.json")) as f:
            state = json.load(f)
        config = DQNConfig(**state["config"])
        if total_steps is not None:
            config = config.resumed_with(state["step"], total_steps=int(total_steps))
        config = config.validate()
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise checkpoint.CheckpointError(f"checkpoint {saved} is corrupt ({type(error).__name__}: {error})") from None
    if config.total_steps <= state["step"]:
        raise UsageError(f"{logdir} has already run {state['step']:,} of {config.total_steps:,} steps; "
                         f"pass --steps above {state['step']:,} to train further")
    run = OnDeviceRun(state["env_id"], config, state["seed"], state["num_seeds"], device, log, logdir,
                      checkpoint_interval or state["checkpoint_interval"], seed_axis)
    try:
        prefix = os.path.join(saved, "variables")
        checkpoint.read_variables(prefix, **compat.ondevice_roots(prefix, run.trainer))
    except checkpoint.READ_ERRORS as error:
        raise checkpoint.CheckpointError(f"checkpoint {saved} does not fit this program "
                                         f"({type(error).__name__}: {checkpoint.one_line(error)})") from None
    run.history, run.train_seconds = state["history"], state["train_seconds"]
    # Checkpoints from before episodes were recorded resume with none (and lengths counted from here).
    run.episodes = state.get("episodes", run.episodes)
    run.open_lengths = state.get("open_lengths", run.open_lengths)
    run.directory.last_checkpoint = saved
    run.resumed()
    log(f"rawdqn: resuming on-device {config.algo_name} on {state['env_id']} at step {state['step']:,} of {run.total_steps:,} "
        f"(from {saved}; checkpoints every {run.directory.checkpoint_interval:,} steps)")
    return run.run()


def write_run(run_dir, trainer, seed_index, history, final_evaluation, episodes, summaries, summarized=(0, 0)):
    """Agent `seed_index` as an ordinary run directory (rawdqn/rundir.py): config.json,
    history.jsonl (progress rows, and the greedy TF-env evaluations as eval rows),
    episodes.jsonl (`episodes`: [end step, return, length] rows), TensorBoard, and a
    checkpoint of the agent with the weights it reports, which `rawdqn eval`, `export`,
    `watch` and `plot` read like any run's. Returns its path. Written at every checkpoint
    (the current weights; final_evaluation None) and at the end (the reported weights and
    their evaluation). TensorBoard (`summaries`, an open summary.Summaries) gets the progress
    and evaluation rows and an event per episode, as a gymnasium run's does: those after the
    first `summarized` = (history rows, episodes), which it already holds.
    """
    seed_run, config, i = trainer.seed_runs[seed_index], trainer.config, seed_index
    rows = []
    for row in history:
        if "greedy_return" in row:
            rows.append({"step": row["step"], "eval_mean": row["greedy_return"][i], "eval_std": row["greedy_std"][i],
                         "eval_episodes": SELECTION_EPISODES, "eval_env": "tf"})
        else:
            rows.append({"step": row["step"], "recent_return": row["mean_return"][i], "loss": row["loss"][i],
                         "epsilon": schedule.epsilon(config, row["step"] - 1), "episodes": row["episodes"][i],
                         **({"steps_per_second": row["steps_per_second"]} if "steps_per_second" in row else {})})
    step = int(trainer.step.numpy())
    if final_evaluation:
        rows.append({"step": step, "eval_mean": final_evaluation["mean"], "eval_std": final_evaluation["std"]})
    spec = env_spec(trainer.env)
    settings = dataclasses.asdict(config)
    on_device = {"num_envs": trainer.num_envs, "iterations_per_call": config.iterations_per_call}
    state = {"env_id": trainer.env_id, "seed": seed_run.seed, "config": settings, "spec": dataclasses.asdict(spec),
             "step": step, "changes": [], "final_evaluation": final_evaluation, "on_device": on_device}
    logs = {"config": config_record(trainer.env_id, seed_run.seed, config, [], on_device=on_device),
            "history": rows, "episodes": [{"step": step, "return": ret, "length": length}
                                          for step, ret, length in episodes]}
    prepare_run_dir(run_dir)
    logged_rows, logged_episodes = summarized
    for row in rows[logged_rows:]:
        summaries.write(row["step"], {f"{'eval' if 'eval_mean' in row else 'train'}/{name}": value
                                      for name, value in row.items() if name != "step" and isinstance(value, (int, float))})
    for end_step, episode_return, length in episodes[logged_episodes:]:   # as train.end_episode writes them
        summaries.write(end_step, {"episode/return": episode_return, "episode/length": length})
    return RunDirectory(run_dir).save(step, seed_run.agent, state, {}, [], logs)


def run_command(args, changes, log=print):
    """`rawdqn train --on-device [...]`: the flags checked, the agents trained and evaluated."""
    from rawdqn.device import resolve_device
    env_id = args.env or "CartPole-v1"
    config = preset(env_id, changes.get("algo")).replace(**changes).validate()
    if config.total_updates is not None:
        raise UsageError("--on-device runs count steps; --total-updates is for gymnasium runs: use --steps")
    if config.scale_observations:
        raise UsageError("--scale-observations runs on gymnasium envs; the on-device envs take raw observations")
    if args.seeds is not None and args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1; got {args.seeds}")
    train_on_device(env_id, config, seed=args.seed or 0, num_seeds=args.seeds or 1,
                    device=resolve_device(args.device), log=log,
                    logdir=args.logdir or default_run_dir(env_id, args.seed or 0, "ondevice"),
                    checkpoint_interval=args.checkpoint_interval, seed_axis=args.seed_axis)
    return 0
