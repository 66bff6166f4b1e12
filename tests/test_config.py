"""The schema per agent family (rawdqn/families.py): every option belongs to one family, the presets
set only their own agent's options, and a flag for another agent is a one-line error."""
import dataclasses

import pytest

from cli_helpers import assert_usage_error, cli
from rawdqn.config import ALGOS, DQNConfig
from rawdqn.families import FAMILIES, check_agent_options, family_of
from rawdqn.presets import ALGO_DEFAULTS, ALGO_PRESETS, CLASSIC_RAINBOW, NAMED_PRESETS, PRESETS


def test_every_option_is_in_exactly_one_family():
    fields = [field.name for field in dataclasses.fields(DQNConfig)]
    listed = [name for _, names in FAMILIES.values() for name in names]
    assert sorted(listed) == sorted(fields), set(listed) ^ set(fields)
    assert all(set(agents) <= set(ALGOS) for agents, _ in FAMILIES.values())


def configured_outside_its_family(config):
    """The options a preset sets away from the defaults that its agent has no use for."""
    defaults = DQNConfig()
    return [field.name for field in dataclasses.fields(DQNConfig)
            if getattr(config, field.name) != getattr(defaults, field.name)
            and config.algo not in FAMILIES[family_of(field.name)][0]]


@pytest.mark.parametrize("name, config", [*(("/".join(key), value) for key, value in PRESETS.items()),
                                          *NAMED_PRESETS.items(), *CLASSIC_RAINBOW.items(), *ALGO_DEFAULTS.items(),
                                          *(("/".join(key), value) for key, value in ALGO_PRESETS.items())])
def test_the_presets_set_only_their_agents_options(name, config):
    assert configured_outside_its_family(config) == []


def test_the_check_names_the_option_and_the_agent():
    check_agent_options("a2c", ["rollout_steps", "entropy_coef", "hidden", "eval_epsilon"])
    check_agent_options("dqn", ["dueling", "actor_steps"], distributed=True)
    check_agent_options("pqn", ["rollout_steps", "q_lambda", "epsilon_end", "layer_norm", "hidden"])
    for algo, name, message in (("dqn", "rollout_steps", "--rollout-steps is a rollout option; --algo dqn"),
                                ("a2c", "epsilon_end", "--epsilon-end is a Q-learning option; --algo a2c"),
                                ("reinforce", "convs", "--convs is a Q-learning option; --algo reinforce"),
                                ("pqn", "batch_size", "--batch-size is a DQN option; --algo pqn"),
                                ("pqn", "gae_lambda", "--gae-lambda is an A2C option; --algo pqn"),
                                ("dqn", "epochs", "--epochs is a PQN option; --algo dqn"),
                                ("a2c", "baseline", "--baseline is a REINFORCE option; --algo a2c"),
                                ("reinforce", "replay_capacity", "--replay-capacity is a DQN option"),
                                ("dqn", "entropy_coef", "--entropy-coef is a policy-gradient option"),
                                ("dqn", "weights_interval", "--weights-interval is an Ape-X option: it needs --distributed")):
        with pytest.raises(Exception, match=message):
            check_agent_options(algo, [name])


@pytest.mark.parametrize("argv, message", [
    (["--entropy-coef", "0.01"], "--entropy-coef is a policy-gradient option; --algo dqn has no use for it: drop it"),
    (["--algo", "a2c", "--batch-size", "32"], "--batch-size is a DQN option; --algo a2c has no use for it: drop it"),
    (["--algo", "reinforce", "--gae-lambda", "0.9"], "--gae-lambda is an A2C option; --algo reinforce"),
    (["--actor-steps", "10"], "--actor-steps is an Ape-X option: it needs --distributed"),
    (["--q-lambda", "0.5"], "--q-lambda is a PQN option; --algo dqn has no use for it: drop it"),
    (["--algo", "pqn", "--target-update-interval", "5"], "--target-update-interval is a DQN option; --algo pqn"),
    (["--algo", "pqn", "--q-lambda", "1.5"], "q_lambda must be in [0, 1]; got 1.5"),
    (["--algo", "pqn", "--q-lambda", "nan"], "q_lambda must be a finite number; got nan"),
    (["--algo", "pqn", "--epochs", "0"], "epochs and minibatches must be >= 1; got 0, 4"),
    (["--algo", "pqn", "--minibatches", "0"], "epochs and minibatches must be >= 1; got 4, 0"),
    (["--algo", "pqn", "--minibatches", "3"], "--minibatches 3 must divide a rollout's num_envs × rollout_steps = "
                                              "4 × 128 = 512 transitions"),
    (["--algo", "pqn", "--rollout-steps", "0"], "rollout_steps must be >= 1; got 0"),
    (["--preset", "tf-agents-reinforce", "--learning-starts", "5"], "--learning-starts is a DQN option; --algo reinforce"),
    (["--conv-gradients", "fft"], "conv_gradients must be auto, tf, forward or im2col; got 'fft'"),
    (["--conv-gradients", "im2col", "--data-format", "NCHW"], "conv_gradients 'im2col' runs NHWC only; use "
                                                              "--data-format NHWC or --conv-gradients tf"),
])
def test_a_flag_for_another_agent_is_a_one_line_error(capsys, argv, message):
    assert_usage_error(cli(capsys, "train", *argv, "--steps", 100), message)
