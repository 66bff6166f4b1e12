"""Reading what older versions of rawdqn wrote: every conversion of an old layout, in one place.

A checkpoint's state.json names its format (rawdqn/checkpoint.py's READABLE_FORMATS); values
that a format did not have yet take their defaults where they are read.
"""
import numpy as np


def is_layout_2(keys):
    """Whether a checkpoint's keys are rawdqn-checkpoint-2's (a variable per layer)."""
    return any(name.endswith(LAYOUT_2_MARK) for name in keys)


def per_env(saved):
    """Per-env values as a list: checkpoints written before vector envs hold one env's value alone
    (its episode in progress, its environment state)."""
    return saved if isinstance(saved, list) else [saved]


LAYOUT_2_MARK = "/kernels/0/.ATTRIBUTES/VARIABLE_VALUE"
REPLAY_FIELDS_2 = ("obs", "next_obs", "action", "reward", "terminated", "next_legal_mask")


def read_layout_2(reader, keys, partial, **roots):
    """Assign the values of a rawdqn-checkpoint-2 file to today's variables.

    Format 2 had a variable per layer (X/kernels/i, X/biases/i), per optimizer slot and
    layer (X/slots/NAME/i) and per replay field (X/obs, X/action, …); today a network is
    θ = [W_0 | b_0 | W_1 | …], a slot is one vector in θ's layout, and the replay is one
    row per transition. Every other value keeps its name and goes to the attribute it names.
    """
    from rawdqn.network import QNetwork
    from rawdqn.optim import Optimizer
    from rawdqn.replay import ReplayBuffer

    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    names = sorted(name[:-len(suffix)] for name in keys if name.endswith(suffix))

    def resolve(parts):
        obj = roots
        try:
            for part in parts:
                obj = obj[int(part)] if isinstance(obj, (list, tuple)) else (
                    obj[part] if isinstance(obj, dict) else getattr(obj, part))
        except (AttributeError, KeyError, IndexError, ValueError):
            return None
        return obj

    def value(*parts):
        return reader.get_tensor("/".join(parts) + suffix)

    networks, slots, replays = set(), set(), set()
    for name in names:
        parts = tuple(name.split("/"))
        if len(parts) > 2 and parts[-2] in ("kernels", "biases") and isinstance(resolve(parts[:-2]), QNetwork):
            networks.add(parts[:-2])
        elif len(parts) > 3 and parts[-3] == "slots" and isinstance(resolve(parts[:-3]), Optimizer):
            slots.add(parts[:-1])
        elif parts[-1] in REPLAY_FIELDS_2 and isinstance(resolve(parts[:-1]), ReplayBuffer):
            replays.add(parts[:-1])
        elif (variable := resolve(parts)) is not None:
            variable.assign(value(*parts))
        elif not partial:
            raise ValueError(f"the checkpoint holds {name}, which this program does not have")
    for path in networks:   # θ = [W_0 | b_0 | W_1 | b_1 | …]
        network = resolve(path)
        pieces = []
        for layer in range(len(network.kernels)):
            pieces.append(value(*path, "kernels", str(layer)).reshape(-1))
            if network.use_bias:
                pieces.append(value(*path, "biases", str(layer)).reshape(-1))
        network.theta.assign(np.concatenate(pieces))
    for path in slots:      # one slot per former variable, in the same order as θ's pieces
        count = sum(1 for name in names if name.startswith("/".join(path) + "/"))
        resolve(path[:-2]).slots[path[-1]][0].assign(
            np.concatenate([value(*path, str(i)).reshape(-1) for i in range(count)]))
    for path in replays:
        replay = resolve(path)
        fields = {field: value(*path, field) for field in REPLAY_FIELDS_2
                  if "/".join((*path, field)) + suffix in keys}
        replay.rows.assign(replay.to_rows(**fields))


def ondevice_roots(prefix, trainer):
    """The roots to read an on-device checkpoint into: older files keep the per-seed runs under
    trainer/lanes/i, where today's keep them under trainer/seed_runs/i."""
    import tensorflow as tf
    if not any(name.startswith("trainer/lanes/") for name, _ in tf.train.list_variables(prefix)):
        return {"trainer": trainer}
    renamed = tf.Module()
    renamed.lanes = trainer.seed_runs
    return {"trainer": renamed}
