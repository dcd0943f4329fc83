"""Embedding family: table lookups and positional encodings.

Layouts. ``ids`` is an integer array (N, K) -- N objects of K ids each (K positions of a
sequence, or K values of one discrete feature); ``table`` is (V, D) -- V vectors of
length D. Every id must lie in [0, V): an id outside raises ParameterError naming the op
(never a wrap-around or a read past the table). Positional encodings work on
batch-first sequences ``x`` (N, T, D) (NeoML's BatchWidth x ListSize x Channels).

    lookup:               y[n, k, :] = table[ids[n, k], :]           -> (N, K, D)
    accumulative_lookup:  y[n, :] = sum_k table[ids[n, k], :]        -> (N, D)
                          (NeoML's AccumulativeLookup)
    positional_sinusoidal: y[n, t, :] = x[n, t, :] + P[t, :] with the transformer's
                          fixed P[t, 2i] = sin(t / 10000^(2i/D)),
                                P[t, 2i+1] = cos(t / 10000^(2i/D))
                          (NeoML's PositionalEmbedding "transformers")
    positional_learnable: y[n, t, :] = x[n, t, :] + table[t, :], table (T_max, D),
                          T <= T_max (NeoML's "learnable_addition" has T_max = T)

Backward. The ids are not differentiable (their gradient is None). The table gradient
of a lookup is a *scatter-add*: every occurrence of id v adds its upstream row,

    dtable[v, :] = sum_{(n, k): ids[n, k] = v} dy[n, k, :]      (rows never seen stay 0)

so repeated ids accumulate. A dense (V, D) gradient wastes memory and optimizer time
when V is large and a batch touches few rows; ``lookup_sgd`` is the sparse alternative:
it applies plain SGD to the seen rows only, in place,

    table[ids[n, k], :] -= learning_rate * dy[n, k, :]     (repeats accumulate),

and takes the accumulative form dy (N, D) too (then every id of object n gets dy[n]).
A facade that wants the sparse path calls ``lookup_sgd.update`` with the upstream
gradient instead of ``lookup.backward`` + a dense solver step.
"""
import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError, check_same_shape
from refnn.ops._spec import OpSpec


def check_ids(op, ids, V):
    """ids: an integer (N, K) array with every value in [0, V); raises otherwise."""
    check_id_shape(op, ids)
    if ids.size:
        check_id_range(op, int(ids.min()), int(ids.max()), V)


def check_id_shape(op, ids):
    if np.dtype(ids.dtype).kind not in "iu":
        raise DTypeError(f"{op}: ids must be an integer array, got dtype {ids.dtype}")
    if len(ids.shape) != 2:
        raise ShapeError(f"{op}: ids must have shape (N, K), got {tuple(ids.shape)} "
                         f"(rank {len(ids.shape)})")
    if min(ids.shape) < 1:
        raise ShapeError(f"{op}: ids (N, K) needs N, K >= 1, got {tuple(ids.shape)}")


def check_id_range(op, lo, hi, V):
    """Every id must be a row of the table: 0 <= lo <= hi < V."""
    if lo < 0 or hi >= V:
        bad = lo if lo < 0 else hi
        raise ParameterError(f"{op}: ids must be in [0, {V - 1}] (the table has {V} "
                             f"rows), got id {bad}")


def check_table(op, table, what="table"):
    if len(table.shape) != 2 or min(table.shape) < 1:
        raise ShapeError(f"{op}: {what} must have shape (V, D) with V, D >= 1, got "
                         f"{tuple(table.shape)}")


def check_positional(op, x):
    if len(x.shape) != 3 or min(x.shape) < 1:
        raise ShapeError(f"{op}: x must be a batch-first sequence (N, T, D) with N, T, "
                         f"D >= 1, got shape {tuple(x.shape)}")


def check_learnable(op, x, table):
    """x (N, T, D) and a table (T_max, D) with T_max >= T."""
    check_positional(op, x)
    check_table(op, table)
    N, T, D = x.shape
    if table.shape[1] != D or table.shape[0] < T:
        raise ShapeError(f"{op}: table must have shape (T_max >= {T}, {D}) for x of shape "
                         f"{tuple(x.shape)}, got {tuple(table.shape)}")


def scatter_rows(ids, rows, V):
    """dtable[v] = sum of rows[j] over the j with ids[j] = v (ids flat, rows (J, D))."""
    dtable = np.zeros((V, rows.shape[-1]), rows.dtype)
    np.add.at(dtable, ids.ravel(), rows.reshape(-1, rows.shape[-1]))
    return dtable


# ------------------------------------------------------------------ lookup
def lookup_forward(ids, table):
    """y[n, k, :] = table[ids[n, k], :];  ids (N, K) int, table (V, D) -> y (N, K, D)

    >>> lookup_forward(np.array([[2, 0]]), np.arange(6.0).reshape(3, 2))[0]
    array([[[4., 5.],
            [0., 1.]]])
    """
    check_table("lookup", table)
    check_ids("lookup", ids, table.shape[0])
    return table[ids], (ids, table.shape)


def lookup_backward(dy, saved):
    """(None, dtable) with dtable[v] = sum_{(n, k): ids[n, k] = v} dy[n, k]"""
    ids, (V, D) = saved
    check_same_shape("lookup", "dy", np.shape(dy), ids.shape + (D,))
    return None, scatter_rows(ids, dy, V)


# ------------------------------------------------------------------ accumulative lookup
def accumulative_lookup_forward(ids, table):
    """y[n, :] = sum_k table[ids[n, k], :];  ids (N, K) int, table (V, D) -> y (N, D)"""
    check_table("accumulative_lookup", table)
    check_ids("accumulative_lookup", ids, table.shape[0])
    return table[ids].sum(axis=1), (ids, table.shape)


def accumulative_lookup_backward(dy, saved):
    """(None, dtable) with dtable[v] = sum_{(n, k): ids[n, k] = v} dy[n]"""
    ids, (V, D) = saved
    check_same_shape("accumulative_lookup", "dy", np.shape(dy), (ids.shape[0], D))
    rows = np.broadcast_to(dy[:, None, :], ids.shape + (D,))
    return None, scatter_rows(ids, rows, V)


# ------------------------------------------------------------------ sparse SGD on a table
def lookup_sgd_update(table, ids, dy, learning_rate=0.01):
    """table[ids[n, k]] -= learning_rate * dy[n, k] for every (n, k), in place.

    dy is (N, K, D) (a lookup's upstream gradient) or (N, D) (an accumulative lookup's:
    every id of object n gets dy[n]). Rows of ids that do not occur are not touched.
    """
    check_table("lookup_sgd", table)
    check_ids("lookup_sgd", ids, table.shape[0])
    if sgd_ids_per_row(ids.shape, np.shape(dy), table.shape[1]) > 1:
        dy = np.broadcast_to(dy[:, None, :], ids.shape + table.shape[1:])
    table -= learning_rate * scatter_rows(ids, dy, table.shape[0])


def sgd_ids_per_row(ids_shape, dy_shape, D, op="lookup_sgd"):
    """How many ids share one row of dy: 1 for dy (N, K, D), K for dy (N, D)."""
    (N, K), dy_shape = ids_shape, tuple(dy_shape)
    if dy_shape == (N, K, D):
        return 1
    if dy_shape == (N, D):
        return K
    raise ShapeError(f"{op}: dy must have shape {(N, K, D)} (lookup) or {(N, D)} "
                     f"(accumulative lookup), got {dy_shape}")


# ------------------------------------------------------------------ positional encodings
def sinusoidal_table(T, D):
    """P[t, 2i] = sin(t / 10000^(2i/D)), P[t, 2i+1] = cos(t / 10000^(2i/D)), float64
    (NeoML's fillPositionalEmbedding; Vaswani et al. 2017)."""
    t = np.arange(T, dtype=np.float64)[:, None]
    even = np.arange(D) // 2 * 2                       # 2i for columns 2i and 2i+1
    angle = t / np.power(10000.0, even / D)
    return np.where(np.arange(D) % 2 == 0, np.sin(angle), np.cos(angle))


def positional_sinusoidal_forward(x):
    """y[n, t, :] = x[n, t, :] + P[t, :] (sinusoidal_table);  x (N, T, D) -> (N, T, D)"""
    check_positional("positional_sinusoidal", x)
    return x + sinusoidal_table(*x.shape[1:]).astype(x.dtype), (x.shape,)


def positional_sinusoidal_backward(dy, saved):
    """dx = dy (P is a constant)"""
    (shape,) = saved
    check_same_shape("positional_sinusoidal", "dy", np.shape(dy), shape)
    return (dy.copy(),)


def positional_learnable_forward(x, table):
    """y[n, t, :] = x[n, t, :] + table[t, :];  x (N, T, D), table (T_max, D), T <= T_max"""
    op = "positional_learnable"
    check_learnable(op, x, table)
    return x + table[:x.shape[1]], (x.shape, table.shape)


def positional_learnable_backward(dy, saved):
    """dx = dy;  dtable[t] = sum_n dy[n, t] for t < T, 0 for the rows T <= t < T_max"""
    shape, table_shape = saved
    check_same_shape("positional_learnable", "dy", np.shape(dy), shape)
    dtable = np.zeros(table_shape, dy.dtype)
    dtable[:shape[1]] = dy.sum(axis=0)
    return dy.copy(), dtable


SPECS = [
    OpSpec("lookup", "embedding", lookup_forward, lookup_backward, diff_args=(1,),
           layout="NK"),
    OpSpec("accumulative_lookup", "embedding", accumulative_lookup_forward,
           accumulative_lookup_backward, diff_args=(1,), layout="NK"),
    OpSpec("lookup_sgd", "embedding", update=lookup_sgd_update, layout="VD"),
    OpSpec("positional_sinusoidal", "embedding", positional_sinusoidal_forward,
           positional_sinusoidal_backward, layout="NTD"),
    OpSpec("positional_learnable", "embedding", positional_learnable_forward,
           positional_learnable_backward, layout="NTD"),
]
