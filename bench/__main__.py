"""`python -m bench [...]`: the rawdqn micro-benchmarks (see bench/README.md)."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import rawdqn  # noqa: E402,F401  (quiet TensorFlow import)
from rawdqn.cli import ArgumentParser  # noqa: E402
from rawdqn.errors import UsageError  # noqa: E402

from bench.cli import add_arguments  # noqa: E402


def main(argv=None):
    parser = ArgumentParser(prog="python -m bench",
                            description="Time every rawdqn kernel in every mode, beside Keras.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except UsageError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
