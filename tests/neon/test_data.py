"""ArrayIterator: batch-last minibatches, one-hot labels, neon's wrap-around."""
import numpy as np
import pytest

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.neon.data import ArrayIterator

X = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)     # 10 samples, 3 features
y = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])


def test_batches_are_feature_major_with_wraparound(nbe):
    nbe.bsz = 4
    it = ArrayIterator(X, y, nclass=4)
    assert (it.ndata, it.nbatches, it.shape) == (10, 3, 3)
    batches = [(x.get(), t.get()) for x, t in it]
    assert len(batches) == 3
    np.testing.assert_array_equal(batches[0][0], X[0:4].T)
    np.testing.assert_array_equal(batches[0][1], np.eye(4)[y[0:4]].T)
    # the last batch holds samples 8, 9 then wraps to 0, 1 ...
    order = [8, 9, 0, 1]
    np.testing.assert_array_equal(batches[2][0], X[order].T)
    np.testing.assert_array_equal(batches[2][1], np.eye(4)[y[order]].T)
    # ... and the next epoch starts after them, at sample 2
    assert it.start == 2 and it.nbatches == 2
    first = next(iter(it))[0].get()
    np.testing.assert_array_equal(first, X[2:6].T)
    it.reset()
    assert it.nbatches == 3


def test_targets_without_onehot_and_no_targets(nbe):
    nbe.bsz = 5
    Y = np.random.RandomState(0).randn(10, 2)
    it = ArrayIterator(X, Y, make_onehot=False)
    x, t = next(iter(it))          # buffers are reused: read them before the next batch
    np.testing.assert_allclose(t.get(), Y[:5].T, rtol=1e-6)
    x, t = next(iter(ArrayIterator(X)))
    assert t is None and x.shape == (3, 5)


def test_lshape(nbe):
    nbe.bsz = 2
    it = ArrayIterator(np.zeros((4, 12)), lshape=(3, 2, 2))
    assert it.shape == (3, 2, 2)
    with pytest.raises(ShapeError, match="lshape"):
        ArrayIterator(np.zeros((4, 12)), lshape=(5, 2))


def test_bad_data_and_labels(nbe):
    nbe.bsz = 4
    with pytest.raises(ParameterError, match="nclass"):
        ArrayIterator(X, y)
    with pytest.raises(ShapeError, match=r"labels must have shape \(10,\) or \(10, 1\).*\(10, 2\)"):
        ArrayIterator(X, np.zeros((10, 2)), nclass=4)
    with pytest.raises(ShapeError, match=r"y must have 10 rows.*\(9,\)"):
        ArrayIterator(X, y[:9], nclass=4)
    with pytest.raises(ParameterError, match=r"\[0, 2\].*\[0, 3\]"):
        ArrayIterator(X, y, nclass=3)
    with pytest.raises(DTypeError, match="numeric"):
        ArrayIterator(X.astype(str))
    with pytest.raises(ShapeError, match="ndata, nfeatures"):
        ArrayIterator(np.zeros((10, 3, 2)))
    nbe.bsz = 16
    with pytest.raises(ParameterError, match="batch size"):
        ArrayIterator(X)
