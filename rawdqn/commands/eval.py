"""`rawdqn eval RUN [--episodes N]`: greedy evaluation of a checkpoint, mean ± std return."""


def add_command(commands):
    parser = commands.add_parser("eval", help="evaluate a checkpoint's greedy policy",
                                 description="Run the greedy policy of a run's latest checkpoint "
                                             "(or of one checkpoint directory) and print its mean ± std return.")
    parser.add_argument("path", metavar="RUN", help="a run directory (--logdir of rawdqn train) or a checkpoint")
    parser.add_argument("--episodes", type=int, default=10, help="greedy episodes (default: 10)")
    parser.add_argument("--seed", type=int, default=None,
                        help="environment seed (default: the run's seed + 10000, as training's evaluations)")
    parser.set_defaults(run=run)


def run(args):
    from rawdqn import policy
    from rawdqn.errors import UsageError
    from rawdqn.train import SELECTION_EVAL_SEED, EnvSpec, evaluate
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1; got {args.episodes}")
    greedy, state = policy.load(args.path)
    seed = state["seed"] + SELECTION_EVAL_SEED if args.seed is None else args.seed
    mean, std = evaluate(greedy, state["env_id"], args.episodes, seed, EnvSpec(**state["spec"]))
    print(f"{state['env_id']} at step {state['step']:,}: mean return {mean:.2f} ± {std:.2f} "
          f"over {args.episodes} greedy episodes (seed {seed})", flush=True)
    return 0
