"""rawdqn's PQN beside CleanRL's `pqn.py` (torch) on CartPole-v1, the same settings, one interleaved run.

    python bench/pqn_peer.py --peer-script PATH [--peer-python PY] [--steps 500000] [--rounds 2]
                             [--sides cleanrl gymnasium on-device] [--seed 1]

PATH is CleanRL's cleanrl/pqn.py at commit PEER_COMMIT (Gallici et al. 2024's PQN as CleanRL
writes it: 4 envs × 128 steps, 4 epochs of 4 minibatches, RAdam 2.5e-4 decayed linearly, λ 0.65,
ε 1 → 0.05 over half the run, LayerNorm MLP 120-84), e.g.

    git clone https://github.com/vwxyzjn/cleanrl && git -C cleanrl checkout PEER_COMMIT
    python -m venv peer && peer/bin/pip install -r bench/requirements-peers.txt "gymnasium==0.29.1" "numpy<2"
    python bench/pqn_peer.py --peer-script cleanrl/cleanrl/pqn.py --peer-python peer/bin/python

The peer runs in its own interpreter (`--peer-python`): CleanRL pins gymnasium 0.29.1, whose vector
envs reset in the step that ends an episode (gymnasium 1.x resets one step later, which the script
does not expect). rawdqn runs `rawdqn train --algo pqn --env CartPole-v1` (its preset is CleanRL's
settings, rawdqn/presets.py: PQN_CLASSIC) on gymnasium's vector envs and on the device, without
the preset's periodic evaluations (CleanRL has none): `--eval-interval 0 --no-keep-best`.

Per run: env steps/s on the trainer's own clock (CleanRL's last "SPS:" line, global steps over the
time since its envs reset; rawdqn's "N steps in T s", which leaves out compiling on the device,
reported apart), env steps/s over the whole process (imports and start-up included), and the mean
return of the last 20 training episodes (both sides' ε-greedy episodes; rawdqn's greedy evaluation
on 10 fresh episodes is shown beside it). Rounds alternate the sides; medians over rounds, ratios
to the peer.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from versions import cpu_info   # noqa: E402

PEER_COMMIT = "1ed80620842b4cdeb1edc07e12825dff18091da9"   # the last commit to touch cleanrl/pqn.py
LAST_EPISODES = 20
SIDES = ("cleanrl", "gymnasium", "on-device")


def last_mean(returns):
    return statistics.fmean(returns[-LAST_EPISODES:]) if returns else float("nan")


def run_peer(python, script, steps, seed, workdir):
    started = time.perf_counter()
    out = subprocess.run([python, script, "--no-cuda", "--seed", str(seed), "--total-timesteps", str(steps)],
                         capture_output=True, text=True, cwd=workdir)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"bench/pqn_peer.py: the peer failed: {out.stderr.strip().splitlines()[-1:]}")
    rates = re.findall(r"^SPS: (\d+)", out.stdout, re.MULTILINE)
    returns = [float(r) for r in re.findall(r"episodic_return=\[([-0-9.]+)\]", out.stdout)]
    # CleanRL runs total_timesteps // (4 × 128) rollouts: the steps it took, not the ones asked for.
    steps_done = max(int(s) for s in re.findall(r"global_step=(\d+)", out.stdout))
    return {"rate": float(rates[-1]), "whole": steps_done / wall, "return": last_mean(returns),
            "greedy": float("nan"), "compile": float("nan")}


def run_rawdqn(on_device, steps, seed, workdir):
    logdir = os.path.join(workdir, f"rawdqn-{time.time_ns()}")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rawdqn", "train", "--algo", "pqn", "--env", "CartPole-v1",
                          *(["--on-device"] if on_device else []), "--steps", str(steps), "--seed", str(seed),
                          "--eval-interval", "0", "--no-keep-best", "--logdir", logdir],
                         capture_output=True, text=True)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"bench/pqn_peer.py: rawdqn failed: {out.stderr.strip().splitlines()[-1:]}")
    evaluation = re.search(r"evaluation: mean return ([-0-9.]+) .*\(([0-9,]+) steps in ([0-9.]+) s(?:; compile "
                           r"([0-9.]+) s)?\)", out.stdout)
    steps_done, seconds = int(evaluation.group(2).replace(",", "")), float(evaluation.group(3))
    with open(os.path.join(logdir, "episodes.jsonl")) as episodes:
        returns = [json.loads(line)["return"] for line in episodes]
    return {"rate": steps_done / seconds, "whole": steps_done / wall, "return": last_mean(returns),
            "greedy": float(evaluation.group(1)), "compile": float(evaluation.group(4) or "nan")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-script", help=f"CleanRL's cleanrl/pqn.py at {PEER_COMMIT[:7]}")
    parser.add_argument("--peer-python", default=sys.executable,
                        help="the interpreter with the peer's requirements (gymnasium 0.29.1, torch, tyro)")
    parser.add_argument("--steps", type=int, default=500_000, help="env steps per run (CleanRL's default)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES))
    parser.add_argument("--seed", type=int, default=1, help="CleanRL's default seed")
    args = parser.parse_args(argv)
    if "cleanrl" in args.sides and not (args.peer_script and os.path.isfile(args.peer_script)):
        parser.error("--peer-script must name CleanRL's cleanrl/pqn.py (or leave 'cleanrl' out of --sides)")
    if args.steps < 4 * 128 or args.rounds < 1:
        parser.error("--steps must hold one rollout (512 steps) and --rounds must be at least 1")
    model, vector = cpu_info()
    print(f"bench/pqn_peer.py: CartPole-v1, {args.steps:,} steps, seed {args.seed}, {model} ({vector}), "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    runs = {"cleanrl": lambda d: run_peer(args.peer_python, os.path.abspath(args.peer_script), args.steps,
                                          args.seed, d),
            "gymnasium": lambda d: run_rawdqn(False, args.steps, args.seed, d),
            "on-device": lambda d: run_rawdqn(True, args.steps, args.seed, d)}
    results = {side: [] for side in args.sides}
    with tempfile.TemporaryDirectory() as workdir:
        for round_number in range(args.rounds):
            for side in args.sides:
                results[side].append(runs[side](workdir))
                r = results[side][-1]
                print(f"round {round_number + 1} {side}: {r['rate']:,.0f} steps/s training, {r['whole']:,.0f} "
                      f"over the process, last {LAST_EPISODES} returns {r['return']:.1f}, greedy {r['greedy']:.1f}, "
                      f"compile {r['compile']:.1f} s", flush=True)
    print(f"\nmedians of {args.rounds} rounds; ratios to {args.sides[0]} round by round, then their median")
    print(f"{'side':>10} | {'steps/s training':>16} | {'ratio':>5} | {'steps/s process':>15} | {'ratio':>5} | "
          f"last {LAST_EPISODES} returns | greedy (10 eps) | compile s")
    first = results[args.sides[0]]
    for side in args.sides:
        ratio = {key: statistics.median(r[key] / f[key] for r, f in zip(results[side], first))
                 for key in ("rate", "whole")}
        returns, greedy = (", ".join(format(r[key], ".1f") for r in results[side]) for key in ("return", "greedy"))
        print(f"{side:>10} | {statistics.median(r['rate'] for r in results[side]):16,.0f} | {ratio['rate']:5.2f} | "
              f"{statistics.median(r['whole'] for r in results[side]):15,.0f} | {ratio['whole']:5.2f} | "
              f"{returns:>15} | {greedy:>15} | {statistics.median(r['compile'] for r in results[side]):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
