"""neon LookupTable on every backend: embedding in neon's time-major layout, the dense
scatter-add gradient (neon's compound_bprop_lut), pad_idx, update=False, the sparse SGD
step (refnn ``lookup_sgd``) and ids outside the vocabulary."""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.neon.initializers import Gaussian
from refnn.neon.layers import LookupTable
from refnn.neon.optimizers import GradientDescentMomentum

RTOL, ATOL = 1e-5, 1e-6


def _close(a, ref):
    np.testing.assert_allclose(a.get() if hasattr(a, "get") else a, ref, rtol=RTOL,
                               atol=ATOL)


def _table(V, D, T, **kwargs):
    layer = LookupTable(V, D, Gaussian(), name="emb", **kwargs)
    layer.configure(T)
    layer.allocate()
    return layer


def _scatter(ids, error, V):
    """dW[v] = sum of the error columns t*N + n with ids[t, n] = v (neon's layout)."""
    D = error.shape[0]
    dW = np.zeros((V, D))
    for col, v in enumerate(ids.reshape(-1)):
        dW[v] += error[:, col]
    return dW


@pytest.mark.parametrize("V, D, T, N", [(10, 4, 3, 8), (1, 1, 1, 1), (7, 5, 6, 3)])
def test_lookup_forward_and_dense_gradient(nbe, V, D, T, N):
    rs = np.random.RandomState(V + T)
    layer = _table(V, D, T)
    assert layer.W.shape == (V, D) and layer.out_shape == (D, T)
    ids = rs.randint(0, V, (T, N))
    ids[0, 0] = ids[-1, -1]                        # at least one repeated id
    y = layer.fprop(nbe.array(ids))
    W = layer.W.get()
    # column t * N + n is the embedding of ids[t, n]
    _close(y, W[ids.reshape(-1)].T)
    e = rs.randn(D, T * N)
    assert layer.bprop(nbe.array(e)) is None       # ids have no gradient
    _close(layer.dW, _scatter(ids, e, V))


def test_pad_idx_row_is_zero_and_gets_no_gradient(nbe):
    rs = np.random.RandomState(1)
    V, D, T, N = 6, 3, 4, 2
    layer = _table(V, D, T, pad_idx=2)
    _close(layer.W.get()[2], np.zeros(D))
    ids = rs.randint(0, V, (T, N))
    ids[1, :] = 2
    layer.fprop(nbe.array(ids))
    e = rs.randn(D, T * N)
    layer.bprop(nbe.array(e))
    ref = _scatter(ids, e, V)
    ref[2] = 0
    _close(layer.dW, ref)
    W0 = layer.W.get()
    layer.sparse_update(0.5)
    _close(layer.W.get()[2], np.zeros(D))
    _close(layer.W, W0 - 0.5 / N * ref)


def test_update_false_freezes_the_table(nbe):
    layer = _table(5, 2, 3, update=False)
    layer.fprop(nbe.array(np.array([[0, 1], [2, 3], [4, 4]])))
    layer.bprop(nbe.array(np.ones((2, 6))))
    _close(layer.dW, np.zeros((5, 2)))
    with pytest.raises(ParameterError, match=r"emb \(LookupTable\): update=False"):
        layer.sparse_update(0.1)


def test_sparse_update_touches_only_the_seen_rows(nbe):
    """lookup_sgd: W[v] -= lr / N * dW[v] for the seen ids -- the same step as plain
    SGD through an optimizer (which also divides by the batch size), rows not seen left
    as they are."""
    rs = np.random.RandomState(2)
    V, D, T, N = 12, 4, 3, 8
    sparse, dense = _table(V, D, T), _table(V, D, T)
    dense.W.set(sparse.W.get())
    ids = rs.randint(0, 5, (T, N))                 # rows 5.. never seen
    e = rs.randn(D, T * N)
    for layer in (sparse, dense):
        layer.fprop(nbe.array(ids))
        layer.bprop(nbe.array(e))
    W0 = sparse.W.get()
    with pytest.raises(ParameterError, match="needs a bprop first"):
        _table(V, D, T).sparse_update(0.1)
    sparse.sparse_update(0.3)
    _close(sparse.W, W0 - 0.3 / N * _scatter(ids, e, V))
    _close(sparse.W.get()[5:], W0[5:])
    nbe.bsz = N
    GradientDescentMomentum(0.3, momentum_coef=0.0).optimize([dense], epoch=0)
    _close(dense.W, sparse.W.get())


def test_ids_outside_the_vocabulary_name_the_layer(nbe):
    layer = _table(5, 2, 2)
    for bad in (5, -1):
        with pytest.raises(ParameterError, match=rf"emb \(LookupTable\): lookup: ids must "
                                                 rf"be in \[0, 4\].*got id {bad}"):
            layer.fprop(nbe.array(np.array([[0, bad], [1, 2]])))
    with pytest.raises(ShapeError, match=r"emb \(LookupTable\): inputs must be a \(2, "
                                         r"batch\) Tensor of ids, got \(3, 2\)"):
        layer.fprop(nbe.array(np.zeros((3, 2))))
    layer.fprop(nbe.array(np.zeros((2, 2))))
    with pytest.raises(ShapeError, match=r"emb \(LookupTable\): error must have shape"):
        layer.bprop(nbe.array(np.zeros((2, 3))))


@pytest.mark.parametrize("kwargs, match", [
    ({"vocab_size": 0}, "vocab_size must be a positive integer, got 0"),
    ({"embedding_dim": 0}, "embedding_dim must be a positive integer, got 0"),
    ({"pad_idx": 10}, r"pad_idx must be None or an id in \[0, 9\], got 10"),
])
def test_bad_arguments_name_the_layer(kwargs, match):
    args = {"vocab_size": 10, "embedding_dim": 3, "init": Gaussian(), "name": "lt"}
    args.update(kwargs)
    with pytest.raises(ParameterError, match=rf"lt \(LookupTable\): {match}"):
        LookupTable(**args)


def test_ops_tuple():
    assert LookupTable.OPS == ("lookup", "lookup_sgd")
