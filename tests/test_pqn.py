"""PQN's pure functions (rawdqn/algorithms/pqn.py) against float64 NumPy written here: the
rollout's Peng's Q(λ) targets across terminations and truncations, and one update of a
layer-normed network through its hand-written backward pass, clipping and RAdam."""
import collections

import numpy as np
import pytest
import tensorflow as tf

from rawdqn import optim, reference
from rawdqn.algorithms import pqn
from rawdqn.config import DQNConfig
from rawdqn.network import QNetwork
from rawdqn.pqn_agent import PQNAgent
from test_a2c import replays_from_a_checkpoint
from test_checkpoint import interrupted_and_resumed


def q_of(network, obs):
    """The network's Q-values in NumPy: x W0 + b0 → LN(γ, β) → relu → · W1 + b1."""
    (w0, w1), (b0, b1) = [k.numpy() for k in network.kernels], [b.numpy() for b in network.biases]
    gamma, beta = (view.numpy() for view in network.norms[0])
    hidden = np.maximum(reference.layer_norm(obs @ w0 + b0, gamma, beta), 0.0)
    return hidden @ w1 + b1


def layer_normed_network(seed=0):
    network = QNetwork(3, 2, (5,), seed=seed, dtype=tf.float64, layer_norm=True)
    rng = np.random.default_rng(seed + 10)
    for view in network.norms[0]:   # away from γ = 1, β = 0, so the test sees them used
        view.assign(view.numpy() + rng.normal(scale=0.3, size=view.shape))
    return network


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_the_returns_equal_pengs_q_lambda_written_step_by_step(mode):
    network, rng = layer_normed_network(), np.random.default_rng(1)
    steps, envs, gamma, lam = 6, 3, 0.9, 0.65
    obs, next_obs = rng.normal(size=(steps, envs, 3)), rng.normal(size=(steps, envs, 3))
    reward = rng.normal(size=(steps, envs))
    terminated, ended = np.zeros((steps, envs)), np.zeros((steps, envs))
    terminated[2, 0] = ended[2, 0] = 1.0        # a termination inside the rollout
    ended[3, 1] = 1.0                           # a truncation inside: bootstrap, cut the trace
    terminated[5, 2] = ended[5, 2] = 1.0        # a termination at its last step
    rollout = pqn.Rollout(*(tf.constant(x) for x in (obs, np.zeros((steps, envs), np.int32), reward, next_obs,
                                                     terminated, ended)))
    compute = lambda: pqn.returns(network, network.theta.read_value(), rollout, gamma, lam)  # noqa: E731
    got = (tf.function(compute, jit_compile=True)() if mode == "xla" else compute()).numpy()
    expected = numpy_returns(network, reward, next_obs, terminated, ended, gamma, lam)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert expected[2, 0] == reward[2, 0]   # terminated: no bootstrap


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_one_update_equals_a_numpy_update(mode):
    """½ mean (G − Q(s, a))² backpropagated by hand through the output layer, the relu, the
    layer norm (reference.layer_norm_grad) and the first layer; clipped by global norm; then
    reference.radam_step at the decayed α."""
    network, rng = layer_normed_network(2), np.random.default_rng(3)
    batch, max_norm, alpha = 7, 0.5, pqn.learning_rate(1e-2, 3, 10)
    obs, action, target = rng.normal(size=(batch, 3)), rng.integers(0, 2, batch), rng.normal(size=batch) * 3
    optimizer = optim.RAdam(1e-2)
    optimizer.build([network.theta])
    params, state = network.theta.read_value(), optimizer.read_state()

    def step():
        return pqn.update(network, optimizer, params, state, tf.constant(obs), tf.constant(action, tf.int32),
                          tf.constant(target), max_norm, alpha)
    new_params, _, info = tf.function(step, jit_compile=True)() if mode == "xla" else step()

    loss, norm, stepped = numpy_update(network, obs, action, target, max_norm, float(alpha))
    assert norm > max_norm   # the clip is exercised
    np.testing.assert_allclose(info.loss.numpy(), loss, rtol=1e-12)
    np.testing.assert_allclose(info.grad_norm.numpy(), norm, rtol=1e-12)
    np.testing.assert_allclose(new_params.numpy(), stepped, rtol=1e-12, atol=1e-12)


def numpy_update(network, obs, action, target, max_norm, alpha):
    """(loss, gradient norm, θ') of one RAdam step from the network's θ (first step) in NumPy."""
    batch = len(action)
    (w0, w1), (b0, b1) = [k.numpy() for k in network.kernels], [b.numpy() for b in network.biases]
    gamma, beta = (view.numpy() for view in network.norms[0])
    pre = obs @ w0 + b0
    normed = reference.layer_norm(pre, gamma, beta)
    hidden = np.maximum(normed, 0.0)
    q = hidden @ w1 + b1
    error = target - q[np.arange(batch), action]
    loss = np.mean(0.5 * error ** 2)
    d_q = np.zeros_like(q)
    d_q[np.arange(batch), action] = -error / batch
    d_w1, d_b1, d_hidden = hidden.T @ d_q, d_q.sum(0), d_q @ w1.T
    d_pre, d_gamma, d_beta = reference.layer_norm_grad(pre, gamma, d_hidden * (normed > 0))
    grads = [obs.T @ d_pre, d_pre.sum(0), d_w1, d_b1, d_gamma, d_beta]   # θ's order: layers, then norms
    clipped, norm = reference.clip_by_global_norm(grads, max_norm)
    theta = [w0, b0, w1, b1, gamma, beta]
    stepped, _ = reference.radam_step(theta, clipped, None, alpha)
    return loss, norm, np.concatenate([x.ravel() for x in stepped])


def numpy_returns(network, reward, next_obs, terminated, ended, gamma, lam):
    """Peng's Q(λ) [T, N] written step by step, bootstrapping from max_a Q(s', a) of the network."""
    steps, envs = reward.shape
    best_next = q_of(network, next_obs.reshape(steps * envs, -1)).max(-1).reshape(steps, envs)
    expected = np.zeros((steps, envs))
    for n in range(envs):
        for t in reversed(range(steps)):
            bootstrap = gamma * (1.0 - terminated[t, n])
            if t == steps - 1 or ended[t, n]:
                expected[t, n] = reward[t, n] + bootstrap * best_next[t, n]
            else:
                expected[t, n] = reward[t, n] + bootstrap * ((1 - lam) * best_next[t, n] + lam * expected[t + 1, n])
    return expected


def test_a_rollouts_training_makes_epochs_times_minibatches_updates_on_a_permutation():
    indices = pqn.minibatch_indices(tf.constant([4, 2]), 12, 3).numpy()
    assert indices.shape == (3, 4) and sorted(indices.ravel()) == list(range(12))
    np.testing.assert_allclose([pqn.learning_rate(2.0, k, 4).numpy() for k in (0, 1, 4, 6)], [2.0, 1.5, 0.0, 0.0])
    network, rng = layer_normed_network(4), np.random.default_rng(5)
    rollout = pqn.Rollout(tf.constant(rng.normal(size=(4, 3, 3))), tf.constant(rng.integers(0, 2, (4, 3)), tf.int32),
                          tf.constant(rng.normal(size=(4, 3))), tf.constant(rng.normal(size=(4, 3, 3))),
                          tf.zeros((4, 3), tf.float64), tf.zeros((4, 3), tf.float64))
    config = collections.namedtuple(
        "Config", "discount q_lambda epochs minibatches max_grad_norm learning_rate learning_rate_decay "
        "learning_rate_decay_from")(0.99, 0.65, 2, 3, 10.0, 1e-3, True, None)
    optimizer = optim.RAdam(1e-3)
    optimizer.build([network.theta])
    params, state, info = pqn.train(network, optimizer, network.theta.read_value(), optimizer.read_state(), rollout,
                                    config, tf.constant([0, 1]), 0, 100)
    assert int(state.step) == 6 and np.isfinite(info.loss.numpy())
    assert not np.allclose(params.numpy(), network.theta.numpy())


# --------------------------------------------------------------- the agent: --algo pqn

@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_the_agent_stores_a_rollout_and_makes_the_numpy_update_when_its_rows_fill(mode):
    """2 envs × 3 steps, driven through PQNAgent.step as the loop drives it (a termination and a
    truncation inside): no update before the rows fill; then one RAdam step (1 epoch of 1
    minibatch) from θ₀ on the returns of θ₀, as numpy_returns and numpy_update compute them."""
    config = DQNConfig(algo="pqn", num_envs=2, rollout_steps=3, epochs=1, minibatches=1, hidden=(5,), layer_norm=True,
                       optimizer="radam", learning_rate=1e-2, max_grad_norm=0.5, discount=0.9, q_lambda=0.65,
                       total_steps=60, dtype="float64", mode=mode)
    agent = PQNAgent(3, 2, config, seed=3, num_envs=2)
    rng = np.random.default_rng(0)
    for view in agent.online.norms[0]:
        view.assign(view.numpy() + rng.normal(scale=0.3, size=view.shape))
    theta_0 = agent.online.theta.numpy()
    frozen = QNetwork(3, 2, (5,), dtype=tf.float64, layer_norm=True)
    frozen.theta.assign(theta_0)
    obs = rng.normal(size=(4, 2, 3))                       # s_0 … s_3 of each env
    next_obs, reward = obs[1:].copy(), rng.normal(size=(3, 2))
    terminated, ended = np.zeros((3, 2)), np.zeros((3, 2))
    terminated[1, 0] = ended[1, 0] = 1.0                   # env 0 terminates at t = 1 …
    ended[0, 1] = 1.0                                      # … env 1 is truncated at t = 0
    next_obs[1, 0], next_obs[0, 1] = rng.normal(size=3), rng.normal(size=3)   # their true last observations
    actions = [agent.begin(obs[0]).numpy()]
    for t in range(3):
        assert int(agent.schedule.updates_done.numpy()) == 0
        actions.append(agent.step(next_obs[t], reward[t], terminated[t], obs[t + 1], ended=ended[t]).numpy())
    assert int(agent.schedule.updates_done.numpy()) == 1 and int(agent.length[0].numpy()) == 0
    target = numpy_returns(frozen, reward, next_obs, terminated, ended, 0.9, 0.65)
    action = np.array(actions[:3])
    _, _, expected = numpy_update(frozen, obs[:3].reshape(6, 3), action.reshape(6), target.reshape(6), 0.5, 1e-2)
    np.testing.assert_allclose(agent.online.theta.numpy(), expected, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(agent.last_info.loss.numpy(), np.mean(0.5 * (target.reshape(6) - q_of(
        frozen, obs[:3].reshape(6, 3))[np.arange(6), action.reshape(6)]) ** 2), rtol=1e-12)


def test_the_agent_acts_epsilon_greedily_on_the_schedule():
    config = DQNConfig(algo="pqn", num_envs=1, rollout_steps=4, hidden=(8,), layer_norm=True, epsilon_start=1.0,
                       epsilon_end=0.0, exploration_steps=100_000, total_steps=200_000, mode="eager")
    agent = PQNAgent(2, 3, config, seed=0, num_envs=1)
    obs = np.random.default_rng(1).normal(size=(400, 2)).astype(np.float32)
    random_actions = agent.act(obs).numpy()                 # row i acts with ε(i) ≥ 0.996: uniform
    assert set(np.bincount(random_actions, minlength=3) > 100) == {True}
    agent.schedule.step.assign(100_000)                     # ε = 0 from here: greedy
    np.testing.assert_array_equal(agent.act(obs).numpy(), np.argmax(agent.q_values(obs).numpy(), axis=1))


def test_an_interrupted_and_resumed_pqn_run_ends_bit_for_bit_like_an_uninterrupted_one(tmp_path):
    config = DQNConfig(algo="pqn", total_steps=400, num_envs=4, rollout_steps=10, epochs=2, minibatches=4,
                       hidden=(16,), layer_norm=True, optimizer="radam", learning_rate=1e-3, eval_episodes=1,
                       eval_interval=200, log_interval=100, exploration_fraction=0.5, mode="function")
    _, resumed = interrupted_and_resumed(str(tmp_path / "run"), config, seed=2, stop_at=200)
    assert int(resumed.agent.schedule.updates_done.numpy()) == 400 // (4 * 10)
    assert int(resumed.agent.optimizer.step.numpy()) == 10 * 2 * 4


def test_pqn_on_the_device_updates_once_a_rollout_and_replays_from_a_checkpoint(tmp_path):
    # The on-device loop runs the same step body: N = 4 envs, rollouts of 5, 23 iterations: 4 updates
    # of 2 × 2 gradient steps; restored from a checkpoint, the same 23 iterations give the same run.
    config = DQNConfig(algo="pqn", hidden=(8,), layer_norm=True, rollout_steps=5, epochs=2, minibatches=2,
                       optimizer="radam", learning_rate=1e-2, total_steps=400, mode="xla")
    trainer = replays_from_a_checkpoint(config, tmp_path, lambda agent: agent.online.theta)
    assert int(trainer.agents[0].optimizer.step.numpy()) == 4 * 2 * 2


def test_pixel_pqn_keeps_the_stacks_it_acted_on_and_the_stacks_after_each_step():
    """Frames of 2 envs, history 2, an episode ending in env 0 at t = 1: the rollout the update
    sees holds, for every step, the stack of the last 2 frames acted on (zeros before an
    episode's first frame) and that stack with the true next frame appended, built here in NumPy."""
    from rawdqn.gym_env import EnvStep
    from rawdqn.pqn_agent import PixelPQN
    config = DQNConfig(algo="pqn", num_envs=2, rollout_steps=4, epochs=1, minibatches=1, convs=((4, 2, 1),),
                       hidden=(8,), layer_norm=True, history=2, total_steps=100, mode="eager")
    agent = PixelPQN((3, 3, 1), 2, config, seed=0, num_envs=2)
    seen = []
    learn = agent.learn_fn
    agent.learn_fn = lambda batch: seen.append(batch) or learn(batch)
    rng = np.random.default_rng(0)
    frames = rng.integers(1, 255, size=(5, 2, 3, 3, 1), dtype=np.uint8)       # f_0 … f_4 of each env
    last = rng.integers(1, 255, size=(3, 3, 1), dtype=np.uint8)               # env 0's true last frame at t = 1
    terminated = np.zeros((4, 2), bool)
    terminated[1, 0] = True
    agent.begin(frames[0])
    for t in range(4):
        next_frame = frames[t + 1].copy()
        if terminated[t, 0]:
            next_frame[0] = last
        agent.observe(EnvStep(next_frame, np.ones(2), terminated[t], np.zeros(2, bool), frames[t + 1], None, None))
    assert len(seen) == 1
    batch = seen[0]
    for n in range(2):
        history = [np.zeros((3, 3, 1), np.uint8), frames[0, n]]   # the episode's frames so far, padded
        for t in range(4):
            stack = np.concatenate(history[-2:], axis=-1)
            true_next = last if (n == 0 and t == 1) else frames[t + 1, n]
            np.testing.assert_array_equal(batch.obs[t, n].numpy(), stack)
            np.testing.assert_array_equal(batch.next_obs[t, n].numpy(), np.concatenate([history[-1], true_next], -1))
            history = [np.zeros((3, 3, 1), np.uint8), frames[t + 1, n]] if terminated[t, n] else \
                history + [frames[t + 1, n]]
    assert batch.terminated.numpy()[1, 0] == 1.0 and batch.ended.numpy().sum() == 1.0


def test_pixel_pqn_trains_on_minatar_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("minatar", reason="MinAtar games need the minatar extra: pip install rawdqn[minatar]")
    from rawdqn import cli
    run = str(tmp_path / "run")
    assert cli.main(["train", "--env", "MinAtar/Breakout-v1", "--algo", "pqn", "--steps", "2048", "--num-envs", "8",
                     "--rollout-steps", "16", "--minibatches", "4", "--eval-episodes", "1", "--logdir", run]) == 0
    out = capsys.readouterr().out
    assert "training PQN on MinAtar/Breakout-v1 × 8" in out and "evaluation: mean return" in out
    assert cli.main(["eval", run, "--episodes", "1"]) == 0


def test_the_learning_rate_decays_linearly_unless_told_to_stay():
    """One SGD step (1 epoch of 1 minibatch) after 50 of 100 gradient steps: decayed, α = α₀/2;
    with learning_rate_decay off, α₀: the second step is twice the first, to 1e-12; decaying on
    from a resume's (steps, rate), the step that rate's share."""
    network, rng = layer_normed_network(6), np.random.default_rng(7)
    rollout = pqn.Rollout(tf.constant(rng.normal(size=(2, 2, 3))), tf.constant(rng.integers(0, 2, (2, 2)), tf.int32),
                          tf.constant(rng.normal(size=(2, 2))), tf.constant(rng.normal(size=(2, 2, 3))),
                          tf.zeros((2, 2), tf.float64), tf.zeros((2, 2), tf.float64))
    fields = "discount q_lambda epochs minibatches max_grad_norm learning_rate learning_rate_decay learning_rate_decay_from"
    theta = network.theta.read_value()
    steps = []
    # decayed from the start: α = 0.1 (1 − 50/100) = 0.05; held: 0.1; decayed on from (40, 0.09), as a
    # resumed run that was lengthened: α = 0.09 (1 − 10/60) = 0.075 (pqn.learning_rate, by hand).
    for decay, decay_from in ((True, None), (False, None), (True, (40, 0.09))):
        config = collections.namedtuple("Config", fields)(0.9, 0.5, 1, 1, None, 0.1, decay, decay_from)
        optimizer = optim.SGD(0.1)
        optimizer.build([network.theta])
        params, _, _ = pqn.train(network, optimizer, theta, optimizer.read_state(), rollout, config,
                                 tf.constant([0, 0]), 50, 100)
        steps.append(params.numpy() - theta.numpy())
    assert np.max(np.abs(steps[0])) > 1e-6
    np.testing.assert_allclose(steps[1], 2 * steps[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(steps[2], 1.5 * steps[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose([pqn.learning_rate(0.5, k, 10, start=2).numpy() for k in (2, 6, 10, 12)],
                               [0.5, 0.25, 0.0, 0.0])


def test_a_lengthened_pqn_run_decays_its_learning_rate_on_from_where_it_was(tmp_path):
    """Stopped at step 200 of 400 and resumed for 800: N·T = 40 steps a rollout of 2 × 4 gradient
    steps, so 5 rollouts = 40 gradient steps were made, of the old run's K = 80, at α = 1e-3 ·
    (1 − 40/80) = 5e-4. The resumed run decays from there to 0 at its new K = 160, no jump."""
    from rawdqn.train import resume, train
    from rawdqn.rundir import TrainingInterrupted
    from test_checkpoint import interrupt_at, quiet
    config = DQNConfig(algo="pqn", total_steps=400, num_envs=4, rollout_steps=10, epochs=2, minibatches=4,
                       hidden=(16,), layer_norm=True, optimizer="radam", learning_rate=1e-3, eval_episodes=1,
                       log_interval=100, mode="function")
    run_dir = str(tmp_path / "run")
    with pytest.raises(TrainingInterrupted):
        train("CartPole-v1", config, seed=2, logdir=run_dir, log=interrupt_at(200), checkpoint_interval=100)
    resumed = resume(run_dir, log=quiet, total_steps=800)
    start, rate = resumed.agent.config.learning_rate_decay_from
    assert start == 40 and rate == pytest.approx(5e-4, rel=1e-12)
    assert pqn.learning_rate(1e-3, 40, 80).numpy() == pytest.approx(pqn.learning_rate(rate, 40, 160, start).numpy())
    assert pqn.learning_rate(rate, 160, 160, start).numpy() == 0.0
    assert int(resumed.agent.schedule.step.numpy()) == 800


def test_pqn_takes_atari_frames_with_its_preset(tmp_path, capsys):
    pytest.importorskip("ale_py", reason="Atari games need ale-py: pip install rawdqn[atari]")
    pytest.importorskip("cv2", reason="gymnasium's Atari preprocessing needs opencv: pip install gymnasium[other]")
    from rawdqn import cli
    from rawdqn.presets import preset
    config = preset("ALE/Pong-v5", algo="pqn")
    assert (config.num_envs, config.rollout_steps, config.epochs, config.minibatches) == (128, 32, 2, 32)
    assert config.reward_clip == 1.0 and not config.learning_rate_decay and config.convs
    assert cli.main(["train", "--env", "ALE/Pong-v5", "--algo", "pqn", "--num-envs", "2", "--rollout-steps", "8",
                     "--minibatches", "2", "--steps", "32", "--eval-episodes", "1",
                     "--logdir", str(tmp_path / "run")]) == 0
    assert "training PQN on ALE/Pong-v5 × 2" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_vectorized_over_seeds_one_update_is_each_seeds_own_update(mode):
    """The seed axis's first brick: pqn.update, a pure function, mapped over K = 3 seeds' θ,
    optimizer states and minibatches by tf.vectorized_map, equals each seed's own update (1e-12)."""
    network, rng = layer_normed_network(8), np.random.default_rng(9)
    seeds, batch = 3, 6
    optimizer = optim.RAdam(1e-2)
    optimizer.build([network.theta])
    theta = tf.constant(network.theta.numpy() + 0.1 * rng.normal(size=(seeds, network.theta.shape[0])))
    state = tf.nest.map_structure(lambda x: tf.stack([x] * seeds), optimizer.read_state())
    obs, action = tf.constant(rng.normal(size=(seeds, batch, 3))), tf.constant(rng.integers(0, 2, (seeds, batch)), tf.int32)
    target = tf.constant(rng.normal(size=(seeds, batch)))

    def one(args):
        params, opt_state, o, a, t = args
        return pqn.update(network, optimizer, params, opt_state, o, a, t, 0.5, tf.constant(1e-2, tf.float64))[0]
    batched = (lambda: tf.vectorized_map(one, (theta, state, obs, action, target)))
    got = (tf.function(batched, jit_compile=True)() if mode == "xla" else batched()).numpy()
    for k in range(seeds):
        own = one((theta[k], tf.nest.map_structure(lambda x: x[k], state), obs[k], action[k], target[k])).numpy()
        assert np.max(np.abs(own - theta[k].numpy())) > 1e-4   # the update moved θ
        np.testing.assert_allclose(got[k], own, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("decay_from", [(-1, 1e-3), (10, -0.5), (10,)])
def test_a_bad_learning_rate_anchor_is_refused_in_one_line(decay_from):
    from rawdqn.config import ConfigError
    with pytest.raises(ConfigError, match=r"^learning_rate_decay_from must be \(gradient steps >= 0, a rate >= 0\)"):
        DQNConfig(algo="pqn", num_envs=4, rollout_steps=8, learning_rate_decay_from=decay_from).validate()


@pytest.mark.parametrize("algo", ["pqn", "a2c", "reinforce"])
def test_the_host_leaves_out_the_update_exactly_where_none_is_due(algo):
    """A rollout agent's host calls the program without the update (collect) exactly where the
    device's step program would make none: PQN and A2C learn when their rows fill, every
    `rollout_steps` iterations; REINFORCE when episodes end, which only the device counts, so
    it always runs the step program. After the counters are restored mid-rollout (a resumed
    run), the host reads where the rows stand from the device."""
    from rawdqn.policy_agent import PolicyGradientAgent
    config = DQNConfig(algo=algo, num_envs=2, rollout_steps=3, epochs=1, minibatches=1, hidden=(4,), total_steps=1000,
                       mode="function", **({"episodes_per_update": 1} if algo == "reinforce" else {}))
    make = (lambda: PQNAgent(3, 2, config, seed=1, num_envs=2)) if algo == "pqn" else \
        (lambda: PolicyGradientAgent(3, 2, config, episode_steps=4, seed=1, num_envs=2))
    agent, rng = make(), np.random.default_rng(0)
    chosen = []
    for name in ("_step", "_collect"):
        program = getattr(agent, name)
        setattr(agent, name, lambda *args, program=program, name=name: (chosen.append(name), program(*args))[1])
    agent.begin(rng.normal(size=(2, 3)).astype(np.float32))

    def run(iterations):
        for t in range(iterations):
            updates, calls = int(agent.schedule.updates_done.numpy()), len(chosen)
            ended = np.array([float(t % 4 == 3), float(t % 4 == 1)])
            agent.step(rng.normal(size=(2, 3)), [1.0, 1.0], ended, rng.normal(size=(2, 3)), ended=ended)
            updated = int(agent.schedule.updates_done.numpy()) > updates
            assert chosen[calls:] == (["_step"] if updated or algo == "reinforce" else ["_collect"]), (t, chosen[calls:])
    run(8)
    assert int(agent.schedule.updates_done.numpy()) == (4 if algo == "reinforce" else 2)   # 8 // 3; or each ending
    # Restored mid-rollout (iteration 10, the rows emptied at 8): the host's copies are stale.
    agent.schedule.step.assign(2 * 10)
    if algo != "reinforce":
        agent.length.assign([2, 2])
    agent.forget_host_counters()
    run(7)
