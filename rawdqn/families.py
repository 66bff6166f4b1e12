"""The schema per agent family: which agents each DQNConfig field configures.

Every field is in exactly one family (tests/test_config.py); a flag given for an agent outside
its family is a one-line error at the command line (check_agent_options). Checked for new runs
only, so a checkpoint loads whatever its config holds.
"""
from rawdqn.config import ALGOS, ConfigError

# family: (the agents it configures, its fields)
FAMILIES = {
    "every agent": (ALGOS, (
        "algo", "total_steps", "num_envs", "iterations_per_call", "hidden", "optimizer", "learning_rate",
        "optimizer_epsilon", "discount", "max_grad_norm", "scale_observations", "max_episode_steps",
        "sticky_actions", "noop_max", "terminal_on_life_loss", "eval_episodes", "eval_epsilon", "eval_interval",
        "keep_best", "log_interval", "dtype", "mode")),
    "DQN": (("dqn",), (
        "convs", "history", "frame_pad", "data_format", "conv_gradients", "batch_size", "replay_capacity",
        "learning_starts", "train_frequency", "gradient_steps", "target_update_interval", "tau", "loss",
        "reward_clip", "epsilon_start", "epsilon_end", "exploration_fraction", "exploration_steps",
        # Rainbow's parts
        "double_q", "dueling", "n_step", "prioritized", "priority_exponent", "importance_exponent_start",
        "importance_exponent_end", "priority_epsilon", "distributional", "atoms", "v_min", "v_max", "noisy",
        "noisy_sigma", "quantile_regression", "quantile_kappa", "munchausen", "munchausen_alpha", "munchausen_temperature", "munchausen_log_clip")),
    "Ape-X": (("dqn",), ("actor_steps", "weights_interval", "actor_epsilon_base", "actor_epsilon_alpha")),
    "REINFORCE": (("reinforce",), ("total_updates", "episodes_per_update", "baseline")),
    "A2C": (("a2c",), ("rollout_steps", "gae_lambda")),
    "policy-gradient": (("reinforce", "a2c"), ("normalize_advantages", "score_discounting", "entropy_coef",
                                                "value_coef")),
}


def family_of(name):
    """The family (a FAMILIES key) whose field `name` is."""
    return next(family for family, (_, fields) in FAMILIES.items() if name in fields)


def check_agent_options(algo, names, distributed=False):
    """ConfigError unless every option in `names` (the flags a user gave) configures `algo`."""
    algo = algo or "dqn"
    for name in names:
        family = family_of(name)
        agents = FAMILIES[family][0]
        flag = "--" + name.replace("_", "-")
        article = "an" if family[0] in "AEIOU" else "a"
        if algo not in agents:
            raise ConfigError(f"{flag} is {article} {family} option; --algo {algo} has no use for it: drop it")
        if family == "Ape-X" and not distributed:
            raise ConfigError(f"{flag} is an Ape-X option: it needs --distributed")
