"""refnn.neoml: ABBYY NeoML's Python API (``neoml``) on refnn's ops.

``import refnn.neoml as neoml`` replaces ``import neoml`` in NeoML scripts (MLP-level
layers: Source, Sink, FullyConnected, the activation layers, Softmax, Dropout, the
cross-entropy/binary cross-entropy/Euclidean losses, Accuracy; Xavier/XavierUniform/
Uniform initializers; SimpleGradient/AdaptiveGradient/NesterovGradient solvers).

Engines (:mod:`refnn.neoml.MathEngine`): ``CpuMathEngine()`` runs the Cython kernels,
``GpuMathEngine(i)`` the OpenCL kernels on the i-th OpenCL GPU of ``enum_gpu()``;
refnn adds ``ReferenceMathEngine()`` (the readable NumPy reference) and
``OpenCLMathEngine(device)`` (any OpenCL device, e.g. PoCL's CPU device on a machine
without a GPU).

The facade owns conventions only (7-D blobs, channels last, NeoML's weight shapes and
loss/solver rules); the arithmetic is refnn's ops. Behaviour follows the real NeoML
2.0.210 (see the docstrings), except where NeoML's gradients are wrong: refnn computes
the true gradient.
"""
from refnn.neoml import Blob, Dnn, MathEngine, Random

__all__ = ["Blob", "Dnn", "MathEngine", "Random"]
