"""scripts/check_a2c.py: flags after `--` reach every rawdqn train wherever the script's own flags
stand, the program's clock is read off its last line, and --required's bad values are refused."""
import os
import sys

import pytest

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")


@pytest.fixture()
def check_a2c(monkeypatch):
    monkeypatch.syspath_prepend(SCRIPTS)
    import check_a2c
    return check_a2c


def test_flags_after_the_separator_reach_the_program_and_eight_seeds_need_seven(check_a2c, monkeypatch, capsys):
    seen = []

    def fake_loop(env_id, seeds, algo, extra):
        seen.append((env_id, tuple(seeds), algo, tuple(extra)))
        return [500.0] * 7 + [10.0], 1.0
    monkeypatch.setattr(check_a2c, "on_device_loop", fake_loop)
    monkeypatch.setattr(sys, "argv", ["check_a2c.py", "CartPole-v1", "--algo", "pqn", "--loop", "on-device",
                                      "--seeds", *map(str, range(8)), "--", "--seed-axis", "batched"])
    assert check_a2c.main() == 0   # 7 of 8: all but one
    assert seen == [("CartPole-v1", tuple(range(8)), "pqn", ("--seed-axis", "batched"))]
    monkeypatch.setattr(sys, "argv", sys.argv[:-3] + ["--required", "8"])
    assert check_a2c.main() == 1
    assert "7/8 seeds ≥ 475" in capsys.readouterr().out


def test_the_program_clock_is_read_from_its_evaluation_line(check_a2c):
    line = "evaluation: mean return 500.00 ± 0.00 over 10 greedy episodes (500,000 steps in 28.1 s; compile 10.6 s)"
    assert check_a2c.CLOCK.search(line).groups() == ("500,000", "28.1", "10.6")


@pytest.mark.parametrize("required", ["-1", "9"])
def test_a_required_count_outside_the_seeds_is_refused(check_a2c, monkeypatch, capsys, required):
    monkeypatch.setattr(sys, "argv", ["check_a2c.py", "--seeds", *map(str, range(8)), "--required", required])
    with pytest.raises(SystemExit) as stop:
        check_a2c.main()
    assert stop.value.code == 2 and "--required must be between 0 and the 8 seeds" in capsys.readouterr().err
