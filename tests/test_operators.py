"""The one-step targets (bellman.py) and multi-step returns (multistep.py) of TRFL and rlax:
the worked examples of their docstrings, derived by hand; each against its NumPy float64
reference (rawdqn/reference.py) to 1e-12, eagerly and under XLA; and the cases in which one
operator is another."""
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rawdqn import bellman, losses, multistep, policy_gradient, reference

PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = ("eager", "xla")
RTOL = 1e-12


COMPILED = {}   # one XLA function per operator and keyword arguments; it compiles once per shape


def run(function, mode, *args, **kwargs):
    """function(*args) eagerly, or compiled by XLA; arrays and numbers go in as float64 (int32
    actions) tensors, so a new value never means a new trace; NumPy out."""
    def tensor(value):
        if value is None:
            return None
        array = np.asarray(value)
        return tf.constant(array, tf.int32 if array.dtype.kind in "iu" else tf.float64)
    tensors = [tensor(a) for a in args]
    kwargs = {key: tensor(value) for key, value in kwargs.items()}
    if mode == "xla":
        key = (function, tuple(kwargs), tuple(x is None for x in tensors))
        if key not in COMPILED:
            COMPILED[key] = tf.function(lambda *xs, **kws: function(*xs, **kws), jit_compile=True)
        result = COMPILED[key](*tensors, **kwargs)
    else:
        result = function(*tensors, **kwargs)
    return tf.nest.map_structure(lambda x: x.numpy(), result)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * (1 + np.max(np.abs(expected))))


# --- the worked examples -------------------------------------------------------------------
def test_one_step_targets_by_hand():
    one, zero = np.array([1.0]), np.array([0.0])
    q = np.array([[2.0, 5.0]])
    assert bellman.sarsa_target(one, zero, 0.9, q, [0]).numpy() == pytest.approx([2.8], abs=1e-15)
    assert bellman.expected_sarsa_target(one, zero, 0.9, q, [[0.25, 0.75]]).numpy() == pytest.approx([4.825], abs=1e-15)
    assert bellman.persistent_q_learning_target(zero, zero, 1.0, q, [0], 0.5).numpy() == pytest.approx([3.5], abs=1e-15)
    # Munchausen: π = [½, ½], τ log π = −ln 2, y = 1 + 0.9(−ln 2) + 0.5(0 + ln 2) = 1 − 0.4 ln 2.
    y = bellman.munchausen_target(one, zero, 0.5, np.zeros((1, 2)), [0], np.zeros((1, 2)), 1.0, 0.9, -1.0).numpy()
    assert y == pytest.approx([1.0 - 0.4 * np.log(2.0)], abs=1e-15)
    # The clip: Q⁻(s, ·) = [0, 10], τ = 1: τ log π(0|s) ≈ −10 is clipped to l₀ = −1, bonus −0.9.
    y = bellman.munchausen_target(zero, one, 0.5, np.array([[0.0, 10.0]]), [0], np.zeros((1, 2)), 1.0, 0.9, -1.0)
    assert y.numpy() == pytest.approx([-0.9], abs=1e-15)
    # Terminated: nothing after the step.
    assert bellman.sarsa_target(one, one, 0.9, q, [1]).numpy() == pytest.approx([1.0], abs=0)


def test_lambda_return_by_hand():
    rewards, discounts, values = np.array([[1.0], [2.0]]), np.array([[0.5], [0.5]]), np.array([[10.0], [20.0]])
    np.testing.assert_allclose(multistep.lambda_returns(rewards, discounts, values, 0.5).numpy(), [[6.5], [12.0]])


def test_retrace_and_vtrace_by_hand():
    # Retrace, T = 2, one sequence, 2 actions: π(·|s_1) = [1, 0], μ(·|s_1) = [½, ½], a_1 = 0, λ = 1:
    # c_0 = min(1, 1/0.5) = 1; G_1 = r_1 + d E_π Q(s_2) = 1 + 0.5·4 = 3;
    # G_0 = r_0 + d [E_π Q(s_1) + c_0 (G_1 − Q(s_1, a_1))] = 0 + 0.5 [2 + (3 − 2)] = 1.5.
    next_q = np.array([[[2.0, 6.0]], [[4.0, 0.0]]])
    pi = np.array([[[1.0, 0.0]], [[1.0, 0.0]]])
    mu = np.full((2, 1, 2), 0.5)
    returns = multistep.retrace_returns(np.array([[0.0], [1.0]]), np.full((2, 1), 0.5), next_q, np.array([[0], [0]]),
                                        pi, mu, 1.0)
    np.testing.assert_allclose(returns.numpy(), [[1.5], [3.0]])
    # V-trace, T = 1: ρ = e^0 = 1, v_0 = V + (r + d V_boot − V) = 1 + 0.5·4 = 3; A_0 = 3 − 2 = 1.
    vs, advantages = multistep.vtrace(np.array([[2.0]]), np.array([4.0]), np.array([[1.0]]), np.array([[0.5]]),
                                      np.array([[0.0]]))
    np.testing.assert_allclose(vs.numpy(), [[3.0]])
    np.testing.assert_allclose(advantages.numpy(), [[1.0]])


# --- against the NumPy references ------------------------------------------------------------
def one_step_batch(draw):
    batch, actions = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    floats = st.floats(-10, 10, allow_nan=False, width=64)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    reward = np.array(draw(st.lists(floats, min_size=batch, max_size=batch)))
    terminated = rng.integers(0, 2, batch).astype(np.float64)
    next_q, q = rng.normal(scale=5, size=(2, batch, actions))
    probs = rng.random((batch, actions)) + 0.01
    return dict(reward=reward, terminated=terminated, discount=draw(st.floats(0, 1)), next_q=next_q, q=q,
                probs=probs / probs.sum(1, keepdims=True), action=rng.integers(0, actions, batch).astype(np.int32),
                scale=draw(st.floats(0, 1)), temperature=draw(st.floats(0.01, 10)), alpha=draw(st.floats(0, 1)),
                log_clip=-draw(st.floats(0.1, 5)))


@pytest.mark.parametrize("mode", MODES)
@PROPERTY
@given(data=st.data())
def test_one_step_targets_equal_their_references(mode, data):
    b = one_step_batch(data.draw)
    common = (b["reward"], b["terminated"], b["discount"])
    close(run(bellman.sarsa_target, mode, *common, b["next_q"], b["action"]),
          reference.sarsa_target(*common, b["next_q"], b["action"]))
    close(run(bellman.expected_sarsa_target, mode, *common, b["next_q"], b["probs"]),
          reference.expected_sarsa_target(*common, b["next_q"], b["probs"]))
    close(run(bellman.persistent_q_learning_target, mode, *common, b["next_q"], b["action"], b["scale"]),
          reference.persistent_q_learning_target(*common, b["next_q"], b["action"], b["scale"]))
    arguments = (b["q"], b["action"], b["next_q"], b["temperature"], b["alpha"], b["log_clip"])
    close(run(bellman.munchausen_target, mode, *common, *arguments), reference.munchausen_target(*common, *arguments))


def sequences(draw, actions=False):
    steps, batch = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    gamma = draw(st.floats(0, 1))
    drawn = dict(rewards=rng.normal(scale=3, size=(steps, batch)),
                 discounts=gamma * (rng.random((steps, batch)) > 0.2),   # 0 where a step terminated
                 next_values=rng.normal(scale=5, size=(steps, batch)), lam=draw(st.floats(0, 1)), rng=rng)
    if actions:
        count = draw(st.integers(1, 3))
        pi, mu = rng.random((2, steps, batch, count)) + 0.05
        drawn.update(next_q=rng.normal(scale=5, size=(steps, batch, count)),
                     next_actions=rng.integers(0, count, (steps, batch)).astype(np.int32),
                     pi=pi / pi.sum(-1, keepdims=True), mu=mu / mu.sum(-1, keepdims=True))
    return drawn


@pytest.mark.parametrize("mode", MODES)
@PROPERTY
@given(data=st.data())
def test_multistep_returns_equal_their_references(mode, data):
    s = sequences(data.draw, actions=True)
    head = (s["rewards"], s["discounts"])
    close(run(multistep.lambda_returns, mode, *head, s["next_values"], s["lam"]),
          reference.lambda_returns(*head, s["next_values"], s["lam"]))
    # The recursion is the definition: a mixture of n-step returns weighted (1 − λ)λ^{n−1}.
    close(reference.lambda_returns(*head, s["next_values"], s["lam"]),
          reference.n_step_return_mixture(*head, s["next_values"], s["lam"]))
    close(run(multistep.peng_q_lambda_returns, mode, *head, s["next_q"], s["lam"]),
          reference.lambda_returns(*head, s["next_q"].max(-1), s["lam"]))
    greedy = s["next_actions"] == s["next_q"].argmax(-1)
    close(run(multistep.watkins_q_lambda_returns, mode, *head, s["next_q"], s["next_actions"], s["lam"]),
          reference.lambda_returns(*head, s["next_q"].max(-1), np.where(greedy, s["lam"], 0.0)))
    arguments = (s["next_q"], s["next_actions"], s["pi"], s["mu"], s["lam"])
    close(run(multistep.retrace_returns, mode, *head, *arguments), reference.retrace_returns(*head, *arguments))
    values, bootstrap = s["rng"].normal(size=s["rewards"].shape), s["rng"].normal(size=s["rewards"].shape[1])
    log_rhos = s["rng"].normal(size=s["rewards"].shape)
    for clips in ((1.0, 1.0, 1.0), (None, None, None), (2.0, 0.5, 1.5)):
        actual = run(multistep.vtrace, mode, values, bootstrap, *head, log_rhos, *clips, lambda_=s["lam"])
        expected = reference.vtrace(values, bootstrap, *head, log_rhos, *clips, lambda_=s["lam"])
        close(actual[0], expected[0])
        close(actual[1], expected[1])


# --- one operator as a case of another -------------------------------------------------------
@PROPERTY
@given(data=st.data())
def test_the_special_cases(data):
    s = sequences(data.draw, actions=True)
    head = (s["rewards"], s["discounts"])
    # λ = 0: the one-step target r + d v at every step.
    close(multistep.lambda_returns(*head, s["next_values"], 0.0).numpy(), s["rewards"] + s["discounts"] * s["next_values"])
    # Peng's is Watkins' where every next action is greedy.
    greedy = s["next_q"].argmax(-1).astype(np.int32)
    close(multistep.watkins_q_lambda_returns(*head, s["next_q"], greedy, s["lam"]).numpy(),
          multistep.peng_q_lambda_returns(*head, s["next_q"], s["lam"]).numpy())
    # Retrace with λ = 0 is expected SARSA's target at every step.
    expected_sarsa = [reference.expected_sarsa_target(s["rewards"][t], np.zeros_like(s["rewards"][t]), 1.0,
                                                      s["discounts"][t, :, None] * s["next_q"][t], s["pi"][t])
                      for t in range(len(s["rewards"]))]
    close(multistep.retrace_returns(*head, s["next_q"], s["next_actions"], s["pi"], s["mu"], 0.0).numpy(),
          np.array(expected_sarsa))
    # V-trace on-policy (π = μ) and unclipped: the λ-return of V.
    values, bootstrap = s["rng"].normal(size=s["rewards"].shape), s["rng"].normal(size=s["rewards"].shape[1])
    vs, _ = multistep.vtrace(values, bootstrap, *head, np.zeros_like(values), None, None, None, lambda_=s["lam"])
    next_values = np.concatenate([values[1:], bootstrap[None]])
    close(vs.numpy(), reference.lambda_returns(*head, next_values, s["lam"]))


@PROPERTY
@given(data=st.data())
def test_the_policy_gradient_returns_are_lambda_returns(data):
    """discounted_returns is the λ-return with λ_t = 1 − cut_t and d_t = γ(1 − terminated_t);
    GAE(λ) + V is the λ-return with λ_t = λ(1 − cut_t) (cut_t: the episode ended at t, or t is
    the rollout's last step), where V(s_{t+1}) is the next row's V within an episode."""
    s = sequences(data.draw)
    rng, shape = s["rng"], s["rewards"].shape
    gamma = data.draw(st.floats(0, 1))
    terminated = (rng.random(shape) < 0.2).astype(np.float64)
    ended = np.maximum(terminated, (rng.random(shape) < 0.2).astype(np.float64))   # and truncations
    cut = ended.copy()
    cut[-1] = 1.0
    values = rng.normal(size=shape)
    next_values = np.concatenate([values[1:], rng.normal(size=(1, shape[1]))])
    next_values = np.where(ended > 0, rng.normal(size=shape), next_values)   # a truncated episode's true last obs
    discounts = gamma * (1.0 - terminated)
    returns = policy_gradient.discounted_returns(s["rewards"], terminated, ended, gamma, next_values).numpy()
    close(returns, reference.lambda_returns(s["rewards"], discounts, next_values, 1.0 - cut))
    advantages = policy_gradient.generalized_advantages(s["rewards"], terminated, ended, values, next_values, gamma,
                                                        s["lam"]).numpy()
    close(advantages + values, reference.lambda_returns(s["rewards"], discounts, next_values, s["lam"] * (1.0 - cut)))


def test_no_gradient_flows_into_the_returns():
    rewards, discounts = tf.constant([[1.0], [2.0]], tf.float64), tf.constant([[0.9], [0.9]], tf.float64)
    next_q = tf.Variable([[[1.0, 2.0]], [[3.0, 4.0]]], dtype=tf.float64)
    with tf.GradientTape(persistent=True) as tape:
        outputs = [multistep.peng_q_lambda_returns(rewards, discounts, next_q, 0.5),
                   multistep.retrace_returns(rewards, discounts, next_q, [[0], [1]], tf.fill([2, 1, 2], 0.5),
                                             tf.fill([2, 1, 2], 0.5), 1.0),
                   bellman.munchausen_target([1.0], [0.0], 0.9, next_q[0], [0], next_q[1], 0.03, 0.9, -1.0)]
    for output in outputs:
        assert tape.gradient(output, next_q) is None


def test_bad_ranks_are_one_line_errors():
    with pytest.raises(ValueError, match="rewards must have rank 2"):
        multistep.lambda_returns([1.0, 2.0], [[0.9]], [[1.0]], 0.5)
    with pytest.raises(ValueError, match="reward must have rank 1"):
        bellman.sarsa_target([[1.0]], [0.0], 0.9, [[1.0]], [0])


def test_quantile_huber_loss_by_hand():
    loss = losses.quantile_huber_loss([[0.0]], [0.25], [[2.0, -2.0]], kappa=1.0).numpy()
    assert loss == pytest.approx([0.75], abs=1e-15)
    # κ = 0, the plain quantile loss: (0.25 · 2 + 0.75 · 2) / 2 = 1.
    assert losses.quantile_huber_loss([[0.0]], [0.25], [[2.0, -2.0]], kappa=0.0).numpy() == pytest.approx([1.0])


@pytest.mark.parametrize("mode", MODES)
@PROPERTY
@given(data=st.data())
def test_quantile_huber_loss_equals_its_reference(mode, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31)))
    batch, n, n_target = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    quantiles, targets = rng.normal(scale=3, size=(batch, n)), rng.normal(scale=3, size=(batch, n_target))
    taus = (2 * np.arange(n) + 1) / (2 * n) if data.draw(st.booleans()) else rng.random((batch, n))
    kappa = data.draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))
    close(run(losses.quantile_huber_loss, mode, quantiles, taus, targets, kappa=kappa) if kappa else
          losses.quantile_huber_loss(quantiles, taus, targets, kappa=0.0).numpy(),
          reference.quantile_huber_loss(quantiles, taus, targets, kappa))


def test_munchausen_dqn_target_is_the_operator_on_the_target_network(capsys):
    from cli_helpers import assert_usage_error, cli
    from rawdqn.algorithms import dqn
    from rawdqn.config import DQNConfig
    from rawdqn.network import QNetwork
    from rawdqn.replay import Transition
    config = DQNConfig(munchausen=True, munchausen_temperature=0.5, discount=0.9)
    network = QNetwork(3, 2, (4,), seed=1, dtype=tf.float64)
    online, target_params = network.theta.read_value(), network.theta.read_value() * 0.5
    rng = np.random.default_rng(0)
    batch = Transition(tf.constant(rng.normal(size=(5, 3))), tf.constant([0, 1, 1, 0, 1]), tf.constant(rng.normal(size=5)),
                       tf.constant(rng.normal(size=(5, 3))), tf.constant([0.0, 1.0, 0.0, 0.0, 1.0]))
    y = dqn.target(config, network, online, target_params, batch).numpy()
    expected = reference.munchausen_target(
        batch.reward.numpy(), batch.terminated.numpy(), 0.9, network.apply(target_params, batch.obs).numpy(),
        batch.action.numpy(), network.apply(target_params, batch.next_obs).numpy(), 0.5, 0.9, -1.0)
    close(y, expected)
    assert cli(capsys, "train", "--munchausen", "--steps", 400, "--learning-starts", 100, "--hidden", 8,
               "--eval-interval", 0, "--no-keep-best", "--eval-episodes", 1)[0] == 0
    assert_usage_error(cli(capsys, "train", "--munchausen", "--double-q", "--steps", 100),
                       "--munchausen has its own target")
    assert_usage_error(cli(capsys, "train", "--algo", "a2c", "--munchausen", "--steps", 100),
                       "--munchausen is a DQN option")


def test_qr_dqn_target_and_loss_against_the_references(capsys):
    """QR-DQN's update: T_j = r + γ(1 − terminated) θ_j(s', a*) with a* the greedy action of the
    quantiles' mean under θ⁻, and the quantile Huber loss of θ(s, a) at τ_i = (2i + 1)/2N."""
    from cli_helpers import assert_usage_error, cli
    from rawdqn.algorithms import dqn
    from rawdqn.config import DQNConfig
    from rawdqn.network import QNetwork
    from rawdqn.replay import Transition
    # By hand: r = 1, γ = 0.5, θ(s', a*) = [2, 4] → T = [2, 3]; terminated → T = [1, 1].
    np.testing.assert_allclose(bellman.quantile_target([1.0, 1.0], [0.0, 1.0], 0.5, [[2.0, 4.0], [2.0, 4.0]]).numpy(),
                               [[2.0, 3.0], [1.0, 1.0]])
    config = DQNConfig(quantile_regression=True, atoms=4, discount=0.9)
    network = QNetwork(3, 2, (6,), seed=2, dtype=tf.float64, atoms=4, quantile=True)
    online, target_params = network.theta.read_value(), network.theta.read_value() * 0.7
    rng = np.random.default_rng(1)
    batch = Transition(tf.constant(rng.normal(size=(5, 3))), tf.constant([0, 1, 1, 0, 1]), tf.constant(rng.normal(size=5)),
                       tf.constant(rng.normal(size=(5, 3))), tf.constant([0.0, 1.0, 0.0, 0.0, 0.0], tf.float64))
    y = dqn.target(config, network, online, target_params, batch)
    next_quantiles = network.apply_logits(target_params, batch.next_obs).numpy()
    best = next_quantiles.mean(-1).argmax(-1)
    expected = batch.reward.numpy()[:, None] + 0.9 * (1 - batch.terminated.numpy())[:, None] * \
        next_quantiles[np.arange(5), best]
    close(y.numpy(), expected)
    loss, _, _, per_sample = dqn.loss(config, network, online, batch, y)
    quantiles = network.apply_logits(online, batch.obs).numpy()[np.arange(5), batch.action.numpy()]
    reference_loss = reference.quantile_huber_loss(quantiles, (2 * np.arange(4) + 1) / 8, expected, 1.0)
    close(per_sample.numpy(), reference_loss)
    close(loss.numpy(), reference_loss.mean())
    assert cli(capsys, "train", "--quantile-regression", "--atoms", 8, "--dueling", "--double-q", "--n-step", 3,
               "--prioritized", "--steps", 400, "--learning-starts", 100, "--hidden", 8, "--eval-interval", 0,
               "--no-keep-best", "--eval-episodes", 1)[0] == 0
    assert_usage_error(cli(capsys, "train", "--quantile-regression", "--distributional", "--steps", 100),
                       "--distributional and --quantile-regression each replace DQN's target and loss: choose one")
