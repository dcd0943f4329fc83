"""refnn: a neural-network library to read, to trust as an oracle, and to train with.

Every op has a readable NumPy reference in :mod:`refnn.ops`, a Cython fast path
(``cpu`` backend) and a PyOpenCL fast path (``opencl`` backend), and is reachable
through two public APIs: :mod:`refnn.neon` and :mod:`refnn.neoml`.

Importing refnn imports neither pytest nor hypothesis, and does not touch OpenCL
until an OpenCL backend is asked for.
"""
from refnn.backends import get_backend, available_backends

__version__ = "0.1.0"
__all__ = ["get_backend", "available_backends", "__version__"]
