"""Import TensorFlow without its CUDA start-up noise on machines with no GPU."""
import os
import sys


def import_tensorflow_quietly():
    """Return the tensorflow module, importing it with C++ stderr muted.

    TF_CPP_MIN_LOG_LEVEL hides TensorFlow's own logs, but the CUDA stub prints
    through absl before logging is initialised, so fd 2 is muted for the
    import itself. Python errors still surface: they are raised after the
    descriptor is restored. A user who sets TF_CPP_MIN_LOG_LEVEL keeps it.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        sys.stderr.flush()
        saved_stderr = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. some notebooks)
        import tensorflow
        return tensorflow
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
        # Device discovery (where cuInit complains) happens lazily; do it now.
        tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
    return tensorflow
