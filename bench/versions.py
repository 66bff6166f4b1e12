"""Two checkouts of rawdqn timed on the same workloads, in alternating processes: the new / base ratio.

    python bench/versions.py --base DIR --new DIR [--rounds 3] [--only NAME,...] [--json out.json] [--quick]

A checkout is a directory holding rawdqn/ and bench/, e.g. a git worktree
(git worktree add ../base COMMIT --detach). Every measurement is a fresh process of this
Python with PYTHONPATH and the working directory set to the checkout, so the checkout's own
rawdqn and bench scripts run (the rawdqn each one imports is printed first). Rates of the same
code move 2x within minutes on a shared machine, so figures taken apart compare nothing: each
round runs every workload on both checkouts back to back, base first for one workload and new
first for the next (the order flips between workloads and between rounds), the ratio is taken
per round, and the median is reported with the rounds' range. Workloads, higher is better:

  w2-1env       bench/loop.py, W2 (CartPole, (64, 64), one update of batch 128 per env step),
                1 env, 20,000 timed env steps after an untimed warm-up: env steps/s
  w2-8envs      the same with 8 envs stepped together (8 updates per vector step): env steps/s
  learn-k1      python -m bench: learn_b128, (64, 64) float32, XLA, one update per compiled
                call: updates/s
  learn-k100    the same, 100 updates inside one compiled call (K=100): updates/s
  minatar-step  bench/conv.py --net minatar: PixelDQN.train(1), batch 32 on MinAtar's conv net,
                XLA NHWC (conv_gradients=forward), one 4 s block: updates/s
  minatar-loop  bench/minatar_step.py: the gymnasium loop's step on MinAtar/Breakout-v1 while
                learning (env step, the one compiled call, bookkeeping), 5 rounds: loop steps/s
  nature-step   bench/conv.py --net nature: the Nature DQN's update (W3), XLA NHWC
                (conv_gradients=forward), one 4 s block: updates/s

learn-k1 and learn-k100 come from one process. --quick shrinks every workload and runs one
round: it checks that the numbers parse, it measures nothing.
"""
import argparse
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

CONV_VARIANT = "rawdqn xla NHWC conv_gradients=forward"
TIMEOUT_S = 1800


@dataclasses.dataclass
class Job:
    """One process per checkout and round; it yields the numbers of one or more workloads."""
    workloads: tuple   # names, in order
    unit: str
    command: object    # (quick, names, scratch_dir) -> (argv after python, parse(stdout) -> {name: value})


def loop_job(num_envs):
    def command(quick, names, scratch):
        argv = ["bench/loop.py", "--steps", "2000" if quick else "20000", "--rounds", "1",
                "--num-envs", str(num_envs), "--no-sb3", "--no-breakdown"]

        def parse(stdout):
            # loop.py: "round 1: rawdqn   1,234 env steps/s   SB3 ..."
            rates = re.findall(r"^round \d+: rawdqn\s+([\d,.]+) env steps/s", stdout, re.MULTILINE)
            if len(rates) != 1:
                raise ValueError(f"expected one 'round N: rawdqn X env steps/s' line, found {len(rates)}")
            return {names[0]: float(rates[0].replace(",", ""))}
        return argv, parse
    return command


def learn_command(quick, names, scratch):
    ks = {"learn-k1": 1, "learn-k100": 100}
    path = os.path.join(scratch, "kernels.json")
    argv = ["-m", "bench", "--kernels", "learn_b128", "--modes", "xla", "--dtypes", "float32",
            "--hidden", "64,64", "--devices", "/CPU:0", "--repeat-in-graph", *(str(ks[n]) for n in names),
            "--no-keras", "--no-bar", "--json", path]
    if quick:
        argv += ["--repeats", "3", "--block-ms", "5", "--replay-capacity", "1000", "--peak-n", "256"]

    def parse(stdout):
        with open(path) as file:
            rows = json.load(file)["rows"]
        values = {}
        for name in names:
            found = [row["steps_per_s"] for row in rows
                     if row["kernel"] == "learn_b128" and row["mode"] == "xla" and row["K"] == ks[name]
                     and row["dtype"] == "float32" and row["hidden"] == [64, 64]]
            if len(found) != 1:
                raise ValueError(f"expected one learn_b128 xla K={ks[name]} row in the JSON, found {len(found)}")
            values[name] = found[0]   # K / median seconds per compiled call
        return values
    return argv, parse


def conv_command(net):
    def command(quick, names, scratch):
        return conv_learner(net, quick, names, scratch)
    return command


def conv_learner(net, quick, names, scratch):
    path = os.path.join(scratch, f"conv-{net}.json")
    # --rounds 1: one block of --block-ms per variant (this one and "networks alone"); the rest of
    # the process (imports, compiles, the fill, conv.py's peak measurements) takes ~15-20 s.
    argv = ["bench/conv.py", "--net", net, "--modes", "xla", "--no-sb3", "--no-keras", "--rounds", "1",
            "--block-ms", "100" if quick else "4000", "--json", path]
    if quick:
        argv += ["--fill", "100"]

    def parse(stdout):
        with open(path) as file:
            rows = {row["variant"]: row for row in json.load(file)["rows"]}
        if CONV_VARIANT not in rows:
            raise ValueError(f"no row {CONV_VARIANT!r} in conv.py's JSON; rows: {sorted(rows)}")
        return {names[0]: 1.0 / rows[CONV_VARIANT]["median_seconds"]}
    return argv, parse


def minatar_loop_command(quick, names, scratch):
    argv = ["bench/minatar_step.py", "--rounds", "1" if quick else "5", "--block-ms", "5" if quick else "40"]

    def parse(stdout):
        rates = re.findall(r"^([\d,]+) loop steps/s while learning", stdout, re.MULTILINE)
        if len(rates) != 1:
            raise ValueError(f"expected one 'N loop steps/s while learning' line, found {len(rates)}")
        return {names[0]: float(rates[0].replace(",", ""))}
    return argv, parse


JOBS = [Job(("w2-1env",), "env steps/s", loop_job(1)),
        Job(("w2-8envs",), "env steps/s", loop_job(8)),
        Job(("learn-k1", "learn-k100"), "updates/s", learn_command),
        Job(("minatar-step",), "updates/s", conv_command("minatar")),
        Job(("minatar-loop",), "loop steps/s", minatar_loop_command),
        Job(("nature-step",), "updates/s", conv_command("nature"))]
WORKLOADS = [name for job in JOBS for name in job.workloads]


# --- the machine and the checkouts ----------------------------------------------------------
def cpu_info():
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "neither AVX2 nor AVX-512"
    return model, vector


def load_average():
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def environment(checkout):
    env = dict(os.environ, PYTHONPATH=checkout)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def git_commit(checkout):
    def git(*args):
        try:
            return subprocess.run(["git", "-C", checkout, *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "--short", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no", "--", "rawdqn", "bench"):
        commit += "+modified"
    return commit or None


def imported_rawdqn(checkout):
    """rawdqn.__file__ as a measurement's process sees it: it must lie inside the checkout."""
    result = subprocess.run([sys.executable, "-c", "import rawdqn; print(rawdqn.__file__)"], cwd=checkout,
                            env=environment(checkout), capture_output=True, text=True, timeout=300)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        sys.exit(f"versions: `import rawdqn` failed in {checkout}: {result.stderr.strip().splitlines()[-1:]}")
    path = lines[-1]
    if not os.path.realpath(path).startswith(os.path.realpath(checkout) + os.sep):
        sys.exit(f"versions: in {checkout}, rawdqn is imported from {path}, not from the checkout")
    return path


# --- measuring ---------------------------------------------------------------------------------
class Failed(Exception):
    pass


def measure(checkout, job, names, quick):
    """One process of `job` in `checkout`: ({workload: value}, seconds, argv)."""
    with tempfile.TemporaryDirectory(prefix="rawdqn-versions-") as scratch:
        argv, parse = job.command(quick, names, scratch)
        start = time.perf_counter()
        try:
            result = subprocess.run([sys.executable, *argv], cwd=checkout, env=environment(checkout),
                                    capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise Failed(f"`{' '.join(argv)}` ran over {TIMEOUT_S} s") from None
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            tail = "\n      ".join(result.stderr.strip().splitlines()[-8:])
            raise Failed(f"`{' '.join(argv)}` exited {result.returncode}:\n      {tail}")
        try:
            return parse(result.stdout), seconds, argv
        except (OSError, ValueError, KeyError) as error:
            tail = "\n      ".join(result.stdout.strip().splitlines()[-8:])
            raise Failed(f"`{' '.join(argv)}`: {error}; its stdout ended:\n      {tail}") from None


def ratio_text(ratios):
    if not ratios:
        return "-"
    return f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the checkout to compare against (holds rawdqn/ and bench/)")
    parser.add_argument("--new", required=True, help="the checkout being measured")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; 1 with --quick)")
    parser.add_argument("--only", default=None, metavar="NAME,...",
                        help=f"workloads to run, comma-separated (default all: {','.join(WORKLOADS)})")
    parser.add_argument("--json", default=None, help="write every measurement and ratio here")
    parser.add_argument("--quick", action="store_true",
                        help="tiny workloads, one round: checks the parsing, measures nothing")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        parser.error("--rounds must be >= 1")
    selected = WORKLOADS if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [name for name in selected if name not in WORKLOADS]
    if unknown or not selected:
        parser.error(f"--only: unknown workload(s) {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(WORKLOADS)}")
    jobs = [(job, [n for n in job.workloads if n in selected]) for job in JOBS]
    jobs = [(job, names) for job, names in jobs if names]
    checkouts = {}
    for side in ("base", "new"):
        directory = os.path.abspath(getattr(args, side))
        for part in ("rawdqn", "bench"):
            if not os.path.isdir(os.path.join(directory, part)):
                parser.error(f"--{side} {directory}: no {part}/ there")
        checkouts[side] = directory

    model, vector = cpu_info()
    machine = {"cpu_model": model, "vector_extension": vector, "cpu_count": os.cpu_count(),
               "python": sys.executable, "load_average_start": load_average()}
    print(f"CPU {model} ({vector}), {os.cpu_count()} cores; load average {machine['load_average_start']}")
    info = {}
    for side, directory in checkouts.items():
        info[side] = {"dir": directory, "commit": git_commit(directory), "rawdqn": imported_rawdqn(directory)}
        print(f"{side:<4} {directory} ({info[side]['commit']}): rawdqn from {info[side]['rawdqn']}")
    print(f"{rounds} round(s){', --quick' if args.quick else ''}; workloads: {', '.join(selected)}\n", flush=True)

    values = {name: {"base": [], "new": [], "ratios": [], "new_first": []} for name in selected}
    runs, failures, dropped = [], [], set()
    for round_index in range(rounds):
        for job_index, (job, names) in enumerate(jobs):
            if job.workloads in dropped:
                continue
            order = ("base", "new") if (round_index + job_index) % 2 == 0 else ("new", "base")
            got = {}
            for side in order:
                load = load_average()
                try:
                    got[side], seconds, job_argv = measure(checkouts[side], job, names, args.quick)
                except Failed as error:
                    message = f"round {round_index + 1} {'+'.join(names)} {side}: {error}"
                    print(message, flush=True)
                    failures.append(message)
                    dropped.add(job.workloads)
                    break
                runs.append({"round": round_index + 1, "checkout": side, "argv": job_argv, "seconds": seconds,
                             "load_average_before": load, "values": got[side]})
                print(f"round {round_index + 1} {side:<4} {'+'.join(names):<20} "
                      + ", ".join(f"{got[side][n]:,.1f}" for n in names)
                      + f" {job.unit}  ({seconds:.0f} s, load {load})", flush=True)
            if len(got) < 2:
                print(f"  {'+'.join(names)} dropped from the remaining rounds", flush=True)
                continue
            for name in names:
                record = values[name]
                record["base"].append(got["base"][name])
                record["new"].append(got["new"][name])
                record["ratios"].append(got["new"][name] / got["base"][name])
                record["new_first"].append(order[0] == "new")
                print(f"  {name:<13} new / base {record['ratios'][-1]:.3f}", flush=True)

    machine["load_average_end"] = load_average()
    unit_of = {name: job.unit for job, _ in jobs for name in job.workloads}
    print(f"\nnew {info['new']['commit']} / base {info['base']['commit']}; CPU {model} ({vector}); "
          f"load average {machine['load_average_start']} -> {machine['load_average_end']}")
    print(f"{'workload':<13} {'unit':<12} {'base median':>12} {'new median':>12}  "
          f"new/base median (min-max)  per round")
    summary = {}
    for name in selected:
        record = values[name]
        ratios = record["ratios"]
        base = statistics.median(record["base"]) if record["base"] else float("nan")
        new = statistics.median(record["new"]) if record["new"] else float("nan")
        print(f"{name:<13} {unit_of[name]:<12} {base:12,.1f} {new:12,.1f}  {ratio_text(ratios):<26} "
              + ", ".join(f"{r:.3f}" for r in ratios))
        summary[name] = {"unit": unit_of[name], **record, "base_median": base, "new_median": new,
                         "ratio_median": statistics.median(ratios) if ratios else None,
                         "ratio_min": min(ratios) if ratios else None, "ratio_max": max(ratios) if ratios else None}
    if failures:
        print(f"\n{len(failures)} measurement(s) failed (above); their workloads have fewer rounds or none")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": machine, "checkouts": info, "rounds": rounds, "quick": args.quick,
                       "workloads": summary, "runs": runs, "failures": failures}, out, indent=1)
        print(f"wrote {os.path.abspath(args.json)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
