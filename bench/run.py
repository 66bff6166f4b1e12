"""The benchmark run: every kernel × mode × K on every configuration, then Keras."""
import datetime
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from bench import flops, timing
from bench.kernels import KERNELS, Setup, compile_repeated

MODES = ("eager", "function", "xla")


def devices_present():
    """'/CPU:0', plus '/GPU:0' when TensorFlow sees a GPU."""
    found = ["/CPU:0"]
    if tf.config.list_physical_devices("GPU"):
        found.append("/GPU:0")
    return found


def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        return subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info():
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:  # noqa: BLE001  (details are best effort)
            details = {}
        gpus.append({"name": gpu.name, **{k: str(v) for k, v in details.items()}})
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "cpus_usable": usable,
        "platform": platform.platform(), "python": platform.python_version(),
        "tensorflow": tf.__version__, "numpy": np.__version__,
        "devices": [d.name for d in tf.config.list_logical_devices()], "gpus": gpus,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git_commit": git_commit(),
        "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "argv": sys.argv,
    }


def peak_rss_bytes():
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def measure_peak(device, dtype, n, repeats, block_seconds):
    """GFLOP/s of an n×n matmul (plain tf.function, the device's tuned kernel)."""
    with tf.device(device):
        a = tf.random.stateless_normal([n, n], seed=[1, 2], dtype=dtype)
        b = tf.random.stateless_normal([n, n], seed=[3, 4], dtype=dtype)
        matmul = tf.function(lambda a, b: tf.matmul(a, b)[0, 0]).get_concrete_function(a, b)
        result = timing.time_call(lambda: matmul(a, b), repeats=repeats,
                                  block_seconds=block_seconds)
    # The peak is the machine's limit: the fastest block, not the median (the median is kept too).
    return {"device": device, "dtype": dtype, "n": n,
            "gflops": flops.matmul(n) / result["min_s"] / 1e9,
            "gflops_median": flops.matmul(n) / result["median_s"] / 1e9, **result}


def run(kernels, modes, hiddens, dtypes, devices, steps_list, repeats, block_seconds,
        replay_capacity, peak_n, keras, keras_batches, log=print, bar_config=None):
    """All measurements; returns the JSON-ready dict."""
    result = {"machine": machine_info(), "settings": {
        "kernels": list(kernels), "modes": list(modes), "hidden": [list(h) for h in hiddens],
        "dtypes": list(dtypes), "devices": list(devices), "repeat_in_graph": list(steps_list),
        "repeats": repeats, "block_seconds": block_seconds, "replay_capacity": replay_capacity,
        "obs_dim": 4, "num_actions": 2, "peak_matmul_n": peak_n},
        "peak": [], "rows": [], "keras": [], "memory": [], "skipped": []}
    started = time.perf_counter()
    for device in devices:
        for dtype in dtypes:
            peak = measure_peak(device, dtype, peak_n, repeats, block_seconds)
            result["peak"].append(peak)
            log(f"# peak {device} {dtype}: {peak['gflops']:.1f} GFLOP/s ({peak_n}×{peak_n} matmul)")
    for device in devices:
        for dtype in dtypes:
            for hidden in hiddens:
                setup = Setup(device, dtype, hidden, replay_capacity=replay_capacity)
                for name in kernels:
                    for steps in steps_list:
                        kernel = setup.build(name, steps)
                        for mode in modes:
                            if mode == "eager" and steps > 1:
                                continue  # no graph to repeat in: K eager steps are K calls
                            row = time_kernel(setup, kernel, mode, steps, repeats, block_seconds)
                            result["rows"].append(row)
                            log(row_line(row))
                memory = {"device": device, "dtype": dtype, "hidden": list(hidden),
                          **setup.memory(), "peak_rss_bytes": peak_rss_bytes()}
                result["memory"].append(memory)
                del setup
                if keras:
                    for batch in keras_batches:
                        for row in time_keras(device, dtype, hidden, batch, repeats, block_seconds):
                            result["keras"].append(row)
                            log(keras_line(row))
    if bar_config is not None:
        device, dtype, hidden = bar_config
        result["bar_interleaved"] = measure_bar(device, dtype, hidden, modes, steps_list, repeats,
                                                block_seconds, replay_capacity, keras, log)
    result["machine"]["load_average_end"] = (list(os.getloadavg())
                                             if hasattr(os, "getloadavg") else None)
    result["machine"]["peak_rss_bytes"] = peak_rss_bytes()
    result["elapsed_s"] = time.perf_counter() - started
    return result


def time_kernel(setup, kernel, mode, steps, repeats, block_seconds):
    call, args = compile_repeated(kernel, mode, steps, setup.device)
    with tf.device(setup.device):
        measured = timing.time_call(lambda: call(*args), repeats=repeats,
                                    block_seconds=block_seconds)
    per_step = measured["median_s"] / steps
    row = {"device": setup.device, "dtype": setup.dtype_name, "hidden": list(setup.hidden),
           "kernel": kernel.name, "batch": KERNELS[kernel.name][1], "mode": mode, "K": steps,
           "flops_per_step": kernel.flops, "us_per_call": measured["median_s"] * 1e6,
           "us_per_step": per_step * 1e6, "steps_per_s": 1.0 / per_step,
           "cpu_us_per_step": measured["cpu_s"] / steps * 1e6,
           "compile_ms": measured["compile_s"] * 1e3,
           "gflops": kernel.flops / per_step / 1e9 if kernel.flops else None}
    row.update({k: v for k, v in measured.items() if k not in ("compile_s",)})
    return row


def time_keras(device, dtype, hidden, batch, repeats, block_seconds):
    from bench.keras_baseline import KerasDQN
    with tf.device(device):
        baseline = KerasDQN(4, 2, hidden, dtype, batch)
        rows = []
        for kind, call in (("train_on_batch", baseline.train_on_batch),
                           ("full_update", baseline.full_update)):
            measured = timing.time_call(call, repeats=repeats, block_seconds=block_seconds)
            rows.append({"device": device, "dtype": dtype, "hidden": list(hidden), "batch": batch,
                         "kernel": f"keras_{kind}", "flops_per_step": flops.learn(batch, flops.layer_sizes(4, hidden, 2)),
                         "us_per_step": measured["median_s"] * 1e6,
                         "cpu_us_per_step": measured["cpu_s"] * 1e6,
                         "steps_per_s": 1.0 / measured["median_s"],
                         "compile_ms": measured["compile_s"] * 1e3,
                         "jit_compile": baseline.jit_compile,
                         **{k: v for k, v in measured.items() if k != "compile_s"}})
    return rows


def row_line(row):
    return (f"  {row['device']} {row['dtype']} {tuple(row['hidden'])} {row['kernel']:<15} "
            f"{row['mode']:<8} K={row['K']:<4} {row['us_per_step']:9.1f} µs/step "
            f"±{100 * row['spread']:.0f}% (cpu {row['cpu_us_per_step']:.1f})  compile {row['compile_ms']:.0f} ms")


def keras_line(row):
    return (f"  {row['device']} {row['dtype']} {tuple(row['hidden'])} {row['kernel']:<15} "
            f"batch {row['batch']:<4} {row['us_per_step']:9.1f} µs/update ±{100 * row['spread']:.0f}%")


def measure_bar(device, dtype, hidden, modes, steps_list, repeats, block_seconds, replay_capacity,
                keras, log=print, batch=128):
    """learn at `batch` in every mode and K, and Keras, timed in alternating blocks.

    Timed apart, a rawdqn row and the Keras row can land in different moments of a
    shared machine's load; interleaved, each round's ratio compares like with like.
    """
    setup = Setup(device, dtype, hidden, replay_capacity=replay_capacity)
    calls, steps_of = {}, {}
    for steps in steps_list:
        kernel = setup.build(f"learn_b{batch}", steps)
        for mode in modes:
            if mode == "eager" and steps > 1:
                continue
            call, args = compile_repeated(kernel, mode, steps, device)
            calls[f"{mode} K={steps}"] = (lambda call=call, args=args: call(*args))
            steps_of[f"{mode} K={steps}"] = steps
    if keras:
        from bench.keras_baseline import KerasDQN
        with tf.device(device):
            baseline = KerasDQN(4, 2, hidden, dtype, batch)
        calls["keras train_on_batch"] = baseline.train_on_batch
        calls["keras full_update"] = baseline.full_update
        steps_of["keras train_on_batch"] = steps_of["keras full_update"] = 1
    with tf.device(device):
        measured = timing.time_interleaved(calls, repeats=repeats, block_seconds=block_seconds)
    rows = []
    keras_rounds = measured.get("keras train_on_batch", {}).get("rounds_s")
    for name, m in measured.items():
        steps = steps_of[name]
        row = {"device": device, "dtype": dtype, "hidden": list(hidden), "batch": batch,
               "name": name, "K": steps, "updates_per_s": steps / m["median_s"],
               "us_per_update": m["median_s"] / steps * 1e6,
               "cpu_us_per_update": m["cpu_s"] / steps * 1e6, "spread": m["spread"],
               "compile_ms": m["compile_s"] * 1e3}
        if keras_rounds:
            ratios = sorted(k / (t / steps) for t, k in zip(m["rounds_s"], keras_rounds))
            row.update(keras_ratio=statistics.median(ratios), keras_ratio_min=ratios[0],
                       keras_ratio_max=ratios[-1])
        rows.append(row)
        log(f"# bar {name:<22} {row['updates_per_s']:>9,.0f} updates/s ±{100 * m['spread']:.0f}%"
            + (f"  {row['keras_ratio']:.1f}x Keras" if keras_rounds else ""))
    return rows
