"""OpenCL host wrappers of the activation family (kernels in kernels/activation.cl).

Signatures are those of refnn.ops.activation with the backend first; arrays stay on
the device.
"""
import numpy as np

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, like, real


def identity_forward(be, x):
    x = device_input(be, "identity", "x", x)
    return x.copy(queue=be.queue), ()


def identity_backward(be, dy, saved):
    return (dy.copy(queue=be.queue),)


def relu_forward(be, x, threshold=0.0):
    x = device_input(be, "relu", "x", x)
    y = be.empty(x.shape)
    be.kernel("activation", "relu_forward")(
        be.queue, global_1d(x.size), (LOCAL_1D,), x.data, y.data,
        real(be, threshold), np.uint32(x.size))
    return y, (x, threshold)


def relu_backward(be, dy, saved):
    x, threshold = saved
    dy = like(be, "relu", "dy", dy, x)
    dx = be.empty(x.shape)
    be.kernel("activation", "relu_backward")(
        be.queue, global_1d(x.size), (LOCAL_1D,), dy.data, x.data, dx.data,
        real(be, threshold), np.uint32(x.size))
    return (dx,)
