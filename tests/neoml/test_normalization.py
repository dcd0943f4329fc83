"""neoml.Dnn BatchNormalization, ObjectNormalization and Lrn against refnn's float64
reference ops (refnn.ops.norm), on every engine; NeoML's running-average and final-
parameter rules; FullyConnected/Conv.apply_batch_normalization; errors naming the layer.
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops import norm as K

RTOL, ATOL = 1e-3, 1e-4
EPS = 1e-12


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _net(engine, layer_fn):
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    src = neoml.Dnn.Source(dnn, "x")
    layer = layer_fn(src)
    neoml.Dnn.Sink(layer, name="out")
    return dnn, layer


def _host(engine, a):
    return engine.backend.to_host(a)


# ------------------------------------------------------------------ BatchNormalization
@pytest.mark.parametrize("channel_based", [True, False])
def test_batch_norm_learn_mode_vs_reference(engine, channel_based):
    rng = np.random.default_rng(0)
    x = rng.normal(1, 2, (1, 4, 2, 2, 3, 1, 5)).astype(np.float32)   # 8 objects, 48 pixels
    dnn, bn = _net(engine, lambda s: neoml.Dnn.BatchNormalization(
        s, channel_based=channel_based, name="bn"))
    got = dnn.run_and_backward({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    m = x.astype(np.float64).reshape(-1, 5) if channel_based else \
        x.astype(np.float64).reshape(8, -1)
    p = m.shape[1]
    (y, mean, var), saved = K.batch_norm_forward(m, np.ones(p), np.zeros(p), eps=EPS)
    np.testing.assert_allclose(got.reshape(m.shape), y, rtol=RTOL, atol=ATOL)

    be = engine.backend
    dy = rng.normal(0, 1, x.shape).astype(np.float32)
    bn._grads.clear()
    bn._forward(be, [be.asarray(x)], True)
    (dx,) = bn._backward(be, [be.asarray(dy)], [True])
    dx_ref, dg_ref, db_ref = K.batch_norm_backward(
        (dy.astype(np.float64).reshape(m.shape), None, None), saved)
    np.testing.assert_allclose(_host(engine, dx).reshape(m.shape), dx_ref, rtol=RTOL,
                               atol=ATOL)
    np.testing.assert_allclose(_host(engine, bn._grads["gamma"]), dg_ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_host(engine, bn._grads["beta"]), db_ref, rtol=RTOL, atol=ATOL)


def test_batch_norm_running_averages_and_run_mode(engine):
    """slow_mean/var start at 0/1 and move by r (unbiased var); run uses final params."""
    rng = np.random.default_rng(1)
    r = 0.3
    dnn, bn = _net(engine, lambda s: neoml.Dnn.BatchNormalization(
        s, slow_convergence_rate=r, name="bn"))
    slow_mean, slow_var = np.zeros(4), np.ones(4)
    for step in range(3):
        x = rng.normal(step, 1 + step, (1, 10, 1, 1, 1, 1, 4)).astype(np.float32)
        dnn.run_and_backward({"x": _blob(engine, x)})
        m = x.astype(np.float64).reshape(10, 4)
        slow_mean = (1 - r) * slow_mean + r * m.mean(0)
        slow_var = (1 - r) * slow_var + r * m.var(0, ddof=1)
    np.testing.assert_allclose(_host(engine, bn._slow_mean), slow_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_host(engine, bn._slow_var), slow_var, rtol=1e-4, atol=1e-5)

    fg = 1 / np.sqrt(slow_var + EPS)
    final = bn.final_params.asarray(keep_dims=True)
    assert final.shape == (1, 2, 1, 1, 1, 1, 4)
    np.testing.assert_allclose(final.reshape(2, 4), [fg, -fg * slow_mean], rtol=1e-4,
                               atol=1e-5)
    x = rng.normal(0, 1, (1, 3, 1, 1, 1, 1, 4)).astype(np.float32)   # any batch in run mode
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True).reshape(3, 4)
    want, _ = K.batch_norm_infer_forward(x.astype(np.float64).reshape(3, 4), np.ones(4),
                                         np.zeros(4), slow_mean, slow_var, eps=EPS)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_batch_norm_before_learning_is_identity_and_final_params_setter(engine):
    dnn, bn = _net(engine, lambda s: neoml.Dnn.BatchNormalization(s, name="bn"))
    assert bn.final_params is None
    x = np.random.default_rng(2).normal(0, 1, (1, 2, 1, 3, 1, 1, 3)).astype(np.float32)
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    np.testing.assert_allclose(got, x, rtol=1e-6, atol=1e-7)
    fp = np.array([[2.0, -1.0, 0.5], [0.25, 0.0, -3.0]], np.float32)
    bn.final_params = _blob(engine, fp.reshape(1, 2, 1, 1, 1, 1, 3))
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True).reshape(-1, 3)
    np.testing.assert_allclose(got, x.reshape(-1, 3) * fp[0] + fp[1], rtol=1e-5, atol=1e-6)


def test_batch_norm_zero_free_term_and_learning(engine):
    rng = np.random.default_rng(4)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    src = neoml.Dnn.Source(dnn, "x")
    lab = neoml.Dnn.Source(dnn, "y")
    bn = neoml.Dnn.BatchNormalization(src, zero_free_term=True, name="bn")
    loss = neoml.Dnn.EuclideanLoss((bn, lab), name="loss")
    assert loss is not None
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.1)
    x = rng.normal(0, 1, (1, 16, 1, 1, 1, 1, 3)).astype(np.float32)
    y = 2 * x
    for _ in range(3):
        dnn.learn({"x": _blob(engine, x), "y": _blob(engine, y)})
    assert "beta" not in bn._params
    gamma = _host(engine, bn._params["gamma"])
    assert np.all(gamma > 1.0)          # moved towards the target scale 2 * std
    final = bn.final_params.asarray(keep_dims=True).reshape(2, 3)
    np.testing.assert_array_equal(final[1], 0)


def test_batch_norm_errors_name_the_layer(engine):
    dnn, bn = _net(engine, lambda s: neoml.Dnn.BatchNormalization(s, name="bn1"))
    x = np.zeros((1, 7, 1, 1, 1, 1, 2), np.float32)
    with pytest.raises(ShapeError, match="bn1.*at least 8"):
        dnn.run_and_backward({"x": _blob(engine, x)})
    dnn.run({"x": _blob(engine, x)})                 # run mode: any batch
    with pytest.raises(ShapeError, match="bn1.*Channels = 2"):
        dnn.run({"x": _blob(engine, np.zeros((1, 8, 1, 1, 1, 1, 3), np.float32))})
    with pytest.raises(ParameterError, match="BatchNormalization 'b'.*slow_convergence_rate"):
        neoml.Dnn.BatchNormalization(neoml.Dnn.Source(dnn, "z"), slow_convergence_rate=0,
                                     name="b")
    with pytest.raises(ShapeError, match="bn1.*final_params"):
        bn.final_params = _blob(engine, np.zeros((1, 2, 1, 1, 1, 1, 5), np.float32))


def test_batch_norm_store_load_keeps_statistics(engine, tmp_path):
    rng = np.random.default_rng(5)
    dnn, bn = _net(engine, lambda s: neoml.Dnn.BatchNormalization(s, name="bn"))
    x = rng.normal(0, 1, (1, 8, 1, 1, 1, 1, 2)).astype(np.float32)
    dnn.run_and_backward({"x": _blob(engine, x)})
    before = dnn.run({"x": _blob(engine, x)})["out"].asarray(copy=True)
    path = str(tmp_path / "bn.pkl")
    dnn.store(path)
    dnn2 = neoml.Dnn.Dnn(engine)
    dnn2.load(path)
    after = dnn2.run({"x": _blob(engine, x)})["out"].asarray(copy=True)
    np.testing.assert_allclose(after, before, rtol=1e-6)


# ------------------------------------------------------------------ apply_batch_normalization
def _trained_bn(engine, dnn, bn, x, rng, n):
    dnn.run_and_backward({"x": _blob(engine, x)})      # learn-mode statistics
    bn._params["gamma"] = engine.backend.asarray(rng.uniform(0.5, 2, n).astype(np.float32))
    bn._params["beta"] = engine.backend.asarray(rng.normal(0, 1, n).astype(np.float32))
    bn._final_dirty = True


@pytest.mark.parametrize("zero_free", [False, True])
def test_fully_connected_apply_batch_normalization(engine, zero_free):
    rng = np.random.default_rng(6)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    src = neoml.Dnn.Source(dnn, "x")
    fc = neoml.Dnn.FullyConnected(src, 4, is_zero_free_term=zero_free, name="fc")
    bn = neoml.Dnn.BatchNormalization(fc, name="bn")
    sink = neoml.Dnn.Sink(bn, name="out")
    x = rng.normal(0, 1, (1, 9, 1, 2, 1, 1, 3)).astype(np.float32)
    _trained_bn(engine, dnn, bn, x, rng, 4)
    before = dnn.run({"x": _blob(engine, x)})["out"].asarray(copy=True)
    fc.apply_batch_normalization(bn)
    dnn.delete_layer(bn)
    sink.connect(fc)
    after = dnn.run({"x": _blob(engine, x)})["out"].asarray(copy=True)
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)
    assert not fc.zero_free_term


def test_conv_apply_batch_normalization(engine):
    rng = np.random.default_rng(7)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    src = neoml.Dnn.Source(dnn, "x")
    conv = neoml.Dnn.Conv(src, 3, (2, 2), (1, 1), (1, 0), (1, 1), is_zero_free_term=False,
                          name="conv")
    bn = neoml.Dnn.BatchNormalization(conv, name="bn")
    sink = neoml.Dnn.Sink(bn, name="out")
    x = rng.normal(0, 1, (1, 2, 1, 4, 3, 1, 2)).astype(np.float32)
    _trained_bn(engine, dnn, bn, x, rng, 3)
    before = dnn.run({"x": _blob(engine, x)})["out"].asarray(copy=True)
    conv.apply_batch_normalization(bn)
    dnn.delete_layer(bn)
    sink.connect(conv)
    after = dnn.run({"x": _blob(engine, x)})["out"].asarray(copy=True)
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)


def test_apply_batch_normalization_errors(engine):
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    src = neoml.Dnn.Source(dnn, "x")
    fc = neoml.Dnn.FullyConnected(src, 4, name="fc")
    other = neoml.Dnn.FullyConnected(src, 4, name="other")
    bn = neoml.Dnn.BatchNormalization(other, name="bn")
    with pytest.raises(ParameterError, match="'fc'.*apply_batch_normalization.*not fed by"):
        fc.apply_batch_normalization(bn)
    with pytest.raises(ParameterError, match="'fc'.*BatchNormalization"):
        fc.apply_batch_normalization(other)
    bn2 = neoml.Dnn.BatchNormalization(fc, name="bn2")
    with pytest.raises(ParameterError, match="'fc'.*run the network first"):
        fc.apply_batch_normalization(bn2)


# ------------------------------------------------------------------ ObjectNormalization
def test_object_normalization_vs_reference(engine):
    rng = np.random.default_rng(8)
    x = rng.normal(1, 2, (2, 3, 1, 2, 2, 1, 3)).astype(np.float32)
    dnn, on = _net(engine, lambda s: neoml.Dnn.ObjectNormalization(s, epsilon=1e-3, name="on"))
    scale = rng.normal(1, 0.5, (1, 1, 1, 2, 2, 1, 3)).astype(np.float32)
    bias = rng.normal(0, 0.5, (1, 1, 1, 2, 2, 1, 3)).astype(np.float32)
    dnn.run({"x": _blob(engine, x)})
    assert on.scale.asarray(keep_dims=True).shape == (1, 1, 1, 2, 2, 1, 3)
    np.testing.assert_array_equal(on.scale.asarray(), 1)
    np.testing.assert_array_equal(on.bias.asarray(), 0)
    on.scale, on.bias = _blob(engine, scale), _blob(engine, bias)
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    m = x.astype(np.float64).reshape(6, 12)
    y, saved = K.layer_norm_forward(m, scale.reshape(-1).astype(np.float64),
                                    bias.reshape(-1).astype(np.float64), eps=1e-3)
    np.testing.assert_allclose(got.reshape(6, 12), y, rtol=RTOL, atol=ATOL)

    be = engine.backend
    dy = rng.normal(0, 1, x.shape).astype(np.float32)
    on._grads.clear()
    on._forward(be, [be.asarray(x)], True)
    (dx,) = on._backward(be, [be.asarray(dy)], [True])
    dx_r, ds_r, db_r = K.layer_norm_backward(dy.astype(np.float64).reshape(6, 12), saved)
    np.testing.assert_allclose(_host(engine, dx).reshape(6, 12), dx_r, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_host(engine, on._grads["scale"]), ds_r, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_host(engine, on._grads["bias"]), db_r, rtol=RTOL, atol=ATOL)


def test_object_normalization_errors(engine):
    dnn, on = _net(engine, lambda s: neoml.Dnn.ObjectNormalization(s, name="on1"))
    assert on.epsilon == 1e-5
    with pytest.raises(ParameterError, match="on1.*epsilon"):
        on.epsilon = 0
    dnn.run({"x": _blob(engine, np.ones((1, 1, 1, 1, 1, 1, 4), np.float32))})
    with pytest.raises(ShapeError, match="on1.*object size"):
        dnn.run({"x": _blob(engine, np.ones((1, 1, 1, 1, 1, 1, 5), np.float32))})
    with pytest.raises(ShapeError, match="on1.*scale must have 4"):
        on.scale = _blob(engine, np.ones((1, 1, 1, 1, 1, 1, 3), np.float32))


# ------------------------------------------------------------------ Lrn
@pytest.mark.parametrize("window", [1, 2, 3, 4, 5])
def test_lrn_vs_reference(engine, window):
    rng = np.random.default_rng(9)
    x = rng.normal(0, 2, (1, 2, 1, 3, 2, 1, 6)).astype(np.float32)
    dnn, lrn = _net(engine, lambda s: neoml.Dnn.Lrn(s, window_size=window, bias=1.5,
                                                   alpha=0.5, beta=0.75, name="lrn"))
    got = dnn.run({"x": _blob(engine, x)})["out"].asarray(keep_dims=True)
    # NeoML's formula, written out: window [c - (w-1)//2, c + w//2]
    m = x.astype(np.float64).reshape(-1, 6)
    want = np.empty_like(m)
    for c in range(6):
        lo, hi = max(0, c - (window - 1) // 2), min(5, c + window // 2)
        want[:, c] = m[:, c] / (1.5 + 0.5 / window * (m[:, lo:hi + 1] ** 2).sum(1)) ** 0.75
    np.testing.assert_allclose(got.reshape(-1, 6), want, rtol=RTOL, atol=ATOL)

    be = engine.backend
    dy = rng.normal(0, 1, x.shape).astype(np.float32)
    lrn._forward(be, [be.asarray(x)], True)
    (dx,) = lrn._backward(be, [be.asarray(dy)], [True])
    _, saved = K.lrn_forward(m.reshape(-1, 6, 1, 1), size=window, k=1.5, alpha=0.5, beta=0.75)
    (dx_r,) = K.lrn_backward(dy.astype(np.float64).reshape(-1, 6, 1, 1), saved)
    np.testing.assert_allclose(_host(engine, dx).reshape(-1, 6), dx_r.reshape(-1, 6),
                               rtol=RTOL, atol=ATOL)


def test_lrn_defaults_and_errors(engine):
    dnn, lrn = _net(engine, lambda s: neoml.Dnn.Lrn(s, name="lrn1"))
    assert (lrn.window_size, lrn.bias, lrn.alpha, lrn.beta) == (1, 1.0, 1e-4, 0.75)
    with pytest.raises(ParameterError, match="lrn1.*window_size"):
        lrn.window_size = 0
    with pytest.raises(ParameterError, match="lrn1.*bias > 0"):
        lrn.bias = 0
    assert lrn.bias == 1.0
    ints = np.ones((1, 1, 1, 1, 1, 1, 2), np.int32)
    with pytest.raises(DTypeError, match="lrn1.*float32"):
        dnn.run({"x": neoml.Blob.asblob(dnn.math_engine, ints, ints.shape, copy=True)})
    with pytest.raises(ParameterError, match="Lrn 'z'.*alpha"):
        neoml.Dnn.Lrn(neoml.Dnn.Source(dnn, "s2"), alpha="a", name="z")
