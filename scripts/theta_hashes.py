"""Hashes of every variable a fixed set of short training runs ends with: a refactor that
changes nothing gives the same hashes before and after.

    python scripts/theta_hashes.py [--only NAME,...] [--source DIR] [--out FILE] [--extra FLAGS]

Each run is `python -m rawdqn train … --logdir TMP/NAME` in a fresh process (with --source,
the rawdqn package of another checkout, e.g. a `git worktree` of the commit before); its
newest checkpoint's tensors are hashed, sorted by name, and θ of the online network alone.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

RUNS = {
    "cartpole": "--env CartPole-v1 --steps 3000",
    "cartpole-4envs": "--env CartPole-v1 --num-envs 4 --steps 4000",
    "cartpole-float64": "--env CartPole-v1 --steps 3000 --dtype float64",
    "cartpole-hybrid": "--env CartPole-v1 --steps 3000 --mode hybrid",
    "acrobot": "--env Acrobot-v1 --steps 3000",
    "rainbow": "--env CartPole-v1 --preset rainbow --steps 3000",
    "rainbow-six": "--env CartPole-v1 --preset rainbow --noisy --distributional --prioritized --atoms 51 "
                   "--v-min 0 --v-max 200 --steps 3000",
    "acrobot-centered-rmsprop": "--env Acrobot-v1 --steps 3000 --optimizer rmsprop_centered",
    "minatar-rainbow": "--env MinAtar/Breakout-v1 --steps 2500 --learning-starts 1000 --replay-capacity 5000 "
                       "--noisy --distributional --prioritized --dueling --double-q --n-step 3",
    "minatar": "--env MinAtar/Breakout-v1 --steps 2500 --learning-starts 1000 --replay-capacity 5000",
    "reinforce": "--env CartPole-v1 --algo reinforce --steps 3000",
    "a2c": "--env CartPole-v1 --algo a2c --steps 3000",
    "reinforce-baseline": "--env CartPole-v1 --algo reinforce --baseline --score-discounting --steps 3000",
    "a2c-acrobot-entropy": "--env Acrobot-v1 --algo a2c --entropy-coef 0.01 --normalize-advantages --steps 3000",
    "ondevice-dqn": "--env CartPole-v1 --on-device --steps 4000",
    "ondevice-a2c": "--env CartPole-v1 --on-device --algo a2c --steps 4000",
    "pqn": "--env CartPole-v1 --algo pqn --steps 4000",
    "ondevice-pqn": "--env CartPole-v1 --on-device --algo pqn --steps 4000",
    "minatar-pqn": "--env MinAtar/Breakout-v1 --algo pqn --steps 8192",
    # Ape-X's learner fed a fixed stream of shipments (no Ray, no actors): τ = 1 and a Polyak τ.
    "apex-learner": "apex-learner 1.0",
    "apex-learner-polyak": "apex-learner 0.3",
}


class Stub:
    """What ApexRun.store and learn_owed touch of a run directory: nothing is written."""

    def write_summary(self, *args, **kwargs):
        pass


def apex_learner(tau):
    """Variables' hashes of an Ape-X learner (ApexRun's store and learn_owed, the learner's own
    code) after 40 shipments of seeded random n-step windows with errors."""
    import hashlib
    import numpy as np
    from rawdqn.agent import DQN
    from rawdqn.config import DQNConfig
    from rawdqn.distributed.apex import ApexRun
    config = DQNConfig(hidden=(32, 32), prioritized=True, n_step=3, batch_size=32, replay_capacity=4_000,
                       learning_starts=200, train_frequency=4, gradient_steps=1, target_update_interval=40,
                       weights_interval=50, tau=tau, total_steps=10_000)
    run = object.__new__(ApexRun)
    run.agent, run.config, run.step, run.directory, run.weights_version = (
        DQN(4, 2, config, seed=7, prebuilt_windows=True), config, 0, Stub(), 0)
    run.episode_returns, run.episode_lengths, run.episode_end_steps = [], [], []
    run.check_finite, run.publish = (lambda: None), (lambda: None)
    rng = np.random.default_rng(0)
    for _ in range(40):
        n = 60
        run.store({"obs": rng.normal(size=(n, 4)), "action": rng.integers(0, 2, n).astype(np.int32),
                   "reward": rng.normal(size=n), "next_obs": rng.normal(size=(n, 4)),
                   "terminated": (rng.random(n) < 0.1).astype(float), "discount": 0.99 ** rng.integers(1, 4, n),
                   "errors": rng.normal(size=n), "episodes": [], "steps": n, "version": 0, "actor": 0})
        run.learn_owed()
    everything = hashlib.sha256()
    for variable in sorted(run.agent.variables, key=lambda v: v.name):
        everything.update(variable.name.encode() + variable.numpy().tobytes())
    theta = hashlib.sha256(run.agent.online.theta.numpy().tobytes()).hexdigest()[:16]
    print(json.dumps({"all": everything.hexdigest()[:16], "theta": theta,
                      "last line": f"updates {int(run.agent.schedule.updates_done.numpy())}"}))


def checkpoint_hashes(run_dir):
    import tensorflow as tf
    checkpoints = os.path.join(run_dir, "checkpoints")
    with open(os.path.join(checkpoints, "latest")) as file:
        latest = os.path.join(checkpoints, file.read().strip(), "variables")
    reader = tf.train.load_checkpoint(latest)
    everything, theta = hashlib.sha256(), None
    for name in sorted(reader.get_variable_to_shape_map()):
        if name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH"):
            continue
        value = reader.get_tensor(name)
        data = value.tobytes() if hasattr(value, "tobytes") else bytes(str(value), "utf-8")
        everything.update(name.encode() + data)
        if "online" in name and "theta" in name and theta is None:
            theta = hashlib.sha256(data).hexdigest()[:16]
    return {"all": everything.hexdigest()[:16], "theta": theta}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated run names (default: all)")
    parser.add_argument("--source", default=None, help="a checkout whose rawdqn package runs")
    parser.add_argument("--out", default=None, help="write the hashes as JSON here")
    parser.add_argument("--extra", default="", help="flags added to every rawdqn train run, e.g. "
                                                    "'--conv-gradients forward' to hold a new default to the old form")
    parser.add_argument("--apex-learner", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.apex_learner is not None:
        return apex_learner(args.apex_learner)
    names = [name for name in args.only.split(",") if name] or list(RUNS)
    env = dict(os.environ)
    if args.source:
        env["PYTHONPATH"] = os.path.abspath(args.source)
    hashes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            run_dir = os.path.join(tmp, name)
            learner = RUNS[name].startswith("apex-learner")
            command = ([sys.executable, os.path.abspath(__file__), "--apex-learner", RUNS[name].split()[1]] if learner
                       else [sys.executable, "-m", "rawdqn", "train", *RUNS[name].split(), *args.extra.split(),
                             "--seed", "3", "--logdir", run_dir])
            done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp)
            if done.returncode:
                hashes[name] = {"error": done.stderr.strip().splitlines()[-1:]}
            elif learner:
                hashes[name] = json.loads(done.stdout.strip().splitlines()[-1])
            else:
                hashes[name] = checkpoint_hashes(run_dir)
                hashes[name]["last line"] = done.stdout.strip().splitlines()[-1]
            print(name, json.dumps(hashes[name]), flush=True)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(hashes, file, indent=1)


if __name__ == "__main__":
    main()
