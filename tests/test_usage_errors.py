"""What a new user hit, each ending in one line on stderr and exit code 2, with nothing lost:
seeds, memory, full disks, output paths checked before the work, and the wording of limits."""
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from cli_helpers import assert_usage_error, cli
from rawdqn import checkpoint, device
from rawdqn.agent import DQN
from rawdqn.config import DQNConfig

TINY = ["--steps", 60, "--hidden", 8, "--learning-starts", 20, "--batch-size", 8, "--replay-capacity", 100,
        "--eval-episodes", 1, "--eval-interval", 0, "--no-keep-best", "--mode", "function"]


@pytest.mark.parametrize("argv, message", [
    (["train", "--seed", -1], "--seed must be a whole number from 0 to 2,147,483,646; got -1"),
    (["train", "--seed", 2**63], f"--seed must be a whole number from 0 to 2,147,483,646; got {2**63}"),
    (["train", "--seed", 2**31 - 1], "got 2147483647"),     # its replay key, seed + 1, would overflow
    (["train", "--on-device", "--seed", 2**31 - 5, "--seeds", 8], "from 0 to 2,147,483,639 with --seeds 8"),
    (["verify", "--seed", -3], "--seed must be a whole number"),
    (["train", "--learning-rate", "inf"], "learning_rate must be a finite number; got inf"),
    (["train", "--tau", "nan"], "tau must be a finite number; got nan"),
    (["train", "--steps", "2.5e0"], "expected a whole number; got '2.5e0'"),
    # Settings the environment would ignore (only the ALE takes no-op starts and life loss).
    (["train", "--noop-max", 5], "--noop-max applies to ALE/… ids only; CartPole-v1 would ignore it"),
    (["train", "--env", "MinAtar/Breakout-v0", "--terminal-on-life-loss"],
     "--terminal-on-life-loss applies to ALE/… ids only; MinAtar/Breakout-v0 would ignore it"),
    (["train", "--on-device", "--sticky-actions", 0.25],
     "--sticky-actions applies to ALE/… and MinAtar/… ids only; CartPole-v1 would ignore it"),
])
def test_bad_seeds_and_numbers_are_one_line_errors(tmp_path, capsys, argv, message):
    assert_usage_error(cli(capsys, *argv, *(["--logdir", tmp_path / "run"] if argv[0] == "train" else [])),
                       message)
    assert not (tmp_path / "run").exists()


def test_step_counts_may_be_written_as_papers_write_them(tmp_path, capsys):
    code, out, err = cli(capsys, "train", *TINY[2:], "--steps", "6e1", "--exploration-steps", "3e1",
                         "--logdir", tmp_path / "run")
    assert code == 0, err
    assert "for 60 steps" in out
    assert "ε decays from 1 to 0.04 by step 30 of 60" in out


def test_memory_is_checked_before_anything_is_allocated(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(device, "available_bytes", lambda _: 2**30)   # a device with 1 GiB free
    # 3e9 transitions of CartPole: obs and next_obs 4 float32 each, action int32, reward and
    # terminated float32: 3e9 · (2·16 + 4 + 4 + 4) = 132e9 bytes = 122.9 GiB.
    assert_usage_error(cli(capsys, "train", "--replay-capacity", 3_000_000_000, "--logdir", tmp_path / "a"),
                       "this run needs 122.9 GiB (replay 122.9 GiB, networks and optimizer")
    # hidden (100000, 100000) on CartPole: (4+1)·1e5 + (1e5+1)·1e5 + (1e5+1)·2 = 10,000,800,002
    # parameters; online, target, gradient, initializer draw and Adam's 2 slots: 6 copies of
    # 4 bytes = 240,019,200,048 bytes = 223.5 GiB.
    assert_usage_error(cli(capsys, "train", "--hidden", "100000,100000", "--logdir", tmp_path / "b"),
                       "networks and optimizer 223.5 GiB) but /CPU:0 has 1.0 GiB free; lower --replay-capacity")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_memory_estimate_covers_the_variables_the_agent_allocates():
    config = DQNConfig(hidden=(32, 16), replay_capacity=1_000, batch_size=8, optimizer="adam")
    agent = DQN(6, 3, config, legal_actions=True)
    needed = agent.memory_needed()
    replay = sum(v.numpy().nbytes for v in agent.replay.variables if v.shape.rank)
    assert needed["replay"] == replay
    parameters = sum(v.numpy().nbytes for v in agent.online.variables)
    variables = sum(v.numpy().nbytes for v in (*agent.online.variables, *agent.target.variables,
                                                *[s for slots in agent.optimizer.slots.values() for s in slots]))
    # What is allocated, plus the gradient and the initializer's draw of one more copy each.
    assert needed["networks and optimizer"] == variables + 2 * parameters


def test_an_allocation_refused_by_tensorflow_is_one_line_too(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(device, "available_bytes", lambda _: None)   # free memory unknown (a GPU)

    def refuse(*args):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
    monkeypatch.setattr(DQN, "_allocate", refuse)
    assert_usage_error(cli(capsys, "train", *TINY, "--logdir", tmp_path / "run"),
                       "ran out of memory allocating this run's")


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, capsys,
                                                                                       monkeypatch):
    run_dir = tmp_path / "run"
    write = tf.train.Checkpoint.write

    def fill_the_disk_at_the_second(self, prefix, *args, **kwargs):
        if "step-00000040" in prefix:   # what SaveV2 raises when the disk is full
            raise tf.errors.ResourceExhaustedError(None, None, f"{prefix}; No space left on device")
        return write(self, prefix, *args, **kwargs)
    monkeypatch.setattr(tf.train.Checkpoint, "write", fill_the_disk_at_the_second)
    code, _, err = cli(capsys, "train", *TINY, "--checkpoint-interval", 20, "--logdir", run_dir)
    assert_usage_error((code, "", err), "No space left on device; the previous checkpoint, ")
    assert "step-00000020, is intact" in err and "cannot write checkpoint" in err
    names = os.listdir(run_dir / "checkpoints")
    assert not [n for n in names if ".tmp-" in n], names   # the half-written copy is gone
    assert checkpoint.latest(str(run_dir)).endswith("step-00000020")
    monkeypatch.undo()
    code, out, err = cli(capsys, "train", "--resume", run_dir)
    assert code == 0 and "resuming DQN on CartPole-v1 at step 20" in out, err


@pytest.mark.skipif(os.geteuid() != 0 or not sys.platform.startswith("linux"), reason="mounting needs root on Linux")
def test_a_really_full_disk(tmp_path, capsys):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow a tmpfs mount")
    try:
        code, _, err = cli(capsys, "train", *TINY, "--steps", 200, "--replay-capacity", 3000,
                           "--checkpoint-interval", 20, "--logdir", mount / "run")
        assert_usage_error((code, "", err), "No space left on device")
        assert "is intact" in err or "no earlier checkpoint exists" in err
        latest = checkpoint.latest(str(mount / "run"))
        if latest:
            checkpoint.load_state(latest)   # complete and readable
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_output_paths_are_checked_before_the_work(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from rawdqn import verify
    monkeypatch.setattr(verify, "verify", lambda *a, **k: pytest.fail("verify trained before checking --plot"))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_usage_error(cli(capsys, "verify", "--plot", blocker / "out.png"), f"{blocker} is not a folder")
    assert_usage_error(cli(capsys, "verify", "--plot", tmp_path / "nowhere" / "out.png"), "does not exist")
    assert_usage_error(cli(capsys, "verify", "--plot", tmp_path / "out.xyz"), "--plot must end in ")
    (tmp_path / "folder.png").mkdir()
    assert_usage_error(cli(capsys, "verify", "--plot", tmp_path / "folder.png"), "is a directory")
    from rawdqn import policy
    monkeypatch.setattr(policy, "load", lambda *a: pytest.fail("watch loaded and rendered before checking --out"))
    assert_usage_error(cli(capsys, "watch", tmp_path, "--out", tmp_path / "nowhere" / "run.gif"), "does not exist")
    assert_usage_error(cli(capsys, "plot", tmp_path, "--out", tmp_path / "curve.xyz"), "--out must end in")


def test_compilation_is_kept_out_of_steps_per_second(monkeypatch):
    """A fake clock: every first call of a kernel (a compile) takes 100 s, every other reading 1 ms."""
    from rawdqn import train
    from rawdqn.engine import kernel
    now = [0.0]

    def clock():
        now[0] += 1e-3
        return now[0]

    direct_call = kernel.direct_call

    def slow_first_call(concrete):   # made once per kernel and input signature
        now[0] += 100.0
        return direct_call(concrete)
    monkeypatch.setattr(kernel.time, "perf_counter", clock)
    monkeypatch.setattr(train.time, "perf_counter", clock)
    monkeypatch.setattr(kernel, "direct_call", slow_first_call)
    config = DQNConfig(total_steps=100, hidden=(8,), batch_size=8, replay_capacity=100, learning_starts=20,
                       train_frequency=4, target_update_interval=10, eval_episodes=1, log_interval=50,
                       mode="function")
    before = kernel.compile_seconds()
    result = train.train("CartPole-v1", config, seed=0, log=lambda _: None)
    rates = [row["steps_per_second"] for row in result.history if "steps_per_second" in row]
    assert kernel.compile_seconds() - before >= 300   # act, replay.add, train, sync: each compiled once
    # Without the compiles set aside, 50 steps over > 100 s would read < 0.5 steps/s.
    assert all(rate > 50 for rate in rates), rates


def test_bench_help_speaks_of_what_it_does():
    from bench.cli import add_arguments
    from rawdqn.cli import ArgumentParser
    parser = ArgumentParser(prog="python -m bench")
    add_arguments(parser)
    text = parser.format_help()
    assert "issue" not in text.lower()
    assert "Keras" in text


def test_named_presets_and_their_refusals(tmp_path, capsys):
    from rawdqn.config import DOPAMINE, NATURE, preset
    assert preset("ALE/Pong-v5") == NATURE and preset("CartPole-v1", name="dopamine") == DOPAMINE
    # Dopamine's differences from the Nature DQN, as its dqn.gin gives them.
    assert (DOPAMINE.optimizer_epsilon, DOPAMINE.target_update_interval, DOPAMINE.sticky_actions,
            DOPAMINE.noop_max, DOPAMINE.epsilon_end, DOPAMINE.exploration_steps) == (1e-5, 8_000, 0.25, 0, 0.01, 250_000)
    assert_usage_error(cli(capsys, "train", "--env", "CartPole-v1", "--preset", "nature", "--on-device"),
                       "--preset starts a new gymnasium run")
    code, _, err = cli(capsys, "train", "--preset", "rainbow-v2")
    assert code == 2 and "invalid choice: 'rainbow-v2'" in err
    # Rainbow's settings as Hessel et al. 2018 give them; Dopamine's Rainbow holds β at 0.5.
    from rawdqn.config import DOPAMINE_RAINBOW, RAINBOW
    assert (RAINBOW.dueling, RAINBOW.noisy, RAINBOW.distributional, RAINBOW.double_q, RAINBOW.prioritized,
            RAINBOW.n_step, RAINBOW.priority_exponent, RAINBOW.importance_exponent_start, RAINBOW.learning_rate,
            RAINBOW.optimizer_epsilon, RAINBOW.target_update_interval, RAINBOW.learning_starts) == (
        True, True, True, True, True, 3, 0.5, 0.4, 6.25e-5, 1.5e-4, 8_000, 20_000)
    assert (DOPAMINE_RAINBOW.dueling, DOPAMINE_RAINBOW.noisy, DOPAMINE_RAINBOW.double_q,
            DOPAMINE_RAINBOW.importance_exponent_start, DOPAMINE_RAINBOW.importance_exponent_end,
            DOPAMINE_RAINBOW.sticky_actions) == (False, False, False, 0.5, 0.5, 0.25)


def test_optimizer_epsilon_reaches_the_optimizer_and_sgd_has_none():
    agent = DQN(4, 2, DQNConfig(optimizer="rmsprop_centered", optimizer_epsilon=1e-5, hidden=(4,)))
    assert agent.optimizer.epsilon == 1e-5
    assert DQN(4, 2, DQNConfig(optimizer="rmsprop_centered", hidden=(4,))).optimizer.epsilon == 0.01
    with pytest.raises(ValueError, match="optimizer_epsilon must be > 0, for adam or rmsprop"):
        DQNConfig(optimizer="sgd", optimizer_epsilon=1e-5).validate()


def test_none_on_the_command_line_clears_a_presets_value():
    # `--sticky-actions none` must undo dopamine's 0.25, not be taken for a flag not given.
    from rawdqn.cli import build_parser
    from rawdqn.commands.train import config_from_args
    args = build_parser().parse_args(["train", "--env", "ALE/Pong-v5", "--preset", "dopamine", "--sticky-actions",
                                      "none", "--optimizer-epsilon", "none", "--reward-clip", "none"])
    config = config_from_args(args)
    assert (config.sticky_actions, config.optimizer_epsilon, config.reward_clip) == (None, None, None)
    untouched = config_from_args(build_parser().parse_args(["train", "--env", "ALE/Pong-v5", "--preset", "dopamine"]))
    assert (untouched.sticky_actions, untouched.optimizer_epsilon, untouched.reward_clip) == (0.25, 1e-5, 1.0)
