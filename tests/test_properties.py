"""Property tests: every TF kernel equals its NumPy float64 reference (rawdqn/reference.py).

For random shapes, values, discounts, terminal flags, actions and masks, each kernel runs
eagerly and under tf.function(jit_compile=True), in float32 and float64, and must agree with
the reference to

    float64: 1e-12 relative        float32: 1e-5 relative.

The reference always runs in float64 on exactly the inputs the kernel saw: float32 inputs
(and hyperparameters such as the learning rate, which the kernels turn into float32
constants) are rounded to float32 first. So the comparison measures only the kernel's own
arithmetic, never the rounding of its inputs.

Where a result is a sum of terms much larger than itself (r + γ max Q near 0, a matmul whose
products cancel, θ − α·update near 0), relative error is meaningless: the rounding error is
relative to the terms, not to the result. There the absolute tolerance is rtol × scale, with
scale the same computation on absolute values (the classic error bound), said at each use.

Compiled kernels are built once per dtype (and per optimizer / buffer / network) and reused
across examples; XLA still compiles once per input shape, so shapes stay small
(batch 1…3 × actions 1…3).
"""
import functools

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rawdqn import bellman, losses, optim, reference
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig
from rawdqn.network import QNetwork
from rawdqn.replay import ReplayBuffer

DTYPES = ("float64", "float32")
MODES = ("eager", "xla")
RTOL = {"float64": 1e-12, "float32": 1e-5}

PROPERTY = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

dtype_and_mode = pytest.mark.parametrize(
    "dtype, mode", [(d, m) for d in DTYPES for m in MODES])


def rounded(value, dtype):
    """`value` as the kernel will see it: a NumPy array (or float) of `dtype`."""
    return np.asarray(value, dtype=np.float64).astype(dtype)


def hyper(value, dtype):
    """A hyperparameter as the kernel sees it: a Python float rounded to `dtype`."""
    return float(np.asarray(value, dtype))


def assert_matches(actual, expected, dtype, scale=0.0):
    """|actual − expected| ≤ rtol·|expected| + rtol·scale (scale: see the module docstring)."""
    rtol = RTOL[dtype]
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != reference {expected.shape}"
    error = np.abs(actual - expected)
    allowed = rtol * (np.abs(expected) + np.abs(np.asarray(scale, np.float64)))
    worst = np.unravel_index(np.argmax(error - allowed), error.shape) if error.ndim else ()
    assert np.all(error <= allowed), (
        f"{dtype}: kernel {actual[worst]!r} vs reference {expected[worst]!r} at {worst}: "
        f"error {error[worst]:.3g} > allowed {allowed[worst] if np.ndim(allowed) else allowed:.3g}"
        f"\nkernel:    {actual}\nreference: {expected}")


@functools.cache
def xla(program, signature):
    """`program` compiled with XLA, traced once for `signature` (ranks fixed, sizes free)."""
    return tf.function(program, jit_compile=True, input_signature=list(signature))


def run(program, mode, signature, *args):
    if mode == "eager":
        return program(*args)
    return xla(program, signature)(*args)


def spec(shape, dtype):
    return tf.TensorSpec(shape, tf.as_dtype(dtype))


# ----------------------------------------------------------------- strategies

sizes = st.integers(1, 3)


def reals(bound):
    """0, or a magnitude in [1e-6, bound] of either sign.

    TensorFlow on CPU flushes subnormal numbers to zero (for speed), NumPy does not; tiny
    magnitudes whose products would go subnormal are excluded as a platform difference,
    not a kernel property (no Q-value or gradient in RL lives at 1e-38).
    """
    return st.one_of(st.just(0.0), st.floats(1e-6, bound), st.floats(-bound, -1e-6))


# Small integers make ties (argmax must take the first maximum) and exact cancellations.
q_values_elements = st.one_of(reals(100.0), st.integers(-3, 3).map(float))
discounts = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(1e-6, 1))


def float_arrays(shape, elements=q_values_elements):
    return arrays(np.float64, shape, elements=elements)


@st.composite
def legal_masks(draw, batch, num_actions):
    """None (all legal), any mask (rows with no legal action too), or exactly one legal action."""
    kind = draw(st.sampled_from(["none", "any", "single"]))
    if kind == "none":
        return None
    if kind == "any":
        return draw(arrays(np.bool_, (batch, num_actions)))
    legal = draw(arrays(np.int64, batch, elements=st.integers(0, num_actions - 1)))
    return np.eye(num_actions, dtype=bool)[legal]


@st.composite
def target_batches(draw):
    batch, num_actions = draw(sizes), draw(sizes)
    return dict(
        reward=draw(float_arrays(batch)),
        terminated=draw(arrays(np.float64, batch, elements=st.sampled_from([0.0, 1.0]))),
        discount=draw(st.one_of(discounts, arrays(np.float64, batch, elements=discounts))),
        next_q_online=draw(float_arrays((batch, num_actions))),
        next_q_target=draw(float_arrays((batch, num_actions))),
        next_legal_mask=draw(legal_masks(batch, num_actions)))


# -------------------------------------------------------------- Bellman targets

def targets_program(reward, terminated, discount, next_q_online, next_q_target, mask):
    return (bellman.q_learning_target(reward, terminated, discount, next_q_target, mask),
            bellman.double_q_learning_target(reward, terminated, discount,
                                             next_q_online, next_q_target, mask))


def targets_program_no_mask(reward, terminated, discount, next_q_online, next_q_target):
    return targets_program(reward, terminated, discount, next_q_online, next_q_target, None)


def check_targets(dtype, mode, reward, terminated, discount, next_q_online, next_q_target,
                  next_legal_mask):
    reward, terminated, discount = (rounded(x, dtype) for x in (reward, terminated, discount))
    next_q_online, next_q_target = rounded(next_q_online, dtype), rounded(next_q_target, dtype)
    signature = (spec([None], dtype), spec([None], dtype), spec(None, dtype),
                 spec([None, None], dtype), spec([None, None], dtype))
    args = (reward, terminated, discount, next_q_online, next_q_target)
    if next_legal_mask is None:
        q_target, double_target = run(targets_program_no_mask, mode, signature, *args)
    else:
        q_target, double_target = run(targets_program, mode,
                                      signature + (spec([None, None], "bool"),),
                                      *args, next_legal_mask)
    expected_q = reference.q_learning_target(reward, terminated, discount, next_q_target,
                                             next_legal_mask)
    expected_double = reference.double_q_learning_target(
        reward, terminated, discount, next_q_online, next_q_target, next_legal_mask)
    # r + γ·max Q can cancel to ~0; its rounding error is relative to |r| + |γ·max Q|.
    scale_q = reference.q_learning_target(np.abs(reward), terminated, discount,
                                          np.abs(next_q_target), next_legal_mask)
    scale_double = np.abs(reward) + discount * np.max(np.abs(next_q_target), axis=1)
    assert_matches(q_target, expected_q, dtype, scale_q)
    assert_matches(double_target, expected_double, dtype, scale_double)
    return q_target.numpy(), double_target.numpy()


@dtype_and_mode
@PROPERTY
@given(batch=target_batches())
def test_q_learning_and_double_q_targets_match_reference(dtype, mode, batch):
    check_targets(dtype, mode, **batch)


@dtype_and_mode
def test_targets_edge_cases(dtype, mode):
    next_q_online = np.array([[1.5, -2.0, 3.0], [4.0, 4.0, -1.0], [0.5, 7.0, 7.0]])
    next_q_target = np.array([[10.0, 20.0, -30.0], [-1.0, 2.0, 3.0], [5.0, -6.0, 9.0]])
    reward = np.array([1.0, -2.0, 0.25])
    # All-terminal batch: the target is the reward, whatever Q(s', ·) says.
    q_target, double_target = check_targets(dtype, mode, reward, np.ones(3), 0.9,
                                            next_q_online, next_q_target, None)
    np.testing.assert_array_equal(q_target, reward)
    np.testing.assert_array_equal(double_target, reward)
    # Discount 0: also just the reward. Discount 1: r + max (plain) / r + Q_target(argmax online),
    # online argmax (first max on ties) = [2, 0, 1] → Q_target = [−30, −1, −6].
    q_target, double_target = check_targets(dtype, mode, reward, np.zeros(3), 0.0,
                                            next_q_online, next_q_target, None)
    np.testing.assert_array_equal(q_target, reward)
    q_target, double_target = check_targets(dtype, mode, reward, np.zeros(3), 1.0,
                                            next_q_online, next_q_target, None)
    np.testing.assert_array_equal(q_target, [21.0, 1.0, 9.25])
    np.testing.assert_array_equal(double_target, [-29.0, -3.0, -5.75])
    # A single legal action per row (2, 0 and none): the max is that action's value, or 0.
    single = np.array([[False, False, True], [True, False, False], [False, False, False]])
    q_target, double_target = check_targets(dtype, mode, reward, np.zeros(3), 1.0,
                                            next_q_online, next_q_target, single)
    np.testing.assert_array_equal(q_target, [-29.0, -3.0, 0.25])
    np.testing.assert_array_equal(double_target, [-29.0, -3.0, 0.25])


# ----------------------------------------------------- TD error, losses, gradients

def losses_program(q_values, actions, target, delta):
    q_values = tf.convert_to_tensor(q_values)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(q_values)
        td_error = losses.td_error(q_values, actions, target)
        squared = losses.squared_loss(td_error)
        huber = losses.huber_loss(td_error, delta)
    return (td_error, squared, tape.gradient(squared, q_values),
            huber, tape.gradient(huber, q_values))


@st.composite
def loss_batches(draw):
    batch, num_actions = draw(sizes), draw(sizes)
    return dict(q_values=draw(float_arrays((batch, num_actions))),
                actions=draw(arrays(np.int32, batch, elements=st.integers(0, num_actions - 1))),
                target=draw(float_arrays(batch)),
                delta=draw(st.one_of(st.just(1.0), st.floats(0.01, 50))))


def check_losses(dtype, mode, q_values, actions, target, delta):
    q_values, target, delta = rounded(q_values, dtype), rounded(target, dtype), hyper(delta, dtype)
    signature = (spec([None, None], dtype), spec([None], "int32"), spec([None], dtype),
                 spec([], dtype))
    td_error, squared, squared_grad, huber, huber_grad = run(
        losses_program, mode, signature, q_values, actions, target, rounded(delta, dtype))
    # The inputs are exact in `dtype`, so δ = y − Q(s, a) is one correctly rounded
    # subtraction: relative tolerance holds even when y and Q(s, a) nearly cancel.
    expected_td = reference.td_error(q_values, actions, target)
    assert_matches(td_error, expected_td, dtype)
    assert_matches(squared, reference.squared_loss(expected_td), dtype)
    assert_matches(squared_grad, reference.squared_loss_grad(q_values, actions, target), dtype)
    assert_matches(huber, reference.huber_loss(expected_td, delta), dtype)
    # losses.huber_loss writes L = ½ min(|δ|, Δ)² + Δ (|δ| − min(|δ|, Δ)); backprop through it
    # forms Δ + (min − Δ), so the gradient's rounding error is relative to Δ, not to δ.
    # (See test_huber_gradient_is_relatively_exact_for_small_td_errors below.)
    assert_matches(huber_grad, reference.huber_loss_grad(q_values, actions, target, delta), dtype,
                   scale=delta)
    return huber_grad.numpy()


@dtype_and_mode
@PROPERTY
@given(batch=loss_batches())
def test_td_error_losses_and_their_gradients_match_reference(dtype, mode, batch):
    check_losses(dtype, mode, **batch)


@dtype_and_mode
def test_huber_gradient_at_and_around_delta(dtype, mode):
    # δ = y − Q(s, a) = [2, −2, 1.999, 3]; Δ = 2 → ∂L/∂Q(s, a) = −clip(δ, −2, 2)/4.
    q_values = np.array([[0.0, 1.0], [3.0, 0.0], [0.0, 0.0], [0.0, -3.0]])
    actions = np.array([0, 0, 1, 1], np.int32)
    target = np.array([2.0, 1.0, 1.999, 0.0])
    grad = check_losses(dtype, mode, q_values, actions, target, 2.0)
    np.testing.assert_allclose(grad, [[-0.5, 0.0], [0.5, 0.0], [0.0, -1.999 / 4], [0.0, -0.5]],
                               rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_huber_gradient_is_relatively_exact_for_small_td_errors(dtype):
    # For |δ| ≤ Δ the Huber gradient is the squared loss's, −δ/B: here −1e-6 (Δ = 1, B = 1).
    q_values = tf.constant([[0.0]], dtype)
    with tf.GradientTape() as tape:
        tape.watch(q_values)
        loss = losses.huber_loss(losses.td_error(q_values, [0], tf.constant([1e-6], dtype)))
    expected = reference.huber_loss_grad(np.zeros((1, 1)), [0], rounded([1e-6], dtype))
    assert_matches(tape.gradient(loss, q_values), expected, dtype)


# -------------------------------------------------------- clipping by global norm

def clip_program(kernel_grad, bias_grad, max_norm):
    (kernel_clipped, bias_clipped), norm = optim.clip_by_global_norm(
        [kernel_grad, bias_grad], max_norm)
    return kernel_clipped, bias_clipped, norm


def check_clip(dtype, mode, kernel_grad, bias_grad, max_norm):
    kernel_grad, bias_grad = rounded(kernel_grad, dtype), rounded(bias_grad, dtype)
    max_norm = hyper(max_norm, dtype)
    signature = (spec([None, None], dtype), spec([None], dtype), spec([], dtype))
    kernel_clipped, bias_clipped, norm = run(clip_program, mode, signature, kernel_grad,
                                             bias_grad, rounded(max_norm, dtype))
    (expected_kernel, expected_bias), expected_norm = reference.clip_by_global_norm(
        [kernel_grad, bias_grad], max_norm)
    assert_matches(norm, expected_norm, dtype)
    assert_matches(kernel_clipped, expected_kernel, dtype)
    assert_matches(bias_clipped, expected_bias, dtype)
    return kernel_clipped.numpy(), bias_clipped.numpy(), norm.numpy()


@st.composite
def gradients(draw):
    rows, columns = draw(sizes), draw(sizes)
    elements = reals(10.0)
    kernel_grad = draw(float_arrays((rows, columns), elements))
    bias_grad = draw(float_arrays(columns, elements))
    # max_norm relative to the true norm: both sides of the clip are drawn.
    ratio = draw(st.floats(0.1, 3.0))
    norm = reference.global_norm([kernel_grad, bias_grad])
    return dict(kernel_grad=kernel_grad, bias_grad=bias_grad,
                max_norm=ratio * norm if norm > 0 else ratio)


@dtype_and_mode
@PROPERTY
@given(grads=gradients())
def test_clip_by_global_norm_matches_reference(dtype, mode, grads):
    check_clip(dtype, mode, **grads)


@dtype_and_mode
@pytest.mark.parametrize("scale", [1.0, 2.0 ** -7, 2.0 ** 9])
def test_gradient_norm_exactly_at_the_clip_is_left_unchanged(dtype, mode, scale):
    # ‖[[2, 3]], [6, 0]‖ = √(4 + 9 + 36) = 7, exactly, at any power-of-two scale:
    # max_norm = ‖g‖ → scale c / max(‖g‖, c) = 1 exactly, so the gradients come back bit for bit.
    kernel_grad, bias_grad = np.array([[2.0, 3.0]]) * scale, np.array([6.0, 0.0]) * scale
    kernel_clipped, bias_clipped, norm = check_clip(dtype, mode, kernel_grad, bias_grad, 7.0 * scale)
    assert norm == 7.0 * scale
    np.testing.assert_array_equal(kernel_clipped, kernel_grad)
    np.testing.assert_array_equal(bias_clipped, bias_grad)


@dtype_and_mode
def test_zero_gradients_are_not_clipped_into_nan(dtype, mode):
    kernel_clipped, bias_clipped, norm = check_clip(dtype, mode, np.zeros((2, 2)), np.zeros(2), 1.0)
    assert norm == 0.0
    np.testing.assert_array_equal(kernel_clipped, 0.0)
    np.testing.assert_array_equal(bias_clipped, 0.0)


# ------------------------------------------------------------------- optimizers

# Two hyperparameter settings per optimizer: each setting is one compiled kernel.
OPTIMIZER_SETTINGS = {
    "sgd": (dict(learning_rate=0.1), dict(learning_rate=0.05, momentum=0.9)),
    "adam": (dict(learning_rate=1e-3), dict(learning_rate=0.1, beta1=0.5, beta2=0.9, epsilon=1e-6)),
    "radam": (dict(learning_rate=1e-3), dict(learning_rate=0.1, beta1=0.5, beta2=0.9, epsilon=1e-6)),
    "rmsprop": (dict(learning_rate=1e-2), dict(learning_rate=0.1, rho=0.5, epsilon=1e-5)),
    "rmsprop_centered": (dict(learning_rate=2.5e-4), dict(learning_rate=0.1, rho=0.5, epsilon=1e-5)),
    "rmsprop_centered_torch": (dict(learning_rate=2.5e-4, rho=0.95, epsilon=0.01),
                               dict(learning_rate=0.1, rho=0.5, epsilon=1e-5)),
}
REFERENCE_STEP = {"sgd": reference.sgd_step, "adam": reference.adam_step, "radam": reference.radam_step,
                  "rmsprop": reference.rmsprop_step, "rmsprop_centered": reference.rmsprop_centered_step,
                  "rmsprop_centered_torch": reference.rmsprop_centered_torch_step}
# Each optimizer's slots under the reference's names (SGD without momentum has none).
SLOT_NAMES = {"sgd": ("velocity",), "adam": ("m", "v"), "radam": ("m", "v"), "rmsprop": ("mean_square",),
              "rmsprop_centered": ("mean_grad", "mean_square"),
              "rmsprop_centered_torch": ("mean_grad", "mean_square")}
PARAM_SHAPES = ((3, 2), (2,))  # a kernel and a bias


@functools.cache
def optimizer_kernel(name, setting, dtype, mode):
    """(variables, optimizer, step function) built once and reset for each example."""
    variables = [tf.Variable(tf.zeros(shape, dtype)) for shape in PARAM_SHAPES]
    optimizer = optim.make_optimizer(name, **OPTIMIZER_SETTINGS[name][setting])
    optimizer.build(variables)

    def step(kernel_grad, bias_grad):
        optimizer.apply([kernel_grad, bias_grad], variables)

    if mode == "xla":
        step = tf.function(step, jit_compile=True,
                           input_signature=[spec(shape, dtype) for shape in PARAM_SHAPES])
    return variables, optimizer, step


@st.composite
def optimizer_runs(draw):
    elements = reals(5.0)
    steps = draw(st.integers(1, 5))
    return dict(
        setting=draw(st.integers(0, 1)),
        params=[draw(float_arrays(shape, elements)) for shape in PARAM_SHAPES],
        grads=[[draw(float_arrays(shape, elements)) for shape in PARAM_SHAPES]
               for _ in range(steps)])


@dtype_and_mode
@pytest.mark.parametrize("name", ["sgd", "adam", "radam", "rmsprop", "rmsprop_centered", "rmsprop_centered_torch"])
@PROPERTY
@given(run_=optimizer_runs())
def test_optimizer_steps_match_reference(dtype, mode, name, run_):
    variables, optimizer, step = optimizer_kernel(name, run_["setting"], dtype, mode)
    params = [rounded(p, dtype) for p in run_["params"]]
    for variable, value in zip(variables, params):
        variable.assign(value)
    for slot in optimizer.slots.values():
        for variable in slot:
            variable.assign(tf.zeros_like(variable))
    optimizer.step.assign(0)
    settings_ = {key: hyper(value, dtype)
                 for key, value in OPTIMIZER_SETTINGS[name][run_["setting"]].items()}
    expected, state = params, None
    for grads in run_["grads"]:
        grads = [rounded(g, dtype) for g in grads]
        step(*grads)
        expected, state = REFERENCE_STEP[name](expected, grads, state, **settings_)
        # θ − α·update can cancel to ~0: error relative to |θ| + |update| ≤ 2|θ_max| + bound,
        # with |θ| ≤ 5 and each SGD/Adam/RMSProp step moving θ by at most ~α·max(1, |g|)/(1 − μ).
        scale = 10.0 + 100.0 * settings_["learning_rate"] * len(run_["grads"])
        for variable, value in zip(variables, expected):
            assert_matches(variable.numpy(), value, dtype, scale)
    for slot_name in SLOT_NAMES[name]:
        if slot_name in optimizer.slots:
            for variable, value in zip(optimizer.slots[slot_name], state[slot_name]):
                # Moments are sums of non-negative or same-scale terms: bounded by ~max |g|².
                assert_matches(variable.numpy(), value, dtype, scale=25.0)
    if name == "adam":
        assert int(optimizer.step.numpy()) == state["step"]


# ------------------------------------------------------------------ target sync

@functools.cache
def sync_agent(dtype, mode):
    config = DQNConfig(hidden=(4,), dtype=dtype, mode=mode, batch_size=1, replay_capacity=1)
    return DQN(3, 2, config, seed=0)


@st.composite
def sync_cases(draw):
    shapes = [(3, 4), (4,), (4, 2), (2,)]
    return dict(
        online=[draw(float_arrays(shape)) for shape in shapes],
        target=[draw(float_arrays(shape)) for shape in shapes],
        tau=draw(st.one_of(st.just(1.0), st.floats(1e-6, 1))))


@dtype_and_mode
@PROPERTY
@given(case=sync_cases())
def test_sync_target_is_polyak_averaging(dtype, mode, case):
    agent = sync_agent(dtype, mode)
    online = [rounded(v, dtype) for v in case["online"]]
    target = [rounded(v, dtype) for v in case["target"]]
    for variable, value in zip(agent.online.layers_in_order, online):
        variable.assign(value)
    for variable, value in zip(agent.target.layers_in_order, target):
        variable.assign(value)
    tau = case["tau"]
    agent.sync_target(tau)
    expected = reference.polyak_update(online, target, hyper(tau, dtype))
    for variable, value, online_value, target_value in zip(
            agent.target.layers_in_order, expected, online, target):
        if tau == 1.0:
            np.testing.assert_array_equal(variable.numpy(), online_value)  # a bit-exact copy
        # τθ + (1 − τ)θ⁻ can cancel: error relative to |τθ| + |(1 − τ)θ⁻|.
        scale = np.abs(online_value) + np.abs(target_value)
        assert_matches(variable.numpy(), value, dtype, scale)
    # The online network is never touched by a sync.
    for variable, value in zip(agent.online.layers_in_order, online):
        np.testing.assert_array_equal(variable.numpy(), value)


# ---------------------------------------------------------------- replay ring

@functools.cache
def replay_buffer(capacity, dtype, mode):
    return ReplayBuffer(capacity, obs_shape=(2,), obs_dtype=dtype, reward_dtype=dtype,
                        num_actions=3, jit_compile=mode == "xla")


def ring_model(history, capacity):
    """Slot j holds the most recent transition whose position in the add order is ≡ j (mod capacity)."""
    slots = [None] * capacity
    for position, transition in enumerate(history):
        slots[position % capacity] = transition
    return slots


@st.composite
def add_sequences(draw):
    capacity = draw(st.sampled_from([1, 4]))  # each (capacity, batch size) is one XLA compile
    batches = []
    for _ in range(draw(st.integers(1, 6))):
        n = draw(st.integers(1, capacity))
        batches.append(dict(
            obs=draw(float_arrays((n, 2))),
            action=draw(arrays(np.int32, n, elements=st.integers(0, 2))),
            reward=draw(float_arrays(n)),
            next_obs=draw(float_arrays((n, 2))),
            terminated=draw(arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0]))),
            next_legal_mask=draw(arrays(np.bool_, (n, 3))),
            # None: every row is a transition; else only the valid rows are (a reset step is not)
            valid=draw(st.one_of(st.none(), arrays(np.bool_, n)))))
    return capacity, batches


@dtype_and_mode
@PROPERTY
@given(sequence=add_sequences())
def test_replay_ring_contents_match_a_numpy_ring(dtype, mode, sequence):
    capacity, batches = sequence
    replay = replay_buffer(capacity, dtype, mode)
    for variable in replay.variables:  # reset the shared buffer to a fresh one
        variable.assign(tf.ones_like(variable) if variable.dtype == tf.bool
                        else tf.zeros_like(variable))
    fields = ("obs", "action", "reward", "next_obs", "terminated", "next_legal_mask")
    history = []
    for batch in batches:
        batch = {key: rounded(value, dtype) if value is not None and value.dtype == np.float64 else value
                 for key, value in batch.items()}
        replay.add(**batch)
        valid = batch["valid"] if batch["valid"] is not None else np.ones(len(batch["action"]), bool)
        history.extend(transition for transition, keep in zip(zip(*(batch[field] for field in fields)), valid) if keep)
        slots = ring_model(history, capacity)
        assert replay.size == min(len(history), capacity)
        assert int(replay.cursor.numpy()) == len(history) % capacity
        filled = [slot for slot, transition in enumerate(slots) if transition is not None]
        for index, field in enumerate(fields if filled else ()):
            # Stored values are copies, not arithmetic: exact equality.
            np.testing.assert_array_equal(getattr(replay, field).numpy()[filled],
                                          np.stack([slots[slot][index] for slot in filled]))
    if not history:   # every row was a reset step: nothing stored
        assert replay.size == 0
        return
    # Every sampled transition is one of the stored ones.
    sample = replay.sample(4)
    stored_rewards = [transition[2] for transition in ring_model(history, capacity)
                      if transition is not None]
    assert set(sample.reward.numpy().tolist()) <= set(np.asarray(stored_rewards).tolist())


# ---------------------------------------------------------------- the Q-network

HIDDEN_CHOICES = ((), (4,), (3, 2))


@functools.cache
def q_network(hidden, use_bias, dtype, mode):
    network = QNetwork(3, 2, hidden, seed=0, dtype=dtype, use_bias=use_bias)
    forward = network.__call__
    if mode == "xla":
        forward = tf.function(forward, jit_compile=True,
                              input_signature=[spec([None, 3], dtype)])
    return network, forward


@st.composite
def forward_cases(draw):
    hidden = draw(st.sampled_from(HIDDEN_CHOICES))
    use_bias = draw(st.booleans())
    sizes_ = (3, *hidden, 2)
    elements = reals(2.0)
    layers = [(draw(float_arrays((fan_in, fan_out), elements)),
               draw(float_arrays(fan_out, elements)) if use_bias else np.zeros(fan_out))
              for fan_in, fan_out in zip(sizes_[:-1], sizes_[1:])]
    return dict(hidden=hidden, use_bias=use_bias, layers=layers,
                obs=draw(float_arrays((draw(sizes), 3), reals(10.0))))


@dtype_and_mode
@PROPERTY
@given(case=forward_cases())
def test_q_network_forward_matches_reference_mlp(dtype, mode, case):
    network, forward = q_network(case["hidden"], case["use_bias"], dtype, mode)
    layers = [(rounded(kernel, dtype), rounded(bias, dtype)) for kernel, bias in case["layers"]]
    for layer, (kernel, bias) in enumerate(layers):
        network.kernels[layer].assign(kernel)
        if case["use_bias"]:
            network.biases[layer].assign(bias)
    obs = rounded(case["obs"], dtype)
    expected = reference.mlp_q_values(layers, obs)
    # Products can cancel inside a matmul: error relative to the same net on |W|, |b|, |x|
    # (where ReLU is the identity, so it is Σ of the absolute terms, layer by layer).
    scale = reference.mlp_q_values([(np.abs(k), np.abs(b)) for k, b in layers], np.abs(obs))
    assert_matches(forward(obs), expected, dtype, scale)
