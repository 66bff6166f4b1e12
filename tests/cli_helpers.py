"""Running `rawdqn ARGV` inside the test process, and checking its one-line usage errors."""
from rawdqn.cli import main


def cli(capsys, *argv):
    """`rawdqn ARGV` in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exit:  # argparse rejecting a flag
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_usage_error(result, message):
    code, _, err = result
    assert code == 2, err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
