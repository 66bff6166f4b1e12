"""`rawdqn watch RUN --out run.gif|run.mp4`: film the greedy policy, no screen needed.

Frames come from the environment's `rgb_array` render mode (pygame for gymnasium's
classic-control and toy-text environments) and are written with imageio. Both are
optional: `pip install 'rawdqn[watch]'` (GIF) or `'rawdqn[mp4]'` (adds ffmpeg).
"""
import os
import warnings


def add_command(commands):
    parser = commands.add_parser("watch", help="render a checkpoint's greedy policy to a GIF or MP4",
                                 description="Play the greedy policy of a run's latest checkpoint and "
                                             "write the rendered frames to a .gif or .mp4 file.")
    parser.add_argument("path", metavar="RUN", help="a run directory (--logdir of rawdqn train) or a checkpoint")
    parser.add_argument("--out", required=True, help="output file, .gif or .mp4")
    parser.add_argument("--episodes", type=int, default=1, help="episodes to film (default: 1)")
    parser.add_argument("--max-steps", type=int, default=1_000, help="stop after this many frames (default: 1000)")
    parser.add_argument("--fps", type=int, default=30, help="frames per second (default: 30)")
    parser.add_argument("--seed", type=int, default=None, help="environment seed (default: the run's seed + 10000)")
    parser.set_defaults(run=run)


def run(args):
    import gymnasium as gym
    import numpy as np

    from rawdqn import policy
    from rawdqn.config import check_seed
    from rawdqn.errors import UsageError
    from rawdqn.outputs import check_output_file
    from rawdqn.evaluation import SELECTION_EVAL_SEED, make_eval_env, play_greedy
    from rawdqn.gym_env import EnvSpec
    check_output_file(args.out, "--out", {".gif", ".mp4"})  # before any frame is rendered
    kind = os.path.splitext(args.out)[1].lower()
    for name in ("episodes", "max_steps", "fps"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    writer = video_writer(kind)
    # pygame renders off-screen; without a display SDL would otherwise complain on stderr.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    greedy, state = policy.load(args.path)
    spec, config = EnvSpec.from_record(state["spec"]), greedy.config
    env = make_eval_env(state["env_id"], config.history, config.frame_pad, render_mode="rgb_array", config=config)
    seed = state["seed"] + SELECTION_EVAL_SEED if args.seed is None else check_seed(args.seed)
    frames = []

    def film():
        frames.append(env.render())
        return len(frames) < args.max_steps
    try:
        with warnings.catch_warnings():   # gymnasium's checker on MinAtar's float frames, converted below
            warnings.filterwarnings("ignore", ".*(RGB-array rendering should return|No render fps)", UserWarning)
            returns = play_greedy(greedy, env, args.episodes, seed, spec, after_step=film,
                                  epsilon=config.eval_epsilon)
    except (gym.error.DependencyNotInstalled, ImportError) as error:
        raise UsageError(f"rendering {state['env_id']} needs a package that is not installed "
                         f"({' '.join(str(error).split())[:120]}); pip install 'rawdqn[watch]'") from None
    finally:
        env.close()
    if frames[0] is None:
        raise UsageError(f"{state['env_id']} returned no rgb_array frame; it cannot be filmed")
    try:
        writer(args.out, np.stack([video_frame(frame) for frame in frames]), args.fps)
    except OSError as error:
        raise UsageError(f"cannot write {args.out}: {error.strerror or error}") from None
    print(f"wrote {len(frames)} frames of {state['env_id']} (step {state['step']:,}; "
          f"episode returns {', '.join(f'{r:g}' for r in returns)}) to {args.out}", flush=True)
    return 0


# A frame's shorter side in pixels at least: MinAtar's 10×10 grid is filmed 16× larger.
MIN_SIDE = 160


def video_frame(frame, min_side=MIN_SIDE):
    """An rgb_array frame as the uint8 [H, W, 3] image a video holds: floats (MinAtar's palette,
    in [0, 1]) scaled to 0–255, and a frame smaller than min_side enlarged by whole pixels."""
    import numpy as np
    frame = np.asarray(frame)
    if np.issubdtype(frame.dtype, np.floating):
        frame = np.rint(np.clip(frame, 0.0, 1.0) * 255.0)
    scale = -(-min_side // min(frame.shape[:2]))   # ceil; 1 for frames already large enough
    return frame.astype(np.uint8).repeat(scale, axis=0).repeat(scale, axis=1)


def video_writer(kind):
    """write(path, frames [T, H, W, 3] uint8, fps), or a UsageError naming the extra to install."""
    from rawdqn.errors import UsageError
    try:
        import imageio.v3 as iio
    except ImportError:
        raise UsageError("rawdqn watch needs imageio and pygame: pip install 'rawdqn[watch]'") from None
    if kind == ".gif":
        return lambda path, frames, fps: iio.imwrite(path, frames, extension=".gif",
                                                     duration=1000 / fps, loop=0)
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise UsageError("writing .mp4 needs imageio-ffmpeg: pip install 'rawdqn[mp4]' (or write a .gif)") from None
    return lambda path, frames, fps: iio.imwrite(path, frames, extension=".mp4", fps=fps,
                                                 codec="libx264", macro_block_size=1)
