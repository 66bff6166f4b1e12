"""DQN on pixels: the conv Q-network and a frame replay that stores each frame once.

The same agent as rawdqn/agent.py's DQN — the same learn_fn, schedule, ε-greedy act and
target sync — with two parts swapped:

    Q(s, ·; θ)   ConvQNetwork over s = the last `history` frames [H, W, history · C]
    replay       FrameReplay: one ring of frames per env, stacks assembled when sampled

and the observation it acts on kept on the device as that stack. After env.step the host
sends one frame per env (the true last frame where an episode ended) and the frame to
act on next (the next episode's first frame there, else the same frame), and

    replay ← (a_t, clip(r_t), terminated, f_{t+1}, ended, first frame of the next episode)
    s ← [s without its oldest frame | f_{t+1}]        where the episode goes on
    s ← [pad … pad | first frame]                     where it ended (pad: zeros or repeat)

so a stacked observation never crosses the host boundary, and each stack the agent acts
on is the one the replay will sample for that step (tested against gymnasium's
FrameStackObservation in tests/test_pixels.py).
"""
import math

import numpy as np
import tensorflow as tf

from rawdqn import conv, optim
from rawdqn.agent import DQN
from rawdqn.device import placement
from rawdqn.frame_replay import FrameReplay, input_shape_of
from rawdqn.network import ConvQNetwork
from rawdqn.replay import Transition
from rawdqn.sum_tree import SumTree


class FrameInputs:
    """What the agents on frames share: the host sends one frame per env and step, and the agent
    keeps the stack of the last `history` frames it acts on, on the device (the module docstring).
    Needs config (history, frame_pad) and dtype; set_frames sets the rest."""

    def set_frames(self, frame_shape, frame_max, history):
        """frame_max: the frames' largest value; the network sees frames / frame_max (Atari's
        screens / 255, MinAtar's 0/1 channels as they are)."""
        self.frame_shape = tuple(int(size) for size in frame_shape)
        self.frame_max = float(frame_max)
        if len(self.frame_shape) not in (2, 3):
            raise ValueError(f"frames are [H, W] or [H, W, C]; got shape {self.frame_shape}")
        self.input_shape = input_shape_of(self.frame_shape, history)

    def features(self, obs):
        return obs   # uint8 stacks go to the network as they are; it scales them on the device

    def _obs_tensor(self, obs):
        return tf.convert_to_tensor(obs, tf.uint8)

    def stack_fn(self, stack, frame, ended):
        """The next stack: [stack without its oldest frame | frame], or where the episode
        ended, the new episode's first stack [pad … pad | frame]."""
        frame = tf.cast(frame, tf.uint8)
        if len(self.frame_shape) == 2:
            frame = frame[..., None]
        channels = frame.shape[-1]
        if self.config.frame_pad == "repeat":
            first = tf.tile(frame, [1, 1, 1, self.config.history])
        else:
            first = tf.concat([tf.zeros_like(stack[..., channels:]), frame], axis=-1)
        shifted = tf.concat([stack[..., channels:], frame], axis=-1)
        return tf.where(tf.reshape(ended, [-1, 1, 1, 1]), first, shifted)

    def acting_obs_fn(self, previous, obs, ended):
        return self.stack_fn(previous, obs, ended)

    def first_stack_fn(self, frames):
        """Every env's first stack: its first frame after the padding."""
        return self.stack_fn(self.current_obs.read_value(), frames, tf.ones([self.num_envs], tf.bool))

    def frame_inputs(self, env_step):
        """A step's inputs as two tensors: the frames [2, N, ...] uint8 — f_{t+1} and the frame
        to act on — and [N, 3] of (r_t, terminated, ended)."""
        frames = np.stack([env_step.next_obs, env_step.obs]).astype(np.uint8, copy=False)
        scalars = np.stack([env_step.reward, env_step.no_bootstrap, env_step.ended], axis=1)
        return tf.constant(frames), tf.constant(scalars.astype(self.dtype.as_numpy_dtype))

    def step(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} takes its environment steps through observe(env_step)")

    def unpack_fn(self, frames, scalars):
        """frame_inputs's two tensors as observe_fn's inputs."""
        return frames[0], scalars[:, 0], scalars[:, 1], frames[1], None, None, scalars[:, 2]


class PixelDQN(FrameInputs, DQN):
    """DQN whose observations are frames [H, W] (Atari after preprocessing) or [H, W, C] (MinAtar)."""

    def __init__(self, frame_shape, num_actions, config=None, seed=0, device=None, num_envs=1, frame_max=255.0,
                 name=None):
        """frame_max: as FrameInputs.set_frames."""
        self.set_frames(frame_shape, frame_max, config.history if config else 1)
        super().__init__(math.prod(self.input_shape), num_actions, config, seed=seed, device=device,
                         num_envs=num_envs, name=name)

    @property
    def slots_per_env(self):
        """Ring slots per env: replay_capacity / num_envs transitions, plus the one frame an
        episode takes beyond its transitions (each episode boundary costs a slot)."""
        return math.ceil(self.config.replay_capacity / self.num_envs) + 1

    def memory_needed(self):
        """Bytes: the frame rings (each frame once, plus 14 bytes per slot; FrameReplay) and the
        parameters as DQN.memory_needed counts them."""
        config, width = self.config, self.dtype.size
        slots = self.num_envs * self.slots_per_env
        head = config.head_options()
        parameters = conv_parameter_count(self.input_shape, self.num_actions, config.convs, config.hidden,
                                          head["dueling"], head["atoms"], config.noisy, head["embedding"])
        copies = 4 + len(optim.OPTIMIZERS[config.optimizer].slot_names)
        tree = SumTree.bytes_for(slots) if config.prioritized else 0
        return {"replay": slots * (math.prod(self.frame_shape) + 14) + tree,
                "networks and optimizer": copies * parameters * width}

    def build_model(self, use_bias, initializer):
        config = self.config
        self.online, self.target = (self.q_network(name, use_bias, initializer) for name in ("online", "target"))
        self.replay = FrameReplay(self.slots_per_env, self.frame_shape, self.num_envs, config.history,
                                  config.frame_pad, seed=self.seed + 1, jit_compile=config.mode == "xla",
                                  n_step=config.n_step, discount=config.discount, prioritized=config.prioritized,
                                  priority_exponent=config.priority_exponent, priority_epsilon=config.priority_epsilon)
        self.acting_shape, self.acting_dtype = self.input_shape, tf.uint8

    def q_network(self, name, use_bias=True, initializer="glorot_uniform"):
        return conv_q_network(self.frame_shape, self.num_actions, self.config, self.seed, name, self.device,
                              use_bias=use_bias, initializer=initializer, scale=1 / self.frame_max)

    # --- observations --------------------------------------------------------
    def first_observations(self, count):
        """Up to `count` of the first stacks env 0 stored (the run's fixed validation set)."""
        written = int(self.replay.written.numpy()[0])
        start = max(0, written - self.replay.slots)   # the oldest slot still in the ring
        count = min(count, written - start)
        return self.replay.stack(tf.zeros([count], tf.int32), tf.range(start, start + count, dtype=tf.int64)).numpy()

    # --- the loop's calls ----------------------------------------------------
    def begin(self, obs, legal_mask=None):
        """The first actions [num_envs] of a run, for the first frames [num_envs, ...]."""
        return self._call_on_device(self._begin, self._obs_tensor(obs))

    def begin_fn(self, frames, legal_mask=None):
        self.replay.begin_fn(frames)
        return self.act_on_fn(self.first_stack_fn(frames))

    def observe(self, env_step):
        """One compiled call per environment step (DQN.step): FrameInputs.frame_inputs's two tensors."""
        return self.run_step_program(*self.frame_inputs(env_step))

    def observe_fn(self, next_frame, reward, terminated, frame, next_legal_mask=None, legal_mask=None, ended=None,
                   learn=True, sync=True):
        """DQN.observe_fn on frames: replay ← the step; s ← the next stack; the updates and syncs
        due; a' = ε-greedy(Q(s)). `ended` (nonzero: the episode is over) defaults to `terminated`."""
        ended = tf.cast(terminated if ended is None else ended, tf.bool)
        stack = self.stack_fn(self.current_obs.read_value(), frame, ended)
        return self.advance_fn(lambda: self.replay.add_fn(self.last_action.read_value(), self.clip_reward_fn(reward),
                                                          terminated > 0, next_frame, ended, frame),
                               stack, learn=learn, sync=sync)

    def sample_fn(self, step=None):
        sample = self.sample_part(*self.sample_inputs_fn(step))

        def cast(value):
            return None if value is None else tf.cast(value, self.dtype)
        return Transition(sample.obs, sample.action, cast(sample.reward), sample.next_obs, cast(sample.terminated), None,
                          cast(sample.discount), cast(sample.weight), sample.index)


def conv_q_network(frame_shape, num_actions, config, seed=0, name=None, device=None, **options):
    """The ConvQNetwork `config` describes (convs, hidden, dtype, data_format) over stacks of
    frames; config.conv_gradients 'auto' picks each layer's form by its shape under XLA on a CPU
    (conv.xla_cpu_form), else TensorFlow's own."""
    if not config.convs:
        raise ValueError("observations are frames, so the Q-network needs conv layers: set --convs "
                         "(e.g. 16x3/1 for MinAtar, 32x8/4,64x4/2,64x3/1 for Atari) or use the env's preset")
    dtype = tf.float64 if config.dtype == "float64" else tf.float32
    input_shape, gradients = input_shape_of(frame_shape, config.history), config.conv_gradients
    if gradients == "auto":
        on_cpu = "CPU" in placement(device).upper()
        xla_on_cpu = config.mode == "xla" and config.data_format == "NHWC" and on_cpu
        gradients = conv.xla_cpu_forms(input_shape, config.convs) if xla_on_cpu else "tf"
    return ConvQNetwork(input_shape, num_actions, config.convs, config.hidden,
                        seed=seed, dtype=dtype, data_format=config.data_format, conv_gradients=gradients,
                        **config.head_options(), name=name, **options)


def conv_parameter_count(input_shape, num_actions, convs, hidden, dueling=False, atoms=1, noisy=False, embedding=0):
    """Σ over layers of (fan_in + 1) · fan_out: kh·kw·C_in·C_out + C_out per conv layer, then the
    fully connected layers (counted without building the network, for the memory check)."""
    layers, _ = ConvQNetwork.layer_shapes(input_shape, num_actions, convs, hidden, dueling, atoms, embedding)
    count = sum(math.prod(shape) + shape[-1] for shape, _, _ in layers)
    return count + (sum(math.prod(shape) + shape[-1] for shape, _, _ in layers[len(convs):]) if noisy else 0)
