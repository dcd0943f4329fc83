"""Sequence family: reductions, reorderings and cumulative sums over the time axis.

Canonical layout: time-major ``x`` (T, N, C) -- T time steps of a batch of N sequences
of C features (NeoML's BatchLength x BatchWidth x object; neon's (features, T*N) is
converted by the facade). Every sequence of the batch has the same length T >= 1.

    seq_sum:          y[n, c] = sum_t x[t, n, c]                       (T, N, C) -> (N, C)
    seq_mean:         y[n, c] = (1/T) sum_t x[t, n, c]                 (T, N, C) -> (N, C)
    seq_last:         y[n, c] = x[T-1, n, c]                           (T, N, C) -> (N, C)
    subsequence:      y[i] = x[s + i] (length >= 0) or x[s - i] (length < 0), i < L
    reverse_sequence: y[t] = x[T-1-t]
    repeat_sequence:  y[r T + t] = x[t] for r < repeat_count           -> (R T, N, C)
    cumsum:           y[.., j, ..] = sum_{i <= j} x[.., i, ..] along ``axis``
                      (sum_{i >= j} with reverse=True); any shape, axis 0 = time.

``subsequence`` follows NeoML's SubSequence exactly: with M = T,

    s = min(start_pos, M)        if start_pos >= 0   (negative start_pos counts from the end)
    s = max(0, M + start_pos)    otherwise
    L = min(length, M - s)                 if length >= 0
    L = min(-max(length, -M), s + 1)       if length < 0   (walks backwards from s)

A result with L = 0 time steps (or a reversed walk starting past the end) is an error
here (NeoML has no empty blobs). ``reverse_sequence`` is ``subsequence(start_pos=-1,
length=-T)``, NeoML's ReverseSequence.

Every op but the reductions and cumsum is a *gather of whole time steps*,
``y[i] = x[src(i)]`` with ``src(i) = (start + step * i) mod T`` (step = +1 or -1): its
backward adds each dy[i] back onto dx[src(i)]. The fast paths implement exactly that one
pattern (see ``step_gather``); this reference writes each op with plain slicing.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError, check_same_shape
from refnn.ops._spec import OpSpec


def check_sequence(op, shape):
    """x must be (T, N, C) with T, N, C >= 1."""
    shape = tuple(shape)
    if len(shape) != 3:
        raise ShapeError(f"{op}: x must be a time-major sequence (T, N, C), got shape "
                         f"{shape} (rank {len(shape)})")
    if min(shape) < 1:
        raise ShapeError(f"{op}: x (T, N, C) needs T, N, C >= 1, got {shape}")
    return shape


def _int(op, what, v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ParameterError(f"{op}: {what} must be an int, got {v!r}")
    return int(v)


def subsequence_geometry(T, start_pos, length, op="subsequence"):
    """NeoML's (start s, length L, step) of a subsequence of a T-step sequence."""
    start_pos, length = _int(op, "start_pos", start_pos), _int(op, "length", length)
    s = min(start_pos, T) if start_pos >= 0 else max(0, T + start_pos)
    if length >= 0:
        L, step = min(length, T - s), 1
    else:
        L, step = min(-max(length, -T), s + 1), -1
        if s >= T:
            raise ParameterError(f"{op}: a reversed subsequence (length={length}) must "
                                 f"start inside the sequence, got start_pos={start_pos} "
                                 f"for T={T}")
    if L < 1:
        raise ParameterError(f"{op}: start_pos={start_pos}, length={length} select no time "
                             f"step of a sequence of T={T} (the result would be empty)")
    return s, L, step


def repeat_count_checked(repeat_count, op="repeat_sequence"):
    r = _int(op, "repeat_count", repeat_count)
    if r < 1:
        raise ParameterError(f"{op}: repeat_count must be >= 1, got {r}")
    return r


def step_gather(x, start, step, L):
    """y[i] = x[(start + step i) mod T] for i < L -- the pattern of the fast paths."""
    T = x.shape[0]
    return x[(start + step * np.arange(L)) % T]


def step_scatter(dy, start, step, T):
    """The transpose of step_gather: dx[(start + step i) mod T] += dy[i]."""
    dx = np.zeros((T,) + dy.shape[1:], dy.dtype)
    np.add.at(dx, (start + step * np.arange(dy.shape[0])) % T, dy)
    return dx


def _check_dy(op, dy, shape):
    check_same_shape(op, "dy", np.shape(dy), shape)


# ------------------------------------------------------------------ reductions over time
def seq_sum_forward(x):
    """y[n, c] = sum_t x[t, n, c];  x (T, N, C) -> y (N, C)"""
    check_sequence("seq_sum", x.shape)
    return x.sum(axis=0), (x.shape,)


def seq_sum_backward(dy, saved):
    """dx[t, n, c] = dy[n, c]"""
    (shape,) = saved
    _check_dy("seq_sum", dy, shape[1:])
    return (np.broadcast_to(dy, shape).copy(),)


def seq_mean_forward(x):
    """y[n, c] = (1/T) sum_t x[t, n, c];  x (T, N, C) -> y (N, C)"""
    check_sequence("seq_mean", x.shape)
    return x.mean(axis=0), (x.shape,)


def seq_mean_backward(dy, saved):
    """dx[t, n, c] = dy[n, c] / T"""
    (shape,) = saved
    _check_dy("seq_mean", dy, shape[1:])
    return (np.broadcast_to(dy / shape[0], shape).copy(),)


def seq_last_forward(x):
    """y[n, c] = x[T-1, n, c];  x (T, N, C) -> y (N, C)"""
    check_sequence("seq_last", x.shape)
    return x[-1].copy(), (x.shape,)


def seq_last_backward(dy, saved):
    """dx[T-1] = dy, dx[t] = 0 for t < T-1"""
    (shape,) = saved
    _check_dy("seq_last", dy, shape[1:])
    dx = np.zeros(shape, dy.dtype)
    dx[-1] = dy
    return (dx,)


# ------------------------------------------------------------------ reorderings of time steps
def subsequence_forward(x, start_pos=0, length=1):
    """y[i] = x[s + i] (length >= 0) or y[i] = x[s - i] (length < 0), i < L.

    x (T, N, C) -> y (L, N, C); s and L as NeoML computes them (module docstring).

    >>> subsequence_forward(np.arange(5.0).reshape(5, 1, 1), -2, -3)[0].ravel()
    array([3., 2., 1.])
    """
    T = check_sequence("subsequence", x.shape)[0]
    s, L, step = subsequence_geometry(T, start_pos, length)
    y = x[s:s + L] if step > 0 else x[s - L + 1:s + 1][::-1]
    return y.copy(), (x.shape, s, L, step)


def subsequence_backward(dy, saved):
    """dx[s + step i] = dy[i]; the other time steps get 0."""
    shape, s, L, step = saved
    _check_dy("subsequence", dy, (L,) + shape[1:])
    dx = np.zeros(shape, dy.dtype)
    if step > 0:
        dx[s:s + L] = dy
    else:
        dx[s - L + 1:s + 1] = dy[::-1]
    return (dx,)


def reverse_sequence_forward(x):
    """y[t] = x[T-1-t]"""
    check_sequence("reverse_sequence", x.shape)
    return x[::-1].copy(), (x.shape,)


def reverse_sequence_backward(dy, saved):
    """dx[t] = dy[T-1-t]"""
    (shape,) = saved
    _check_dy("reverse_sequence", dy, shape)
    return (dy[::-1].copy(),)


def repeat_sequence_forward(x, repeat_count=1):
    """y[r T + t] = x[t] for r < repeat_count: the whole sequence, repeat_count times
    one after the other (NeoML's RepeatSequence). x (T, N, C) -> y (R T, N, C)."""
    check_sequence("repeat_sequence", x.shape)
    R = repeat_count_checked(repeat_count)
    return np.concatenate([x] * R, axis=0), (x.shape, R)


def repeat_sequence_backward(dy, saved):
    """dx[t] = sum_r dy[r T + t]"""
    shape, R = saved
    _check_dy("repeat_sequence", dy, (R * shape[0],) + shape[1:])
    return (dy.reshape((R,) + shape).sum(axis=0),)


# ------------------------------------------------------------------ cumulative sum
def cumsum_axis(op, shape, axis):
    """``axis`` as a non-negative int (negative counts from the last axis)."""
    axis = _int(op, "axis", axis)
    if len(shape) < 1:
        raise ShapeError(f"{op}: x must have at least one axis, got shape {tuple(shape)}")
    if not -len(shape) <= axis < len(shape):
        raise ParameterError(f"{op}: axis {axis} is out of range for x of shape "
                             f"{tuple(shape)}")
    if min(shape) < 1:
        raise ShapeError(f"{op}: x must not be empty, got shape {tuple(shape)}")
    return axis % len(shape)


def cumsum_forward(x, axis=0, reverse=False):
    """y[.., j, ..] = sum_{i <= j} x[.., i, ..] along ``axis`` (NeoML's CumSum);
    reverse=True sums the other way: y[.., j, ..] = sum_{i >= j} x[.., i, ..].

    >>> cumsum_forward(np.array([1.0, 2.0, 3.0]), reverse=True)[0]
    array([6., 5., 3.])
    """
    axis = cumsum_axis("cumsum", x.shape, axis)
    if reverse:
        y = np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)
    else:
        y = np.cumsum(x, axis=axis)
    return np.ascontiguousarray(y), (x.shape, axis, bool(reverse))


def cumsum_backward(dy, saved):
    """dx = the cumulative sum of dy in the *other* direction (each x[i] feeds every
    y[j] with j >= i, so dx[i] = sum_{j >= i} dy[j])."""
    shape, axis, reverse = saved
    _check_dy("cumsum", dy, shape)
    return (cumsum_forward(dy, axis, not reverse)[0],)


SPECS = [
    OpSpec("seq_sum", "sequence", seq_sum_forward, seq_sum_backward, layout="TNC"),
    OpSpec("seq_mean", "sequence", seq_mean_forward, seq_mean_backward, layout="TNC"),
    OpSpec("seq_last", "sequence", seq_last_forward, seq_last_backward, layout="TNC"),
    OpSpec("subsequence", "sequence", subsequence_forward, subsequence_backward,
           layout="TNC"),
    OpSpec("reverse_sequence", "sequence", reverse_sequence_forward,
           reverse_sequence_backward, layout="TNC"),
    OpSpec("repeat_sequence", "sequence", repeat_sequence_forward,
           repeat_sequence_backward, layout="TNC"),
    OpSpec("cumsum", "sequence", cumsum_forward, cumsum_backward, layout="any"),
]
