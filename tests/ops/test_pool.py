"""Pool family: properties beyond the generic contract of test_generic.py -- a brute-force
loop oracle for the reference, the tie rule (first maximum in row-major window order),
count_include_pad, float64 fast paths, batches of several images, and the geometry
errors, on every backend (the reference included).
"""
import numpy as np
import pytest
from hypothesis import given, settings

from refnn.errors import ParameterError, ShapeError
from refnn.ops import pool as P
from refnn.testing import assert_matches_reference
from refnn.testing.op_inputs import pool as inputs
from refnn.testing.pytest_plugin import backend_names, make_backend


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param, dtype=np.float64)


def run(be, op, x, dy, **params):
    y, saved = be.op(op + ".forward")(be.asarray(x), **params)
    (dx,) = be.op(op + ".backward")(be.asarray(dy), saved)
    return be.to_host(y), be.to_host(dx)


def brute_force(x, kernel, stride, padding, mode, count_include_pad=False):
    """Plain loops over every output pixel and window cell (the oracle of the oracle)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.zeros((n, c, ho, wo))
    for idx in np.ndindex(n, c, ho, wo):
        a, b = idx[2:]
        cells = [x[idx[0], idx[1], a * sh + i - ph, b * sw + j - pw]
                 for i in range(kh) for j in range(kw)
                 if 0 <= a * sh + i - ph < h and 0 <= b * sw + j - pw < w]
        if mode == "max":
            y[idx] = max(cells)
        else:
            y[idx] = sum(cells) / (kh * kw if count_include_pad else len(cells))
    return y


@settings(max_examples=30)
@given(inputs._window(avg=True))
def test_reference_equals_brute_force(case):
    (x,), params = case
    cip = params.pop("count_include_pad")
    np.testing.assert_allclose(P.max_pool2d_forward(x, **params)[0],
                               brute_force(x, mode="max", **params))
    np.testing.assert_allclose(P.avg_pool2d_forward(x, count_include_pad=cip, **params)[0],
                               brute_force(x, mode="avg", count_include_pad=cip, **params))


def test_max_ties_go_to_first_maximum_in_row_major_order(any_backend):
    x = np.array([[[[1.0, 3.0, 3.0],
                    [3.0, 0.0, 3.0],
                    [2.0, 3.0, 1.0]]]])
    y, dx = run(any_backend, "max_pool2d", x, np.array([[[[1.0, 10.0], [100.0, 1000.0]]]]),
                kernel=(2, 2), stride=(1, 1), padding=(0, 0))
    np.testing.assert_array_equal(y, [[[[3.0, 3.0], [3.0, 3.0]]]])
    # windows (0,0) and (0,1) both pick (0,1); (1,0) picks (1,0); (1,1) picks (1,2)
    np.testing.assert_array_equal(dx, [[[[0.0, 11.0, 0.0],
                                         [100.0, 0.0, 1000.0],
                                         [0.0, 0.0, 0.0]]]])


def test_global_max_tie_goes_to_first(any_backend):
    x = np.array([[[[0.0, 5.0], [5.0, 1.0]]]])
    y, dx = run(any_backend, "global_max_pool", x, np.array([[[[2.0]]]]))
    np.testing.assert_array_equal(y, [[[[5.0]]]])
    np.testing.assert_array_equal(dx, [[[[0.0, 2.0], [0.0, 0.0]]]])


def test_max_padding_counts_as_minus_infinity(any_backend):
    x = -np.ones((1, 1, 1, 1))
    y, dx = run(any_backend, "max_pool2d", x, np.ones((1, 1, 1, 1)),
                kernel=(2, 2), stride=(2, 2), padding=(1, 1))
    np.testing.assert_array_equal(y, [[[[-1.0]]]])
    np.testing.assert_array_equal(dx, [[[[1.0]]]])


@pytest.mark.parametrize("cip, expected", [(False, 1.0), (True, 0.25)])
def test_avg_count_include_pad(any_backend, cip, expected):
    x = np.ones((1, 1, 3, 3))
    y, dx = run(any_backend, "avg_pool2d", x, np.ones((1, 1, 2, 2)), kernel=(2, 2),
                stride=(2, 2), padding=(1, 1), count_include_pad=cip)
    assert y[0, 0, 0, 0] == expected                  # corner window: 1 real pixel of 4
    assert dx[0, 0, 0, 0] == expected


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d", "global_max_pool",
                                "global_mean_pool", "global_sum_pool"])
@pytest.mark.parametrize("name", backend_names())
def test_float64_and_batches(op, name):
    be = make_backend(name, dtype=np.float64)
    x = (np.random.default_rng(0).permutation(3 * 4 * 7 * 5) * 0.05 - 5.0).reshape(3, 4, 7, 5)
    params = {} if op.startswith("global") else dict(kernel=(3, 2), stride=(2, 3),
                                                     padding=(1, 1))
    assert_matches_reference(be, op, [x], params, dtype=np.float64, backend_name=name)


@pytest.mark.parametrize("params, error, words", [
    (dict(kernel=(4, 2)), ShapeError, "larger than the padded input"),
    (dict(kernel=(2, 2), stride=(0, 1)), ParameterError, "stride must be >= 1"),
    (dict(kernel=(2, 2), padding=(2, 0)), ParameterError, "padding must satisfy"),
    (dict(kernel=(0, 2)), ParameterError, "kernel must be >= 1"),
    (dict(kernel=(2, 2, 2)), ParameterError, "pair of ints"),
    (dict(kernel=(1.5, 2)), ParameterError, "integers"),
])
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_geometry_errors_name_the_op(any_backend, op, params, error, words):
    x = any_backend.asarray(np.zeros((1, 1, 3, 3)))
    with pytest.raises(error, match=words) as info:
        any_backend.op(op + ".forward")(x, **params)
    assert str(info.value).startswith(op + ":")


@pytest.mark.parametrize("op", ["max_pool2d", "global_mean_pool"])
def test_shape_errors(any_backend, op):
    with pytest.raises(ShapeError, match=op + r": x must have shape \(N, C, H, W\)"):
        any_backend.op(op + ".forward")(any_backend.asarray(np.zeros((3, 3))))
    y, saved = any_backend.op(op + ".forward")(any_backend.asarray(np.zeros((1, 2, 3, 3))))
    with pytest.raises(ShapeError, match="dy must have shape"):
        any_backend.op(op + ".backward")(any_backend.asarray(np.zeros((1, 2, 5, 5))), saved)
