"""be.copy_columns: the column-block copy of every backend against NumPy slicing.

dst[:, d0:d0 + n] = src[:, s0:s0 + n] on 2-D C-contiguous arrays: NumPy slice
assignment on the host backends, one clEnqueueCopyBufferRect on OpenCL. Covers float32,
float64 and int32, odd sizes, one row / one column, matrices that start at an offset in
their buffer (row slices, or views of a flat array at any offset), n = 0, the rest of
dst left untouched, and the errors.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.testing.pytest_plugin import make_backend

NAMES = ["reference", "cpu", "opencl"]
_BACKENDS = {}


def _be(name, dtype=np.float32):
    key = (name, np.dtype(dtype))
    if key not in _BACKENDS:
        _BACKENDS[key] = make_backend(name, dtype=dtype)
    return _BACKENDS[key]


@st.composite
def copies(draw):
    rows = draw(st.integers(1, 33))
    src_w, dst_w = draw(st.integers(1, 19)), draw(st.integers(1, 19))
    n = draw(st.integers(0, min(src_w, dst_w)))
    s0 = draw(st.integers(0, src_w - n))
    d0 = draw(st.integers(0, dst_w - n))
    # numbers skipped in front of each matrix in its flat buffer: the matrix starts at
    # a buffer offset (whole rows, as a row slice, or not)
    src_skip, dst_skip = draw(st.integers(0, 2 * src_w)), draw(st.integers(0, 2 * dst_w))
    return rows, src_w, dst_w, n, s0, d0, src_skip, dst_skip


def _view(flat, skip, rows, cols):
    return flat[skip:skip + rows * cols].reshape(rows, cols)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@given(case=copies(), seed=st.integers(0, 2**16))
def test_copy_columns_matches_numpy(name, dtype, case, seed):
    rows, src_w, dst_w, n, s0, d0, src_skip, dst_skip = case
    be = _be(name, np.float64 if dtype == np.float64 else np.float32)
    rng = np.random.default_rng(seed)
    src_all = rng.integers(-1000, 1000, src_skip + rows * src_w + 3).astype(dtype)
    dst_all = rng.integers(-1000, 1000, dst_skip + rows * dst_w + 3).astype(dtype)
    if dtype != np.int32:
        src_all += rng.uniform(-1, 1, src_all.shape).astype(dtype)
    src_dev = be.asarray(src_all, dtype=dtype)
    dst_dev = be.asarray(dst_all, dtype=dtype)
    src, dst = _view(src_dev, src_skip, rows, src_w), _view(dst_dev, dst_skip, rows, dst_w)
    got = be.copy_columns(src, s0, dst, d0, n)
    assert got is dst
    want = dst_all.copy()
    _view(want, dst_skip, rows, dst_w)[:, d0:d0 + n] = \
        _view(src_all, src_skip, rows, src_w)[:, s0:s0 + n]
    out = be.to_host(dst_dev)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, want)                 # a copy: bit-exact, nothing else
    np.testing.assert_array_equal(be.to_host(src_dev), src_all)   # source untouched


@pytest.mark.parametrize("name", NAMES)
def test_copy_columns_join_and_split(name):
    """What the layers do: join parts of different widths along the columns into one
    matrix, then split it back; a long matrix with many rows."""
    be = _be(name)
    rng = np.random.default_rng(1)
    widths, rows = [3, 1, 7, 2], 1001
    parts = [rng.normal(size=(rows, w)).astype(np.float32) for w in widths]
    y = be.empty((rows, sum(widths)))
    offsets = np.cumsum([0] + widths)
    for p, o, w in zip(parts, offsets, widths):
        be.copy_columns(be.asarray(p), 0, y, int(o), w)
    np.testing.assert_array_equal(be.to_host(y), np.concatenate(parts, axis=1))
    for p, o, w in zip(parts, offsets, widths):
        back = be.copy_columns(y, int(o), be.zeros((rows, w)), 0, w)
        np.testing.assert_array_equal(be.to_host(back), p)


@pytest.mark.parametrize("name", NAMES)
def test_copy_columns_one_row_same_array(name):
    """Two blocks of one single-row array do not overlap in memory: allowed."""
    be = _be(name)
    a = be.asarray(np.arange(6, dtype=np.float32).reshape(1, 6))
    be.copy_columns(a, 0, a, 3, 3)
    np.testing.assert_array_equal(be.to_host(a), [[0, 1, 2, 0, 1, 2]])


@pytest.mark.parametrize("name", NAMES)
def test_copy_columns_disjoint_views_of_one_buffer(name):
    """Two row slices of one array (one buffer, different offsets) that do not overlap."""
    be = _be(name)
    host = np.arange(24, dtype=np.float32).reshape(8, 3)
    a = be.asarray(host)
    be.copy_columns(a[:4], 0, a[4:], 1, 2)
    want = host.copy()
    want[4:, 1:3] = host[:4, 0:2]
    np.testing.assert_array_equal(be.to_host(a), want)


@pytest.mark.parametrize("name", NAMES)
def test_copy_columns_views_of_one_buffer_other_widths(name):
    """Two disjoint views of one buffer with different row lengths (OpenCL: different
    pitches in one buffer, which clEnqueueCopyBufferRect refuses: a temporary)."""
    be = _be(name)
    host = np.arange(36, dtype=np.float32)
    flat = be.asarray(host)
    src, dst = flat[:12].reshape(3, 4), flat[12:].reshape(3, 8)
    be.copy_columns(src, 1, dst, 5, 3)
    want = host.copy()
    want[12:].reshape(3, 8)[:, 5:8] = host[:12].reshape(3, 4)[:, 1:4]
    np.testing.assert_array_equal(be.to_host(flat), want)


@pytest.mark.parametrize("name", NAMES)
def test_copy_columns_errors(name):
    be = _be(name)
    a = be.asarray(np.zeros((4, 6)))
    b = be.asarray(np.zeros((4, 5)))
    where = r"copy_columns"
    with pytest.raises(ShapeError, match=where + r".*src must be a 2-D matrix.*\(24,\)"):
        be.copy_columns(a.reshape(24), 0, b, 0, 1)
    with pytest.raises(ShapeError, match=where + r".*dst must be C-contiguous"):
        be.copy_columns(a, 0, be.asarray(np.zeros((5, 4))).T, 0, 1)
    with pytest.raises(ShapeError, match=where + r".*src must be C-contiguous"):
        be.copy_columns(be.asarray(np.zeros((6, 4))).T, 0, b, 0, 1)
    with pytest.raises(DTypeError, match=r"same dtype.*float32 and float64"):
        be.copy_columns(a, 0, be.asarray(np.zeros((4, 5)), dtype=np.float64), 0, 1)
    with pytest.raises(ShapeError, match=r"same number of rows.*\(4, 6\) and \(3, 5\)"):
        be.copy_columns(a, 0, be.asarray(np.zeros((3, 5))), 0, 1)
    with pytest.raises(ShapeError, match=r"columns \[4, 7\) are outside src of shape "
                                         r"\(4, 6\)"):
        be.copy_columns(a, 4, b, 0, 3)
    with pytest.raises(ShapeError, match=r"columns \[3, 6\) are outside dst"):
        be.copy_columns(a, 0, b, 3, 3)
    for bad in (-1, 1.0, True, None):
        with pytest.raises(ParameterError, match=r"src_col0 must be an int >= 0"):
            be.copy_columns(a, bad, b, 0, 1)
    with pytest.raises(ParameterError, match=r"ncols must be an int >= 0, got -2"):
        be.copy_columns(a, 0, b, 0, -2)
    with pytest.raises(ParameterError, match=r"overlap"):
        be.copy_columns(a, 0, a, 3, 3)                # interleaved rows of one array
    big = be.asarray(np.zeros((5, 6)))
    with pytest.raises(ParameterError, match=r"overlap"):
        be.copy_columns(big[:4], 1, big[1:], 0, 2)    # one buffer, two views
    foreign = np.zeros((4, 5), np.float32) if name == "opencl" else \
        _be("opencl").asarray(np.zeros((4, 5)))
    with pytest.raises(ParameterError, match=r"dst must be an array of the .* backend"):
        be.copy_columns(a, 0, foreign, 0, 1)
    # n = 0 copies nothing and still validates
    assert be.copy_columns(a, 6, b, 5, 0) is b


def test_copy_columns_opencl_other_context_rejected():
    """An OpenCL array of another context is not this backend's array."""
    import pyopencl as cl
    import pyopencl.array as cla
    from refnn.backends.opencl import _context_for
    be = _be("opencl")
    ctx = _context_for(be.device)
    if ctx == be.context:                 # contexts are shared per device: make a new one
        ctx = cl.Context([be.device])
    other = cla.to_device(cl.CommandQueue(ctx), np.zeros((2, 3), np.float32))
    with pytest.raises(ParameterError, match=r"src must be an array of the opencl backend"):
        be.copy_columns(other, 0, be.zeros((2, 3)), 0, 1)
