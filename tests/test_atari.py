"""Atari through rawdqn: the preprocessed frames against raw ALE screens, and a Pong smoke run.
Needs the `atari` extra (ale-py, which ships the ROMs, and OpenCV); skips without it."""
import json

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ale_py", reason='Atari is an extra: pip install "rawdqn[atari]"')
cv2 = pytest.importorskip("cv2", reason='Atari is an extra: pip install "rawdqn[atari]"')

from rawdqn.config import preset   # noqa: E402
from rawdqn.gym_env import ATARI_PREPROCESSING, env_options, make_env   # noqa: E402
from cli_helpers import cli   # noqa: E402

def test_each_frame_is_the_max_of_the_last_two_raw_screens_resized_to_84x84():
    """Independently of gymnasium's wrapper: a twin raw emulator (frameskip 1) restored to the
    same state, RNG included (sticky actions draw from it), plays each action 4 times; the
    frame rawdqn sees is cv2.resize(max(screen_3, screen_4), 84×84, INTER_AREA) in grayscale."""
    ours = make_env("ALE/Pong-v5")
    ours.reset(seed=1)
    twin = gym.make("ALE/Pong-v5", frameskip=1)
    twin.reset(seed=5)
    emulator, twin_emulator = ours.unwrapped.ale, twin.unwrapped.ale
    rng = np.random.default_rng(0)
    skip = ATARI_PREPROCESSING["frame_skip"]
    for _ in range(120):
        twin_emulator.restoreState(emulator.cloneState(include_rng=True))
        action = int(rng.integers(ours.action_space.n))
        frame, _, terminated, truncated, _ = ours.step(action)
        screens = []
        for _ in range(skip):
            twin.step(action)
            screens.append(twin_emulator.getScreenGrayscale())
        expected = cv2.resize(np.maximum(screens[-2], screens[-1]), (84, 84), interpolation=cv2.INTER_AREA)
        assert frame.shape == (84, 84) and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, expected)
        assert not (terminated or truncated)


@pytest.mark.parametrize("name, sticky, noops", [("nature", 0.0, 30), ("dopamine", 0.25, 0)])
def test_the_presets_reach_the_emulator(name, sticky, noops):
    env = make_env("ALE/Breakout-v5", **env_options("ALE/Breakout-v5", preset("ALE/Breakout-v5", name=name)))
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(sticky)
    assert env.noop_max == noops


def test_a_pong_smoke_run_trains_evaluates_and_records_the_nature_network(tmp_path, capsys):
    # ALE ids start from the Nature DQN's preset; only its sizes are cut down here.
    code, out, err = cli(capsys, "train", "--env", "ALE/Pong-v5", "--steps", 1_200, "--learning-starts", 800,
                         "--replay-capacity", 2_000, "--eval-episodes", 1, "--logdir", tmp_path / "run")
    assert code == 0, err
    assert "training DQN on ALE/Pong-v5" in out and "evaluation: mean return" in out
    returns = [json.loads(line)["return"] for line in open(tmp_path / "run" / "episodes.jsonl")]
    assert all(-21 <= value <= 21 for value in returns)   # unclipped scores: Pong's range
    with open(tmp_path / "run" / "config.json") as f:
        recorded = json.load(f)
    assert recorded["convs"] == [[32, 8, 4], [64, 4, 2], [64, 3, 1]] and recorded["history"] == 4
    assert recorded["optimizer"] == "rmsprop_centered" and recorded["eval_epsilon"] == 0.05
    assert recorded["sticky_actions"] == 0.0 and recorded["reward_clip"] == 1.0
