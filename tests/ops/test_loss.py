"""Loss family: special properties beyond the generic contract of test_generic.py --
known values, neon's safelog, NeoML's rules (int labels == one-hot, softmax=False
gradient, object weights, gradient clipping, BCE-with-logits, Huber) and the errors,
on every backend (the reference included).
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnn.errors import ParameterError, ShapeError
from refnn.ops import loss as L
from refnn.testing import assert_backends_agree
from refnn.testing import strategies as rst
from refnn.testing.pytest_plugin import backend_names, make_backend

FLT_EPS = np.finfo(np.float32).eps


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param)


def run(be, op, *args, dl=None, **params):
    """(l, grads) on backend ``be`` as host arrays; dl defaults to ones."""
    dev = [be.asarray(a, dtype=a.dtype) if isinstance(a, np.ndarray) else a for a in args]
    l, saved = be.op(op + ".forward")(*dev, **params)
    n = args[0].shape[0]
    dl = np.ones(n) if dl is None else np.asarray(dl)
    grads = be.op(op + ".backward")(be.asarray(dl.astype(be.dtype)), saved)
    return be.to_host(l), [None if g is None else be.to_host(g) for g in grads]


def f32(a):
    return np.asarray(a, dtype=np.float32)


# ------------------------------------------------------------------ neon costs
def test_neon_known_values(any_backend):
    y = f32([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
    t = f32([[1, 0, 0], [0, 1, 0]])
    l, (dy, dt) = run(any_backend, "cross_entropy_multi", y, t)
    np.testing.assert_allclose(l, [np.log(2), -np.log(0.8)], rtol=1e-6)
    np.testing.assert_allclose(dy, [[-2, 0, 0], [0, -1.25, 0]], rtol=1e-6)
    assert dt is None
    l, _ = run(any_backend, "cross_entropy_binary", f32([[0.8, 0.25]]), f32([[1, 0]]))
    np.testing.assert_allclose(l, [-np.log(0.8) - np.log(0.75)], rtol=1e-6)
    l, (dy, _) = run(any_backend, "sum_squared", f32([[1, 3]]), f32([[0, 1]]))
    np.testing.assert_allclose(l, [2.5])
    np.testing.assert_allclose(dy, [[1, 2]])
    l, (dy, _) = run(any_backend, "mean_squared", f32([[1, 3]]), f32([[0, 1]]))
    np.testing.assert_allclose(l, [1.25])
    np.testing.assert_allclose(dy, [[0.5, 1]])


def test_neon_safelog_floor(any_backend):
    """neon logs through log(max(a, e^-50)): a zero probability costs exactly 50 and
    passes no gradient (safelog is flat there)."""
    l, (dy, _) = run(any_backend, "cross_entropy_multi", f32([[0.0, 1.0]]), f32([[1, 0]]))
    np.testing.assert_allclose(l, [50.0], rtol=1e-6)
    np.testing.assert_array_equal(dy, [[0, 0]])
    l, (dy, _) = run(any_backend, "cross_entropy_binary", f32([[1.0]]), f32([[0.0]]))
    np.testing.assert_allclose(l, [50.0], rtol=1e-6)
    np.testing.assert_array_equal(dy, [[0]])


def test_neon_gradient_is_true_gradient_not_shortcut():
    """refnn's cross_entropy_multi backward is -t / y, not neon's Softmax shortcut y - t."""
    y, t = np.array([[0.25, 0.75]]), np.array([[0.0, 1.0]])
    _, saved = L.cross_entropy_multi_forward(y, t)
    dy, _ = L.cross_entropy_multi_backward(np.ones(1), saved)
    np.testing.assert_allclose(dy, [[0, -4 / 3]])


# ------------------------------------------------------------------ NeoML
def test_cross_entropy_known_values(any_backend):
    l, (dx, dlab, dw) = run(any_backend, "cross_entropy", f32([[0, 0], [0, np.log(3)]]),
                            np.array([1, 1], np.int32))
    np.testing.assert_allclose(l, [np.log(2), np.log(4 / 3)], rtol=1e-6)
    np.testing.assert_allclose(dx, [[0.5, -0.5], [0.25, -0.25]], rtol=1e-6, atol=1e-7)
    assert dlab is None and dw is None


@given(st.tuples(st.integers(1, 6), st.integers(2, 9)).flatmap(
    lambda nc: st.tuples(rst.arrays(nc), rst.labels(*nc), st.booleans())))
def test_int_labels_equal_one_hot(case):
    x, labels, softmax = case
    if not softmax:
        x = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    onehot = np.eye(x.shape[1])[labels]
    li, (gi, _, _) = run(make_backend("reference", np.float64), "cross_entropy", x, labels,
                         softmax=softmax)
    lf, (gf, _, _) = run(make_backend("reference", np.float64), "cross_entropy", x, onehot,
                         softmax=softmax)
    np.testing.assert_allclose(li, lf, rtol=1e-12)
    np.testing.assert_allclose(gi, gf, rtol=1e-12, atol=1e-14)


def test_cross_entropy_softmax_false_matches_neoml(any_backend):
    """NeoML: loss -sum y log clip(p), gradient (1 - y / p) * sum(y) for probability rows;
    p is clipped to [FLT_EPSILON, 1 - FLT_EPSILON]."""
    p = f32([[0.2, 0.3, 0.5], [0.0, 0.5, 0.5]])
    y = f32([[0, 1, 0], [0, 0, 1]])
    l, (dx, _, _) = run(any_backend, "cross_entropy", p, y, softmax=False)
    np.testing.assert_allclose(l, [-np.log(0.3), -np.log(0.5)], rtol=1e-6)
    np.testing.assert_allclose(dx, (1 - y / np.maximum(p, FLT_EPS)) * y.sum(1, keepdims=True),
                               rtol=1e-5)
    l, _ = run(any_backend, "cross_entropy", p, f32([[0, 1, 0], [1, 0, 0]]), softmax=False)
    np.testing.assert_allclose(l[1], -np.log(FLT_EPS), rtol=1e-6)


def test_object_weights_multiply_each_loss(any_backend):
    x, y, w = f32([[0.5, -1], [2, 0.25]]), f32([[0, 0], [0, 1]]), f32([0.5, 3])
    for op, args, params in (("cross_entropy", (x, y), {}), ("euclidean", (x, y), {}),
                             ("binary_cross_entropy", (x, f32([[1, -1], [-1, 1]])), {})):
        l1, (g1, *_) = run(any_backend, op, *args, None, **params)
        lw, (gw, *_) = run(any_backend, op, *args, w, **params)
        np.testing.assert_allclose(lw, w * l1, rtol=1e-6)
        np.testing.assert_allclose(gw, w[:, None] * g1, rtol=1e-6)


def test_neoml_gradient_rule_scale_and_clip(any_backend):
    """NeoML multiplies the gradient by loss_weight / N and clips it to +-max_gradient:
    the facade passes dl = loss_weight / N and max_gradient."""
    x, y = f32([[10, -10], [0.5, 0]]), f32([[0, 0], [0, 0]])
    _, (dx, _, _) = run(any_backend, "euclidean", x, y, dl=np.full(2, 2.0 / 2), max_gradient=0.75)
    np.testing.assert_allclose(dx, [[0.75, -0.75], [0.5, 0]])
    _, (dx, _, _) = run(any_backend, "cross_entropy", f32([[0.5, 0.5]]), f32([[1, 0]]),
                        dl=[1e3], softmax=False, max_gradient=100.0)
    np.testing.assert_allclose(dx, [[-100, 100]])


def test_binary_cross_entropy_is_bce_with_logits(any_backend):
    x = f32([[-2.0], [0.5], [30.0], [-30.0]])
    y = f32([[1], [-1], [-1], [1]])
    q = 2.5
    l, (dx, _, _) = run(any_backend, "binary_cross_entropy", x, y, positive_weight=q)
    x64, z = x.astype(np.float64), (y.astype(np.float64) + 1) / 2
    sig = 1 / (1 + np.exp(-x64))
    want = -(q * z * np.log(sig) + (1 - z) * np.log1p(-sig + 1e-300))
    want[2] = 30.0                        # log(1 - sigmoid(30)) underflows in the formula
    np.testing.assert_allclose(l, want[:, 0], rtol=1e-5)
    np.testing.assert_allclose(dx, (1 - z) - (1 + (q - 1) * z) * (1 - sig), rtol=1e-5, atol=1e-7)


def test_euclidean_is_huber(any_backend):
    l, (dx, _, _) = run(any_backend, "euclidean", f32([[0.5, 3.0, -2.0]]), f32([[0, 0, 0]]))
    np.testing.assert_allclose(l, [0.125 + 2.5 + 1.5])
    np.testing.assert_allclose(dx, [[0.5, 1, -1]])


def test_fast_paths_with_max_gradient(backend):
    x = np.array([[3.0, -2.0, 0.5], [0.1, 0.2, 0.3]])
    assert_backends_agree("cross_entropy", backend, [x, np.array([2, 0], np.int32), None],
                          {"max_gradient": 0.2}, douts=np.array([1.0, -2.0]))
    assert_backends_agree("euclidean", backend, [x, np.zeros_like(x), np.array([1.0, 2.0])],
                          {"max_gradient": 1.5}, douts=np.array([1.0, 1.0]))


# ------------------------------------------------------------------ errors
def test_labels_of_the_wrong_shape(any_backend):
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ShapeError, match=r"cross_entropy: integer labels must have shape "
                                         r"\(4,\).*got \(4, 1\)"):
        run(any_backend, "cross_entropy", x, np.zeros((4, 1), np.int32))
    with pytest.raises(ShapeError, match=r"cross_entropy: float labels must have shape "
                                         r"\(4, 3\).*got \(4, 2\)"):
        run(any_backend, "cross_entropy", x, np.zeros((4, 2), np.float32))
    with pytest.raises(ShapeError, match=r"sum_squared: targets t must have shape \(4, 3\)"):
        run(any_backend, "sum_squared", x, np.zeros((3, 4), np.float32))
    with pytest.raises(ShapeError, match=r"euclidean: weights must have shape \(4,\).*got \(3,\)"):
        run(any_backend, "euclidean", x, x, np.ones(3, np.float32))


def test_labels_out_of_range(any_backend):
    x = np.zeros((3, 4), np.float32)
    for bad in ([0, 4, 1], [-1, 0, 0]):
        with pytest.raises(ParameterError, match=r"cross_entropy: labels must be class "
                                                 r"indices in \[0, 3\]"):
            run(any_backend, "cross_entropy", x, np.array(bad, np.int32))


def test_labels_out_of_range_on_the_device():
    be = make_backend("opencl")
    x = be.asarray(np.zeros((3, 4), np.float32))
    labels = be.asarray(np.array([0, 7, 1], np.int32), dtype=np.int32)
    with pytest.raises(ParameterError, match=r"got values in \[0, 7\]"):
        be.op("cross_entropy.forward")(x, labels)


def test_cross_entropy_needs_two_classes(any_backend):
    with pytest.raises(ShapeError, match="multi-class"):
        run(any_backend, "cross_entropy", np.zeros((2, 1), np.float32), np.zeros(2, np.int32))


def test_predictions_must_be_2d(any_backend):
    with pytest.raises(ShapeError, match=r"mean_squared: predictions x must have shape \(N, C\)"):
        run(any_backend, "mean_squared", np.zeros(3, np.float32), np.zeros(3, np.float32))
