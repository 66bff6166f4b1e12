"""`rawdqn train --env CartPole-v1 [...]` and `rawdqn train --resume RUN`.

Every DQNConfig field is also a flag (`learning_rate` → `--learning-rate`), so a
preset can be overridden one hyperparameter at a time.
"""
import argparse
import ast
import dataclasses
import inspect
import os
import signal
import sys
import typing
import warnings

from rawdqn.config import DQNConfig
from rawdqn.families import check_agent_options
from rawdqn.presets import DQN_HEADS, NAMED_PRESETS, preset


def parse_hidden(text):
    """'64,64' → (64, 64); '' or 'none' → () (a linear Q-function)."""
    text = text.strip()
    if text.lower() in ("", "()", "none", "linear"):
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden must be comma-separated widths like 64,64; got {text!r}")


def parse_convs(text):
    """'32x8/4,64x4/2,64x3/1' (filters × size / stride per layer) → ((32, 8, 4), …); 'none' → ()."""
    text = text.strip()
    if text.lower() in ("", "()", "none"):
        return ()
    try:
        layers = []
        for part in text.split(","):
            filters, rest = part.strip().split("x")
            size, stride = rest.split("/")
            layers.append((int(filters), int(size), int(stride)))
        return tuple(layers)
    except ValueError:
        raise argparse.ArgumentTypeError(f"convs must be FILTERSxSIZE/STRIDE layers like 32x8/4,64x4/2; got {text!r}")


def parse_quantile_samples(text):
    """N,N',K: IQN's levels for the loss, its target and acting, e.g. 64,64,32."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if len(counts) != 3 or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected three whole numbers >= 1, N,N',K like 64,64,32; got {text!r}")
    return counts


def parse_count(text):
    """A whole number, also written as 1e6 or 1_000_000 (how RL papers give step counts)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number; got {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number; got {text!r}")
    return int(value)


class ExplicitNone:
    """What `--max-grad-norm none` parses to: a flag set to None, unlike a flag not given (None)."""

    def __repr__(self):
        return "none"


EXPLICIT_NONE = ExplicitNone()


def parse_optional_count(text):
    return EXPLICIT_NONE if text.lower() in ("none", "off") else parse_count(text)


def parse_optional_float(text):
    if text.lower() in ("none", "off"):
        return EXPLICIT_NONE
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none'; got {text!r}")


def field_docs():
    """Each DQNConfig field's one-line docstring, read from the dataclass source."""
    body = ast.parse(inspect.getsource(DQNConfig)).body[0].body
    return {node.target.id: following.value.value
            for node, following in zip(body, body[1:])
            if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)}


def add_config_flags(parser, skip=("total_steps", "learning_rate_decay_from")):
    """One flag per DQNConfig field, default None (= keep the preset's value); not for the
    fields a resume sets (learning_rate_decay_from) or --steps sets."""
    group = parser.add_argument_group("hyperparameters (override the environment's preset)")
    docs = field_docs()
    hints = typing.get_type_hints(DQNConfig)
    for field in dataclasses.fields(DQNConfig):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        if field.name == "hidden":
            kind = parse_hidden
        elif field.name == "quantile_samples":
            kind = parse_quantile_samples
        elif field.name == "convs":
            kind = parse_convs
        elif kind == typing.Optional[float]:
            kind = parse_optional_float
        elif kind == typing.Optional[int]:
            kind = parse_optional_count
        elif kind is int:
            kind = parse_count
        if kind is bool:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                               default=None, help=docs.get(field.name))
        else:
            group.add_argument(flag, dest=field.name, type=kind, default=None,
                               help=docs.get(field.name), metavar=field.name.upper())


def config_from_args(args):
    """The environment's preset with every flag the user gave applied on top."""
    return preset(args.env, name=args.preset, algo=args.algo).replace(**config_changes(args)).validate()


def config_changes(args):
    """The DQNConfig fields the user set with flags (--steps sets total_steps)."""
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(DQNConfig)
               if getattr(args, f.name, None) is not None}
    changes = {name: None if value is EXPLICIT_NONE else value for name, value in changes.items()}
    if getattr(args, "steps", None) is not None:
        changes["total_steps"] = args.steps
    return changes


def add_command(commands):
    parser = commands.add_parser("train", help="train a DQN (or --algo reinforce|a2c|pqn) on a gymnasium environment",
                                 description="Train a DQN (or, with --algo, REINFORCE, A2C or PQN) with the "
                                             "environment's preset, then evaluate its greedy policy.")
    parser.add_argument("--env", default=None, help="gymnasium environment id (default: CartPole-v1)")
    parser.add_argument("--preset", default=None, choices=tuple(NAMED_PRESETS),
                        help="start from a named preset instead of the environment's: nature (Mnih et al. "
                             "2015), dopamine (Castro et al. 2018), minatar (Young & Tian 2019), rainbow "
                             "(Hessel et al. 2018), dopamine-rainbow (Dopamine's C51 + n-step + prioritized); "
                             "ALE ids default to nature")
    parser.add_argument("--steps", type=parse_count, default=None,
                        help="environment steps (default: the preset's total_steps)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed for weights, exploration, replay and environment (default: 0)")
    parser.add_argument("--logdir", default=None,
                        help="run directory for checkpoints, TensorBoard events, config.json, history.jsonl "
                             "and episodes.jsonl (default: runs/ENV-seedSEED-TIME)")
    parser.add_argument("--resume", metavar="RUN", default=None,
                        help="continue the run in RUN (its --logdir, or one checkpoint directory) "
                             "exactly where its last checkpoint left off")
    parser.add_argument("--checkpoint-interval", type=parse_count, default=None, metavar="STEPS",
                        help="environment steps between checkpoints (default: 10000, or the resumed "
                             "run's; one is also written at the end and on Ctrl-C or SIGTERM)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None,
                        help="where variables and kernels live (default: TensorFlow's choice)")
    parser.add_argument("--env-source", choices=("gymnasium", "envpool"), default=None,
                        help="who steps the --num-envs environments: gymnasium (default) or envpool "
                             "(pip install \"rawdqn[envpool]\"); evaluation plays gymnasium's")
    on_device = parser.add_argument_group("on-device training (the whole loop in one compiled program; "
                                          "see rawdqn/ondevice.py)")
    on_device.add_argument("--on-device", action="store_true",
                           help="train on rawdqn's TensorFlow version of the environment, with the "
                                "collect → replay → learn → sync loop compiled as one XLA program")
    on_device.add_argument("--seeds", type=int, default=None, metavar="S",
                           help="train S independent agents (seeds SEED … SEED+S−1) in the same program")
    on_device.add_argument("--seed-axis", choices=("unrolled", "batched"), default=None,
                           help="how the S agents run in the program: one after another (unrolled, the default) "
                                "or as one batch, each operation once for all S (batched; rawdqn/engine/seed_axis.py)")
    distributed = parser.add_argument_group("Ape-X across processes and machines (rawdqn/distributed/apex.py; "
                                            'pip install "rawdqn[distributed]")')
    distributed.add_argument("--distributed", action="store_true",
                             help="Ray actors step the envs; this process learns from their prioritized windows")
    distributed.add_argument("--actors", type=int, default=None, metavar="N", help="actors (default 2)")
    distributed.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                             help="join this Ray cluster (ray start --head …) instead of starting one here")
    add_config_flags(parser)
    parser.set_defaults(run=run)


def run(args):
    from rawdqn.errors import UsageError
    from rawdqn.device import resolve_device
    from rawdqn.gym_env import check_family_options
    from rawdqn.rundir import default_run_dir
    from rawdqn.train import TrainingInterrupted, resume, train
    log = lambda line: print(line, flush=True)  # noqa: E731
    # rawdqn stops on a NaN reward with its own one-line error; gymnasium's warning would be a second line.
    warnings.filterwarnings("ignore", message=r".*The reward is a NaN value")
    if args.checkpoint_interval is not None and args.checkpoint_interval < 1:
        raise UsageError(f"--checkpoint-interval must be >= 1; got {args.checkpoint_interval}")
    from rawdqn import ondevice
    if args.preset is not None and (args.on_device or args.resume):
        raise UsageError(f"--preset starts a new gymnasium run; {'--on-device has its own preset' if args.on_device else 'a resumed run keeps its settings'}")
    if args.env_source is not None and (args.on_device or args.resume):
        raise UsageError(f"--env-source {'and --on-device exclude each other' if args.on_device else 'is kept by the run --resume continues'}")
    if not args.distributed:
        for flag in ("actors", "address"):
            if getattr(args, flag) is not None and not args.resume:
                raise UsageError(f"--{flag} needs --distributed (or --resume of an Ape-X run)")
    elif args.on_device or args.resume or args.env_source == "envpool":
        raise UsageError("--distributed runs gymnasium envs in Ray actors, as a new run: drop "
                         + ("--on-device" if args.on_device else "--resume" if args.resume else "--env-source envpool"))
    if not args.on_device:
        for flag in ("iterations_per_call", "seeds", "seed_axis"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} needs --on-device")
    if args.algo in DQN_HEADS:   # --algo qr-dqn or iqn: DQN with that head
        for name, value in DQN_HEADS[args.algo].items():
            setattr(args, name, value)
        args.algo = "dqn"
    if not args.resume:   # the agent the flags configure: --algo's, or its named preset's
        named = NAMED_PRESETS.get(args.preset)
        check_agent_options(args.algo or (named.algo if named else "dqn"), config_changes(args), args.distributed)
    try:
        if args.resume:
            if args.logdir and os.path.abspath(args.logdir) != os.path.abspath(args.resume):
                raise UsageError("--resume continues writing into the run it resumes; drop --logdir")
            if os.path.isdir(args.resume) and ondevice.is_on_device_run(args.resume):
                changes = config_changes(args)
                steps = changes.pop("total_steps", None)
                other = [flag for flag, value in (("--env", args.env), ("--seed", args.seed), ("--seeds", args.seeds),
                                                  ("--actors", args.actors), ("--address", args.address))
                         if value is not None]
                other += ["--" + name.replace("_", "-") for name in changes]
                if other:
                    raise UsageError(f"an on-device run resumes with the settings compiled into its program; "
                                     f"only --steps may change (got {', '.join(other)})")
                ondevice.resume(args.resume, device=resolve_device(args.device), log=log, seed_axis=args.seed_axis,
                                checkpoint_interval=args.checkpoint_interval, total_steps=steps)
            else:
                resume(args.resume, device=args.device, log=log, checkpoint_interval=args.checkpoint_interval,
                       env_id=args.env, seed=args.seed, num_actors=args.actors, address=args.address,
                       **config_changes(args))
        elif args.distributed:
            from rawdqn.distributed import apex
            args.env = args.env or "CartPole-v1"
            check_family_options(args.env, config_changes(args))
            args.seed = 0 if args.seed is None else args.seed
            config = config_from_args(args)
            if "prioritized" not in config_changes(args):   # Ape-X is prioritized by definition
                config = config.replace(prioritized=True).validate()
            apex.train(args.env, config, seed=args.seed, device=args.device,
                       logdir=args.logdir or default_run_dir(args.env, args.seed, "apex"), log=log,
                       checkpoint_interval=args.checkpoint_interval, num_actors=2 if args.actors is None else args.actors,
                       address=args.address)
        elif args.on_device:
            changes = config_changes(args)
            check_family_options(args.env or "CartPole-v1", changes)
            ondevice.run_command(args, changes, log)
        else:
            args.env = args.env or "CartPole-v1"
            check_family_options(args.env, config_changes(args))
            args.seed = 0 if args.seed is None else args.seed
            logdir = args.logdir or default_run_dir(args.env, args.seed)
            train(args.env, config_from_args(args), seed=args.seed, device=args.device, logdir=logdir,
                  log=log, checkpoint_interval=args.checkpoint_interval, env_source=args.env_source or "gymnasium")
    except TrainingInterrupted as stop:
        name = signal.Signals(stop.signal_number).name
        print(f"rawdqn: stopped by {name} at step {stop.step:,}; checkpoint saved to {stop.checkpoint_path}; "
              f"continue with: rawdqn train --resume {stop.run_dir}", file=sys.stderr, flush=True)
        return 128 + stop.signal_number
    return 0
