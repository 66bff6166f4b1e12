"""The command line: `rawdqn <command> [...]`.

Each command is a module with `add_command(subparsers)`, which registers its
parser and sets `run=`; this file only dispatches. Bad input (a UsageError)
exits with code 2 and one line on stderr, never a stack trace.
"""
import argparse
import importlib
import sys

import rawdqn  # noqa: F401  (quiet TensorFlow import)
from rawdqn.errors import UsageError

EXIT_USAGE = 2

# Modules that provide a subcommand, in the order `rawdqn --help` lists them.
COMMAND_MODULES = ["rawdqn.commands.train", "rawdqn.commands.eval", "rawdqn.commands.export",
                   "rawdqn.commands.watch", "rawdqn.commands.plot",
                   "rawdqn.commands.bench", "rawdqn.commands.verify"]


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line (and the hint to --help), not the whole usage."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = ArgumentParser(prog="rawdqn", description="Deep Q-learning in raw TensorFlow.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=ArgumentParser)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_command(commands)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except UsageError as error:
        print(f"rawdqn: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rawdqn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
