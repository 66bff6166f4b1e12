"""REINFORCE (rawdqn/policy_agent.py): its gradient estimate against the exact policy gradient of a
small MDP, its episode buffer against the episodes played, and runs as a user makes them:
train, resume bit for bit, eval, export."""
import json

import numpy as np
import pytest
import tensorflow as tf

from cli_helpers import cli
from rawdqn import checkpoint
from rawdqn.config import DQNConfig
from rawdqn.policy_agent import Episodes, PolicyGradientAgent
from test_checkpoint import interrupted_and_resumed
from test_policy_gradient import small_mdp


def episode_batches(mdp, theta, rng, batches, per_batch):
    """`batches` Episodes of `per_batch` sampled episodes each, one episode per column, padded
    to the longest episode of all (one shape: one compiled program)."""
    episodes = [mdp.sample_episode(theta, rng) for _ in range(batches * per_batch)]
    longest = max(len(states) for states, _, _ in episodes)
    result = []
    for b in range(batches):
        columns = episodes[b * per_batch:(b + 1) * per_batch]
        shape = (longest, per_batch)
        obs, action, reward = np.zeros(shape, np.int32), np.zeros(shape, np.int32), np.zeros(shape)
        ended, valid, step = np.zeros(shape), np.zeros(shape, bool), np.tile(np.arange(longest)[:, None], (1, per_batch))
        for n, (states, actions, rewards) in enumerate(columns):
            length = len(states)
            obs[:length, n], action[:length, n], reward[:length, n] = states, actions, rewards
            ended[length - 1, n], valid[:length, n] = 1.0, True
        # Every episode of this MDP terminates (no time limit): terminated = ended.
        result.append(Episodes(obs, action, reward, ended, ended, obs, None, valid, step.astype(np.int32),
                               np.int64(per_batch)))
    return result


def mean_gradient_estimate(score_discounting, seed=0, batches=200, per_batch=100):
    """(mean, standard error) of −∇L over batches of episodes, and the MDP and θ."""
    mdp, rng = small_mdp(seed)
    theta = rng.normal(size=(4, 3))
    config = DQNConfig(algo="reinforce", hidden=(), discount=0.9, normalize_advantages=False, max_grad_norm=None,
                       score_discounting=score_discounting, dtype="float64")
    agent = PolicyGradientAgent(4, 3, config, episode_steps=10, discrete_obs=True, use_bias=False)
    agent.policy.theta.assign(theta.reshape(-1))   # no hidden layer, no bias: θ is the table W[s, a]
    estimates = np.array([-agent.gradients(batch)[1][0].numpy().reshape(4, 3)
                          for batch in episode_batches(mdp, theta, rng, batches, per_batch)])
    return estimates.mean(axis=0), estimates.std(axis=0, ddof=1) / np.sqrt(batches), mdp, theta


def test_the_mean_reinforce_gradient_is_the_exact_policy_gradient():
    # Sutton & Barto's REINFORCE, Σ_t γ^t G_t ∇log π(a_t|s_t), is unbiased for ∇J, which the
    # policy-gradient theorem gives exactly (discounted visitation × (Q^π − V^π), from the linear
    # solve). 20,000 episodes: every component within 4 standard errors (z-test, fixed seed).
    mean, error, mdp, theta = mean_gradient_estimate(score_discounting=True)
    exact = mdp.policy_gradient(theta, 0.9)
    z = (mean - exact) / error
    assert np.all(np.abs(z) < 4.0), z
    assert np.max(np.abs(exact)) > 10 * np.max(error)   # the gradient is far from 0 at this precision


def test_without_the_discount_powers_it_estimates_the_undiscounted_visitation_gradient():
    # Without γ^t (TF-Agents' form), the estimate weights states by their expected visits per
    # episode instead: it matches that exact sum, and is detectably not ∇J.
    mean, error, mdp, theta = mean_gradient_estimate(score_discounting=False)
    z = (mean - mdp.policy_gradient(theta, 0.9, visitation_weight=1.0)) / error
    assert np.all(np.abs(z) < 4.0), z
    assert np.max(np.abs((mean - mdp.policy_gradient(theta, 0.9)) / error)) > 8.0


def play_and_record(num_envs, steps, seed, config=None):
    """Step a REINFORCE agent through random transitions; returns (step, batch) of each update and,
    per env, the list of (obs, action, reward, terminated, ended, next_obs) of its steps 0, 1, …"""
    rng = np.random.default_rng(seed)
    config = config or DQNConfig(algo="reinforce", hidden=(8,), episodes_per_update=2, mode="eager", dtype="float64")
    agent = PolicyGradientAgent(3, 2, config, episode_steps=6, num_envs=num_envs)
    seen, clock = [], [0]
    learn = agent.learn_fn
    agent.learn_fn = lambda batch: seen.append((clock[0], tf.nest.map_structure(
        lambda x: None if x is None else np.array(x), batch))) or learn(batch)
    obs = rng.normal(size=(num_envs, 3))
    actions = agent.begin(obs).numpy()
    length, played = np.zeros(num_envs, int), [[] for _ in range(num_envs)]
    for t in range(steps):
        clock[0] = t
        length += 1
        next_obs = rng.normal(size=(num_envs, 3))
        terminated = (rng.random(num_envs) < 0.2) & (length < 6)
        ended = terminated | (length == 6)   # truncated at the time limit of 6 steps
        reward = rng.normal(size=num_envs)
        for n in range(num_envs):
            played[n].append((obs[n].copy(), actions[n], reward[n], terminated[n], ended[n], next_obs[n].copy()))
        reset = np.where(ended[:, None], rng.normal(size=(num_envs, 3)), next_obs)
        actions = agent.step(next_obs, reward, terminated.astype(float), reset, ended=ended.astype(float)).numpy()
        obs = reset
        length[ended] = 0
    return seen, played


@pytest.mark.parametrize("num_envs,seed", [(1, 0), (3, 1), (3, 2)])
def test_each_update_learns_from_exactly_the_episodes_finished_since_the_last(num_envs, seed):
    seen, played = play_and_record(num_envs, 60, seed)
    assert len(seen) >= 3
    consumed = [0] * num_envs   # steps of env n's list the updates so far have taken
    for t, batch in seen:
        finished = 0
        for n in range(num_envs):
            rows = int(batch.valid[:, n].sum())
            assert batch.valid[:rows, n].all() and not batch.valid[rows:, n].any()
            steps = played[n][consumed[n]:consumed[n] + rows]
            if rows:
                assert steps[-1][4], "a batch ends each env's rows at an episode's end"
            for k, (obs, action, reward, terminated, ended, next_obs) in enumerate(steps):
                np.testing.assert_array_equal(batch.obs[k, n], obs)
                np.testing.assert_array_equal(batch.next_obs[k, n], next_obs)
                assert (batch.action[k, n], batch.reward[k, n], batch.terminated[k, n], batch.ended[k, n]) == \
                       (action, reward, float(terminated), float(ended))
            starts = [k for k in range(rows) if k == 0 or steps[k - 1][4]]
            assert [int(batch.step[k, n]) for k in starts] == [0] * len(starts)   # t counts from each reset
            finished += sum(step[4] for step in steps)
            consumed[n] += rows
        assert batch.episodes == finished >= 2
        # No finished episode waits past an update: what is left of each env is one unfinished piece.
        for n in range(num_envs):
            assert not any(step[4] for step in played[n][consumed[n]:t + 1])


def reinforce_config(**changes):
    return DQNConfig(algo="reinforce", total_steps=300, hidden=(16,), learning_rate=1e-2, discount=0.99,
                     episodes_per_update=2, eval_episodes=1, eval_interval=100, log_interval=50,
                     mode="function").replace(**changes)


@pytest.mark.parametrize("changes", [{}, dict(baseline=True, entropy_coef=0.01, num_envs=2, score_discounting=True)],
                         ids=["plain", "baseline-2-envs"])
def test_an_interrupted_and_resumed_reinforce_run_ends_bit_for_bit_like_an_uninterrupted_one(tmp_path, changes):
    straight, resumed = interrupted_and_resumed(str(tmp_path / "run"), reinforce_config(**changes), 5, 150)
    assert int(straight.agent.schedule.updates_done.numpy()) >= 5
    assert resumed.episode_returns == straight.episode_returns


def test_the_tutorial_preset_counts_updates_and_eval_export_read_the_policy(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, err = cli(capsys, "train", "--preset", "tf-agents-reinforce", "--total-updates", 20,
                         "--eval-interval", 10, "--log-interval", 10, "--logdir", run_dir)
    assert code == 0, err
    assert "training REINFORCE on CartPole-v1 for 20 updates" in out
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [row["updates"] for row in history if "updates" in row] == [10, 20]
    evaluations = [row for row in history if "eval_mean" in row]
    assert len(evaluations) == 2   # after update 10, and the final one after update 20
    printed = out.strip().splitlines()[-1].split(" over ")[0]
    code, out, err = cli(capsys, "eval", run_dir)
    assert code == 0, err
    assert out.split(": ", 1)[1].split(" over ")[0] == printed.split(": ", 1)[1]
    exported = tmp_path / "exported"
    code, out, err = cli(capsys, "export", run_dir, "--out", exported)
    assert code == 0, err
    loaded = tf.saved_model.load(str(exported))
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    policy_logits = train_policy_logits(run_dir, obs)
    np.testing.assert_array_equal(loaded.signatures["serving_default"](observation=tf.constant(obs))["action"].numpy(),
                                  np.argmax(policy_logits, axis=1))


def train_policy_logits(run_dir, obs):
    """The saved policy's logits by hand: relu(obs W₀ + b₀) W₁ + b₁ from the checkpoint's θ."""
    reader = tf.train.load_checkpoint(f"{checkpoint.latest(str(run_dir))}/variables")
    key = next(k for k in reader.get_variable_to_shape_map() if "policy/theta" in k and "optimizer" not in k
               and k.endswith("VARIABLE_VALUE"))
    theta = reader.get_tensor(key).astype(np.float64)
    w0, theta = theta[:4 * 100].reshape(4, 100), theta[4 * 100:]
    b0, theta = theta[:100], theta[100:]
    w1, b1 = theta[:200].reshape(100, 2), theta[200:]
    return np.maximum(obs @ w0 + b0, 0) @ w1 + b1


def test_usage_errors_name_the_option(capsys):
    code, _, err = cli(capsys, "train", "--algo", "reinforce", "--dueling", "--steps", 100)
    assert code == 2 and "--dueling is a DQN option" in err and "Traceback" not in err
    code, _, err = cli(capsys, "train", "--total-updates", 5, "--steps", 100)
    assert code == 2 and "--total-updates is a REINFORCE option; --algo dqn has no use for it" in err
    code, _, err = cli(capsys, "train", "--algo", "reinforce", "--env", "CliffWalking-v1", "--steps", 100)
    assert code == 2 and "--max-episode-steps" in err, err
