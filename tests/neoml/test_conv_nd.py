"""neoml.Dnn.Conv3D, TransposedConv and TransposedConv3D against refnn's float64 reference
ops (conv3d, conv_transpose2d, conv_transpose3d), on every engine.

Blobs are channels-last: 3-D images (BL, BW, LS, H, W, D, C) go to the op as
(N, C, H, W, D); filter blobs are (1, A, 1, kh, kw, kd, B) for the op's (A, B, kh, kw, kd)
(A = filter_count, B = input channels for Conv3D; A = input channels, B = filter_count
for the transposed layers). The test converts with NumPy and compares the forward
output, the input gradient and the filter / free-term gradients, then checks that
``learn`` lowers a loss and that bad geometry raises errors naming the layer.
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import ParameterError, ShapeError
from refnn.ops import conv as K

RTOL, ATOL = 1e-3, 1e-4


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


CASES = [
    # (layer, x blob shape, filter_count, filter_size, stride, padding, dilation or None)
    ("Conv3D", (1, 2, 1, 5, 4, 6, 3), 2, (3, 2, 3), (1, 2, 2), (1, 0, 1), None),
    ("Conv3D", (2, 1, 1, 3, 3, 3, 1), 3, (1, 3, 2), (2, 1, 1), (0, 1, 0), None),
    ("TransposedConv", (1, 2, 1, 3, 4, 1, 3), 2, (3, 2), (2, 1), (1, 0), (1, 2)),
    ("TransposedConv", (2, 1, 1, 2, 3, 2, 1), 3, (2, 3), (1, 3), (0, 1), (1, 1)),
    ("TransposedConv3D", (1, 2, 1, 2, 3, 2, 3), 2, (3, 2, 2), (2, 1, 3), (1, 0, 1), None),
]


def _op_filter(filt, name, nd):
    """NeoML filter blob (1, A, 1, kh, kw, kd, B) -> the op's (A, B, kh, kw[, kd])."""
    A, k, B = filt.shape[1], filt.shape[3:3 + nd], filt.shape[6]
    return filt.reshape((A,) + k + (B,)).transpose((0, nd + 1) + tuple(range(1, nd + 1)))


def _make(engine, name, F, fsize, stride, pad, dil, zero_free=False):
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(5))
    src = neoml.Dnn.Source(dnn, "x")
    kwargs = {} if dil is None else {"dilation_size": dil}
    layer = getattr(neoml.Dnn, name)(src, F, fsize, stride, pad, is_zero_free_term=zero_free,
                                     name="layer", **kwargs)
    neoml.Dnn.Sink(layer, name="out")
    return dnn, layer


@pytest.mark.parametrize("case", CASES)
def test_forward_backward_vs_reference(engine, case):
    name, shape, F, fsize, stride, pad, dil = case
    nd = len(fsize)
    transposed = name.startswith("Transposed")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, shape).astype(np.float32)
    N, size = shape[0] * shape[1] * shape[2], shape[3:3 + nd]
    C = int(np.prod(shape[3 + nd:]))
    k3 = fsize + (1,) * (3 - nd)
    A, B = (C, F) if transposed else (F, C)
    filt = rng.normal(0, 0.5, (1, A, 1) + k3 + (B,)).astype(np.float32)
    b = rng.normal(0, 0.5, F).astype(np.float32)
    dnn, layer = _make(engine, name, F, fsize, stride, pad, dil)
    layer.filter = _blob(engine, filt)
    layer.free_term = _blob(engine, b.reshape(F, 1, 1, 1, 1, 1, 1))
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)

    perm = (0, nd + 1) + tuple(range(1, nd + 1))          # channels-last -> channels-first
    xo = x.reshape((N,) + size + (C,)).transpose(perm).astype(np.float64)
    w = _op_filter(filt, name, nd).astype(np.float64)
    params = {"stride": stride, "padding": pad}
    if dil is not None:
        params["dilation"] = dil
    op = {"Conv3D": "conv3d", "TransposedConv": "conv_transpose2d",
          "TransposedConv3D": "conv_transpose3d"}[name]
    y, saved = getattr(K, op + "_forward")(xo, w, **params)
    y = y + b.reshape((1, F) + (1,) * nd)
    out = y.shape[2:]
    back = (0,) + tuple(range(2, nd + 2)) + (1,)             # channels-first -> last
    assert got.shape == shape[:3] + out + (1,) * (3 - nd) + (F,)
    np.testing.assert_allclose(got.reshape((N,) + out + (F,)), y.transpose(back),
                               rtol=RTOL, atol=ATOL)

    be = engine.backend
    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    layer._grads.clear()
    layer._forward(be, [be.asarray(x)], True)
    (dx,) = layer._backward(be, [be.asarray(dy)], [True])
    dyo = dy.reshape((N,) + out + (F,)).transpose(perm).astype(np.float64)
    dxo, dwo = getattr(K, op + "_backward")(dyo, saved)
    np.testing.assert_allclose(be.to_host(dx).reshape((N,) + size + (C,)),
                               dxo.transpose(back), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(be.to_host(layer._grads["filter"]), dwo, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(be.to_host(layer._grads["free_term"]),
                               dyo.sum(axis=(0,) + tuple(range(2, nd + 2))),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["Conv3D", "TransposedConv", "TransposedConv3D"])
def test_properties_defaults_and_shapes(engine, name):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    layer = getattr(neoml.Dnn, name)(src)
    nd = 2 if name == "TransposedConv" else 3
    assert (layer.filter_count, layer.filter_size, layer.stride_size, layer.padding_size,
            layer.zero_free_term) == (1, (3,) * nd, (1,) * nd, (0,) * nd, False)
    assert layer.filter is None and layer.free_term is None
    layer.filter_count, layer.filter_size = 2, (2,) * nd
    layer.stride_size, layer.padding_size = (2,) + (1,) * (nd - 1), (1,) * nd
    if nd == 2:
        assert layer.dilation_size == (1, 1)
        layer.dilation_size = (1, 2)
        assert layer.dilation_size == (1, 2)
    layer.zero_free_term = True
    assert (layer.filter_count, layer.filter_size, layer.stride_size, layer.padding_size,
            layer.zero_free_term) == (2, (2,) * nd, (2,) + (1,) * (nd - 1), (1,) * nd, True)
    neoml.Dnn.Sink(layer, name="out")
    x = np.ones((1, 2, 1, 4, 5, 3 if nd == 3 else 1, 3), np.float32)
    out = dnn.run({"x": _blob(engine, x)})["out"]
    if name == "Conv3D":        # (2p + n - k) // s + 1
        want, filt = (1, 2, 1, 3, 6, 4, 2), (1, 2, 1, 2, 2, 2, 3)
    elif name == "TransposedConv":  # s (n - 1) + d (k - 1) + 1 - 2p
        want, filt = (1, 2, 1, 6, 5, 1, 2), (1, 3, 1, 2, 2, 1, 2)
    else:
        want, filt = (1, 2, 1, 6, 4, 2, 2), (1, 3, 1, 2, 2, 2, 2)
    assert tuple(out.shape) == want
    assert tuple(layer.filter.shape) == filt
    assert layer.free_term is None          # zero free term: none kept
    assert layer.OPS[0] in ("conv3d", "conv_transpose2d", "conv_transpose3d")


def test_bad_geometry_names_the_layer(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    conv = neoml.Dnn.Conv3D(src, 2, (5, 3, 3), padding_size=(1, 0, 0), name="c3")
    neoml.Dnn.Sink(conv, name="out")
    with pytest.raises(ShapeError, match="Conv3D 'c3'.*kernel spans 5.*along H.*only 4"):
        dnn.run({"x": _blob(engine, np.ones((1, 1, 1, 2, 8, 8, 3), np.float32))})
    conv.filter = _blob(engine, np.ones((1, 2, 1, 5, 3, 3, 4), np.float32))
    with pytest.raises(ShapeError, match="Conv3D 'c3'.*4 channels.*got 3"):
        dnn.run({"x": _blob(engine, np.ones((1, 1, 1, 6, 6, 6, 3), np.float32))})
    with pytest.raises(ShapeError, match="Conv3D 'c3'.*filter must have shape"):
        conv.filter = _blob(engine, np.ones((1, 2, 1, 3, 3, 3, 4), np.float32))
    with pytest.raises(ShapeError, match="Conv3D 'c3'.*7-D"):
        conv._forward(engine.backend, [engine.backend.asarray(np.ones((2, 3), np.float32))],
                      False)
    with pytest.raises(ParameterError, match="stride_size"):
        neoml.Dnn.Conv3D(src, 2, (3, 3, 3), stride_size=(1, 0, 1))
    with pytest.raises(ParameterError, match="filter_size.*3 ints"):
        neoml.Dnn.TransposedConv3D(src, 2, (3, 3))
    with pytest.raises(ParameterError, match="filter_count"):
        neoml.Dnn.TransposedConv(src, 0)

    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    tc = neoml.Dnn.TransposedConv(src, 2, (1, 3), padding_size=(1, 0), name="t2")
    neoml.Dnn.Sink(tc, name="out")
    with pytest.raises(ShapeError, match="TransposedConv 't2'.*-1 pixels along H"):
        dnn.run({"x": _blob(engine, np.ones((1, 1, 1, 1, 4, 1, 3), np.float32))})
    tc.padding_size = (0, 0)
    tc.filter = _blob(engine, np.ones((1, 5, 1, 1, 3, 1, 2), np.float32))
    with pytest.raises(ShapeError, match="TransposedConv 't2'.*5 channels.*Depth\\*Channels"):
        dnn.run({"x": _blob(engine, np.ones((1, 1, 1, 2, 4, 1, 3), np.float32))})
    with pytest.raises(ShapeError, match="TransposedConv 't2'.*filter must have shape"):
        tc.filter = _blob(engine, np.ones((1, 5, 1, 1, 3, 1, 4), np.float32))
    with pytest.raises(ParameterError, match="TransposedConv 't2'.*stride_size"):
        tc.stride_size = (0, 1)


@pytest.mark.parametrize("name", ["Conv3D", "TransposedConv", "TransposedConv3D"])
def test_learn_lowers_the_loss_and_store_load(engine, name, tmp_path):
    rng = np.random.default_rng(1)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(2))
    src, lab = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "t")
    nd = 2 if name == "TransposedConv" else 3
    layer = getattr(neoml.Dnn, name)(src, 2, (2,) * nd, name="layer")
    neoml.Dnn.EuclideanLoss((layer, lab), name="loss")
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.05, moment_decay_rate=0.0)
    x = rng.normal(0, 1, (1, 3, 1, 3, 3, 3 if nd == 3 else 1, 2)).astype(np.float32)
    ysz = 2 if name == "Conv3D" else 4
    t = rng.normal(0, 1, (1, 3, 1, ysz, ysz, ysz if nd == 3 else 1, 2)).astype(np.float32)
    inputs = {"x": _blob(engine, x), "t": _blob(engine, t)}
    dnn.run(inputs)
    w0, b0 = layer.filter.asarray(), layer.free_term.asarray()
    loss0 = dnn.layers["loss"].last_loss
    for _ in range(5):
        dnn.learn(inputs)
    assert not np.allclose(layer.filter.asarray(), w0)
    assert not np.allclose(layer.free_term.asarray(), b0)
    dnn.run(inputs)
    assert dnn.layers["loss"].last_loss < loss0
    dnn.store(str(tmp_path / "net.pkl"))
    other = neoml.Dnn.Dnn(engine)
    other.load(str(tmp_path / "net.pkl"))
    np.testing.assert_allclose(other.layers["layer"].filter.asarray(), layer.filter.asarray())
    assert other.layers["layer"].filter_size == (2,) * nd
