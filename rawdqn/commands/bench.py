"""`rawdqn bench [...]`: the micro-benchmarks of bench/ (same options as `python -m bench`).

The benchmark lives in the source tree's `bench/` (it imports Keras for its
baseline, which must stay out of the `rawdqn` package), so it is not installed
with the package. This command finds it beside the imported `rawdqn/` (an
editable install), else in the current directory (a checkout you stand in);
elsewhere `rawdqn bench` says so in one line.
"""
import argparse
import importlib
import os
import sys

from rawdqn.errors import UsageError


def source_root():
    """The directory holding rawdqn/ — the checkout when installed with `pip install -e`."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def candidate_roots():
    return list(dict.fromkeys([source_root(), os.getcwd()]))


def import_bench_cli():
    """bench.cli from a checkout, or None when no candidate root holds bench/."""
    for root in candidate_roots():
        if not os.path.isfile(os.path.join(root, "bench", "cli.py")):
            continue
        if root not in sys.path:
            sys.path.insert(0, root)
        module = importlib.import_module("bench.cli")
        if os.path.dirname(os.path.dirname(os.path.abspath(module.__file__))) == root:
            return module
    return None  # absent, or some other package called `bench` shadows ours


def add_command(commands):
    bench_cli = import_bench_cli()
    kwargs = dict(help="time every kernel in every mode (eager, tf.function, XLA) beside Keras",
                  description="Micro-benchmarks: each kernel alone in each mode, FLOPs and GFLOP/s "
                              "beside a measured matmul peak, the Keras train_on_batch baseline, "
                              "a JSON result.")
    if bench_cli is None:
        # No options to offer: take any flags as plain words, so the one-line message of
        # `missing` is what the user sees rather than "unrecognized arguments".
        parser = commands.add_parser("bench", prefix_chars="\0", **kwargs)
        parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
        parser.set_defaults(run=missing)
    else:
        bench_cli.add_arguments(commands.add_parser("bench", **kwargs))


def missing(args):
    raise UsageError(f"the benchmark is in the source tree's bench/ (not installed with the "
                     f"package), and none was found in {' or '.join(candidate_roots())}; run "
                     f"`rawdqn bench` from a checkout, or install one with pip install -e <checkout>")
