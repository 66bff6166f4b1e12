"""Command-line options of the benchmark, shared by `python -m bench` and `rawdqn bench`."""
import json
import os

from bench.kernels import KERNELS

DEFAULT_HIDDEN = ((64, 64), (256, 256))


def parse_hidden(text):
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        import argparse
        raise argparse.ArgumentTypeError(f"hidden sizes are comma-separated widths like 64,64; got {text!r}")


def add_arguments(parser):
    parser.add_argument("--kernels", nargs="+", choices=list(KERNELS), default=list(KERNELS),
                        metavar="KERNEL", help=f"kernels to time (default: all: {', '.join(KERNELS)})")
    parser.add_argument("--modes", nargs="+", choices=("eager", "function", "xla"),
                        default=["eager", "function", "xla"], help="how kernels run (default: all three)")
    parser.add_argument("--hidden", nargs="+", type=parse_hidden, default=list(DEFAULT_HIDDEN),
                        metavar="W,W", help="network sizes (default: 64,64 256,256)")
    parser.add_argument("--dtypes", nargs="+", choices=("float32", "float64"),
                        default=["float32", "float64"], help="(default: both)")
    parser.add_argument("--devices", nargs="+", default=None,
                        help="TensorFlow devices (default: /CPU:0, and /GPU:0 when one is visible)")
    parser.add_argument("--repeat-in-graph", nargs="+", type=int, default=[1, 100], metavar="K",
                        help="also time K steps inside one compiled call (default: 1 100); "
                             "1 is the plain per-call kernel")
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed blocks per row; the median and quartiles are over these (default: 15)")
    parser.add_argument("--block-ms", type=float, default=20.0,
                        help="target duration of one timed block of calls (default: 20)")
    parser.add_argument("--replay-capacity", type=int, default=100_000,
                        help="replay ring size; it is filled before timing (default: 100000)")
    parser.add_argument("--peak-n", type=int, default=1024,
                        help="matrix size of the peak-GFLOP/s matmul (default: 1024)")
    parser.add_argument("--no-keras", dest="keras", action="store_false",
                        help="skip the Keras train_on_batch baseline")
    parser.add_argument("--keras-batches", nargs="+", type=int, default=[128],
                        help="learn batch sizes to time Keras at (default: 128)")
    parser.add_argument("--no-bar", dest="bar", action="store_false",
                        help="skip the interleaved XLA-vs-Keras check (learn batch 128, (64, 64), float32 "
                             "in every mode and K, alternating blocks with Keras)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast look: (64,64) float32, K=1, 5 blocks of 5 ms")
    parser.add_argument("--json", default="bench-results.json",
                        help="where to write the JSON result (default: bench-results.json; '' for none)")
    parser.add_argument("--compare", nargs=2, metavar=("BASE.json", "NEW.json"),
                        help="do not run: print two JSON results side by side as ratios")
    parser.set_defaults(run=run)


def run(args):
    from rawdqn.errors import UsageError
    if args.compare:
        from bench import compare
        print(compare.render(*(compare.load(path) for path in args.compare)))
        return 0
    from bench import report, run as runner
    if args.quick:
        args.hidden, args.dtypes, args.repeat_in_graph = [(64, 64)], ["float32"], [1]
        args.repeats, args.block_ms, args.bar = 5, 5.0, False
    if any(k < 1 for k in args.repeat_in_graph):
        raise UsageError("--repeat-in-graph values must be >= 1")
    if args.repeats < 1 or args.block_ms <= 0:
        raise UsageError("--repeats must be >= 1 and --block-ms > 0")
    if args.replay_capacity < 512:
        raise UsageError("--replay-capacity must be >= 512 (the largest sampled batch)")
    devices = args.devices or runner.devices_present()
    result = runner.run(args.kernels, args.modes, args.hidden, args.dtypes, devices,
                        args.repeat_in_graph, args.repeats, args.block_ms / 1000.0,
                        args.replay_capacity, args.peak_n, args.keras, args.keras_batches,
                        log=lambda line: print(line, flush=True),
                        bar_config=None if not args.bar else (devices[0], "float32", (64, 64)))
    _, result["bar"] = report.bar(result)
    result["notes"] = report.notes(result)
    if result.get("bar_interleaved"):
        result["bar_interleaved_verdict"] = report.interleaved_verdict(result["bar_interleaved"])
    print(report.render(result))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)
        print(f"wrote {os.path.abspath(args.json)}")
    return 0
