"""cpu wrappers of the sequence family: validate, allocate, call refnn._ext.sequence.

Signatures and return conventions are those of refnn.ops.sequence (time-major (T, N, C));
shapes and the subsequence geometry are checked by the reference's helpers, so every
backend reports bad input alike. The reorderings all run as one gather of whole time
steps, y[i] = x[(start + step i) mod T] (and its transpose for the backward).
"""
import numpy as np

from refnn._ext import sequence as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import check_same_shape
from refnn.ops import sequence as ref


def _seq(op, x):
    x = float_input(op, "x", x)
    ref.check_sequence(op, x.shape)
    return x


def _grad(op, dy, shape, dtype):
    check_same_shape(op, "dy", np.shape(dy), shape)
    return float_input(op, "dy", dy, dtype)


# ------------------------------------------------------------------ reductions over time
def _reduce(op, x, mean):
    x = _seq(op, x)
    y = np.empty(x.shape[1:], x.dtype)
    scale = 1.0 / x.shape[0] if mean else 1.0
    _k.time_sum(x, y, scale, n_threads())
    return y, (x.shape, x.dtype, scale)


def _broadcast(op, dy, saved):
    shape, dtype, scale = saved
    dy = _grad(op, dy, shape[1:], dtype)
    dx = np.empty(shape, dtype)
    _k.time_broadcast(dy, dx, scale, n_threads())
    return (dx,)


def seq_sum_forward(x):
    return _reduce("seq_sum", x, mean=False)


def seq_sum_backward(dy, saved):
    return _broadcast("seq_sum", dy, saved)


def seq_mean_forward(x):
    return _reduce("seq_mean", x, mean=True)


def seq_mean_backward(dy, saved):
    return _broadcast("seq_mean", dy, saved)


# ------------------------------------------------------------------ gathers of time steps
def _gather(x, start, step, L):
    y = np.empty((L,) + x.shape[1:], x.dtype)
    _k.step_gather(x, y, start, step, n_threads())
    return y, (x.shape, x.dtype, start, step, L)


def _scatter(op, dy, saved, out_shape=None):
    shape, dtype, start, step, L = saved
    dy = _grad(op, dy, out_shape or (L,) + shape[1:], dtype).reshape((L,) + shape[1:])
    dx = np.zeros(shape, dtype)
    _k.step_scatter(dy, dx, start, step, n_threads())
    return (dx,)


def seq_last_forward(x):
    x = _seq("seq_last", x)
    y, saved = _gather(x, x.shape[0] - 1, 1, 1)
    return y.reshape(x.shape[1:]), saved


def seq_last_backward(dy, saved):
    return _scatter("seq_last", dy, saved, out_shape=saved[0][1:])


def subsequence_forward(x, start_pos=0, length=1):
    x = _seq("subsequence", x)
    s, L, step = ref.subsequence_geometry(x.shape[0], start_pos, length)
    return _gather(x, s, step, L)


def subsequence_backward(dy, saved):
    return _scatter("subsequence", dy, saved)


def reverse_sequence_forward(x):
    x = _seq("reverse_sequence", x)
    return _gather(x, x.shape[0] - 1, -1, x.shape[0])


def reverse_sequence_backward(dy, saved):
    return _scatter("reverse_sequence", dy, saved)


def repeat_sequence_forward(x, repeat_count=1):
    x = _seq("repeat_sequence", x)
    R = ref.repeat_count_checked(repeat_count)
    return _gather(x, 0, 1, R * x.shape[0])


def repeat_sequence_backward(dy, saved):
    return _scatter("repeat_sequence", dy, saved)


# ------------------------------------------------------------------ cumulative sum
def _lines(shape, axis):
    """shape as (P, M, Q): the axes before ``axis``, ``axis`` itself, the axes after."""
    return (int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:])))


def cumsum_forward(x, axis=0, reverse=False):
    x = float_input("cumsum", "x", x)
    axis = ref.cumsum_axis("cumsum", x.shape, axis)
    y = np.empty_like(x)
    lines = _lines(x.shape, axis)
    _k.cumsum(x.reshape(lines), y.reshape(lines), bool(reverse), n_threads())
    return y, (x.shape, x.dtype, axis, bool(reverse))


def cumsum_backward(dy, saved):
    shape, dtype, axis, reverse = saved
    dy = _grad("cumsum", dy, shape, dtype)
    dx = np.empty_like(dy)
    lines = _lines(shape, axis)
    _k.cumsum(dy.reshape(lines), dx.reshape(lines), not reverse, n_threads())
    return (dx,)
