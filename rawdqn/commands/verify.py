"""`rawdqn verify --env FrozenLake-v1|CliffWalking-v1|Taxi-v4 [--learner L] [--lambda λ] [--steps N] [--seed S] [--plot out.png]`.

Computes Q* by value iteration on the environment's own model, trains tabular Q-learning,
a linear one-hot DQN and an MLP DQN for the same number of steps, and prints how close
each gets: max |Q − Q*|, greedy-policy agreement with Q*, and evaluation return.
--learner sarsa|expected-sarsa|q-lambda trains that learner, tabular and linear one-hot on
rawdqn's operators, against Q*_ε (SARSA, expected SARSA) or Q* (Watkins' Q(λ)).
"""
from rawdqn.errors import UsageError


def add_command(commands):
    from rawdqn.verify import DEFAULT_LAMBDA, DEFAULT_STEPS, DISCOUNTS, ENVS, LEARNERS
    defaults = ", ".join(f"{env}: γ={DISCOUNTS[env]}, {DEFAULT_STEPS[env]:,} steps" for env in ENVS)
    parser = commands.add_parser(
        "verify", help="measure tabular Q-learning and DQN against Q* from value iteration",
        description=f"Train tabular Q-learning and DQN (linear one-hot and MLP) and compare "
                    f"them with Q* computed by value iteration. Defaults: {defaults}.")
    parser.add_argument("--env", default="FrozenLake-v1",
                        help=f"a toy-text environment with a model: {', '.join(ENVS)} "
                             f"(default: FrozenLake-v1)")
    parser.add_argument("--learner", default="q-learning", choices=LEARNERS,
                        help="q-learning (default): tabular, linear DQN and MLP DQN against Q*; sarsa, "
                             "expected-sarsa: tabular and linear against Q*_ε, the ε-greedy backup's fixed "
                             "point at the schedule's final ε; q-lambda: Watkins' Q(λ) against Q*")
    parser.add_argument("--lambda", dest="lambda_", type=float, default=None,
                        help=f"λ of --learner q-lambda, in [0, 1] (default: {DEFAULT_LAMBDA})")
    parser.add_argument("--steps", type=int, default=None,
                        help="environment steps per learner (default: per environment, above)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every learner (default: 0)")
    parser.add_argument("--discount", type=float, default=None,
                        help="γ for Q* and every learner (default: per environment, above)")
    parser.add_argument("--plot", default=None, metavar="OUT.png",
                        help="also write a figure: error curves, Q vs Q*, greedy-policy maps")
    parser.set_defaults(run=run)


def run(args):
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: install rawdqn[plot] for plots") from None
        from rawdqn.outputs import check_output_file, figure_extensions
        check_output_file(args.plot, "--plot", figure_extensions())  # before the training, not after it
    if args.discount is not None and not 0.0 <= args.discount < 1.0:
        raise UsageError(f"--discount must be in [0, 1); got {args.discount}")
    from rawdqn import verify
    if args.lambda_ is not None and args.learner != "q-lambda":
        raise UsageError(f"--lambda is Q(λ)'s: add --learner q-lambda (got --learner {args.learner})")
    problem, learners = verify.verify(args.env, args.steps, args.seed, args.discount,
                                      log=lambda line: print(line, flush=True), learner=args.learner,
                                      lambda_=verify.DEFAULT_LAMBDA if args.lambda_ is None else args.lambda_)
    print(verify.format_table(problem, learners))
    if args.plot:
        from rawdqn.verify_plot import plot
        print(f"wrote {plot(problem, learners, args.plot)}")
    return 0
