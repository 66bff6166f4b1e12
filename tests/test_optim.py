import numpy as np
import pytest
import tensorflow as tf

from rawdqn import optim, reference


def test_clip_by_global_norm_3_4_5():
    # ‖[3, 4]‖ = 5; clip to 1 → [0.6, 0.8]; clip to 10 → unchanged.
    clipped, norm = optim.clip_by_global_norm([tf.constant([3.0]), tf.constant([4.0])], 1.0)
    np.testing.assert_allclose(norm.numpy(), 5.0)
    np.testing.assert_allclose([c.numpy()[0] for c in clipped], [0.6, 0.8], rtol=1e-6)
    unchanged, _ = optim.clip_by_global_norm([tf.constant([3.0, 4.0])], 10.0)
    np.testing.assert_array_equal(unchanged[0].numpy(), [3.0, 4.0])


def test_clip_exactly_at_the_norm_and_zero_gradients_are_unchanged():
    at_clip, _ = optim.clip_by_global_norm([tf.constant([3.0, 4.0], tf.float64)], 5.0)
    np.testing.assert_array_equal(at_clip[0].numpy(), [3.0, 4.0])
    zeros, norm = optim.clip_by_global_norm([tf.zeros(3)], 1.0)
    assert norm.numpy() == 0.0 and not np.any(np.isnan(zeros[0].numpy()))


def test_sgd_step_and_momentum():
    # θ = 1, g = 0.5, α = 0.1 → 0.95. With μ = 0.9: v = 0.5 → 0.95, then v = 0.95 → 0.855.
    theta = tf.Variable([1.0], dtype=tf.float64)
    optim.SGD(0.1).apply([tf.constant([0.5], tf.float64)], [theta])
    np.testing.assert_allclose(theta.numpy(), [0.95])
    theta.assign([1.0])
    sgd = optim.SGD(0.1, momentum=0.9)
    for _ in range(2):
        sgd.apply([tf.constant([0.5], tf.float64)], [theta])
    np.testing.assert_allclose(theta.numpy(), [0.855])


def test_adam_matches_kingma_ba_by_hand():
    # Step 1: m = 0.1g, v = 0.001g², m̂ = g, v̂ = g² → θ −= α·g/(|g| + ε) ≈ α·sign(g).
    # g = 0.5, α = 0.1, ε = 1e-8: θ = 1 − 0.1·0.5/(0.5 + 1e-8)
    theta = tf.Variable([1.0], dtype=tf.float64)
    adam = optim.Adam(0.1)
    adam.apply([tf.constant([0.5], tf.float64)], [theta])
    np.testing.assert_allclose(theta.numpy(), [1.0 - 0.1 * 0.5 / (0.5 + 1e-8)], rtol=1e-14)
    # Step 2 with g = −1: m = 0.9·0.05 − 0.1 = −0.055, v = 0.999·0.00025 + 0.001 = 0.00124975
    # m̂ = −0.055/0.19, v̂ = 0.00124975/0.001999
    m_hat, v_hat = -0.055 / (1 - 0.9 ** 2), 0.00124975 / (1 - 0.999 ** 2)
    expected = theta.numpy() - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)
    adam.apply([tf.constant([-1.0], tf.float64)], [theta])
    np.testing.assert_allclose(theta.numpy(), expected, rtol=1e-13)
    assert int(adam.step.numpy()) == 2


def test_rmsprop_first_step():
    # s = 0.1·g² = 0.025 for g = 0.5; θ = 1 − 0.01·0.5/(√0.025 + 1e-7)
    theta = tf.Variable([1.0], dtype=tf.float64)
    optim.RMSProp(0.01).apply([tf.constant([0.5], tf.float64)], [theta])
    np.testing.assert_allclose(theta.numpy(), [1.0 - 0.01 * 0.5 / (np.sqrt(0.025) + 1e-7)], rtol=1e-14)


def test_centered_rmsprop_first_step_with_the_nature_settings():
    # g = 0.5, ρ = 0.95: ḡ = 0.05·0.5 = 0.025, s = 0.05·0.25 = 0.0125, s − ḡ² = 0.011875;
    # + ε 0.01 = 0.021875, √ = 0.147901994577…;  θ = 1 − 0.1·0.5/0.147901994577 = 0.661938298108…
    theta = tf.Variable([1.0], dtype=tf.float64)
    optim.make_optimizer("rmsprop_centered", 0.1).apply([tf.constant([0.5], tf.float64)], [theta])
    np.testing.assert_allclose(theta.numpy(), [0.6619382981085933], rtol=1e-14)


def test_centered_rmsprop_divides_by_the_spread_not_the_size_of_the_gradient():
    # A constant gradient g has no variance: after many steps s − ḡ² → 0 and the step → α g/√ε,
    # where uncentred RMSProp's tends to α g/|g| = α.
    theta = tf.Variable([0.0], dtype=tf.float64)
    centered = optim.CenteredRMSProp(1e-3, rho=0.5, epsilon=1e-4)
    for _ in range(200):
        before = theta.numpy()[0]
        centered.apply([tf.constant([2.0], tf.float64)], [theta])
    np.testing.assert_allclose(before - theta.numpy()[0], 1e-3 * 2.0 / np.sqrt(1e-4), rtol=1e-9)


def test_optimizer_runs_under_xla_after_build():
    theta = tf.Variable([1.0, 2.0])
    adam = optim.Adam(0.1)
    adam.build([theta])

    @tf.function(jit_compile=True)
    def step(grad):
        adam.apply([grad], [theta])

    step(tf.constant([1.0, -1.0]))
    np.testing.assert_allclose(theta.numpy(), [0.9, 2.1], rtol=1e-6)


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="learning_rate"):
        optim.Adam(0.0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        optim.make_optimizer("lbfgs", 0.1)


def test_torch_centered_rmsprop_first_step_by_hand():
    # As above, s − ḡ² = 0.011875, √ = 0.108972473588…; + ε 0.01 = 0.118972473588…;
    # θ = 1 − 0.1·0.5/0.118972473588 = 0.579734719369…  (torch.optim.RMSprop(centered=True) gives it)
    theta = tf.Variable([1.0], dtype=tf.float64)
    optim.make_optimizer("rmsprop_centered_torch", 0.1, rho=0.95, epsilon=0.01).apply(
        [tf.constant([0.5], tf.float64)], [theta])
    np.testing.assert_allclose(theta.numpy(), [1.0 - 0.05 / (np.sqrt(0.011875) + 0.01)], rtol=1e-14)
    np.testing.assert_allclose(theta.numpy(), [0.5797347194], rtol=1e-9)


def test_torch_centered_rmsprop_steps_alpha_g_over_epsilon_on_a_constant_gradient():
    # The variance → 0, so the step → α g/ε: ε outside the root (DeepMind's form gives α g/√ε).
    theta = tf.Variable([0.0], dtype=tf.float64)
    optimizer = optim.TorchCenteredRMSProp(1e-3, rho=0.5, epsilon=1e-4)
    for _ in range(200):
        before = theta.numpy()[0]
        optimizer.apply([tf.constant([2.0], tf.float64)], [theta])
    np.testing.assert_allclose(before - theta.numpy()[0], 1e-3 * 2.0 / 1e-4, rtol=1e-9)


def test_radam_steps_like_momentum_until_the_variance_is_tractable_then_rectifies():
    """Liu et al. (2020), Algorithm 2: with β₂ = 0.999, ρ_∞ = 1999 and ρ_t = ρ_∞ − 2tβ₂ᵗ/(1 − β₂ᵗ)
    is 1, 1.999, … below 5 for t ≤ 5 (θ ← θ − α m̂) and ≈ 5.99 at t = 6, where the step is
    α r_6 m̂/(√v̂ + ε). Then 12 steps against reference.radam_step, eager and XLA."""
    theta = tf.Variable([1.0], dtype=tf.float64)
    radam = optim.RAdam(0.1)
    radam.apply([tf.constant([0.5], tf.float64)], [theta])   # m̂ = g at t = 1
    np.testing.assert_allclose(theta.numpy(), [1.0 - 0.1 * 0.5], rtol=1e-15)
    rho = [1999 - 2 * t * 0.999 ** t / (1 - 0.999 ** t) for t in range(1, 7)]
    assert max(rho[:5]) < 5 <= rho[5]
    for t in range(2, 6):
        radam.apply([tf.constant([0.5], tf.float64)], [theta])
    # A constant g: m̂ = g, v̂ = g², so step 6 moves θ by α r_6 g/(|g| + ε).
    r = np.sqrt((rho[5] - 4) * (rho[5] - 2) * 1999 / (1995 * 1997 * rho[5]))
    expected = theta.numpy() - 0.1 * r * 0.5 / (0.5 + 1e-8)
    radam.apply([tf.constant([0.5], tf.float64)], [theta])
    np.testing.assert_allclose(theta.numpy(), expected, rtol=1e-13)
    rng = np.random.default_rng(0)
    for compile_ in (False, True):
        for beta2 in (0.999, 0.7):   # 0.7: ρ_∞ ≈ 5.67, tractable from t = 10
            variables = [tf.Variable(rng.normal(size=(3, 2))), tf.Variable(rng.normal(size=2))]
            radam = optim.RAdam(0.05, beta2=beta2)
            radam.build(variables)
            step = tf.function(radam.apply, jit_compile=True) if compile_ else radam.apply
            expected, state = [variable.numpy() for variable in variables], None
            for _ in range(12):
                grads = [rng.normal(size=(3, 2)), rng.normal(size=2)]
                step([tf.constant(g) for g in grads], variables)
                expected, state = reference.radam_step(expected, grads, state, 0.05, beta2=beta2)
            for variable, value in zip(variables, expected):
                np.testing.assert_allclose(variable.numpy(), value, rtol=1e-12, atol=1e-12)
