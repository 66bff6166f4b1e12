"""The schedule's closed forms against a step-by-step count, and the one-call-per-step program
against the same work done kernel by kernel."""
import numpy as np
import pytest
import tensorflow as tf

from rawdqn import schedule
from rawdqn.algorithms import dqn
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig


def counted_step_by_step(total_steps, config):
    """Updates and syncs after total_steps steps, each step asking the tutorials' if-tests."""
    updates = syncs = 0
    for step in range(total_steps):
        if step >= config.learning_starts and step % config.train_frequency == 0:
            updates += config.gradient_steps
        if step % config.target_update_interval == 0:
            syncs += 1
    return updates, syncs


@pytest.mark.parametrize("learning_starts, frequency, gradient_steps, interval", [
    (0, 1, 1, 1), (1000, 256, 128, 10), (100, 10, 1, 500), (3, 64, 1, 4), (7, 3, 2, 9)])
def test_closed_forms_equal_a_step_by_step_count(learning_starts, frequency, gradient_steps, interval):
    config = DQNConfig(learning_starts=learning_starts, train_frequency=frequency,
                       gradient_steps=gradient_steps, target_update_interval=interval)
    for steps in (0, 1, 2, 3, 17, 100, 255, 256, 257, 1001, 4_321):
        expected = counted_step_by_step(steps, config)
        assert (schedule.updates_owed(config, steps), schedule.syncs_owed(config, steps)) == expected
        as_tensors = (schedule.updates_owed(config, tf.constant(steps, tf.int64)),
                      schedule.syncs_owed(config, tf.constant(steps, tf.int64)))
        assert tuple(int(x) for x in as_tensors) == expected



@pytest.mark.parametrize("num_envs, learning_starts, frequency, gradient_steps, interval", [
    (1, 0, 1, 1, 1), (64, 1000, 256, 128, 10), (16, 100, 10, 1, 500), (5, 3, 64, 1, 4), (3, 5, 4, 3, 7)])
def test_advancing_n_steps_at_a_time_makes_the_updates_and_syncs_of_a_step_by_step_count(
        num_envs, learning_starts, frequency, gradient_steps, interval):
    """algorithms.dqn.step, N steps per call as the vector and on-device loops call it: it
    stores first, learns as often and syncs as often as the step-by-step loop, then acts with
    ε(t), …, ε(t + N − 1)."""
    config = DQNConfig(learning_starts=learning_starts, train_frequency=frequency, gradient_steps=gradient_steps,
                       target_update_interval=interval, total_steps=100 * num_envs)
    counters = dqn.Counters(*(tf.constant(0, tf.int64),) * 3)
    info = dqn.LearnInfo(*(tf.constant(0.0),) * 5)
    events = []

    def learn(step):
        events.append("learn")
        return dqn.LearnInfo(*(tf.constant(1.0),) * 5)
    for iteration in range(1, 101):
        events.clear()
        epsilons = []
        counters, info, updates, _ = dqn.step(
            config, counters, num_envs, lambda: events.append("store"), learn, lambda tau: events.append("sync"),
            lambda epsilon: epsilons.append(epsilon) or events.append("act"), info)
        assert events[0] == "store" and events[-1] == "act" and events.count("learn") == int(updates)
        steps = iteration * num_envs
        hand_epsilon = [config.epsilon_start + (config.epsilon_end - config.epsilon_start)
                        * min(1.0, t / config.exploration_decay_steps) for t in range(steps, steps + num_envs)]
        np.testing.assert_allclose(epsilons[0].numpy(), hand_epsilon, rtol=1e-6)
        if iteration in (1, 2, 3, 17, 100):
            assert (int(counters.updates_done), int(counters.syncs_done)) == counted_step_by_step(steps, config)
            assert int(counters.step) == steps


def test_epsilon_is_linear_then_flat():
    config = DQNConfig(total_steps=1_000, epsilon_start=1.0, epsilon_end=0.1, exploration_fraction=0.2)
    # decays over 200 steps: ε(50) = 1 − 0.9 · 50/200 = 0.775; ε(200) = ε(900) = 0.1.
    np.testing.assert_allclose(schedule.epsilon(config, [0, 50, 200, 900]).numpy(), [1.0, 0.775, 0.1, 0.1])
    in_steps = config.replace(exploration_steps=10)
    np.testing.assert_allclose(schedule.epsilon(in_steps, [5, 10]).numpy(), [0.55, 0.1])
    # The host's Python floats and the device's tensors are one formula.
    assert [schedule.epsilon(config, t) for t in (0, 50, 200)] == list(schedule.epsilon(config, [0, 50, 200]).numpy())
    assert isinstance(schedule.epsilon(config, 50), float)


CONFIG = DQNConfig(hidden=(8,), batch_size=4, replay_capacity=64, learning_starts=5, train_frequency=3,
                   gradient_steps=2, target_update_interval=4, tau=0.3, exploration_fraction=0.5,
                   total_steps=40, mode="xla")


def transitions(count, obs_dim, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield (rng.normal(size=obs_dim).astype(np.float32), float(rng.normal()), float(rng.random() < 0.2),
               rng.normal(size=obs_dim).astype(np.float32))


@pytest.mark.parametrize("mode, tau", [("function", 1.0), ("function", 0.3), ("xla", 1.0), ("xla", 0.3)])
def test_one_call_per_step_equals_the_kernels_called_one_by_one(mode, tau):
    """agent.step (store → learn if due → sync if due → act) against act, replay.add, train and
    sync_target called in that order, as the step-by-step if-tests say, on the same stream.

    Bit for bit, except one case: XLA on a CPU contracts a Polyak sync τθ + (1 − τ)θ⁻ into
    fused multiply-adds differently inside the whole-step program than inside the sync kernel
    alone (1 ulp; neither equals NumPy's separately rounded float32), so with τ < 1 under XLA
    the weights agree to float32 rounding, not to the bit."""
    config = CONFIG.replace(mode=mode, tau=tau)
    exact = mode == "function" or tau == 1.0
    fused, unfused = DQN(3, 2, config, seed=4), DQN(3, 2, config, seed=4)
    start = np.zeros(3, np.float32)
    fused_actions = [int(fused.begin(start[None]).numpy()[0])]
    unfused_actions = [int(unfused.act(start[None], schedule.epsilon(config, 0)).numpy()[0])]
    obs = start
    for step, (next_obs, reward, terminated, reset_obs) in enumerate(transitions(30, 3)):
        acting = reset_obs if terminated else next_obs
        fused_actions.append(int(fused.step(next_obs[None], [reward], [terminated], acting[None]).numpy()[0]))
        unfused.replay.add(obs[None], [unfused_actions[-1]], [reward], next_obs[None], [terminated])
        if step >= config.learning_starts and step % config.train_frequency == 0:
            unfused.train(config.gradient_steps)
        if step % config.target_update_interval == 0:
            unfused.sync_target(config.tau)
        unfused_actions.append(int(unfused.act(acting[None], schedule.epsilon(config, step + 1)).numpy()[0]))
        obs = acting
    assert fused_actions == unfused_actions
    assert fused._step.calls and fused._collect.calls   # steps with work due and steps without
    for a, b in zip(fused.online.variables_in_order + fused.target.variables_in_order,
                    unfused.online.variables_in_order + unfused.target.variables_in_order):
        if exact:
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        else:
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
    for name in ("obs", "action", "reward", "next_obs", "terminated", "cursor", "count", "draws"):
        np.testing.assert_array_equal(getattr(fused.replay, name).numpy(), getattr(unfused.replay, name).numpy())
    assert int(fused.optimizer.step.numpy()) == int(unfused.optimizer.step.numpy()) > 0
    assert (int(fused.schedule.updates_done.numpy()), int(fused.schedule.syncs_done.numpy())) == \
        counted_step_by_step(30, config)


def test_the_step_records_where_training_diverged():
    config = CONFIG.replace(optimizer="sgd", learning_rate=1e30, max_grad_norm=None, mode="function")
    agent = DQN(3, 2, config, seed=1)
    agent.begin(np.zeros((1, 3), np.float32))
    for next_obs, reward, terminated, _ in transitions(30, 3, seed=2):
        agent.step(next_obs[None] * 1e3, [reward * 1e3], [0.0], next_obs[None] * 1e3)
    diverged_at = int(agent.diverged_at.numpy())
    # Updates happen after steps 6, 9, 12, … (step u ≥ 5 with u mod 3 = 0, counted 1-based: u + 1).
    assert diverged_at in {7, 10, 13, 16, 19, 22, 25, 28}
    assert not np.all(np.isfinite(agent.diverged_info.numpy()))


@pytest.mark.parametrize("interval", [0, 1, 3, 7, 10])
@pytest.mark.parametrize("num_envs", [1, 3, 8])
def test_a_hook_fires_exactly_where_n_steps_at_a_time_pass_a_multiple_of_its_interval(interval, num_envs):
    for done_before in range(0, 60, num_envs):
        passed = any(interval and u % interval == 0 for u in range(done_before + 1, done_before + num_envs + 1))
        assert schedule.crosses(interval, done_before, done_before + num_envs) == passed


@pytest.mark.parametrize("num_envs", [1, 3, 8])
def test_hooks_fall_where_a_step_by_step_loop_puts_them_and_the_end_has_only_its_progress_line(num_envs):
    config = DQNConfig(total_steps=100, eval_interval=10, log_interval=25)
    fired = {"evaluate": [], "log": [], "checkpoint": []}
    steps = list(range(0, config.total_steps + num_envs, num_envs))
    steps[-1] = min(steps[-1], 100 + num_envs - 1)
    for before, after in zip(steps, steps[1:]):
        due = schedule.hooks_due(config, 30, before, after)
        assert due.finished == (after >= 100)
        for name in fired:
            if getattr(due, name):
                fired[name].append(after)
    # Step by step: the first step count at or past each multiple; none at the end but the progress line.
    def first_at_or_past(interval):
        return sorted({min(s for s in steps if s >= k) for k in range(interval, 200, interval)
                       if any(s >= k for s in steps)})
    end = steps[-1]
    assert fired["evaluate"] == [s for s in first_at_or_past(10) if s < 100]
    assert fired["checkpoint"] == [s for s in first_at_or_past(30) if s < 100]
    assert fired["log"] == sorted(set([s for s in first_at_or_past(25) if s < 100] + [end]))


@pytest.mark.parametrize("tau", [1.0, 0.3, 0.005])
def test_k_syncs_owed_are_one_polyak_step(tau):
    # θ⁻ after k Polyak steps θ⁻ ← τθ + (1 − τ)θ⁻ with θ fixed, in float64, against one step with
    # τ' = due(…).tau, on the host (ints) and the device (tensors) alike.
    config = DQNConfig(target_update_interval=1, tau=tau)
    theta, theta_minus = np.array([2.0, -1.0, 0.5]), np.array([0.0, 3.0, -4.0])
    for k in (1, 2, 5):
        stepped = theta_minus.copy()
        for _ in range(k):
            stepped = tau * theta + (1.0 - tau) * stepped
        for owed in (schedule.due(config, 10 + k, 0, 10),
                     schedule.due(config, tf.constant(10 + k, tf.int64), tf.constant(0, tf.int64),
                                  tf.constant(10, tf.int64))):
            assert int(owed.syncs) == k
            one = float(owed.tau) * theta + (1.0 - float(owed.tau)) * theta_minus
            np.testing.assert_allclose(one, stepped, rtol=1e-12)
        if k == 1:   # one sync: τ itself, bit for bit
            assert schedule.due(config, 11, 0, 10).tau == tau


def test_the_host_and_the_device_agree_on_what_is_due():
    """The host picks the program without learning and syncing (collect) exactly where the
    device's counters, advanced by the same `due`, make no update and no sync; the `step`
    program makes no sync, and the host calls `sync_owed` exactly where one falls due."""
    config = CONFIG.replace(mode="function")
    agent = DQN(3, 2, config, num_envs=2, seed=1)
    agent.begin(np.zeros((2, 3), np.float32))
    collected, stepped, synced = agent._collect, agent._step, agent._sync_owed
    chosen, syncs_after_program = [], []
    counters = lambda: (int(agent.schedule.updates_done.numpy()), int(agent.schedule.syncs_done.numpy()))

    def step(*args):
        chosen.append("step")
        action = stepped(*args)
        syncs_after_program.append(counters()[1])
        return action
    agent._collect = lambda *args: (chosen.append("collect"), collected(*args))[1]
    agent._step = step
    agent._sync_owed = lambda: (chosen.append("sync"), synced())[1]
    for iteration, (next_obs, reward, terminated, _) in enumerate(transitions(25, 3, seed=2)):
        before, calls = counters(), len(chosen)
        agent.step(np.stack([next_obs, -next_obs]), [reward, reward], [terminated, 0.0], np.stack([next_obs, -next_obs]))
        assert (counters() == before) == (chosen[calls] == "collect"), chosen
        steps = 2 * (iteration + 1)   # never behind: everything owed after each step was made in it
        assert counters() == (schedule.updates_owed(config, steps), schedule.syncs_owed(config, steps))
        sync_due = schedule.syncs_owed(config, steps) > schedule.syncs_owed(config, steps - 2)
        assert ("sync" in chosen[calls:]) == sync_due, chosen[calls:]
        if chosen[calls] == "step":
            assert syncs_after_program[-1] == before[1]   # the step program itself synced nothing
    assert {"collect", "step", "sync"} <= set(chosen)
