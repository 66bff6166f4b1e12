"""rawdqn: deep Q-learning in pure, low-level TensorFlow.

Importing the package imports TensorFlow quietly: on a machine without a GPU,
TensorFlow's CUDA probe writes driver errors to stderr before its logging is
configured, which says nothing useful to a CPU user.
"""
from rawdqn._quiet import import_tensorflow_quietly

tf = import_tensorflow_quietly()
del tf

__version__ = "0.1.0"
