"""Where one MinAtar learning step's time goes: the gymnasium loop's step taken apart.

    python bench/minatar_step.py [--game Breakout] [--rounds 15] [--block-ms 40]

`rawdqn train --env MinAtar/Breakout-v1` (the MinAtar preset: Young & Tian 2019's DQN, one
update per frame, batch 32) is set up as the loop runs it, its replay filled past
learning_starts by the loop itself; then each part of one step is timed alone, on the real
objects, the parts interleaved in blocks so that load on a shared machine falls on all of them:

    loop step      Trainer.advance: env step, the one compiled call, the loop's bookkeeping
    env            the gymnasium MinAtar env's step (host, NumPy)
    crossing       the step's frames and scalars into two tensors (PixelDQN.frame_inputs)
    store + act    the compiled call where no update is due (the `collect` program)
    env + call     the env step and the one compiled call of a learning step (store, sample,
                   update, act: the `step` program), on fresh steps, without the loop's bookkeeping
    sample         32 stacks drawn from the frame replay and assembled (compiled alone)
    act forward    Q(s) for the one stack acted on
    update         one learn on a fixed batch: target, forward, gradient, clip, optimizer step
    gradient       the same batch's target, forward and gradient alone (no clip, no step)
    sync           θ⁻ ← θ

and "the loop's bookkeeping" is loop step − (env + call); the call's own parts beyond sample,
update and act forward (packing, dispatch, the store, the schedule) are env + call − env −
crossing − sample − update − act forward. FLOPs per part from the shapes (a multiply-add is 2; bench/conv.py's update_flops).
"""
import argparse
import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import time_interleaved   # noqa: E402
from versions import cpu_info   # noqa: E402

import tensorflow as tf   # noqa: E402

from rawdqn.algorithms import dqn   # noqa: E402
from rawdqn.presets import preset   # noqa: E402
from rawdqn.train import Trainer   # noqa: E402


def forward_flops(frame, channels, convs, hidden, actions, batch):
    """2 × the multiply-adds of one forward pass of `batch` stacks through the conv network."""
    height, width, depth = frame[0], frame[1], channels
    flops = 0
    for filters, size, stride in convs:
        height, width = (height - size) // stride + 1, (width - size) // stride + 1
        flops += 2 * batch * height * width * size * size * depth * filters
        depth = filters
    sizes = (height * width * depth, *hidden, actions)
    return flops + sum(2 * batch * a * b for a, b in zip(sizes[:-1], sizes[1:]))


def filled_trainer(env_id, config):
    """The loop's Trainer, its replay filled past learning_starts by the loop itself."""
    trainer = Trainer(env_id, config, seed=0, log=lambda line: None)
    trainer.begin()
    while trainer.step < config.learning_starts + 100:
        trainer.advance()
    return trainer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block-ms", type=float, default=40.0)
    args = parser.parse_args(argv)
    env_id = f"MinAtar/{args.game}-v1"
    config = preset(env_id).replace(eval_interval=0, log_interval=10**9, total_steps=10**7)
    trainer, parts = filled_trainer(env_id, config), filled_trainer(env_id, config)
    # The parts are timed on a second trainer: calling them alone (the same inputs again and
    # again, updates on one batch) must not change the state the loop's rows run on.
    agent = parts.agent
    step = dataclasses.replace(parts.envs.step(parts.actions), terminated=np.zeros(1, bool), truncated=np.zeros(1, bool))
    inputs = agent.frame_inputs(step)
    batch = agent.sample_fn()   # traced eagerly once: the fixed batch of the update rows
    sample = tf.function(agent.sample_fn, jit_compile=True, autograph=False)
    stack = agent.current_obs.read_value()
    mode = config.mode == "xla"

    features = batch._replace(obs=agent.features(batch.obs), next_obs=agent.features(batch.next_obs))

    @tf.function(jit_compile=mode, autograph=False)
    def gradient():   # dqn.update's target, loss and gradient, without the clip and the step
        params, target_params = agent.online.theta.read_value(), agent.target.theta.read_value()
        y = dqn.target(config, agent.online, params, target_params, features)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(params)
            loss = dqn.loss(config, agent.online, params, features, y)[0]
        return tape.gradient(loss, params)

    rng = np.random.default_rng(0)
    acting = {"actions": trainer.actions}

    def env_and_call():   # the loop's two calls, on fresh steps, without its bookkeeping
        acting["actions"] = trainer.agent.observe(trainer.envs.step(acting["actions"])).numpy()
        return acting["actions"]
    calls = {
        "loop step": trainer.advance,
        "env + call": env_and_call,
        "env": lambda: parts.envs.step(rng.integers(agent.num_actions, size=config.num_envs)),
        "crossing": lambda: agent.frame_inputs(step),
        "store + act": lambda: agent._call_on_device(agent._collect, *inputs),
        "sample": sample,
        "act forward": lambda: agent._q_values(stack),
        "update": lambda: agent._learn(batch)[0],
        "gradient": gradient,
        "sync": lambda: agent._sync(tf.constant(1.0, agent.dtype)),
    }
    model, vector = cpu_info()
    print(f"rawdqn bench/minatar_step.py: {env_id}, {model} ({vector}), load {os.getloadavg()[0]:.2f}, "
          f"mode {config.mode}, batch {config.batch_size}, {args.rounds} rounds of {args.block_ms:g} ms blocks")
    times = time_interleaved(calls, repeats=args.rounds, block_seconds=args.block_ms / 1000)
    frame = agent.frame_shape[:2]
    channels = agent.input_shape[-1]
    network = (frame, channels, config.convs, config.hidden, agent.num_actions)
    forward_batch = forward_flops(*network, config.batch_size)
    first_conv = forward_flops(frame, channels, config.convs[:1], (), 0, config.batch_size)
    # target F, online F, kernel gradients F, input gradients F − conv 1 (bench/conv.py's count)
    flops = {"act forward": forward_flops(*network, 1), "gradient": 4 * forward_batch - first_conv,
             "update": 4 * forward_batch - first_conv}
    flops["env + call"] = flops["loop step"] = flops["update"] + flops["act forward"]
    median = {name: times[name]["median_s"] for name in calls}
    print(f"\n{'part':<14} | {'µs median':>10} | {'share of a loop step':>20} | {'MFLOP':>7} | GFLOP/s")
    for name in calls:
        share = median[name] / median["loop step"]
        work = flops.get(name, 0) / 1e6
        rate = f"{flops[name] / median[name] / 1e9:7.2f}" if name in flops else ""
        print(f"{name:<14} | {median[name] * 1e6:10.1f} | {share:19.0%} | {work:7.2f} | {rate}")
    derived = {"bookkeeping": median["loop step"] - median["env + call"],
               "call's rest": median["env + call"] - sum(median[name] for name in
                                                         ("env", "crossing", "sample", "update", "act forward"))}
    for name, seconds in derived.items():
        print(f"{name:<14} | {seconds * 1e6:10.1f} | {seconds / median['loop step']:19.0%} |")
    print(f"\n{1 / median['loop step']:,.0f} loop steps/s while learning (one update per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
