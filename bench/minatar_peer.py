"""rawdqn's MinAtar DQN beside the MinAtar repository's own (`examples/dqn.py`, torch), on the same frames.

    python bench/minatar_peer.py --peer-script PATH [--game breakout] [--frames 25000] [--rounds 2]

PATH is the MinAtar repository's examples/dqn.py at commit PEER_COMMIT (Young & Tian 2019's DQN:
5,000 random frames, then one update of batch 32 per frame), e.g.

    git clone https://github.com/kenjyoung/MinAtar && git -C MinAtar checkout PEER_COMMIT
    python bench/minatar_peer.py --peer-script MinAtar/examples/dqn.py

It needs torch and minatar (bench/requirements-peers.txt) and runs in a child process of its own
(torch and TensorFlow in one process crashed here). rawdqn runs `rawdqn train --env
MinAtar/GAME-v1`, the same game with the full action set, as the peer's Environment(GAME) has it.

Each side trains twice per round, for the replay's first 5,000 frames alone and for --frames:
the learning phase's frames/s is (frames − 5,000) / (t(frames) − t(5,000)) with t the trainer's
own clock (the peer's dqn() call; rawdqn's "N steps in T s"), and the whole process's frames/s
is frames / the child process's wall time (imports, compiling, everything). Rounds alternate
the two sides; medians over rounds, ratios rawdqn / peer.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from versions import cpu_info   # noqa: E402

PEER_COMMIT = "4241f24685622cfb52f843cab9bbcf385a53484a"
REPLAY_START = 5_000

# The child that runs the peer: its dqn() with NUM_FRAMES set, timed around the call.
PEER_CHILD = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("minatar_dqn", sys.argv[1])
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)
peer.NUM_FRAMES = int(sys.argv[3])
env = peer.Environment(sys.argv[2])
start = time.time()
peer.dqn(env, False, False, sys.argv[4])
print(f"PEER_SECONDS {time.time() - start}")
"""


def run_peer(script, game, frames, workdir):
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PEER_CHILD, script, game, str(frames),
                          os.path.join(workdir, f"peer-{frames}")], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    return float(re.search(r"PEER_SECONDS ([0-9.]+)", out.stdout).group(1)), wall


def rawdqn_game(game):
    """MinAtar's game name (space_invaders) as rawdqn's env id spells it (SpaceInvaders)."""
    return "".join(part.capitalize() for part in game.split("_"))


def run_rawdqn(game, frames, workdir):
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rawdqn", "train", "--env", f"MinAtar/{rawdqn_game(game)}-v1",
                          "--steps", str(frames), "--eval-episodes", "1", "--seed", "0",
                          "--logdir", os.path.join(workdir, f"rawdqn-{frames}-{time.time_ns()}")],
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    seconds = re.search(r"\(([0-9,]+) steps in ([0-9.]+) s\)", out.stdout)
    return float(seconds.group(2)), wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-script", required=True, help=f"the MinAtar repo's examples/dqn.py at {PEER_COMMIT[:7]}")
    parser.add_argument("--game", default="breakout", help="MinAtar's name: breakout, space_invaders, …")
    parser.add_argument("--frames", type=int, default=25_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.frames <= REPLAY_START:
        parser.error(f"--frames must exceed the replay's first {REPLAY_START:,} random frames")
    model, vector = cpu_info()
    print(f"bench/minatar_peer.py: {args.game}, {args.frames:,} frames ({REPLAY_START:,} random, then one update "
          f"each), {model} ({vector}), load {os.getloadavg()[0]:.2f}", flush=True)
    sides = {"MinAtar repo DQN (torch)": lambda n, d: run_peer(args.peer_script, args.game, n, d),
             "rawdqn": lambda n, d: run_rawdqn(args.game, n, d)}
    learning, whole = {side: [] for side in sides}, {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as workdir:
        for round_number in range(args.rounds):
            for side, run in sides.items():
                short, _ = run(REPLAY_START, workdir)
                full, wall = run(args.frames, workdir)
                learning[side].append((args.frames - REPLAY_START) / (full - short))
                whole[side].append(args.frames / wall)
                print(f"round {round_number + 1} {side}: learning phase {learning[side][-1]:,.0f} frames/s, "
                      f"whole process {whole[side][-1]:,.0f} frames/s", flush=True)
    peer, ours = sides
    for name, rates in (("learning phase", learning), ("whole process", whole)):
        ratios = [a / b for a, b in zip(rates[ours], rates[peer])]
        print(f"{name}: {ours} {statistics.median(rates[ours]):,.0f} frames/s, {peer} "
              f"{statistics.median(rates[peer]):,.0f} frames/s; ratio per round {', '.join(f'{r:.2f}' for r in ratios)}"
              f" (median {statistics.median(ratios):.2f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
