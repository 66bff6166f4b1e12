"""Smoke test of bench/: every kernel × mode row is produced with sane numbers, the FLOP
counts match hand derivations, the table, the JSON and the comparison render.

Tiny repetitions: this checks that the benchmark runs, never how fast anything is.
"""
import json
import math
import os
import re
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import compare, flops, report, timing  # noqa: E402
from bench.__main__ import main  # noqa: E402
from bench.kernels import KERNELS  # noqa: E402


def test_flops_of_act_batch_1_on_the_cartpole_network():
    # sizes 4 → 64 → 64 → 2, one row:
    #   matmuls 2·(4·64 + 64·64 + 64·2) = 2·4480 = 8960
    #   biases  64 + 64 + 2 = 130;  relus 64 + 64 = 128;  argmax over 2 actions: 2
    assert flops.act(1, flops.layer_sizes(4, (64, 64), 2)) == 8960 + 130 + 128 + 2


def test_flops_of_learn_batch_128_on_the_cartpole_network():
    # B = 128, sizes 4 → 64 → 64 → 2, P = 4·64+64 + 64·64+64 + 64·2+2 = 4610 parameters.
    # forward:  layer 0  2·128·4·64 + 128·64 + 128·64 (relu)        =    81,920
    #           layer 1  2·128·64·64 + 128·64 + 128·64              = 1,064,960
    #           layer 2  2·128·64·2 + 128·2                         =    33,024   → 1,179,904
    # backward: layer 0  dW 65,536 + db 8,192 + relu 8,192 (no dx)  =    81,920
    #           layer 1  dW 1,048,576 + db 8,192 + dx 1,048,576 + relu 8,192 = 2,113,536
    #           layer 2  dW 32,768 + db 256 + dx 32,768             =    65,792   → 2,261,248
    # target = forward + max 256 + 4·128 = 1,180,672
    # TD and loss 2·128·2 + 128 + 3·128 = 1,024; their backward 2·128 + 128·2 = 512
    # loss+grad = 1,180,672 + 1,179,904 + 1,024 + 512 + 2,261,248 = 4,623,360
    # clip 3·4610 = 13,830; Adam 14·4610 = 64,540; statistics 3·128 + 128·2 = 640
    assert flops.num_parameters(flops.layer_sizes(4, (64, 64), 2)) == 4610
    assert flops.loss_and_gradient(128, (4, 64, 64, 2)) == 4_623_360
    assert flops.learn(128, (4, 64, 64, 2)) == 4_623_360 + 13_830 + 64_540 + 640


def test_matmul_flops():
    assert flops.matmul(3) == 54  # 3·3 outputs, each 3 multiplies and 3 adds


# One kernel per code path: the kernels left out (act_b256, learn_b128, learn_b512,
# add_256) run the same functions at other batch sizes, and each costs an XLA
# compilation of seconds on a small CPU. The slow test below runs every name.
CODE_PATHS = ["act_b1", "learn_b32", "add_1", "sample_b128", "loss_grad_b128", "adam",
              "sync_target", "iteration"]
TINY = ["--hidden", "8,8", "--dtypes", "float32", "--repeat-in-graph", "1", "--repeats", "2",
        "--block-ms", "0.1", "--replay-capacity", "512", "--peak-n", "32", "--no-bar"]


def run_bench(path, kernels, *extra):
    assert main(["--kernels", *kernels, *TINY, *extra, "--json", str(path)]) == 0
    with open(path) as source:
        return json.load(source)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_bench(tmp_path_factory.mktemp("bench") / "result.json", CODE_PATHS)


def check_rows(result, kernels):
    rows = {(r["kernel"], r["mode"], r["K"]): r for r in result["rows"]}
    assert set(rows) == {(k, m, 1) for k in kernels for m in ("eager", "function", "xla")}
    for row in rows.values():
        for field in ("us_per_call", "us_per_step", "steps_per_s", "compile_ms", "min_s", "max_s"):
            assert math.isfinite(row[field]) and row[field] > 0, (row["kernel"], row["mode"], field)
        assert row["min_s"] <= row["median_s"] <= row["max_s"]
        assert row["us_per_step"] == pytest.approx(row["us_per_call"] / row["K"])
    return rows


def test_every_kernel_code_path_and_mode_has_a_row_with_positive_finite_times(result):
    rows = check_rows(result, CODE_PATHS)
    learn = rows[("learn_b32", "xla", 1)]
    assert learn["flops_per_step"] == flops.learn(32, (4, 8, 8, 2))
    assert learn["gflops"] == pytest.approx(learn["flops_per_step"] / learn["us_per_step"] / 1e3)


@pytest.mark.slow
def test_every_kernel_name_and_mode(tmp_path):
    check_rows(run_bench(tmp_path / "all.json", list(KERNELS), "--no-keras"), list(KERNELS))


def test_repeat_in_graph_runs_k_steps_per_call(tmp_path):
    path = tmp_path / "k.json"
    assert main(["--kernels", "act_b1", "add_1", "--modes", "eager", "xla", "--hidden", "8",
                 "--dtypes", "float64", "--repeat-in-graph", "1", "3", "--repeats", "2",
                 "--block-ms", "0.1", "--replay-capacity", "512", "--peak-n", "32",
                 "--no-keras", "--json", str(path)]) == 0
    with open(path) as source:
        rows = {(r["kernel"], r["mode"], r["K"]): r for r in json.load(source)["rows"]}
    # eager has no graph to repeat in; K=3 rows exist for the compiled mode only.
    assert set(rows) == {(k, m, 1) for k in ("act_b1", "add_1") for m in ("eager", "xla")} | {
        ("act_b1", "xla", 3), ("add_1", "xla", 3)}
    assert rows[("add_1", "xla", 3)]["us_per_call"] == pytest.approx(3 * rows[("add_1", "xla", 3)]["us_per_step"])


def test_keras_baseline_machine_info_memory_and_bar(result):
    kinds = {r["kernel"] for r in result["keras"]}
    assert kinds == {"keras_train_on_batch", "keras_full_update"}
    assert all(r["steps_per_s"] > 0 for r in result["keras"])
    machine = result["machine"]
    assert machine["tensorflow"] and machine["cpu_count"] >= 1 and machine["devices"]
    (memory,) = result["memory"]
    # replay: obs + next_obs 2·512·4 floats, action, reward, terminated 3·512 → 5,632 · 4 bytes
    assert memory["replay_bytes"] >= 512 * (2 * 4 + 3) * 4
    assert memory["model_bytes"] > 0 and memory["peak_rss_bytes"] > 0
    assert result["peak"][0]["gflops"] > 0
    assert not result["bar"]  # the bar is about the (64, 64) network, not run here


def test_table_and_compare_render(result):
    text = report.render(result)
    for kernel in CODE_PATHS:
        assert kernel in text
    side_by_side = compare.render(result, result)
    assert "1.00x" in side_by_side and "geometric mean speed-up" in side_by_side


def test_interleaved_timing_and_the_bar_verdict():
    measured = timing.time_interleaved({"a": lambda: 1, "b": lambda: 2}, repeats=3, block_seconds=1e-4)
    assert set(measured) == {"a", "b"} and all(len(m["rounds_s"]) == 3 for m in measured.values())
    row = lambda name, rate, ratio: {"name": name, "updates_per_s": rate, "keras_ratio": ratio}
    rows = [row("eager K=1", 10, 0.1), row("function K=1", 900, 3), row("xla K=1", 800, 2.5),
            row("function K=100", 2000, 5), row("xla K=100", 3600, 9.5)]
    assert report.interleaved_verdict(rows)["passing"] == ["xla K=100"]
    rows[-1] = row("xla K=100", 3600, 5.9)  # fast, but under 6x Keras
    assert not report.interleaved_verdict(rows)["passes"]


@pytest.mark.slow   # ~20 s of compilation; the suite's time is kept under ~10 min on 2 cores
def test_the_loop_breakdown_and_the_dispatch_benchmark_run(capsys):
    """bench/loop.py's breakdown and bench/dispatch.py, a few calls each: every piece is timed."""
    from bench import dispatch, loop
    pieces = loop.breakdown(calls=20, repeats=1)
    assert len(pieces) == 6 and all(0 < seconds < 1 for seconds in pieces.values())
    dispatch.main(["--calls", "5", "--repeats", "1"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(("collect", "step"))]
    assert [row[0] for row in rows] == ["collect", "step"]
    assert all(float(value) > 0 for row in rows for value in row[1:4])


def conv_bench_rows(capsys, *modes):
    """bench/conv.py on MinAtar's network, one short round, no peers: (rows run, rows not run)."""
    from bench import conv
    conv.main(["--net", "minatar", "--rounds", "1", "--block-ms", "5", "--fill", "64", "--no-sb3", "--no-keras",
               "--modes", *modes])
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith("rawdqn ")]
    not_run = [line for line in out if line.strip().startswith("rawdqn ") and "not run" in line]
    # NCHW runs only where TF has a CPU kernel for it (oneDNN's); every row has a positive time,
    # and none is faster than the floor (the update's FLOPs at the measured peak).
    assert all("NCHW" in line for line in not_run)
    if not_run:   # only where TF itself has no NCHW convolution on this CPU
        import tensorflow as tf
        with pytest.raises(tf.errors.UnimplementedError):
            tf.nn.conv2d(tf.zeros([1, 4, 5, 5]), tf.zeros([3, 3, 4, 2]), 1, "VALID", data_format="NCHW")
    columns = [re.split(r"\s{2,}", line.strip()) for line in rows if "not run" not in line]   # the name has spaces
    assert all(float(fields[1]) > 0 and float(fields[5]) >= 1 for fields in columns)
    return rows, not_run


def test_the_conv_learner_benchmark_runs(capsys):
    """The FLOP count is the hand count 4F − F_conv1; the default mode, XLA, has its row."""
    from bench import conv
    # F per sample: conv 8·8·16·(3·3·4)·2 = 73,728; fc 1024·128·2 = 262,144; 128·3·2 = 768.
    forward = 32 * (73_728 + 262_144 + 768)
    assert conv.update_flops("minatar") == 4 * forward - 32 * 73_728
    rows, not_run = conv_bench_rows(capsys, "xla")   # every mode: the slow test below
    # the update's rows (conv_gradients forward and im2col), the networks' floor
    assert len(rows) == 3 and not not_run and "im2col" in rows[1] and "networks alone" in rows[2]


@pytest.mark.slow
def test_the_conv_learner_benchmark_has_a_row_for_every_variant(capsys):
    rows, not_run = conv_bench_rows(capsys, "eager", "function", "xla", "hybrid")
    # eager 3, function 4, XLA 2, hybrid 3 (im2col in each, NHWC), and the networks alone
    assert len(rows) + len(not_run) == 13 and sum("NHWC" in line for line in rows) == 9


def test_the_operator_benchmark_compiles_every_operator():
    from bench.operators import operators
    calls = operators(batch=8, actions=3, steps=4)
    assert "q_learning_target" in calls and len(calls) == 12
    for name, call in calls.items():
        result = call()
        first = result[0] if isinstance(result, tuple) else result
        assert first.shape[0] in (8, 4), name   # [B], or [T, B / T] for the multi-step returns


def test_the_minatar_peer_names_each_game_as_both_sides_spell_it():
    # MinAtar's Environment("space_invaders") is rawdqn's MinAtar/SpaceInvaders-v1.
    from bench.minatar_peer import rawdqn_game
    assert [rawdqn_game(game) for game in ("breakout", "space_invaders", "seaquest")] == [
        "Breakout", "SpaceInvaders", "Seaquest"]


def test_the_conv_forms_benchmark_times_every_form_on_a_layer(capsys):
    from bench import conv_forms
    from rawdqn.conv import CONV_GRADIENTS
    rng = np.random.default_rng(0)
    for form in CONV_GRADIENTS:   # MinAtar's layer, then a later layer (the input's gradient too)
        kernel_gradient, = conv_forms.layer_call(form, (10, 10, 4), 16, 3, 1, True, 2, rng)()
        assert kernel_gradient.shape == (3, 3, 4, 16)
        kernel_gradient, input_gradient = conv_forms.layer_call(form, (9, 9, 8), 4, 3, 2, False, 2, rng)()
        assert kernel_gradient.shape == (3, 3, 8, 4) and input_gradient.shape == (2, 9, 9, 8)


def test_the_pqn_peer_reads_cleanrls_lines_and_refuses_bad_values(tmp_path, capsys):
    """run_peer against a stand-in that prints what CleanRL's pqn.py prints; bad flags exit 2."""
    from bench import pqn_peer
    fake = tmp_path / "pqn.py"
    fake.write_text("import sys\n"
                    "steps = int(sys.argv[sys.argv.index('--total-timesteps') + 1])\n"
                    "for step in range(512, steps + 1, 512):\n"
                    "    print(f'global_step={step}, episodic_return=[{step / 512:.1f}]')\n"
                    "    print('SPS:', 1000 + step)\n")
    result = pqn_peer.run_peer(sys.executable, str(fake), 30 * 512, 1, str(tmp_path))
    assert result["rate"] == 1000 + 30 * 512
    assert result["return"] == sum(range(11, 31)) / 20   # the last 20 episodes: 11.0 … 30.0
    assert 0 < result["whole"] < 30 * 512 / 0.01
    for argv, message in ((["--sides", "gymnasium", "--steps", "100"], "--steps must hold one rollout"),
                          (["--sides", "gymnasium", "--rounds", "0"], "--rounds must be at least 1"),
                          (["--peer-script", str(tmp_path / "missing.py")], "--peer-script must name")):
        with pytest.raises(SystemExit) as exit_info:
            pqn_peer.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
