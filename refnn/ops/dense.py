"""Dense family: the fully connected layer, split into its two ops.

Canonical layout: batch-first, ``x`` is (N, C_in) -- N samples of C_in features.
A fully connected layer ``y = x W^T + b`` is ``linear`` followed by ``bias``; keeping
them apart lets a layer without bias (or a bias after a convolution) reuse either op.

Shapes: W is (C_out, C_in) (one row of weights per output feature, as in NeoML and
PyTorch), b is (C_out,).
"""
from refnn.ops._spec import OpSpec


def linear_forward(x, W):
    """y = x W^T, i.e. y_nj = sum_i x_ni W_ji.

    x: (N, C_in), W: (C_out, C_in) -> y: (N, C_out).

    >>> import numpy as np
    >>> linear_forward(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]]))[0]
    array([[11.]])
    """
    return x @ W.T, (x, W)


def linear_backward(dy, saved, *, need_dx=True):
    """dx = dy W      (dx_ni = sum_j dy_nj W_ji),
    dW = dy^T x       (dW_ji = sum_n dy_nj x_ni).

    ``need_dx=False`` skips dx (returned as None): the first layer of a network has
    no one to pass it to, and it costs as much as the forward pass.
    """
    x, W = saved
    dx = dy @ W if need_dx else None
    dW = dy.T @ x
    return dx, dW


def bias_forward(x, b):
    """y = x + b, i.e. y_nj = x_nj + b_j (b broadcast over the batch).

    x: (N, C), b: (C,) -> y: (N, C).

    >>> import numpy as np
    >>> bias_forward(np.zeros((2, 1)), np.array([5.0]))[0]
    array([[5.],
           [5.]])
    """
    return x + b, ()


def bias_backward(dy, saved):
    """dx = dy,  db_j = sum_n dy_nj (b was added to every sample)."""
    return dy.copy(), dy.sum(axis=0)


SPECS = [
    OpSpec("linear", "dense", linear_forward, linear_backward, layout="NC"),
    OpSpec("bias", "dense", bias_forward, bias_backward, layout="NC"),
]
