"""The network graph, weights, initializers, threads and bad input of refnn.neoml."""
import pickle
import threading

import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import DTypeError, ParameterError, ShapeError
from tests.neoml.conftest import make_engine


def _blob(engine, a, shape=None):
    a = np.asarray(a)
    return neoml.Blob.asblob(engine, a, shape or (1, a.shape[0], 1, 1, 1, 1, a[0].size),
                             copy=True)


def _mlp(engine, seed=None):
    dnn = neoml.Dnn.Dnn(engine, None if seed is None else neoml.Random.Random(seed))
    src = neoml.Dnn.Source(dnn, "x")
    fc = neoml.Dnn.FullyConnected(src, 3, name="fc")
    sink = neoml.Dnn.Sink(fc, name="out")
    return dnn, src, fc, sink


# --------------------------------------------------------------------- the graph
def test_layers_are_the_users_objects_and_take_attributes(engine):
    dnn, src, fc, sink = _mlp(engine)
    assert dnn.layers["fc"] is fc and dnn.layers["x"] is src
    fc.my_note = "hello"
    assert dnn.layers["fc"].my_note == "hello"
    assert dnn.input_layers == {"x": src} and dnn.output_layers == {"out": sink}
    assert fc.input_names == ("x",) and fc.input_links == (("x", 0),)
    assert dnn.math_engine is engine
    assert fc.learning_enabled
    relu = neoml.Dnn.ReLU(src)                          # unnamed: a unique name is made
    assert relu.name and dnn.layers[relu.name] is relu
    dnn.delete_layer(relu.name)
    assert relu.name not in dnn.layers


def test_connect_sets_this_layers_input(engine):
    dnn, src, fc, sink = _mlp(engine)
    other = neoml.Dnn.Source(dnn, "y")
    fc2 = neoml.Dnn.FullyConnected([src, other], 2, name="fc2")
    assert fc2.input_links == (("x", 0), ("y", 0))
    sink2 = neoml.Dnn.Sink((fc2, 1), name="out2")
    assert sink2.input_links == (("fc2", 1),)
    sink2.connect(fc2, output_index=0)
    assert sink2.input_links == (("fc2", 0),)
    out = dnn.run({"x": _blob(engine, np.ones((2, 4), np.float32)),
                   "y": _blob(engine, np.zeros((2, 4), np.float32))})
    np.testing.assert_allclose(out["out2"].asarray(),
                               np.ones((2, 4)) @ fc2.weights.asarray().reshape(2, 4).T, rtol=1e-5)


def test_fully_connected_weights_shapes_and_lifecycle(engine):
    dnn, src, fc, sink = _mlp(engine, seed=5)
    assert fc.weights is None and fc.free_term is None and fc.element_count == 3
    x = np.random.default_rng(0).normal(size=(2, 4, 1, 2, 3, 1, 5)).astype(np.float32)
    out = dnn.run({"x": neoml.Blob.asblob(engine, x, x.shape, copy=True)})["out"]
    assert tuple(out.shape) == (2, 4, 1, 1, 1, 1, 3)
    assert tuple(fc.weights.shape) == (1, 3, 1, 2, 3, 1, 5)
    assert tuple(fc.free_term.shape) == (3, 1, 1, 1, 1, 1, 1)
    np.testing.assert_array_equal(fc.free_term.asarray(), np.zeros(3))     # free terms: zero
    W = fc.weights.asarray(keep_dims=True).reshape(3, 30)
    np.testing.assert_allclose(out.asarray(keep_dims=True).reshape(8, 3),
                               x.reshape(8, 30) @ W.T, rtol=1e-4, atol=1e-5)
    copy = fc.weights                       # the getter gives a copy
    copy.asarray(copy=False)                # (may be a view of that copy)
    assert fc.weights is not copy


def test_weights_set_before_the_first_run_are_kept(engine):
    dnn, src, fc, sink = _mlp(engine)
    W = np.arange(6, dtype=np.float32).reshape(3, 2) / 10
    fc.weights = neoml.Blob.asblob(engine, W, (1, 3, 1, 1, 1, 1, 2), copy=True)
    fc.free_term = neoml.Blob.asblob(engine, np.array([1, 2, 3], np.float32), (3, 1, 1, 1, 1, 1, 1))
    out = dnn.run({"x": _blob(engine, np.array([[1.0, 1.0]], np.float32))})["out"]
    np.testing.assert_allclose(out.asarray(), [0.1 + 1, 0.5 + 2, 0.9 + 3], rtol=1e-6)
    with pytest.raises(ShapeError, match="fc.*element_count=3.*got blob shape"):
        fc.weights = neoml.Blob.asblob(engine, np.zeros(4, np.float32), (1, 2, 1, 1, 1, 1, 2))


def test_zero_free_term(engine):
    dnn = neoml.Dnn.Dnn(engine)
    fc = neoml.Dnn.FullyConnected(neoml.Dnn.Source(dnn, "x"), 2, is_zero_free_term=True)
    neoml.Dnn.Sink(fc, name="out")
    assert fc.zero_free_term
    dnn.run({"x": _blob(engine, np.ones((1, 3), np.float32))})
    assert fc.free_term is None


def test_unseeded_networks_repeat_and_initializers_draw_as_documented(engine):
    x = {"x": None}
    weights = []
    for _ in range(2):
        dnn, src, fc, sink = _mlp(engine)
        x["x"] = _blob(engine, np.ones((1, 400), np.float32))
        dnn.run(x)
        weights.append(fc.weights.asarray())
    np.testing.assert_array_equal(weights[0], weights[1])        # fixed default seed
    assert np.std(weights[0]) == pytest.approx(np.sqrt(1 / 400), rel=0.15)   # N(0, 1/fan_in)
    for init, lo, hi in [(neoml.Dnn.XavierUniform(neoml.Random.Random(1)), -0.05, 0.05),
                         (neoml.Dnn.Uniform(-0.3, 0.2, neoml.Random.Random(1)), -0.3, 0.2)]:
        dnn, src, fc, sink = _mlp(engine)
        dnn.initializer = init
        dnn.run(x)
        w = fc.weights.asarray()
        assert lo <= w.min() and w.max() <= hi and w.max() - w.min() > 0.6 * (hi - lo)
    assert neoml.Dnn.Uniform().lower_bound == -1.0 and neoml.Dnn.Uniform().upper_bound == 1.0


def test_custom_loss_calculator_base_is_subclassable_at_import():
    class MyLoss(neoml.Dnn.CustomLossCalculatorBase):
        def calc(self, data, labels):
            return data

    assert MyLoss().calc(1, 2) == 1


# ------------------------------------------------------------------ bad input
def test_a_layer_name_used_twice(engine):
    dnn = neoml.Dnn.Dnn(engine)
    neoml.Dnn.Source(dnn, "x")
    with pytest.raises(ParameterError, match="'x' already exists"):
        neoml.Dnn.Source(dnn, "x")


def test_a_sink_fed_by_nothing(engine):
    dnn, src, fc, sink = _mlp(engine)
    with pytest.raises(ParameterError, match="Sink 'lonely': is fed by nothing"):
        neoml.Dnn.Sink(None, name="lonely")
    dnn.delete_layer("fc")
    with pytest.raises(ParameterError, match="Sink 'out': input 0 is connected to 'fc', "
                                             "which is not in the network"):
        dnn.run({"x": _blob(engine, np.ones((1, 2), np.float32))})


def test_wrong_input_width_to_fully_connected(engine):
    dnn, src, fc, sink = _mlp(engine)
    dnn.run({"x": _blob(engine, np.ones((2, 4), np.float32))})
    with pytest.raises(ShapeError, match=r"FullyConnected 'fc': input 0 must have object "
                                         r"size .* 4, got 6"):
        dnn.run({"x": _blob(engine, np.ones((2, 6), np.float32))})


def test_wrong_dtype(engine):
    dnn, src, fc, sink = _mlp(engine)
    with pytest.raises(DTypeError, match="FullyConnected 'fc': input 0 must be a float32 "
                                         "blob, got int32"):
        dnn.run({"x": _blob(engine, np.ones((2, 4), np.int32))})


def test_labels_of_the_wrong_shape(engine):
    dnn = neoml.Dnn.Dnn(engine)
    x, t = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "t")
    neoml.Dnn.CrossEntropyLoss((neoml.Dnn.FullyConnected(x, 3), t), name="ce")
    inputs = {"x": _blob(engine, np.ones((4, 2), np.float32))}
    inputs["t"] = _blob(engine, np.zeros((3, 1), np.int32))
    with pytest.raises(ShapeError, match=r"CrossEntropyLoss 'ce': int labels must have shape "
                                         r"\(1, 4, 1, 1, 1, 1, 1\).*got \(1, 3, 1"):
        dnn.learn(inputs)
    inputs["t"] = _blob(engine, np.zeros((4, 2), np.float32))
    with pytest.raises(ShapeError, match=r"'ce': float labels must have the response's shape "
                                         r"\(1, 4, 1, 1, 1, 1, 3\), got \(1, 4, 1, 1, 1, 1, 2\)"):
        dnn.learn(inputs)
    inputs["t"] = _blob(engine, np.zeros((4, 1), np.float32).astype(np.int32) + 7)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 2\]"):
        dnn.learn(inputs)


def test_bad_inputs_dict(engine):
    dnn, src, fc, sink = _mlp(engine)
    with pytest.raises(ParameterError, match="no source layer 'nope'"):
        dnn.run({"nope": _blob(engine, np.ones((1, 2), np.float32))})
    with pytest.raises(ParameterError, match="must be a neoml Blob"):
        dnn.run({"x": np.ones((1, 2), np.float32)})
    with pytest.raises(ParameterError, match="element_count must be an int > 0"):
        neoml.Dnn.FullyConnected(src, 0)
    with pytest.raises(ParameterError, match="rate must be in"):
        neoml.Dnn.Dropout(src, rate=1.0)
    with pytest.raises(ParameterError, match="area must be one of"):
        neoml.Dnn.Softmax(src, area="height")
    other = neoml.Dnn.Dnn(engine)
    with pytest.raises(ParameterError, match="belongs to another network"):
        neoml.Dnn.FullyConnected([src, neoml.Dnn.Source(other, "z")], 2)


def test_blob_of_another_engine_is_refused():
    a, b = make_engine("cpu"), make_engine("reference")
    dnn, src, fc, sink = _mlp(a)
    with pytest.raises(ParameterError, match="another math engine"):
        dnn.run({"x": _blob(b, np.ones((1, 2), np.float32))})


# ---------------------------------------------------------------------- threads
@pytest.mark.parametrize("kind", ["cpu", "opencl"])
def test_threads_each_train_their_own_network(kind):
    """Four threads build and train their own network at once; each result equals the
    same training run alone."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int32)

    def train(seed, out):
        me = make_engine(kind)
        dnn = neoml.Dnn.Dnn(me, neoml.Random.Random(seed))
        x, t = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "t")
        fc = neoml.Dnn.FullyConnected(neoml.Dnn.Tanh(neoml.Dnn.FullyConnected(x, 8)), 2,
                                      name="out")
        neoml.Dnn.CrossEntropyLoss((fc, t))
        dnn.solver = neoml.Dnn.AdaptiveGradient(me, learning_rate=0.05)
        for _ in range(10):
            dnn.learn({"x": _blob(me, X), "t": _blob(me, y[:, None])})
        out[seed] = fc.weights.asarray()

    alone, together = {}, {}
    for seed in range(4):
        train(seed, alone)
    threads = [threading.Thread(target=train, args=(seed, together)) for seed in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(together) == list(range(4))
    for seed in range(4):
        np.testing.assert_allclose(together[seed], alone[seed], rtol=1e-5, atol=1e-6)
    assert not np.allclose(alone[0], alone[1])


def test_random_module_is_callable_and_seeds_repeat():
    a, b = neoml.Random(9), neoml.Random.Random(9)
    assert a.seed == b.seed == 9
    assert a.seed32() == b.seed32()
    assert neoml.Random.Random().seed == neoml.Random.DEFAULT_SEED
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        neoml.Random.Random(-1)


def test_every_layer_class_names_its_ops():
    from refnn.ops import all_specs
    specs = all_specs()
    for cls in neoml.Dnn.LAYERS:
        assert isinstance(cls.OPS, tuple)
        for op in cls.OPS:
            assert op in specs, f"{cls.__name__}.OPS names unknown op {op!r}"


def _sgd_step(engine, build):
    """Build with ``build(dnn, x_src, t_src) -> fc`` (weights set to W0), one learn with
    SGD lr=1, momentum 0; return the weight change (= minus the gradient)."""
    W0 = np.array([[0.3, -0.2, 0.1]], np.float32)
    dnn = neoml.Dnn.Dnn(engine)
    x, z, t = (neoml.Dnn.Source(dnn, n) for n in ("x", "z", "t"))
    fc = build(dnn, x, z, t)
    fc.weights = neoml.Blob.asblob(engine, W0, (1, 1, 1, 1, 1, 1, 3), copy=True)
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=1.0, moment_decay_rate=0.0)
    X = np.array([[0.5, 0.1, -0.3], [0.2, -0.4, 0.6]], np.float32)
    Z = X[::-1] * 0.5
    T = np.array([[0.1], [-0.2]], np.float32)
    dnn.learn({"x": _blob(engine, X), "z": _blob(engine, Z), "t": _blob(engine, T)})
    return fc.weights.asarray().reshape(3) - W0[0], X.astype(np.float64), Z.astype(np.float64), \
        T[:, 0].astype(np.float64), W0[0].astype(np.float64)


def test_shared_weights_of_several_inputs_sum_their_gradients(engine):
    def build(dnn, x, z, t):
        fc = neoml.Dnn.FullyConnected([x, z], 1, is_zero_free_term=True, name="fc")
        neoml.Dnn.EuclideanLoss([(fc, 0), t])
        neoml.Dnn.EuclideanLoss([(fc, 1), t])
        return fc
    dW, X, Z, T, W = _sgd_step(engine, build)
    g = X.T @ (X @ W - T) / 2 + Z.T @ (Z @ W - T) / 2        # Huber = d^2/2 for |d| < 1
    np.testing.assert_allclose(dW, -g, rtol=1e-5, atol=1e-7)


def test_an_output_feeding_two_layers_gets_the_sum_of_their_gradients(engine):
    def build(dnn, x, z, t):
        fc = neoml.Dnn.FullyConnected(x, 1, is_zero_free_term=True, name="fc")
        neoml.Dnn.EuclideanLoss([fc, t])
        neoml.Dnn.EuclideanLoss([neoml.Dnn.Tanh(fc), t], loss_weight=2.0)
        return fc
    dW, X, Z, T, W = _sgd_step(engine, build)
    y = X @ W
    dy = (y - T) / 2 + 2.0 * (np.tanh(y) - T) / 2 * (1 - np.tanh(y) ** 2)
    np.testing.assert_allclose(dW, -(X.T @ dy), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------- store / load
def _trained_net(engine, steps):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(8, 4)).astype(np.float32)
    y = rng.integers(0, 3, 8).astype(np.int32)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(4))
    x, t = neoml.Dnn.Source(dnn, "x"), neoml.Dnn.Source(dnn, "t")
    h = neoml.Dnn.Dropout(neoml.Dnn.ReLU(neoml.Dnn.FullyConnected(x, 6, name="fc1")), 0.2)
    fc2 = neoml.Dnn.FullyConnected(h, 3, name="fc2")
    neoml.Dnn.CrossEntropyLoss((fc2, t), name="loss")
    neoml.Dnn.Sink(fc2, name="out")
    dnn.solver = neoml.Dnn.AdaptiveGradient(engine, learning_rate=0.05, ams_grad=True)

    def inputs(e):
        return {"x": _blob(e, X), "t": _blob(e, y[:, None])}
    for _ in range(steps):
        dnn.learn(inputs(engine))
    return dnn, inputs


@pytest.mark.parametrize("kinds", [("cpu", "opencl"), ("opencl", "reference")])
def test_store_and_load_move_a_network_between_engines(kinds, tmp_path):
    a, b = (make_engine(k) for k in kinds)
    dnn, inputs = _trained_net(a, 3)
    dnn.layers["fc1"].note = "kept"
    dnn.store(str(tmp_path / "net.pkl"))
    other = neoml.Dnn.Dnn(b)
    neoml.Dnn.Source(other, "junk")
    other.load(str(tmp_path / "net.pkl"))
    assert sorted(other.layers) == sorted(dnn.layers) and "junk" not in other.layers
    assert other.layers["fc1"].note == "kept"
    np.testing.assert_allclose(other.run(inputs(b))["out"].asarray(),
                               dnn.run(inputs(a))["out"].asarray(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ParameterError, match="no solver"):
        other.load_checkpoint(str(tmp_path / "net.pkl"))


def test_a_checkpoint_resumes_training_exactly(engine, tmp_path):
    straight, inputs = _trained_net(engine, 4)
    resumed, _ = _trained_net(engine, 2)
    resumed.store_checkpoint(str(tmp_path / "ckpt.pkl"))
    fresh = neoml.Dnn.Dnn(engine)
    fresh.load_checkpoint(str(tmp_path / "ckpt.pkl"))
    assert isinstance(fresh.solver, neoml.Dnn.AdaptiveGradient) and fresh.solver.ams_grad
    for _ in range(2):
        fresh.learn(inputs(engine))
    for name in ("fc1", "fc2"):
        np.testing.assert_allclose(fresh.layers[name].weights.asarray(),
                                   straight.layers[name].weights.asarray(), rtol=1e-6,
                                   atol=1e-7)
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps({"format": "other"}))
    with pytest.raises(ParameterError, match="not a network stored by refnn.neoml"):
        fresh.load(str(tmp_path / "bad.pkl"))
