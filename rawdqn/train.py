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
import time
import typing

import numpy as np

from rawdqn import gym_run
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig
from rawdqn.presets import preset
from rawdqn.errors import UsageError
from rawdqn.evaluation import FRESH_EVAL_SEED, SELECTION_EVAL_SEED
from rawdqn.gym_env import EnvError
from rawdqn.gym_run import GymnasiumRun
from rawdqn.rundir import RunDirectory, TrainingInterrupted  # noqa: F401 (TrainingInterrupted: re-exported)
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


@typing.runtime_checkable
class Source(typing.Protocol):
    """What `drive` needs of an environment source: gymnasium's and envpool's (Trainer), the TF
    envs on the device (rawdqn/ondevice.py's OnDeviceRun), Ape-X's learner (ApexRun)."""

    config: DQNConfig        # hooks_due reads its intervals
    directory: RunDirectory  # its checkpoint interval and the SIGINT/SIGTERM stop
    step: int                # environment steps done

    @property
    def progress(self) -> int:
        """drive's clock: the steps done, or the updates made for a run of total_updates."""

    @property
    def goal(self) -> int:
        """Where progress stops."""

    def opened(self):
        """A context manager around the run: the run directory open, its logs kept on failure."""

    def begin(self):
        """Ready to advance: the first actions, or those a checkpoint left."""

    def advance(self):
        """Some environment steps and the compiled work after them; moves `step` on."""

    def check_finite(self):
        """Raise TrainingDiverged if an update's loss or values were not finite."""

    def evaluate_now(self):
        """A greedy evaluation (and keep-best's choice)."""

    def seconds_aside(self) -> float:
        """Seconds not spent training (compilation, evaluations), left out of steps/s."""

    def log_progress(self, steps_per_second):
        """The progress line."""

    def save_checkpoint(self):
        """A checkpoint of everything the run needs to continue exactly."""

    def finish(self):
        """The final evaluation and checkpoint; returns the run's result."""


def drive(run: Source):
    """The loop's host side, for every environment source: advance until total_steps, and
    after each advance the hooks that fall due — divergence check, evaluation, progress
    line, checkpoint, stop on a signal — then finish.

    `run.advance()` is one environment step and one compiled call for gymnasium and
    envpool envs (Trainer), one call of K iterations for the TF envs on the device
    (rawdqn/ondevice.py's OnDeviceRun); it moves `run.step` on by the steps it made. A hook
    is due when the step count crosses a multiple of its interval (schedule.hooks_due).
    The loop's clock, `run.progress` towards `run.goal`, is the step count, or for a run of
    config.total_updates the updates made.
    """
    config, directory = run.config, run.directory
    with run.opened():
        run.begin()
        # steps/s of training alone: what run.seconds_aside() counts (compilation, evaluations) is set aside.
        window = (time.perf_counter(), run.step, run.seconds_aside())
        while run.progress < run.goal:
            done_before, steps_before = run.progress, run.step
            run.advance()
            due = hooks_due(config, directory.saving_interval, done_before, run.progress, run.goal)
            if due.evaluate or due.log or due.checkpoint or crosses(DIVERGENCE_CHECK_INTERVAL, steps_before, run.step):
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
                        zip(agent.watched_labels, values) if not np.isfinite(value))
    raise TrainingDiverged(
        f"{who}training diverged at step {diverged_at:,}: the {label} became {value} after a "
        f"gradient update; {directory.last_good()}. Try a lower --learning-rate, --max-grad-norm or --loss huber")


class Trainer(GymnasiumRun):
    """The loop's gymnasium (and envpool) source: what one advance is. The run's state and
    its hooks (evaluation, progress, checkpoints) are rawdqn/gym_run.py's GymnasiumRun."""

    @property
    def total_steps(self):
        return self.config.total_steps

    @property
    def progress(self):
        """Steps done, or with config.total_updates the updates made (drive's clock)."""
        return self.updates_seen if self.config.total_updates else self.step

    @property
    def goal(self):
        return self.config.total_updates or self.config.total_steps

    def opened(self):
        return self.directory.open(self.logs_on_failure)

    def begin(self):
        """The first actions: for the first observations, or as the checkpoint left them."""
        self.first_step, self.train_start = self.step, time.perf_counter()
        self.updates_seen = int(self.agent.schedule.updates_done.numpy())
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
        self.actions = self.agent.observe(step).numpy()
        self.step += self.config.num_envs
        if self.config.total_updates and step.ended.any():   # REINFORCE updates only where an episode ends
            self.updates_seen = int(self.agent.schedule.updates_done.numpy())
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
                 f"{config.describe_evaluation()} episodes ({self.step - self.first_step:,} steps in {total_time:.1f} s)")
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



def train(env_id="CartPole-v1", config=None, seed=0, device=None, logdir=None, log=print,
          checkpoint_interval=None, env_source="gymnasium"):
    """Train a DQN on `env_id` and evaluate its greedy policy; returns a TrainResult.

    With `logdir`, the run writes config.json, history.jsonl, episodes.jsonl, TensorBoard
    events and a checkpoint every `checkpoint_interval` steps and at the end, and
    SIGINT/SIGTERM save a checkpoint before stopping (raising TrainingInterrupted).
    env_source: "gymnasium" or "envpool" (rawdqn/gym_env.py's make_envs).
    """
    config = (config or preset(env_id)).validate()
    gym_run.check_new_run_dir(logdir)
    trainer = Trainer(env_id, config, seed, device, logdir, log, checkpoint_interval, env_source=env_source)
    gym_run.start(trainer)
    return trainer.run()


def resume(path, device=None, log=print, checkpoint_interval=None, env_id=None, seed=None, num_actors=None,
           address=None, **changes):
    """Continue the run whose checkpoint is at `path` (a run directory or one checkpoint).

    The run keeps every setting it was started with (its checkpoint interval too) except
    the `changes` given here, which take effect at the resumed step and are recorded in
    config.json and history.jsonl. `env_id`, `seed` and gym_run.FIXED_FIELDS cannot change.
    An Ape-X run may resume onto another number of actors (`num_actors`), on a cluster (`address`).
    """
    saved = gym_run.read_resumable(path, checkpoint_interval, env_id, seed, changes)
    if saved.state.get("distributed"):   # an Ape-X run: its learner resumes, with new actors
        from rawdqn.distributed import apex
        return apex.resume(saved, device, log, num_actors, address)
    if num_actors is not None or address is not None:
        raise UsageError(f"--actors and --address resume an Ape-X run; {path} is a single-process run")
    trainer = Trainer(device=device, log=log, **saved.trainer_args)
    gym_run.restore(trainer, saved)
    return trainer.run()
