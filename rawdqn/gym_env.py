"""Gymnasium adaptation, in one place: make, spaces, observation encoding, batches, evaluation.

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

`EnvpoolEnvs` is the same batch over envpool (C++ environments stepped in threads, where
the `envpool` package installs). envpool resets an ended env on its *next* step, which
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

EVAL_STEP_LIMIT = 1_000        # per evaluation episode, for envs without a time limit (CliffWalking)
PIXEL_EVAL_STEP_LIMIT = 27_000  # the same for pixel envs (MinAtar): the ALE's 108,000 frames at frame skip 4
# Atari as the Nature DQN saw it (gymnasium's AtariPreprocessing): up to 30 no-op steps after
# reset, each step 4 frames with the last two max-pooled, 84×84 grayscale (ALE ids only).
ATARI_PREPROCESSING = dict(noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True,
                           terminal_on_life_loss=False, scale_obs=False)
SELECTION_EVAL_SEED = 10_000   # evaluation seeds: the run's seed + this, during training
FRESH_EVAL_SEED = 20_000       # and for the kept weights' final evaluation (keep_best)


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
        """env_step with life_lost: fewer lives than before the step, in a game still going
        (an ended game's env has already reset)."""
        if self.terminal_on_life_loss:
            lives = self.lives_now()
            env_step.life_lost = (lives < self.lives) & ~env_step.ended
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
        """Each environment's state (rawdqn/checkpoint.py), for a checkpoint."""
        from rawdqn import checkpoint   # TensorFlow: only once a run saves
        return [checkpoint.env_state(env) for env in self.envs]

    def restore_state(self, saved):
        """Put back what saved_state returned (a dict alone: a checkpoint from before vector
        envs); True: the episodes in progress continue."""
        from rawdqn import checkpoint
        saved = saved if isinstance(saved, list) else [saved]
        if len(saved) != len(self.envs):
            raise ValueError(f"{len(saved)} environment states for {len(self.envs)} environments")
        for env, env_state in zip(self.envs, saved):
            checkpoint.set_env_state(env, env_state)
        self.lives = self.lives_now()
        return True


ENV_SOURCES = ("gymnasium", "envpool")


def make_envs(source, env_id, num_envs, seed, vectorize=None, env_kwargs=None, action_masks=True,
              terminal_on_life_loss=False):
    """The batch of N environments the loop steps: gymnasium's (GymnasiumEnvs) or envpool's."""
    if source == "envpool":
        if terminal_on_life_loss:
            raise UsageError("--terminal-on-life-loss runs on gymnasium's envs; drop --env-source envpool")
        return EnvpoolEnvs(env_id, num_envs, seed, env_kwargs)
    if source != "gymnasium":
        raise UsageError(f"--env-source must be one of {', '.join(ENV_SOURCES)}; got {source!r}")
    return GymnasiumEnvs(env_id, num_envs, seed, vectorize, env_kwargs, action_masks, terminal_on_life_loss)


class EnvpoolEnvs:
    """N envpool environments as one batch with GymnasiumEnvs's reset/step (module docstring).

    envpool's state lives in C++ and cannot be read out, so a checkpoint holds none
    (saved_state() is None) and a resumed run starts new episodes (restore_state → False).
    Evaluation plays gymnasium's environment of the same id, the reference one.
    """

    def __init__(self, env_id, num_envs, seed, env_kwargs=None):
        try:
            import envpool
        except ImportError:
            raise EnvError("--env-source envpool needs the envpool package: pip install envpool "
                           "(Linux and macOS wheels)") from None
        self.env_id, self.num_envs, self.seed = env_id, int(num_envs), int(seed)
        self.env_kwargs = dict(env_kwargs or {})
        if env_id not in envpool.list_all_envs():
            raise EnvError(f"envpool has no environment {env_id!r}; envpool.list_all_envs() lists its ids")
        if env_id not in gym.registry:
            raise EnvError(f"{env_id} is an envpool id that gymnasium does not register; rawdqn evaluates "
                           "on gymnasium's environment of the same id")
        with warnings.catch_warnings():   # gymnasium's note that envpool's float64 bounds became float32
            warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
            self.vector = envpool.make_gymnasium(env_id, num_envs=self.num_envs, batch_size=self.num_envs,
                                                 seed=self.seed, **self.env_kwargs)
            self.vector.observation_space, self.vector.action_space   # made on first use
        if not isinstance(self.vector.action_space, gym.spaces.Discrete):
            self.vector.close()
            raise EnvError(f"{env_id} has a {type(self.vector.action_space).__name__} action space; "
                           "DQN needs a Discrete action space")
        if not isinstance(self.vector.observation_space, gym.spaces.Box):
            self.vector.close()
            raise EnvError(f"{env_id} has a {type(self.vector.observation_space).__name__} observation "
                           "space in envpool; rawdqn's envpool source takes Box observations")
        self.envs = []
        self.spec = None

    def reset(self):
        obs, _ = self.vector.reset()
        self.spec = env_spec(self.vector, {})
        return self.checked(obs, "at reset"), None

    def step(self, actions):
        """Step every environment; those that ended are reset here, so `obs` is what to act on."""
        obs, reward, terminated, truncated, _ = self.vector.step(np.asarray(actions) + self.spec.action_start)
        stored = self.checked(obs, "after a step")
        acting = stored.copy()
        ended = np.flatnonzero(np.logical_or(terminated, truncated))
        if ended.size:
            reset_obs, info = self.vector.reset(ended.astype(np.int32))
            acting[info["env_id"]] = self.checked(reset_obs, "at reset")
        return EnvStep(stored, np.asarray(reward, np.float64), np.asarray(terminated, bool),
                       np.asarray(truncated, bool), acting, None, None)

    def checked(self, obs, when):
        if not np.all(np.isfinite(obs)):
            raise EnvError(f"{self.env_id} (envpool) returned a non-finite observation {when}")
        return encode_batch(obs, self.spec)

    def close(self):
        self.vector.close()

    def saved_state(self):
        return None

    def restore_state(self, saved):
        return False


def make_eval_env(env_id, history=1, pad="zeros", render_mode=None, env_kwargs=None, config=None):
    """The env an evaluation plays: make_env (with env_options(config) under env_kwargs), with
    `history` > 1 gymnasium's FrameStackObservation (zeros or the reset frame repeated before
    the first frame), whose stacks encode_obs lays out as the training stacks (checked in
    tests/test_pixels.py)."""
    env = make_env(env_id, render_mode=render_mode, **env_kwargs_for(env_id, config, env_kwargs))
    if history > 1:
        env = gym.wrappers.FrameStackObservation(env, history, padding_type="zero" if pad == "zeros" else "reset")
    return env


def evaluate(agent, env_id, episodes, seed, spec=None, env_kwargs=None, config=None):
    """Mean and std of the evaluation policy's undiscounted return over `episodes` episodes.

    The policy is ε-greedy with ε = config.eval_epsilon (0, greedy, without a config), over
    stacks of config.history frames on pixel envs. An episode ends at termination, at the
    env's time limit, or — where the env has none — after EVAL_STEP_LIMIT steps
    (PIXEL_EVAL_STEP_LIMIT for pixels): a greedy policy can loop forever.
    """
    history, pad, epsilon = (config.history, config.frame_pad, config.eval_epsilon) if config else (1, "zeros", 0.0)
    env = make_eval_env(env_id, history, pad, env_kwargs=env_kwargs, config=config)
    try:
        step_limit = env.spec.max_episode_steps if env.spec and env.spec.max_episode_steps else None
        if step_limit is None:
            pixels = (spec or env_spec(env, {})).frame_shape is not None
            step_limit = PIXEL_EVAL_STEP_LIMIT if pixels else EVAL_STEP_LIMIT
        returns = play_greedy(agent, env, episodes, seed, spec, step_limit, epsilon=epsilon)
    finally:
        env.close()
    return float(np.mean(returns)), float(np.std(returns))


def play_greedy(agent, env, episodes, seed, spec=None, step_limit=None, after_step=None, epsilon=0.0):
    """The returns of up to `episodes` episodes, the first from env.reset(seed=seed).

    a = argmax over legal a of Q(s, a; θ) (`agent` has `q_values`: a DQN or a GreedyPolicy);
    with `epsilon` > 0, a uniform legal action instead with probability ε (the draws from
    a generator seeded with `seed`). `after_step()` runs after the first reset and after
    every step; when it returns False, play stops there (the episode in progress counts
    with its return so far).
    """
    obs, info = env.reset(seed=seed)
    spec = spec or env_spec(env, info)
    rng = np.random.default_rng(seed)
    returns, playing = [], after_step() if after_step else True
    for _ in range(episodes):
        total, done, steps = 0.0, False, 0
        while playing and not done and (step_limit is None or steps < step_limit):
            steps += 1
            action = greedy_action(agent, obs, info, spec)
            if epsilon > 0 and rng.random() < epsilon:
                mask = legal_mask_of(info, spec)
                action = int(rng.choice(np.flatnonzero(mask) if mask is not None else spec.num_actions)) \
                    + spec.action_start
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
            playing = after_step() if after_step else True
        returns.append(total)
        if not playing:
            break
        obs, info = env.reset()
    return returns


def greedy_action(agent, obs, info, spec):
    """argmax over the legal actions of Q(s, ·; θ), as the environment numbers its actions:
    the GreedyPolicy of the agent's online network (rawdqn/policy.py), which `eval` also plays."""
    from rawdqn.policy import GreedyPolicy
    policy = agent if isinstance(agent, GreedyPolicy) else GreedyPolicy.of(agent, spec.action_start)
    mask = legal_mask_of(info, spec)
    return int(policy.actions(encode_obs(obs, spec)[None], None if mask is None else mask[None]).numpy()[0])
