"""Classic-control environments and MinAtar Breakout in TensorFlow ops, batched over N copies.

Pure functions over an explicit state with a stateless RNG, so they compose
inside one `tf.function(jit_compile=True)` program and a `tf.while_loop`:

    env = rawdqn.envs.make("CartPole-v1")
    state, obs = env.reset(seed, num_envs)
    state, obs, reward, terminated, truncated, final_obs = env.step(state, action, seed)

The dynamics, rewards, termination, time limits and reset distributions are
gymnasium 1.4's (the minatar package's for Breakout, whose observations are
[N, 10, 10, 4] uint8 frames); tests/test_envs*.py checks them step by step.
"""

from rawdqn.envs.acrobot import Acrobot
from rawdqn.envs.cartpole import CartPole
from rawdqn.envs.core import Env, EnvState, StepResult
from rawdqn.envs.minatar_breakout import MinAtarBreakout
from rawdqn.envs.mountain_car import MountainCar
from rawdqn.envs.stateful import EnvRunner

_REGISTRY = {env.env_id: env for env in (CartPole, MountainCar, Acrobot, MinAtarBreakout)}


def available():
    """The env ids `make` knows, sorted."""
    return sorted(_REGISTRY)


def make(env_id, dtype="float32", max_episode_steps=None, sticky_actions=None):
    """A new environment object for env_id.

    Args:
      env_id: one of `available()`, e.g. "CartPole-v1".
      dtype: float32 (default) or float64, for the state, observations and rewards.
      max_episode_steps: the time limit; None takes gymnasium's registered one.
      sticky_actions: the probability of repeating the previous action (MinAtar); None keeps the env's default.
    """
    if env_id not in _REGISTRY:
        raise ValueError(f"Unknown env id {env_id!r}; available: {', '.join(available())}.")
    env_class = _REGISTRY[env_id]
    options = {}
    if sticky_actions is not None:
        if not hasattr(env_class, "sticky_actions"):
            raise ValueError(f"{env_id} has no sticky actions; leave sticky_actions unset")
        options["sticky_action_prob"] = float(sticky_actions)
    return env_class(dtype=dtype, max_episode_steps=max_episode_steps, **options)


__all__ = [
    "Acrobot",
    "CartPole",
    "Env",
    "EnvRunner",
    "EnvState",
    "MinAtarBreakout",
    "MountainCar",
    "StepResult",
    "available",
    "make",
]
