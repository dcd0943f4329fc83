"""Channelwise family beyond the generic contract of test_generic.py: both formulas
checked against direct loops and against conv2d (a depthwise convolution is conv2d on
one channel at a time; a time convolution is conv2d on a (N, C, T, 1) image), float64
agreement of every fast path, sizes beyond the OpenCL tiles, and the argument errors
(raised before any kernel runs) on every backend, the reference included.
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.ops import channelwise as K
from refnn.ops import conv as conv_ref
from refnn.testing.pytest_plugin import backend_names, make_backend


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param)


@pytest.fixture(scope="module", params=backend_names())
def backend64(request):
    return make_backend(request.param, np.float64)


def direct_channelwise(x, w, stride, padding, dilation):
    """y[n,c,i,j] = sum_{p,q} w[c,0,p,q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw], looped."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    C, _, kh, kw = w.shape
    Ho = (xpad.shape[2] - dh * (kh - 1) - 1) // sh + 1
    Wo = (xpad.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((x.shape[0], C, Ho, Wo))
    for n in range(x.shape[0]):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    for p in range(kh):
                        for q in range(kw):
                            y[n, c, i, j] += (w[c, 0, p, q]
                                              * xpad[n, c, i * sh + p * dh, j * sw + q * dw])
    return y


def direct_time_conv(x, w, stride, pf, pb, dilation):
    """y[t,n,f] = sum_{k,c} w[f,k,c] * xpad[t*s + k*d, n, c], looped over t and k."""
    xpad = np.pad(x, ((pf, pb), (0, 0), (0, 0)))
    F, Kf, _ = w.shape
    To = (xpad.shape[0] - dilation * (Kf - 1) - 1) // stride + 1
    y = np.zeros((To, x.shape[1], F))
    for t in range(To):
        for k in range(Kf):
            y[t] += xpad[t * stride + k * dilation] @ w[:, k, :].T
    return y


CW_GEOMETRIES = [((1, 1), (0, 0), (1, 1)), ((2, 3), (1, 1), (2, 1)), ((5, 4), (2, 1), (1, 2))]


@pytest.mark.parametrize("stride,padding,dilation", CW_GEOMETRIES)
def test_channelwise_forward_matches_direct_loop(any_backend, stride, padding, dilation):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 3, 8, 7)), rng.normal(size=(3, 1, 3, 2))
    be = any_backend
    y, _ = be.op("channelwise_conv2d.forward")(be.asarray(x), be.asarray(w), stride=stride,
                                               padding=padding, dilation=dilation)
    tol = 1e-10 if be.dtype == np.float64 else 1e-4
    np.testing.assert_allclose(be.to_host(y), direct_channelwise(x, w, stride, padding,
                                                                 dilation),
                               rtol=tol, atol=tol)


def test_channelwise_is_conv2d_on_each_channel():
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(2, 4, 7, 6)), rng.normal(size=(4, 1, 3, 3))
    params = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    y, saved = K.channelwise_conv2d_forward(x, w, **params)
    dy = rng.normal(size=y.shape)
    dx, dw = K.channelwise_conv2d_backward(dy, saved)
    for c in range(4):
        yc, sc = conv_ref.conv2d_forward(x[:, c:c + 1], w[c:c + 1], **params)
        np.testing.assert_allclose(y[:, c:c + 1], yc, rtol=1e-12, atol=1e-12)
        dxc, dwc = conv_ref.conv2d_backward(dy[:, c:c + 1], sc)
        np.testing.assert_allclose(dx[:, c:c + 1], dxc, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dw[c:c + 1], dwc, rtol=1e-12, atol=1e-12)


TC_GEOMETRIES = [(1, 0, 0, 1), (2, 2, 0, 1), (3, 0, 3, 2), (4, 1, 2, 3)]


@pytest.mark.parametrize("stride,pf,pb,dilation", TC_GEOMETRIES)
def test_time_conv_forward_matches_direct_loop(any_backend, stride, pf, pb, dilation):
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(11, 3, 4)), rng.normal(size=(5, 3, 4))
    be = any_backend
    y, _ = be.op("time_conv.forward")(be.asarray(x), be.asarray(w), stride=stride,
                                      padding_front=pf, padding_back=pb, dilation=dilation)
    tol = 1e-10 if be.dtype == np.float64 else 1e-4
    np.testing.assert_allclose(be.to_host(y), direct_time_conv(x, w, stride, pf, pb, dilation),
                               rtol=tol, atol=tol)


def test_time_conv_is_conv2d_over_time():
    """x (T, N, C) -> image (N, C, T, 1) with the padding applied first: conv2d with
    filters (F, C, K, 1) gives y (N, F, To, 1), and the gradients agree too."""
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(9, 2, 3)), rng.normal(size=(4, 3, 3))
    y, saved = K.time_conv_forward(x, w, stride=2, padding_front=3, padding_back=1,
                                   dilation=2)
    xpad = np.pad(x, ((3, 1), (0, 0), (0, 0)))
    img = xpad.transpose(1, 2, 0)[..., None]
    y4, s4 = conv_ref.conv2d_forward(img, w.transpose(0, 2, 1)[..., None], stride=(2, 1),
                                     dilation=(2, 1))
    np.testing.assert_allclose(y, y4[..., 0].transpose(2, 0, 1), rtol=1e-12, atol=1e-12)
    dy = rng.normal(size=y.shape)
    dx, dw = K.time_conv_backward(dy, saved)
    dimg, dw4 = conv_ref.conv2d_backward(dy.transpose(1, 2, 0)[..., None], s4)
    np.testing.assert_allclose(dx, dimg[..., 0].transpose(2, 0, 1)[3:12], rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(dw, dw4[..., 0].transpose(0, 2, 1), rtol=1e-12, atol=1e-12)


def test_time_conv_output_length_is_neoml_formula():
    # (padding_front + padding_back + BatchLength - (1 + dilation * (filter_size - 1)))
    # / stride + 1, C integer division
    for T, Kf, s, pf, pb, d in [(10, 3, 1, 0, 0, 1), (10, 3, 3, 2, 1, 2), (5, 5, 2, 4, 0, 1),
                                (1, 2, 1, 1, 0, 1), (7, 4, 5, 0, 3, 2)]:
        y, _ = K.time_conv_forward(np.ones((T, 1, 2)), np.ones((1, Kf, 2)), stride=s,
                                   padding_front=pf, padding_back=pb, dilation=d)
        assert y.shape[0] == (pf + pb + T - (1 + d * (Kf - 1))) // s + 1


def _check_float64(be, op, args, params):
    rng = np.random.default_rng(5)
    ref_fwd, ref_bwd = getattr(K, op + "_forward"), getattr(K, op + "_backward")
    y_ref, saved_ref = ref_fwd(*args, **params)
    y, saved = be.op(op + ".forward")(*[be.asarray(a) for a in args], **params)
    np.testing.assert_allclose(be.to_host(y), y_ref, rtol=1e-10, atol=1e-10)
    dy = rng.normal(size=y_ref.shape)
    grads = be.op(op + ".backward")(be.asarray(dy), saved)
    for g, g_ref in zip(grads, ref_bwd(dy, saved_ref)):
        np.testing.assert_allclose(be.to_host(g), g_ref, rtol=1e-10, atol=1e-10)


def test_channelwise_float64_fast_paths_match_reference(backend64):
    """Sizes beyond one 64-wide work-group: dw reduces 3*33*35 terms per tap."""
    rng = np.random.default_rng(6)
    x, w = rng.normal(size=(3, 67, 33, 35)), rng.normal(size=(67, 1, 5, 3))
    _check_float64(backend64, "channelwise_conv2d", (x, w),
                   dict(stride=(1, 2), padding=(2, 1), dilation=(1, 3)))


def test_time_conv_float64_fast_paths_match_reference(backend64):
    """A long sequence: To*N = 195 GEMM rows, K*C = 35 columns (not tile multiples)."""
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=(130, 3, 7)), rng.normal(size=(9, 5, 7))
    _check_float64(backend64, "time_conv", (x, w),
                   dict(stride=2, padding_front=4, padding_back=1, dilation=2))


def test_float32_large_inputs_match_reference(backend):
    rng = np.random.default_rng(8)
    be = backend
    x, w = rng.normal(size=(2, 70, 17, 19)), rng.normal(size=(70, 1, 7, 7))
    y, _ = be.op("channelwise_conv2d.forward")(be.asarray(x), be.asarray(w), padding=3)
    y_ref, _ = K.channelwise_conv2d_forward(x, w, padding=3)
    np.testing.assert_allclose(be.to_host(y), y_ref, rtol=1e-4, atol=1e-4)
    x, w = rng.normal(size=(200, 2, 33)), rng.normal(size=(65, 7, 33))
    y, _ = be.op("time_conv.forward")(be.asarray(x), be.asarray(w), padding_front=6)
    y_ref, _ = K.time_conv_forward(x, w, padding_front=6)
    np.testing.assert_allclose(be.to_host(y), y_ref, rtol=2e-4, atol=2e-4)


CW_BAD = [
    # (x shape, w shape, params, error, words in the message)
    ((1, 2, 5, 5), (2, 1, 7, 1), {}, ShapeError, ["channelwise_conv2d", "spans 7", "only 5"]),
    ((1, 2, 5, 5), (2, 1, 3, 3), {"dilation": 3}, ShapeError, ["channelwise_conv2d",
                                                                "spans 7"]),
    ((1, 2, 5, 5), (3, 1, 3, 3), {}, ShapeError, ["channelwise_conv2d", "(2, 1, kh, kw)",
                                                  "2 channels"]),
    ((1, 2, 5, 5), (2, 2, 3, 3), {}, ShapeError, ["channelwise_conv2d", "(C, 1, kh, kw)"]),
    ((2, 5, 5), (2, 1, 3, 3), {}, ShapeError, ["channelwise_conv2d", "(N, C, H, W)"]),
    ((1, 2, 5, 5), (2, 3, 3), {}, ShapeError, ["channelwise_conv2d", "(C, 1, kh, kw)"]),
    ((1, 2, 5, 5), (2, 1, 3, 3), {"stride": 0}, ParameterError, ["channelwise_conv2d",
                                                                  "stride", ">= 1"]),
    ((1, 2, 5, 5), (2, 1, 3, 3), {"dilation": (1, 0)}, ParameterError, ["dilation"]),
    ((1, 2, 5, 5), (2, 1, 3, 3), {"padding": -1}, ParameterError, ["padding"]),
]


@pytest.mark.parametrize("x_shape,w_shape,params,error,words", CW_BAD)
def test_channelwise_bad_arguments_raise(any_backend, x_shape, w_shape, params, error, words):
    be = any_backend
    x, w = be.asarray(np.ones(x_shape)), be.asarray(np.ones(w_shape))
    with pytest.raises(error) as info:
        be.op("channelwise_conv2d.forward")(x, w, **params)
    for word in words:
        assert word in str(info.value)


TC_BAD = [
    ((5, 2, 3), (4, 6, 3), {}, ShapeError, ["time_conv", "spans 6", "only 5"]),
    ((5, 2, 3), (4, 3, 3), {"dilation": 3}, ShapeError, ["time_conv", "spans 7",
                                                         "padding_front=0"]),
    ((5, 2, 3), (4, 3, 2), {}, ShapeError, ["time_conv", "(*, *, 3)", "3 features"]),
    ((5, 3), (4, 3, 3), {}, ShapeError, ["time_conv", "(T, N, C)"]),
    ((5, 2, 3), (4, 3), {}, ShapeError, ["time_conv", "(F, K, C)"]),
    ((5, 2, 3), (4, 3, 3), {"stride": 0}, ParameterError, ["time_conv", "stride", ">= 1"]),
    ((5, 2, 3), (4, 3, 3), {"stride": 1.5}, ParameterError, ["time_conv", "stride", "int"]),
    ((5, 2, 3), (4, 3, 3), {"padding_back": -1}, ParameterError, ["padding_back"]),
    ((5, 2, 3), (4, 3, 3), {"dilation": 0}, ParameterError, ["dilation"]),
]


@pytest.mark.parametrize("x_shape,w_shape,params,error,words", TC_BAD)
def test_time_conv_bad_arguments_raise(any_backend, x_shape, w_shape, params, error, words):
    be = any_backend
    x, w = be.asarray(np.ones(x_shape)), be.asarray(np.ones(w_shape))
    with pytest.raises(error) as info:
        be.op("time_conv.forward")(x, w, **params)
    for word in words:
        assert word in str(info.value)


def test_padding_makes_a_long_filter_fit():
    y, _ = K.time_conv_forward(np.ones((2, 1, 1)), np.ones((1, 4, 1)), padding_front=1,
                               padding_back=1)
    np.testing.assert_array_equal(y[:, 0, 0], [2.0])


def test_fast_backward_rejects_wrong_dy_shape(backend):
    be = backend
    _, saved = be.op("channelwise_conv2d.forward")(be.asarray(np.ones((1, 2, 5, 5))),
                                                   be.asarray(np.ones((2, 1, 3, 3))))
    with pytest.raises(ShapeError, match="channelwise_conv2d: dy must have shape"):
        be.op("channelwise_conv2d.backward")(be.asarray(np.ones((1, 2, 2, 2))), saved)
    _, saved = be.op("time_conv.forward")(be.asarray(np.ones((6, 2, 3))),
                                          be.asarray(np.ones((4, 2, 3))))
    with pytest.raises(ShapeError, match="time_conv: dy must have shape"):
        be.op("time_conv.backward")(be.asarray(np.ones((5, 2, 3))), saved)
