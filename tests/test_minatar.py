"""MinAtar (Young & Tian 2019) through rawdqn: its envs' state saved exactly, a run resumed
bit for bit, and the CLI on the paper's preset. Needs the `minatar` extra; skips without it."""
import json

import numpy as np
import pytest

pytest.importorskip("minatar", reason='MinAtar is an extra: pip install "rawdqn[minatar]"')

from rawdqn import checkpoint, train as training   # noqa: E402
from rawdqn.config import preset   # noqa: E402
from rawdqn.gym_env import make_env   # noqa: E402
from cli_helpers import cli   # noqa: E402

GAMES = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")


@pytest.mark.parametrize("game", GAMES)
def test_a_saved_minatar_env_plays_on_exactly_as_the_original(game):
    original = make_env(f"MinAtar/{game}-v0")
    original.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(60):
        if original.step(int(rng.integers(6)))[2]:
            original.reset()
    saved = json.loads(json.dumps(checkpoint.env_state(original)))   # through JSON, as a checkpoint holds it
    assert saved["not_saved"] == []
    copy = make_env(f"MinAtar/{game}-v0")
    copy.reset(seed=99)
    checkpoint.set_env_state(copy, saved)
    assert copy.unwrapped.game.random is copy.unwrapped.game.env.random   # still one shared RandomState
    for _ in range(300):   # sticky actions and spawns draw from that RandomState
        action = int(rng.integers(6))
        ours, theirs = original.step(action), copy.step(action)
        np.testing.assert_array_equal(ours[0], theirs[0])
        assert ours[1:3] == theirs[1:3]
        if ours[2]:
            original.reset(), copy.reset()


SHORT = dict(total_steps=600, learning_starts=200, replay_capacity=2_000, exploration_steps=400,
             target_update_interval=100, eval_episodes=2)


def test_a_minatar_run_resumes_bit_for_bit(tmp_path):
    config = preset("MinAtar/Breakout-v1").replace(**SHORT)
    whole = training.train("MinAtar/Breakout-v1", config, seed=1, log=lambda *a: None)
    run_dir = str(tmp_path / "run")
    training.train("MinAtar/Breakout-v1", config.replace(total_steps=300), seed=1, log=lambda *a: None,
                   logdir=run_dir)
    resumed = training.resume(run_dir, log=lambda *a: None, total_steps=600)
    np.testing.assert_array_equal(whole.agent.online.theta.numpy(), resumed.agent.online.theta.numpy())
    np.testing.assert_array_equal(whole.agent.replay.frames.numpy(), resumed.agent.replay.frames.numpy())
    assert whole.episode_returns == resumed.episode_returns


def test_train_on_minatar_from_the_command_line(tmp_path, capsys):
    code, out, err = cli(capsys, "train", "--env", "MinAtar/Breakout-v1", "--steps", 400, "--learning-starts", 200,
                         "--replay-capacity", 1000, "--eval-episodes", 2, "--logdir", tmp_path / "run")
    assert code == 0, err
    assert "training DQN on MinAtar/Breakout-v1" in out and "evaluation: mean return" in out
    with open(tmp_path / "run" / "config.json") as f:
        recorded = json.load(f)
    assert recorded["convs"] == [[16, 3, 1]] and recorded["optimizer"] == "rmsprop_centered_torch"


def test_watch_films_a_minatar_run_in_its_palette_enlarged(tmp_path, capsys):
    """MinAtar renders a 10×10 float image in [0, 1]: the film is uint8 frames 16× larger, each
    cell one colour, the palette's colours at 0–255."""
    iio = pytest.importorskip("imageio.v3", reason='rawdqn watch is an extra: pip install "rawdqn[watch]"')
    code, out, err = cli(capsys, "train", "--env", "MinAtar/Breakout-v1", "--steps", 300, "--learning-starts", 100,
                         "--replay-capacity", 500, "--eval-episodes", 1, "--logdir", tmp_path / "run")
    assert code == 0, err
    code, out, err = cli(capsys, "watch", tmp_path / "run", "--out", tmp_path / "run.gif", "--max-steps", 12)
    assert code == 0, err
    frames = iio.imread(tmp_path / "run.gif")
    assert frames.shape[1:] == (160, 160, 3) and frames.dtype == np.uint8 and 2 <= len(frames) <= 12
    cells = frames[0].reshape(10, 16, 10, 16, 3)
    assert (cells == cells[:, :1, :, :1]).all()   # whole cells, no blur across them
    env = make_env("MinAtar/Breakout-v1", render_mode="rgb_array")
    env.reset(seed=0)
    palette = {tuple(np.rint(255 * colour)) for colour in env.render().reshape(-1, 3)}
    assert (0.0, 0.0, 0.0) in palette and len(palette) >= 3 and frames[0].std() > 0
    env.close()


def test_sticky_actions_reach_the_minatar_game():
    from rawdqn.gym_env import env_options
    for sticky in (0.0, 0.3):
        config = preset("MinAtar/Breakout-v1").replace(sticky_actions=sticky)
        env = make_env("MinAtar/Breakout-v1", **env_options("MinAtar/Breakout-v1", config))
        assert env.unwrapped.game.sticky_action_prob == sticky
    assert make_env("MinAtar/Breakout-v1").unwrapped.game.sticky_action_prob == 0.1   # the paper's, by default


def test_minatar_frames_reach_the_network_unscaled():
    from rawdqn.gym_env import env_spec
    env = make_env("MinAtar/Breakout-v1")
    assert env_spec(env, {}).frame_max == 1.0
