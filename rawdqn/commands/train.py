"""`rawdqn train --env CartPole-v1 [...]`.

Every DQNConfig field is also a flag (`learning_rate` → `--learning-rate`), so a
preset can be overridden one hyperparameter at a time.
"""
import argparse
import ast
import dataclasses
import inspect
import typing

from rawdqn.config import DQNConfig, preset


def parse_hidden(text):
    """'64,64' → (64, 64); '' or 'none' → () (a linear Q-function)."""
    text = text.strip()
    if text.lower() in ("", "()", "none", "linear"):
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden must be comma-separated widths like 64,64; got {text!r}")


def parse_optional_float(text):
    if text.lower() in ("none", "off"):
        return None
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


def add_config_flags(parser, skip=("total_steps",)):
    """One flag per DQNConfig field, default None (= keep the preset's value)."""
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
        elif kind == typing.Optional[float]:
            kind = parse_optional_float
        if kind is bool:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                               default=None, help=docs.get(field.name))
        else:
            group.add_argument(flag, dest=field.name, type=kind, default=None,
                               help=docs.get(field.name), metavar=field.name.upper())


def config_from_args(args):
    """The environment's preset with every flag the user gave applied on top."""
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(DQNConfig)
               if getattr(args, f.name, None) is not None}
    if getattr(args, "steps", None) is not None:
        changes["total_steps"] = args.steps
    return preset(args.env).replace(**changes).validate()


def add_command(commands):
    parser = commands.add_parser("train", help="train a DQN on a gymnasium environment",
                                 description="Train a DQN with the environment's preset, then "
                                             "evaluate its greedy policy.")
    parser.add_argument("--env", default="CartPole-v1", help="gymnasium environment id (default: CartPole-v1)")
    parser.add_argument("--steps", type=int, default=None,
                        help="environment steps (default: the preset's total_steps)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for weights, exploration, replay and environment (default: 0)")
    parser.add_argument("--logdir", default=None, help="directory for config.json and history.jsonl")
    parser.add_argument("--device", choices=("cpu", "gpu"), default=None,
                        help="where variables and kernels live (default: TensorFlow's choice)")
    add_config_flags(parser)
    parser.set_defaults(run=run)


def run(args):
    from rawdqn.train import train
    config = config_from_args(args)
    train(args.env, config, seed=args.seed, device=args.device, logdir=args.logdir,
          log=lambda line: print(line, flush=True))
    return 0
