"""Activation family: elementwise functions y = f(x) on arrays of any shape.

Canonical layout: any (elementwise). Each op is ``<name>_forward(x, **params) ->
(y, saved)`` and ``<name>_backward(dy, saved) -> (dx,)`` with dx = dy * f'(x).
"""
import numpy as np

from refnn.ops._spec import OpSpec


def identity_forward(x):
    """y = x"""
    return x.copy(), ()


def identity_backward(dy, saved):
    """dx = dy"""
    return (dy.copy(),)


def relu_forward(x, threshold=0.0):
    """y = max(x, 0), clipped from above at ``threshold`` when threshold > 0 (NeoML ReLU).

    >>> relu_forward(np.array([-1.0, 2.0]))[0]
    array([0., 2.])
    """
    y = np.maximum(x, 0)
    if threshold > 0:
        y = np.minimum(y, threshold)
    return y, (x, threshold)


def relu_backward(dy, saved):
    """dx = dy * [0 < x] (* [x < threshold] when a threshold is set)"""
    x, threshold = saved
    mask = x > 0
    if threshold > 0:
        mask &= x < threshold
    return (dy * mask,)


SPECS = [
    OpSpec("identity", "activation", identity_forward, identity_backward),
    OpSpec("relu", "activation", relu_forward, relu_backward, kinks=(0.0,)),
]
