"""Embedding family: properties beyond the generic contract of test_generic.py -- ids
out of the vocabulary (host and device ids, never a wrap-around), repeated ids in the
table gradient (the OpenCL atomics under heavy contention), the sparse SGD path against
a dense step, NeoML's sinusoidal table, learnable tables longer than the sequence, and
the shape errors, on every backend (the reference included).
"""
import numpy as np
import pytest

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops import embedding as E
from refnn.testing import assert_matches_reference
from refnn.testing.pytest_plugin import backend_names, make_backend


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param, dtype=np.float64)


def dev_ids(be, ids):
    return be.asarray(ids, dtype=ids.dtype)


def table(V=4, D=3):
    return np.arange(V * D, dtype=np.float64).reshape(V, D)


@pytest.mark.parametrize("op", ["lookup", "accumulative_lookup"])
@pytest.mark.parametrize("bad", [-1, 4, 1000, -(2 ** 40), 2 ** 40])
@pytest.mark.parametrize("where", ["host", "device"])
def test_ids_out_of_range_raise_naming_the_op(any_backend, op, bad, where):
    ids = np.array([[0, 1], [2, bad]], np.int64)
    if where == "device":
        ids = dev_ids(any_backend, ids)
    with pytest.raises(ParameterError, match=rf"{op}: ids must be in \[0, 3\]"):
        any_backend.op(op + ".forward")(ids, any_backend.asarray(table()))


@pytest.mark.parametrize("op", ["lookup", "accumulative_lookup"])
def test_ids_must_be_integers_of_rank_2(any_backend, op):
    fwd = any_backend.op(op + ".forward")
    with pytest.raises(DTypeError, match=op + ": ids must be an integer"):
        fwd(np.array([[0.0, 1.0]]), any_backend.asarray(table()))
    for shape in [(3,), (1, 2, 2), (0, 2)]:
        with pytest.raises(ShapeError, match=op + r": ids .*\(N, K\)"):
            fwd(np.zeros(shape, np.int64), any_backend.asarray(table()))
    with pytest.raises(ShapeError, match=op + r": table must have shape \(V, D\)"):
        fwd(np.zeros((1, 2), np.int64), any_backend.asarray(np.zeros(4)))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_lookup_rows_and_repeated_ids_accumulate(any_backend, dtype):
    ids = np.array([[2, 0, 2], [2, 2, 1]], dtype)
    y, saved = any_backend.op("lookup.forward")(dev_ids(any_backend, ids),
                                                any_backend.asarray(table()))
    np.testing.assert_array_equal(any_backend.to_host(y), table()[ids])
    dy = np.ones((2, 3, 3))
    d_ids, dtable = any_backend.op("lookup.backward")(any_backend.asarray(dy), saved)
    assert d_ids is None
    np.testing.assert_array_equal(any_backend.to_host(dtable),
                                  [[1] * 3, [1] * 3, [4] * 3, [0] * 3])  # row 3 unseen


def test_accumulative_lookup_is_the_sum_of_lookups(any_backend):
    ids = np.array([[0, 3, 3, 1]])
    y, saved = any_backend.op("accumulative_lookup.forward")(dev_ids(any_backend, ids),
                                                             any_backend.asarray(table()))
    np.testing.assert_array_equal(any_backend.to_host(y), table()[ids].sum(axis=1))
    _, dtable = any_backend.op("accumulative_lookup.backward")(
        any_backend.asarray(np.array([[1.0, 2.0, 3.0]])), saved)
    np.testing.assert_array_equal(any_backend.to_host(dtable),
                                  [[1, 2, 3], [1, 2, 3], [0, 0, 0], [2, 4, 6]])


@pytest.mark.parametrize("name", backend_names())
def test_heavily_repeated_ids_float32(name):
    """20000 occurrences of a few ids: the OpenCL atomic adds under contention."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 3, (100, 200))
    t = rng.uniform(-1, 1, (50, 33))
    dy = rng.uniform(-1, 1, (100, 200, 33)) / 100
    assert_matches_reference(make_backend(name), "lookup", [ids, t], douts=dy,
                             dtype=np.float32, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("accumulative", [False, True])
def test_sparse_sgd_equals_a_dense_step_and_touches_only_seen_rows(any_backend, accumulative):
    rng = np.random.default_rng(3)
    ids = np.array([[4, 1, 4], [1, 1, 0]])
    t = rng.standard_normal((6, 5))
    op = "accumulative_lookup" if accumulative else "lookup"
    dy = rng.standard_normal((2, 5) if accumulative else (2, 3, 5))
    _, dense = getattr(E, op + "_backward")(dy, getattr(E, op + "_forward")(ids, t)[1])
    dev = any_backend.asarray(t.copy())
    any_backend.op("lookup_sgd.update")(dev, dev_ids(any_backend, ids),
                                        any_backend.asarray(dy), learning_rate=0.5)
    got = any_backend.to_host(dev)
    np.testing.assert_allclose(got, t - 0.5 * dense, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[[2, 3, 5]], t[[2, 3, 5]])


def test_sparse_sgd_checks_its_inputs(any_backend):
    t = any_backend.asarray(table())
    with pytest.raises(ShapeError, match="lookup_sgd: dy must have shape"):
        any_backend.op("lookup_sgd.update")(t, np.array([[0, 1]]),
                                            any_backend.asarray(np.zeros((2, 3))))
    with pytest.raises(ParameterError, match="lookup_sgd: ids"):
        any_backend.op("lookup_sgd.update")(t, np.array([[0, 4]]),
                                            any_backend.asarray(np.zeros((1, 2, 3))))


def test_opencl_sparse_sgd_needs_a_device_table():
    if "opencl" not in backend_names():
        pytest.skip("opencl not among the tested backends")
    be = make_backend("opencl")
    with pytest.raises(TypeError, match="lookup_sgd: table must be a device array"):
        be.op("lookup_sgd.update")(np.zeros((3, 2), np.float32), np.array([[0]]),
                                   np.zeros((1, 1, 2), np.float32))


def test_sinusoidal_table_is_neomls():
    """NeoML's fillPositionalEmbedding, written out for D = 6."""
    T, D = 7, 6
    want = np.empty((T, D))
    for pos in range(T):
        for i in range(D):
            want[pos, i] = (np.sin(pos / 10000 ** (i / D)) if i % 2 == 0
                            else np.cos(pos / 10000 ** ((i - 1) / D)))
    np.testing.assert_allclose(E.sinusoidal_table(T, D), want, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(E.sinusoidal_table(1, 5), [[0, 1, 0, 1, 0]])


def test_positional_sinusoidal_adds_the_table(any_backend):
    x = np.random.default_rng(0).standard_normal((2, 9, 7))
    y, saved = any_backend.op("positional_sinusoidal.forward")(any_backend.asarray(x))
    np.testing.assert_allclose(any_backend.to_host(y), x + E.sinusoidal_table(9, 7),
                               rtol=1e-12, atol=1e-12)
    (dx,) = any_backend.op("positional_sinusoidal.backward")(any_backend.asarray(x), saved)
    np.testing.assert_array_equal(any_backend.to_host(dx), x)


def test_positional_learnable_longer_table(any_backend):
    x = np.ones((3, 2, 4))
    t = np.arange(5 * 4, dtype=np.float64).reshape(5, 4)
    y, saved = any_backend.op("positional_learnable.forward")(any_backend.asarray(x),
                                                              any_backend.asarray(t))
    np.testing.assert_array_equal(any_backend.to_host(y), x + t[:2])
    dx, dt = any_backend.op("positional_learnable.backward")(any_backend.asarray(x), saved)
    np.testing.assert_array_equal(any_backend.to_host(dx), x)
    np.testing.assert_array_equal(any_backend.to_host(dt)[:2], 3 * np.ones((2, 4)))
    np.testing.assert_array_equal(any_backend.to_host(dt)[2:], 0)


@pytest.mark.parametrize("t_shape", [(1, 4), (5, 3), (5,)])
def test_positional_learnable_table_must_cover_the_sequence(any_backend, t_shape):
    with pytest.raises(ShapeError, match="positional_learnable: table must have shape"):
        any_backend.op("positional_learnable.forward")(
            any_backend.asarray(np.ones((3, 2, 4))), any_backend.asarray(np.ones(t_shape)))


@pytest.mark.parametrize("op", ["positional_sinusoidal", "positional_learnable"])
@pytest.mark.parametrize("shape", [(2, 4), (1, 2, 3, 4), (0, 2, 4)])
def test_positional_wrong_rank(any_backend, op, shape):
    args = [any_backend.asarray(np.ones(shape))]
    if op == "positional_learnable":
        args.append(any_backend.asarray(np.ones((8, 4))))
    with pytest.raises(ShapeError, match=op + r": x must be a batch-first sequence"):
        any_backend.op(op + ".forward")(*args)


@pytest.mark.parametrize("op, dy_shape", [("lookup", (1, 2, 2)),
                                          ("accumulative_lookup", (1, 2, 3))])
def test_backward_checks_dy(any_backend, op, dy_shape):
    _, saved = any_backend.op(op + ".forward")(np.array([[0, 1]]), any_backend.asarray(table()))
    with pytest.raises(ShapeError, match=op + ".*dy"):
        any_backend.op(op + ".backward")(any_backend.asarray(np.zeros(dy_shape)), saved)
