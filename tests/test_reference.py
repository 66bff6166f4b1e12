"""Tests for rawdqn/reference.py: tiny arrays whose answers are derived by hand in a
comment, plus finite-difference checks of the hand-written gradients."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rawdqn import reference

SMALL_FLOATS = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


def test_module_imports_no_tensorflow():
    # Load the file directly (the package __init__ imports TensorFlow on purpose).
    path = Path(reference.__file__)
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('reference_alone', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert 'tensorflow' not in sys.modules, 'reference.py imported tensorflow'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------- targets


def test_q_learning_target_by_hand():
    reward = [1.0, 2.0]
    terminated = [0.0, 1.0]
    next_q = [[1.0, 3.0], [5.0, 4.0]]
    # row 0: 1 + 0.5 * max(1, 3) = 2.5;  row 1 terminated: 2.
    target = reference.q_learning_target(reward, terminated, 0.5, next_q)
    np.testing.assert_allclose(target, [2.5, 2.0], rtol=0, atol=1e-15)


def test_q_learning_target_per_row_discount_and_bool_terminated():
    # row 0: 1 + 0.5 * 3 = 2.5;  row 1: 2 + 0.25 * 5 = 3.25.
    target = reference.q_learning_target([1.0, 2.0], [False, False], [0.5, 0.25], [[1.0, 3.0], [5.0, 4.0]])
    np.testing.assert_allclose(target, [2.5, 3.25], rtol=0, atol=1e-15)


def test_q_learning_target_legal_mask():
    next_q = [[1.0, 3.0], [5.0, 4.0], [9.0, 9.0]]
    mask = [[True, False], [False, True], [False, False]]
    # row 0 only action 0 legal: 1 + 0.5 * 1 = 1.5;  row 1 only action 1: 0 + 0.5 * 4 = 2;
    # row 2 has no legal action, so its max term is 0: target = reward = -1 (no -inf, no nan).
    target = reference.q_learning_target([1.0, 0.0, -1.0], [0, 0, 0], 0.5, next_q, mask)
    np.testing.assert_allclose(target, [1.5, 2.0, -1.0], rtol=0, atol=1e-15)


def test_q_learning_target_terminated_row_without_legal_actions_is_finite():
    # 0 * (-inf) would be nan; the reference must give exactly the reward.
    target = reference.q_learning_target([3.0], [1.0], 1.0, [[1.0, 2.0]], [[False, False]])
    np.testing.assert_array_equal(target, [3.0])


def test_double_q_learning_target_by_hand():
    online = [[1.0, 3.0], [2.0, 2.0]]
    target_net = [[10.0, 20.0], [30.0, 40.0]]
    # row 0: online picks action 1 -> 1 + 0.5 * 20 = 11;
    # row 1: tie, first max is action 0 -> 0 + 0.5 * 30 = 15 (not 40: the target net does not choose).
    target = reference.double_q_learning_target([1.0, 0.0], [0, 0], 0.5, online, target_net)
    np.testing.assert_allclose(target, [11.0, 15.0], rtol=0, atol=1e-15)


def test_double_q_learning_target_legal_mask_and_terminated():
    online = [[1.0, 3.0], [2.0, 5.0], [4.0, 4.0]]
    target_net = [[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]
    mask = [[True, False], [True, True], [False, False]]
    # row 0: only action 0 legal -> 1 + 0.5 * 10 = 6;  row 1 terminated -> 2;
    # row 2: no legal action -> reward 7.
    target = reference.double_q_learning_target([1.0, 2.0, 7.0], [0, 1, 0], 0.5, online, target_net, mask)
    np.testing.assert_allclose(target, [6.0, 2.0, 7.0], rtol=0, atol=1e-15)


def test_double_equals_plain_q_learning_when_both_networks_agree():
    # Independent identity: with next_q_online == next_q_target, argmax then lookup is the max.
    rng = np.random.default_rng(0)
    next_q = rng.normal(size=(5, 3))
    reward, terminated = rng.normal(size=5), np.array([0, 1, 0, 0, 1])
    np.testing.assert_allclose(
        reference.double_q_learning_target(reward, terminated, 0.9, next_q, next_q),
        reference.q_learning_target(reward, terminated, 0.9, next_q),
        rtol=0, atol=1e-15,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (([1.0], [0.0], 0.5, [1.0, 2.0]), "next_q must have rank 2"),
        (([[1.0]], [0.0], 0.5, [[1.0]]), "reward must have rank 1"),
        (([1.0, 2.0], [0.0], 0.5, [[1.0], [2.0]]), "batch sizes differ"),
        (([1.0], [0.5], 0.5, [[1.0]]), "terminated must hold only 0 or 1"),
        (([1.0], [0.0], 1.5, [[1.0]]), r"discount must be in \[0, 1\]"),
        (([1.0], [0.0], [0.5, 0.5], [[1.0]]), "discount must be a scalar or shape"),
        (([1.0], [0.0], 0.5, [[1.0]], [[True, False]]), "next_legal_mask must have shape"),
    ],
)
def test_q_learning_target_rejects_bad_inputs(args, message):
    with pytest.raises(ValueError, match=message):
        reference.q_learning_target(*args)


# -------------------------------------------------------------------- losses


def test_td_error_by_hand():
    q_values = [[1.0, 2.0], [3.0, 4.0]]
    # row 0 takes action 1: 5 - 2 = 3;  row 1 takes action 0: 0 - 3 = -3.
    np.testing.assert_array_equal(reference.td_error(q_values, [1, 0], [5.0, 0.0]), [3.0, -3.0])


@pytest.mark.parametrize(
    "actions, message",
    [([2, 0], r"actions must be in \[0, 2\)"), ([0], "actions must have shape"), ([0.0, 1.0], "integers")],
)
def test_td_error_rejects_bad_actions(actions, message):
    with pytest.raises(ValueError, match=message):
        reference.td_error([[1.0, 2.0], [3.0, 4.0]], actions, [0.0, 0.0])


def test_squared_loss_and_grad_by_hand():
    q_values = np.array([[1.0, 2.0], [3.0, 4.0]])
    actions, target = np.array([1, 0]), np.array([5.0, 0.0])
    # td_error = [3, -3];  loss = mean(0.5 * 9, 0.5 * 9) = 4.5.
    assert reference.squared_loss([3.0, -3.0]) == 4.5
    # dL/dQ[i, a_i] = -td_error_i / B = [-1.5, +1.5], zero at the actions not taken.
    grad = reference.squared_loss_grad(q_values, actions, target)
    np.testing.assert_allclose(grad, [[0.0, -1.5], [1.5, 0.0]], rtol=0, atol=1e-15)


def test_huber_loss_by_hand():
    # delta 1: |0.5| <= 1 -> 0.5 * 0.25 = 0.125;  |-3| > 1 -> 1 * (3 - 0.5) = 2.5;  mean = 1.3125.
    assert reference.huber_loss([0.5, -3.0], delta=1.0) == pytest.approx(1.3125, abs=1e-15)
    # At |td_error| == delta both branches agree: 0.5 * 2**2 = 2 * (2 - 1) = 2.
    assert reference.huber_loss([2.0], delta=2.0) == pytest.approx(2.0, abs=1e-15)
    # Past the kink the slope is delta: h(5) with delta 2 = 2 * (5 - 1) = 8.
    assert reference.huber_loss([5.0], delta=2.0) == pytest.approx(8.0, abs=1e-15)


def test_huber_loss_grad_by_hand():
    q_values = np.array([[1.0, 2.0], [3.0, 4.0]])
    # td_error = target - Q[i, a_i] = [2.5 - 2, 0 - 3] = [0.5, -3];
    # grad = -clip(td_error, -1, 1) / 2 = [-0.25, +0.5] at the actions taken.
    grad = reference.huber_loss_grad(q_values, [1, 0], [2.5, 0.0], delta=1.0)
    np.testing.assert_allclose(grad, [[0.0, -0.25], [0.5, 0.0]], rtol=0, atol=1e-15)


def test_huber_rejects_non_positive_delta():
    with pytest.raises(ValueError, match="delta must be > 0"):
        reference.huber_loss([1.0], delta=0.0)


def _finite_difference_grad(loss_of_q, q_values, step=1e-6):
    """Central differences dL/dQ[i, a] = (L(Q + h e_ia) - L(Q - h e_ia)) / 2h."""
    grad = np.zeros_like(q_values)
    for index in np.ndindex(q_values.shape):
        bump = np.zeros_like(q_values)
        bump[index] = step
        grad[index] = (loss_of_q(q_values + bump) - loss_of_q(q_values - bump)) / (2 * step)
    return grad


@settings(max_examples=40, deadline=None)
@given(
    q_values=hnp.arrays(np.float64, (3, 2), elements=SMALL_FLOATS),
    target=hnp.arrays(np.float64, (3,), elements=SMALL_FLOATS),
    actions=hnp.arrays(np.int64, (3,), elements=st.integers(0, 1)),
)
def test_loss_grads_match_finite_differences(q_values, target, actions):
    def squared(q):
        return reference.squared_loss(reference.td_error(q, actions, target))

    def huber(q):
        return reference.huber_loss(reference.td_error(q, actions, target), delta=1.0)

    np.testing.assert_allclose(
        reference.squared_loss_grad(q_values, actions, target),
        _finite_difference_grad(squared, q_values), rtol=0, atol=1e-6,
    )
    # Skip the Huber kink, where the derivative is one-sided.
    error = reference.td_error(q_values, actions, target)
    if np.all(np.abs(np.abs(error) - 1.0) > 1e-4):
        np.testing.assert_allclose(
            reference.huber_loss_grad(q_values, actions, target, delta=1.0),
            _finite_difference_grad(huber, q_values), rtol=0, atol=1e-6,
        )


@settings(max_examples=40, deadline=None)
@given(td_error=hnp.arrays(np.float64, (4,), elements=SMALL_FLOATS))
def test_huber_is_squared_loss_inside_delta_and_below_it_outside(td_error):
    # Independent facts: h(x) = x**2 / 2 when delta >= |x|; h(x) <= x**2 / 2 always.
    assert reference.huber_loss(td_error, delta=11.0) == pytest.approx(reference.squared_loss(td_error), abs=1e-12)
    assert reference.huber_loss(td_error, delta=1.0) <= reference.squared_loss(td_error) + 1e-12


# -------------------------------------------------------------- gradient clip


def test_global_norm_three_four_five():
    # sqrt(3**2 + 4**2) = 5, across two arrays.
    assert reference.global_norm([np.array([3.0]), np.array([[4.0]])]) == 5.0


def test_clip_by_global_norm_by_hand():
    grads = [np.array([3.0]), np.array([4.0])]
    # norm 5 > 2.5 -> scale 0.5: [1.5], [2].
    clipped, norm = reference.clip_by_global_norm(grads, 2.5)
    assert norm == 5.0
    np.testing.assert_allclose(np.concatenate(clipped), [1.5, 2.0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(np.concatenate(grads), [3.0, 4.0])  # input untouched


@pytest.mark.parametrize("max_norm", [5.0, 10.0])
def test_clip_by_global_norm_at_or_below_the_clip_is_unchanged(max_norm):
    # scale = max_norm / max(5, max_norm) = 1 exactly.
    clipped, norm = reference.clip_by_global_norm([np.array([3.0, 4.0])], max_norm)
    assert norm == 5.0
    np.testing.assert_array_equal(clipped[0], [3.0, 4.0])


def test_clip_by_global_norm_zero_gradients_stay_zero():
    clipped, norm = reference.clip_by_global_norm([np.zeros(3), np.zeros((2, 2))], 1.0)
    assert norm == 0.0
    assert all(np.array_equal(g, np.zeros_like(g)) for g in clipped)  # no nan from 0/0


def test_clip_rejects_non_positive_max_norm():
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        reference.clip_by_global_norm([np.ones(2)], 0.0)


# ---------------------------------------------------------------- optimizers


def test_sgd_step_by_hand():
    # theta = 1 - 0.1 * 0.5 = 0.95.
    params, state = reference.sgd_step([np.array([1.0])], [np.array([0.5])], None, learning_rate=0.1)
    np.testing.assert_allclose(params[0], [0.95], rtol=0, atol=1e-15)


def test_sgd_momentum_two_steps_by_hand():
    params, grads = [np.array([1.0])], [np.array([0.5])]
    # step 1: v = 0.5, theta = 1 - 0.1 * 0.5 = 0.95;
    # step 2: v = 0.9 * 0.5 + 0.5 = 0.95, theta = 0.95 - 0.1 * 0.95 = 0.855.
    params, state = reference.sgd_step(params, grads, None, learning_rate=0.1, momentum=0.9)
    params, state = reference.sgd_step(params, grads, state, learning_rate=0.1, momentum=0.9)
    np.testing.assert_allclose(params[0], [0.855], rtol=0, atol=1e-15)
    np.testing.assert_allclose(state["velocity"][0], [0.95], rtol=0, atol=1e-15)


def test_adam_first_step_is_learning_rate_times_sign():
    params = [np.array([1.0, -2.0])]
    grads = [np.array([0.5, -4.0])]
    # Step 1: m_hat = g, v_hat = g**2, so the update is lr * g / (|g| + eps) ~ lr * sign(g).
    new_params, state = reference.adam_step(params, grads, None, learning_rate=0.1)
    np.testing.assert_allclose(new_params[0], [0.9, -1.9], rtol=0, atol=1e-8)
    # With eps = 0 it is exact: 1 - 0.1 = 0.9.
    exact, _ = reference.adam_step(params, grads, None, learning_rate=0.1, epsilon=0.0)
    np.testing.assert_allclose(exact[0], [0.9, -1.9], rtol=0, atol=1e-15)
    # m = 0.1 * g, v = 0.001 * g**2, t = 1.
    assert state["step"] == 1
    np.testing.assert_allclose(state["m"][0], [0.05, -0.4], rtol=1e-14)
    np.testing.assert_allclose(state["v"][0], [0.00025, 0.016], rtol=1e-14)
    np.testing.assert_array_equal(params[0], [1.0, -2.0])  # input untouched


def test_adam_second_step_by_hand():
    params, state = reference.adam_step([np.array([1.0])], [np.array([0.5])], None, 0.1, epsilon=0.0)
    params, state = reference.adam_step(params, [np.array([-0.5])], state, 0.1, epsilon=0.0)
    # m = 0.9 * 0.05 + 0.1 * (-0.5) = -0.005;           m_hat = -0.005 / (1 - 0.81) = -1/38
    # v = 0.999 * 0.00025 + 0.001 * 0.25 = 0.00049975;  v_hat = 0.00049975 / 0.001999 = 0.25
    # theta = 0.9 - 0.1 * (-1/38) / 0.5 = 0.9 + 0.1/19.
    assert state["step"] == 2
    np.testing.assert_allclose(params[0], [0.9 + 0.1 / 19], rtol=0, atol=1e-14)


def test_rmsprop_first_step_by_hand():
    # s = 0.1 * 0.25 = 0.025;  g / sqrt(s) = 0.5 / sqrt(0.025) = sqrt(10);
    # theta = 1 - 0.1 * sqrt(10) (eps = 0).
    params, state = reference.rmsprop_step([np.array([1.0])], [np.array([0.5])], None, 0.1, epsilon=0.0)
    np.testing.assert_allclose(params[0], [1 - 0.1 * np.sqrt(10)], rtol=0, atol=1e-14)
    np.testing.assert_allclose(state["mean_square"][0], [0.025], rtol=1e-14)


def test_rmsprop_epsilon_outside_the_square_root():
    # g = 1e-7, rho = 0 -> s = g**2 = 1e-14, sqrt(s) = 1e-7;
    # update = lr * 1e-7 / (1e-7 + 1e-7) = lr / 2  (eps inside the sqrt would give ~3e-4 * lr).
    params, _ = reference.rmsprop_step([np.array([0.0])], [np.array([1e-7])], None, 1.0, rho=0.0, epsilon=1e-7)
    np.testing.assert_allclose(params[0], [-0.5], rtol=1e-12)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: reference.sgd_step([np.ones(2)], [np.ones(3)], None, 0.1), "has shape"),
        (lambda: reference.sgd_step([np.ones(2)], [], None, 0.1), "got 1 params but 0 grads"),
        (lambda: reference.sgd_step([np.ones(2)], [np.ones(2)], None, 0.0), "learning_rate must be > 0"),
        (lambda: reference.adam_step([np.ones(2)], [np.ones(2)], None, 0.1, beta1=1.0), "beta1"),
        (lambda: reference.adam_step([np.ones(2)], [np.ones(2)], {"m": [np.ones(2)]}, 0.1), "missing"),
        (lambda: reference.rmsprop_step([np.ones(2)], [np.ones(2)], None, 0.1, rho=-0.1), "rho"),
    ],
)
def test_optimizers_reject_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------- target sync


def test_polyak_update_by_hand():
    online, target = [np.array([1.0, 10.0])], [np.array([0.0, 20.0])]
    # 0.1 * [1, 10] + 0.9 * [0, 20] = [0.1, 19].
    np.testing.assert_allclose(reference.polyak_update(online, target, 0.1)[0], [0.1, 19.0], rtol=0, atol=1e-14)
    # tau 1 is a hard copy; tau 0 keeps the target.
    np.testing.assert_array_equal(reference.polyak_update(online, target, 1.0)[0], online[0])
    np.testing.assert_array_equal(reference.polyak_update(online, target, 0.0)[0], target[0])
    with pytest.raises(ValueError, match="tau"):
        reference.polyak_update(online, target, 1.5)


# ------------------------------------------------------------------- network


def test_mlp_q_values_by_hand():
    hidden = (np.array([[1.0, -1.0], [2.0, 0.0]]), np.array([0.0, -1.0]))
    output = (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, 0.0]))
    obs = np.array([[1.0, 1.0], [-1.0, 0.0]])
    # obs 0: pre = [1 + 2, -1 + 0] + [0, -1] = [3, -2] -> relu [3, 0] -> [3, 6] + [0.5, 0] = [3.5, 6].
    # obs 1: pre = [-1, 1] + [0, -1] = [-1, 0] -> relu [0, 0] -> output bias [0.5, 0].
    q_values = reference.mlp_q_values([hidden, output], obs)
    np.testing.assert_allclose(q_values, [[3.5, 6.0], [0.5, 0.0]], rtol=0, atol=1e-15)


def test_mlp_q_values_output_layer_is_linear():
    # One layer only: no ReLU, so negative Q-values survive: [1, 1] @ [[-1], [-2]] + [0] = -3.
    q_values = reference.mlp_q_values([(np.array([[-1.0], [-2.0]]), np.array([0.0]))], np.ones((1, 2)))
    np.testing.assert_array_equal(q_values, [[-3.0]])


def test_mlp_q_values_rejects_mismatched_layers():
    with pytest.raises(ValueError, match="do not fit"):
        reference.mlp_q_values([(np.ones((3, 2)), np.ones(2))], np.ones((1, 2)))
