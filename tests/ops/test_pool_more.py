"""Pool family, the ops added after the 2-D ones: max_pool3d / avg_pool3d (brute-force
oracle, tie rule, errors), global_max_pool_topk (descending, stable ties, k bounds),
max_over_time (whole sequence for filter_len <= 0, ties to the earliest step) and
projection_pool (both sizes) -- on every backend, the reference included, in float64
and (fast paths) float32.
"""
import numpy as np
import pytest
from hypothesis import given, settings

from refnn.errors import ParameterError, ShapeError
from refnn.ops import pool as P
from refnn.testing.op_inputs import pool as inputs
from refnn.testing.pytest_plugin import backend_names, make_backend


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param, dtype=np.float64)


def run(be, op, x, dy, *args, **params):
    y, saved = be.op(op + ".forward")(be.asarray(x), *args, **params)
    (dx,) = be.op(op + ".backward")(be.asarray(dy), saved)
    return be.to_host(y), be.to_host(dx)


def brute_force3d(x, kernel, stride, padding, mode, count_include_pad=False):
    """Plain loops over every output voxel and window cell."""
    size = x.shape[2:]
    out = [(n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding)]
    y = np.zeros(x.shape[:2] + tuple(out))
    for idx in np.ndindex(*y.shape):
        cells = []
        for off in np.ndindex(*kernel):
            pos = [o * s + i - p for o, s, i, p in zip(idx[2:], stride, off, padding)]
            if all(0 <= q < n for q, n in zip(pos, size)):
                cells.append(x[idx[:2] + tuple(pos)])
        if mode == "max":
            y[idx] = max(cells)
        else:
            y[idx] = sum(cells) / (np.prod(kernel) if count_include_pad else len(cells))
    return y


@settings(max_examples=25)
@given(inputs._window3d(avg=True))
def test_3d_reference_equals_brute_force(case):
    (x,), params = case
    cip = params.pop("count_include_pad")
    np.testing.assert_allclose(P.max_pool3d_forward(x, **params)[0],
                               brute_force3d(x, mode="max", **params))
    np.testing.assert_allclose(P.avg_pool3d_forward(x, count_include_pad=cip, **params)[0],
                               brute_force3d(x, mode="avg", count_include_pad=cip, **params))


def test_3d_with_depth_one_is_the_2d_op(any_backend):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 1, 7, 6))
    for op in ("max_pool", "avg_pool"):
        y3, _ = run(any_backend, op + "3d", x, np.zeros((2, 3, 1, 4, 3)), (1, 3, 2),
                    (1, 2, 2), (0, 1, 0))
        y2, _ = P.__dict__[op + "2d_forward"](x[:, :, 0], (3, 2), (2, 2), (1, 0))
        np.testing.assert_allclose(y3[:, :, 0], y2)


def test_3d_max_ties_go_to_the_first_maximum(any_backend):
    x = np.zeros((1, 1, 2, 2, 2))                  # one window, all eight equal
    dy = np.ones((1, 1, 1, 1, 1))
    y, dx = run(any_backend, "max_pool3d", x, dy, 2, 2, 0)
    want = np.zeros_like(x)
    want[0, 0, 0, 0, 0] = 1
    np.testing.assert_array_equal(dx, want)


@pytest.mark.parametrize("op", ["max_pool3d", "avg_pool3d"])
@pytest.mark.parametrize("shape, kwargs, error, message", [
    ((1, 1, 4, 4), {}, ShapeError, r"\(N, C, D, H, W\)"),
    ((1, 1, 2, 4, 4), {"kernel": 3}, ShapeError, "larger than the padded input"),
    ((1, 1, 4, 4, 4), {"kernel": 2, "stride": (1, 0, 1)}, ParameterError, "stride"),
    ((1, 1, 4, 4, 4), {"kernel": 2, "padding": 2}, ParameterError, "padding"),
    ((1, 1, 4, 4, 4), {"kernel": (2, 2)}, ParameterError, "triple"),
])
def test_3d_errors_name_the_op(any_backend, op, shape, kwargs, error, message):
    with pytest.raises(error, match=f"{op}.*{message}"):
        any_backend.op(op + ".forward")(any_backend.asarray(np.zeros(shape)), **kwargs)


# ------------------------------------------------------------------ top-k
def test_topk_descending_and_ties_stable(any_backend):
    x = np.array([[[[1.0, 5.0, 2.0], [5.0, 0.0, 2.0]]]])    # plane 1 5 2 5 0 2
    dy = np.array([[[[10.0, 20.0, 30.0, 40.0]]]])
    y, dx = run(any_backend, "global_max_pool_topk", x, dy, 4)
    np.testing.assert_array_equal(y, [[[[5.0, 5.0, 2.0, 2.0]]]])
    np.testing.assert_array_equal(dx, [[[[0.0, 10.0, 30.0], [20.0, 0.0, 40.0]]]])


def test_topk_whole_plane_is_a_sort_and_k1_is_global_max(any_backend):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2, 5, 7))
    y, _ = run(any_backend, "global_max_pool_topk", x, np.zeros((3, 2, 1, 35)), 35)
    np.testing.assert_allclose(y[:, :, 0], -np.sort(-x.reshape(3, 2, -1), axis=2))
    y1, _ = run(any_backend, "global_max_pool_topk", x, np.zeros((3, 2, 1, 1)), 1)
    np.testing.assert_allclose(y1, P.global_max_pool_forward(x)[0])


@pytest.mark.parametrize("k", [0, 7, 2.0, True])
def test_topk_bad_k_names_the_op(any_backend, k):
    with pytest.raises(ParameterError, match="global_max_pool_topk.*k"):
        any_backend.op("global_max_pool_topk.forward")(any_backend.asarray(np.zeros((1, 1, 2, 3))), k)


# ------------------------------------------------------------------ max over time
def test_max_over_time_whole_sequence(any_backend):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(37, 2, 3))
    for filter_len in (0, -5):
        y, dx = run(any_backend, "max_over_time", x, np.ones((1, 2, 3)), filter_len, 99)
        np.testing.assert_allclose(y[0], x.max(axis=0))
        np.testing.assert_array_equal(dx, (x == x.max(axis=0)).astype(float))


def test_max_over_time_ties_go_to_the_earliest_step(any_backend):
    x = np.array([[1.0], [3.0], [3.0], [0.0], [3.0]]).reshape(5, 1, 1)
    y, dx = run(any_backend, "max_over_time", x, np.ones((2, 1, 1)), 3, 2)
    np.testing.assert_array_equal(y.ravel(), [3.0, 3.0])
    np.testing.assert_array_equal(dx.ravel(), [0.0, 1.0, 1.0, 0.0, 0.0])   # t=1 and t=2


@pytest.mark.parametrize("shape, args, error, message", [
    ((4, 2), (2, 1), ShapeError, r"\(T, N, C\)"),
    ((4, 1, 2), (5, 1), ShapeError, "filter_len 5 is longer"),
    ((4, 1, 2), (2, 0), ParameterError, "stride_len"),
    ((4, 1, 2), (2.0, 1), ParameterError, "filter_len"),
])
def test_max_over_time_errors_name_the_op(any_backend, shape, args, error, message):
    with pytest.raises(error, match=f"max_over_time.*{message}"):
        any_backend.op("max_over_time.forward")(any_backend.asarray(np.zeros(shape)), *args)


# ------------------------------------------------------------------ projection
@pytest.mark.parametrize("original_size", [False, True])
def test_projection_pool_is_the_mean(any_backend, original_size):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 5, 4))
    out = x.shape if original_size else (3, 1, 4)
    dy = rng.normal(size=out)
    y, dx = run(any_backend, "projection_pool", x, dy, original_size)
    np.testing.assert_allclose(y, np.broadcast_to(x.mean(axis=1, keepdims=True), out))
    np.testing.assert_allclose(dx, np.broadcast_to(dy.sum(axis=1, keepdims=True) / 5,
                                                   x.shape))


def test_projection_pool_errors_name_the_op(any_backend):
    with pytest.raises(ShapeError, match="projection_pool.*\\(A, L, B\\)"):
        any_backend.op("projection_pool.forward")(any_backend.asarray(np.zeros((2, 3))))
    _, saved = any_backend.op("projection_pool.forward")(any_backend.asarray(np.zeros((2, 3, 4))))
    with pytest.raises(ShapeError, match="projection_pool.*dy"):
        any_backend.op("projection_pool.backward")(any_backend.asarray(np.zeros((2, 3, 4))), saved)


def test_float32_fast_paths_match_reference():
    rng = np.random.default_rng(4)
    cases = [("max_pool3d", rng.normal(size=(2, 3, 5, 4, 6)), ((2, 3, 2), (1, 2, 3), (1, 1, 0))),
             ("avg_pool3d", rng.normal(size=(2, 3, 5, 4, 6)), ((3, 2, 2), (2, 1, 3), (1, 0, 1))),
             ("global_max_pool_topk", rng.normal(size=(2, 3, 4, 5)), (6,)),
             ("max_over_time", rng.normal(size=(33, 4, 5)), (4, 3)),
             ("projection_pool", rng.normal(size=(3, 6, 5)), (True,))]
    ref = make_backend("reference")
    for name in backend_names():
        be = make_backend(name, dtype=np.float32)
        for op, x, args in cases:
            y0, s0 = ref.op(op + ".forward")(x, *args)
            dy = rng.normal(size=y0.shape)
            (dx0,) = ref.op(op + ".backward")(dy, s0)
            y, dx = run(be, op, x.astype(np.float32), dy.astype(np.float32), *args)
            np.testing.assert_allclose(y, y0, rtol=1e-5, atol=1e-5, err_msg=f"{name} {op}")
            np.testing.assert_allclose(dx, dx0, rtol=1e-5, atol=1e-5, err_msg=f"{name} {op}")
