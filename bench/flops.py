"""Floating-point operations per kernel, counted from the shapes.

The convention: a multiply-add is 2 FLOPs, every other elementwise arithmetic
op is 1 FLOP per element (comparisons, selects, gathers, RNG draws and copies
count 0). For a dense layer in → out on a batch of B rows:

    forward    x W + b, relu      2·B·in·out + B·out (+ B·out for the relu of a hidden layer)
    backward   dW = xᵀ dy         2·B·in·out
               dx = dy Wᵀ         2·B·in·out   (not for the first layer: the input needs no gradient)
               db = Σ_batch dy    B·out        (+ B·out for the relu mask of a hidden layer)

Global-norm clipping is 3 FLOPs per parameter (square, sum, scale) and an Adam
update 14 (m: 3, v: 4, two bias corrections, sqrt, + ε, × α, ÷, −).
These are the operations the kernels execute; they are what GFLOP/s divides.
"""

ADAM_FLOPS_PER_PARAMETER = 14
CLIP_FLOPS_PER_PARAMETER = 3


def layer_sizes(obs_dim, hidden, num_actions):
    """(obs_dim, *hidden, num_actions): the width of every layer boundary."""
    return (int(obs_dim), *(int(h) for h in hidden), int(num_actions))


def num_parameters(sizes):
    """Kernels and biases: Σ in·out + out."""
    return sum(i * o + o for i, o in zip(sizes[:-1], sizes[1:]))


def forward(batch, sizes):
    """Q(s, ·) for `batch` rows: matmul, bias, and relu on the hidden layers."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    total = 0
    for index, (fan_in, fan_out) in enumerate(layers):
        total += 2 * batch * fan_in * fan_out + batch * fan_out
        if index < len(layers) - 1:
            total += batch * fan_out  # relu
    return total


def backward(batch, sizes):
    """∂L/∂θ given ∂L/∂Q: dW, db, dx for every layer but the first, relu masks."""
    layers = list(zip(sizes[:-1], sizes[1:]))
    total = 0
    for index, (fan_in, fan_out) in enumerate(layers):
        total += 2 * batch * fan_in * fan_out + batch * fan_out  # dW, db
        if index > 0:
            total += 2 * batch * fan_in * fan_out  # dx
        if index < len(layers) - 1:
            total += batch * fan_out  # relu mask
    return total


def act(batch, sizes):
    """Forward pass + argmax over actions (ε-greedy selects cost nothing)."""
    return forward(batch, sizes) + batch * sizes[-1]


def target(batch, sizes):
    """y = r + γ(1 − terminated) max_a' Q_target(s', a'): target forward, max, 4 per row."""
    return forward(batch, sizes) + batch * sizes[-1] + 4 * batch


def loss_and_gradient(batch, sizes):
    """Target, online forward, δ = y − Σ Q·onehot(a), mean ½δ², and the backward pass."""
    num_actions = sizes[-1]
    td_and_loss = 2 * batch * num_actions + batch + 3 * batch  # mask·Q, Σ, y − Q; δ², ½, mean
    loss_backward = 2 * batch + batch * num_actions  # ∂L/∂δ, ∂L/∂Q = −∂L/∂δ · onehot
    return (target(batch, sizes) + forward(batch, sizes) + td_and_loss + loss_backward
            + backward(batch, sizes))


def optimizer_step(sizes):
    """One Adam update of every parameter."""
    return ADAM_FLOPS_PER_PARAMETER * num_parameters(sizes)


def learn(batch, sizes):
    """loss_and_gradient + clip + Adam + the reported statistics (mean δ, |δ|, max Q)."""
    statistics = 3 * batch + batch * sizes[-1]
    return (loss_and_gradient(batch, sizes) + CLIP_FLOPS_PER_PARAMETER * num_parameters(sizes)
            + optimizer_step(sizes) + statistics)


def sync_target(sizes):
    """θ⁻ ← where(τ ≥ 1, θ, τθ + (1 − τ)θ⁻): the Polyak arithmetic runs either way (4/param)."""
    return 4 * num_parameters(sizes)


def matmul(n):
    """An n×n by n×n matrix product: 2n³."""
    return 2 * n ** 3
