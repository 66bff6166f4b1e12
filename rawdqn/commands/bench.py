"""`rawdqn bench [...]`: the micro-benchmarks of bench/ (same options as `python -m bench`).

The benchmark lives in the source tree's `bench/` (it imports Keras for its
baseline, which must stay out of the `rawdqn` package), so it is not installed
with the package. This command finds it beside the installed `rawdqn/`
(an editable install or a checkout); elsewhere `rawdqn bench` says so in one line.
"""
import argparse
import importlib
import os
import sys

from rawdqn.errors import UsageError


def source_root():
    """The directory holding rawdqn/ — the checkout when installed with `pip install -e`."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def import_bench_cli():
    """bench.cli from the checkout, or None when bench/ is not beside rawdqn/."""
    root = source_root()
    if not os.path.isfile(os.path.join(root, "bench", "cli.py")):
        return None
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module("bench.cli")
    if os.path.dirname(os.path.dirname(os.path.abspath(module.__file__))) != root:
        return None  # some other package called `bench` shadows ours
    return module


def add_command(commands):
    bench_cli = import_bench_cli()
    parser = commands.add_parser(
        "bench", help="time every kernel in every mode (eager, tf.function, XLA) beside Keras",
        description="Micro-benchmarks: each kernel alone in each mode, FLOPs and GFLOP/s beside "
                    "a measured matmul peak, the Keras train_on_batch baseline, a JSON result.")
    if bench_cli is None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(run=missing)
    else:
        bench_cli.add_arguments(parser)


def missing(args):
    raise UsageError(f"the benchmark is in the source tree's bench/, not found beside "
                     f"{os.path.join(source_root(), 'rawdqn')}; run it from a checkout "
                     f"(pip install -e <checkout>, then rawdqn bench)")
