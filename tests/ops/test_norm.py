"""Norm family: properties beyond the generic contract of test_generic.py -- loop oracles
for LRN's asymmetric window, batch norm of a single row (variance 0: eps keeps it
finite), the facades' ``(dy, None, None)`` backward, layer norm of one feature, float64
and large (many work-groups) inputs on the fast paths, and the argument errors naming
the op, on every backend (the reference included).
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.ops import norm as K
from refnn.testing import assert_matches_reference
from refnn.testing.pytest_plugin import backend_names, make_backend


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param, dtype=np.float64)


def host(be, a):
    return None if a is None else be.to_host(a)


def lrn_loops(x, size, k, alpha, beta):
    """y[n,c,h,w] written out with NeoML's window [c - (size-1)//2, c + size//2]."""
    y = np.empty_like(x)
    C = x.shape[1]
    for n, c, h, w in np.ndindex(*x.shape):
        s = sum(x[n, cc, h, w] ** 2 for cc in range(C)
                if c - (size - 1) // 2 <= cc <= c + size // 2)
        y[n, c, h, w] = x[n, c, h, w] / (k + alpha / size * s) ** beta
    return y


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_lrn_matches_loops(any_backend, size):
    be = any_backend
    x = np.random.default_rng(size).normal(0, 1.5, (2, 5, 2, 3))
    y, _ = be.op("lrn.forward")(be.asarray(x), size=size, k=2.0, alpha=0.7, beta=0.6)
    np.testing.assert_allclose(host(be, y), lrn_loops(x, size, 2.0, 0.7, 0.6), rtol=1e-10)


def test_lrn_alpha_zero_is_a_scale(any_backend):
    be = any_backend
    x = np.random.default_rng(0).normal(0, 1, (1, 3, 2, 2))
    y, saved = be.op("lrn.forward")(be.asarray(x), size=3, k=4.0, alpha=0.0, beta=0.5)
    np.testing.assert_allclose(host(be, y), x / 2, rtol=1e-12)
    (dx,) = be.op("lrn.backward")(be.asarray(np.ones_like(x)), saved)
    np.testing.assert_allclose(host(be, dx), np.full_like(x, 0.5), rtol=1e-12)


def test_batch_norm_single_row_is_beta(any_backend):
    """One value per channel: var = 0, xhat = 0, y = beta; dx = 0 (the mean absorbs it)."""
    be = any_backend
    x, g, b = np.array([[3.0, -1.0]]), np.array([2.0, 0.5]), np.array([0.25, -4.0])
    (y, mean, var), saved = be.op("batch_norm.forward")(be.asarray(x), be.asarray(g),
                                                         be.asarray(b), eps=1e-3)
    np.testing.assert_allclose(host(be, y), b[None], atol=1e-12)
    np.testing.assert_allclose(host(be, mean), x[0])
    np.testing.assert_array_equal(host(be, var), [0.0, 0.0])
    dx, dg, db = be.op("batch_norm.backward")((be.asarray(np.array([[1.0, 2.0]])), None, None),
                                              saved)
    np.testing.assert_allclose(host(be, dx), [[0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(host(be, dg), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(host(be, db), [1.0, 2.0])


def test_batch_norm_statistics_without_their_gradients(any_backend):
    """(dy, None, None) -- the facades' call -- equals zero dmean and dvar."""
    be = any_backend
    rng = np.random.default_rng(1)
    x, g, b = rng.normal(1, 2, (17, 5)), rng.normal(1, 1, 5), rng.normal(0, 1, 5)
    dy = rng.normal(0, 1, (17, 5))
    (y, mean, var), saved = be.op("batch_norm.forward")(*map(be.asarray, (x, g, b)), eps=1e-5)
    np.testing.assert_allclose(host(be, mean), x.mean(0), rtol=1e-10)
    np.testing.assert_allclose(host(be, var), x.var(0), rtol=1e-10)
    got = be.op("batch_norm.backward")((be.asarray(dy), None, None), saved)
    _, ref_saved = K.batch_norm_forward(x, g, b, eps=1e-5)
    want = K.batch_norm_backward((dy, np.zeros(5), np.zeros(5)), ref_saved)
    for a, w in zip(got, want):
        np.testing.assert_allclose(host(be, a), w, rtol=1e-9, atol=1e-12)


def test_batch_norm_infer_matches_training_on_its_own_statistics(any_backend):
    be = any_backend
    rng = np.random.default_rng(2)
    x, g, b = rng.normal(0, 3, (9, 4)), rng.normal(1, 1, 4), rng.normal(0, 1, 4)
    (y, mean, var), _ = be.op("batch_norm.forward")(*map(be.asarray, (x, g, b)), eps=0.01)
    yi, _ = be.op("batch_norm_infer.forward")(*map(be.asarray, (x, g, b)), mean, var, eps=0.01)
    np.testing.assert_allclose(host(be, yi), host(be, y), rtol=1e-10, atol=1e-12)


def test_layer_norm_one_feature_and_one_object(any_backend):
    be = any_backend
    y, _ = be.op("layer_norm.forward")(*map(be.asarray, (np.array([[5.0], [-2.0]]),
                                                       np.array([3.0]), np.array([0.5]))))
    np.testing.assert_allclose(host(be, y), [[0.5], [0.5]], atol=1e-12)
    x = np.array([[1.0, 2.0, 6.0]])
    y, _ = be.op("layer_norm.forward")(*map(be.asarray, (x, np.ones(3), np.zeros(3))), eps=0.0)
    np.testing.assert_allclose(host(be, y), (x - 3) / np.sqrt(14 / 3), rtol=1e-12)


@pytest.mark.parametrize("op,shapes", [
    ("batch_norm", ((3000, 70), (70,), (70,))),
    ("layer_norm", ((5, 3000), (3000,), (3000,))),
    ("batch_norm_infer", ((700, 19), (19,), (19,), (19,), (19,))),
])
def test_large_inputs_many_work_groups(backend, op, shapes):
    """Rows far beyond one work-group / OpenMP block, float32 vs the float64 reference."""
    rng = np.random.default_rng(3)
    args = [rng.uniform(-3, 3, s) for s in shapes]
    if op == "batch_norm_infer":
        args[4] = rng.uniform(0.5, 2, shapes[4])
    assert_matches_reference(backend, op, args, {"eps": 1e-3}, dtype=backend.dtype,
                             rtol=1e-3, atol=1e-4)


def test_lrn_large_image(backend):
    x = np.random.default_rng(4).uniform(-3, 3, (3, 17, 9, 11))
    assert_matches_reference(backend, "lrn", [x], {"size": 5, "k": 1.0, "alpha": 0.5,
                                                   "beta": 0.75}, dtype=backend.dtype)


@pytest.mark.parametrize("op,args,params,match", [
    ("batch_norm", [(4, 3), (2,), (3,)], {}, r"batch_norm: gamma must have shape \(3,\)"),
    ("batch_norm", [(4,), (4,), (4,)], {}, r"batch_norm: x must have shape \(N, C\)"),
    ("batch_norm", [(4, 3), (3,), (3,)], {"eps": -1.0}, r"batch_norm: eps must be"),
    ("batch_norm_infer", [(4, 3), (3,), (3,), (3,), (4,)], {},
     r"batch_norm_infer: var must have shape \(3,\)"),
    ("layer_norm", [(2, 5), (5,), (4,)], {}, r"layer_norm: bias must have shape \(5,\)"),
    ("lrn", [(2, 3, 4)], {}, r"lrn: x must have shape \(N, C, H, W\)"),
    ("lrn", [(1, 3, 2, 2)], {"size": 0}, r"lrn: size .* int >= 1"),
    ("lrn", [(1, 3, 2, 2)], {"k": 0.0}, r"lrn: need k > 0 and alpha >= 0"),
    ("lrn", [(1, 3, 2, 2)], {"alpha": -1.0}, r"lrn: need k > 0 and alpha >= 0"),
])
def test_errors_name_the_op(any_backend, op, args, params, match):
    be = any_backend
    arrays = [be.asarray(np.ones(s)) for s in args]
    with pytest.raises((ShapeError, ParameterError), match=match):
        be.op(op + ".forward")(*arrays, **params)
