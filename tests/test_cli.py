"""The command line as a user runs it: a fresh process, exit codes, and what it prints."""
import argparse
import os
import subprocess
import sys

import pytest


def rawdqn(*args):
    # No help from the environment: rawdqn must quiet TensorFlow itself.
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "rawdqn", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--env", "Pendulum-v1"], "Box action space; DQN needs a Discrete action space"),
    (["--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
    (["--batch-size", "500", "--replay-capacity", "100"], "batch_size (500) is larger than replay_capacity (100)"),
    (["--discount", "1.5"], "discount must be in [0, 1]; got 1.5"),
    (["--learning-rate", "-1"], "learning_rate must be > 0"),
    (["--hidden", "64,abc"], "hidden must be comma-separated widths"),
    (["--steps", "many"], "expected a whole number; got 'many'"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    result = rawdqn("train", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_short_training_run_prints_progress_and_evaluation_without_cuda_noise(tmp_path):
    result = rawdqn("train", "--env", "CartPole-v1", "--steps", "300", "--learning-starts", "100",
                    "--logdir", str(tmp_path / "run"),
                    "--hidden", "16", "--eval-episodes", "2", "--log-interval", "150",
                    "--eval-interval", "0", "--no-keep-best", "--seed", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("rawdqn: training DQN on CartPole-v1 for 300 steps (seed 3")
    assert sum(" steps/s " in line for line in lines) == 2
    assert "evaluation: mean return" in lines[-1]
    assert result.stderr.strip() == "", result.stderr  # no CUDA / absl start-up noise


def test_progress_before_any_episode_ends_says_so_instead_of_nan(tmp_path):
    # MountainCar's episodes last 200 steps under a random policy: none has ended by step 100.
    result = rawdqn("train", "--env", "MountainCar-v0", "--steps", "200", "--learning-starts", "50",
                    "--logdir", str(tmp_path / "run"), "--hidden", "8", "--eval-episodes", "1",
                    "--log-interval", "100", "--eval-interval", "0", "--no-keep-best")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stdout.splitlines() if " steps/s " in line]
    assert "no episode ended yet" in progress[0] and "nan" not in result.stdout
    assert "return(last 1)" in progress[1]


def test_discrete_observation_env_trains(tmp_path):
    result = rawdqn("train", "--env", "FrozenLake-v1", "--steps", "300", "--learning-starts", "50",
                    "--logdir", str(tmp_path / "run"),
                    "--eval-episodes", "2", "--log-interval", "300")
    assert result.returncode == 0, result.stderr
    assert "evaluation: mean return" in result.stdout


def test_every_commands_help_renders_its_text_as_written(capsys):
    """argparse %-formats help strings but not descriptions: a '%%' meant as '%' shows doubled there."""
    from rawdqn import cli as command_line
    parser = command_line.build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    assert len(commands.choices) >= 7
    for name, subparser in commands.choices.items():
        text = subparser.format_help()
        assert "%%" not in text and "%(" not in text, name
