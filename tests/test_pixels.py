"""The pixel agent through the one loop: frames stacked on the device, stored once, learned from.

A small gymnasium env of uint8 frames stands in for Atari (no extra needed): its frames
depend on its seeded RNG and the actions, it terminates at random and is truncated by a
time limit, so stacks cross both kinds of episode end. The training loop's stacks are
checked against gymnasium's own FrameStackObservation on a twin env, and every replay
sample against the transitions that twin saw.
"""
import hashlib
import json
import os

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import gym_env, train as training
from rawdqn.config import DQNConfig
from rawdqn.evaluation import make_eval_env
from rawdqn.gym_env import EnvSpec, encode_obs
from rawdqn.pixel_agent import PixelDQN, conv_parameter_count
from rawdqn.network import ConvQNetwork
from cli_helpers import cli

FRAMES_ID = "rawdqn-test/Frames-v0"
BANDIT_ID = "rawdqn-test/PixelBandit-v0"


class Frames(gym.Env):
    """6×5 uint8 frames: pixel values from the env's RNG plus the last action; ends at random."""
    observation_space = gym.spaces.Box(0, 255, (6, 5), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, end_probability=0.08):
        self.end_probability = end_probability

    def frame(self, action=0):
        return (self.np_random.integers(0, 200, (6, 5)) + 10 * action).astype(np.uint8)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.frame(), {}

    def step(self, action):
        terminated = bool(self.np_random.random() < self.end_probability)
        return self.frame(int(action)), float(self.np_random.normal()) * 3, terminated, False, {}


class PixelBandit(gym.Env):
    """One-step episodes: the frame is all 0 or all 255 (a fair coin); action 0 pays 1 on a
    dark frame, action 1 on a bright one. Q*(s, a) is 1 or 0, so the best return is 1."""
    observation_space = gym.spaces.Box(0, 255, (5, 5, 2), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.bright = bool(self.np_random.random() < 0.5)
        return np.full((5, 5, 2), 255 if self.bright else 0, np.uint8), {}

    def step(self, action):
        reward = 1.0 if int(action) == int(self.bright) else 0.0
        return np.zeros((5, 5, 2), np.uint8), reward, True, False, {}


gym.register(FRAMES_ID, entry_point=Frames, max_episode_steps=15)
gym.register(BANDIT_ID, entry_point=PixelBandit)

SMALL = DQNConfig(total_steps=400, convs=((4, 3, 1),), hidden=(16,), batch_size=8, replay_capacity=64,
                  learning_starts=50, train_frequency=2, target_update_interval=40, history=4,
                  eval_episodes=2, log_interval=10_000, optimizer="rmsprop_centered_torch", learning_rate=1e-3)


@pytest.mark.parametrize("pad", ["zeros", "repeat"])
@pytest.mark.parametrize("num_envs", [1, 2])
def test_training_stacks_are_gymnasiums_frame_stacks_and_the_replay_holds_what_was_played(pad, num_envs):
    """Each stack the agent acts on equals FrameStackObservation's on a twin env stepped with
    the same actions (same seed); each sampled transition is one the twin played, with the
    true final stack after a truncation and no frame of another episode."""
    config = SMALL.replace(frame_pad=pad, num_envs=num_envs, replay_capacity=400, total_steps=300)
    twins = [make_eval_env(FRAMES_ID, config.history, pad) for _ in range(num_envs)]
    spec = EnvSpec(30, 3, False, 0, False, (6, 5))
    twin_obs = [encode_obs(twin.reset(seed=7 + i)[0], spec) for i, twin in enumerate(twins)]
    played, checked = set(), []

    def on_step(trainer, obs, actions, env_step):
        for i, twin in enumerate(twins):
            next_obs, reward, terminated, truncated, _ = twin.step(int(actions[i]))
            next_obs = encode_obs(next_obs, spec)
            np.testing.assert_array_equal(env_step.next_obs[i], next_obs[..., -1])   # the twin is in step
            played.add(transition_key(twin_obs[i], actions[i], reward, next_obs, terminated))
            twin_obs[i] = encode_obs(twin.reset()[0], spec) if terminated or truncated else next_obs
        acting = trainer.agent.current_obs.numpy()
        for i in range(num_envs):
            np.testing.assert_array_equal(acting[i], twin_obs[i])
        checked.append(env_step.ended.any())

    trainer = training.Trainer(FRAMES_ID, config, seed=7, log=lambda *a: None, on_step=on_step)
    trainer.run()
    assert sum(checked) >= 10   # many episode ends crossed
    obs, action, reward, next_obs, terminated, _, _ = (x.numpy() for x in trainer.agent.replay.sample(300)[:7])
    for i in range(len(action)):
        assert transition_key(obs[i], action[i], reward[i], next_obs[i], terminated[i]) in played


def transition_key(obs, action, reward, next_obs, terminated):
    return (hashlib.sha1(np.ascontiguousarray(obs, np.uint8).tobytes()).hexdigest(), int(action),
            float(np.float32(reward)), hashlib.sha1(np.ascontiguousarray(next_obs, np.uint8).tobytes()).hexdigest(),
            bool(terminated))


def test_frame_stack_layout_of_channel_frames_matches_the_replays():
    # FrameStackObservation gives [h, H, W, C]; the network's input is [H, W, h·C], frame k at k·C + c.
    spec = EnvSpec(50, 2, False, 0, False, (5, 5, 2))
    stack = np.arange(3 * 5 * 5 * 2, dtype=np.uint8).reshape(3, 5, 5, 2)
    laid_out = encode_obs(stack, spec)
    assert laid_out.shape == (5, 5, 6)
    for k in range(3):
        for c in range(2):
            np.testing.assert_array_equal(laid_out[..., 2 * k + c], stack[k, ..., c])


def test_pixel_dqn_learns_a_pixel_bandit_to_its_optimal_return():
    """Q*(dark, 0) = Q*(bright, 1) = 1, the others 0: the greedy policy must score 1 every time."""
    config = DQNConfig(total_steps=1_500, convs=((4, 3, 1),), hidden=(16,), batch_size=32, replay_capacity=2_000,
                       learning_starts=200, target_update_interval=50, discount=0.99, learning_rate=3e-3,
                       exploration_steps=500, eval_episodes=30, log_interval=10_000)
    result = training.train(BANDIT_ID, config, seed=1, log=lambda *a: None)
    assert isinstance(result.agent, PixelDQN)
    assert result.eval_mean == 1.0
    bright, dark = np.full((1, 5, 5, 2), 255, np.uint8), np.zeros((1, 5, 5, 2), np.uint8)
    q = result.agent.q_values(np.concatenate([dark, bright])).numpy()
    np.testing.assert_allclose(q, [[1, 0], [0, 1]], atol=0.15)   # terminal: Q = r exactly in the limit


def test_reward_clipping_reaches_the_replay_but_not_the_reported_returns():
    config = SMALL.replace(reward_clip=1.0, total_steps=200)
    result = training.train(FRAMES_ID, config, seed=2, log=lambda *a: None)
    _, _, reward, _, _, _, _ = (x.numpy() for x in result.agent.replay.sample(200)[:7])
    assert np.all(np.abs(reward) <= 1.0) and np.any(np.abs(reward) == 1.0)
    returns = np.asarray(result.episode_returns)
    assert np.any(np.abs(returns) > 1.0)   # N(0, 9) rewards summed unclipped


def test_memory_is_the_frames_once_plus_fourteen_bytes_a_slot():
    config = SMALL.replace(replay_capacity=1_000, num_envs=2)
    agent = PixelDQN((6, 5), 3, config, num_envs=2)
    slots = 2 * (500 + 1)
    assert agent.replay.nbytes == slots * (30 + 14) + 8 * 2 + 4   # + written [2] int64 and the draw counter
    assert agent.memory_needed()["replay"] == slots * (30 + 14)
    assert agent.online.num_parameters == conv_parameter_count((6, 5, 4), 3, ((4, 3, 1),), (16,))
    # By hand: conv 3·3·4·4 + 4 = 148; 4×3×4 = 48 → 16: 49·16 = 784; 16 → 3: 17·3 = 51.
    assert conv_parameter_count((6, 5, 4), 3, ((4, 3, 1),), (16,)) == 148 + 784 + 51


def test_resume_continues_a_pixel_run_bit_for_bit(tmp_path):
    config = SMALL.replace(total_steps=300, exploration_steps=200)   # ε's decay must not depend on total_steps
    whole = training.train(FRAMES_ID, config, seed=4, log=lambda *a: None)
    run_dir = str(tmp_path / "run")
    training.train(FRAMES_ID, config.replace(total_steps=150), seed=4, log=lambda *a: None, logdir=run_dir)
    resumed = training.resume(run_dir, log=lambda *a: None, total_steps=300)
    for ours, theirs in ((whole.agent.online.theta, resumed.agent.online.theta),
                         (whole.agent.replay.frames, resumed.agent.replay.frames),
                         (whole.agent.current_obs, resumed.agent.current_obs)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert whole.episode_returns == resumed.episode_returns
    assert (whole.eval_mean, whole.eval_std) == (resumed.eval_mean, resumed.eval_std)


def test_eval_and_export_open_a_pixel_run(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    result = training.train(FRAMES_ID, SMALL.replace(total_steps=200), seed=5, log=lambda *a: None, logdir=run_dir)
    code, out, err = cli(capsys, "eval", run_dir)
    assert code == 0, err
    assert f"mean return {result.eval_mean:.2f}" in out
    export_dir = str(tmp_path / "policy")
    code, out, err = cli(capsys, "export", run_dir, "--out", export_dir)
    assert code == 0, err
    loaded = tf.saved_model.load(export_dir)
    frames = result.agent.first_observations(3)
    exported = loaded.signatures["serving_default"](observation=tf.constant(frames))
    np.testing.assert_allclose(exported["q_values"].numpy(), result.agent.q_values(frames).numpy(), rtol=1e-5)
    with open(os.path.join(export_dir, "rawdqn_policy.json")) as f:
        assert json.load(f)["frame_shape"] == [6, 5]


def test_a_pixel_env_without_conv_layers_is_a_one_line_error():
    with pytest.raises(gym_env.UsageError, match="needs conv layers"):
        training.train(FRAMES_ID, SMALL.replace(convs=()), seed=0, log=lambda *a: None)


def test_frames_in_nchw_give_the_same_q_values():
    nhwc = ConvQNetwork((6, 5, 4), 3, ((4, 3, 1),), (16,), seed=3)
    nchw = ConvQNetwork((6, 5, 4), 3, ((4, 3, 1),), (16,), seed=3, data_format="NCHW")
    frames = np.random.default_rng(0).integers(0, 256, (2, 6, 5, 4)).astype(np.uint8)
    try:
        np.testing.assert_allclose(nchw(frames).numpy(), nhwc(frames).numpy(), rtol=1e-5, atol=1e-6)
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):
        pytest.skip("this CPU build runs NCHW convolutions only under XLA (tested in test_conv_network.py)")


def test_frames_are_divided_by_their_largest_value_bools_as_they_are():
    # MinAtar's channels are 0/1 (bool) and go in unscaled, as its paper feeds them; 8-bit screens / 255.
    from rawdqn.gym_env import frame_max_of
    from rawdqn.gym_run import make_agent
    assert frame_max_of(gym.spaces.Box(0, 1, (10, 10, 4), bool)) == 1.0
    assert frame_max_of(gym.spaces.Box(0, 255, (84, 84), np.uint8)) == 255.0
    config = SMALL.replace(history=1)
    spec = EnvSpec(100, 3, False, 0, False, (5, 5, 4), frame_max=1.0)
    agent = make_agent(spec, config, seed=0)
    frames = np.random.default_rng(0).integers(0, 2, (3, 5, 5, 4)).astype(np.uint8)
    unscaled = ConvQNetwork((5, 5, 4), 3, config.convs, config.hidden, scale=1.0)
    unscaled.theta.assign(agent.online.theta)
    np.testing.assert_allclose(agent.q_values(frames).numpy(), unscaled(frames.astype(np.float32)).numpy(), atol=1e-6)
    assert not np.allclose(agent.q_values(frames).numpy(), unscaled(frames.astype(np.float32) / 255).numpy())


def test_hybrid_mode_takes_the_updates_graph_mode_takes():
    # 'hybrid' (sampling, θ's cut and the optimizer step as XLA clusters; the gradient taken
    # with respect to the layers and joined into θ's) against 'function' (all one graph, the
    # gradient with respect to θ through split_theta): the same replay and draws, float64,
    # double Q and an active clip. (Mode 'xla' draws other samples: its RNG is XLA's.)
    rng = np.random.default_rng(5)
    steps = [(rng.integers(0, 256, (2, 1, 7, 6), dtype=np.uint8), [[rng.normal(), 0.0, float(i % 9 == 8)]])
             for i in range(60)]
    thetas, norms = {}, {}
    for mode in ("function", "hybrid"):
        config = SMALL.replace(mode=mode, dtype="float64", double_q=True, max_grad_norm=0.05,
                               learning_starts=10**9, replay_capacity=100)
        agent = PixelDQN((7, 6), 3, config, seed=3)
        agent.begin(steps[0][0][1])
        for frames, scalars in steps:
            agent.run_step_program(tf.constant(frames), tf.constant(scalars, tf.float64))
        norms[mode] = [float(agent.train(2).grad_norm) for _ in range(3)]
        thetas[mode] = agent.online.theta.numpy()
    assert min(norms["function"]) > 0.05   # the clip is active
    np.testing.assert_allclose(norms["hybrid"], norms["function"], rtol=1e-12)
    np.testing.assert_allclose(thetas["hybrid"], thetas["function"], rtol=0, atol=1e-12)
    untrained = PixelDQN((7, 6), 3, SMALL.replace(dtype="float64"), seed=3).online.theta.numpy()
    assert np.abs(thetas["function"] - untrained).max() > 1e-4
