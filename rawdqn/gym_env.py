"""Gymnasium adaptation, in one place: make, spaces, observation encoding, batches (evaluation: rawdqn/evaluation.py).

The training loop sees every gymnasium source as a batch of N environments:

    obs, legal = envs.reset()                      # [N, ...]
    step = envs.step(actions)                      # EnvStep, every field [N, ...]

`step.next_obs` is the true observation after each action — where an episode was
truncated, its final observation, the one to bootstrap from — and `step.obs` the one to
act on next: the reset observation where an episode ended, else `next_obs`. N = 1 is a
single `gym.make` environment that the loop resets itself; N > 1 (or `vectorize=True`)
is gymnasium's SyncVectorEnv in SAME_STEP autoreset mode, where the step that ends an
episode already returns the reset observation and keeps the final one in
info["final_obs"]. Both give the same transitions for the same seed.

`EnvpoolEnvs` (rawdqn/envpool_envs.py) is the same batch over envpool (C++ environments
stepped in threads, where the `envpool` package installs). envpool resets an ended env on its *next* step, which
would return the reset observation as if it were a transition; EnvpoolEnvs resets the
ended envs itself in the step that ends them, so envpool too gives the loop SAME_STEP
batches and no step is ever a reset. `make_envs(source, ...)` builds either.
"""
import dataclasses
import warnings
from typing import Optional

import gymnasium as gym
import numpy as np

from rawdqn.errors import UsageError

# Atari as the Nature DQN saw it (gymnasium's AtariPreprocessing): up to 30 no-op steps after
# reset, each step 4 frames with the last two max-pooled, 84×84 grayscale (ALE ids only).
ATARI_PREPROCESSING = dict(noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True,
                           terminal_on_life_loss=False, scale_obs=False)


class EnvError(UsageError):
    """An environment rawdqn cannot train on; the message says why in one line."""


@dataclasses.dataclass
class EnvSpec:
    """What the agent needs to know about an environment's spaces."""
    obs_dim: int
    num_actions: int
    discrete_obs: bool
    action_start: int
    legal_actions: bool
    frame_shape: Optional[tuple] = None   # pixel observations: one frame's shape, [H, W] or [H, W, C]
    frame_max: float = 255.0              # their largest value: 255 for uint8 screens, 1 for MinAtar's bools
    # A vector observation's Box bounds, flat, where all are finite (else None): what
    # scale_observations maps to [−1, 1]. A checkpoint made before them matches without them.
    obs_low: Optional[tuple] = dataclasses.field(default=None, compare=False)
    obs_high: Optional[tuple] = dataclasses.field(default=None, compare=False)

    @classmethod
    def from_record(cls, record):
        """The spec as state.json holds it: lists for tuples; older records may lack frame_shape,
        frame_max (such runs scaled every frame by 1/255) and the bounds."""
        tuples = {name: None if record.get(name) is None else tuple(record[name])
                  for name in ("frame_shape", "obs_low", "obs_high")}
        return cls(**{**record, **tuples})

    def observation_bounds(self, env_id):
        """(low, high) for QNetwork's obs_bounds, or a UsageError naming why there are none."""
        if self.obs_low is None:
            raise UsageError(f"--scale-observations maps vector observations to [−1, 1] from their bounds; "
                             f"{env_id}'s observations have no finite bounds (or are not vectors): drop the flag")
        return self.obs_low, self.obs_high


@dataclasses.dataclass
class EnvStep:
    """One step of N environments, encoded for the agent (see the module docstring)."""
    next_obs: np.ndarray       # [N, ...] the true observation after the action
    reward: np.ndarray         # [N] float64
    terminated: np.ndarray     # [N] bool: no bootstrap
    truncated: np.ndarray      # [N] bool: bootstrap from next_obs
    obs: np.ndarray            # [N, ...] what to act on next
    next_legal: np.ndarray     # [N, num_actions] bool, or None
    legal: np.ndarray          # [N, num_actions] bool, or None
    life_lost: np.ndarray = None   # [N] bool, with terminal_on_life_loss: a life lost, the game going on

    @property
    def ended(self):
        """The episode is over: the env resets."""
        return self.terminated | self.truncated

    @property
    def no_bootstrap(self):
        """The target does not bootstrap: terminated, or (terminal_on_life_loss) a life lost."""
        return self.terminated if self.life_lost is None else self.terminated | self.life_lost


def register_family(env_id):
    """Register MinAtar's or the ALE's ids with gymnasium on first use (their packages are extras)."""
    if env_id in gym.registry:
        return
    if env_id.startswith("MinAtar/"):
        try:
            from minatar.gym import register_envs   # gymnasium 1.x dropped the plugin hook it used
        except ImportError:
            raise EnvError(f'{env_id} needs the minatar package: pip install "rawdqn[minatar]"') from None
        register_envs()
    elif env_id.startswith("ALE/"):
        try:
            import ale_py
        except ImportError:
            raise EnvError(f'{env_id} needs ale-py (which ships the ROMs): pip install "rawdqn[atari]"') from None
        gym.register_envs(ale_py)


# The settings only some families of ids take (env_options, GymnasiumEnvs' life loss); others would ignore them.
FAMILY_OPTIONS = {"noop_max": ("ALE/",), "terminal_on_life_loss": ("ALE/",), "sticky_actions": ("ALE/", "MinAtar/")}


def check_family_options(env_id, changes):
    """A setting the user gave that `env_id` would silently ignore is a usage error naming who takes it."""
    for name, families in FAMILY_OPTIONS.items():
        if name in changes and not env_id.startswith(families):
            raise UsageError(f"--{name.replace('_', '-')} applies to {' and '.join(f'{family}…' for family in families)} "
                             f"ids only; {env_id} would ignore it: drop the flag")


def env_options(env_id, config):
    """The gym.make kwargs `config` asks of `env_id`: a time limit, sticky actions (ALE, MinAtar)
    and the ALE's no-op starts (taken by make_env's AtariPreprocessing)."""
    options = {}
    if config is not None and config.max_episode_steps is not None:
        options["max_episode_steps"] = int(config.max_episode_steps)
    if config is not None and env_id.startswith("ALE/"):
        options["noop_max"] = config.noop_max
        if config.sticky_actions is not None:
            options["repeat_action_probability"] = config.sticky_actions
    elif config is not None and env_id.startswith("MinAtar/") and config.sticky_actions is not None:
        options["sticky_action_prob"] = config.sticky_actions
    return options


def time_limit(env_id, config=None):
    """The longest episode of `env_id` as training makes it: config.max_episode_steps, else the
    time limit its registration gives (None: it has none, or it is not registered)."""
    if config is not None and config.max_episode_steps is not None:
        return int(config.max_episode_steps)
    register_family(env_id)
    try:
        return gym.spec(env_id).max_episode_steps
    except gym.error.Error:
        return None


def env_kwargs_for(env_id, config, env_kwargs=None):
    """env_options(env_id, config) under the caller's own gym.make kwargs."""
    return {**env_options(env_id, config), **(env_kwargs or {})}


def make_env(env_id, render_mode=None, **env_kwargs):
    """gym.make(env_id, **env_kwargs) with rawdqn's checks: Discrete actions, Box or Discrete observations.

    ALE ids get ATARI_PREPROCESSING (the emulator then runs at frameskip 1: the wrapper skips;
    env_kwargs' noop_max replaces its number of no-op starts)."""
    register_family(env_id)
    atari = env_id.startswith("ALE/")
    preprocessing = dict(ATARI_PREPROCESSING, noop_max=env_kwargs.pop("noop_max", ATARI_PREPROCESSING["noop_max"]))
    try:
        # Only ask for a render mode when one is wanted: not every env accepts the argument.
        with warnings.catch_warnings():   # MinAtar's -v0 (the paper's full action sets) is not out of date
            warnings.filterwarnings("ignore", message=".*is out of date.*")
            env = gym.make(env_id, **({"render_mode": render_mode} if render_mode else {}),
                           **({"frameskip": 1} if atari else {}), **env_kwargs)
        if atari:
            env = gym.wrappers.AtariPreprocessing(env, **preprocessing)
    except gym.error.Error as error:
        raise EnvError(f"unknown environment {env_id!r} ({error}); "
                       "pass a registered gymnasium id such as CartPole-v1") from None
    except (ImportError, gym.error.DependencyNotInstalled) as error:
        raise EnvError(f"environment {env_id!r} needs a package that is not installed: {error}") from None
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise EnvError(f"{env_id} has a {type(env.action_space).__name__} action space; "
                       "DQN needs a Discrete action space")
    if not isinstance(env.observation_space, (gym.spaces.Box, gym.spaces.Discrete)):
        env.close()
        raise EnvError(f"{env_id} has a {type(env.observation_space).__name__} observation space; "
                       "rawdqn supports Box and Discrete observations")
    return env


def env_spec(env, info):
    """Sizes and encodings for `env`; `info` is the first reset's info (for action masks)."""
    space = env.observation_space
    discrete_obs = isinstance(space, gym.spaces.Discrete)
    obs_dim = int(space.n) if discrete_obs else int(np.prod(space.shape))
    frame_shape = frame_shape_of(space)
    bounded = (isinstance(space, gym.spaces.Box) and frame_shape is None
               and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)) and np.all(space.high > space.low))
    low, high = ((tuple(float(x) for x in np.ravel(space.low)), tuple(float(x) for x in np.ravel(space.high)))
                 if bounded else (None, None))
    return EnvSpec(obs_dim, int(env.action_space.n), discrete_obs, int(env.action_space.start),
                   "action_mask" in info, frame_shape, frame_max_of(space) if frame_shape else 255.0, low, high)


def frame_shape_of(space):
    """An image's shape — a Box of uint8 or bool, [H, W] or [H, W, C] — else None."""
    if (isinstance(space, gym.spaces.Box) and len(space.shape) in (2, 3)
            and np.dtype(space.dtype) in (np.dtype(np.uint8), np.dtype(bool))):
        return tuple(int(size) for size in space.shape)
    return None


def frame_max_of(space):
    """The largest value a frame can hold (the network divides by it): 1 for bool frames, else
    the Box's high (255 for an 8-bit screen)."""
    if np.dtype(space.dtype) == np.dtype(bool):
        return 1.0
    high = float(np.max(space.high))
    return high if 0 < high < np.inf else 255.0


def encode_obs(obs, spec):
    """A state index for Discrete observations (one-hot on the device), a uint8 frame for
    pixels — a FrameStackObservation's stack [h, H, W(, C)] as the network's [H, W, h · C] —
    else a flat float vector."""
    if spec.discrete_obs:
        return np.int32(obs)
    if spec.frame_shape:
        obs = np.asarray(obs, np.uint8)
        if obs.ndim == len(spec.frame_shape) + 1:   # stacked, oldest first
            obs = np.moveaxis(obs, 0, 2 if len(spec.frame_shape) == 2 else -2)
            obs = obs.reshape(*obs.shape[:2], -1)
        return obs
    return np.asarray(obs, np.float32).reshape(-1)


def encode_batch(obs, spec):
    """[N, ...] observations → [N] state indices, [N, *frame_shape] uint8 frames or [N, obs_dim] float32."""
    if spec.discrete_obs:
        return np.asarray(obs, np.int32).reshape(-1)
    if spec.frame_shape:
        return np.asarray(obs, np.uint8)
    obs = np.asarray(obs, np.float32)
    return obs.reshape(obs.shape[0], -1)


def legal_mask_of(info, spec):
    return np.asarray(info["action_mask"], bool) if spec.legal_actions else None


class GymnasiumEnvs:
    """N copies of a gymnasium environment stepped together; see the module docstring."""

    def __init__(self, env_id, num_envs, seed, vectorize=None, env_kwargs=None, action_masks=True,
                 terminal_on_life_loss=False):
        """env_kwargs go to gym.make; action_masks=False ignores an env's info["action_mask"];
        terminal_on_life_loss marks a lost life as terminal for the target while the game goes
        on (Mnih et al. 2015, training only; the ALE's lives)."""
        self.env_id, self.num_envs, self.seed = env_id, int(num_envs), int(seed)
        self.env_kwargs, self.action_masks = dict(env_kwargs or {}), bool(action_masks)
        self.vectorized = self.num_envs > 1 if vectorize is None else bool(vectorize)
        first = make_env(env_id, **self.env_kwargs)   # checks the spaces, with a one-line error
        self.terminal_on_life_loss, self.lives = bool(terminal_on_life_loss), None
        if self.terminal_on_life_loss and not hasattr(first.unwrapped, "ale"):
            first.close()
            raise EnvError(f"terminal_on_life_loss needs an Atari game's lives; {env_id} is not an ALE id")
        if self.vectorized:
            # Each copy built exactly like the first (its wrappers, its time limit).
            self.vector = gym.vector.SyncVectorEnv(
                [lambda: first] + [lambda: make_env(env_id, **self.env_kwargs)] * (self.num_envs - 1),
                autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
            self.envs = self.vector.envs
        else:
            if self.num_envs != 1:
                raise ValueError("one unvectorized environment means num_envs=1")
            self.envs = [first]
        self.spec = None

    def reset(self):
        """The first observations [N, ...] and legal-action masks, seeds seed, seed + 1, …"""
        if self.vectorized:
            obs, info = self.vector.reset(seed=self.seed)
        else:
            obs, info = self.envs[0].reset(seed=self.seed)
            obs, info = np.asarray(obs)[None], {key: np.asarray(value)[None] for key, value in info.items()}
        self.envs[0].action_space.seed(self.seed)
        self.spec = env_spec(self.envs[0], info)
        if not self.action_masks:
            self.spec = dataclasses.replace(self.spec, legal_actions=False)
        if not np.all(np.isfinite(np.asarray(obs, np.float64))):
            raise EnvError(f"{self.env_id} returned a non-finite observation at reset")
        self.lives = self.lives_now()
        return encode_batch(obs, self.spec), legal_mask_of(info, self.spec)

    def lives_now(self):
        """[N] lives left in each game, with terminal_on_life_loss; else None."""
        return np.array([env.unwrapped.ale.lives() for env in self.envs]) if self.terminal_on_life_loss else None

    def with_life_loss(self, env_step):
        """env_step with life_lost (lives_lost), with terminal_on_life_loss."""
        if self.terminal_on_life_loss:
            lives = self.lives_now()
            env_step.life_lost = lives_lost(self.lives, lives, env_step.ended)
            self.lives = lives
        return env_step

    def step(self, actions):
        """Step every environment by `actions` [N] (0-based); returns an EnvStep."""
        spec = self.spec
        actions = np.asarray(actions) + spec.action_start
        if self.vectorized:
            obs, reward, terminated, truncated, info = self.vector.step(actions)
            acting, legal = encode_batch(obs, spec), legal_mask_of(info, spec)
            stored, next_legal = acting.copy(), None if legal is None else legal.copy()
            for i in np.flatnonzero(info.get("_final_obs", ())):
                stored[i] = encode_obs(info["final_obs"][i], spec)
                if legal is not None:
                    next_legal[i] = info["final_info"]["action_mask"][i]
            return self.with_life_loss(EnvStep(stored, np.asarray(reward, np.float64), np.asarray(terminated, bool),
                                               np.asarray(truncated, bool), acting, next_legal, legal))
        env = self.envs[0]
        obs, reward, terminated, truncated, info = env.step(int(actions[0]))
        stored = acting = encode_batch(np.asarray(obs)[None], spec)
        next_legal = legal = None if not spec.legal_actions else legal_mask_of(info, spec)[None]
        if terminated or truncated:
            obs, info = env.reset()
            acting = encode_batch(np.asarray(obs)[None], spec)
            legal = None if not spec.legal_actions else legal_mask_of(info, spec)[None]
        return self.with_life_loss(EnvStep(stored, np.array([reward], np.float64), np.array([terminated]),
                                           np.array([truncated]), acting, next_legal, legal))

    def close(self):
        (self.vector if self.vectorized else self.envs[0]).close()

    def saved_state(self):
        """Each environment's state (rawdqn/env_state.py), for a checkpoint."""
        from rawdqn import env_state
        return [env_state.env_state(env) for env in self.envs]

    def restore_state(self, saved):
        """Put back what saved_state returned; True: the episodes in progress continue."""
        from rawdqn import compat, env_state
        saved = compat.per_env(saved)
        if len(saved) != len(self.envs):
            raise ValueError(f"{len(saved)} environment states for {len(self.envs)} environments")
        for env, saved_env in zip(self.envs, saved):
            env_state.set_env_state(env, saved_env)
        self.lives = self.lives_now()
        return True


ENV_SOURCES = ("gymnasium", "envpool")


def lives_lost(before, after, ended):
    """[N] bool: fewer lives after the step than before it, in a game still going (an ended
    game's env has reset, so its lives are a new game's)."""
    return (after < before) & ~ended


def make_envs(source, env_id, num_envs, seed, vectorize=None, env_kwargs=None, action_masks=True,
              terminal_on_life_loss=False):
    """The batch of N environments the loop steps: gymnasium's (GymnasiumEnvs) or envpool's."""
    if source == "envpool":
        from rawdqn.envpool_envs import EnvpoolEnvs
        return EnvpoolEnvs(env_id, num_envs, seed, env_kwargs, terminal_on_life_loss)
    if source != "gymnasium":
        raise UsageError(f"--env-source must be one of {', '.join(ENV_SOURCES)}; got {source!r}")
    return GymnasiumEnvs(env_id, num_envs, seed, vectorize, env_kwargs, action_masks, terminal_on_life_loss)


def __getattr__(name):
    """The evaluation functions (rawdqn/evaluation.py: evaluate, play_greedy, make_eval_env), importable from here too."""
    if name == "EnvpoolEnvs":
        from rawdqn.envpool_envs import EnvpoolEnvs
        return EnvpoolEnvs
    if name in ("make_eval_env", "evaluate", "play_greedy", "greedy_action", "EVAL_STEP_LIMIT", "PIXEL_EVAL_STEP_LIMIT",
                "SELECTION_EVAL_SEED", "FRESH_EVAL_SEED"):
        from rawdqn import evaluation
        return getattr(evaluation, name)
    raise AttributeError(f"module 'rawdqn.gym_env' has no attribute {name!r}")
