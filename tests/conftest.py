import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rawdqn  # noqa: E402,F401  (quiet TensorFlow import before the tests import it)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
