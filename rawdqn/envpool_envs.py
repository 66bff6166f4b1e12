"""envpool's C++ environments as the loop's batch of N (rawdqn/gym_env.py's module docstring says
how its next-step autoreset becomes gymnasium's same-step one).

An ALE id (ALE/Pong-v5) steps envpool's game of that name (Pong-v5) with the frames gymnasium's
AtariPreprocessing gives the gymnasium source (gym_env.ATARI_PREPROCESSING): 4 frames skipped with
the last two max-pooled, 84×84 grayscale, 1 to 30 no-op starts, no FIRE at reset, no reward
clipping, one frame per step (the agent stacks them) and an episode a whole game; with
terminal_on_life_loss a lost life is a terminal for the target only, read from envpool's lives.
"""
import warnings

import gymnasium as gym
import numpy as np

from rawdqn.gym_env import (ATARI_PREPROCESSING, EnvError, EnvStep, encode_batch, env_spec, lives_lost,
                            register_family)


class _Spaces:
    """The spaces env_spec reads."""

    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space


def atari_options(env_kwargs):
    """envpool's Atari options for the frames gymnasium's AtariPreprocessing gives (module docstring),
    with the gym.make kwargs rawdqn passes (no-op starts, sticky actions, a time limit) translated."""
    noop_max = env_kwargs.pop("noop_max", ATARI_PREPROCESSING["noop_max"])
    if noop_max < 1:   # envpool draws 1 … noop_max no-ops (gymnasium's preprocessing the same, or none at 0)
        raise EnvError(f"envpool's Atari games make at least one no-op at reset; --noop-max {noop_max} needs "
                       "--env-source gymnasium")
    options = dict(frame_skip=ATARI_PREPROCESSING["frame_skip"], img_height=ATARI_PREPROCESSING["screen_size"],
                   img_width=ATARI_PREPROCESSING["screen_size"], gray_scale=ATARI_PREPROCESSING["grayscale_obs"],
                   stack_num=1, episodic_life=False, reward_clip=False, use_fire_reset=False,
                   noop_max=noop_max,
                   repeat_action_probability=env_kwargs.pop("repeat_action_probability", 0.25))
    if "max_episode_steps" in env_kwargs:   # gymnasium's limit counts emulator frames, envpool's agent steps
        options["max_episode_steps"] = env_kwargs.pop("max_episode_steps") // options["frame_skip"]
    return {**options, **env_kwargs}


class EnvpoolEnvs:
    """N envpool environments as one batch with GymnasiumEnvs's reset/step (module docstring).

    envpool's state lives in C++ and cannot be read out, so a checkpoint holds none
    (saved_state() is None) and a resumed run starts new episodes (restore_state → False).
    Evaluation plays gymnasium's environment of the same id, the reference one.
    """

    def __init__(self, env_id, num_envs, seed, env_kwargs=None, terminal_on_life_loss=False):
        try:
            import envpool
        except ImportError:
            raise EnvError("--env-source envpool needs the envpool package: pip install envpool "
                           "(Linux and macOS wheels)") from None
        self.env_id, self.num_envs, self.seed = env_id, int(num_envs), int(seed)
        self.env_kwargs = dict(env_kwargs or {})
        self.atari = env_id.startswith("ALE/")
        pool_id = env_id[len("ALE/"):] if self.atari else env_id
        if pool_id not in envpool.list_all_envs():
            raise EnvError(f"envpool has no environment {pool_id!r}; envpool.list_all_envs() lists its ids")
        pool_options = dict(self.env_kwargs)   # env_kwargs stay gym.make's, for evaluation on gymnasium
        if self.atari:
            register_family(env_id)
            pool_options = atari_options(pool_options)
        if env_id not in gym.registry:
            raise EnvError(f"{env_id} is an envpool id that gymnasium does not register; rawdqn evaluates "
                           "on gymnasium's environment of the same id")
        if terminal_on_life_loss and not self.atari:
            raise EnvError(f"--terminal-on-life-loss needs a game with lives (an ALE id); {env_id} has none")
        self.terminal_on_life_loss, self.lives = terminal_on_life_loss, None
        with warnings.catch_warnings():   # gymnasium's note that envpool's float64 bounds became float32
            warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
            self.vector = envpool.make_gymnasium(pool_id, num_envs=self.num_envs, batch_size=self.num_envs,
                                                 seed=self.seed, **pool_options)
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
        obs, info = self.vector.reset()
        space = self.vector.observation_space
        if self.atari:   # one frame per step: [1, 84, 84] → [84, 84], as gymnasium's preprocessing gives it
            space = gym.spaces.Box(0, 255, space.shape[1:], np.uint8)
        self.spec = env_spec(_Spaces(space, self.vector.action_space), {})
        self.lives = np.asarray(info["lives"]) if self.terminal_on_life_loss else None
        return self.checked(obs, "at reset"), None

    def step(self, actions):
        """Step every environment; those that ended are reset here, so `obs` is what to act on."""
        obs, reward, terminated, truncated, info = self.vector.step(np.asarray(actions) + self.spec.action_start)
        stored = self.checked(obs, "after a step")
        acting = stored.copy()
        lives = np.array(info["lives"]) if self.terminal_on_life_loss else None
        ended = np.flatnonzero(np.logical_or(terminated, truncated))
        if ended.size:
            reset_obs, reset_info = self.vector.reset(ended.astype(np.int32))
            acting[reset_info["env_id"]] = self.checked(reset_obs, "at reset")
            if lives is not None:   # a new game's, as gymnasium's envs give them after their reset
                lives[reset_info["env_id"]] = reset_info["lives"]
        env_step = EnvStep(stored, np.asarray(reward, np.float64), np.asarray(terminated, bool),
                           np.asarray(truncated, bool), acting, None, None)
        if lives is not None:
            env_step.life_lost = lives_lost(self.lives, lives, env_step.ended)
            self.lives = lives
        return env_step

    def checked(self, obs, when):
        if not np.all(np.isfinite(obs)):
            raise EnvError(f"{self.env_id} (envpool) returned a non-finite observation {when}")
        return encode_batch(obs[:, 0] if self.atari else obs, self.spec)

    def close(self):
        self.vector.close()

    def saved_state(self):
        return None

    def restore_state(self, saved):
        return False
