"""OpenCL host wrappers of the sequence family (kernels in kernels/sequence.cl).

Signatures are those of refnn.ops.sequence with the backend first (time-major
(T, N, C)); shapes and the subsequence geometry are checked by the reference's helpers.
Arrays stay on the device. The reorderings all launch the one step_gather kernel
(y[i] = x[(start + step i) mod T]) and its gathering transpose step_scatter.
"""
import numpy as np

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, real
from refnn.errors import ShapeError
from refnn.ops import sequence as ref


def _launch(be, name, n, *args):
    be.kernel("sequence", name)(be.queue, global_1d(n), (LOCAL_1D,), *args, np.uint32(n))


def _seq(be, op, x):
    ref.check_sequence(op, np.shape(x))
    x = device_input(be, op, "x", x)
    if x.size >= 2 ** 31:
        raise ShapeError(f"{op}: x must have fewer than 2**31 elements, got {x.shape}")
    return x


def _grad(be, op, dy, shape, dtype):
    if tuple(np.shape(dy)) != tuple(shape):
        raise ShapeError(f"{op}: dy must have shape {tuple(shape)}, got {tuple(np.shape(dy))}")
    return device_input(be, op, "dy", dy, dtype)


# ------------------------------------------------------------------ reductions over time
def _reduce(be, op, x, mean):
    x = _seq(be, op, x)
    y = be.empty(x.shape[1:])
    scale = 1.0 / x.shape[0] if mean else 1.0
    _launch(be, "time_sum", y.size, x.data, y.data, np.int32(x.shape[0]), real(be, scale))
    return y, (x.shape, x.dtype, scale)


def _broadcast(be, op, dy, saved):
    shape, dtype, scale = saved
    dy = _grad(be, op, dy, shape[1:], dtype)
    dx = be.empty(shape, dtype)
    _launch(be, "time_broadcast", dx.size, dy.data, dx.data, np.int32(dy.size),
            real(be, scale))
    return (dx,)


def seq_sum_forward(be, x):
    return _reduce(be, "seq_sum", x, mean=False)


def seq_sum_backward(be, dy, saved):
    return _broadcast(be, "seq_sum", dy, saved)


def seq_mean_forward(be, x):
    return _reduce(be, "seq_mean", x, mean=True)


def seq_mean_backward(be, dy, saved):
    return _broadcast(be, "seq_mean", dy, saved)


# ------------------------------------------------------------------ gathers of time steps
def _gather(be, x, start, step, L, out_shape=None):
    T, NC = x.shape[0], x.size // x.shape[0]
    y = be.empty(out_shape or (L,) + x.shape[1:])
    _launch(be, "step_gather", y.size, x.data, y.data, *np.int32([T, NC, start, step]))
    return y, (x.shape, x.dtype, start, step, L, y.shape)


def _scatter(be, op, dy, saved):
    shape, dtype, start, step, L, out_shape = saved
    dy = _grad(be, op, dy, out_shape, dtype)
    dx = be.empty(shape, dtype)
    T, NC = shape[0], dx.size // shape[0]
    _launch(be, "step_scatter", dx.size, dy.data, dx.data,
            *np.int32([T, NC, L, start, step]))
    return (dx,)


def seq_last_forward(be, x):
    x = _seq(be, "seq_last", x)
    return _gather(be, x, x.shape[0] - 1, 1, 1, out_shape=x.shape[1:])


def seq_last_backward(be, dy, saved):
    return _scatter(be, "seq_last", dy, saved)


def subsequence_forward(be, x, start_pos=0, length=1):
    x = _seq(be, "subsequence", x)
    s, L, step = ref.subsequence_geometry(x.shape[0], start_pos, length)
    return _gather(be, x, s, step, L)


def subsequence_backward(be, dy, saved):
    return _scatter(be, "subsequence", dy, saved)


def reverse_sequence_forward(be, x):
    x = _seq(be, "reverse_sequence", x)
    return _gather(be, x, x.shape[0] - 1, -1, x.shape[0])


def reverse_sequence_backward(be, dy, saved):
    return _scatter(be, "reverse_sequence", dy, saved)


def repeat_sequence_forward(be, x, repeat_count=1):
    x = _seq(be, "repeat_sequence", x)
    R = ref.repeat_count_checked(repeat_count)
    if R * x.size >= 2 ** 31:
        raise ShapeError(f"repeat_sequence: the result must have fewer than 2**31 "
                         f"elements, got {R} x {x.shape}")
    return _gather(be, x, 0, 1, R * x.shape[0])


def repeat_sequence_backward(be, dy, saved):
    return _scatter(be, "repeat_sequence", dy, saved)


# ------------------------------------------------------------------ cumulative sum
def _cumsum(be, x, y, axis, reverse):
    M = x.shape[axis]
    Q = int(np.prod(x.shape[axis + 1:]))
    _launch(be, "cumsum", x.size // M, x.data, y.data, np.int32(M), np.int32(Q),
            np.int32(bool(reverse)))


def cumsum_forward(be, x, axis=0, reverse=False):
    axis = ref.cumsum_axis("cumsum", np.shape(x), axis)
    x = device_input(be, "cumsum", "x", x)
    if x.size >= 2 ** 31:
        raise ShapeError(f"cumsum: x must have fewer than 2**31 elements, got {x.shape}")
    y = be.empty(x.shape)
    _cumsum(be, x, y, axis, reverse)
    return y, (x.shape, x.dtype, axis, bool(reverse))


def cumsum_backward(be, dy, saved):
    shape, dtype, axis, reverse = saved
    dy = _grad(be, "cumsum", dy, shape, dtype)
    dx = be.empty(shape, dtype)
    _cumsum(be, dy, dx, axis, not reverse)
    return (dx,)
