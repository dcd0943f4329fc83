"""be.gemm and be.transpose2d on the fast backends against NumPy.

GEMM is the one primitive under linear and the neon facade's dot products: every
combination of transposed operands (``.T`` views, mapped onto BLAS/kernel flags),
sizes that do not divide the OpenCL tiles, alpha/beta, and the shape/dtype errors.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.testing.pytest_plugin import make_backend

SIZES = st.integers(1, 37)


def _operand(be, rng, rows, cols, trans):
    """A (rows, cols) operand as the backend sees it: C-contiguous, or the ``.T`` view
    of a C-contiguous (cols, rows) array. Returns (backend operand, float64 copy)."""
    stored = rng.uniform(-1, 1, (cols, rows) if trans else (rows, cols))
    dev = be.asarray(stored)
    host = be.to_host(dev).astype(np.float64)      # values rounded to the dtype
    return (dev.T, host.T) if trans else (dev, host)


def _tol(be, K):
    if be.dtype == np.float64:
        return 1e-12
    return 1e-6 * (K + 8)          # float32: error grows with the number of products


@given(M=SIZES, N=SIZES, K=SIZES, ta=st.booleans(), tb=st.booleans(),
       alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([None, 0.0, 1.0, 0.25]),
       seed=st.integers(0, 2**16))
def test_gemm_matches_numpy(backend, M, N, K, ta, tb, alpha, beta, seed):
    rng = np.random.default_rng(seed)
    A, A64 = _operand(backend, rng, M, K, ta)
    B, B64 = _operand(backend, rng, K, N, tb)
    if beta is None:                           # no C: a fresh result
        got = backend.gemm(A, B, alpha=alpha)
        want = alpha * A64 @ B64
    else:
        C = backend.asarray(rng.uniform(-1, 1, (M, N)))
        C64 = backend.to_host(C).astype(np.float64)
        got = backend.gemm(A, B, C, alpha=alpha, beta=beta)
        assert got is C
        want = alpha * A64 @ B64 + beta * C64
    np.testing.assert_allclose(backend.to_host(got), want, rtol=0, atol=_tol(backend, K))


@pytest.mark.parametrize("name", ["cpu", "opencl"])
@pytest.mark.parametrize("ta,tb", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_gemm_float64_and_large_tiles(name, ta, tb):
    """float64 kernels, and sizes with many full tiles plus ragged edges."""
    be = make_backend(name, dtype=np.float64)
    rng = np.random.default_rng(ta * 2 + tb)
    A, A64 = _operand(be, rng, 67, 45, ta)
    B, B64 = _operand(be, rng, 45, 70, tb)
    C = be.asarray(rng.uniform(-1, 1, (67, 70)))
    want = 0.5 * A64 @ B64 - 2.0 * be.to_host(C)
    np.testing.assert_allclose(be.to_host(be.gemm(A, B, C, 0.5, -2.0)), want, atol=1e-12)


def test_gemm_beta_zero_ignores_nan_in_c(backend):
    A = backend.asarray(np.ones((3, 4)))
    C = backend.asarray(np.full((3, 5), np.nan))
    out = backend.to_host(backend.gemm(A, backend.asarray(np.ones((4, 5))), C, beta=0.0))
    np.testing.assert_array_equal(out, np.full((3, 5), 4.0))


def test_gemm_empty_inner_dimension(backend):
    A = backend.asarray(np.ones((3, 0)))
    B = backend.asarray(np.ones((0, 2)))
    C = backend.asarray(np.full((3, 2), 2.0))
    np.testing.assert_array_equal(backend.to_host(backend.gemm(A, B, C, beta=0.5)),
                                  np.full((3, 2), 1.0))
    np.testing.assert_array_equal(backend.to_host(backend.gemm(A, B)), np.zeros((3, 2)))


def test_gemm_on_row_slices(backend):
    """Row slices of a larger array (an offset into its buffer) multiply correctly."""
    rng = np.random.default_rng(1)
    big = rng.uniform(-1, 1, (20, 9))
    W = rng.uniform(-1, 1, (11, 9))
    dev_big, dev_W = backend.asarray(big), backend.asarray(W)
    big, W = backend.to_host(dev_big).astype(np.float64), backend.to_host(dev_W).astype(np.float64)
    got = backend.to_host(backend.gemm(dev_big[5:17], dev_W.T))
    np.testing.assert_allclose(got, big[5:17] @ W.T, atol=1e-5)


def test_gemm_errors(backend):
    a = backend.asarray(np.ones((3, 4)))
    b = backend.asarray(np.ones((5, 2)))
    with pytest.raises(ShapeError, match=r"gemm: B must have shape \(4, \*\).*got \(5, 2\)"):
        backend.gemm(a, b)
    ok_b = backend.asarray(np.ones((4, 2)))
    with pytest.raises(ShapeError, match=r"gemm: C must have shape \(3, 2\), got \(2, 3\)"):
        backend.gemm(a, ok_b, backend.asarray(np.ones((2, 3))))
    with pytest.raises(ShapeError, match="2-D"):
        backend.gemm(backend.asarray(np.ones(4)), ok_b)
    other = np.float64 if backend.dtype == np.float32 else np.float32
    with pytest.raises(DTypeError, match="gemm"):
        backend.gemm(a, backend.asarray(np.ones((4, 2)), dtype=other))
    with pytest.raises(DTypeError, match="gemm: C"):
        backend.gemm(a, ok_b, backend.asarray(np.ones((3, 2)), dtype=other))
    square = backend.asarray(np.ones((4, 4)))
    with pytest.raises(ParameterError, match="must not"):
        backend.gemm(square, square, square)


@given(R=SIZES, C=SIZES, seed=st.integers(0, 2**16))
def test_transpose2d(backend, R, C, seed):
    a = np.random.default_rng(seed).uniform(-1, 1, (R, C)).astype(backend.dtype)
    out = backend.transpose2d(backend.asarray(a))
    host = backend.to_host(out)
    assert host.flags.c_contiguous
    np.testing.assert_array_equal(host, a.T)
    # a transposed view (out.T, i.e. a) transposes to a C-contiguous a.T again
    again = backend.to_host(backend.transpose2d(out.T))
    assert again.flags.c_contiguous
    np.testing.assert_array_equal(again, a.T)


def test_transpose2d_rejects_non_matrix(backend):
    with pytest.raises(ShapeError, match="transpose2d"):
        backend.transpose2d(backend.asarray(np.ones((2, 3, 4))))


def test_linear_backward_can_skip_dx(backend):
    """need_dx=False (a first layer) returns dx None and the same dW."""
    rng = np.random.default_rng(2)
    x = backend.asarray(rng.uniform(-1, 1, (5, 13)))
    W = backend.asarray(rng.uniform(-1, 1, (7, 13)))
    y, saved = backend.op("linear.forward")(x, W)
    dy = backend.asarray(rng.uniform(-1, 1, (5, 7)))
    dx, dW = backend.op("linear.backward")(dy, saved, need_dx=False)
    _, dW_full = backend.op("linear.backward")(dy, saved)
    assert dx is None
    np.testing.assert_array_equal(backend.to_host(dW), backend.to_host(dW_full))


def test_linear_and_bias_shape_errors(backend):
    x = backend.asarray(np.ones((4, 6)))
    with pytest.raises(ShapeError, match=r"linear: W must have shape \(\*, 6\)"):
        backend.op("linear.forward")(x, backend.asarray(np.ones((3, 5))))
    _, saved = backend.op("linear.forward")(x, backend.asarray(np.ones((3, 6))))
    with pytest.raises(ShapeError, match=r"linear: dy must have shape \(4, 3\)"):
        backend.op("linear.backward")(backend.asarray(np.ones((4, 4))), saved)
    with pytest.raises(ShapeError, match=r"bias: b must have shape \(6,\), got \(5,\)"):
        backend.op("bias.forward")(x, backend.asarray(np.ones(5)))
