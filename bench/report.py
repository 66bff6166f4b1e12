"""The terminal table, the Keras ratios, the XLA-vs-Keras bar and the notes, from a result dict."""
from bench.kernels import KERNELS

BAR_RATIO = 6.0


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def fmt_time(us):
    if us is None:
        return "—"
    if us >= 10_000:
        return f"{us / 1000:.1f} ms"
    return f"{us:.1f} µs" if us < 100 else f"{us:.0f} µs"


def config_key(row):
    return (row["device"], row["dtype"], tuple(row["hidden"]))


def index_rows(result):
    """{(device, dtype, hidden, kernel, mode, K): row}."""
    return {(*config_key(r), r["kernel"], r["mode"], r["K"]): r for r in result["rows"]}


def table(result):
    lines = []
    rows = index_rows(result)
    peaks = {(p["device"], p["dtype"]): p["gflops"] for p in result["peak"]}
    memory = {config_key(m): m for m in result["memory"]}
    configs = list(dict.fromkeys(config_key(r) for r in result["rows"]))
    modes = [m for m in ("eager", "function", "xla") if m in result["settings"]["modes"]]
    steps_list = result["settings"]["repeat_in_graph"]
    header = (f"{'kernel':<15}{'K':>5}{'MFLOP':>9}" + "".join(f"{m + ' µs/step':>19}" for m in modes)
              + f"{'xla/fn':>8}{'best steps/s':>14}{'GFLOP/s':>9}{'%peak':>7}{'compile ms f/x':>16}")
    for config in configs:
        device, dtype, hidden = config
        peak = peaks.get((device, dtype))
        mem = memory.get(config, {})
        lines.append("")
        peak_text = f"  peak {peak:.1f} GFLOP/s ({result['settings']['peak_matmul_n']}² matmul)" if peak else ""
        lines.append(f"== {device}  {dtype}  hidden {hidden}  ({mem.get('parameters', '?')} parameters)"
                     + peak_text)
        if mem:
            lines.append(f"   memory: replay {fmt_bytes(mem['replay_bytes'])}, model+target+Adam "
                         f"{fmt_bytes(mem['model_bytes'])}, process peak RSS so far "
                         f"{fmt_bytes(mem['peak_rss_bytes'])}")
        lines.append(header)
        lines.append("-" * len(header))
        for kernel in result["settings"]["kernels"]:
            for steps in steps_list:
                cells = {m: rows.get((*config, kernel, m, steps)) for m in modes}
                present = {m: r for m, r in cells.items() if r}
                if not present:
                    continue
                any_row = next(iter(present.values()))
                best_mode = min(present, key=lambda m: present[m]["us_per_step"])
                best = present[best_mode]
                text = f"{kernel:<15}{steps:>5}{any_row['flops_per_step'] / 1e6:>9.3f}"
                for m in modes:
                    r = cells[m]
                    cell = f"{fmt_time(r['us_per_step'])} ±{100 * r['spread']:.0f}%" if r else "—"
                    text += f"{cell:>19}"
                fn, xla = cells.get("function"), cells.get("xla")
                text += f"{(fn['us_per_step'] / xla['us_per_step']) if fn and xla else float('nan'):>7.2f}x"
                text += f"{best['steps_per_s']:>14,.0f}"
                gflops = best["gflops"]
                text += f"{gflops:>9.2f}" if gflops else f"{'—':>9}"
                text += f"{100 * gflops / peak:>6.1f}%" if gflops and peak else f"{'—':>7}"
                compile_ms = "/".join(f"{cells[m]['compile_ms']:.0f}" if cells.get(m) else "—"
                                      for m in ("function", "xla"))
                text += f"{compile_ms:>16}"
                lines.append(text)
    return "\n".join(lines)


def keras_table(result):
    if not result["keras"]:
        return ""
    rows = index_rows(result)
    steps_list = result["settings"]["repeat_in_graph"]
    lines = ["", "== Keras baseline (same shapes; Adam clipnorm=1.0; masked model, MSE)",
             f"{'config':<30}{'batch':>6}{'keras train_on_batch/s':>24}{'keras full update/s':>21}"
             f"{'jit':>5}   rawdqn learn (xla) / keras train_on_batch"]
    keras = {}
    for row in result["keras"]:
        keras.setdefault((*config_key(row), row["batch"]), {})[row["kernel"]] = row
    for (device, dtype, hidden, batch), kinds in keras.items():
        tob, full = kinds.get("keras_train_on_batch"), kinds.get("keras_full_update")
        ratios = []
        for steps in steps_list:
            xla = rows.get((device, dtype, hidden, f"learn_b{batch}", "xla", steps))
            if xla and tob:
                ratios.append(f"K={steps}: {xla['steps_per_s'] / tob['steps_per_s']:.1f}x")
        lines.append(f"{device + ' ' + dtype + ' ' + str(hidden):<30}{batch:>6}"
                     f"{tob['steps_per_s'] if tob else float('nan'):>24,.0f}"
                     f"{full['steps_per_s'] if full else float('nan'):>21,.0f}"
                     f"{'yes' if tob and tob['jit_compile'] else 'no':>5}   {', '.join(ratios)}")
    return "\n".join(lines)


def bar(result, hidden=(64, 64), batch=128):
    """The XLA-vs-Keras check: XLA learn at batch 128 on (64, 64) beats eager and tf.function and
    is ≥ 6x Keras train_on_batch, in this run. Returns (lines, dict)."""
    rows = index_rows(result)
    keras = {(*config_key(r), r["batch"], r["kernel"]): r for r in result["keras"]}
    lines, checks = [], []
    for device in result["settings"]["devices"]:
        for dtype in result["settings"]["dtypes"]:
            config = (device, dtype, tuple(hidden))
            tob = keras.get((*config, batch, "keras_train_on_batch"))
            eager = rows.get((*config, f"learn_b{batch}", "eager", 1))
            for steps in result["settings"]["repeat_in_graph"]:
                xla = rows.get((*config, f"learn_b{batch}", "xla", steps))
                fn = rows.get((*config, f"learn_b{batch}", "function", steps))
                if not xla:
                    continue
                check = {"device": device, "dtype": dtype, "hidden": list(hidden), "batch": batch,
                         "K": steps, "xla_updates_per_s": xla["steps_per_s"],
                         "function_updates_per_s": fn["steps_per_s"] if fn else None,
                         "eager_updates_per_s": eager["steps_per_s"] if eager else None,
                         "keras_updates_per_s": tob["steps_per_s"] if tob else None}
                check["faster_than_function"] = bool(fn) and xla["steps_per_s"] > fn["steps_per_s"]
                check["faster_than_eager"] = bool(eager) and xla["steps_per_s"] > eager["steps_per_s"]
                check["keras_ratio"] = xla["steps_per_s"] / tob["steps_per_s"] if tob else None
                check["passes"] = bool(check["faster_than_function"] and check["faster_than_eager"]
                                       and check["keras_ratio"] and check["keras_ratio"] >= BAR_RATIO)
                checks.append(check)
                fmt = lambda v: "—" if v is None else f"{v:,.0f}/s"
                check["xla_cpu_us_per_update"] = xla["cpu_us_per_step"]
                check["function_cpu_us_per_update"] = fn["cpu_us_per_step"] if fn else None
                lines.append(
                    f"bar {device} {dtype} {tuple(hidden)} learn_b{batch} K={steps}: "
                    f"xla {fmt(check['xla_updates_per_s'])}, function {fmt(check['function_updates_per_s'])}, "
                    f"eager {fmt(check['eager_updates_per_s'])}, keras {fmt(check['keras_updates_per_s'])}"
                    f" → {'%.1fx Keras' % check['keras_ratio'] if check['keras_ratio'] else 'no Keras'}"
                    f"  {'PASS' if check['passes'] else 'FAIL'}")
    return lines, checks


def notes(result):
    """Where XLA is not faster than tf.function, and what the K>1 rows say about why."""
    rows = index_rows(result)
    out = []
    for key, xla in rows.items():
        *config, kernel, mode, steps = key
        if mode != "xla":
            continue
        fn = rows.get((*config, kernel, "function", steps))
        if not fn or xla["us_per_step"] <= fn["us_per_step"]:
            continue
        text = (f"{config[0]} {config[1]} {config[2]} {kernel} K={steps}: xla "
                f"{fmt_time(xla['us_per_step'])} vs function {fmt_time(fn['us_per_step'])} per step")
        if steps == 1:
            deeper = [r for k, r in rows.items() if tuple(k[:4]) == (*config, kernel)
                      and k[4] in ("xla", "function") and k[5] > 1]
            by_k = {}
            for r in deeper:
                by_k.setdefault(r["K"], {})[r["mode"]] = r
            for k, pair in sorted(by_k.items()):
                if len(pair) == 2:
                    text += (f"; in-graph K={k}: xla {fmt_time(pair['xla']['us_per_step'])} vs function "
                             f"{fmt_time(pair['function']['us_per_step'])} — the per-call launch, "
                             f"not the compute, decides K=1")
        out.append(text)
    return out


def render(result):
    parts = [machine_header(result), table(result), keras_table(result)]
    if result.get("bar_interleaved"):
        parts += ["", "== XLA-vs-Keras bar, interleaved (learn batch 128, alternating timed blocks with Keras;"
                      " ratio = median over rounds of the per-round ratio [min–max])"]
        for row in result["bar_interleaved"]:
            ratio = (f"  {row['keras_ratio']:5.1f}x Keras train_on_batch [{row['keras_ratio_min']:.1f}–"
                     f"{row['keras_ratio_max']:.1f}]") if "keras_ratio" in row else ""
            parts.append(f"  {row['device']} {row['dtype']} {tuple(row['hidden'])} {row['name']:<22}"
                         f"{row['updates_per_s']:>9,.0f} updates/s ±{100 * row['spread']:.0f}%"
                         f"  ({fmt_time(row['us_per_update'])}/update, cpu {fmt_time(row['cpu_us_per_update'])})"
                         + ratio)
        verdict = interleaved_verdict(result["bar_interleaved"])
        if verdict:
            parts.append("  " + verdict["text"])
    bar_lines, _ = bar(result)
    if bar_lines:
        parts += ["", "== XLA-vs-Keras bar: XLA learn batch 128 on (64, 64) > eager, > tf.function, ≥ 6x Keras"]
        parts += bar_lines
    note_lines = notes(result)
    if note_lines:
        parts += ["", "== where XLA is not faster than tf.function (per step, same K)"]
        parts += ["  " + line for line in note_lines]
    parts.append("")
    parts.append("µs/step: median over blocks of per-call time ÷ K, ±(q3−q1)/median; every call's "
                 "result copied to the host. eager has no K>1 (no graph to loop in). Process CPU "
                 "time per step (robust to other load) is in the JSON as cpu_us_per_step.")
    return "\n".join(parts)


def machine_header(result):
    m = result["machine"]
    load = m.get("load_average")
    end = m.get("load_average_end")
    load_text = (f"load average {load[0]:.2f} at start" if load else "") + (
        f", {end[0]:.2f} at end" if end else "")
    return (f"rawdqn bench — {m['cpu_model']} ({m['cpus_usable']} usable CPUs), TF {m['tensorflow']}, "
            f"devices {', '.join(m['devices'])}; {load_text}; git {m.get('git_commit')}")


def interleaved_verdict(rows):
    """PASS when, at some K, XLA beats tf.function at that K and eager, and is ≥ 6x Keras."""
    by_name = {r["name"]: r for r in rows}
    eager = by_name.get("eager K=1")
    checks = []
    for r in rows:
        if not r["name"].startswith("xla"):
            continue
        fn = by_name.get(r["name"].replace("xla", "function"))
        ok = (fn is not None and r["updates_per_s"] > fn["updates_per_s"]
              and (eager is None or r["updates_per_s"] > eager["updates_per_s"])
              and r.get("keras_ratio", 0) >= BAR_RATIO)
        checks.append((ok, r["name"], r.get("keras_ratio")))
    if not checks:
        return None
    passing = [name for ok, name, _ in checks if ok]
    text = ("PASS at " + ", ".join(passing) if passing else "FAIL") + " (xla > function, > eager, ≥ 6x Keras)"
    return {"passes": bool(passing), "passing": passing, "text": text}
