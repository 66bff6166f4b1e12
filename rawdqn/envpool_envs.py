"""envpool's C++ environments as the loop's batch of N (rawdqn/gym_env.py's module docstring says
how its next-step autoreset becomes gymnasium's same-step one)."""
import warnings

import gymnasium as gym
import numpy as np

from rawdqn.gym_env import EnvError, EnvStep, encode_batch, env_spec


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
