"""The cpu backend: NumPy arrays in host memory, arithmetic in the Cython kernels of refnn._ext.

Each family has a wrapper module here (dense.py, activation.py, ...) that
validates shapes, dtypes and contiguity, allocates outputs and calls the kernel: the
kernels themselves check nothing (bounds checks are off) and are reached only through
these wrappers. The table below is the whole dispatch.

Threads: kernels use OpenMP with n_threads threads (default: all cores, or
$REFNN_NUM_THREADS); BLAS calls go through scipy's BLAS.
"""
import numpy as np

from refnn.backends.base import BackendError, HostBackend
from refnn.backends.cpu import activation, dense, loss, optim

KERNELS = {
    # --- dense (linear, bias)
    "linear.forward": dense.linear_forward,
    "linear.backward": dense.linear_backward,
    "bias.forward": dense.bias_forward,
    "bias.backward": dense.bias_backward,
    # --- activation
    "identity.forward": activation.identity_forward,
    "identity.backward": activation.identity_backward,
    "relu.forward": activation.relu_forward,
    "relu.backward": activation.relu_backward,
    # --- loss
    # --- optim
}


class CpuBackend(HostBackend):
    """Cython/BLAS backend (float32 by default, float64 supported)."""

    name = "cpu"
    KERNELS = KERNELS

    def __init__(self, dtype=np.float32):
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise BackendError(f"CpuBackend: dtype must be float32 or float64, got {dtype}")
        super().__init__(dtype)

    def gemm(self, A, B, C=None, alpha=1.0, beta=0.0):
        """C = alpha * A @ B + beta * C through BLAS sgemm/dgemm; A, B may be .T views."""
        return dense.gemm(A, B, C, alpha, beta)
