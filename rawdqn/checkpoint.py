"""Checkpoints: everything a run needs to continue exactly, written atomically.

A run directory holds

    RUN/checkpoints/latest            the name of the newest complete checkpoint
    RUN/checkpoints/step-00001000/
        variables.index, .data-*      tf.train.Checkpoint of the DQN: online and target
                                      networks (θ each), optimizer slots and step, the replay
                                      ring (its rows, cursor, count) and the RNG counters
                                      (act_draws, replay draws); every RNG is stateless,
                                      keyed by (seed, counter), so this is all its state
        state.json                    env id, seed, config, environment spec, the loop's
                                      counters and episode bookkeeping (see Trainer)
        arrays.npz                    the current observation and legal mask, and the fixed
                                      validation observations for avg max Q
        env.json                      the gymnasium environment's state (rawdqn/env_state.py)

A checkpoint is written into a temporary directory, fsynced, renamed into place, and
only then named in `latest` (itself replaced atomically), so a run killed at any
moment leaves the previous checkpoint usable. The two newest are kept.
"""
import dataclasses
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from rawdqn import compat
from rawdqn.env_state import env_state, set_env_state  # noqa: F401 (importable from here)
from rawdqn.config import DQNConfig
from rawdqn.errors import UsageError

FORMAT = "rawdqn-checkpoint-3"  # 3: one θ per network and per optimizer slot, one row per transition
READABLE_FORMATS = ("rawdqn-checkpoint-2", FORMAT)  # 2: a variable per layer and per replay field (rawdqn/compat.py)
# What tf.train.Checkpoint.read raises on a truncated or garbled file (IndexError: short read).
READ_ERRORS = (tf.errors.OpError, ValueError, AssertionError, IndexError, KeyError, OSError)
LATEST = "latest"
KEEP = 2


class CheckpointError(UsageError):
    """A checkpoint that is missing, corrupt, or belongs to another run; one line says which."""


class CheckpointWriteError(UsageError):
    """A checkpoint could not be written (a full disk, a read-only folder); the previous one is intact."""


# What a failed write raises: the OS's own error, or TensorFlow's wrapping of it (SaveV2 on a
# full disk raises ResourceExhaustedError).
WRITE_ERRORS = (OSError, tf.errors.OpError)


# --- where checkpoints live ---------------------------------------------------
def checkpoints_dir(run_dir):
    return os.path.join(run_dir, "checkpoints")


def latest(run_dir):
    """The newest complete checkpoint in `run_dir`, or None if it has none."""
    return latest_in(checkpoints_dir(run_dir))


def find(path):
    """(run directory, checkpoint directory) for a run directory or one checkpoint's directory."""
    if not os.path.isdir(path):
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    path = os.path.normpath(path)
    if os.path.exists(os.path.join(path, "state.json")):
        return os.path.dirname(os.path.dirname(path)), path
    for run_dir in (path, os.path.dirname(path)):
        if os.path.exists(os.path.join(checkpoints_dir(run_dir), LATEST)):
            checkpoint = latest(run_dir)
            if not os.path.isdir(checkpoint):
                raise CheckpointError(f"{run_dir} is corrupt: checkpoints/latest names "
                                      f"{os.path.basename(checkpoint)}, which does not exist")
            return run_dir, checkpoint
    raise CheckpointError(f"{path} holds no rawdqn checkpoint (no checkpoints/latest); "
                          "pass the --logdir of a `rawdqn train` run")


# --- writing --------------------------------------------------------------------
def save(run_dir, step, agent, state, arrays, env_state_dict):
    """Write checkpoint `step-<step>` atomically and make it the latest; returns its path."""
    def fill(directory):
        tf.train.Checkpoint(agent=agent).write(os.path.join(directory, "variables"))
        write_json(os.path.join(directory, "state.json"), {"format": FORMAT, **state})
        write_json(os.path.join(directory, "env.json"), env_state_dict)
        with open(os.path.join(directory, "arrays.npz"), "wb") as f:
            np.savez(f, **arrays)
    return write_step(checkpoints_dir(run_dir), step, fill)


def save_variables(root, step, state, **trackables):
    """Atomically write tf.train.Checkpoint(**trackables) as `root/step-<step>/variables` and
    `state` as its state.json; returns the directory."""
    def fill(directory):
        tf.train.Checkpoint(**trackables).write(os.path.join(directory, "variables"))
        write_json(os.path.join(directory, "state.json"), {"format": FORMAT, **state})
    return write_step(root, step, fill)


def write_step(root, step, fill):
    """Create `root/step-<step>` whole or not at all, then point `latest` at it.

    `fill(directory)` writes into a temporary sibling, which is fsynced and renamed
    into place; a crash at any point leaves the previous latest checkpoint intact.
    """
    name = f"step-{step:08d}"
    final = os.path.join(root, name)
    temporary = os.path.join(root, f".{name}.tmp-{os.getpid()}")
    try:
        os.makedirs(root, exist_ok=True)
        shutil.rmtree(temporary, ignore_errors=True)
        os.makedirs(temporary)
        fill(temporary)
        for file in os.listdir(temporary):
            fsync(os.path.join(temporary, file))
        # The same step can be saved twice (an interrupt right at a checkpoint): replace it.
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(temporary, final)
        fsync(root)
        publish(root, name)
    except WRITE_ERRORS as error:
        shutil.rmtree(temporary, ignore_errors=True)  # a half-written copy would only fill the disk further
        previous = latest_in(root)
        kept = (f"the previous checkpoint, {previous}, is intact" if previous and os.path.isdir(previous)
                else "no earlier checkpoint exists")
        raise CheckpointWriteError(f"cannot write checkpoint {final}: {write_failure(error)}; {kept}") from None
    prune(root, keep=KEEP)
    return final


def latest_in(root):
    """The checkpoint `root/latest` names, or None if there is none."""
    try:
        with open(os.path.join(root, LATEST)) as f:
            name = f.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return os.path.join(root, name)


def write_failure(error):
    """Why a write failed, in a few words ('No space left on device')."""
    if isinstance(error, OSError):
        return error.strerror or one_line(error)
    message = one_line(getattr(error, "message", error))
    for reason in ("No space left on device", "Read-only file system", "Permission denied",
                   "Disk quota exceeded"):
        if reason in message:
            return reason
    return message[:200]


def publish(root, name):
    """Point `latest` at `name` with one atomic rename."""
    temporary = os.path.join(root, f".{LATEST}.tmp-{os.getpid()}")
    with open(temporary, "w") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, os.path.join(root, LATEST))
    fsync(root)


def prune(root, keep):
    """Delete all but the `keep` newest checkpoints, and leftovers of interrupted writes."""
    with open(os.path.join(root, LATEST)) as f:
        current = f.read().strip()
    names = sorted((n for n in os.listdir(root) if n.startswith("step-") and ".tmp-" not in n),
                   key=lambda n: int(n.split("-")[1]))
    for name in names[:-keep] + [n for n in os.listdir(root) if ".tmp-" in n]:
        if name != current:
            path = os.path.join(root, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)


def write_atomically(path, text):
    """Replace the file at `path` with `text` so readers see the old or the new file, whole."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w") as f:
            f.write(text)
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading --------------------------------------------------------------------
def load_state(checkpoint):
    """state.json, arrays.npz and env.json of a checkpoint directory, checked for completeness."""
    try:
        with open(os.path.join(checkpoint, "state.json")) as f:
            state = json.load(f)
        with open(os.path.join(checkpoint, "env.json")) as f:
            env_state_dict = json.load(f)
        with np.load(os.path.join(checkpoint, "arrays.npz"), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError) as error:
        raise CheckpointError(f"checkpoint {checkpoint} is corrupt or truncated "
                              f"({type(error).__name__}: {one_line(error)})") from None
    if not isinstance(state, dict) or state.get("format") not in READABLE_FORMATS:
        raise CheckpointError(f"checkpoint {checkpoint} is not a {FORMAT} checkpoint "
                              f"(state.json format: {state.get('format') if isinstance(state, dict) else None!r}); "
                              "it was written by another version of rawdqn")
    missing = {"env_id", "seed", "config", "spec", "step"} - set(state)
    if missing:
        raise CheckpointError(f"checkpoint {checkpoint} is corrupt: state.json lacks {sorted(missing)}")
    return state, arrays, env_state_dict


def read_variables(prefix, partial=False, **roots):
    """tf.train.Checkpoint(**roots).read(prefix): every variable of `roots` must be in the file
    (and, unless `partial`, every value in the file must have a variable). A layout-2 file is
    converted on the way in (compat.read_layout_2)."""
    reader = tf.train.load_checkpoint(prefix)
    keys = reader.get_variable_to_shape_map()
    if compat.is_layout_2(keys):
        compat.read_layout_2(reader, keys, partial, **roots)
        return
    status = tf.train.Checkpoint(**roots).read(prefix)
    status.assert_existing_objects_matched()
    if partial:
        status.expect_partial()   # else TensorFlow warns of every value left unread
    else:
        status.assert_consumed()


def restore_agent(checkpoint, agent):
    """Read the variables into `agent`; every variable must be present with its shape."""
    prefix = os.path.join(checkpoint, "variables")
    try:
        read_variables(prefix, partial=True, agent=agent)
        agent.forget_host_counters()   # the restored counters are the truth now
    except READ_ERRORS as error:
        message = one_line(error)
        if "shape" in message.lower():
            raise CheckpointError(
                f"checkpoint {checkpoint} does not fit the network its state.json describes "
                f"(obs {agent.obs_dim}, hidden {agent.config.hidden}, actions {agent.num_actions}): "
                f"{message[:200]}") from None
        raise CheckpointError(f"checkpoint {checkpoint} is corrupt or truncated "
                              f"({type(error).__name__}: {message[:200]})") from None


def restore_network(checkpoint, network, attribute="online"):
    """Read only the agent's network `attribute` (a DQN's online Q-network, a policy-gradient
    agent's policy) into `network` (for eval, watch, export)."""
    holder = tf.Module()
    setattr(holder, attribute, network)
    prefix = os.path.join(checkpoint, "variables")
    try:
        read_variables(prefix, partial=True, agent=holder)
    except READ_ERRORS as error:
        message = one_line(error)
        kind = ("does not fit the network its state.json describes" if "shape" in message.lower()
                else "is corrupt or truncated")
        raise CheckpointError(f"checkpoint {checkpoint} {kind} ({type(error).__name__}: "
                              f"{message[:200]})") from None


def config_from_state(state, checkpoint):
    """The DQNConfig saved in state.json (JSON turned the hidden tuple into a list)."""
    saved = state["config"]
    known = {field.name for field in dataclasses.fields(DQNConfig)}
    if not isinstance(saved, dict) or set(saved) - known:
        raise CheckpointError(f"checkpoint {checkpoint} has an unreadable config "
                              f"(unknown fields {sorted(set(saved) - known) if isinstance(saved, dict) else saved})")
    try:
        return DQNConfig(**{**saved, "hidden": tuple(saved.get("hidden", ())),
                            "convs": tuple(tuple(conv) for conv in saved.get("convs", ()))}).validate()
    except (TypeError, UsageError) as error:
        raise CheckpointError(f"checkpoint {checkpoint} has an invalid config: {error}") from None


def one_line(error):
    return " ".join(str(error).split())


# --- the environment's state ----------------------------------------------------


