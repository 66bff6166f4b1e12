"""Ape-X (rawdqn/distributed/apex.py): the actors' ε, their n-step windows against the NumPy
reference, the learner's replay of prebuilt windows with given priorities; and with a local Ray
instance of 2 actors: windows arrive intact, weights propagate, an actor killed with SIGKILL
comes back and the run finishes."""
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from rawdqn import reference
from rawdqn.distributed.apex import NStepWindows, actor_epsilon
from rawdqn.replay import ReplayBuffer
from test_prioritized import assert_frequencies_match


def test_actor_epsilons_are_horgan_et_als():
    # ε_i = 0.4^(1 + 7 i / (N − 1)): actor 0 explores with 0.4, the last with 0.4^8 = 6.6e-4.
    assert actor_epsilon(0, 8) == 0.4
    assert actor_epsilon(7, 8) == pytest.approx(0.4 ** 8, rel=1e-12)
    assert actor_epsilon(3, 8) == pytest.approx(0.4 ** (1 + 3), rel=1e-12)
    assert actor_epsilon(0, 1) == 0.4


@pytest.mark.parametrize("seed", range(4))
def test_windows_are_the_n_step_windows_of_each_episode(seed):
    # Each emitted window against reference.n_step_window over the env's own steps from its start:
    # cut at a termination or a truncation, never into the next episode, bootstrapping from the
    # true observation after its last step; every step starts exactly one window.
    rng = np.random.default_rng(seed)
    num_envs, n, discount, steps = 3, int(rng.integers(1, 5)), 0.9, 60
    windows = NStepWindows(num_envs, n, discount)
    history = [[] for _ in range(num_envs)]   # per env: (obs, reward, terminated, ended, next_obs)
    for t in range(steps):
        obs = np.stack([np.array([env, t, 0.0]) for env in range(num_envs)])
        next_obs = obs + np.array([0.0, 0.5, 1.0])
        reward, terminated = rng.normal(size=num_envs), rng.random(num_envs) < 0.1
        ended = terminated | (rng.random(num_envs) < 0.1)
        for env in range(num_envs):
            history[env].append((reward[env], terminated[env], ended[env], next_obs[env]))
        windows.add(obs, np.arange(num_envs), reward, next_obs, terminated, ended)
    batch = windows.take((3,))
    starts = {(int(o[0]), int(o[1])) for o in batch["obs"]}
    assert len(starts) == len(batch["obs"])
    assert len(windows.take((3,))["obs"]) == 0   # taken once
    for obs, reward, next_obs, terminated, window_discount in zip(batch["obs"], batch["reward"], batch["next_obs"],
                                                                  batch["terminated"], batch["discount"]):
        env, t = int(obs[0]), int(obs[1])
        steps_after = history[env][t:t + n]
        want_return, want_discount, last = reference.n_step_window(
            [[s[0] for s in steps_after]], [[s[1] for s in steps_after]], [[s[2] for s in steps_after]], discount)
        assert reward == pytest.approx(want_return[0], abs=1e-12)
        assert window_discount == pytest.approx(want_discount[0], abs=1e-15)
        last = int(last[0])
        np.testing.assert_array_equal(next_obs, steps_after[last][3])
        assert terminated == float(steps_after[last][1])
    # Every step whose window is whole (or cut) has been emitted; the open ones wait.
    for env in range(num_envs):
        emitted_t = sorted(t for e, t in starts if e == env)
        open_windows = len(windows.pending[env])
        assert emitted_t == list(range(steps - open_windows)) and open_windows < n


def test_the_learners_replay_samples_prebuilt_windows_in_proportion_to_their_errors():
    rng = np.random.default_rng(0)
    replay = ReplayBuffer(64, (2,), seed=3, prioritized=True, priority_exponent=0.6, row_discounts=True)
    errors = rng.normal(size=40) * 3
    discount = 0.9 ** rng.integers(1, 4, 40)
    obs = np.stack([np.arange(40), np.zeros(40)], 1)
    replay.add(obs, np.zeros(40, np.int32), rng.normal(size=40), obs + 1, np.zeros(40), discount=discount, errors=errors)
    priorities = (np.abs(errors) + 1e-6) ** 0.6
    drawn = np.concatenate([replay.sample(500).obs.numpy()[:, 0].astype(int) for _ in range(40)])
    assert_frequencies_match(drawn, priorities / priorities.sum())
    sample = replay.sample(200)
    np.testing.assert_allclose(sample.discount.numpy(), discount[sample.obs.numpy()[:, 0].astype(int)], rtol=1e-6)
    with pytest.raises(ValueError, match="row_discounts"):
        replay.add(obs, np.zeros(40, np.int32), np.zeros(40), obs, np.zeros(40))


def test_without_ray_the_cli_says_what_to_install(capsys, monkeypatch):
    from cli_helpers import cli
    monkeypatch.setitem(__import__("sys").modules, "ray", None)   # `import ray` raises ImportError
    code, _, err = cli(capsys, "train", "--distributed", "--prioritized", "--steps", 100)
    assert code == 2 and 'pip install "rawdqn[distributed]"' in err and "Traceback" not in err, err


ray = pytest.importorskip("ray", reason='Ape-X needs Ray: pip install "rawdqn[distributed]"')


@pytest.fixture(scope="module")
def apex_run():
    """A learner with 2 local actors on CartPole, built but not yet run."""
    from rawdqn.config import preset
    from rawdqn.distributed.apex import ApexRun
    config = preset("CartPole-v1", name="rainbow").replace(
        prioritized=True, total_steps=3_000, learning_starts=500, actor_steps=25, weights_interval=5,
        eval_interval=0, keep_best=False, eval_episodes=1)
    run = ApexRun("CartPole-v1", config, seed=1, num_actors=2, log=lambda line: None)
    yield run
    if ray.is_initialized():
        ray.shutdown()


def test_two_actors_ship_intact_windows_and_take_the_published_weights(apex_run):
    run = apex_run
    run.begin()
    shipped = []
    store = run.store
    run.store = lambda batch: shipped.append(batch) or store(batch)
    while run.step < 1_500:
        run.advance()
    run.store = store
    assert {batch["actor"] for batch in shipped} == {0, 1}
    assert run.step == sum(batch["steps"] for batch in shipped) == len(shipped) * 25 * run.config.num_envs
    # The replay holds exactly the windows shipped, in order (the ring has not wrapped).
    rows = sum(len(batch["action"]) for batch in shipped)
    assert run.agent.replay.size == rows
    stored = run.agent.replay.contents()
    sent = {key: np.concatenate([batch[key] for batch in shipped]) for key in ("obs", "action", "reward", "discount")}
    np.testing.assert_allclose(stored.obs.numpy()[:rows], sent["obs"], rtol=1e-6)
    np.testing.assert_array_equal(stored.action.numpy()[:rows], sent["action"])
    np.testing.assert_allclose(stored.reward.numpy()[:rows], sent["reward"], rtol=1e-6)
    np.testing.assert_allclose(stored.discount.numpy()[:rows], sent["discount"], rtol=1e-6)
    # The learner's updates rewrote the priorities of what they drew: the tree no longer holds
    # only the (|δ| + ε)^α of the actors' errors.
    shipped_errors = np.concatenate([batch["errors"] for batch in shipped])
    initial_total = np.sum((np.abs(shipped_errors) + 1e-6) ** run.config.priority_exponent)
    assert abs(float(run.agent.replay.priorities.total_fn()) - initial_total) > 1e-6 * initial_total
    # Updates were made and published; after its next collect an actor acts with those weights.
    assert int(run.agent.schedule.updates_done.numpy()) > 0 and run.weights_version > 0
    actor = run.actors[0]
    ray.get(actor.collect.remote(run.weights_ref, run.weights_version, 1))
    weights, version = ray.get(actor.weights.remote())
    assert version == run.weights_version
    np.testing.assert_array_equal(weights, run.agent.online.theta.numpy())


def test_an_actor_killed_with_sigkill_comes_back_and_the_run_finishes(apex_run):
    # Its shipment in flight, if any, is lost (lost_batches); Ray restarts the process, which
    # ships again, and the run reaches its end.
    run = apex_run
    if not run.pending:
        run.begin()
    killed = ray.get(run.actors[1].pid.remote())
    os.kill(killed, signal.SIGKILL)
    shipped = []
    store = run.store
    run.store = lambda batch: shipped.append((batch["actor"], batch["pid"])) or store(batch)
    run.config = run.config.replace(total_steps=run.step + 10_000)   # time for the restart (~3 s)
    result = run.run()   # to total_steps, then the final evaluation
    assert run.step >= run.config.total_steps and np.isfinite(result.eval_mean)
    assert any(actor == 1 and pid != killed for actor, pid in shipped), shipped   # a new process shipped on
    assert ray.is_initialized() is False    # the run shut Ray down at its end


def test_too_many_actors_and_an_unreachable_cluster_are_one_line_errors(capsys):
    from cli_helpers import cli
    code, _, err = cli(capsys, "train", "--distributed", "--actors", (os.cpu_count() or 1) + 1, "--prioritized",
                       "--steps", 100)
    assert code == 2 and "CPUs (one per actor)" in err and "Traceback" not in err, err
    code, _, err = cli(capsys, "train", "--distributed", "--address", "127.0.0.1:1", "--prioritized", "--steps", 100)
    assert code == 2 and "cannot reach a Ray cluster" in err and "Traceback" not in err, err
    code, _, err = cli(capsys, "train", "--actors", 2, "--steps", 100)
    assert code == 2 and "--actors needs --distributed" in err


def test_a_stopped_learner_resumes_from_its_checkpoint_with_new_actors(tmp_path, capsys):
    # SIGINT stops the run with a checkpoint (weights, optimizer, replay, counters); `resume`
    # continues it from there with new actors, here 1 where there were 2, to the end.
    from rawdqn import checkpoint
    from rawdqn.config import preset
    from rawdqn.distributed import apex
    from rawdqn.train import TrainingInterrupted, resume
    from test_checkpoint import interrupt_at, quiet
    config = preset("CartPole-v1", name="rainbow").replace(
        prioritized=True, total_steps=2_000, learning_starts=300, actor_steps=25, eval_interval=0, keep_best=False,
        eval_episodes=1, log_interval=500)
    run_dir = str(tmp_path / "run")
    with pytest.raises(TrainingInterrupted) as stopped:
        apex.train("CartPole-v1", config, seed=2, logdir=run_dir, log=interrupt_at(1_000), num_actors=2)
    assert stopped.value.step == 1_000
    state, arrays, _ = checkpoint.load_state(stopped.value.checkpoint_path)
    assert state["distributed"]["actors"] == 2
    lines = []
    result = resume(run_dir, log=lines.append, num_actors=1)
    assert any("resuming DQN on CartPole-v1 at step 1,000" in line for line in lines), lines
    assert "rawdqn: from step 1,000: actors 2 → 1" in lines, lines
    final, _, _ = checkpoint.load_state(checkpoint.find(run_dir)[1])
    assert final["distributed"]["actors"] == 1
    assert {"step": 1_000, "field": "actors", "from": 2, "to": 1} in final["changes"]
    assert {"step": 1_000, "config_change": {"actors": [2, 1]}} in result.history
    assert result.agent.schedule.step.numpy() >= 2_000 and result.agent.replay.size > 0
    steps_before = [row["step"] for row in result.history if "steps_per_second" in row]
    assert steps_before[0] == 500 and steps_before[-1] >= 2_000   # one run's history, before and after the stop
    from cli_helpers import cli   # an Ape-X run directory is a run directory: eval reads it
    code, out, err = cli(capsys, "eval", run_dir)
    assert code == 0 and "CartPole-v1 at step 2,000" in out, err
