"""The schema per agent family: which agents each DQNConfig field configures.

Every field is in exactly one family (tests/test_config.py); a flag given for an agent outside
its family is a one-line error at the command line (check_agent_options). Checked for new runs
only, so a checkpoint loads whatever its config holds.
"""
from rawdqn.config import ALGOS, ConfigError
from rawdqn.presets import DQN_HEADS

# family: (the agents it configures, its fields)
FAMILIES = {
    "every agent": (ALGOS, (
        "algo", "total_steps", "num_envs", "iterations_per_call", "hidden", "optimizer", "learning_rate",
        "optimizer_epsilon", "discount", "max_grad_norm", "scale_observations", "max_episode_steps",
        "sticky_actions", "noop_max", "terminal_on_life_loss", "eval_episodes", "eval_epsilon", "eval_interval",
        "keep_best", "log_interval", "dtype", "mode")),
    "DQN": (("dqn",), (
        "batch_size", "replay_capacity",
        "learning_starts", "train_frequency", "gradient_steps", "target_update_interval", "tau", "loss",
        # Rainbow's parts
        "double_q", "dueling", "n_step", "prioritized", "priority_exponent", "importance_exponent_start",
        "importance_exponent_end", "priority_epsilon", "distributional", "atoms", "v_min", "v_max", "noisy",
        "noisy_sigma", "quantile_regression", "quantile_kappa", "implicit_quantiles", "quantile_embedding",
        "quantile_samples", "munchausen", "munchausen_alpha", "munchausen_temperature", "munchausen_log_clip")),
    "Ape-X": (("dqn",), ("actor_steps", "weights_interval", "actor_epsilon_base", "actor_epsilon_alpha")),
    "REINFORCE": (("reinforce",), ("total_updates", "episodes_per_update", "baseline")),
    "Q-learning": (("dqn", "pqn"), ("epsilon_start", "epsilon_end", "exploration_fraction", "exploration_steps",
                                     "layer_norm", "convs", "history", "frame_pad", "data_format", "conv_gradients",
                                     "reward_clip")),
    "A2C": (("a2c",), ("gae_lambda",)),
    "rollout": (("a2c", "pqn"), ("rollout_steps",)),
    "PQN": (("pqn",), ("q_lambda", "epochs", "minibatches", "learning_rate_decay", "learning_rate_decay_from")),
    "policy-gradient": (("reinforce", "a2c"), ("normalize_advantages", "score_discounting", "entropy_coef",
                                                "value_coef")),
}


def family_of(name):
    """The family (a FAMILIES key) whose field `name` is."""
    return next(family for family, (_, fields) in FAMILIES.items() if name in fields)


def check_agent_options(algo, names, distributed=False):
    """ConfigError unless every option in `names` (the flags a user gave) configures `algo`."""
    algo = algo or "dqn"
    if algo not in ALGOS:
        raise ConfigError(f"algo must be one of {', '.join(ALGOS + tuple(DQN_HEADS))}; got {algo!r}")
    for name in names:
        family = family_of(name)
        agents = FAMILIES[family][0]
        flag = "--" + name.replace("_", "-")
        article = "an" if family[0] in "AEIOU" else "a"
        if algo not in agents:
            raise ConfigError(f"{flag} is {article} {family} option; --algo {algo} has no use for it: drop it")
        if family == "Ape-X" and not distributed:
            raise ConfigError(f"{flag} is an Ape-X option: it needs --distributed")


def check_family_fields(config, require, finite):
    """DQNConfig.validate's checks of the Rainbow parts', Ape-X, policy-gradient and DQN-head fields:
    require(condition, message) raises ConfigError; finite(name) is the field, if finite."""
    require(0.0 <= finite("actor_epsilon_base") <= 1.0 and finite("actor_epsilon_alpha") >= 0,
            f"actor_epsilon_base must be in [0, 1] and actor_epsilon_alpha >= 0; "
            f"got {config.actor_epsilon_base}, {config.actor_epsilon_alpha}")
    require(int(config.rollout_steps) >= 1, f"rollout_steps must be >= 1; got {config.rollout_steps}")
    require(0.0 <= finite("q_lambda") <= 1.0, f"q_lambda must be in [0, 1]; got {config.q_lambda}")
    require(int(config.epochs) >= 1 and int(config.minibatches) >= 1,
            f"epochs and minibatches must be >= 1; got {config.epochs}, {config.minibatches}")
    rollout = int(config.num_envs) * int(config.rollout_steps)
    require(config.algo != "pqn" or rollout % int(config.minibatches) == 0,
            f"--minibatches {config.minibatches} must divide a rollout's num_envs × rollout_steps = "
            f"{config.num_envs} × {config.rollout_steps} = {rollout} transitions")
    decay_from = config.learning_rate_decay_from
    require(decay_from is None or (len(decay_from) == 2 and int(decay_from[0]) >= 0 and float(decay_from[1]) >= 0),
            f"learning_rate_decay_from must be (gradient steps >= 0, a rate >= 0) or None; got {decay_from}")
    require(0.0 <= finite("gae_lambda") <= 1.0, f"gae_lambda must be in [0, 1]; got {config.gae_lambda}")
    require(int(config.episodes_per_update) >= 1, f"episodes_per_update must be >= 1; got {config.episodes_per_update}")
    for name in ("entropy_coef", "value_coef"):
        require(finite(name) >= 0, f"{name} must be >= 0; got {getattr(config, name)}")
    require(int(config.atoms) >= 2, f"atoms must be >= 2; got {config.atoms}")
    require(finite("noisy_sigma") > 0, f"noisy_sigma must be > 0; got {config.noisy_sigma}")
    require(finite("priority_exponent") >= 0, f"priority_exponent must be >= 0; got {config.priority_exponent}")
    for name in ("importance_exponent_start", "importance_exponent_end"):
        require(0.0 <= finite(name) <= 1.0, f"{name} must be in [0, 1]; got {getattr(config, name)}")
    require(finite("priority_epsilon") > 0, f"priority_epsilon must be > 0; got {config.priority_epsilon}")
    require(finite("v_min") < finite("v_max"), f"v_min ({config.v_min}) must be below v_max ({config.v_max})")
    heads = [name.replace("_", "-") for name in ("distributional", "quantile_regression", "implicit_quantiles",
                                                 "munchausen") if getattr(config, name)]
    require(len(heads) <= 1, f"--{' and --'.join(heads[:2])} each replace DQN's target and loss: choose one")
    require(not (config.implicit_quantiles and config.noisy), "--implicit-quantiles does not combine with --noisy")
    require(int(config.quantile_embedding) >= 1 and len(config.quantile_samples) == 3
            and all(int(n) >= 1 for n in config.quantile_samples),
            f"quantile_embedding must be >= 1 and quantile_samples three counts >= 1 (N, N', K); got "
            f"{config.quantile_embedding}, {tuple(config.quantile_samples)}")
    require(finite("quantile_kappa") >= 0, f"quantile_kappa must be >= 0; got {config.quantile_kappa}")
    require(not (config.munchausen and config.double_q), "--munchausen has its own target: it does not combine with --double-q")
    require(finite("munchausen_temperature") > 0 and finite("munchausen_alpha") >= 0
            and finite("munchausen_log_clip") <= 0,
            f"munchausen_temperature must be > 0, munchausen_alpha >= 0 and munchausen_log_clip <= 0; got "
            f"{config.munchausen_temperature}, {config.munchausen_alpha}, {config.munchausen_log_clip}")
