"""Files a command writes at the end (a plot, a video): checked before the work that makes them."""
import os

from rawdqn.errors import UsageError


def check_output_file(path, flag="--out", extensions=None):
    """Raise a one-line UsageError unless `path` has one of `extensions` and its folder takes a new file.

    Called before training or rendering, so a typo in the path costs a second, not the run.
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extensions is not None and extension not in extensions:
        names = sorted(extensions)
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise UsageError(f"{flag} must end in {listed}; got {path!r}")
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        problem = "is not a folder" if os.path.exists(folder) else "does not exist"
        raise UsageError(f"cannot write {path}: {folder} {problem}")
    probe = os.path.join(folder, f".rawdqn-write-test-{os.getpid()}")
    try:
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def figure_extensions():
    """The file types matplotlib can save ('.png', '.pdf', '.svg', …); matplotlib must be importable."""
    from matplotlib.backend_bases import FigureCanvasBase
    return {"." + name for name in FigureCanvasBase.get_supported_filetypes()}
