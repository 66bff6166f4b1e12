"""The run directory: what a run leaves on disk, and the signals that stop it.

    RUN/config.json           the settings, and every change made on resume
    RUN/history.jsonl         progress and evaluation rows (a `stopped` row if it failed)
    RUN/episodes.jsonl        one row per finished episode
    RUN/events.out.tfevents.* TensorBoard
    RUN/checkpoints/step-N/   everything needed to continue exactly (rawdqn/checkpoint.py)

A run of K seeds in one program (`rawdqn train --on-device --seeds K`) is a group: GROUP/seedS
is each seed's run directory as above, GROUP/ondevice the program's own checkpoints.

The loop reaches it through a few hooks: `open` around the loop (the SIGINT/SIGTERM handlers,
the TensorBoard writer, the logs kept however the loop fails), `saving_interval` (for
schedule.hooks_due), `save`, `write_logs`, `write_summary`, and `stop_if_signalled`, which
checkpoints and stops when a signal asked the loop to stop.
Without a path every hook does nothing, so the loop reads the same either way.
"""
import contextlib
import dataclasses
import json
import os
import signal
import threading
import time

from rawdqn import checkpoint, summary
from rawdqn.errors import UsageError

DEFAULT_CHECKPOINT_INTERVAL = 10_000


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training after a checkpoint was written."""

    def __init__(self, signal_number, step, checkpoint_path, run_dir):
        super().__init__(signal_number)
        self.signal_number, self.step = signal_number, step
        self.checkpoint_path, self.run_dir = checkpoint_path, run_dir


def default_run_dir(env_id, seed, kind=""):
    """runs/ENV[-KIND]-seedSEED-TIME: where a run goes without --logdir."""
    return os.path.join("runs", f"{env_id.replace('/', '_')}{'-' + kind if kind else ''}-seed{seed}-"
                                f"{time.strftime('%Y%m%d-%H%M%S')}")


def seed_run_dir(group, seed):
    """GROUP/seedS: seed S's run directory in a run of several seeds."""
    return os.path.join(group, f"seed{seed}")


def seed_run_dirs(group):
    """The run directories GROUP/seedS of a group, by seed; [] if `group` holds none."""
    if not os.path.isdir(group):
        return []
    seeds = sorted(int(name[4:]) for name in os.listdir(group)
                   if name.startswith("seed") and name[4:].isdigit() and os.path.isdir(os.path.join(group, name)))
    return [seed_run_dir(group, seed) for seed in seeds]


def prepare_run_dir(run_dir):
    """Create `run_dir` and check it is writable, or raise a one-line UsageError."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise UsageError(f"cannot write to log directory {run_dir}: {error.strerror or error}") from None


def config_record(env_id, seed, config, changes, **extra):
    """What config.json holds: the environment, the seed, every DQNConfig field, the changes
    made on resume, and `extra` (checkpoint_interval; on_device)."""
    return {"env_id": env_id, "seed": seed, **dataclasses.asdict(config), **extra, "changes": changes}


class RunDirectory:
    """One run's folder (or none: path=None) and the loop's stop flag."""

    def __init__(self, path, checkpoint_interval=None):
        self.path = path
        self.checkpoint_interval = int(checkpoint_interval or DEFAULT_CHECKPOINT_INTERVAL)
        if self.checkpoint_interval < 1:
            raise UsageError(f"checkpoint interval must be >= 1; got {checkpoint_interval}")
        self.last_checkpoint, self.saved_step = None, None
        self.stop_signal = None
        self.summaries = None

    # --- around the loop ----------------------------------------------------------
    @contextlib.contextmanager
    def open(self, logs_on_failure):
        """Signal handlers, TensorBoard and kept logs for the loop's duration.

        `logs_on_failure(reason)` returns the logs to write if the loop fails (see write_logs);
        `reason` is the error's message on one line.
        """
        with self.stop_on_signals(), self.summaries_open(), self.logs_kept(logs_on_failure):
            yield

    @contextlib.contextmanager
    def summaries_open(self):
        """TensorBoard events in the run directory, flushed however the loop ends."""
        self.summaries = summary.Summaries(self.path) if self.path else None
        try:
            yield
        finally:
            if self.summaries:
                self.summaries.close()

    @contextlib.contextmanager
    def stop_on_signals(self):
        """While training with a run directory, a signal asks the loop to checkpoint and stop."""
        if not self.path or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.signal(number, self.request_stop)
                    for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def request_stop(self, signal_number, frame):
        # Only a flag: the loop stops at the end of the step, where the state is consistent.
        # A second signal stops at once (checkpoint writes are atomic, so that is safe too).
        if self.stop_signal is not None:
            raise KeyboardInterrupt
        self.stop_signal = signal_number

    @contextlib.contextmanager
    def logs_kept(self, logs_on_failure):
        """However the loop fails, history.jsonl and episodes.jsonl keep what happened up to then."""
        try:
            yield
        except TrainingInterrupted:
            raise  # its checkpoint wrote the logs
        except BaseException as error:
            if self.path:
                with contextlib.suppress(UsageError):
                    self.write_logs(logs_on_failure(" ".join(str(error).split()) or type(error).__name__))
            raise

    # --- the hooks ------------------------------------------------------------------
    @property
    def saving_interval(self):
        """Steps between checkpoints; 0 (never) without a path. See schedule.hooks_due."""
        return self.checkpoint_interval if self.path else 0

    def stop_if_signalled(self, step, save_checkpoint):
        """After a step: if a signal asked to stop, checkpoint and raise TrainingInterrupted."""
        if self.stop_signal is not None:
            raise TrainingInterrupted(self.stop_signal, step, save_checkpoint(), self.path)

    def write_summary(self, step, values):
        if self.summaries:
            self.summaries.write(step, values)

    def save(self, step, agent, state, arrays, env_states, logs):
        """Checkpoint `step` (once per step) and the logs; returns the checkpoint's path."""
        if self.saved_step == step:
            return self.last_checkpoint
        path = checkpoint.save(self.path, step, agent, state, arrays, env_states)
        self.last_checkpoint, self.saved_step = path, step
        self.write_logs(logs)
        return path

    def write_logs(self, logs):
        """logs = {"config": dict, "history": rows, "episodes": rows}: each file replaced whole."""
        try:
            os.makedirs(self.path, exist_ok=True)
            checkpoint.write_atomically(os.path.join(self.path, "config.json"), json.dumps(logs["config"], indent=2))
            for name in ("history", "episodes"):
                checkpoint.write_atomically(os.path.join(self.path, f"{name}.jsonl"),
                                            "".join(json.dumps(row) + "\n" for row in logs[name]))
        except OSError as error:
            kept = f"the checkpoint {self.last_checkpoint} is intact" if self.last_checkpoint else "no checkpoint was written"
            raise UsageError(f"cannot write the logs in {self.path}: {error.strerror or error}; {kept}") from None

    def last_good(self):
        """What a failure message says of the checkpoints."""
        return (f"the last good checkpoint, {self.last_checkpoint}, is intact"
                if self.last_checkpoint else "no checkpoint had been written yet")
