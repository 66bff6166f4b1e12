"""The presets: for each environment and loop, the DQNConfig it trains with, each citing its
source (a paper's table, a library's tuned settings) or the check that measured it."""
import dataclasses

from rawdqn.config import ALGOS, ConfigError, DQNConfig

# The one preset table: (env id, loop) → DQNConfig, loop "gymnasium" (the host-stepped
# loop of rawdqn/train.py) or "on-device" (rawdqn/ondevice.py).
GYMNASIUM, ON_DEVICE = "gymnasium", "on-device"
# On-device runs of an env without an on-device preset: its gymnasium preset with this many envs.
ON_DEVICE_NUM_ENVS = 64
PRESETS = {(env_id, GYMNASIUM): config for env_id, config in {
    "CartPole-v1": DQNConfig(
        total_steps=50_000, hidden=(256, 256), learning_rate=2.3e-3, batch_size=64,
        replay_capacity=100_000, learning_starts=1_000, train_frequency=256,
        gradient_steps=128, target_update_interval=10, loss="huber",
        epsilon_end=0.04, exploration_fraction=0.16, eval_interval=5_000, keep_best=True),
    "Acrobot-v1": DQNConfig(
        total_steps=100_000, hidden=(256, 256), learning_rate=6.3e-4, batch_size=128,
        replay_capacity=50_000, learning_starts=0, train_frequency=4, gradient_steps=4,
        target_update_interval=250, loss="huber", epsilon_end=0.1,
        exploration_fraction=0.12),
    "MountainCar-v0": DQNConfig(
        total_steps=120_000, hidden=(256, 256), learning_rate=4e-3, batch_size=128,
        replay_capacity=10_000, learning_starts=1_000, train_frequency=16, gradient_steps=8,
        target_update_interval=600, loss="huber", epsilon_end=0.07,
        exploration_fraction=0.2),
    "FrozenLake-v1": DQNConfig(
        total_steps=50_000, hidden=(), learning_rate=0.1, optimizer="sgd", batch_size=32,
        replay_capacity=10_000, learning_starts=500, target_update_interval=250,
        max_grad_norm=None, epsilon_end=0.1, exploration_fraction=0.5),
    "CliffWalking-v1": DQNConfig(
        total_steps=30_000, hidden=(), learning_rate=0.1, optimizer="sgd", batch_size=32,
        replay_capacity=10_000, learning_starts=500, target_update_interval=250,
        max_grad_norm=None, epsilon_end=0.1, exploration_fraction=0.5),
    "Taxi-v4": DQNConfig(
        total_steps=100_000, hidden=(), learning_rate=0.1, optimizer="sgd", batch_size=32,
        replay_capacity=50_000, learning_starts=1_000, target_update_interval=250,
        max_grad_norm=None, epsilon_end=0.1, exploration_fraction=0.4),
}.items()}
# MinAtar (Young & Tian 2019, arXiv:1903.03176; their examples/dqn.py): conv 16 3×3/1 then
# fc 128 over the 10×10×C state; replay 100k; batch 32; one update per frame after 5k frames;
# target every 1,000 updates; γ 0.99; Huber loss; torch's centred RMSProp, lr 2.5e-4, ρ 0.95,
# ε 0.01; no gradient clipping; ε-greedy 1 → 0.1 over the first 100k frames (theirs decays over
# the 100k frames after the first 5k); 5M frames; sticky actions 0.1 (the env's default).
# -v0 has all 6 actions, as in the paper; -v1 each game's minimal set.
MINATAR = DQNConfig(
    total_steps=5_000_000, convs=((16, 3, 1),), hidden=(128,), optimizer="rmsprop_centered_torch",
    learning_rate=2.5e-4, discount=0.99, batch_size=32, replay_capacity=100_000, learning_starts=5_000,
    train_frequency=1, gradient_steps=1, target_update_interval=1_000, loss="huber", max_grad_norm=None,
    epsilon_start=1.0, epsilon_end=0.1, exploration_steps=100_000, log_interval=10_000)
MINATAR_GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")
for game in MINATAR_GAMES:
    for version in ("v0", "v1"):
        PRESETS[(f"MinAtar/{game}-{version}", GYMNASIUM)] = MINATAR
# Tuned for the on-device loop (scripts/check_ondevice_cartpole.py). CartPole: updates cost
# far more than env steps there, so a small network and a large batch at 1/4 update per step;
# DQN on CartPole swings between 500 and collapse late in training, so the run keeps the
# weights that score best in greedy TF-env evaluations every eval_interval steps.
PRESETS[("CartPole-v1", ON_DEVICE)] = DQNConfig(
    total_steps=120_000, num_envs=16, iterations_per_call=250, hidden=(64, 64), learning_rate=1e-3,
    batch_size=256, replay_capacity=50_000, learning_starts=1_000, train_frequency=4, gradient_steps=1,
    target_update_interval=500, loss="huber", epsilon_end=0.05, exploration_fraction=8_000 / 120_000,
    eval_interval=4_000, log_interval=20_000)


# The Nature DQN (Mnih et al. 2015, Extended Data Table 1, and Methods): conv 32 8×8/4, 64 4×4/2,
# 64 3×3/1, fc 512; DeepMind's centred RMSProp lr 2.5e-4, ρ 0.95, ε 0.01; batch 32; replay 1M; 4
# frames; target every 10,000 updates (the table's unit; DeepMind's released code counts 10,000
# agent steps); an update every 4 steps; ε 1 → 0.1 over the first 1M steps (DeepMind's code
# holds ε at 1 through its 50,000-step warm-up and decays over the 1M after); learning from step
# 50,000; the error clipped to [−1, 1] (Huber); rewards clipped to [−1, 1]; up to 30 no-ops at
# reset; no sticky actions; a lost life terminal in training; evaluation at ε 0.05; 50M frames
# = 12.5M steps.
NATURE = DQNConfig(
    total_steps=12_500_000, convs=((32, 8, 4), (64, 4, 2), (64, 3, 1)), hidden=(512,), history=4,
    optimizer="rmsprop_centered", learning_rate=2.5e-4, discount=0.99, batch_size=32, replay_capacity=1_000_000,
    learning_starts=50_000, train_frequency=4, gradient_steps=1, target_update_interval=40_000, loss="huber",
    reward_clip=1.0, max_grad_norm=None, epsilon_start=1.0, epsilon_end=0.1, exploration_steps=1_000_000,
    sticky_actions=0.0, noop_max=30, terminal_on_life_loss=True, eval_epsilon=0.05, eval_episodes=10,
    log_interval=10_000)
# Dopamine's DQN (Castro et al. 2018, dopamine/agents/dqn/configs/dqn.gin): the Nature network;
# TF1's centred RMSProp (ε inside the root) lr 2.5e-4, decay 0.95, ε 1e-5 (TF1 starts its mean
# square at 1, rawdqn's at 0: the first steps differ); replay 1M, batch 32; learning from step
# 20,000; an update every 4 steps; target every 8,000 steps; ε 1 → 0.01 over the first 250,000
# steps (Dopamine's over the 250,000 after the warm-up), evaluation at 0.001; Huber; rewards clipped to [−1, 1]; sticky actions 0.25 and
# no no-op starts; 200 iterations of 250,000 steps.
DOPAMINE = NATURE.replace(
    total_steps=50_000_000, optimizer_epsilon=1e-5, learning_starts=20_000, target_update_interval=8_000,
    epsilon_end=0.01, exploration_steps=250_000, eval_epsilon=0.001, sticky_actions=0.25, noop_max=0,
    terminal_on_life_loss=False)
# Rainbow (Hessel et al. 2018, Table 1 and "Hyper-parameter tuning"): the Nature network with a
# dueling, noisy (σ₀ 0.5, so ε 0), distributional head (51 atoms in [−10, 10]); double Q; 3-step
# returns; prioritized replay α 0.5, β 0.4 → 1; Adam lr 6.25e-5, ε 1.5e-4; target every 32k frames
# = 8,000 steps; learning from 80k frames = 20,000 steps; replay 1M; an update every 4 steps; no
# gradient clipping; the Nature DQN's preprocessing (no sticky actions, 30 no-ops, rewards clipped).
# The paper gives no evaluation ε; evaluation here is greedy on the noisy layers' μ.
RAINBOW = NATURE.replace(
    dueling=True, noisy=True, noisy_sigma=0.5, distributional=True, atoms=51, v_min=-10.0, v_max=10.0,
    double_q=True, n_step=3, prioritized=True, priority_exponent=0.5, importance_exponent_start=0.4,
    importance_exponent_end=1.0, optimizer="adam", learning_rate=6.25e-5, optimizer_epsilon=1.5e-4,
    target_update_interval=8_000, learning_starts=20_000, epsilon_start=0.0, epsilon_end=0.0, eval_epsilon=0.0)
# Dopamine's Rainbow (Castro et al. 2018, dopamine/agents/rainbow/configs/rainbow.gin): C51 (51 atoms,
# v_max 10) + 3-step returns + prioritized replay (priorities √loss: α 0.5; weights 1/√P: β 0.5
# throughout), no dueling, double Q or noisy nets; Adam lr 6.25e-5, ε 1.5e-4; Dopamine's DQN
# schedule otherwise (learning from 20,000 steps, target every 8,000, ε 1 → 0.01 over 250,000,
# evaluation ε 0.001, sticky actions 0.25).
DOPAMINE_RAINBOW = DOPAMINE.replace(
    distributional=True, atoms=51, v_min=-10.0, v_max=10.0, n_step=3, prioritized=True, priority_exponent=0.5,
    importance_exponent_start=0.5, importance_exponent_end=0.5, optimizer="adam", learning_rate=6.25e-5,
    optimizer_epsilon=1.5e-4)
# REINFORCE as TF-Agents' tutorial trains it (docs/tutorials/6_reinforce_tutorial.ipynb): an
# ActorDistributionNetwork of fc (100,) (ReLU), Adam 1e-3, 2 episodes per iteration, 250 iterations;
# ReinforceAgent's defaults: γ 1.0, normalize_returns, no gradient clipping, no entropy term;
# evaluation of 10 episodes every 50 iterations by agent.policy, which is greedy (GreedyPolicy).
# Its environment was CartPole-v0, whose episodes end at 200 steps.
REINFORCE_TUTORIAL = DQNConfig(
    algo="reinforce", hidden=(100,), optimizer="adam", learning_rate=1e-3, discount=1.0, episodes_per_update=2,
    total_updates=250, normalize_advantages=True, max_grad_norm=None, entropy_coef=0.0, eval_interval=50,
    eval_episodes=10, log_interval=25)
NAMED_PRESETS = {"nature": NATURE, "dopamine": DOPAMINE, "minatar": MINATAR, "rainbow": RAINBOW,
                 "dopamine-rainbow": DOPAMINE_RAINBOW, "tf-agents-reinforce": REINFORCE_TUTORIAL}
# A2C on classic control, gymnasium's and the on-device loop alike: SB3's A2C defaults (its rl-zoo
# preset for CartPole-v1 and Acrobot-v1 keeps them): n_steps 5, γ 0.99, λ 1, lr 7e-4, max_grad_norm
# 0.5, vf_coef 0.5 on the mean of (G − V)², i.e. 1.0 on ½(G − V)² here, no entropy term, advantages not
# normalised; with Adam in place of its RMSProp, 16 envs, MLPs of 64 × 64 ReLU, and the best of the
# evaluations every 20,000 steps kept (scripts/check_a2c.py checks it over 5 seeds).
A2C_CLASSIC = DQNConfig(
    algo="a2c", num_envs=16, total_steps=300_000, hidden=(64, 64), optimizer="adam", learning_rate=7e-4,
    discount=0.99, rollout_steps=5, gae_lambda=1.0, max_grad_norm=0.5, value_coef=1.0, entropy_coef=0.0,
    normalize_advantages=False, eval_interval=20_000, keep_best=True, log_interval=20_000)
# PQN (Gallici et al. 2024) on classic control: CleanRL's pqn.py defaults (vwxyzjn/cleanrl, cleanrl/pqn.py):
# 4 envs × 128 steps per rollout, 4 epochs of 4 minibatches, RAdam at 2.5e-4 decayed linearly to 0, γ 0.99,
# λ 0.65, ε 1 → 0.05 over half the run, gradients clipped to norm 10, an MLP of 120 and 84 ReLUs each
# after a layer norm, 500,000 steps. Its loss is the mean of (G − Q)², twice ½(G − Q)² here; RAdam's
# steps hardly depend on the gradient's scale. The learning rate decays per gradient step, as purejaxql's
# optax schedule does (CleanRL's per rollout).
PQN_CLASSIC = DQNConfig(
    algo="pqn", num_envs=4, rollout_steps=128, epochs=4, minibatches=4, optimizer="radam", learning_rate=2.5e-4,
    discount=0.99, q_lambda=0.65, epsilon_start=1.0, epsilon_end=0.05, exploration_fraction=0.5, max_grad_norm=10.0,
    hidden=(120, 84), layer_norm=True, total_steps=500_000, eval_interval=25_000, keep_best=True, log_interval=25_000)
# PQN on MinAtar: purejaxql's pqn_minatar.yaml (mttga/purejaxql, Gallici et al.'s code): 128 envs × 32 steps,
# 2 epochs of 32 minibatches, RAdam 5e-4 decayed linearly, γ 0.99, λ 0.65, ε 1 → 0.05 over the first 10% of
# the run, clip 10, 10M frames; MinAtar's network (conv 16 3×3/1, fc 128) with a layer norm on its fc layer
# (purejaxql's also normalises the conv's output), frames as MinAtar gives them (no reward clipping).
PQN_MINATAR = PQN_CLASSIC.replace(
    num_envs=128, rollout_steps=32, epochs=2, minibatches=32, learning_rate=5e-4, exploration_fraction=0.1,
    convs=((16, 3, 1),), hidden=(128,), total_steps=10_000_000, eval_interval=250_000, log_interval=50_000,
    keep_best=False)
# PQN on Atari: purejaxql's pqn_atari.yaml (its Pong-v5 on envpool): 128 envs × 32 steps, 2 epochs of 32
# minibatches, RAdam 2.5e-4 held constant, γ 0.99, λ 0.65, ε 1 → 0.001 over the first 10% of 10M steps,
# clip 10; the Nature network with a layer norm on its fc layer; Atari as envpool sets it there: 4-frame
# skip, up to 30 no-ops, no sticky actions, a lost life ends the episode for learning, rewards clipped to ±1.
PQN_ATARI = PQN_CLASSIC.replace(
    num_envs=128, rollout_steps=32, epochs=2, minibatches=32, learning_rate=2.5e-4, learning_rate_decay=False,
    epsilon_end=0.001, exploration_fraction=0.1, convs=NATURE.convs, hidden=NATURE.hidden, history=NATURE.history,
    total_steps=10_000_000, reward_clip=1.0, sticky_actions=0.0, noop_max=30, terminal_on_life_loss=True,
    eval_epsilon=0.0, eval_interval=250_000, log_interval=50_000, keep_best=False)
# `--algo NAME` for DQN with another head: the flags it stands for, on DQN's preset for the env.
DQN_HEADS = {
    "qr-dqn": {"quantile_regression": True},   # Dabney et al. 2018a: --atoms quantiles, κ = 1
    "iqn": {"implicit_quantiles": True},       # Dabney et al. 2018b: n = 64 cosines, N = N' = 64, K = 32, κ = 1
}
# `--algo A` without --preset: A's preset for the env, else A's defaults.
ALGO_DEFAULTS = {"reinforce": DQNConfig(algo="reinforce"), "a2c": A2C_CLASSIC, "pqn": PQN_CLASSIC}
ALGO_PRESETS = {("CartPole-v1", "reinforce"): REINFORCE_TUTORIAL.replace(
                    total_updates=None, total_steps=50_000, eval_interval=5_000, keep_best=True, log_interval=5_000),
                ("CartPole-v1", "a2c"): A2C_CLASSIC, ("Acrobot-v1", "a2c"): A2C_CLASSIC,
                **{(f"MinAtar/{game}-{version}", "pqn"): PQN_MINATAR for game in MINATAR_GAMES for version in ("v0", "v1")}}
# `--preset rainbow` on a classic-control task: its gymnasium preset with the parts of Rainbow that
# reach these targets there over 5 seeds (scripts/check_rainbow.py): CartPole ≥ 475 within 30,000
# steps, Acrobot ≥ −100 within 50,000, MountainCar ≥ −110 within 100,000.
CLASSIC_RAINBOW = {
    "CartPole-v1": PRESETS[("CartPole-v1", GYMNASIUM)].replace(total_steps=30_000, n_step=3, dueling=True, double_q=True),
    "Acrobot-v1": PRESETS[("Acrobot-v1", GYMNASIUM)].replace(total_steps=50_000, learning_starts=1_000, n_step=3,
                                                            dueling=True, double_q=True),
    # Observations mapped to [−1, 1] (scale_observations) is what let every seed find the flag;
    # with them, 3-step returns carry its reward back (dueling and double Q hurt here).
    "MountainCar-v0": PRESETS[("MountainCar-v0", GYMNASIUM)].replace(total_steps=100_000, n_step=3,
                                                                    scale_observations=True, eval_interval=5_000,
                                                                    keep_best=True),
}


def preset(env_id, loop=GYMNASIUM, name=None, algo=None):
    """The tuned configuration for `env_id` in `loop`, or NAMED_PRESETS[name] (rainbow on a
    classic-control task: CLASSIC_RAINBOW's); ALE ids default to the Nature DQN's; the defaults
    for an environment without one. `algo` other than dqn, without a name: that agent's preset
    for the env (ALGO_PRESETS), else its defaults; a DQN_HEADS name: DQN's with that head."""
    if algo in DQN_HEADS:
        return preset(env_id, loop, name).replace(**DQN_HEADS[algo])
    if name is None and algo == "pqn" and env_id.startswith("ALE/"):
        return dataclasses.replace(PQN_ATARI)
    if name is None and algo not in (None, "dqn"):
        if algo not in ALGO_DEFAULTS:
            raise ConfigError(f"algo must be one of {', '.join(ALGOS + tuple(DQN_HEADS))}; got {algo!r}")
        return dataclasses.replace(ALGO_PRESETS.get((env_id, algo), ALGO_DEFAULTS[algo]))
    if name == "rainbow" and env_id in CLASSIC_RAINBOW:
        return dataclasses.replace(CLASSIC_RAINBOW[env_id])
    if name is not None:
        if name not in NAMED_PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(NAMED_PRESETS)}")
        return dataclasses.replace(NAMED_PRESETS[name])
    chosen = PRESETS.get((env_id, loop))
    if chosen is None and loop == ON_DEVICE:
        return preset(env_id).replace(num_envs=ON_DEVICE_NUM_ENVS)
    if chosen is None and env_id.startswith("ALE/"):
        chosen = NATURE
    return dataclasses.replace(chosen or DQNConfig())
