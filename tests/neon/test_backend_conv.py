"""neon backend layer methods (conv/deconv/pool/lrn/batch norm) against the float64
reference ops, on every backend.

neon's tensors are CHWN flattened to (C*D*H*W, N) and filters (C*T*R*S, K); the
reference ops are NCHW / NCDHW with filters (K, C, ...), so the tests convert with NumPy
(``_chwn`` / ``_filters``) and compare.
"""
import numpy as np
import pytest

from refnn.backends.base import BackendError
from refnn.errors import ParameterError, ShapeError
from refnn.ops import conv as CV
from refnn.ops import norm as NM
from refnn.ops import pool as PL

RTOL, ATOL = 2e-4, 2e-4
N = 8


def _chwn(a):
    """(N, C, ...) -> neon's (C*..., N)."""
    return np.ascontiguousarray(a.reshape(a.shape[0], -1).T)


def _filters(w):
    """(K, C, ...) -> neon's (C*..., K)."""
    return np.ascontiguousarray(w.reshape(w.shape[0], -1).T)


def _close(t, ref):
    np.testing.assert_allclose(t.get(), ref, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------ output_dim
def test_output_dim_follows_neon(nbe):
    assert nbe.output_dim(28, 5, 0, 1) == 24
    assert nbe.output_dim(7, 3, 1, 2) == 4
    assert nbe.output_dim(9, 3, 0, 1, dilation=2) == 5
    assert nbe.output_dim(5, 2, 0, 2, pooling=True) == 2
    with pytest.raises(ParameterError, match="output_dim: padding 2 must be smaller"):
        nbe.output_dim(5, 2, 2, 1, pooling=True)
    with pytest.raises(ShapeError, match="output_dim: the window spans 7"):
        nbe.output_dim(4, 4, 0, 1, dilation=2)
    with pytest.raises(ParameterError, match="output_dim: strides must be >= 1"):
        nbe.output_dim(4, 2, 0, 0)


# ------------------------------------------------------------------ convolution
CONV2D = [  # (C, K, H, W, R, S, pad (h, w), str (h, w), dil (h, w))
    (3, 5, 7, 6, 3, 2, (1, 0), (1, 2), (2, 1)),
    (1, 4, 9, 9, 5, 5, (0, 0), (1, 1), (1, 1)),
    (2, 3, 6, 5, 1, 1, (0, 0), (1, 1), (1, 1)),        # 1x1
    (4, 2, 8, 7, 2, 3, (1, 2), (3, 2), (1, 1)),        # stride > kernel
]


def _conv2d_case(case, rs):
    C, K, H, W, R, S, pad, st, dil = case
    x = rs.randn(N, C, H, W)
    w = rs.randn(K, C, R, S)
    kw = dict(H=H, W=W, R=R, S=S, pad_h=pad[0], pad_w=pad[1], str_h=st[0], str_w=st[1],
              dil_h=dil[0], dil_w=dil[1])
    return x, w, kw, (st, pad, dil)


@pytest.mark.parametrize("case", CONV2D)
def test_conv2d_methods_match_reference(nbe, case):
    rs = np.random.RandomState(0)
    C, K = case[:2]
    x, w, kw, geo = _conv2d_case(case, rs)
    layer = nbe.conv_layer(nbe.default_dtype, N, C, K, **kw)
    y, saved = CV.conv2d_forward(x, w, *geo)
    assert layer.dimO == (K, 1) + y.shape[2:] + (N,)
    assert layer.dimI2 == (x[0].size, N) and layer.dimF2 == (w[0].size, K)
    I, F = nbe.array(_chwn(x)), nbe.array(_filters(w))
    O = nbe.empty(layer.dimO2)
    nbe.fprop_conv(layer, I, F, O)
    _close(O, _chwn(y))
    e = rs.randn(*y.shape)
    dx, dw = CV.conv2d_backward(e, saved)
    E = nbe.array(_chwn(e))
    grad_I = nbe.empty(layer.dimI2)
    nbe.bprop_conv(layer, F, E, grad_I)
    _close(grad_I, _chwn(dx))
    U = nbe.empty(layer.dimF2)
    grad_bias = nbe.empty((K, 1))
    nbe.update_conv(layer, I, E, U, grad_bias=grad_bias)
    _close(U, _filters(dw))
    _close(grad_bias, e.sum(axis=(0, 2, 3))[:, None])


def test_conv_compounding(nbe):
    """alpha/beta accumulate into X (or O), then bias, relu/brelu with slope, bsum."""
    rs = np.random.RandomState(1)
    case = CONV2D[0]
    C, K = case[:2]
    x, w, kw, geo = _conv2d_case(case, rs)
    layer = nbe.conv_layer(nbe.default_dtype, N, C, K, **kw)
    y = _chwn(CV.conv2d_forward(x, w, *geo)[0])
    I, F = nbe.array(_chwn(x)), nbe.array(_filters(w))
    prev = rs.randn(*layer.dimO2)
    b = rs.randn(K, 1)
    O, X = nbe.array(prev), nbe.array(prev * 2)
    nbe.fprop_conv(layer, I, F, O, alpha=0.5, beta=2.0)             # X defaults to O
    _close(O, 0.5 * y + 2.0 * prev)
    bsum = nbe.empty((K, 1))
    nbe.fprop_conv(layer, I, F, O, X=X, bias=nbe.array(b), bsum=bsum, alpha=1.5,
                   beta=0.25, relu=True, slope=0.1)
    z = (1.5 * y + 0.25 * prev * 2).reshape(K, -1) + b
    z = np.maximum(z, 0) + 0.1 * np.minimum(z, 0)
    _close(O, z.reshape(y.shape))
    _close(bsum, z.sum(axis=1, keepdims=True))
    nbe.fprop_conv(layer, I, F, O, X=X, brelu=True, slope=0.2)
    mask = (prev * 2 > 0) + 0.2 * (prev * 2 < 0)
    _close(O, y * mask)
    # bprop_conv compounds per input map
    E = nbe.array(rs.randn(*layer.dimO2))
    G0 = rs.randn(*layer.dimI2)
    G = nbe.array(G0)
    plain = nbe.empty(layer.dimI2)
    nbe.bprop_conv(layer, F, E, plain)
    nbe.bprop_conv(layer, F, E, G, alpha=2.0, beta=0.5, bias=nbe.array(np.ones((C, 1))))
    _close(G, ((2.0 * plain.get() + 0.5 * G0).reshape(C, -1) + 1.0).reshape(G0.shape))
    U0 = rs.randn(*layer.dimF2)
    U, dU = nbe.array(U0), nbe.empty(layer.dimF2)
    nbe.update_conv(layer, I, E, dU)
    nbe.update_conv(layer, I, E, U, alpha=0.5, beta=3.0)
    _close(U, 0.5 * dU.get() + 3.0 * U0)


def test_conv3d_methods_match_reference(nbe):
    rs = np.random.RandomState(2)
    C, K, D, H, W, T, R, S = 2, 3, 5, 4, 6, 3, 2, 3
    x, w = rs.randn(N, C, D, H, W), rs.randn(K, C, T, R, S)
    st, pad, dil = (2, 1, 1), (1, 0, 1), (1, 2, 1)
    layer = nbe.conv_layer(nbe.default_dtype, N, C, K, D, H, W, T, R, S, *pad, *st, *dil)
    assert layer.is3d
    y, saved = CV.conv3d_forward(x, w, st, pad, dil)
    assert layer.MPQ == y.shape[2:]
    I, F = nbe.array(_chwn(x)), nbe.array(_filters(w))
    O = nbe.empty(layer.dimO2)
    nbe.fprop_conv(layer, I, F, O)
    _close(O, _chwn(y))
    e = rs.randn(*y.shape)
    dx, dw = CV.conv3d_backward(e, saved)
    G, U = nbe.empty(layer.dimI2), nbe.empty(layer.dimF2)
    nbe.bprop_conv(layer, F, nbe.array(_chwn(e)), G)
    nbe.update_conv(layer, I, nbe.array(_chwn(e)), U)
    _close(G, _chwn(dx))
    _close(U, _filters(dw))


def test_deconv_layer_runs_the_transposed_convolution(nbe):
    """neon's Deconvolution: fprop = bprop_conv, bprop = fprop_conv, dW = update_conv
    (layer, error, inputs)."""
    rs = np.random.RandomState(3)
    C, K, P, Q, R, S = 2, 3, 4, 5, 3, 3
    layer = nbe.deconv_layer(nbe.default_dtype, N, C, K, 1, P, Q, 1, R, S, pad_h=1,
                             str_h=2, str_w=1)
    assert layer.DHW == (1, (P - 1) * 2 - 2 + R, Q - 1 + S)
    x, w = rs.randn(N, K, P, Q), rs.randn(K, C, R, S)
    y, saved = CV.conv_transpose2d_forward(x, w, (2, 1), (1, 0))
    assert y.shape[2:] == layer.DHW[1:]
    X, F = nbe.array(_chwn(x)), nbe.array(_filters(w))
    out = nbe.empty(layer.dimI2)
    nbe.bprop_conv(layer, F, X, out)                       # the deconv's fprop
    _close(out, _chwn(y))
    e = rs.randn(*y.shape)
    dx, dw = CV.conv_transpose2d_backward(e, saved)
    deltas, dW = nbe.empty(layer.dimO2), nbe.empty(layer.dimF2)
    Err = nbe.array(_chwn(e))
    nbe.fprop_conv(layer, Err, F, deltas)                  # the deconv's bprop
    nbe.update_conv(layer, Err, X, dW)
    _close(deltas, _chwn(dx))
    _close(dW, _filters(dw))


def test_conv_errors_name_the_method(nbe):
    with pytest.raises(ParameterError, match="conv_layer: K must be >= 1"):
        nbe.conv_layer(np.float32, N, 2, 0, H=4, W=4, R=2, S=2)
    with pytest.raises(ParameterError, match="conv_layer: R must be an int"):
        nbe.conv_layer(np.float32, N, 2, 3, H=4, W=4, R=2.5, S=2)
    with pytest.raises(ShapeError, match="conv_layer: along H: output_dim"):
        nbe.conv_layer(np.float32, N, 2, 3, H=4, W=4, R=6, S=2)
    with pytest.raises(ParameterError, match="conv_layer: dtype"):
        nbe.conv_layer(np.int32, N, 2, 3, H=4, W=4, R=2, S=2)
    with pytest.raises(ShapeError, match="deconv_layer: the output H"):
        nbe.deconv_layer(np.float32, N, 2, 3, 1, 1, 1, 1, 1, 1, pad_h=1)
    layer = nbe.conv_layer(nbe.default_dtype, N, 2, 3, H=4, W=4, R=2, S=2)
    I, F, O = nbe.zeros(layer.dimI2), nbe.zeros(layer.dimF2), nbe.zeros(layer.dimO2)
    with pytest.raises(ShapeError, match=r"fprop_conv: I must have shape \(32, 8\)"):
        nbe.fprop_conv(layer, nbe.zeros((31, N)), F, O)
    with pytest.raises(ShapeError, match=r"bprop_conv: E must have shape \(27, 8\)"):
        nbe.bprop_conv(layer, F, I, nbe.zeros(layer.dimI2))
    with pytest.raises(ParameterError, match="update_conv: U must be a Tensor"):
        nbe.update_conv(layer, I, O, np.zeros(layer.dimF2))
    with pytest.raises(ShapeError, match=r"fprop_conv: bias must have shape \(3, 1\)"):
        nbe.fprop_conv(layer, I, F, O, bias=nbe.zeros((2, 1)))
    with pytest.raises(ParameterError, match="fprop_conv: layer must come from"):
        nbe.fprop_conv("layer", I, F, O)


# ------------------------------------------------------------------ pooling
POOLS = [  # (op, C, D, H, W, T, R, S, pad (d, h, w), str (d, h, w) or None)
    ("max", 3, 1, 6, 6, 1, 2, 2, (0, 0, 0), None),
    ("max", 2, 1, 7, 5, 1, 3, 2, (0, 1, 1), (1, 2, 1)),
    ("avg", 3, 1, 5, 6, 1, 3, 3, (0, 1, 1), (1, 1, 1)),
    ("avg", 2, 1, 7, 5, 1, 3, 2, (0, 2, 0), (1, 3, 1)),
    ("max", 2, 4, 5, 3, 2, 3, 2, (1, 1, 0), (1, 2, 1)),
    ("avg", 2, 5, 4, 4, 3, 2, 2, (1, 0, 1), None),
]


def _pool_ref(op, x, k, s, p):
    if x.ndim == 5:
        fwd = PL.max_pool3d_forward if op == "max" else PL.avg_pool3d_forward
        bwd = PL.max_pool3d_backward if op == "max" else PL.avg_pool3d_backward
    else:
        fwd = PL.max_pool2d_forward if op == "max" else PL.avg_pool2d_forward
        bwd = PL.max_pool2d_backward if op == "max" else PL.avg_pool2d_backward
    extra = {"count_include_pad": False} if op == "avg" else {}
    y, saved = fwd(x, k, s, p, **extra)
    return y, saved, bwd


@pytest.mark.parametrize("case", POOLS)
def test_pool_methods_match_reference(nbe, case):
    op, C, D, H, W, T, R, S, pad, st = case
    rs = np.random.RandomState(4)
    strides = {} if st is None else dict(str_d=st[0], str_h=st[1], str_w=st[2])
    layer = nbe.pool_layer(nbe.default_dtype, op, N, C, D, H, W, 1, T, R, S, 0, *pad,
                           **strides)
    st = (T, R, S) if st is None else st
    x = rs.randn(N, C, D, H, W)
    if D == 1 and T == 1 and pad[0] == 0:
        x4 = x[:, :, 0]
        y, saved, bwd = _pool_ref(op, x4, (R, S), st[1:], pad[1:])
    else:
        y, saved, bwd = _pool_ref(op, x, (T, R, S), st, pad)
    assert layer.dimO2 == (y[0].size, N)
    I = nbe.array(_chwn(x))
    O0 = rs.randn(*layer.dimO2)
    O = nbe.array(O0)
    nbe.fprop_pool(layer, I, O, beta=0.5)
    _close(O, _chwn(y) + 0.5 * O0)
    e = rs.randn(*y.shape)
    (dx,) = bwd(e, saved)
    d0 = rs.randn(*layer.dimI2)
    delta = nbe.array(d0)
    nbe.bprop_pool(layer, nbe.array(_chwn(e)), delta, alpha=2.0, beta=0.25)
    _close(delta, 2.0 * _chwn(dx) + 0.25 * d0)


def test_pool_errors_name_the_method(nbe):
    with pytest.raises(ParameterError, match="pool_layer: pooling across feature maps"):
        nbe.pool_layer(np.float32, "max", N, 4, H=4, W=4, J=2, R=2, S=2)
    with pytest.raises(ParameterError, match="pool_layer: op must be 'max' or 'avg'"):
        nbe.pool_layer(np.float32, "l2", N, 4, H=4, W=4, R=2, S=2)
    with pytest.raises(ParameterError, match="pool_layer: along H: output_dim: padding"):
        nbe.pool_layer(np.float32, "max", N, 4, H=4, W=4, R=2, S=2, pad_h=2)
    layer = nbe.pool_layer(nbe.default_dtype, "max", N, 2, H=4, W=4, R=2, S=2)
    with pytest.raises(ParameterError, match="bprop_pool: run fprop_pool on this layer"):
        nbe.bprop_pool(layer, nbe.zeros(layer.dimO2), nbe.zeros(layer.dimI2))
    with pytest.raises(ShapeError, match=r"fprop_pool: O must have shape \(8, 8\)"):
        nbe.fprop_pool(layer, nbe.zeros(layer.dimI2), nbe.zeros((9, N)))
    with pytest.raises(ParameterError, match="fprop_lrn: layer must come from be.lrn_layer"):
        nbe.fprop_lrn(layer, nbe.zeros(layer.dimI2), nbe.zeros(layer.dimI2), None)


# ------------------------------------------------------------------ LRN
@pytest.mark.parametrize("C, D, H, W, J, ascale, bpower", [
    (5, 1, 3, 4, 3, 1.0, 0.75), (7, 1, 2, 2, 5, 2.5, 1.0), (3, 2, 3, 2, 5, 0.5, 0.5),
    (4, 1, 1, 1, 1, 1.0, 0.75)])
def test_lrn_methods_match_reference(nbe, C, D, H, W, J, ascale, bpower):
    rs = np.random.RandomState(5)
    layer = nbe.lrn_layer(nbe.default_dtype, N, C, D, H, W, J=J)
    assert layer.dimO2 == layer.dimI2 == (C * D * H * W, N)
    x = rs.randn(N, C, D * H, W)
    y, saved = NM.lrn_forward(x, size=J, k=1.0, alpha=ascale, beta=bpower)
    I, O = nbe.array(_chwn(x)), nbe.empty(layer.dimO2)
    denom = nbe.empty(layer.dimO2)
    nbe.fprop_lrn(layer, I, O, denom, ascale=ascale, bpower=bpower)
    _close(O, _chwn(y))
    e = rs.randn(*y.shape)
    (dx,) = NM.lrn_backward(e, saved)
    delta = nbe.empty(layer.dimI2)
    nbe.bprop_lrn(layer, I, O, nbe.array(_chwn(e)), delta, denom, ascale=ascale,
                  bpower=bpower)
    _close(delta, _chwn(dx))


def test_lrn_layer_needs_an_odd_window(nbe):
    with pytest.raises(ParameterError, match="lrn_layer: the window J must be odd"):
        nbe.lrn_layer(np.float32, N, 4, H=2, W=2, J=4)


# ------------------------------------------------------------------ batch norm
def _bn_tensors(nbe, C, rs):
    vec = {k: nbe.array(rs.rand(C, 1) + 0.5) for k in ("gamma", "beta", "gmean", "gvar")}
    vec["xsum"], vec["xvar"] = nbe.zeros((C, 1)), nbe.zeros((C, 1))
    return vec


@pytest.mark.parametrize("C, M", [(3, 40), (1, 8), (6, 2 * N)])
def test_compound_bn_matches_reference(nbe, C, M):
    rs = np.random.RandomState(6)
    v = _bn_tensors(nbe, C, rs)
    host = {k: t.get() for k, t in v.items()}
    x = rs.randn(C, M) * 2 + 1
    X, Y = nbe.array(x), nbe.empty((C, M))
    eps, rho = 1e-3, 0.9
    nbe.compound_fprop_bn(X, v["xsum"], v["xvar"], v["gmean"], v["gvar"], v["gamma"],
                          v["beta"], Y, eps, rho)
    (y, mean, var), saved = NM.batch_norm_forward(x.T, host["gamma"][:, 0],
                                                  host["beta"][:, 0], eps)
    _close(Y, y.T)
    _close(v["xsum"], mean[:, None])
    _close(v["xvar"], var[:, None])
    _close(v["gmean"], rho * host["gmean"] + (1 - rho) * mean[:, None])
    _close(v["gvar"], rho * host["gvar"] + (1 - rho) * var[:, None])
    e = rs.randn(C, M)
    dx, dgamma, dbeta = NM.batch_norm_backward((e.T, None, None), saved)
    dgam, dbet, delta = nbe.empty((C, 1)), nbe.empty((C, 1)), nbe.empty((C, M))
    nbe.compound_bprop_bn(delta, dgam, dbet, nbe.array(e), X, v["xsum"], v["xvar"],
                          v["gamma"], eps)
    _close(delta, dx.T)
    _close(dgam, dgamma[:, None])
    _close(dbet, dbeta[:, None])
    # inference: the running statistics, accumbeta accumulates into y
    y0 = rs.randn(C, M)
    Y = nbe.array(y0)
    gm, gv = v["gmean"].get()[:, 0], v["gvar"].get()[:, 0]
    nbe.compound_fprop_bn(X, v["xsum"], v["xvar"], v["gmean"], v["gvar"], v["gamma"],
                          v["beta"], Y, eps, rho, accumbeta=0.5, inference=True)
    yi, _ = NM.batch_norm_infer_forward(x.T, host["gamma"][:, 0], host["beta"][:, 0], gm,
                                        gv, eps)
    _close(Y, yi.T + 0.5 * y0)
    _close(v["gmean"], gm[:, None])                       # untouched at inference


def test_compound_bn_errors_name_the_method(nbe):
    rs = np.random.RandomState(7)
    v = _bn_tensors(nbe, 3, rs)
    X, Y = nbe.array(rs.randn(3, 8)), nbe.empty((3, 8))
    args = (v["xsum"], v["xvar"], v["gmean"], v["gvar"], v["gamma"], v["beta"], Y, 1e-3, 0.9)
    with pytest.raises(ParameterError, match="compound_fprop_bn: binary"):
        nbe.compound_fprop_bn(X, *args, binary=True)
    with pytest.raises(ParameterError, match="compound_fprop_bn: relu"):
        nbe.compound_fprop_bn(X, *args, relu=True)
    with pytest.raises(ShapeError, match=r"compound_fprop_bn: gamma must have shape \(4, 1\)"):
        nbe.compound_fprop_bn(nbe.array(rs.randn(4, 8)), *args[:6], nbe.empty((4, 8)),
                              1e-3, 0.9)
    with pytest.raises(ShapeError, match=r"compound_bprop_bn: delta_in must have shape"):
        nbe.compound_bprop_bn(nbe.empty((3, 8)), v["xsum"], v["xvar"], nbe.empty((3, 7)), X,
                              v["xsum"], v["xvar"], v["gamma"], 1e-3)


def test_missing_op_names_the_method(nbe, monkeypatch):
    layer = nbe.lrn_layer(nbe.default_dtype, N, 3, H=2, W=2, J=3)
    real = type(nbe.rb).op

    def no_lrn(self, name):
        if name.startswith("lrn"):
            raise BackendError(f"backend {self.name!r} has no op {name!r}")
        return real(self, name)

    monkeypatch.setattr(type(nbe.rb), "op", no_lrn)
    with pytest.raises(BackendError, match="fprop_lrn: backend .* has no op 'lrn.forward'"):
        nbe.fprop_lrn(layer, nbe.zeros(layer.dimI2), nbe.zeros(layer.dimO2), None)


def test_batch_of_one_and_odd_sizes(nbe):
    """N = 1 (a single image), odd sizes, stride larger than the window."""
    rs = np.random.RandomState(8)
    x, w = rs.randn(1, 3, 7, 5), rs.randn(2, 3, 3, 1)
    layer = nbe.conv_layer(nbe.default_dtype, 1, 3, 2, H=7, W=5, R=3, S=1, str_h=4,
                           str_w=3, pad_h=1)
    y, saved = CV.conv2d_forward(x, w, (4, 3), (1, 0))
    I, F, O = nbe.array(_chwn(x)), nbe.array(_filters(w)), nbe.empty(layer.dimO2)
    nbe.fprop_conv(layer, I, F, O)
    _close(O, _chwn(y))
    e = rs.randn(*y.shape)
    dx, dw = CV.conv2d_backward(e, saved)
    G, U = nbe.empty(layer.dimI2), nbe.empty(layer.dimF2)
    nbe.bprop_conv(layer, F, nbe.array(_chwn(e)), G)
    nbe.update_conv(layer, I, nbe.array(_chwn(e)), U)
    _close(G, _chwn(dx))
    _close(U, _filters(dw))
    pl = nbe.pool_layer(nbe.default_dtype, "max", 1, 3, H=7, W=5, R=2, S=3, str_h=3)
    yp, sp = PL.max_pool2d_forward(x, (2, 3), (3, 3))
    O = nbe.empty(pl.dimO2)
    nbe.fprop_pool(pl, I, O)
    _close(O, _chwn(yp))
    ep = rs.randn(*yp.shape)
    delta = nbe.empty(pl.dimI2)
    nbe.bprop_pool(pl, nbe.array(_chwn(ep)), delta)
    _close(delta, _chwn(PL.max_pool2d_backward(ep, sp)[0]))


@pytest.mark.parametrize("shape", [(128, 11520), (11520, 128), (333, 257), (70, 1000)])
def test_layout_transposes_of_large_tensors_are_exact(nbe, shape):
    """to_nc / from_nc copy large host matrices in row blocks: every element lands."""
    a = np.random.RandomState(9).rand(*shape).astype(nbe.default_dtype)
    t = nbe.array(a)
    nc = nbe.to_nc(t)
    back = nbe.from_nc(nc)
    np.testing.assert_array_equal(nbe.wrap(nc).get(), a.T)
    np.testing.assert_array_equal(back.get(), a)
