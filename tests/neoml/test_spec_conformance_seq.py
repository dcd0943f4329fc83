"""The recurrent / sequence / embedding layers of refnn.neoml (issue 4, attention aside)
against the NeoML Python API spec (neoml-dnn-python-api.txt) and the behaviour notes, one
table row per layer:

* the constructor: argument names, order and defaults exactly as the spec's signature
  (copied below), and a layer built with the defaults reads them back;
* every property the spec lists is readable and settable: setting then reading gives the
  value back; a bad value raises an error naming the layer and leaves the old value;
* the weight blobs in NeoML's shapes (filled at the first run, settable, a blob of the
  wrong shape rejected naming the layer) and NeoML's gate order, checked against
  independent NumPy transcriptions of NeoML's equations (one step, every engine);
* the output shapes of the spec;
* every op a layer calls in a forward + backward pass is in its ``OPS`` tuple (what
  ``refnn coverage`` reads), and every ``OPS`` entry is called by some configuration.
"""
import ast
import inspect

import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import RefnnError

D = neoml.Dnn

# Spec signatures, verbatim from neoml-dnn-python-api.txt (Lstm's signature spells the
# gate activation ``activation``; its parameter list calls it recurrent_activation, which
# refnn also offers as a property alias).
SPEC_SIGNATURES = {
    "Lstm": "(input_layer, hidden_size=1, dropout_rate=0.0, activation='sigmoid', "
            "reverse_seq=False, name=None)",
    "Qrnn": "(input_layers, pooling_type='f', hidden_size=1, window_size=1, stride=1, "
            "paddings=(0, 0), activation='tanh', dropout=0.0, mode='direct', name=None)",
    "Gru": "(input_layer, hidden_size, name=None)",
    "Irnn": "(input_layer, hidden_size=1, identity_scale=1.0, input_weight_std=0.001, "
            "reverse_seq=False, name=None)",
    "IndRnn": "(input_layer, hidden_size=1, dropout_rate=0.0, reverse_sequence=False, "
              "activation='relu', name=None)",
    "CumSum": "(input_layer, dimension='channels', reverse=False, name=None)",
    "AccumulativeLookup": "(input_layer, count, size, name=None)",
    "MultichannelLookup": "(input_layers, dimensions=None, name=None)",
    "PositionalEmbedding": "(input_layer, type_name, name=None)",
    "TiedEmbeddings": "(input_layers, embeddings_layer_name, channel, name=None)",
    "SubSequence": "(input_layer, start_pos=0, length=1, name=None)",
    "ReverseSequence": "(input_layer, name=None)",
    "SequenceSum": "(input_layer, name=None)",
}

#: the properties each layer's spec section lists (blob properties included)
SPEC_PROPERTIES = {
    "Lstm": {"activation", "dropout", "hidden_size", "input_free_term", "input_weights",
             "recurrent_free_term", "recurrent_weights", "reverse_sequence"},
    "Qrnn": {"activation", "dropout", "filter", "free_term", "hidden_size", "padding_back",
             "padding_front", "recurrent_mode", "stride", "window_size"},
    "Gru": {"gate_free_term", "gate_weights", "hidden_size", "main_free_term",
            "main_weights"},
    "Irnn": {"hidden_size", "identity_scale", "input_free_term", "input_weight_std",
             "input_weights", "recurrent_free_term", "recurrent_weights", "reverse_sequence"},
    "IndRnn": {"activation", "bias", "dropout_rate", "hidden_size", "input_weights",
               "recurrent_weights", "reverse_sequence"},
    "CumSum": {"dimension", "reverse"},
    "AccumulativeLookup": {"count", "size"},
    "MultichannelLookup": {"dimensions"},
    "PositionalEmbedding": {"addends", "type"},
    "TiedEmbeddings": {"channel", "embeddings_layer_name"},
    "SubSequence": {"length", "start_pos"},
    "ReverseSequence": set(),
    "SequenceSum": set(),
}

#: constructor argument -> the property that reads it back (where the names differ);
#: Qrnn's ``paddings`` reads back as (padding_front, padding_back)
PROPERTY_OF_ARG = {
    "Lstm": {"dropout_rate": "dropout", "reverse_seq": "reverse_sequence"},
    "Irnn": {"reverse_seq": "reverse_sequence"},
    "Qrnn": {"mode": "recurrent_mode", "paddings": ("padding_front", "padding_back")},
    "PositionalEmbedding": {"type_name": "type"},
}

# name -> (required constructor args, {property: a new valid value},
#          [(property, a bad value)])
ROWS = {
    "Lstm": ({}, dict(hidden_size=5, dropout=0.25, reverse_sequence=True,
                      activation="hard_sigmoid"),
             [("hidden_size", 0), ("hidden_size", -2), ("hidden_size", 1.5),
              ("dropout", 1.0), ("dropout", -0.1), ("dropout", "x"),
              ("activation", "bogus")]),
    "Qrnn": ({}, dict(pooling_type="ifo", hidden_size=4, window_size=3, stride=2,
                      padding_front=1, padding_back=2, activation="relu", dropout=0.5,
                      recurrent_mode="bidirectional_sum"),
             [("hidden_size", 0), ("window_size", 0), ("stride", 0), ("padding_front", -1),
              ("padding_back", 1.5), ("activation", "softsign"), ("dropout", 1.5),
              ("dropout", "x"), ("recurrent_mode", "sideways"), ("pooling_type", "g")]),
    "Gru": (dict(hidden_size=2), dict(hidden_size=6),
            [("hidden_size", 0), ("hidden_size", "3")]),
    "Irnn": ({}, dict(hidden_size=4, identity_scale=0.5, input_weight_std=0.1,
                      reverse_sequence=True),
             [("hidden_size", 0), ("identity_scale", "x"), ("input_weight_std", -1.0),
              ("input_weight_std", None)]),
    "IndRnn": ({}, dict(hidden_size=4, dropout_rate=0.3, reverse_sequence=True,
                        activation="sigmoid"),
               [("hidden_size", 0), ("dropout_rate", 1.0), ("dropout_rate", -0.5),
                ("activation", "tanh_ish")]),
    "CumSum": ({}, dict(dimension="batch_length", reverse=True),
               [("dimension", "time"), ("dimension", 6)]),
    "AccumulativeLookup": (dict(count=5, size=3), dict(count=7, size=2),
                           [("count", 0), ("size", -1), ("count", 2.0)]),
    "MultichannelLookup": (dict(dimensions=[(5, 3)]), dict(dimensions=[(4, 2), (6, 3)]),
                           [("dimensions", [(0, 3)]), ("dimensions", [(3, -1)]),
                            ("dimensions", "x"), ("dimensions", [(1, 2, 3)])]),
    "PositionalEmbedding": (dict(type_name="transformers"), dict(type="learnable_addition"),
                            [("type", "rotary"), ("type", None)]),
    "TiedEmbeddings": (dict(embeddings_layer_name="emb", channel=0),
                       dict(embeddings_layer_name="other", channel=2),
                       [("channel", -1), ("channel", 1.0), ("embeddings_layer_name", 3)]),
    "SubSequence": ({}, dict(start_pos=-2, length=-3),
                    [("start_pos", 1.5), ("length", "2"), ("length", None)]),
    "ReverseSequence": ({}, {}, []),
    "SequenceSum": ({}, {}, []),
}


def _layer(engine, name, **override):
    dnn = D.Dnn(engine, neoml.Random.Random(5))
    src = D.Source(dnn, "x")
    args = dict(ROWS[name][0], **override)
    return getattr(D, name)(src, name="L_" + name, **args)


def _parse(sig):
    args = ast.parse(f"def f{sig}: pass").body[0].args
    names = [a.arg for a in args.args]
    defaults = [ast.literal_eval(d) for d in args.defaults]
    return names, dict(zip(names[len(names) - len(defaults):], defaults))


def _read(layer, name, arg):
    prop = PROPERTY_OF_ARG.get(name, {}).get(arg, arg)
    if isinstance(prop, tuple):
        return tuple(getattr(layer, p) for p in prop)
    return getattr(layer, prop)


def _same(got, value):
    if isinstance(value, (tuple, list)):
        return [tuple(v) if isinstance(v, (tuple, list)) else v for v in got] == \
            [tuple(v) if isinstance(v, (tuple, list)) else v for v in value]
    return got == value


def test_the_table_covers_every_layer_of_the_issue():
    issue = {"Lstm", "Gru", "Irnn", "IndRnn", "Qrnn", "SubSequence", "ReverseSequence",
             "SequenceSum", "CumSum", "MultichannelLookup", "AccumulativeLookup",
             "PositionalEmbedding", "TiedEmbeddings"}
    assert set(ROWS) == set(SPEC_SIGNATURES) == set(SPEC_PROPERTIES) == issue
    for name in ROWS:
        assert issubclass(getattr(D, name), D.Layer)


@pytest.mark.parametrize("name", sorted(SPEC_SIGNATURES))
def test_constructor_matches_the_spec_signature(name):
    names, defaults = _parse(SPEC_SIGNATURES[name])
    params = list(inspect.signature(getattr(D, name).__init__).parameters.values())[1:]
    assert [p.name for p in params] == names
    got = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    assert got == defaults


@pytest.mark.parametrize("name", sorted(SPEC_PROPERTIES))
def test_every_spec_property_exists_with_a_setter(name):
    cls = getattr(D, name)
    for prop in SPEC_PROPERTIES[name]:
        attr = inspect.getattr_static(cls, prop, None)
        assert isinstance(attr, property), (name, prop)
        assert attr.fset is not None, f"{name}.{prop} is read-only"


@pytest.mark.parametrize("name", sorted(SPEC_SIGNATURES))
def test_defaults_read_back_through_the_properties(engine, name):
    layer = _layer(engine, name)
    _, defaults = _parse(SPEC_SIGNATURES[name])
    values = dict(defaults, **ROWS[name][0])
    values.pop("name")
    for arg, value in values.items():
        assert _same(_read(layer, name, arg), value), (arg, _read(layer, name, arg))
    assert layer.name == "L_" + name


@pytest.mark.parametrize("name", sorted(n for n in ROWS if ROWS[n][1]))
def test_every_property_is_settable_and_reads_back(engine, name):
    layer = _layer(engine, name)
    for prop, value in ROWS[name][1].items():
        setattr(layer, prop, value)
        assert _same(getattr(layer, prop), value), (prop, getattr(layer, prop))
    # the properties together are the layer's state: all read back after all were set
    for prop, value in ROWS[name][1].items():
        assert _same(getattr(layer, prop), value), prop


def test_the_spec_properties_are_all_in_the_table():
    """Every scalar property of the spec is exercised by ROWS (blob properties by
    BLOB_ROWS below)."""
    for name, props in SPEC_PROPERTIES.items():
        scalars = props - set(BLOB_ROWS.get(name, ({}, None, {}))[2])
        assert scalars <= set(ROWS[name][1]), (name, scalars - set(ROWS[name][1]))


@pytest.mark.parametrize("name,prop,bad", [(n, p, b) for n in sorted(ROWS)
                                           for p, b in ROWS[n][2]])
def test_bad_property_values_raise_errors_naming_the_layer(engine, name, prop, bad):
    layer = _layer(engine, name)
    before = getattr(layer, prop)
    with pytest.raises(RefnnError, match=f"{name} 'L_{name}'.*{prop}"):
        setattr(layer, prop, bad)
    assert _same(getattr(layer, prop), before), "a rejected value leaves the property as it was"


#: property -> constructor argument, where the names differ
ARG_OF_PROPERTY = {"dropout": {"Lstm": "dropout_rate"}, "recurrent_mode": {"Qrnn": "mode"},
                   "type": {"PositionalEmbedding": "type_name"}}


def _ctor_rows():
    for n in sorted(ROWS):
        params = inspect.signature(getattr(D, n).__init__).parameters
        for p, b in ROWS[n][2]:
            arg = ARG_OF_PROPERTY.get(p, {}).get(n, p)
            if arg in params:
                yield n, arg, b


@pytest.mark.parametrize("name,arg,bad", list(_ctor_rows()))
def test_bad_constructor_values_raise_errors_naming_the_layer(engine, name, arg, bad):
    with pytest.raises(RefnnError, match=f"{name} 'L_{name}'.*{arg}"):
        _layer(engine, name, **{arg: bad})


@pytest.mark.parametrize("bad", [(1,), (0, -1), (1.5, 0), "ab"])
def test_qrnn_bad_paddings_name_the_layer(engine, bad):
    with pytest.raises(RefnnError, match="Qrnn 'L_Qrnn'.*paddings"):
        _layer(engine, "Qrnn", paddings=bad)


# ------------------------------------------------------------------ blob properties
I_SIZE = 5


def _blob(engine, a):
    a = np.ascontiguousarray(a)
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _rand(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(0, 0.5, shape).astype(dtype)


# name -> (constructor overrides, input blob shape, {property: NeoML's blob shape})
BLOB_ROWS = {
    "Lstm": (dict(hidden_size=3), (4, 2, 1, 1, 1, 1, I_SIZE),
             {"input_weights": (1, 12, 1, 1, 1, 1, I_SIZE),
              "recurrent_weights": (1, 12, 1, 1, 1, 1, 3),
              "input_free_term": (12, 1, 1, 1, 1, 1, 1),
              "recurrent_free_term": (12, 1, 1, 1, 1, 1, 1)}),
    "Gru": (dict(hidden_size=3), (4, 2, 1, 1, 1, 1, I_SIZE),
            {"gate_weights": (1, 6, 1, 1, 1, 1, I_SIZE + 3),
             "main_weights": (1, 3, 1, 1, 1, 1, I_SIZE + 3),
             "gate_free_term": (6, 1, 1, 1, 1, 1, 1),
             "main_free_term": (3, 1, 1, 1, 1, 1, 1)}),
    "Irnn": (dict(hidden_size=3), (4, 2, 1, 1, 1, 1, I_SIZE),
             {"input_weights": (1, 3, 1, 1, 1, 1, I_SIZE),
              "recurrent_weights": (1, 3, 1, 1, 1, 1, 3),
              "input_free_term": (3, 1, 1, 1, 1, 1, 1),
              "recurrent_free_term": (3, 1, 1, 1, 1, 1, 1)}),
    "IndRnn": (dict(hidden_size=3), (4, 2, 1, 1, 1, 1, I_SIZE),
               {"input_weights": (1, 3, 1, 1, 1, 1, I_SIZE),
                "recurrent_weights": (1, 1, 1, 1, 1, 1, 3),
                "bias": (3, 1, 1, 1, 1, 1, 1)}),
    "Qrnn": (dict(hidden_size=3, pooling_type="fo", window_size=2),
             (4, 2, 1, 1, 1, 1, I_SIZE),
             {"filter": (1, 9, 1, 2, 1, 1, I_SIZE), "free_term": (9, 1, 1, 1, 1, 1, 1)}),
    "PositionalEmbedding": (dict(type_name="learnable_addition"), (1, 2, 4, 1, 1, 1, 3),
                            {"addends": (1, 1, 4, 1, 1, 1, 3)}),
}


def _run(layer, engine, x):
    if "out" not in layer._dnn.layers:
        D.Sink(layer, name="out")
    return layer._dnn.run({"x": _blob(engine, x)})["out"]


@pytest.mark.parametrize("name", sorted(BLOB_ROWS))
def test_weight_blobs_have_neoml_shapes_and_are_settable(engine, name):
    overrides, in_shape, props = BLOB_ROWS[name]
    layer = _layer(engine, name, **overrides)
    for prop in props:
        assert getattr(layer, prop) is None, "empty before the first run (NeoML)"
    _run(layer, engine, _rand(in_shape))
    for i, (prop, shape) in enumerate(props.items()):
        got = getattr(layer, prop)
        assert tuple(int(v) for v in got.shape) == shape, prop
        new = _rand(shape, seed=10 + i)
        setattr(layer, prop, _blob(engine, new))
        np.testing.assert_array_equal(getattr(layer, prop).asarray(keep_dims=True), new)
        # (addends take any ListSize and object shape -- they follow the input -- but
        # never a BatchLength or BatchWidth > 1)
        wrong = _rand((2, 1, 1, 1, 1, 1, 97))
        with pytest.raises(RefnnError, match=f"{name} 'L_{name}'.*{prop}"):
            setattr(layer, prop, _blob(engine, wrong))
        np.testing.assert_array_equal(getattr(layer, prop).asarray(keep_dims=True), new,
                                      err_msg="a rejected blob leaves the weights as they were")
    _run(layer, engine, _rand(in_shape, 3))        # still runs with the set weights


def test_multichannel_lookup_embeddings_shapes(engine):
    layer = _layer(engine, "MultichannelLookup", dimensions=[(5, 3), (4, 2)])
    assert layer.get_embeddings(0) is None
    ids = np.array([[1, 3], [4, 0]], np.int32).reshape(1, 2, 1, 1, 1, 1, 2)
    _run(layer, engine, ids)
    for i, (c, s) in enumerate([(5, 3), (4, 2)]):
        assert tuple(int(v) for v in layer.get_embeddings(i).shape) == (c, 1, 1, 1, 1, 1, s)
        table = _rand((c, 1, 1, 1, 1, 1, s), seed=i)
        layer.set_embeddings(i, _blob(engine, table))
        np.testing.assert_array_equal(layer.get_embeddings(i).asarray(keep_dims=True), table)
        with pytest.raises(RefnnError, match="MultichannelLookup 'L_MultichannelLookup'"):
            layer.set_embeddings(i, _blob(engine, _rand((c + 1, 1, 1, 1, 1, 1, s))))


# ------------------------------------------------------------------ NeoML gate order
def _sig(z):
    return 1 / (1 + np.exp(-z))


def _one_step(engine, layer, x, *extra):
    """Run a network whose source x feeds layer (extra sources s1, s2, ...)."""
    feeds = {"x": _blob(engine, x)}
    for k, a in enumerate(extra, 1):
        feeds[f"s{k}"] = _blob(engine, a)
    return layer._dnn.run(feeds)


def test_lstm_gate_order_is_neoml_s(engine):
    """Blocks main (tanh), forget, input, output; both free terms added; initial state
    inputs 1 (cell) and 2 (previous output)."""
    H, I, N = 3, 4, 2
    dnn = D.Dnn(engine, neoml.Random.Random(1))
    srcs = [D.Source(dnn, "x"), D.Source(dnn, "s1"), D.Source(dnn, "s2")]
    lstm = D.Lstm(srcs, H, name="lstm")
    D.Sink((lstm, 0), name="h")
    D.Sink((lstm, 1), name="c")
    W, U = _rand((4 * H, I), 1), _rand((4 * H, H), 2)
    bi, br = _rand(4 * H, 3), _rand(4 * H, 4)
    lstm.input_weights = _blob(engine, W.reshape(1, 4 * H, 1, 1, 1, 1, I))
    lstm.recurrent_weights = _blob(engine, U.reshape(1, 4 * H, 1, 1, 1, 1, H))
    lstm.input_free_term = _blob(engine, bi.reshape(4 * H, 1, 1, 1, 1, 1, 1))
    lstm.recurrent_free_term = _blob(engine, br.reshape(4 * H, 1, 1, 1, 1, 1, 1))
    x, c0, h0 = _rand((1, N, I), 5), _rand((N, H), 6), _rand((N, H), 7)
    out = _one_step(engine, lstm, x.reshape(1, N, 1, 1, 1, 1, I),
                    c0.reshape(1, N, 1, 1, 1, 1, H), h0.reshape(1, N, 1, 1, 1, 1, H))
    a = x[0].astype(np.float64) @ W.T + h0 @ U.T + bi + br
    main, forget, inp, outg = (a[:, k * H:(k + 1) * H] for k in range(4))
    c = _sig(forget) * c0 + _sig(inp) * np.tanh(main)
    h = _sig(outg) * np.tanh(c)
    np.testing.assert_allclose(out["c"].asarray().reshape(N, H), c, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["h"].asarray().reshape(N, H), h, rtol=1e-4, atol=1e-5)


def test_gru_gate_order_is_neoml_s(engine):
    """gate rows [update; reset] over [x, h_prev]; main over [x, r * h_prev];
    h = (1 - z) * tanh(main) + z * h_prev."""
    H, I, N = 3, 4, 2
    dnn = D.Dnn(engine, neoml.Random.Random(1))
    srcs = [D.Source(dnn, "x"), D.Source(dnn, "s1")]
    gru = D.Gru(srcs, H, name="gru")
    D.Sink(gru, name="h")
    G, M = _rand((2 * H, I + H), 1), _rand((H, I + H), 2)
    bg, bm = _rand(2 * H, 3), _rand(H, 4)
    gru.gate_weights = _blob(engine, G.reshape(1, 2 * H, 1, 1, 1, 1, I + H))
    gru.main_weights = _blob(engine, M.reshape(1, H, 1, 1, 1, 1, I + H))
    gru.gate_free_term = _blob(engine, bg.reshape(2 * H, 1, 1, 1, 1, 1, 1))
    gru.main_free_term = _blob(engine, bm.reshape(H, 1, 1, 1, 1, 1, 1))
    x, h0 = _rand((N, I), 5).astype(np.float64), _rand((N, H), 6).astype(np.float64)
    out = _one_step(engine, gru, x.reshape(1, N, 1, 1, 1, 1, I).astype(np.float32),
                    h0.reshape(1, N, 1, 1, 1, 1, H).astype(np.float32))
    g = np.concatenate([x, h0], axis=1) @ G.T + bg
    z, r = _sig(g[:, :H]), _sig(g[:, H:])
    n = np.tanh(np.concatenate([x, r * h0], axis=1) @ M.T + bm)
    np.testing.assert_allclose(out["h"].asarray().reshape(N, H), (1 - z) * n + z * h0,
                               rtol=1e-4, atol=1e-5)


def test_indrnn_and_irnn_blobs_are_neoml_s(engine):
    """IndRnn: h = act(W x + bias + U * h_prev) with U the (1,1,1,1,1,1,H) vector;
    Irnn: h = relu(Wi x + bi + Wr h_prev + br) -- two steps each."""
    H, I, N, T = 3, 4, 2, 2
    x = _rand((T, N, I), 5).astype(np.float64)
    dnn = D.Dnn(engine, neoml.Random.Random(1))
    src = D.Source(dnn, "x")
    ind = D.IndRnn(src, H, activation="sigmoid", name="ind")
    irnn = D.Irnn(src, H, name="irnn")
    D.Sink(ind, name="ind_out")
    D.Sink(irnn, name="irnn_out")
    W, U, b = _rand((H, I), 1), _rand(H, 2), _rand(H, 3)
    ind.input_weights = _blob(engine, W.reshape(1, H, 1, 1, 1, 1, I))
    ind.recurrent_weights = _blob(engine, U.reshape(1, 1, 1, 1, 1, 1, H))
    ind.bias = _blob(engine, b.reshape(H, 1, 1, 1, 1, 1, 1))
    Wi, Wr, bi, br = _rand((H, I), 4), _rand((H, H), 5), _rand(H, 6), _rand(H, 7)
    irnn.input_weights = _blob(engine, Wi.reshape(1, H, 1, 1, 1, 1, I))
    irnn.recurrent_weights = _blob(engine, Wr.reshape(1, H, 1, 1, 1, 1, H))
    irnn.input_free_term = _blob(engine, bi.reshape(H, 1, 1, 1, 1, 1, 1))
    irnn.recurrent_free_term = _blob(engine, br.reshape(H, 1, 1, 1, 1, 1, 1))
    out = _one_step(engine, ind, x.reshape(T, N, 1, 1, 1, 1, I).astype(np.float32))
    h1, h2 = np.zeros((N, H)), np.zeros((N, H))
    ref1, ref2 = [], []
    for t in range(T):
        h1 = _sig(x[t] @ W.T + b + U * h1)
        h2 = np.maximum(x[t] @ Wi.T + bi + h2 @ Wr.T + br, 0)
        ref1.append(h1)
        ref2.append(h2)
    np.testing.assert_allclose(out["ind_out"].asarray().reshape(T, N, H), np.stack(ref1),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["irnn_out"].asarray().reshape(T, N, H), np.stack(ref2),
                               rtol=1e-4, atol=1e-5)


def test_qrnn_gate_order_is_neoml_s(engine):
    """filter blocks update, forget, output ('fo', window 1): z = tanh, f, o = sigmoid;
    c_t = f c_{t-1} + (1 - f) z; h_t = o c_t."""
    H, I, N, T = 2, 3, 2, 3
    dnn = D.Dnn(engine, neoml.Random.Random(1))
    src = D.Source(dnn, "x")
    q = D.Qrnn(src, "fo", H, name="q")
    D.Sink(q, name="h")
    Wf, b = _rand((3 * H, I), 1), _rand(3 * H, 2)
    q.filter = _blob(engine, Wf.reshape(1, 3 * H, 1, 1, 1, 1, I))
    q.free_term = _blob(engine, b.reshape(3 * H, 1, 1, 1, 1, 1, 1))
    x = _rand((T, N, I), 3).astype(np.float64)
    out = _one_step(engine, q, x.reshape(T, N, 1, 1, 1, 1, I).astype(np.float32))
    c, ref = np.zeros((N, H)), []
    for t in range(T):
        a = x[t] @ Wf.T + b
        z, f, o = np.tanh(a[:, :H]), _sig(a[:, H:2 * H]), _sig(a[:, 2 * H:])
        c = f * c + (1 - f) * z
        ref.append(o * c)
    np.testing.assert_allclose(out["h"].asarray().reshape(T, N, H), np.stack(ref),
                               rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ output shapes
# name -> (constructor overrides, input shape, the spec's output shape)
SHAPE_ROWS = {
    "Lstm": (dict(hidden_size=3), (4, 2, 3, 1, 2, 1, 2), (4, 2, 3, 1, 1, 1, 3)),
    "Gru": (dict(hidden_size=3), (4, 2, 3, 1, 2, 1, 2), (4, 2, 3, 1, 1, 1, 3)),
    "Irnn": (dict(hidden_size=3), (4, 2, 3, 1, 2, 1, 2), (4, 2, 3, 1, 1, 1, 3)),
    "IndRnn": (dict(hidden_size=3), (4, 2, 3, 1, 2, 1, 2), (4, 2, 3, 1, 1, 1, 3)),
    # (T + p0 + p1 - window) // stride + 1 steps (the spec's printed formula lost its
    # minus signs); 2 * hidden_size channels for bidirectional_concat
    "Qrnn": (dict(hidden_size=3, window_size=3, stride=2, paddings=(1, 2),
                  mode="bidirectional_concat"), (8, 2, 1, 1, 1, 1, 4),
             (5, 2, 1, 1, 1, 1, 6)),
    "SubSequence": (dict(start_pos=1, length=2), (5, 2, 1, 1, 2, 1, 3), (2, 2, 1, 1, 2, 1, 3)),
    "ReverseSequence": ({}, (5, 2, 1, 1, 2, 1, 3), (5, 2, 1, 1, 2, 1, 3)),
    "SequenceSum": ({}, (5, 2, 1, 1, 2, 1, 3), (1, 2, 1, 1, 2, 1, 3)),
    "CumSum": (dict(dimension="width"), (2, 2, 1, 1, 3, 1, 3), (2, 2, 1, 1, 3, 1, 3)),
    "PositionalEmbedding": ({}, (1, 2, 4, 1, 1, 1, 3), (1, 2, 4, 1, 1, 1, 3)),
}


@pytest.mark.parametrize("name", sorted(SHAPE_ROWS))
def test_output_shape_is_the_spec_s(engine, name):
    overrides, shape, expected = SHAPE_ROWS[name]
    y = _run(_layer(engine, name, **overrides), engine, _rand(shape))
    assert tuple(int(v) for v in y.shape) == expected


def test_lookup_output_shapes(engine):
    """AccumulativeLookup (BL, BW, LS, 1, 1, 1, size); MultichannelLookup Channels =
    sum of sizes + the extra channels; TiedEmbeddings one output per input, Channels =
    the table's count."""
    ids = np.array([0, 4, 2, 1, 3, 3], np.int32).reshape(1, 3, 1, 1, 1, 1, 2)
    y = _run(_layer(engine, "AccumulativeLookup"), engine, ids)
    assert tuple(int(v) for v in y.shape) == (1, 3, 1, 1, 1, 1, 3)
    ids3 = np.array([0, 3, 7, 4, 1, 9], np.int32).reshape(1, 2, 1, 1, 1, 1, 3)
    y = _run(_layer(engine, "MultichannelLookup", dimensions=[(5, 3), (4, 2)]), engine, ids3)
    assert tuple(int(v) for v in y.shape) == (1, 2, 1, 1, 1, 1, 3 + 2 + 1)
    dnn = D.Dnn(engine, neoml.Random.Random(2))
    ids_src, a, b = D.Source(dnn, "ids"), D.Source(dnn, "a"), D.Source(dnn, "b")
    D.MultichannelLookup(ids_src, [(7, 4)], name="emb")
    tied = D.TiedEmbeddings([a, b], "emb", 0, name="tied")
    D.Sink((tied, 0), name="y0")
    D.Sink((tied, 1), name="y1")
    out = dnn.run({"ids": _blob(engine, np.zeros((1, 1, 1, 1, 1, 1, 1), np.int32)),
                   "a": _blob(engine, _rand((2, 3, 1, 1, 1, 1, 4))),
                   "b": _blob(engine, _rand((1, 5, 1, 1, 1, 1, 4)))})
    assert tuple(int(v) for v in out["y0"].shape) == (2, 3, 1, 1, 1, 1, 7)
    assert tuple(int(v) for v in out["y1"].shape) == (1, 5, 1, 1, 1, 1, 7)


# ------------------------------------------------------------------ OPS tuples
def _record_ops(be):
    called = set()
    original = be.op

    def op(name):
        called.add(name.split(".")[0])
        return original(name)
    be.op = op
    return called


# (layer, constructor overrides, input shape or int ids, training) -- together the
# configurations reach every entry of every OPS tuple
OPS_RUNS = [
    ("Lstm", dict(hidden_size=3, dropout_rate=0.5), (3, 2, 1, 1, 1, 1, 4)),
    ("Gru", dict(hidden_size=3), (3, 2, 1, 1, 1, 1, 4)),
    ("Irnn", dict(hidden_size=3), (3, 2, 1, 1, 1, 1, 4)),
    ("IndRnn", dict(hidden_size=3, dropout_rate=0.5), (3, 2, 1, 1, 1, 1, 4)),
] + [("Qrnn", dict(hidden_size=2, activation=act, dropout=0.5, pooling_type="ifo",
                   mode="bidirectional_concat"), (3, 2, 1, 1, 1, 1, 4))
     for act in ("linear", "elu", "relu", "leaky_relu", "abs", "sigmoid", "tanh",
                 "hard_tanh", "hard_sigmoid", "hswish", "gelu")] + [
    ("SubSequence", dict(start_pos=1, length=2), (4, 2, 1, 1, 1, 1, 3)),
    ("ReverseSequence", {}, (4, 2, 1, 1, 1, 1, 3)),
    ("SequenceSum", {}, (4, 2, 1, 1, 1, 1, 3)),
    ("CumSum", {}, (4, 2, 1, 1, 1, 1, 3)),
    ("AccumulativeLookup", {}, "ids"),
    ("MultichannelLookup", dict(dimensions=[(5, 3)]), "ids"),
    ("PositionalEmbedding", {}, (1, 2, 4, 1, 1, 1, 2)),
    ("PositionalEmbedding", dict(type_name="learnable_addition"), (1, 2, 4, 1, 1, 1, 2)),
]


def _ops_of_run(engine, name, overrides, shape):
    layer = _layer(engine, name, **overrides)
    D.Sink(layer, name="out")
    if shape == "ids":
        x = np.array([[1, 0], [4, 2]], np.int32).reshape(1, 2, 1, 1, 1, 1, 2)
    else:
        x = _rand(shape)
    be = engine.backend
    called = _record_ops(be)
    try:
        xs = [be.asarray(x, dtype=x.dtype)]
        ys = layer._forward(be, xs, True)
        layer._backward(be, [y if y is None else be.asarray(np.ones(tuple(y.shape),
                                                                     np.float32))
                             for y in ys], [True])
    finally:
        del be.op
    return layer, called


def test_ops_tuples_match_what_the_layers_call(engine):
    reached = {}
    for name, overrides, shape in OPS_RUNS:
        layer, called = _ops_of_run(engine, name, overrides, shape)
        extra = called - set(type(layer).OPS)
        assert not extra, f"{name} calls {sorted(extra)} outside its OPS {type(layer).OPS}"
        reached.setdefault(name, set()).update(called)
    # TiedEmbeddings: forward + backward through linear
    dnn = D.Dnn(engine, neoml.Random.Random(2))
    ids_src, a = D.Source(dnn, "ids"), D.Source(dnn, "a")
    emb = D.MultichannelLookup(ids_src, [(7, 4)], name="emb")
    tied = D.TiedEmbeddings(a, "emb", 0, name="tied")
    be = engine.backend
    emb._forward(be, [be.asarray(np.zeros((1, 1, 1, 1, 1, 1, 1), np.int32),
                                 dtype=np.int32)], False)
    called = _record_ops(be)
    try:
        (y,) = tied._forward(be, [be.asarray(_rand((2, 3, 1, 1, 1, 1, 4)))], True)
        tied._backward(be, [be.asarray(np.ones(tuple(y.shape), np.float32))], [True])
    finally:
        del be.op
    assert called == set(D.TiedEmbeddings.OPS)
    reached["TiedEmbeddings"] = called
    # every OPS entry is used by some configuration (no dead coverage claims)
    for name in ROWS:
        ops = set(getattr(D, name).OPS)
        assert ops <= reached[name], (name, ops - reached[name])


# ------------------------------------------------------------------ NeoML's initialisation
def test_positional_transformers_table_is_neoml_s(engine):
    """CPositionalEmbeddingLayer::fillPositionalEmbedding: channel i of position p is
    sin(p / 10000^(i/D)) for even i, cos(p / 10000^((i-1)/D)) for odd i."""
    LS, Dm = 7, 5
    layer = _layer(engine, "PositionalEmbedding")
    y = _run(layer, engine, np.zeros((1, 2, LS, 1, 1, 1, Dm), np.float32)).asarray(
        keep_dims=True)
    ref = np.array([[np.sin(p / 10000 ** (i / Dm)) if i % 2 == 0
                     else np.cos(p / 10000 ** ((i - 1) / Dm)) for i in range(Dm)]
                    for p in range(LS)])
    for n in range(2):
        np.testing.assert_allclose(y[0, n, :, 0, 0, 0], ref, rtol=1e-5, atol=1e-6)


def test_learnable_addends_start_as_neoml_s(engine):
    """CPositionalEmbeddingLayer::initializeLearnableAddition: U(-0.02, 0.02) (BERT's),
    whatever the network's initializer."""
    layer = _layer(engine, "PositionalEmbedding", type_name="learnable_addition")
    layer._dnn.initializer = D.Uniform(5.0, 6.0)
    _run(layer, engine, np.zeros((1, 2, 40, 1, 1, 1, 25), np.float32))
    a = layer.addends.asarray()
    assert np.all(np.abs(a) <= 0.02) and a.std() > 0.005


@pytest.mark.parametrize("K,std", [(1, 1.0), (8, 0.5), (18, 1 / 3)])
def test_accumulative_lookup_table_starts_as_neoml_s(engine, K, std):
    """CBaseLayer::InitializeParamBlob: Xavier with input size max(ObjectSize / 2, 1),
    ObjectSize = the K ids per object -- N(0, 1 / max(K // 2, 1))."""
    layer = _layer(engine, "AccumulativeLookup", count=100, size=100)
    _run(layer, engine, np.zeros((1, 1, 1, 1, 1, 1, K), np.int32))
    table = engine.backend.to_host(layer._params["table"])
    assert abs(table.std() - std) < 0.03 * std and abs(table.mean()) < 0.03 * std
