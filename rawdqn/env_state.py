"""An environment's own state in a checkpoint, so a resumed run continues its episodes exactly:
gymnasium's classic-control state, toy-text's, MinAtar's (with its shared RandomState) and the
ALE emulator's serialised state, as JSON-safe values (encode, decode)."""
import base64

import gymnasium
import numpy as np


def mismatch(message):
    """The CheckpointError to raise where a saved state does not fit the environment."""
    from rawdqn.checkpoint import CheckpointError   # here: rawdqn.checkpoint imports this module
    return CheckpointError(message)


def env_state(env):
    """The environment's state as JSON: what gymnasium lets us read without pickling.

    Covered: every plain-data attribute of the unwrapped environment (numbers, strings,
    numeric arrays, lists and dicts of them — CartPole's `state`, FrozenLake's `s`, …),
    its `np_random` bit-generator state, each wrapper's plain attributes (TimeLimit's
    elapsed steps, OrderEnforcing's has-reset flag), and objects of PLAIN_DATA_PACKAGES
    all the way down (MinAtar's game, with its RandomState), and the ALE emulator (its own
    serialised state, RNG included). Not covered: state held in other objects (Box2D
    worlds, MuJoCo simulations), listed under "not_saved".
    """
    layers = []
    wrapper = env
    while isinstance(wrapper, gymnasium.Wrapper):
        layers.append(plain_attributes(wrapper, skip=("env",)))
        wrapper = wrapper.env
    unwrapped = plain_attributes(wrapper, skip=())
    generator = getattr(wrapper, "_np_random", None)
    return {"wrappers": layers, "unwrapped": unwrapped,
            "np_random": None if generator is None else generator.bit_generator.state,
            "not_saved": sorted(name for name, value in vars(wrapper).items()
                                if not name.startswith("_") and value is not None
                                and encode(value) is None and name not in UNSAVED_BY_DESIGN)}


# Attributes rebuilt identically by gym.make (spaces, spec, transition tables, renderer).
UNSAVED_BY_DESIGN = {"action_space", "observation_space", "spec", "P", "locs", "locs_colors",
                     "reward_range", "window_size", "cell_size", "shape", "metadata",
                     "render_mode", "desc"}


# Packages whose objects hold only plain data and RandomStates: saved attribute by attribute.
PLAIN_DATA_PACKAGES = ("minatar",)


def set_env_state(env, saved):
    """Write back what env_state read; `env` must come from gym.make of the same id."""
    wrapper = env
    for layer in saved["wrappers"]:
        if not isinstance(wrapper, gymnasium.Wrapper):
            raise mismatch("the environment's wrappers differ from the checkpoint's")
        for name, value in layer.items():
            setattr(wrapper, name, decode(value, getattr(wrapper, name, None)))
        wrapper = wrapper.env
    for name, value in saved["unwrapped"].items():
        setattr(wrapper, name, decode(value, getattr(wrapper, name, None)))
    if saved.get("np_random") is not None:
        wrapper.np_random.bit_generator.state = saved["np_random"]


def plain_attributes(obj, skip):
    attributes = {}
    for name, value in vars(obj).items():
        encoded = None if name in skip else encode(value)
        if encoded is not None:
            attributes[name] = encoded
    return attributes


def encode(value):
    """A JSON form that decode() turns back into the same value, or None if there is none."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"python": value}
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return {"numpy": value.dtype.str, "value": value.item()}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"array": value.dtype.str, "shape": list(value.shape), "value": value.ravel().tolist()}
    if isinstance(value, tuple) and all(isinstance(v, (bool, int, float)) for v in value):
        return {"tuple": list(value)}
    if isinstance(value, list):
        items = [encode(item) for item in value]
        return None if any(item is None for item in items) else {"list": items}
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        items = {key: encode(item) for key, item in value.items()}
        return None if any(item is None for item in items.values()) else {"dict": items}
    if isinstance(value, np.random.RandomState):
        name, keys, position, has_gauss, cached_gaussian = value.get_state()
        return {"random_state": [name, keys.tolist(), int(position), int(has_gauss), float(cached_gaussian)]}
    if type(value).__module__.split(".")[0] in PLAIN_DATA_PACKAGES:
        attributes = {name: encode(item) for name, item in vars(value).items()}
        return None if any(item is None for item in attributes.values()) else {"object": attributes}
    if type(value).__name__ == "ALEInterface" and type(value).__module__.startswith("ale_py"):
        # The emulator's own serialisation: RAM, CPU, frame counters and the RNG sticky actions draw from.
        return {"ale_state": base64.b64encode(value.cloneState(include_rng=True).serialize()).decode("ascii")}
    return None


def decode(encoded, current=None):
    """The value encode() saw. RandomStates and PLAIN_DATA_PACKAGES objects are restored
    into `current`, the live one in the same place: objects that share one (MinAtar's game
    and its env share a RandomState) go on sharing it."""
    if "python" in encoded:
        return encoded["python"]
    if "numpy" in encoded:
        return np.dtype(encoded["numpy"]).type(encoded["value"])
    if "array" in encoded:
        return np.asarray(encoded["value"], np.dtype(encoded["array"])).reshape(encoded["shape"])
    if "list" in encoded:
        return [decode(item) for item in encoded["list"]]
    if "dict" in encoded:
        return {key: decode(item) for key, item in encoded["dict"].items()}
    if "random_state" in encoded:
        name, keys, position, has_gauss, cached_gaussian = encoded["random_state"]
        if not isinstance(current, np.random.RandomState):
            current = np.random.RandomState()
        current.set_state((name, np.asarray(keys, np.uint32), position, has_gauss, cached_gaussian))
        return current
    if "ale_state" in encoded:
        import ale_py
        if current is None:
            raise mismatch("the checkpoint holds an Atari emulator's state but this environment has none")
        current.restoreState(ale_py.ALEState(base64.b64decode(encoded["ale_state"])))
        return current
    if "object" in encoded:
        if current is None:
            raise mismatch("the environment's objects differ from the checkpoint's")
        for name, value in encoded["object"].items():
            setattr(current, name, decode(value, getattr(current, name, None)))
        return current
    return tuple(encoded["tuple"])
