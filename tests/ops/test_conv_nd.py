"""conv3d, the transposed convolutions and conv2d's need_dx beyond the generic contract:
direct loops, the adjoint identity <conv(z), x> = <z, conv_transpose(x)>, a known value,
need_dx=False, and the argument errors on every backend (the reference included).
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.ops import conv as K
from refnn.testing.pytest_plugin import backend_names, make_backend


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param)


def _tol(be):
    return 1e-10 if be.dtype == np.float64 else 2e-4


def direct_conv3d(x, w, stride, padding, dilation):
    """y[n,f,a,i,j] = sum_{c,o,p,q} w[f,c,o,p,q] xpad[n,c,a sd + o dd, i sh + p dh, j sw + q dw]."""
    xpad = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding))
    F, _, *kernel = w.shape
    out = [(n - d * (k - 1) - 1) // s + 1
           for n, k, s, d in zip(xpad.shape[2:], kernel, stride, dilation)]
    y = np.zeros((x.shape[0], F, *out))
    for a, i, j in np.ndindex(*out):
        for o, p, q in np.ndindex(*kernel):
            pix = xpad[:, :, a * stride[0] + o * dilation[0], i * stride[1] + p * dilation[1],
                       j * stride[2] + q * dilation[2]]
            y[:, :, a, i, j] += pix @ w[:, :, o, p, q].T
    return y


def direct_conv_transpose2d(x, w, stride, padding, dilation, output_padding):
    """y[n, c, i sh + p dh - ph, j sw + q dw - pw] += sum_f w[f,c,p,q] x[n,f,i,j]."""
    N, F, H, W = x.shape
    _, C, kh, kw = w.shape
    Ho = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
    Wo = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
    y = np.zeros((N, C, Ho, Wo))
    for i, j, p, q in np.ndindex(H, W, kh, kw):
        h = i * stride[0] + p * dilation[0] - padding[0]
        v = j * stride[1] + q * dilation[1] - padding[1]
        if 0 <= h < Ho and 0 <= v < Wo:
            y[:, :, h, v] += x[:, :, i, j] @ w[:, :, p, q]
    return y


GEOMETRIES3 = [((1, 1, 1), (0, 0, 0), (1, 1, 1)), ((2, 1, 3), (1, 0, 1), (1, 2, 1)),
               ((1, 4, 2), (0, 2, 1), (2, 1, 1))]


@pytest.mark.parametrize("stride,padding,dilation", GEOMETRIES3)
def test_conv3d_matches_direct_loop(any_backend, stride, padding, dilation):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 3, 5, 6, 7)), rng.normal(size=(4, 3, 2, 3, 2))
    be = any_backend
    y, _ = be.op("conv3d.forward")(be.asarray(x), be.asarray(w), stride=stride,
                                   padding=padding, dilation=dilation)
    np.testing.assert_allclose(be.to_host(y), direct_conv3d(x, w, stride, padding, dilation),
                               rtol=_tol(be), atol=_tol(be))


def test_conv3d_of_depth_one_is_conv2d(any_backend):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(2, 3, 1, 6, 5)), rng.normal(size=(4, 3, 1, 3, 2))
    be = any_backend
    y3, _ = be.op("conv3d.forward")(be.asarray(x), be.asarray(w), stride=(1, 2, 1),
                                    padding=(0, 1, 1))
    y2, _ = K.conv2d_forward(x[:, :, 0], w[:, :, 0], stride=(2, 1), padding=(1, 1))
    np.testing.assert_allclose(be.to_host(y3)[:, :, 0], y2, rtol=_tol(be), atol=_tol(be))


TRANSPOSED2 = [((1, 1), (0, 0), (1, 1), (0, 0)), ((2, 3), (1, 0), (1, 2), (1, 2)),
               ((3, 1), (2, 1), (2, 1), (2, 0)), ((5, 2), (0, 1), (1, 1), (0, 1))]


@pytest.mark.parametrize("stride,padding,dilation,output_padding", TRANSPOSED2)
def test_conv_transpose2d_matches_scatter_loop(any_backend, stride, padding, dilation,
                                               output_padding):
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(3, 2, 3, 2))
    be = any_backend
    y, _ = be.op("conv_transpose2d.forward")(be.asarray(x), be.asarray(w), stride=stride,
                                             padding=padding, dilation=dilation,
                                             output_padding=output_padding)
    want = direct_conv_transpose2d(x, w, stride, padding, dilation, output_padding)
    np.testing.assert_allclose(be.to_host(y), want, rtol=_tol(be), atol=_tol(be))


@pytest.mark.parametrize("nd", [2, 3])
def test_transposed_is_the_adjoint_of_the_convolution(any_backend, nd):
    """<conv(z, w), x> = <z, conv_transpose(x, w)> for every z, x (same w and geometry)."""
    rng = np.random.default_rng(3)
    be = any_backend
    if nd == 2:
        x, w = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(3, 2, 3, 2))
        params = dict(stride=(2, 3), padding=(1, 0), dilation=(1, 2))
    else:
        x, w = rng.normal(size=(2, 3, 3, 4, 2)), rng.normal(size=(3, 2, 2, 3, 2))
        params = dict(stride=(2, 1, 3), padding=(1, 0, 1), dilation=(1, 2, 1))
    y, saved = be.op(f"conv_transpose{nd}d.forward")(be.asarray(x), be.asarray(w), **params)
    z = rng.normal(size=be.to_host(y).shape)
    c, _ = getattr(K, f"conv{nd}d_forward")(z, w, **params)
    assert c.shape == x.shape
    lhs, rhs = np.sum(c * x), np.sum(z * be.to_host(y))
    assert abs(lhs - rhs) <= 1e3 * _tol(be) * (abs(lhs) + 1)
    # and its input gradient is the convolution of dy
    dx, _ = be.op(f"conv_transpose{nd}d.backward")(be.asarray(z), saved)
    np.testing.assert_allclose(be.to_host(dx), c, rtol=_tol(be) * 10, atol=_tol(be) * 10)


def test_conv_transpose_known_value():
    y, _ = K.conv_transpose2d_forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2)
    np.testing.assert_array_equal(y[0, 0], np.ones((4, 4)))
    y, _ = K.conv_transpose3d_forward(np.ones((1, 1, 1, 1, 2)), np.ones((1, 2, 1, 1, 2)))
    np.testing.assert_array_equal(y, [[[[[1.0, 2.0, 1.0]]], [[[1.0, 2.0, 1.0]]]]])


def test_conv2d_need_dx_false_skips_dx_and_keeps_dw(any_backend):
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(3, 2, 7, 6)), rng.normal(size=(4, 2, 3, 2))
    be = any_backend
    params = dict(stride=(2, 1), padding=(1, 1), dilation=(1, 2))
    y, saved = be.op("conv2d.forward")(be.asarray(x), be.asarray(w), need_dx=False, **params)
    dy = rng.normal(size=be.to_host(y).shape)
    dx, dw = be.op("conv2d.backward")(be.asarray(dy), saved)
    assert dx is None
    _, saved_ref = K.conv2d_forward(x, w, **params)
    dx_ref, dw_ref = K.conv2d_backward(dy, saved_ref)
    np.testing.assert_allclose(be.to_host(dw), dw_ref, rtol=_tol(be), atol=_tol(be) * 10)
    y, saved = be.op("conv2d.forward")(be.asarray(x), be.asarray(w), need_dx=True, **params)
    dx, _ = be.op("conv2d.backward")(be.asarray(dy), saved)
    np.testing.assert_allclose(be.to_host(dx), dx_ref, rtol=_tol(be), atol=_tol(be) * 10)


def test_cpu_float64_matches_reference():
    rng = np.random.default_rng(5)
    be = make_backend("cpu", np.float64)
    cases = [("conv3d", (2, 2, 4, 5, 3), (3, 2, 2, 1, 2),
              dict(stride=(1, 2, 1), padding=(1, 0, 1), dilation=(2, 1, 1))),
             ("conv_transpose2d", (2, 3, 4, 3), (3, 2, 2, 3),
              dict(stride=(2, 2), padding=(1, 0), dilation=(1, 2), output_padding=(1, 0))),
             ("conv_transpose3d", (1, 2, 2, 3, 2), (2, 3, 2, 2, 1),
              dict(stride=(2, 1, 3), padding=(0, 1, 0), output_padding=(1, 0, 2)))]
    for op, xs, ws, params in cases:
        x, w = rng.normal(size=xs), rng.normal(size=ws)
        y, saved = be.op(op + ".forward")(x, w, **params)
        y_ref, saved_ref = getattr(K, op + "_forward")(x, w, **params)
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
        dy = rng.normal(size=y.shape)
        for g, g_ref in zip(be.op(op + ".backward")(dy, saved),
                            getattr(K, op + "_backward")(dy, saved_ref)):
            np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)


BAD = [
    # (op, x shape, w shape, params, error, words in the message)
    ("conv3d", (1, 2, 5, 5, 5), (3, 2, 3, 7, 1), {}, ShapeError, ["conv3d", "spans 7", "only 5"]),
    ("conv3d", (1, 2, 3, 5, 5), (3, 2, 3, 3, 3), {"dilation": (2, 1, 1)}, ShapeError,
     ["conv3d", "along D"]),
    ("conv3d", (1, 2, 5, 5, 5), (3, 4, 3, 3, 3), {}, ShapeError, ["conv3d", "2 channels"]),
    ("conv3d", (1, 2, 5, 5), (3, 2, 3, 3, 3), {}, ShapeError, ["conv3d", "(N, C, D, H, W)"]),
    ("conv3d", (1, 2, 5, 5, 5), (3, 2, 3, 3), {}, ShapeError, ["conv3d", "(F, C, kd, kh, kw)"]),
    ("conv3d", (1, 2, 5, 5, 5), (3, 2, 3, 3, 3), {"stride": (1, 0, 1)}, ParameterError,
     ["conv3d", "stride", ">= 1"]),
    ("conv3d", (1, 2, 5, 5, 5), (3, 2, 3, 3, 3), {"padding": (1, 1)}, ParameterError,
     ["conv3d", "padding", "3 ints"]),
    ("conv_transpose2d", (1, 2, 3, 3), (3, 2, 3, 3), {}, ShapeError,
     ["conv_transpose2d", "(2, *, *, *)", "2 channels"]),
    ("conv_transpose2d", (1, 2, 3, 3), (2, 2, 3, 3), {"stride": 2, "output_padding": 2},
     ParameterError, ["conv_transpose2d", "output_padding", "smaller than the stride"]),
    ("conv_transpose2d", (1, 2, 1, 3), (2, 2, 1, 3), {"padding": (1, 0)}, ShapeError,
     ["conv_transpose2d", "-1 pixels along H"]),
    ("conv_transpose2d", (1, 2, 3), (2, 2, 3, 3), {}, ShapeError,
     ["conv_transpose2d", "(N, F, H, W)"]),
    ("conv_transpose2d", (1, 2, 3, 3), (2, 2, 3, 3), {"dilation": 0}, ParameterError,
     ["conv_transpose2d", "dilation"]),
    ("conv_transpose3d", (1, 2, 3, 3, 3), (2, 2, 3, 3), {}, ShapeError,
     ["conv_transpose3d", "(F, C, kd, kh, kw)"]),
    ("conv_transpose3d", (1, 2, 3, 3, 1), (2, 2, 1, 1, 1), {"padding": (0, 0, 1)}, ShapeError,
     ["conv_transpose3d", "along W"]),
    ("conv_transpose3d", (1, 2, 3, 3, 3), (2, 2, 1, 1, 1), {"output_padding": -1},
     ParameterError, ["conv_transpose3d", "output_padding"]),
]


@pytest.mark.parametrize("op,x_shape,w_shape,params,error,words", BAD)
def test_bad_arguments_raise_before_any_kernel(any_backend, op, x_shape, w_shape, params,
                                               error, words):
    be = any_backend
    x, w = be.asarray(np.ones(x_shape)), be.asarray(np.ones(w_shape))
    with pytest.raises(error) as info:
        be.op(op + ".forward")(x, w, **params)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("op,x_shape,w_shape", [
    ("conv3d", (1, 2, 3, 4, 5), (3, 2, 2, 2, 2)),
    ("conv_transpose2d", (1, 2, 3, 4), (2, 3, 2, 2)),
    ("conv_transpose3d", (1, 2, 3, 4, 2), (2, 3, 2, 2, 2))])
def test_fast_backward_rejects_wrong_dy_shape(backend, op, x_shape, w_shape):
    be = backend
    y, saved = be.op(op + ".forward")(be.asarray(np.ones(x_shape)), be.asarray(np.ones(w_shape)))
    bad = tuple(be.to_host(y).shape[:-1]) + (be.to_host(y).shape[-1] + 1,)
    with pytest.raises(ShapeError, match=f"{op}: dy must have shape"):
        be.op(op + ".backward")(be.asarray(np.ones(bad)), saved)
