"""Cuts a new user met: counts past the int64 counters, Ape-X without --prioritized, and the
TensorBoard of an on-device run."""
import json

from cli_helpers import assert_usage_error, cli
from rawdqn import summary
from rawdqn.config import COUNT_LIMIT, DQNConfig


def test_a_count_the_int64_counters_cannot_hold_is_a_one_line_error(capsys):
    assert_usage_error(cli(capsys, "train", "--steps", "1e30"), "--steps must be at most 2⁶²")
    assert_usage_error(cli(capsys, "train", "--steps", 1000, "--target-update-interval", str(2 ** 63)),
                       "--target-update-interval must be at most 2⁶²")
    DQNConfig(total_steps=COUNT_LIMIT, exploration_steps=10).validate()   # the limit itself is fine


def test_distributed_turns_on_prioritized_replay_and_allows_the_ablation(capsys, monkeypatch):
    from rawdqn.distributed import apex
    seen = []
    monkeypatch.setattr(apex, "train", lambda env_id, config, **kwargs: seen.append(config.prioritized))
    assert cli(capsys, "train", "--distributed", "--steps", 100)[0] == 0
    assert cli(capsys, "train", "--distributed", "--no-prioritized", "--steps", 100)[0] == 0
    assert seen == [True, False]


def test_an_on_device_run_writes_an_event_per_episode_as_a_gymnasium_run_does(capsys, tmp_path):
    run_dir = tmp_path / "run"
    assert cli(capsys, "train", "--env", "CartPole-v1", "--on-device", "--num-envs", 4, "--steps", 1200,
               "--learning-starts", 100, "--hidden", 8, "--batch-size", 16, "--eval-interval", 0, "--no-keep-best",
               "--log-interval", 400, "--logdir", run_dir)[0] == 0
    episodes = [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) > 10
    scalars = summary.read_scalars(str(run_dir))
    assert sorted(scalars["episode/return"]) == sorted((row["step"], row["return"]) for row in episodes)
    assert sorted(scalars["episode/length"]) == sorted((row["step"], row["length"]) for row in episodes)


def test_actors_resume_an_ape_x_run_only(capsys, tmp_path):
    run_dir = tmp_path / "run"
    assert cli(capsys, "train", "--steps", 300, "--hidden", 8, "--learning-starts", 100, "--eval-interval", 0,
               "--no-keep-best", "--logdir", run_dir)[0] == 0
    assert_usage_error(cli(capsys, "train", "--resume", run_dir, "--steps", 600, "--actors", 3),
                       "--actors and --address resume an Ape-X run")
    assert_usage_error(cli(capsys, "train", "--actors", 3, "--steps", 100), "--actors needs --distributed")


def test_no_actors_is_a_one_line_error_before_ray_is_needed(capsys):
    assert_usage_error(cli(capsys, "train", "--distributed", "--actors", 0, "--steps", 100), "--actors must be >= 1")
