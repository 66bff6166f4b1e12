"""`rawdqn eval RUN [--episodes N]`: greedy evaluation of a checkpoint, mean ± std return."""


DEFAULT_EPISODES = 10  # for a checkpoint written before training's final evaluation


def add_command(commands):
    parser = commands.add_parser("eval", help="evaluate a checkpoint's greedy policy",
                                 description="Run the greedy policy of a run's latest checkpoint "
                                             "(or of one checkpoint directory) and print its mean ± std return.")
    parser.add_argument("path", metavar="RUN", help="a run directory (--logdir of rawdqn train) or a checkpoint")
    parser.add_argument("--episodes", type=int, default=None,
                        help="greedy episodes (default: as many as training's final evaluation)")
    parser.add_argument("--seed", type=int, default=None,
                        help="environment seed (default: the seed of training's final evaluation, so a "
                             "finished run prints the number training printed)")
    parser.set_defaults(run=run)


def run(args):
    from rawdqn import policy
    from rawdqn.config import check_seed
    from rawdqn.errors import UsageError
    from rawdqn.evaluation import SELECTION_EVAL_SEED, evaluate
    from rawdqn.gym_env import EnvSpec
    if args.episodes is not None and args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1; got {args.episodes}")
    greedy, state = policy.load(args.path)
    final = state.get("final_evaluation") or {}
    seed = final.get("seed", state["seed"] + SELECTION_EVAL_SEED) if args.seed is None else check_seed(args.seed)
    episodes = args.episodes or final.get("episodes", DEFAULT_EPISODES)
    mean, std = evaluate(greedy, state["env_id"], episodes, seed, EnvSpec.from_record(state["spec"]),
                         config=greedy.config)
    print(f"{state['env_id']} at step {state['step']:,}: mean return {mean:.2f} ± {std:.2f} "
          f"over {episodes} {greedy.config.describe_evaluation()} episodes (seed {seed})", flush=True)
    return 0
