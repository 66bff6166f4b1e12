"""Hyperparameters: one dataclass, one docstring per field (the presets are rawdqn/presets.py)."""
import dataclasses
import math
from typing import Optional, Tuple

from rawdqn.errors import UsageError

# How kernels run (rawdqn/engine/kernel.py): eagerly, as graphs, XLA-compiled, or graphs with XLA parts.
MODES = ("eager", "function", "xla", "hybrid")


class ConfigError(UsageError):
    """An invalid hyperparameter; the message is one line naming it and the fix."""


OPTIMIZER_NAMES = ("adam", "radam", "sgd", "rmsprop", "rmsprop_centered", "rmsprop_centered_torch")   # rawdqn/optim.py
SEED_LIMIT = 2**31 - 1  # seeds key TensorFlow's stateless RNGs as int32 words
# The largest count (steps, updates, intervals): the loop's counters are int64 on the device, and
# 2⁶² leaves room for the sums the schedule forms (t + N, t + f − 1) without overflowing.
COUNT_LIMIT = 2**62


def check_seed(seed, count=1, flag="--seed"):
    """`seed` as an int, or ConfigError: seed … seed + count (the replay's key is seed + 1) must fit an int32."""
    largest = SEED_LIMIT - count
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= largest:
        with_seeds = f" with --seeds {count}" if count > 1 else ""
        raise ConfigError(f"{flag} must be a whole number from 0 to {largest:,}{with_seeds}; got {seed}")
    return seed


ALGOS = ("dqn", "reinforce", "a2c", "pqn")   # rawdqn/agent.py's DQN, rawdqn/policy_agent.py's REINFORCE and A2C, rawdqn/pqn_agent.py's PQN
# The DQN family's options, which a policy-gradient agent has no use for (ConfigError if set).
DQN_ONLY = ("double_q", "dueling", "n_step", "prioritized", "distributional", "noisy")


@dataclasses.dataclass
class DQNConfig:
    algo: str = "dqn"
    """The agent: 'dqn' (with its Rainbow parts), 'reinforce' (Williams 1992: a softmax policy trained
    on whole episodes) or 'a2c' (Mnih et al. 2016, synchronous: policy and value trained on
    rollouts of N envs), rawdqn/policy_agent.py; 'pqn' (Gallici et al. 2024: Q(λ) on rollouts of N
    envs, no replay, no target network), rawdqn/pqn_agent.py. On the command line 'qr-dqn' and
    'iqn' are DQN with that head (presets.DQN_HEADS)."""
    total_steps: int = 50_000
    """Environment steps to train for (summed over all environments)."""
    num_envs: int = 1
    """Environments stepped together (a gymnasium vector env, or the TF envs' batch); each loop
    iteration adds num_envs steps and makes the updates those steps are owed."""
    iterations_per_call: int = 256
    """On-device runs only: loop iterations (of num_envs steps each) per call of the compiled
    program, between which Python logs, evaluates and checkpoints."""
    hidden: Tuple[int, ...] = (64, 64)
    """Widths of the Q-network's hidden ReLU layers; () gives a linear Q-function."""
    convs: Tuple[Tuple[int, int, int], ...] = ()
    """Conv layers (filters, size, stride) before the hidden layers, for pixel observations
    (--convs 32x8/4,64x4/2,64x3/1 is the Nature DQN's); () for vector observations."""
    history: int = 1
    """Frames stacked into one observation on pixel environments (the replay stores each frame once)."""
    frame_pad: str = "zeros"
    """What fills a stack before an episode's first frame: 'zeros' (Dopamine) or 'repeat' (that frame)."""
    data_format: str = "NHWC"
    """Layout of the conv layers' activations: 'NHWC' (fastest on CPUs) or 'NCHW' (cuDNN's)."""
    conv_gradients: str = "auto"
    """How conv layers and their gradients run: 'tf' (TensorFlow's ops), 'forward' (gradients as forward
    convolutions) or 'im2col' (one matrix product; both NHWC only, rawdqn/conv.py), or 'auto' (under XLA
    on a CPU per layer by its shape, conv.xla_cpu_form: im2col on small inputs, forward on large; else tf)."""
    optimizer: str = "adam"
    """'adam', 'sgd', 'rmsprop', 'rmsprop_centered' (DeepMind's, ε inside the root, for the Nature DQN)
    or 'rmsprop_centered_torch' (torch's, ε outside the root, as the MinAtar paper ran it); rawdqn/optim.py."""
    learning_rate: float = 1e-3
    """Step size α of the optimizer."""
    optimizer_epsilon: Optional[float] = None
    """ε of adam / rmsprop*: None keeps the optimizer's own (Adam 1e-8, RMSProp 1e-7, the centred
    ones 0.01, DeepMind's); Dopamine's centred RMSProp has 1e-5 (rawdqn/optim.py)."""
    discount: float = 0.99
    """γ in r + γ max_a' Q_target(s', a'); in [0, 1]."""
    batch_size: int = 64
    """Transitions per gradient update."""
    replay_capacity: int = 50_000
    """Transitions the replay ring holds before it overwrites the oldest."""
    learning_starts: int = 1_000
    """Environment steps of pure collection before the first update."""
    train_frequency: int = 1
    """Environment steps between training phases."""
    gradient_steps: int = 1
    """Gradient updates per training phase (run inside one compiled call)."""
    target_update_interval: int = 500
    """Environment steps between target-network syncs."""
    tau: float = 1.0
    """Target sync: θ⁻ ← τθ + (1 − τ)θ⁻; 1.0 is a hard copy, < 1 Polyak averaging."""
    n_step: int = 1
    """Transitions summed into one target (Sutton 1988; Hessel et al. 2018: 3): y = Σ_{k<n} γ^k r_k +
    γ^n max_a' Q_target(s_n, a'), each window cut at its episode's end (rawdqn/bellman.py's n_step_window)."""
    prioritized: bool = False
    """Prioritized replay (Schaul et al. 2016, proportional): draw transition i with probability
    p_i / Σ p, p_i = (|δ_i| + ε)^α, and weight its loss by (M · P(i))^−β / max (rawdqn/replay.py)."""
    priority_exponent: float = 0.6
    """α of the priorities (Schaul et al. 2016: 0.6; Rainbow: 0.5)."""
    importance_exponent_start: float = 0.4
    """β at step 0, annealed linearly to importance_exponent_end at total_steps (Schaul et al. 2016
    and Rainbow: 0.4 → 1)."""
    importance_exponent_end: float = 1.0
    """β at total_steps (Dopamine's Rainbow holds β at 0.5: start and end 0.5)."""
    priority_epsilon: float = 1e-6
    """ε in (|δ| + ε)^α: no transition's priority is ever 0."""
    double_q: bool = False
    """Use the double Q-learning target (online argmax, target value)."""
    dueling: bool = False
    """Dueling head (Wang et al. 2016): Q = V + A − mean_a A, value and advantage streams each
    with their own copy of the last hidden layer (rawdqn/network.py)."""
    distributional: bool = False
    """C51 (Bellemare et al. 2017): learn the return's distribution over `atoms` fixed atoms in
    [v_min, v_max], the target projected onto them (bellman.categorical_projection), the loss
    its cross-entropy; Q(s, a) = Σ_i z_i p_i(s, a) acts."""
    layer_norm: bool = False
    """A layer norm before each hidden fully connected layer's relu (Ba et al. 2016; PQN's network)."""
    noisy: bool = False
    """Noisy nets (Fortunato et al. 2018, factorised Gaussian): every fully connected layer
    w = μ + σ ⊙ ε with noise drawn anew for each forward pass; ε-greedy is off (evaluation uses μ)."""
    noisy_sigma: float = 0.5
    """σ₀ of the noisy layers: σ starts at σ₀/√fan_in (Fortunato et al. 2018: 0.5)."""
    atoms: int = 51
    """Atoms K of the distributional head (C51's 51)."""
    v_min: float = -10.0
    """Lowest atom z_0 of the distributional head (C51 on Atari: −10)."""
    v_max: float = 10.0
    """Highest atom z_{K−1} of the distributional head (C51 on Atari: 10)."""
    quantile_regression: bool = False
    """QR-DQN (Dabney et al. 2018a): the head puts out `atoms` quantiles of the return per action at
    τ_i = (2i + 1)/2N, trained by the quantile Huber loss (losses.quantile_huber_loss); Q is their mean."""
    quantile_kappa: float = 1.0
    """κ of the quantile Huber loss (the paper's 1; 0: the plain quantile loss)."""
    implicit_quantiles: bool = False
    """IQN (Dabney et al. 2018b): the network maps a level τ to the quantile Z_τ(s, ·) through a cosine
    embedding (network.py), trained by the quantile Huber loss at N levels τ ~ U(0, 1) against N'
    target levels; acting and the target's argmax average K levels."""
    quantile_embedding: int = 64
    """IQN: n, the cosines cos(π i τ), i < n, that embed a level τ (the paper's 64)."""
    quantile_samples: Tuple[int, int, int] = (64, 64, 32)
    """IQN: (N, N', K), the levels drawn for the loss, for its target, and for acting (the paper's)."""
    munchausen: bool = False
    """Munchausen DQN (Vieillard et al. 2020): the target adds α·clip(τ log π(a|s), l₀, 0) and
    bootstraps from the soft value Σ π(Q⁻ − τ log π), π = softmax(Q⁻/τ) (bellman.munchausen_target)."""
    munchausen_alpha: float = 0.9
    """α, the weight of the Munchausen bonus (the paper's 0.9)."""
    munchausen_temperature: float = 0.03
    """τ, the temperature of π = softmax(Q⁻/τ) (the paper's 0.03)."""
    munchausen_log_clip: float = -1.0
    """l₀, the lower clip of τ log π(a|s) (the paper's −1)."""
    total_updates: Optional[int] = None
    """REINFORCE: train for this many updates instead of total_steps (an iteration of TF-Agents'
    tutorial is one update); eval_interval, log_interval and checkpoints then count updates too."""
    scale_observations: bool = False
    """Map each vector observation to [−1, 1] from its Box's bounds inside the network,
    2(s − low)/(high − low) − 1, so a feature of tiny range (MountainCar's velocity, ±0.07) weighs
    as much as the others; exported models take raw observations. Needs finite bounds."""
    episodes_per_update: int = 2
    """REINFORCE: whole episodes per update (TF-Agents' REINFORCE tutorial: 2)."""
    max_episode_steps: Optional[int] = None
    """A time limit for the env (gym.make's max_episode_steps; truncated, not terminated, there);
    None keeps the env's own. REINFORCE needs one: its buffer holds episodes_per_update + 1 of them."""
    normalize_advantages: bool = True
    """Policy-gradient agents: standardise the batch's advantages, (Â − mean) / (std + 1e-8) (REINFORCE
    without a baseline: its returns, as TF-Agents' ReinforceAgent does by default, normalize_returns)."""
    rollout_steps: int = 5
    """A2C and PQN: steps of each env per rollout, which the update learns from (Mnih et al. 2016: t_max 5)."""
    q_lambda: float = 0.65
    """PQN: λ of its Peng's Q(λ) returns (multistep.peng_q_lambda_returns; CleanRL's pqn.py: 0.65)."""
    epochs: int = 4
    """PQN: passes over each rollout's transitions, each in `minibatches` random minibatches."""
    minibatches: int = 4
    """PQN: minibatches per epoch, each num_envs · rollout_steps / minibatches transitions (it must divide)."""
    learning_rate_decay: bool = True
    """PQN: decay the learning rate linearly to 0 over the run's gradient steps (pqn.learning_rate); off, it stays."""
    learning_rate_decay_from: Optional[Tuple[int, float]] = None
    """PQN, set on a resume with new --steps: (gradient steps done, the rate then), decayed on to 0 (None: (0, α))."""
    gae_lambda: float = 1.0
    """A2C: λ of GAE (Schulman et al. 2016); 1 gives the bootstrapped rollout_steps-step returns of
    Mnih et al. 2016, 0 the one-step TD error."""
    baseline: bool = False
    """REINFORCE: subtract a learned state value, Â_t = G_t − V(s_t; φ), V an MLP of `hidden`
    trained on ½(G_t − V(s_t))²; a truncated episode's return bootstraps from V of its final observation."""
    score_discounting: bool = False
    """REINFORCE: weight step t's score by γ^t, as the policy-gradient theorem's unbiased estimator
    of ∇J has it (Sutton & Barto 2018, §13.3); TF-Agents, like most code, leaves it out."""
    entropy_coef: float = 0.0
    """Policy-gradient agents: c_H in L = L_π + c_V L_V − c_H H(π), an entropy bonus."""
    value_coef: float = 0.5
    """Policy-gradient agents with a critic or baseline: c_V in L = L_π + c_V L_V − c_H H(π)."""
    actor_steps: int = 50
    """--distributed (Ape-X): steps of each actor's envs between shipments to the learner (Horgan et
    al. 2018: blocks of about 50)."""
    weights_interval: int = 10
    """--distributed: learner updates between publications of its weights to the actors."""
    actor_epsilon_base: float = 0.4
    """--distributed: ε in actor i's ε_i = ε^(1 + α i/(N − 1)) (Horgan et al. 2018: 0.4)."""
    actor_epsilon_alpha: float = 7.0
    """--distributed: α in ε_i = ε^(1 + α i/(N − 1)) (Horgan et al. 2018: 7)."""
    loss: str = "squared"
    """'squared' (mean ½δ²) or 'huber'; a distributional agent's loss is always its cross-entropy."""
    sticky_actions: Optional[float] = None
    """Probability that the emulator repeats the previous action instead (Machado et al. 2018):
    ALE's repeat_action_probability, MinAtar's sticky_action_prob; None keeps the env's default
    (ALE v5 0.25, MinAtar 0.1)."""
    noop_max: int = 30
    """ALE ids: up to this many no-op steps after each reset (Mnih et al. 2015: 30; 0: none)."""
    terminal_on_life_loss: bool = False
    """ALE ids, training only: a lost life is terminal for the target (no bootstrap) while the
    game goes on (Mnih et al. 2015); evaluation and reported returns are whole games."""
    reward_clip: Optional[float] = None
    """Clip rewards to [−c, c] in the replay, so the loss sees clipped rewards (Mnih et al. 2015:
    1); returns are reported unclipped. None: no clipping."""
    max_grad_norm: Optional[float] = 10.0
    """Clip gradients to this global norm; None disables clipping."""
    epsilon_start: float = 1.0
    """Exploration ε at step 0."""
    epsilon_end: float = 0.05
    """Exploration ε after the decay."""
    exploration_fraction: float = 0.1
    """Fraction of total_steps over which ε decays linearly from start to end."""
    exploration_steps: Optional[int] = None
    """Environment steps over which ε decays; when set, it replaces exploration_fraction."""
    eval_episodes: int = 10
    """Greedy episodes in the final evaluation."""
    eval_epsilon: float = 0.0
    """ε of the evaluation policy: 0 is greedy; the Atari literature evaluates with 0.05."""
    eval_interval: int = 0
    """Environment steps between greedy evaluations during training; 0: only at the end."""
    keep_best: bool = False
    """End with the weights of the best periodic evaluation (needs eval_interval); the reported
    evaluation then runs on fresh episodes, not the ones used to choose."""
    log_interval: int = 5_000
    """Environment steps between progress lines."""
    dtype: str = "float32"
    """'float32', or 'float64' for verification."""
    mode: str = "xla"
    """How kernels run: 'eager', 'function' (tf.function) or 'xla' (jit_compile=True)."""

    def validate(self):
        """Raise ConfigError naming the first invalid field."""
        def require(condition, message):
            if not condition:
                raise ConfigError(message)

        def finite(name):
            value = getattr(self, name)
            require(isinstance(value, (int, float)) and math.isfinite(value),
                    f"{name} must be a finite number; got {value}")
            return value
        require(not (self.scale_observations and self.convs),
                "scale_observations is for vector observations; pixel networks scale their frames already")
        require(self.algo in ALGOS, f"algo must be one of {', '.join(ALGOS)}; got {self.algo!r}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int) and not isinstance(value, bool):
                flag = "--steps" if field.name == "total_steps" else "--" + field.name.replace("_", "-")
                require(value <= COUNT_LIMIT, f"{flag} must be at most 2⁶² = {COUNT_LIMIT:,}, what the loop's int64 "
                                              f"counters can count to; got {value:.3g}")
        if self.algo != "dqn":
            for name in DQN_ONLY:
                require(getattr(self, name) == getattr(DQN_DEFAULTS, name),
                        f"--{name.replace('_', '-')} is a DQN option; --algo {self.algo} has no use for it: drop it")
            require(not self.convs or self.algo == "pqn",
                    f"--algo {self.algo} has an MLP policy: pixel observations (convs) need --algo dqn or pqn")
        require(self.total_updates is None or (self.algo == "reinforce" and int(self.total_updates) >= 1),
                f"total_updates counts REINFORCE's updates: it must be >= 1, with --algo reinforce; "
                f"got {self.total_updates} with --algo {self.algo}")
        require(self.max_episode_steps is None or int(self.max_episode_steps) >= 1,
                f"max_episode_steps must be >= 1 (or None for the env's own limit); got {self.max_episode_steps}")
        require(int(self.actor_steps) >= 1 and int(self.weights_interval) >= 1,
                f"actor_steps and weights_interval must be >= 1; got {self.actor_steps}, {self.weights_interval}")
        for name in ("total_steps", "num_envs", "batch_size", "replay_capacity", "train_frequency",
                     "gradient_steps", "target_update_interval", "eval_episodes",
                     "log_interval", "iterations_per_call", "history", "n_step"):
            require(int(getattr(self, name)) >= 1, f"{name} must be >= 1; got {getattr(self, name)}")
        require(self.learning_starts >= 0, f"learning_starts must be >= 0; got {self.learning_starts}")
        require(self.noop_max >= 0, f"noop_max must be >= 0; got {self.noop_max}")
        require(self.learning_starts >= (self.n_step - 1) * self.num_envs,
                f"learning_starts ({self.learning_starts}) must be at least (n_step − 1) · num_envs = "
                f"{(self.n_step - 1) * self.num_envs}, so the first update has whole {self.n_step}-step windows "
                f"to sample; raise --learning-starts")
        require(self.sticky_actions is None or 0.0 <= finite("sticky_actions") <= 1.0,
                f"sticky_actions must be in [0, 1] (or None for the env's default); got {self.sticky_actions}")
        require(self.optimizer_epsilon is None or (finite("optimizer_epsilon") > 0 and self.optimizer != "sgd"),
                f"optimizer_epsilon must be > 0, for adam or rmsprop*; got {self.optimizer_epsilon} with {self.optimizer}")
        require(self.eval_interval >= 0, f"eval_interval must be >= 0; got {self.eval_interval}")
        require(self.exploration_steps is None or self.exploration_steps >= 0,
                f"exploration_steps must be >= 0; got {self.exploration_steps}")
        require(not self.keep_best or self.eval_interval > 0,
                "keep_best needs periodic evaluations; set --eval-interval to a positive number of steps")
        require(self.batch_size <= self.replay_capacity,
                f"batch_size ({self.batch_size}) is larger than replay_capacity "
                f"({self.replay_capacity}); lower --batch-size or raise --replay-capacity")
        from rawdqn.families import check_family_fields   # families.py imports this module
        check_family_fields(self, require, finite)
        require(self.n_step * self.num_envs <= self.replay_capacity,
                f"replay_capacity ({self.replay_capacity}) must hold n_step · num_envs = {self.n_step * self.num_envs} "
                f"transitions, one window per env; raise --replay-capacity")
        require(self.num_envs <= self.replay_capacity,
                f"num_envs ({self.num_envs}) writes more transitions per step than replay_capacity "
                f"({self.replay_capacity}) holds; lower --num-envs or raise --replay-capacity")
        require(0.0 <= finite("discount") <= 1.0, f"discount must be in [0, 1]; got {self.discount}")
        require(finite("learning_rate") > 0, f"learning_rate must be > 0; got {self.learning_rate}")
        require(0.0 < finite("tau") <= 1.0, f"tau must be in (0, 1]; got {self.tau}")
        for name in ("epsilon_start", "epsilon_end"):
            require(0.0 <= finite(name) <= 1.0, f"{name} must be in [0, 1]; got {getattr(self, name)}")
        require(0.0 <= finite("exploration_fraction") <= 1.0,
                f"exploration_fraction must be in [0, 1]; got {self.exploration_fraction}")
        require(self.max_grad_norm is None or finite("max_grad_norm") > 0,
                f"max_grad_norm must be > 0 (or None to disable); got {self.max_grad_norm}")
        require(all(int(w) >= 1 for w in self.hidden),
                f"hidden layer widths must be >= 1; got {tuple(self.hidden)}")
        require(self.optimizer in OPTIMIZER_NAMES,
                f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)}; got {self.optimizer!r}")
        require(all(len(conv) == 3 and all(int(x) >= 1 for x in conv) for conv in self.convs),
                f"convs must be (filters, size, stride) triples of whole numbers >= 1; got {tuple(self.convs)}")
        require(self.frame_pad in ("zeros", "repeat"), f"frame_pad must be zeros or repeat; got {self.frame_pad!r}")
        require(self.data_format in ("NHWC", "NCHW"), f"data_format must be NHWC or NCHW; got {self.data_format!r}")
        require(self.conv_gradients in ("auto", "tf", "forward", "im2col"),
                f"conv_gradients must be auto, tf, forward or im2col; got {self.conv_gradients!r}")
        require(self.conv_gradients in ("auto", "tf") or self.data_format == "NHWC",
                f"conv_gradients {self.conv_gradients!r} runs NHWC only; use --data-format NHWC or --conv-gradients tf")
        require(self.reward_clip is None or finite("reward_clip") > 0,
                f"reward_clip must be > 0 (or None to disable); got {self.reward_clip}")
        require(0.0 <= finite("eval_epsilon") <= 1.0, f"eval_epsilon must be in [0, 1]; got {self.eval_epsilon}")
        require(self.loss in ("squared", "huber"), f"loss must be squared or huber; got {self.loss!r}")
        require(self.dtype in ("float32", "float64"), f"dtype must be float32 or float64; got {self.dtype!r}")
        require(self.mode in MODES, f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        return self

    def head_options(self):
        """The Q-network's head, as QNetwork and ConvQNetwork take it: dueling, and the atoms and
        support of a distributional one (1 atom: Q-values)."""
        return dict(dueling=self.dueling, atoms=self.atoms if self.distributional or self.quantile_regression else 1,
                    v_min=self.v_min, v_max=self.v_max, noisy=self.noisy, noisy_sigma=self.noisy_sigma,
                    quantile=self.quantile_regression,
                    embedding=self.quantile_embedding if self.implicit_quantiles else 0,
                    policy_samples=self.quantile_samples[2], layer_norm=self.layer_norm)

    @property
    def exploration_decay_steps(self):
        """Steps over which ε decays: exploration_steps, else exploration_fraction · total_steps."""
        if self.exploration_steps is not None:
            return float(self.exploration_steps)
        return self.exploration_fraction * self.total_steps

    def describe_exploration(self):
        """One line: where ε starts, where it ends, and the step at which it gets there."""
        if self.algo in ("reinforce", "a2c"):
            return "actions drawn from the policy π(·|s); ε-greedy is off"
        if self.noisy:
            return f"exploration by noisy layers (σ₀ {self.noisy_sigma:g}); ε-greedy is off"
        end_step = math.ceil(self.exploration_decay_steps)
        line = f"ε decays from {self.epsilon_start:g} to {self.epsilon_end:g} by step {end_step:,}"
        if end_step > self.total_steps:
            return line + f", after the run's {self.total_steps:,} steps; shorten it with --exploration-steps"
        if self.exploration_steps is None and end_step > 10_000_000:
            return line + f" of {self.total_steps:,} ({self.exploration_fraction:g} of the run; "\
                          "--exploration-steps N sets it in steps)"
        return line + f" of {self.total_steps:,}"

    @property
    def algo_name(self):
        """The agent as papers name it: DQN, QR-DQN, IQN, Munchausen DQN, REINFORCE, A2C."""
        if self.algo == "dqn":
            return ("QR-DQN" if self.quantile_regression else "IQN" if self.implicit_quantiles
                    else "Munchausen DQN" if self.munchausen else "DQN")
        return {"reinforce": "REINFORCE", "a2c": "A2C", "pqn": "PQN"}[self.algo]

    def describe_evaluation(self):
        """'greedy', or 'ε-greedy (ε 0.05)': the evaluation policy."""
        return "greedy" if self.eval_epsilon == 0 else f"ε-greedy (ε {self.eval_epsilon:g})"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def resumed_with(self, step=0, **changes):
        """This run's config with `changes` from step `step` on. A new total_steps pins ε's decay
        (exploration_steps, unless the changes set it), so ε does not move back up mid-run, and
        PQN's rate decays on from its value at `step` to 0 at the new end (learning_rate_decay_from)."""
        if ("total_steps" in changes and self.exploration_steps is None
                and not {"exploration_fraction", "exploration_steps"} & set(changes)):
            changes = {**changes, "exploration_steps": math.ceil(self.exploration_decay_steps)}
        if self.algo == "pqn" and self.learning_rate_decay and changes.get("total_steps", self.total_steps) != self.total_steps:
            from rawdqn.schedule import pqn_learning_rate_at   # schedule.py imports TensorFlow
            changes = {**changes, "learning_rate_decay_from": pqn_learning_rate_at(self, step, changes.get("learning_rate"))}
        return self.replace(**changes)


DQN_DEFAULTS = DQNConfig()


def __getattr__(name):
    """The presets (rawdqn/presets.py: PRESETS, preset, NATURE, …), importable from here too."""
    from rawdqn import presets
    try:
        return getattr(presets, name)
    except AttributeError:
        raise AttributeError(f"module 'rawdqn.config' has no attribute {name!r}") from None
