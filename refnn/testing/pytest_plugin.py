"""pytest helpers (imports pytest): backend fixtures, pyopencl-style.

``backend_names()`` lists the fast backends to test: $REFNN_TEST_BACKENDS (comma
separated; default "cpu,opencl"). ``make_backend(name)`` creates one; OpenCL uses the
default device (PoCL's CPU device when no GPU exists) -- never skipped for lack of a GPU.
"""
import os

import numpy as np


def backend_names():
    raw = os.environ.get("REFNN_TEST_BACKENDS", "cpu,opencl")
    return [n.strip() for n in raw.split(",") if n.strip()]


def make_backend(name, dtype=np.float32):
    from refnn.backends import get_backend
    return get_backend(name, dtype=dtype)
