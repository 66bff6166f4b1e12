"""Write docs/cli.md, the CLI reference, from rawdqn's own argparse parsers.

    python scripts/cli_reference.py [--check] [--out docs/cli.md]

The page is `rawdqn --help` and every subcommand's `--help`, so it cannot say anything the
parsers do not. `--check` writes nothing and exits 1 when the page differs from what this
script would write; tests/test_docs.py makes the same comparison, so a stale page fails the
tests. After changing a flag or its help, re-run this script and commit docs/cli.md.
"""
import argparse
import contextlib
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "docs", "cli.md")
# argparse wraps help to the terminal's width: a fixed width makes the page the same everywhere.
COLUMNS = 90
# argparse's layout changes between Python versions (3.13 lists a flag's metavar once, 3.14 colours):
# the page is written, and checked, with this one.
PYTHON = (3, 11)

HEADER = """\
# CLI reference

Every command's `--help`, generated from its argparse parser by `scripts/cli_reference.py`
(do not edit this page by hand: change the help in `rawdqn/commands/`, then run
`python scripts/cli_reference.py`). `rawdqn COMMAND --help` prints the same text.
"""


@contextlib.contextmanager
def plain_terminal():
    """A fixed help width and no colour (Python 3.14's argparse colours help on a terminal)."""
    keys = ("COLUMNS", "NO_COLOR", "PYTHON_COLORS")
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.update(COLUMNS=str(COLUMNS), NO_COLOR="1", PYTHON_COLORS="0")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def subcommands(parser):
    """(name, parser) of every subcommand, in the order `rawdqn --help` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def fence(text):
    return f"```text\n{text.rstrip()}\n```\n"


def render():
    """The page's markdown."""
    from rawdqn.cli import build_parser
    with plain_terminal():
        parser = build_parser()
        parts = [HEADER, "## rawdqn\n", fence(parser.format_help())]
        for name, command in subcommands(parser):
            parts += [f"## rawdqn {name}\n", fence(command.format_help())]
    return "\n".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="the page to write (default: docs/cli.md)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the page is not what this script writes")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != page:
            print(f"{args.out} is stale: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(page)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
