"""The greedy policy of a trained Q-network: what `eval`, `watch` and `export` run.

    a = argmax_{a legal} Q(s, a; θ) + action_start,   returned with Q(s, ·; θ)

`GreedyPolicy` holds only the online network, so it loads from a checkpoint without
the replay and saves as a SavedModel that runs with plain `tf.saved_model.load`.
"""
import json
import os
import weakref

import tensorflow as tf

from rawdqn import bellman, checkpoint
from rawdqn.engine.kernel import compile_kernel
from rawdqn.network import ConvQNetwork, QNetwork
from rawdqn.pixel_agent import conv_q_network


# GreedyPolicy.of's policies, kept beside their agents rather than on them: an attribute of a
# tf.Module would become part of the agent's checkpoint.
AGENTS_POLICIES = weakref.WeakKeyDictionary()


class GreedyPolicy(tf.Module):
    """Actions and Q-values for a batch of observations.

    Observations are float32 `[batch, obs_dim]`, int32 state indices `[batch]` for
    environments with Discrete observations (one-hot encoded inside), or uint8 stacks of
    frames `[batch, H, W, history · C]` for a ConvQNetwork. `config` is the run's (its
    evaluation ε and frame stacking), where known.
    """

    def __init__(self, network, discrete_obs=False, action_start=0, legal_actions=False, mode="xla",
                 config=None, name=None):
        super().__init__(name=name)
        self.network = network
        self.config = config
        self.pixels = isinstance(network, ConvQNetwork)
        self.discrete_obs = bool(discrete_obs)
        self.action_start = int(action_start)
        self.legal_actions = bool(legal_actions)
        # Compiled as the run's own kernels were, so `rawdqn eval` computes training's numbers bit for bit.
        self._q_values = compile_kernel(self.q_values_fn, mode)
        self._actions = compile_kernel(self.actions_fn, mode)

    @classmethod
    def of(cls, agent, action_start=0):
        """The greedy policy of a training agent's online network (its policy's, for the policy-gradient
        agents: the most probable action), made once per agent and kept beside it."""
        policy = AGENTS_POLICIES.get(agent)
        if policy is None or policy.action_start != action_start:
            policy = AGENTS_POLICIES[agent] = cls(agent.online, agent.discrete_obs, action_start, agent.legal_actions,
                                                  mode=agent.config.mode, config=agent.config)
        return policy

    def features(self, observation):
        if self.discrete_obs:
            return tf.one_hot(tf.cast(observation, tf.int32), self.network.obs_dim, dtype=self.network.dtype)
        return observation if self.pixels else tf.cast(observation, self.network.dtype)

    def q_values(self, observation):
        """Q(s, ·; θ) `[batch, num_actions]`, through the run's kernel mode (eager, function, xla)."""
        return self._q_values(tf.convert_to_tensor(observation, self.observation_dtype))

    def q_values_fn(self, observation):
        return self.network(self.features(observation))

    def actions(self, observation, legal_mask=None):
        """The greedy actions int32 [batch], as the environment numbers them."""
        return self._actions(tf.convert_to_tensor(observation, self.observation_dtype),
                             None if legal_mask is None else tf.convert_to_tensor(legal_mask, tf.bool))

    def actions_fn(self, observation, legal_mask=None):
        """a = argmax_{a legal} Q(s, a; θ) + action_start (bellman.masked_argmax: the first maximum on ties)."""
        return bellman.masked_argmax(self.q_values_fn(observation), legal_mask) + self.action_start

    @property
    def observation_dtype(self):
        return tf.int32 if self.discrete_obs else tf.uint8 if self.pixels else self.network.dtype

    @tf.function
    def __call__(self, observation, legal_mask=None):
        """{"action": int32 [batch], "q_values": [batch, num_actions]}; illegal actions are never chosen."""
        q_values = self.q_values_fn(observation)
        return {"action": bellman.masked_argmax(q_values, legal_mask) + self.action_start, "q_values": q_values}

    def input_signature(self):
        """The TensorSpecs `__call__` is exported with (a batch dimension of any size)."""
        if self.discrete_obs:
            observation = tf.TensorSpec([None], tf.int32, name="observation")
        elif self.pixels:
            observation = tf.TensorSpec([None, *self.network.frame_shape], tf.uint8, name="observation")
        else:
            observation = tf.TensorSpec([None, self.network.obs_dim], tf.float32, name="observation")
        if self.legal_actions:
            return [observation, tf.TensorSpec([None, self.network.num_actions], tf.bool, name="legal_mask")]
        return [observation]


def load(path):
    """(GreedyPolicy, state) from a run directory or checkpoint directory."""
    _, checkpoint_dir = checkpoint.find(path)
    state, _, _ = checkpoint.load_state(checkpoint_dir)
    config = checkpoint.config_from_state(state, checkpoint_dir)
    spec = state["spec"]
    dtype = tf.float64 if config.dtype == "float64" else tf.float32
    try:
        if spec.get("frame_shape"):
            network = conv_q_network(spec["frame_shape"], spec["num_actions"], config, name="online",
                                     scale=1 / spec.get("frame_max", 255.0))
        else:
            bounds = (spec["obs_low"], spec["obs_high"]) if config.scale_observations else None
            network = QNetwork(spec["obs_dim"], spec["num_actions"], config.hidden, dtype=dtype,
                               **config.head_options(), obs_bounds=bounds, name="online")
    except (KeyError, TypeError, ValueError) as error:
        raise checkpoint.CheckpointError(f"checkpoint {checkpoint_dir} has an unreadable spec ({error})") from None
    checkpoint.restore_network(checkpoint_dir, network, "online" if config.algo in ("dqn", "pqn") else "policy")
    policy = GreedyPolicy(network, spec["discrete_obs"], spec["action_start"], spec["legal_actions"],
                          mode=config.mode, config=config)
    state["checkpoint_dir"] = checkpoint_dir
    return policy, state


def export(policy, state, out_dir):
    """Write `policy` as a SavedModel; `serving_default` takes `observation` (and `legal_mask`)."""
    concrete = policy.__call__.get_concrete_function(*policy.input_signature())
    tf.saved_model.save(policy, out_dir, signatures={"serving_default": concrete})
    with open(os.path.join(out_dir, "rawdqn_policy.json"), "w") as f:
        json.dump({"env_id": state["env_id"], "step": state["step"], "seed": state["seed"],
                   "inputs": [spec.name for spec in policy.input_signature()],
                   **state["spec"]}, f, indent=1)
