"""Two benchmark results side by side: `python -m bench.compare BASE.json NEW.json`
(or `python -m bench --compare BASE.json NEW.json`).

Rows are matched on (device, dtype, hidden, kernel, mode, K); the ratio is
speed-up = base time / new time (> 1: NEW is faster). Rows in only one file are listed apart.
"""
import json
import statistics
import sys


def load(path):
    with open(path) as source:
        return json.load(source)


def keyed(result):
    rows = {}
    for row in result.get("rows", []):
        rows[(row["device"], row["dtype"], tuple(row["hidden"]), row["kernel"], row["mode"], row["K"])] = row
    for row in result.get("keras", []):
        rows[(row["device"], row["dtype"], tuple(row["hidden"]), f"{row['kernel']}_b{row['batch']}",
              "keras", 1)] = row
    for row in result.get("peak", []):
        rows[(row["device"], row["dtype"], (), f"peak_matmul_{row['n']}", "function", 1)] = {
            "us_per_step": row["median_s"] * 1e6}
    return rows


def describe(result):
    m = result["machine"]
    load = m.get("load_average") or [float("nan")]
    return (f"{m['cpu_model']} ×{m['cpus_usable']}, TF {m['tensorflow']}, "
            f"{', '.join(m['devices'])}, load {load[0]:.2f}, git {m.get('git_commit')}, {m.get('time')}")


def render(base, new):
    a, b = keyed(base), keyed(new)
    lines = [f"BASE: {describe(base)}", f"NEW:  {describe(new)}", "",
             f"{'device':<8}{'dtype':<9}{'hidden':<12}{'kernel':<28}{'mode':<10}{'K':>5}"
             f"{'base µs/step':>14}{'new µs/step':>13}{'speed-up':>10}"]
    ratios = []
    for key in [k for k in a if k in b]:
        device, dtype, hidden, kernel, mode, steps = key
        before, after = a[key]["us_per_step"], b[key]["us_per_step"]
        ratio = before / after if after else float("nan")
        ratios.append(ratio)
        lines.append(f"{device:<8}{dtype:<9}{str(hidden):<12}{kernel:<28}{mode:<10}{steps:>5}"
                     f"{before:>14.1f}{after:>13.1f}{ratio:>9.2f}x")
    if ratios:
        lines.append(f"geometric mean speed-up over {len(ratios)} common rows: "
                     f"{statistics.geometric_mean(ratios):.2f}x")
    only = [("BASE", k) for k in a if k not in b] + [("NEW", k) for k in b if k not in a]
    for side, key in only:
        lines.append(f"only in {side}: {key}")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m bench.compare BASE.json NEW.json", file=sys.stderr)
        return 2
    print(render(load(argv[0]), load(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
