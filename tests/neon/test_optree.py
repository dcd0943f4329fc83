"""Tensors and op-trees on every neon backend equal NumPy."""
import numpy as np
import pytest

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.neon.backends import OpTreeNode, gen_backend
from refnn.neon.backends import _optree

RTOL, ATOL = 2e-6, 1e-6     # float32, one rounding per op (fused or not)

rs = np.random.RandomState(0)
X = rs.uniform(0.5, 2.0, (5, 7)).astype(np.float32)
Y = rs.randn(5, 1).astype(np.float32)
Z = rs.randn(7, 5).astype(np.float32)


def close(t, ref):
    np.testing.assert_allclose(t.get(), ref, rtol=RTOL, atol=ATOL)


def test_elementwise_tree_with_broadcast_and_scalars(nbe):
    x, y = nbe.array(X), nbe.array(Y)
    out = nbe.empty((5, 7))
    out[:] = nbe.maximum(x - 1, 0) * y + nbe.exp(x) / 3 - nbe.sig(-x) + 2 ** y
    ref = np.maximum(X - 1, 0) * Y + np.exp(X) / 3 - 1 / (1 + np.exp(X)) + 2 ** Y
    close(out, ref)


@pytest.mark.parametrize("op", sorted(_optree.UNARY))
def test_every_unary_op(nbe, op):
    x = nbe.array(X)
    out = nbe.empty(X.shape)
    out[:] = OpTreeNode.build(op, x, None)
    ref = _optree.UNARY[op][0](X.astype(np.float64))
    np.testing.assert_allclose(out.get(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", sorted(_optree.BINARY))
def test_every_binary_op(nbe, op):
    yb = np.where(np.round(Y) == 0, 1, np.round(Y))     # nonzero; X[1, 1] == yb[1] below
    xb = X.copy()
    xb[1, 1] = yb[1, 0]
    x, y = nbe.array(xb), nbe.array(yb)
    out = nbe.empty(X.shape)
    out[:] = OpTreeNode.build(op, x, y)
    ref = _optree.BINARY[op][0](xb.astype(np.float64), yb.astype(np.float64))
    np.testing.assert_allclose(out.get(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", [0, 1, None])
def test_reductions(nbe, axis):
    x = nbe.array(X)
    for fn, ref in ((nbe.sum, np.sum), (nbe.max, np.max), (nbe.min, np.min),
                    (nbe.mean, np.mean), (nbe.var, np.var), (nbe.std, np.std)):
        shape = (1, 1) if axis is None else ((1, 7) if axis == 0 else (5, 1))
        out = nbe.empty(shape)
        out[:] = fn(x * 2, axis=axis)
        np.testing.assert_allclose(out.get(), ref(X * 2, axis=axis, keepdims=True),
                                   rtol=1e-5, atol=1e-6)


def test_argmax_argmin_and_reduction_inside_a_tree(nbe):
    x = nbe.array(X)
    a = nbe.empty((1, 7))
    a[:] = nbe.argmax(x, axis=0)
    np.testing.assert_array_equal(a.get()[0], X.argmax(0))
    a[:] = nbe.argmin(x, axis=0)
    np.testing.assert_array_equal(a.get()[0], X.argmin(0))
    out = nbe.empty((5, 7))
    out[:] = nbe.exp(x - nbe.max(x, axis=0)) / nbe.sum(nbe.exp(x - nbe.max(x, axis=0)), axis=0)
    e = np.exp(X - X.max(0))
    close(out, e / e.sum(0))


def test_views_transpose_slices_reshape(nbe):
    x, z = nbe.array(X), nbe.array(Z)
    t = nbe.empty((7, 5))
    t[:] = x.T * 2 + z
    close(t, X.T * 2 + Z)
    x[1:3, 2:5] = 0            # assignment into a strided view
    expect = X.copy()
    expect[1:3, 2:5] = 0
    close(x, expect)
    close(x[1:3, 2:5], expect[1:3, 2:5])           # get() of a strided view
    close(x.T, expect.T)
    close(x.reshape((7, 5)), expect.reshape(7, 5))
    x[:, 0:2] = x[:, 2:4] * 3                      # strided source and target
    expect[:, 0:2] = expect[:, 2:4] * 3
    close(x, expect)


def test_set_fill_array_zeros_ones(nbe):
    t = nbe.zeros((3, 4))
    close(t, np.zeros((3, 4)))
    close(nbe.ones((2, 2)), np.ones((2, 2)))
    t.fill(2.5)
    close(t, np.full((3, 4), 2.5))
    t.set(np.arange(12).reshape(3, 4))
    close(t, np.arange(12).reshape(3, 4))
    t[:, 1:3] = np.array([[7.0, 8.0]])             # host data broadcast into a view
    assert t.get()[2, 2] == 8.0
    src = np.ones((2, 3))
    a = nbe.array(src)
    a[:] = 5
    assert src[0, 0] == 1.0, "be.array must copy its host data"
    assert nbe.array(np.arange(3)).shape == (3, 1), "neon: 1-D data becomes a column"


def test_dot_and_compound_dot_with_transposed_views(nbe):
    x, z = nbe.array(X), nbe.array(Z)
    d = nbe.empty((5, 5))
    d[:] = nbe.dot(x, z)
    np.testing.assert_allclose(d.get(), X @ Z, rtol=1e-5, atol=1e-5)
    c = nbe.array(np.ones((7, 7)))
    nbe.compound_dot(x.T, z.T, c, alpha=2.0, beta=0.5)
    np.testing.assert_allclose(c.get(), 2 * X.T @ Z.T + 0.5, rtol=1e-5, atol=1e-5)
    d[:] = nbe.dot(x, z) * 2 + 1                   # a dot inside a tree
    np.testing.assert_allclose(d.get(), 2 * X @ Z + 1, rtol=1e-5, atol=1e-5)


def test_onehot(nbe):
    idx = nbe.array(np.array([[2, 0, 1, 2]]))
    out = nbe.empty((3, 4))
    nbe.onehot(idx, axis=0, out=out)
    np.testing.assert_array_equal(out.get(), np.eye(3)[[2, 0, 1, 2]].T)


def test_opencl_compiles_each_tree_structure_once():
    be = gen_backend("gpu", batch_size=4)
    a, b = be.array(X), be.array(X * 2)
    out = be.empty(X.shape)
    out[:] = a * 3 + b
    n = len(be.fused._cache)
    out[:] = b * 0.5 + a                     # same structure, other values and tensors
    out[:] = be.array(Z).T * 7 + a           # a transposed leaf: still the same kernel
    assert len(be.fused._cache) == n
    np.testing.assert_allclose(out.get(), Z.T * 7 + X, rtol=RTOL, atol=ATOL)
    out[:] = be.exp(a)                       # a new structure
    assert len(be.fused._cache) == n + 1


def test_bad_assignments_raise(nbe):
    t = nbe.empty((3, 4))
    with pytest.raises(ShapeError, match=r"\(3, 5\).*\(3, 4\)"):
        t[:] = nbe.ones((3, 5)) * 2
    with pytest.raises(ShapeError, match="do not broadcast"):
        nbe.ones((3, 4)) + nbe.ones((2, 4))
    with pytest.raises(DTypeError, match="numeric"):
        t.set(np.array([["a"] * 4] * 3))
    with pytest.raises(ParameterError, match="NumPy arrays are not operands"):
        nbe.ones((3, 4)) + np.ones((3, 4))
    with pytest.raises(ParameterError, match="dtype"):
        nbe.empty((2, 2), dtype=np.float16)
    with pytest.raises(ShapeError, match="not aligned|does not give"):
        nbe.dot(nbe.ones((2, 3)), nbe.ones((2, 3)))


def test_gen_backend_names_and_errors():
    import warnings
    from refnn.backends.cpu import CpuBackend
    from refnn.backends.opencl import OpenCLBackend
    from refnn.backends.reference import ReferenceBackend
    assert isinstance(gen_backend("cpu").rb, CpuBackend)
    assert isinstance(gen_backend("gpu").rb, OpenCLBackend)
    assert isinstance(gen_backend("reference").rb, ReferenceBackend)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert isinstance(gen_backend("mkl").rb, CpuBackend)
    assert any("MKL" in str(x.message) for x in w)
    with pytest.raises(ParameterError, match="'cpu', 'gpu', 'reference', 'mkl'"):
        gen_backend("nervanagpu")
    with pytest.raises(DTypeError, match="float32 or float64, got int32"):
        gen_backend("cpu", datatype=np.int32)
    from refnn.backends import BackendError
    with pytest.raises(BackendError, match="device"):
        gen_backend("gpu", device_id=99)
    with pytest.raises(ParameterError, match="device_id"):
        gen_backend("cpu", device_id=3)


def test_float64_backends_evaluate_in_float64():
    for name in ("reference", "cpu", "gpu"):
        be = gen_backend(name, datatype=np.float64, batch_size=4)
        if name == "gpu" and "cl_khr_fp64" not in be.rb.device.extensions:
            pytest.skip("this OpenCL device has no cl_khr_fp64")
        x = be.array(X.astype(np.float64))
        out = be.empty((1, 7))
        out[:] = be.sum(be.sqrt(x) * 1e-3, axis=0)
        assert out.get().dtype == np.float64
        np.testing.assert_allclose(out.get(), (np.sqrt(X.astype(np.float64)) * 1e-3).sum(
            axis=0, keepdims=True), rtol=1e-12)


def test_importing_the_facade_imports_neither_pytest_nor_opencl():
    import subprocess
    import sys
    code = ("import sys, refnn.neon, refnn.neon.layers, refnn.neon.models, "
            "refnn.neon.backends, refnn.neon.callbacks.callbacks, refnn.neon.data; "
            "bad = [m for m in ('pytest', 'hypothesis', 'pyopencl') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_scalars_build_trees_too(nbe):
    x = nbe.array(X)
    out = nbe.empty(X.shape)
    out[:] = np.float32(3) * x - np.float64(1) / x
    close(out, 3 * X - 1 / X)
