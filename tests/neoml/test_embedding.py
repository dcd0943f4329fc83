"""neoml.Dnn.MultichannelLookup, AccumulativeLookup, PositionalEmbedding and TiedEmbeddings
against refnn's float64 reference embedding ops, on every engine; the solver trains the
tables (rows no id touched stay put under plain SGD); ids out of the vocabulary and other
bad input raise errors naming the layer."""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops import embedding as E

RTOL, ATOL = 1e-5, 1e-5


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _host(be, a):
    return np.asarray(be.to_host(a), np.float64)


def _net(engine, n=1):
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(7))
    return dnn, [neoml.Dnn.Source(dnn, f"s{k}") for k in range(n)]


@pytest.mark.parametrize("shape,count,size", [((2, 3, 1, 1, 1, 1, 4), 10, 5),
                                              ((1, 1, 1, 1, 1, 1, 1), 1, 1),
                                              ((3, 1, 2, 1, 2, 1, 3), 7, 17)])
def test_accumulative_lookup(engine, shape, count, size):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, count, shape).astype(np.int32)
    dnn, (src,) = _net(engine)
    lk = neoml.Dnn.AccumulativeLookup(src, count, size, name="acc")
    neoml.Dnn.Sink(lk, name="out")
    got = dnn.run({"s0": _blob(engine, ids)})["out"].asarray(keep_dims=True)
    assert got.shape == shape[:3] + (1, 1, 1, size)
    be = engine.backend
    table = _host(be, lk._params["table"])
    assert table.shape == (count, size)
    ids2 = ids.reshape(shape[0] * shape[1] * shape[2], -1)
    y, saved = E.accumulative_lookup_forward(ids2, table)
    np.testing.assert_allclose(got.reshape(y.shape), y, rtol=RTOL, atol=ATOL)
    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    lk._grads.clear()
    lk._forward(be, [be.asarray(ids, dtype=np.int32)], True)
    assert lk._backward(be, [be.asarray(dy)], [False]) == [None]
    _, dtable = E.accumulative_lookup_backward(dy.reshape(y.shape).astype(np.float64), saved)
    np.testing.assert_allclose(_host(be, lk._grads["table"]), dtable, rtol=RTOL, atol=ATOL)
    assert (lk.count, lk.size) == (count, size) and lk.OPS == ("accumulative_lookup",)


@pytest.mark.parametrize("C", [2, 4])
@pytest.mark.parametrize("float_ids", [False, True])
def test_multichannel_lookup(engine, C, float_ids):
    dims = [(5, 3), (9, 17)]
    rng = np.random.default_rng(1)
    shape = (2, 3, 1, 1, 1, 1, C)
    ids = np.stack([rng.integers(0, 5, shape[:6]), rng.integers(0, 9, shape[:6])]
                   + [rng.integers(-3, 3, shape[:6]) for _ in range(C - 2)], axis=-1)
    ids = ids.astype(np.float32 if float_ids else np.int32)
    dnn, (src,) = _net(engine)
    lk = neoml.Dnn.MultichannelLookup(src, dims, name="mc")
    lk.use_framework_learning = True            # dense table gradients in _grads
    neoml.Dnn.Sink(lk, name="out")
    got = dnn.run({"s0": _blob(engine, ids)})["out"].asarray(keep_dims=True)
    assert got.shape == shape[:6] + (3 + 17 + C - 2,)
    be = engine.backend
    tables = [lk.get_embeddings(i).asarray(keep_dims=True) for i in range(2)]
    assert tables[0].shape == (5, 1, 1, 1, 1, 1, 3) and tables[1].shape == (9, 1, 1, 1, 1, 1, 17)
    M = int(np.prod(shape[:6]))
    flat = ids.reshape(M, C)
    parts, saved = [], []
    for i, (c, s) in enumerate(dims):
        y, sv = E.lookup_forward(flat[:, i:i + 1].astype(np.int64),
                                 tables[i].reshape(c, s).astype(np.float64))
        parts.append(y.reshape(M, s))
        saved.append(sv)
    ref = np.concatenate(parts + [flat[:, 2:].astype(np.float64)], axis=1)
    np.testing.assert_allclose(got.reshape(M, -1), ref, rtol=RTOL, atol=ATOL)

    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    lk._grads.clear()
    lk._forward(be, [be.asarray(ids, dtype=ids.dtype)], True)
    assert lk._backward(be, [be.asarray(dy)], [False]) == [None]
    d = dy.reshape(M, -1).astype(np.float64)
    off = 0
    for i, (c, s) in enumerate(dims):
        _, dt = E.lookup_backward(d[:, off:off + s].reshape(M, 1, s), saved[i])
        np.testing.assert_allclose(_host(be, lk._grads[f"table{i}"]), dt, rtol=RTOL, atol=ATOL)
        off += s


@pytest.mark.parametrize("framework", [False, True])
def test_multichannel_lookup_tables_settable_and_sgd_touches_seen_rows_only(engine, framework):
    dnn, (src, tsrc) = _net(engine, 2)
    lk = neoml.Dnn.MultichannelLookup(src, [(6, 2)], name="mc")
    assert lk.dimensions == [(6, 2)] and lk.get_embeddings(0) is None
    assert lk.use_framework_learning is False
    lk.use_framework_learning = framework
    table = np.arange(12, dtype=np.float32).reshape(6, 1, 1, 1, 1, 1, 2)
    lk.set_embeddings(0, _blob(engine, table))
    np.testing.assert_array_equal(lk.get_embeddings(0).asarray(keep_dims=True), table)
    loss = neoml.Dnn.EuclideanLoss([lk, tsrc])
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.1, moment_decay_rate=0.0)
    ids = np.array([1, 4, 4], np.int32).reshape(3, 1, 1, 1, 1, 1, 1)
    t = np.zeros((3, 1, 1, 1, 1, 1, 2), np.float32)
    dnn.learn({"s0": _blob(engine, ids), "s1": _blob(engine, t)})
    new = lk.get_embeddings(0).asarray().reshape(6, 2)
    old = table.reshape(6, 2)
    untouched = [0, 2, 3, 5]
    np.testing.assert_array_equal(new[untouched], old[untouched])
    assert np.all(new[[1, 4]] < old[[1, 4]])                  # pulled towards the target 0
    # Huber loss gradient (delta 1) of a row far from 0 is 1 per element, / 3 objects
    np.testing.assert_allclose(new[4], old[4] - 0.1 * 2 / 3, rtol=1e-5)
    # a per-layer initializer
    lk2 = neoml.Dnn.MultichannelLookup(src, [(5, 4)], name="mc2")
    lk2.initialize(neoml.Dnn.Uniform(2.0, 3.0))
    neoml.Dnn.Sink(lk2, name="o2")
    dnn.run({"s0": _blob(engine, ids), "s1": _blob(engine, t)})
    emb = lk2.get_embeddings(0).asarray()
    assert np.all((emb >= 2) & (emb <= 3))
    lk2.dimensions = [(2, 2)]
    assert lk2.dimensions == [(2, 2)] and lk2.get_embeddings(0) is None
    assert neoml.Dnn.MultichannelLookup.OPS == ("lookup", "lookup_sgd")


def test_multichannel_lookup_internal_learning_is_sparse_sgd(engine):
    """NeoML's default: the backward pass itself applies table[id] -= lr * dy (the
    lookup_sgd op) with the solver's learning rate -- no momentum, already in
    run_and_backward -- while framework learning leaves the step to the solver."""
    rng = np.random.default_rng(8)
    ids = np.array([[0, 2], [2, 2], [1, 0]], np.int32).reshape(3, 1, 1, 1, 1, 1, 2)
    dy = rng.normal(0, 1, (3, 1, 1, 1, 1, 1, 7)).astype(np.float32)
    t0 = rng.normal(0, 1, (4, 1, 1, 1, 1, 1, 3)).astype(np.float32)
    t1 = rng.normal(0, 1, (3, 1, 1, 1, 1, 1, 4)).astype(np.float32)
    dnn, (src,) = _net(engine)
    lk = neoml.Dnn.MultichannelLookup(src, [(4, 3), (3, 4)], name="mc")
    neoml.Dnn.Sink(lk, name="out")
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.3, moment_decay_rate=0.9)
    lk.set_embeddings(0, _blob(engine, t0))
    lk.set_embeddings(1, _blob(engine, t1))
    be = engine.backend
    ref = [t0.reshape(4, 3).astype(np.float64), t1.reshape(3, 4).astype(np.float64)]
    for step in range(2):                 # the second step shows no momentum
        lk._forward(be, [be.asarray(ids, dtype=np.int32)], True)
        assert lk._backward(be, [be.asarray(dy)], [False]) == [None]
        d = dy.reshape(3, 7).astype(np.float64)
        for i, (lo, hi) in enumerate(((0, 3), (3, 7))):
            E.lookup_sgd_update(ref[i], ids.reshape(3, 2)[:, i:i + 1].astype(np.int64),
                                d[:, None, lo:hi], learning_rate=0.3)
            np.testing.assert_allclose(lk.get_embeddings(i).asarray().reshape(ref[i].shape),
                                       ref[i], rtol=1e-5, atol=1e-5)
    assert not lk._grads                  # nothing left for the solver
    untouched = lk.get_embeddings(0).asarray().reshape(4, 3)[3]
    np.testing.assert_array_equal(untouched, t0.reshape(4, 3)[3])
    lk.learning_enabled = False           # frozen: no update
    lk._forward(be, [be.asarray(ids, dtype=np.int32)], True)
    lk._backward(be, [be.asarray(dy)], [False])
    np.testing.assert_allclose(lk.get_embeddings(1).asarray().reshape(3, 4), ref[1],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 2, 5, 1, 1, 1, 6), (1, 1, 1, 1, 1, 1, 1),
                                   (1, 3, 4, 1, 1, 1, 7)])
def test_positional_transformers(engine, shape):
    x = np.random.default_rng(2).normal(0, 1, shape).astype(np.float32)
    dnn, (src,) = _net(engine)
    pe = neoml.Dnn.PositionalEmbedding(src, "transformers", name="pe")
    neoml.Dnn.Sink(pe, name="out")
    got = dnn.run({"s0": _blob(engine, x)})["out"].asarray(keep_dims=True)
    N, T, D = shape[1], shape[2], shape[6]
    y, saved = E.positional_sinusoidal_forward(x.reshape(N, T, D).astype(np.float64))
    np.testing.assert_allclose(got.reshape(N, T, D), y, rtol=1e-5, atol=1e-5)
    assert pe.type == "transformers" and pe.addends is None
    be = engine.backend
    dy = np.random.default_rng(3).normal(0, 1, shape).astype(np.float32)
    pe._forward(be, [be.asarray(x)], True)
    (dx,) = pe._backward(be, [be.asarray(dy)], [True])
    np.testing.assert_allclose(_host(be, dx), dy, rtol=RTOL, atol=ATOL)


def test_positional_learnable(engine):
    shape = (1, 3, 4, 1, 2, 1, 3)
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, shape).astype(np.float32)
    dnn, (src,) = _net(engine)
    pe = neoml.Dnn.PositionalEmbedding(src, "learnable_addition", name="pe")
    neoml.Dnn.Sink(pe, name="out")
    add = rng.normal(0, 1, (1, 1) + shape[2:]).astype(np.float32)
    pe.addends = _blob(engine, add)
    np.testing.assert_array_equal(pe.addends.asarray(keep_dims=True), add)
    got = dnn.run({"s0": _blob(engine, x)})["out"].asarray(keep_dims=True)
    N, T = shape[1], shape[2]
    y, saved = E.positional_learnable_forward(x.reshape(N, T, -1).astype(np.float64),
                                              add.reshape(T, -1).astype(np.float64))
    np.testing.assert_allclose(got.reshape(N, T, -1), y, rtol=RTOL, atol=ATOL)
    be = engine.backend
    dy = rng.normal(0, 1, shape).astype(np.float32)
    pe._grads.clear()
    pe._forward(be, [be.asarray(x)], True)
    (dx,) = pe._backward(be, [be.asarray(dy)], [True])
    rdx, rda = E.positional_learnable_backward(dy.reshape(N, T, -1).astype(np.float64), saved)
    np.testing.assert_allclose(_host(be, dx).reshape(rdx.shape), rdx, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_host(be, pe._grads["addends"]), rda, rtol=RTOL, atol=ATOL)
    pe.type = "transformers"
    assert pe.type == "transformers"
    assert neoml.Dnn.PositionalEmbedding.OPS == ("positional_sinusoidal",
                                                 "positional_learnable")
    # without a set blob the addends come from the initializer at the first run
    dnn2, (src2,) = _net(engine)
    pe2 = neoml.Dnn.PositionalEmbedding(src2, "learnable_addition")
    dnn2.run({"s0": _blob(engine, x)})
    assert pe2.addends.asarray(keep_dims=True).shape == (1, 1) + shape[2:]


def test_tied_embeddings(engine):
    V, D = 7, 5
    rng = np.random.default_rng(5)
    dnn, (ids_src, x_src, t_src) = _net(engine, 3)
    lk = neoml.Dnn.MultichannelLookup(ids_src, [(3, 2), (V, D)], name="emb")
    table = rng.normal(0, 1, (V, 1, 1, 1, 1, 1, D)).astype(np.float32)
    lk.set_embeddings(1, _blob(engine, table))
    tied = neoml.Dnn.TiedEmbeddings([x_src], "emb", 1, name="tied")
    neoml.Dnn.Sink(tied, name="out")
    assert (tied.embeddings_layer_name, tied.channel) == ("emb", 1)
    x = rng.normal(0, 1, (2, 3, 1, 1, 1, 1, D)).astype(np.float32)
    ids = np.zeros((1, 1, 1, 1, 1, 1, 2), np.int32)
    got = dnn.run({"s0": _blob(engine, ids), "s1": _blob(engine, x),
                   "s2": _blob(engine, np.zeros((2, 3, 1, 1, 1, 1, V), np.float32))}
                  )["out"].asarray(keep_dims=True)
    T = table.reshape(V, D).astype(np.float64)
    ref = x.reshape(6, D).astype(np.float64) @ T.T
    assert got.shape == (2, 3, 1, 1, 1, 1, V)
    np.testing.assert_allclose(got.reshape(6, V), ref, rtol=1e-5, atol=1e-5)
    be = engine.backend
    dy = rng.normal(0, 1, got.shape).astype(np.float32)
    lk._grads.clear()
    tied._forward(be, [be.asarray(x)], True)
    (dx,) = tied._backward(be, [be.asarray(dy)], [True])
    d = dy.reshape(6, V).astype(np.float64)
    np.testing.assert_allclose(_host(be, dx).reshape(6, D), d @ T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_host(be, lk._grads["table1"]), d.T @ x.reshape(6, D),
                               rtol=1e-5, atol=1e-5)
    # the solver trains the shared table through the tied layer
    loss = neoml.Dnn.EuclideanLoss([tied, t_src])
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.05)
    feeds = {"s0": _blob(engine, ids), "s1": _blob(engine, x),
             "s2": _blob(engine, np.zeros((2, 3, 1, 1, 1, 1, V), np.float32))}
    dnn.learn(feeds)
    first = loss.last_loss
    for _ in range(20):
        dnn.learn(feeds)
    assert loss.last_loss < first
    assert not np.allclose(lk.get_embeddings(1).asarray(keep_dims=True), table)
    tied.channel, tied.embeddings_layer_name = 0, "emb"
    assert tied.channel == 0 and neoml.Dnn.TiedEmbeddings.OPS == ("linear",)


def test_errors_name_the_layer(engine):
    dnn, (src,) = _net(engine)
    with pytest.raises(ParameterError, match=r"AccumulativeLookup 'a'.*count"):
        neoml.Dnn.AccumulativeLookup(src, 0, 3, name="a")
    with pytest.raises(ParameterError, match=r"MultichannelLookup 'm'.*positive"):
        neoml.Dnn.MultichannelLookup(src, [(3, 0)], name="m")
    with pytest.raises(ParameterError, match=r"PositionalEmbedding 'p'.*type_name"):
        neoml.Dnn.PositionalEmbedding(src, "rotary", name="p")
    with pytest.raises(ParameterError, match=r"TiedEmbeddings 't'.*channel"):
        neoml.Dnn.TiedEmbeddings(src, "emb", -1, name="t")

    acc = neoml.Dnn.AccumulativeLookup(src, 4, 3, name="acc")
    neoml.Dnn.Sink(acc, name="out")
    for bad in (4, -1, 100):
        ids = np.array([[0, bad]], np.int32).reshape(1, 1, 1, 1, 1, 1, 2)
        with pytest.raises(ParameterError, match=r"AccumulativeLookup 'acc': .*"):
            dnn.run({"s0": _blob(engine, ids)})
    with pytest.raises(DTypeError, match=r"AccumulativeLookup 'acc': input must be an int32"):
        dnn.run({"s0": _blob(engine, np.zeros((1, 1, 1, 1, 1, 1, 2), np.float32))})

    dnn, (src,) = _net(engine)
    mc = neoml.Dnn.MultichannelLookup(src, [(4, 2), (3, 2)], name="mc")
    neoml.Dnn.Sink(mc, name="out")
    with pytest.raises(ParameterError, match=r"MultichannelLookup 'mc': lookup"):
        dnn.run({"s0": _blob(engine, np.array([1, 3], np.int32).reshape(1, 1, 1, 1, 1, 1, 2))})
    with pytest.raises(ShapeError, match=r"MultichannelLookup 'mc': input Channels must be"):
        dnn.run({"s0": _blob(engine, np.zeros((1, 1, 1, 1, 1, 1, 1), np.int32))})
    with pytest.raises(ParameterError, match=r"MultichannelLookup 'mc': table index"):
        mc.get_embeddings(2)
    with pytest.raises(ShapeError, match=r"MultichannelLookup 'mc': table0 must be a blob"):
        mc.set_embeddings(0, _blob(engine, np.zeros((3, 1, 1, 1, 1, 1, 2), np.float32)))

    dnn, (src,) = _net(engine)
    pe = neoml.Dnn.PositionalEmbedding(src, "transformers", name="pe")
    neoml.Dnn.Sink(pe, name="out")
    with pytest.raises(ShapeError, match=r"PositionalEmbedding 'pe': input BatchLength"):
        dnn.run({"s0": _blob(engine, np.zeros((2, 1, 3, 1, 1, 1, 4), np.float32))})
    with pytest.raises(ShapeError, match=r"PositionalEmbedding 'pe': 'transformers' needs"):
        dnn.run({"s0": _blob(engine, np.zeros((1, 1, 3, 2, 1, 1, 4), np.float32))})

    dnn, (src, x_src) = _net(engine, 2)
    fc = neoml.Dnn.FullyConnected(src, 3, name="fc")
    tied = neoml.Dnn.TiedEmbeddings(x_src, "fc", 0, name="tied")
    neoml.Dnn.Sink(tied, name="out")
    feeds = {"s0": _blob(engine, np.zeros((1, 1, 1, 1, 1, 1, 2), np.float32)),
             "s1": _blob(engine, np.zeros((1, 1, 1, 1, 1, 1, 2), np.float32))}
    with pytest.raises(ParameterError, match=r"TiedEmbeddings 'tied'.*MultichannelLookup"):
        dnn.run(feeds)
    neoml.Dnn.MultichannelLookup(src, [(3, 4)], name="mc")
    tied.embeddings_layer_name = "mc"
    with pytest.raises(ShapeError, match=r"TiedEmbeddings 'tied': input 0 must have object "
                                         r"size 4"):
        dnn.run(feeds)
    tied.channel = 1
    with pytest.raises(ParameterError, match=r"TiedEmbeddings 'tied': channel 1 is out"):
        dnn.run(feeds)
    assert fc is not None
