"""Each layer of refnn.neoml against refnn's float64 reference ops, on every engine.

A layer L is checked inside Source -> FullyConnected -> L -> EuclideanLoss: its
forward output (through a Sink) must equal the reference op on the same numbers, and
one ``learn`` with SimpleGradient(learning_rate=1, moment 0) must move the
FullyConnected weights by minus the gradient computed with the reference ops
(so L's backward is wired right: right op, right layout, right parameters).
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.ops import activation as A, dense as D, loss as L

RTOL, ATOL = 1e-3, 2e-5   # float32 engines vs the float64 reference, O(1) values
N, CIN, COUT = 6, 5, 4


def _net(engine, make_layer, x7, W, b, n_out=COUT, loss="euclidean", labels=None):
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(3))
    src = neoml.Dnn.Source(dnn, "x")
    lab = neoml.Dnn.Source(dnn, "t")
    fc = neoml.Dnn.FullyConnected(src, n_out, name="fc")
    fc.weights = neoml.Blob.asblob(engine, W, (1, n_out, 1) + x7.shape[3:], copy=True)
    fc.free_term = neoml.Blob.asblob(engine, b, (n_out,) + (1,) * 6, copy=True)
    layer = make_layer(fc)
    neoml.Dnn.Sink(layer, name="out")
    neoml.Dnn.EuclideanLoss((layer, lab), name="loss")
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=1.0, moment_decay_rate=0.0)
    return dnn, fc


def _check_layer(engine, make_layer, act, x7, n_out=COUT, seed=0, positive=False):
    """act(y7) -> (z7, backward(dz7) -> dy7) computed with the reference in float64."""
    rng = np.random.default_rng(seed)
    cin = int(np.prod(x7.shape[3:]))
    W = rng.normal(0, 0.5, (n_out, cin)).astype(np.float32)
    b = rng.normal(0, 0.1, n_out).astype(np.float32)
    if positive:
        W, b = np.abs(W), np.abs(b) + 0.1
    out_shape = x7.shape[:3] + (1, 1, 1, n_out)
    t = rng.normal(0, 0.5, out_shape).astype(np.float32)
    dnn, fc = _net(engine, make_layer, x7, W, b, n_out)
    inputs = {"x": neoml.Blob.asblob(engine, x7, x7.shape, copy=True),
              "t": neoml.Blob.asblob(engine, t, t.shape, copy=True)}
    got = dnn.run(inputs)["out"].asarray(keep_dims=True)
    dnn.learn(inputs)
    dW = fc.weights.asarray(keep_dims=True).reshape(n_out, cin) - W

    x2 = x7.astype(np.float64).reshape(-1, cin)
    y2, saved_lin = D.linear_forward(x2, W.astype(np.float64))
    y2, _ = D.bias_forward(y2, b.astype(np.float64))
    z7, back = act(y2.reshape(out_shape))
    np.testing.assert_allclose(got, z7, rtol=RTOL, atol=ATOL)
    zr = z7.reshape(-1, n_out)
    _, saved_loss = L.euclidean_forward(zr, t.reshape(-1, n_out).astype(np.float64))
    dz, _, _ = L.euclidean_backward(np.full(zr.shape[0], 1.0 / zr.shape[0]), saved_loss)
    dy = back(dz.reshape(out_shape)).reshape(-1, n_out)
    _, gW = D.linear_backward(dy, saved_lin)
    np.testing.assert_allclose(dW, -gW, rtol=RTOL, atol=ATOL)


def _elementwise(fwd, bwd, **params):
    def act(y):
        z, saved = fwd(y, **params)
        return z, lambda dz: bwd(dz, saved)[0]
    return act


ELEMENTWISE = [
    ("Linear", lambda s: neoml.Dnn.Linear(s, 2.0, -0.5), "linear_activation",
     dict(multiplier=2.0, free_term=-0.5)),
    ("ELU", lambda s: neoml.Dnn.ELU(s, 0.7), "elu", dict(alpha=0.7)),
    ("ReLU", lambda s: neoml.Dnn.ReLU(s), "relu", dict(threshold=0.0)),
    ("ReLU-threshold", lambda s: neoml.Dnn.ReLU(s, threshold=0.3), "relu", dict(threshold=0.3)),
    ("LeakyReLU", lambda s: neoml.Dnn.LeakyReLU(s, 0.1), "leaky_relu", dict(alpha=0.1)),
    ("HSwish", lambda s: neoml.Dnn.HSwish(s), "hswish", {}),
    ("GELU", lambda s: neoml.Dnn.GELU(s), "gelu", dict(form="sigmoid")),
    ("GELU-precise", lambda s: neoml.Dnn.GELU(s, calculation_mode="precise"), "gelu",
     dict(form="erf")),
    ("Abs", lambda s: neoml.Dnn.Abs(s), "abs", {}),
    ("Sigmoid", lambda s: neoml.Dnn.Sigmoid(s), "sigmoid", {}),
    ("Tanh", lambda s: neoml.Dnn.Tanh(s), "tanh", {}),
    ("HardTanh", lambda s: neoml.Dnn.HardTanh(s), "hard_tanh", {}),
    ("HardSigmoid", lambda s: neoml.Dnn.HardSigmoid(s, 0.3, 0.4), "hard_sigmoid",
     dict(slope=0.3, bias=0.4)),
    ("Power", lambda s: neoml.Dnn.Power(s, 3.0), "power", dict(exponent=3.0)),
    ("Exp", lambda s: neoml.Dnn.Exp(s), "exp", {}),
    ("Log", lambda s: neoml.Dnn.Log(s), "log", {}),
    ("Erf", lambda s: neoml.Dnn.Erf(s), "erf", {}),
]


@pytest.mark.parametrize("name,make,op,params", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_activation_layer_matches_reference(engine, name, make, op, params, request):
    x7 = np.random.default_rng(1).normal(size=(1, N, 1, 1, 1, 1, CIN)).astype(np.float32)
    if op == "log":
        x7 = np.abs(x7)
    act = _elementwise(getattr(A, op + "_forward"), getattr(A, op + "_backward"), **params)
    _check_layer(engine, make, act, x7, positive=(op == "log"))
    assert op in getattr(neoml.Dnn, name.split("-")[0]).OPS


def _softmax_along(axis_rows):
    """Reference softmax over the vectors given by ``axis_rows(y7) -> (2-D view, undo)``."""
    def act(y):
        m, undo = axis_rows(y)
        z, saved = A.softmax_forward(m)
        return undo(z), lambda dz: undo(A.softmax_backward(axis_rows(dz)[0], saved)[0])
    return act


def _rows_of(shape_fn):
    def split(y):
        s = y.shape
        return y.reshape(shape_fn(s)), lambda m: m.reshape(s)
    return split


def _batch_length(y):
    s = y.shape
    return y.reshape(s[0], -1).T.copy(), lambda m: m.T.reshape(s)


SOFTMAX = [
    ("object_size", (2, 3, 1, 1, 1, 1, CIN), COUT,
     _rows_of(lambda s: (s[0] * s[1] * s[2], -1))),
    ("channel", (2, 3, 1, 1, 1, 1, CIN), COUT, _rows_of(lambda s: (-1, s[6]))),
    ("batch_length", (3, 2, 1, 1, 1, 1, CIN), COUT, _batch_length),
    ("list_size", (1, 2, 4, 1, 1, 1, CIN), 1, _rows_of(lambda s: (s[0] * s[1], s[2]))),
]


@pytest.mark.parametrize("area,shape,n_out,rows", SOFTMAX, ids=[c[0] for c in SOFTMAX])
def test_softmax_areas_match_reference(engine, area, shape, n_out, rows):
    x7 = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    _check_layer(engine, lambda s: neoml.Dnn.Softmax(s, area=area), _softmax_along(rows),
                 x7, n_out=n_out)


def test_softmax_list_size_needs_object_size_one(engine):
    dnn = neoml.Dnn.Dnn(engine)
    src = neoml.Dnn.Source(dnn, "x")
    neoml.Dnn.Sink(neoml.Dnn.Softmax(src, area="list_size", name="sm"))
    x = neoml.Blob.asblob(engine, np.zeros((1, 1, 3, 1, 1, 1, 2), np.float32),
                          (1, 1, 3, 1, 1, 1, 2))
    with pytest.raises(ValueError, match="Softmax 'sm'.*object size 1"):
        dnn.run({"x": x})


# --------------------------------------------------------------------- dropout
def _dropout_net(engine, shape, seed=11, **kw):
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(seed))
    src = neoml.Dnn.Source(dnn, "x")
    drop = neoml.Dnn.Dropout(src, **kw)
    neoml.Dnn.Sink(drop, name="out")
    x = (np.random.default_rng(0).random(shape) + 0.5).astype(np.float32)
    return dnn, drop, x, {"x": neoml.Blob.asblob(engine, x, shape, copy=True)}


def test_dropout_is_identity_in_run_and_the_reference_mask_in_training(engine):
    shape = (1, 4, 1, 1, 1, 1, 50)
    dnn, drop, x, inputs = _dropout_net(engine, shape, rate=0.3)
    assert drop.rate == 0.3 and not drop.spatial and not drop.batchwise
    np.testing.assert_array_equal(dnn.run(inputs)["out"].asarray(keep_dims=True), x)
    got = dnn.run_and_backward(inputs)["out"].asarray(keep_dims=True)
    seed = neoml.Random.Random(11).seed32()       # the network's first draw
    mask = A.dropout_mask((1, 200), keep=0.7, seed=seed).reshape(shape)
    np.testing.assert_allclose(got, x * mask / np.float32(0.7), rtol=1e-6)
    assert 0.5 < mask.mean() < 0.9


def test_dropout_shares_the_mask_over_batch_length(engine):
    dnn, _, x, inputs = _dropout_net(engine, (3, 2, 1, 1, 1, 1, 20), rate=0.5)
    kept = dnn.run_and_backward(inputs)["out"].asarray(keep_dims=True) != 0
    assert (kept[0] == kept[1]).all() and (kept[1] == kept[2]).all()
    assert 0 < kept.mean() < 1


def test_dropout_batchwise_and_spatial_masks(engine):
    dnn, _, x, inputs = _dropout_net(engine, (1, 6, 1, 1, 1, 1, 30), rate=0.5, batchwise=True)
    y = dnn.run_and_backward(inputs)["out"].asarray(keep_dims=True).reshape(6, 30)
    kept = y != 0
    assert (kept == kept[0]).all() and 0 < kept.mean() < 1          # one mask for all objects
    np.testing.assert_allclose(y[kept], 2 * x.reshape(6, 30)[kept], rtol=1e-6)
    shape = (2, 3, 1, 2, 2, 1, 8)
    dnn, _, x, inputs = _dropout_net(engine, shape, rate=0.5, spatial=True)
    y = dnn.run_and_backward(inputs)["out"].asarray(keep_dims=True).reshape(2, 3, 4, 8)
    kept = y != 0
    assert (kept == kept[:, :, :1]).all()            # whole channels: same over H, W, D
    assert (kept[0] == kept[1]).all()                # same over BatchLength
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(y[kept], 2 * x.reshape(2, 3, 4, 8)[kept], rtol=1e-6)


@pytest.mark.parametrize("kw", [dict(), dict(batchwise=True), dict(spatial=True)])
def test_dropout_gradient_uses_the_training_mask(engine, kw):
    """Source -> FC -> Dropout -> Euclidean: the FC gradient sees dy * mask / keep."""
    shape = (2, 3, 1, 1, 1, 1, CIN)
    x7 = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    rng = np.random.default_rng(0)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(5))
    src, lab = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "t")
    fc = neoml.Dnn.FullyConnected(src, COUT, is_zero_free_term=True, name="fc")
    W = rng.normal(0, 0.5, (COUT, CIN)).astype(np.float32)
    fc.weights = neoml.Blob.asblob(engine, W, (1, COUT, 1, 1, 1, 1, CIN), copy=True)
    drop = neoml.Dnn.Dropout(fc, rate=0.4, **kw)
    sink = neoml.Dnn.Sink(drop, name="out")
    neoml.Dnn.EuclideanLoss((drop, lab))
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=1.0, moment_decay_rate=0.0)
    t = np.zeros(shape[:3] + (1, 1, 1, COUT), np.float32)
    dnn.learn({"x": neoml.Blob.asblob(engine, x7, shape, copy=True),
               "t": neoml.Blob.asblob(engine, t, t.shape, copy=True)})
    y = sink.get_blob().asarray(keep_dims=True).reshape(-1, COUT).astype(np.float64)
    x2 = x7.reshape(-1, CIN).astype(np.float64)
    scale = np.divide(y, x2 @ W.T.astype(np.float64), out=np.zeros_like(y),
                      where=y != 0)                               # mask / keep per element
    dz = np.clip(y, -1, 1) / y.shape[0]
    expected = -(dz * scale).T @ x2
    got = fc.weights.asarray(keep_dims=True).reshape(COUT, CIN) - W
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------------- losses
def _loss_net(engine, make_loss, x, labels, weights=None):
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(1))
    src, lab = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "t")
    fc = neoml.Dnn.FullyConnected(src, x.shape[1], name="fc")
    eye = np.eye(x.shape[1], dtype=np.float32)
    fc.weights = neoml.Blob.asblob(engine, eye, (1, x.shape[1], 1, 1, 1, 1, x.shape[1]), copy=True)
    ins = [fc, lab]
    inputs = {"x": neoml.Blob.asblob(engine, x, (1, x.shape[0], 1, 1, 1, 1, x.shape[1]), copy=True),
              "t": neoml.Blob.asblob(engine, labels,
                                     (1, x.shape[0], 1, 1, 1, 1, labels.size // x.shape[0]),
                                     copy=True)}
    if weights is not None:
        ins.append(neoml.Dnn.Source(dnn, "w"))
        inputs["w"] = neoml.Blob.asblob(engine, weights, (1, x.shape[0], 1, 1, 1, 1, 1), copy=True)
    loss = make_loss(ins)
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=1.0, moment_decay_rate=0.0)
    return dnn, fc, loss, inputs


LOSSES = [
    ("ce-int", lambda i: neoml.Dnn.CrossEntropyLoss(i, loss_weight=2.0), "cross_entropy",
     {}, "int", False),
    ("ce-float-weights", lambda i: neoml.Dnn.CrossEntropyLoss(i), "cross_entropy", {},
     "onehot", True),
    ("ce-nosoftmax", lambda i: neoml.Dnn.CrossEntropyLoss(i, softmax=False), "cross_entropy",
     dict(softmax=False), "onehot", False),
    ("bce", lambda i: neoml.Dnn.BinaryCrossEntropyLoss(i, positive_weight=2.0, loss_weight=0.5),
     "binary_cross_entropy", dict(positive_weight=2.0), "pm1", False),
    ("euclidean", lambda i: neoml.Dnn.EuclideanLoss(i, loss_weight=3.0), "euclidean", {},
     "float", True),
]


@pytest.mark.parametrize("name,make,op,params,label_kind,weighted", LOSSES,
                         ids=[c[0] for c in LOSSES])
def test_loss_layers_match_reference(engine, name, make, op, params, label_kind, weighted):
    rng = np.random.default_rng(7)
    n, c = 8, (1 if label_kind == "pm1" else 3)
    x = rng.normal(size=(n, c)).astype(np.float32)
    if not params.get("softmax", True):
        x = np.abs(x) + 0.1
        x /= x.sum(axis=1, keepdims=True)
    labels = {"int": lambda: rng.integers(0, c, n).astype(np.int32),
              "onehot": lambda: np.eye(c, dtype=np.float32)[rng.integers(0, c, n)],
              "pm1": lambda: rng.choice([-1.0, 1.0], (n, c)).astype(np.float32),
              "float": lambda: rng.normal(size=(n, c)).astype(np.float32) * 2}[label_kind]()
    w = rng.random(n).astype(np.float32) + 0.5 if weighted else None
    dnn, fc, loss, inputs = _loss_net(engine, make, x, labels, w)
    dnn.learn(inputs)
    fwd, bwd = getattr(L, op + "_forward"), getattr(L, op + "_backward")
    ref_labels = labels if label_kind == "int" else labels.astype(np.float64)
    l, saved = fwd(x.astype(np.float64), ref_labels,
                   None if w is None else w.astype(np.float64), max_gradient=1e6, **params)
    assert loss.last_loss == pytest.approx(l.sum() / n, rel=1e-4, abs=1e-6)  # no loss_weight
    dx = bwd(np.full(n, loss.loss_weight / n), saved)[0]
    _, gW = D.linear_backward(dx, (x.astype(np.float64), np.eye(c)))
    dW = fc.weights.asarray(keep_dims=True).reshape(c, c) - np.eye(c)
    np.testing.assert_allclose(dW, -gW, rtol=RTOL, atol=ATOL)
    assert op in type(loss).OPS


def test_accuracy(engine):
    dnn = neoml.Dnn.Dnn(engine)
    x, t = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "t")
    acc = neoml.Dnn.Accuracy((x, t), reset=False, name="acc")
    neoml.Dnn.Sink(acc, name="out")
    scores = np.array([[2, 1, 0], [0, 3, 1], [1, 0, 5], [4, 0, 0]], np.float32)
    onehot = np.eye(3, dtype=np.float32)[[0, 1, 1, 2]]
    inputs = {"x": neoml.Blob.asblob(engine, scores, (1, 4, 1, 1, 1, 1, 3), copy=True),
              "t": neoml.Blob.asblob(engine, onehot, (1, 4, 1, 1, 1, 1, 3), copy=True)}
    assert dnn.run(inputs)["out"].asarray()[0] == pytest.approx(0.5)
    inputs["t"] = neoml.Blob.asblob(engine, np.eye(3, dtype=np.float32)[[0, 1, 2, 0]],
                                    (1, 4, 1, 1, 1, 1, 3), copy=True)
    assert dnn.run(inputs)["out"].asarray()[0] == pytest.approx(6 / 8)   # accumulated
    acc.reset = True
    assert dnn.run(inputs)["out"].asarray()[0] == pytest.approx(1.0)
