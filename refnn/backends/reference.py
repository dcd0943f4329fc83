"""The reference backend: NumPy arrays, and the op functions of refnn.ops themselves.

It runs in whatever floating dtype it is created with (float64 for gradient checks).
The table below is the whole dispatch: op name -> the readable function in refnn.ops.
"""
from refnn.backends.base import HostBackend
from refnn.ops import activation, dense, loss, optim

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


class ReferenceBackend(HostBackend):
    """NumPy backend; op(name) returns the refnn.ops function unchanged."""

    name = "reference"
    KERNELS = KERNELS

    def gemm(self, A, B, C=None, alpha=1.0, beta=0.0):
        """C = alpha * A @ B + beta * C (A, B may be transposed views); returns C."""
        out = alpha * (A @ B)
        if C is None:
            return out
        C[...] = out + beta * C if beta else out
        return C
