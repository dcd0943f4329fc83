"""Conv family beyond the generic contract of test_generic.py: the formula checked
against a direct loop, a known value, float64 agreement, and the argument errors
(raised before any kernel runs) on every backend, the reference included.
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.ops import conv as K
from refnn.testing.pytest_plugin import backend_names, make_backend


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param)


def direct_conv2d(x, w, stride, padding, dilation):
    """y[n,f,i,j] = sum_{c,p,q} w[f,c,p,q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw], looped."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    F, _, kh, kw = w.shape
    Ho = (xpad.shape[2] - dh * (kh - 1) - 1) // sh + 1
    Wo = (xpad.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((x.shape[0], F, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            for p in range(kh):
                for q in range(kw):
                    y[:, :, i, j] += xpad[:, :, i * sh + p * dh, j * sw + q * dw] @ w[:, :, p, q].T
    return y


GEOMETRIES = [((1, 1), (0, 0), (1, 1)), ((2, 3), (1, 1), (2, 1)), ((5, 4), (2, 1), (1, 2))]


@pytest.mark.parametrize("stride,padding,dilation", GEOMETRIES)
def test_forward_matches_direct_loop(any_backend, stride, padding, dilation):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 2))
    be = any_backend
    y, _ = be.op("conv2d.forward")(be.asarray(x), be.asarray(w), stride=stride,
                                   padding=padding, dilation=dilation)
    tol = 1e-10 if be.dtype == np.float64 else 1e-4
    np.testing.assert_allclose(be.to_host(y), direct_conv2d(x, w, stride, padding, dilation),
                               rtol=tol, atol=tol)


def test_known_value_and_int_parameters():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, _ = K.conv2d_forward(x, np.ones((1, 1, 2, 2)), stride=2, padding=0, dilation=1)
    np.testing.assert_array_equal(y[0, 0], [[10.0, 18.0], [42.0, 50.0]])


def test_cpu_float64_matches_reference():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(3, 2, 9, 5)), rng.normal(size=(3, 2, 2, 3))
    be = make_backend("cpu", np.float64)
    params = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    y, saved = be.op("conv2d.forward")(x, w, **params)
    y_ref, saved_ref = K.conv2d_forward(x, w, **params)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    dy = rng.normal(size=y.shape)
    for g, g_ref in zip(be.op("conv2d.backward")(dy, saved), K.conv2d_backward(dy, saved_ref)):
        np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)


BAD = [
    # (x shape, w shape, params, error, words in the message)
    ((1, 2, 5, 5), (3, 2, 7, 1), {}, ShapeError, ["conv2d", "spans 7", "only 5"]),
    ((1, 2, 5, 5), (3, 2, 3, 3), {"dilation": 3}, ShapeError, ["conv2d", "spans 7"]),
    ((1, 2, 5, 5), (3, 2, 6, 1), {"padding": (0, 1)}, ShapeError, ["conv2d", "H"]),
    ((1, 2, 5, 5), (3, 4, 3, 3), {}, ShapeError, ["conv2d", "w must have shape", "2 channels"]),
    ((2, 5, 5), (3, 2, 3, 3), {}, ShapeError, ["conv2d", "(N, C, H, W)"]),
    ((1, 2, 5, 5), (3, 3, 3), {}, ShapeError, ["conv2d", "(F, C, kh, kw)"]),
    ((1, 2, 5, 5), (3, 2, 3, 3), {"stride": 0}, ParameterError, ["conv2d", "stride", ">= 1"]),
    ((1, 2, 5, 5), (3, 2, 3, 3), {"stride": (1, 0)}, ParameterError, ["conv2d", "stride"]),
    ((1, 2, 5, 5), (3, 2, 3, 3), {"dilation": (0, 1)}, ParameterError, ["conv2d", "dilation"]),
    ((1, 2, 5, 5), (3, 2, 3, 3), {"padding": -1}, ParameterError, ["conv2d", "padding"]),
    ((1, 2, 5, 5), (3, 2, 3, 3), {"stride": 1.5}, ParameterError, ["conv2d", "stride"]),
]


@pytest.mark.parametrize("x_shape,w_shape,params,error,words", BAD)
def test_bad_arguments_raise_before_any_kernel(any_backend, x_shape, w_shape, params, error,
                                               words):
    be = any_backend
    x, w = be.asarray(np.ones(x_shape)), be.asarray(np.ones(w_shape))
    with pytest.raises(error) as info:
        be.op("conv2d.forward")(x, w, **params)
    for word in words:
        assert word in str(info.value)


def test_fast_backward_rejects_wrong_dy_shape(backend):
    be = backend
    _, saved = be.op("conv2d.forward")(be.asarray(np.ones((1, 2, 5, 5))),
                                       be.asarray(np.ones((3, 2, 3, 3))))
    with pytest.raises(ShapeError, match="conv2d: dy must have shape"):
        be.op("conv2d.backward")(be.asarray(np.ones((1, 3, 2, 2))), saved)
