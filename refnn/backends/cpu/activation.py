"""cpu wrappers of the activation family: validate, allocate, call refnn._ext.activation.

Each function has the signature and return convention of refnn.ops.activation.
"""
import numpy as np

from refnn._ext import activation as _k
from refnn.backends.cpu._common import float_input, like, n_threads


def identity_forward(x):
    x = float_input("identity", "x", x)
    return x.copy(), ()


def identity_backward(dy, saved):
    return (np.array(dy, copy=True),)


def relu_forward(x, threshold=0.0):
    x = float_input("relu", "x", x)
    y = np.empty_like(x)
    _k.relu_forward(x.reshape(-1), y.reshape(-1), float(threshold), n_threads())
    return y, (x, float(threshold))


def relu_backward(dy, saved):
    x, threshold = saved
    dy = like("relu", "dy", dy, x)
    dx = np.empty_like(x)
    _k.relu_backward(dy.reshape(-1), x.reshape(-1), dx.reshape(-1), threshold, n_threads())
    return (dx,)
