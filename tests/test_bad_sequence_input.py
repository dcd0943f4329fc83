"""Bad sequence input raises a clear error naming the layer -- never a crash or a silent
wrap-around (issue 4, "Done when") -- for the recurrent, sequence and embedding layers of
both APIs on every engine / backend:

* sequence blobs / tensors of the wrong rank or layout (a 3-D array where a 7-D blob is
  expected, a (features, steps, batch) tensor, an object size the weights were not made
  for, a BatchLength where the layer reads ListSize, a sequence of 0 steps);
* token ids outside the vocabulary (negative, = the table size, INT_MAX, and float ids
  the int cast cannot represent: NaN, inf, 1e10);
* a hidden size of 0 (constructor and property setter);
* an initial state that does not match the sequences (hidden size, batch, BatchLength,
  dtype, a Tensor that is not one).

After each error the same layer still runs a good input and gives the result it gave
before (nothing half-updated, the carried state of neon's layers included).
Also the neon recurrent layers' constructor signatures against real neon's.
"""
import inspect

import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import DTypeError, ParameterError, RefnnError, ShapeError
from refnn.neon import NervanaObject
from refnn.neon.backends import gen_backend
from refnn.neon.initializers import Gaussian
from refnn.neon.layers import (GRU, LSTM, BiLSTM, BiRNN, DeepBiLSTM, DeepBiRNN,
                               LookupTable, Recurrent, RecurrentLast, RecurrentMean,
                               RecurrentOutput, RecurrentSum)

D = neoml.Dnn
ENGINES = {"reference": neoml.MathEngine.ReferenceMathEngine,
           "cpu": neoml.MathEngine.CpuMathEngine,
           "opencl": neoml.MathEngine.OpenCLMathEngine}


@pytest.fixture(scope="module", params=sorted(ENGINES))
def engine(request):
    return ENGINES[request.param]()


@pytest.fixture(scope="module", params=("reference", "cpu", "gpu"))
def nbe(request):
    be = gen_backend(request.param, rng_seed=0, batch_size=2)
    NervanaObject.be = be
    yield be


# ============================================================== refnn.neoml
def f32(*shape, seed=0):
    return np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32)


def i32(values, shape):
    return np.asarray(values, np.int32).reshape(shape)


def ids_f(values, shape):
    return np.asarray(values, np.float32).reshape(shape)


X = f32(4, 2, 1, 1, 1, 1, 5)                        # 4 steps, 2 sequences, objects of 5
H0 = f32(1, 2, 1, 1, 1, 1, 3, seed=1)               # an initial state for hidden size 3
ACC_IDS = i32([0, 4, 2, 1], (1, 2, 1, 1, 1, 1, 2))
MC_IDS = i32([0, 2, 4, 1], (1, 2, 1, 1, 1, 1, 2))   # tables (5, 3) and (3, 2)


def _blob(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


def _net(engine, make, n_sources):
    dnn = D.Dnn(engine, neoml.Random.Random(0))
    srcs = [D.Source(dnn, name) for name in ("x", "s1", "s2")[:n_sources]]
    layer = make(srcs if n_sources > 1 else srcs[0])
    D.Sink(layer, name="out")
    return dnn, layer


def _run(engine, dnn, feeds):
    names = ("x", "s1", "s2")
    out = dnn.run({names[k]: _blob(engine, a) for k, a in enumerate(feeds)})["out"]
    return out.asarray(keep_dims=True).copy()


def _tied(srcs):
    D.MultichannelLookup(srcs[1], [(6, 5)], name="emb")
    return D.TiedEmbeddings(srcs[0], "emb", 0, name="L")


# (id, factory, number of sources, good feeds, bad feeds, error, message)
NEOML_CASES = [
    # ---- wrong layout: object size the weights were made for, BatchLength vs ListSize
    ("lstm-object-size", lambda s: D.Lstm(s, 3, name="L"), 1, [X],
     [f32(4, 2, 1, 2, 1, 1, 5)], ShapeError, r"Lstm 'L': input 0 must have object size.*5"),
    ("gru-object-size", lambda s: D.Gru(s, 3, name="L"), 1, [X], [f32(4, 2, 1, 1, 1, 1, 4)],
     ShapeError, r"Gru 'L': input 0 must have object size"),
    ("irnn-object-size", lambda s: D.Irnn(s, 3, name="L"), 1, [X], [f32(4, 2, 1, 1, 1, 1, 6)],
     ShapeError, r"Irnn 'L': input 0 must have object size"),
    ("indrnn-object-size", lambda s: D.IndRnn(s, 3, name="L"), 1, [X],
     [f32(4, 2, 1, 1, 3, 1, 5)], ShapeError, r"IndRnn 'L': input 0 must have object size"),
    ("qrnn-object-size", lambda s: D.Qrnn(s, "fo", 3, name="L"), 1, [X],
     [f32(4, 2, 1, 1, 1, 1, 2)], ShapeError, r"Qrnn 'L': input 0 must have object size"),
    ("qrnn-shorter-than-window", lambda s: D.Qrnn(s, "f", 3, window_size=3, name="L"), 1,
     [X], [f32(2, 2, 1, 1, 1, 1, 5)], ShapeError, r"Qrnn 'L'.*3 steps.*only 2"),
    ("subsequence-empty", lambda s: D.SubSequence(s, start_pos=5, length=2, name="L"), 1,
     [f32(6, 2, 1, 1, 1, 1, 3)], [f32(4, 2, 1, 1, 1, 1, 3)], ParameterError,
     r"SubSequence 'L'"),
    ("positional-batch-length", lambda s: D.PositionalEmbedding(s, "transformers", name="L"),
     1, [f32(1, 2, 4, 1, 1, 1, 3)], [f32(4, 2, 1, 1, 1, 1, 3)], ShapeError,
     r"PositionalEmbedding 'L': input BatchLength must be 1"),
    ("positional-transformers-hwd",
     lambda s: D.PositionalEmbedding(s, "transformers", name="L"), 1,
     [f32(1, 2, 4, 1, 1, 1, 3)], [f32(1, 2, 4, 3, 1, 1, 1)], ShapeError,
     r"PositionalEmbedding 'L': 'transformers' needs Height = Width = Depth = 1"),
    ("positional-learnable-longer",
     lambda s: D.PositionalEmbedding(s, "learnable_addition", name="L"), 1,
     [f32(1, 2, 4, 1, 1, 1, 3)], [f32(1, 2, 6, 1, 1, 1, 3)], ShapeError,
     r"PositionalEmbedding 'L'"),
    ("tied-object-size", _tied, 2, [f32(3, 2, 1, 1, 1, 1, 5), i32([1], (1,) * 7)],
     [f32(3, 2, 1, 1, 1, 1, 4), i32([1], (1,) * 7)], ShapeError,
     r"TiedEmbeddings 'L': input 0 must have object size 5"),
    # ---- int blobs where floats are expected and the other way round
    ("lstm-int-sequence", lambda s: D.Lstm(s, 3, name="L"), 1, [X], [X.astype(np.int32)],
     DTypeError, r"Lstm 'L'.*float32"),
    ("sequence-sum-int", lambda s: D.SequenceSum(s, name="L"), 1, [X], [X.astype(np.int32)],
     DTypeError, r"SequenceSum 'L'"),
    ("cumsum-int", lambda s: D.CumSum(s, "batch_length", name="L"), 1, [X],
     [X.astype(np.int32)], DTypeError, r"CumSum 'L'"),
    ("accumulative-float-ids", lambda s: D.AccumulativeLookup(s, 5, 3, name="L"), 1,
     [ACC_IDS], [ACC_IDS.astype(np.float32)], DTypeError,
     r"AccumulativeLookup 'L': input must be an int32"),
    # ---- ids outside the vocabulary
    *[(f"accumulative-id-{bad}", lambda s: D.AccumulativeLookup(s, 5, 3, name="L"), 1,
       [ACC_IDS], [i32([0, bad, 2, 1], (1, 2, 1, 1, 1, 1, 2))], ParameterError,
       rf"AccumulativeLookup 'L'.*ids must be in \[0, 4\].*got id {bad}")
      for bad in (5, -1, 2 ** 31 - 1)],
    *[(f"multichannel-int-id-{ch}-{bad}",
       lambda s: D.MultichannelLookup(s, [(5, 3), (3, 2)], name="L"), 1, [MC_IDS],
       [i32([0, bad, 4, 1] if ch else [bad, 2, 4, 1], (1, 2, 1, 1, 1, 1, 2))],
       ParameterError, rf"MultichannelLookup 'L': lookup: ids must be in \[0, {4 - 2 * ch}\]")
      for ch, bad in ((0, 5), (0, -1), (1, 3), (1, -7))],
    *[(f"multichannel-float-id-{bad}",
       lambda s: D.MultichannelLookup(s, [(5, 3), (3, 2)], name="L"), 1,
       [MC_IDS.astype(np.float32)], [ids_f([0, 2, 4, bad], (1, 2, 1, 1, 1, 1, 2))],
       ParameterError, rf"MultichannelLookup 'L': lookup: ids must be in \[0, 2\].*got id "
                       rf"{want}")
      for bad, want in ((3.0, "3"), (-1.0, "-1"), (np.nan, "nan"), (np.inf, "inf"),
                        (-np.inf, "-inf"), (1e10, "10000000000.0"), (-3e9, "-3000000000.0"))],
    ("multichannel-too-few-channels",
     lambda s: D.MultichannelLookup(s, [(5, 3), (3, 2)], name="L"), 1, [MC_IDS],
     [i32([0, 2], (1, 2, 1, 1, 1, 1, 1))], ShapeError,
     r"MultichannelLookup 'L': input Channels must be >= the number of tables 2"),
    # ---- initial states that do not match the sequences
    ("lstm-cell-state-hidden", lambda s: D.Lstm(s, 3, name="L"), 3, [X, H0, H0],
     [X, f32(1, 2, 1, 1, 1, 1, 4), H0], ShapeError,
     r"Lstm 'L': input 1 \(initial cell state\) must have shape.*3 \(hidden_size\)"),
    ("lstm-previous-output-batch", lambda s: D.Lstm(s, 3, name="L"), 3, [X, H0, H0],
     [X, H0, f32(1, 3, 1, 1, 1, 1, 3)], ShapeError,
     r"Lstm 'L': input 2 \(initial previous output\) must have shape \(1, 2, 1"),
    ("lstm-state-batch-length", lambda s: D.Lstm(s, 3, name="L"), 3, [X, H0, H0],
     [X, f32(2, 2, 1, 1, 1, 1, 3), H0], ShapeError, r"Lstm 'L': input 1"),
    ("lstm-state-int", lambda s: D.Lstm(s, 3, name="L"), 3, [X, H0, H0],
     [X, H0, H0.astype(np.int32)], DTypeError, r"Lstm 'L'.*input 2"),
    ("gru-state-hidden", lambda s: D.Gru(s, 3, name="L"), 2, [X, H0],
     [X, f32(1, 2, 1, 1, 1, 1, 2)], ShapeError,
     r"Gru 'L': input 1 \(initial previous output\) must have shape"),
    ("gru-state-list-size", lambda s: D.Gru(s, 3, name="L"), 2, [X, H0],
     [X, f32(1, 1, 2, 1, 1, 1, 3)], ShapeError, r"Gru 'L': input 1"),
    ("qrnn-state-hidden", lambda s: D.Qrnn(s, "f", 3, name="L"), 2, [X, H0],
     [X, f32(1, 2, 1, 1, 1, 1, 6)], ShapeError, r"Qrnn 'L': input 1 \(initial state\)"),
    ("qrnn-reverse-state-batch",
     lambda s: D.Qrnn(s, "fo", 3, mode="bidirectional_sum", name="L"), 3, [X, H0, H0],
     [X, H0, f32(1, 1, 1, 1, 1, 1, 3)], ShapeError, r"Qrnn 'L': input 2 \(initial state\)"),
]


@pytest.mark.parametrize("case", NEOML_CASES, ids=[c[0] for c in NEOML_CASES])
def test_neoml_bad_sequence_input_names_the_layer(engine, case):
    _, make, n_sources, good, bad, error, message = case
    dnn, _ = _net(engine, make, n_sources)
    before = _run(engine, dnn, good)
    with pytest.raises(error, match=message):
        _run(engine, dnn, bad)
    np.testing.assert_array_equal(_run(engine, dnn, good), before,
                                  err_msg="the layer runs as before after the error")


def test_neoml_qrnn_reverse_state_outside_the_bidirectional_modes(engine):
    dnn, layer = _net(engine, lambda s: D.Qrnn(s, "f", 3, name="L"), 3)
    with pytest.raises(ShapeError, match=r"Qrnn 'L': input 2 .*only in the bidirectional"):
        _run(engine, dnn, [X, H0, H0])
    layer.recurrent_mode = "bidirectional_concat"
    assert _run(engine, dnn, [X, H0, H0]).shape == (4, 2, 1, 1, 1, 1, 6)


# every layer of the table, fed a 3-D device array (not a 7-D blob) at its op edge
RANK_LAYERS = {
    "Lstm": lambda s: D.Lstm(s, 3, name="L"),
    "Gru": lambda s: D.Gru(s, 3, name="L"),
    "Irnn": lambda s: D.Irnn(s, 3, name="L"),
    "IndRnn": lambda s: D.IndRnn(s, 3, name="L"),
    "Qrnn": lambda s: D.Qrnn(s, "ifo", 3, name="L"),
    "SubSequence": lambda s: D.SubSequence(s, 0, 2, name="L"),
    "ReverseSequence": lambda s: D.ReverseSequence(s, name="L"),
    "SequenceSum": lambda s: D.SequenceSum(s, name="L"),
    "CumSum": lambda s: D.CumSum(s, name="L"),
    "AccumulativeLookup": lambda s: D.AccumulativeLookup(s, 5, 3, name="L"),
    "MultichannelLookup": lambda s: D.MultichannelLookup(s, [(5, 3)], name="L"),
    "PositionalEmbedding": lambda s: D.PositionalEmbedding(s, "transformers", name="L"),
    "TiedEmbeddings": _tied,
}
RANK_GOOD = {"AccumulativeLookup": [ACC_IDS], "MultichannelLookup": [MC_IDS[..., :1]],
             "PositionalEmbedding": [f32(1, 2, 4, 1, 1, 1, 5)],
             "TiedEmbeddings": [f32(3, 2, 1, 1, 1, 1, 5), i32([1], (1,) * 7)]}


@pytest.mark.parametrize("name", sorted(RANK_LAYERS))
def test_neoml_a_sequence_of_the_wrong_rank_names_the_layer(engine, name):
    n_sources = 2 if name == "TiedEmbeddings" else 1
    dnn, layer = _net(engine, RANK_LAYERS[name], n_sources)
    good = RANK_GOOD.get(name, [X])
    before = _run(engine, dnn, good)
    be = engine.backend
    x3 = good[0].reshape(good[0].shape[0], good[0].shape[1], -1)
    with pytest.raises(ShapeError, match=rf"{name} 'L': input 0 must be a 7-D blob"):
        layer._forward(be, [be.asarray(x3, dtype=x3.dtype)], True)
    np.testing.assert_array_equal(_run(engine, dnn, good), before)


# (layer, factory with the hidden size as argument, the property)
HIDDEN_CASES = [
    ("Lstm", lambda s, h: D.Lstm(s, h, name="L"), "hidden_size"),
    ("Gru", lambda s, h: D.Gru(s, h, name="L"), "hidden_size"),
    ("Irnn", lambda s, h: D.Irnn(s, h, name="L"), "hidden_size"),
    ("IndRnn", lambda s, h: D.IndRnn(s, h, name="L"), "hidden_size"),
    ("Qrnn", lambda s, h: D.Qrnn(s, "fo", h, name="L"), "hidden_size"),
    ("AccumulativeLookup", lambda s, h: D.AccumulativeLookup(s, 5, h, name="L"), "size"),
]


@pytest.mark.parametrize("case", HIDDEN_CASES, ids=[c[0] for c in HIDDEN_CASES])
@pytest.mark.parametrize("bad", [0, -3])
def test_neoml_a_hidden_size_of_0_names_the_layer(engine, case, bad):
    name, make, prop = case
    with pytest.raises(ParameterError, match=rf"{name} 'L'.*{prop}.*got {bad}"):
        _net(engine, lambda s: make(s, bad), 1)
    dnn, layer = _net(engine, lambda s: make(s, 3), 1)
    good = [ACC_IDS] if name == "AccumulativeLookup" else [X]
    before = _run(engine, dnn, good)
    with pytest.raises(ParameterError, match=rf"{name} 'L'.*{prop}.*got {bad}"):
        setattr(layer, prop, bad)
    assert getattr(layer, prop) == 3
    np.testing.assert_array_equal(_run(engine, dnn, good), before)


def test_neoml_an_empty_table_names_the_layer(engine):
    with pytest.raises(ParameterError, match=r"MultichannelLookup 'L'.*positive.*\(4, 0\)"):
        _net(engine, lambda s: D.MultichannelLookup(s, [(5, 3), (4, 0)], name="L"), 1)
    dnn, layer = _net(engine, lambda s: D.MultichannelLookup(s, [(5, 3)], name="L"), 1)
    before = _run(engine, dnn, [MC_IDS[..., :1]])
    with pytest.raises(ParameterError, match=r"MultichannelLookup 'L'.*\(0, 3\)"):
        layer.dimensions = [(0, 3)]
    assert layer.dimensions == [(5, 3)]
    np.testing.assert_array_equal(_run(engine, dnn, [MC_IDS[..., :1]]), before)


# ============================================================== refnn.neon
# real neon's signatures (neon/layers/recurrent.py and layer.py, neon 2.x)
NEON_SIGNATURES = {
    Recurrent: "output_size, init, init_inner=None, activation=None, reset_cells=False, "
               "name=None",
    LSTM: "output_size, init, init_inner=None, activation=None, gate_activation=None, "
          "reset_cells=False, name=None",
    GRU: "output_size, init, init_inner=None, activation=None, gate_activation=None, "
         "reset_cells=False, name=None",
    BiRNN: "output_size, init, init_inner=None, activation=None, reset_cells=False, "
           "split_inputs=False, name=None",
    BiLSTM: "output_size, init, init_inner=None, activation=None, gate_activation=None, "
            "reset_cells=False, split_inputs=False, name=None",
    DeepBiRNN: "nout, init, init_inner=None, activation=None, reset_cells=False, depth=1, "
               "batch_norm=False, bi_sum=False",
    DeepBiLSTM: "nout, init, init_inner=None, activation=None, gate_activation=None, "
                "reset_cells=False, depth=1",
    RecurrentOutput: "name=None", RecurrentSum: "name=None", RecurrentMean: "name=None",
    RecurrentLast: "name=None",
    LookupTable: "vocab_size, embedding_dim, init, update=True, pad_idx=None, name=None",
}


@pytest.mark.parametrize("cls", list(NEON_SIGNATURES), ids=lambda c: c.__name__)
def test_neon_signatures_are_neon_s(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    got = ", ".join(p.name if p.default is inspect.Parameter.empty
                    else f"{p.name}={p.default!r}" for p in params)
    assert got == NEON_SIGNATURES[cls]


def _ops_called(rb, fn):
    called, original = set(), rb.op

    def op(name):
        called.add(name.split(".")[0])
        return original(name)
    rb.op = op
    try:
        fn()
    finally:
        del rb.op
    return called


NEON_OPS_RUNS = [
    (Recurrent, lambda: Recurrent(3, Gaussian(), name="r")),
    (LSTM, lambda: LSTM(3, Gaussian(), name="r")),
    (GRU, lambda: GRU(3, Gaussian(), name="r")),
    (BiRNN, lambda: BiRNN(3, Gaussian(), name="r")),
    (BiLSTM, lambda: BiLSTM(3, Gaussian(), name="r")),
    (RecurrentSum, lambda: RecurrentSum(name="r")),
    (RecurrentMean, lambda: RecurrentMean(name="r")),
    (RecurrentLast, lambda: RecurrentLast(name="r")),
]


@pytest.mark.parametrize("cls,make", NEON_OPS_RUNS, ids=[c.__name__ for c, _ in NEON_OPS_RUNS])
def test_neon_ops_tuples_are_what_the_layers_call(nbe, cls, make):
    """What ``refnn coverage`` reads (OPS) is the set of refnn ops fprop + bprop call."""
    layer = _configure(make(), (4, 3))
    x = nbe.array(np.random.default_rng(0).normal(size=(4, 3 * nbe.bsz)))

    def passes():
        y = layer.fprop(x)
        layer.bprop(nbe.array(np.ones(y.shape)))
    assert _ops_called(nbe.rb, passes) == set(cls.OPS)


def test_neon_lookup_table_ops_tuple_is_what_it_calls(nbe):
    layer = _configure(LookupTable(6, 3, Gaussian(), name="lt"), 4)
    ids = nbe.array(np.array([[0, 5], [1, 2], [3, 3], [4, 0]], np.float64))

    def passes():
        y = layer.fprop(ids)
        layer.bprop(nbe.array(np.ones(y.shape)))
        layer.sparse_update(0.1)
    assert _ops_called(nbe.rb, passes) == set(LookupTable.OPS)


def _configure(layer, shape):
    layer.configure(shape)
    layer.allocate()
    return layer


def _host(t):
    return np.array(t.get() if hasattr(t, "get") else t)


NEON_SEQ = {   # name -> factory of a layer configured for (nin, nsteps) = (3, 4)
    "Recurrent": lambda: Recurrent(2, Gaussian(), reset_cells=False, name="L"),
    "LSTM": lambda: LSTM(2, Gaussian(), reset_cells=False, name="L"),
    "GRU": lambda: GRU(2, Gaussian(), reset_cells=False, name="L"),
    "BiRNN": lambda: BiRNN(2, Gaussian(), name="L"),
    "BiLSTM": lambda: BiLSTM(2, Gaussian(), name="L"),
    "RecurrentSum": lambda: RecurrentSum(name="L"),
    "RecurrentMean": lambda: RecurrentMean(name="L"),
    "RecurrentLast": lambda: RecurrentLast(name="L"),
}


@pytest.mark.parametrize("name", sorted(NEON_SEQ))
@pytest.mark.parametrize("bad", ["3-D", "1-D", "steps", "features", "ndarray"])
def test_neon_a_sequence_of_the_wrong_rank_names_the_layer(nbe, name, bad):
    """A (features, steps, batch) tensor, a flat one, a step count the layer was not
    configured for, the wrong feature count, a NumPy array: errors naming the layer.
    The carried state is untouched: good, bad, good == good, good of a twin layer."""
    rng = np.random.default_rng(0)
    good = rng.normal(size=(3, 4 * nbe.bsz))
    wrong = {"3-D": lambda: nbe.array(good.reshape(3, 4, nbe.bsz)),
             "1-D": lambda: nbe.array(good.reshape(-1)),
             "steps": lambda: nbe.array(good[:, :3 * nbe.bsz + 1]),
             "features": lambda: nbe.array(good[:2]),
             "ndarray": lambda: good.astype(np.float32)}[bad]()
    layer, twin = (_configure(NEON_SEQ[name](), (3, 4)) for _ in range(2))
    if getattr(layer, "W", None) is not None:
        twin.W[:] = layer.W
    first = _host(layer.fprop(nbe.array(good)))
    np.testing.assert_allclose(_host(twin.fprop(nbe.array(good))), first)
    with pytest.raises((ShapeError, ParameterError), match=rf"L \({name}\): inputs must"):
        layer.fprop(wrong)
    np.testing.assert_allclose(_host(layer.fprop(nbe.array(good))),
                               _host(twin.fprop(nbe.array(good))), rtol=1e-6, atol=1e-6)
    with pytest.raises(ShapeError, match=rf"L \({name}\): inputs must"):
        out = layer.out_shape[0]
        layer.bprop(nbe.array(np.ones((out, 4, nbe.bsz))))


@pytest.mark.parametrize("name", sorted(NEON_SEQ) + ["LookupTable"])
@pytest.mark.parametrize("shape", [(3, 0), (0, 4), (3, -2)])
def test_neon_zero_steps_or_features_name_the_layer(nbe, name, shape):
    """A configured shape without steps (or features) is refused at configure -- fprop
    would otherwise divide by zero."""
    make = NEON_SEQ.get(name, lambda: LookupTable(5, 2, Gaussian(), name="L"))
    if name == "LookupTable":
        shape = (shape[0] * shape[1], 1) if shape[0] * shape[1] <= 0 else shape
    with pytest.raises(ShapeError, match=rf"L \({name}\): in_shape .* must be >= 1"):
        make().configure(shape)


@pytest.mark.parametrize("bad,value", [("vocab", 5), ("negative", -1), ("nan", np.nan),
                                       ("inf", np.inf), ("huge", 1e10), ("-huge", -3e9)])
def test_neon_ids_outside_the_vocabulary_name_the_layer(nbe, bad, value):
    layer = _configure(LookupTable(5, 3, Gaussian(), name="lt"), 2)
    good = np.array([[0, 4], [1, 2]], np.float64)
    before = _host(layer.fprop(nbe.array(good)))
    ids = good.copy()
    ids[1, 0] = value
    want = {"vocab": "5", "negative": "-1", "nan": "nan", "inf": "inf",
            "huge": "10000000000.0", "-huge": "-3000000000.0"}[bad]
    with pytest.raises(ParameterError, match=rf"lt \(LookupTable\): lookup: ids must be in "
                                             rf"\[0, 4\].*got id {want}"):
        layer.fprop(nbe.array(ids))
    np.testing.assert_array_equal(_host(layer.fprop(nbe.array(good))), before)


@pytest.mark.parametrize("make,match", [
    (lambda: Recurrent(0, Gaussian(), name="L"), r"L \(Recurrent\): output_size"),
    (lambda: LSTM(0, Gaussian(), name="L"), r"L \(LSTM\): output_size"),
    (lambda: GRU(-1, Gaussian(), name="L"), r"L \(GRU\): output_size"),
    (lambda: BiRNN(0, Gaussian(), name="L"), r"L \(BiRNN\): output_size"),
    (lambda: BiLSTM(0.5, Gaussian(), name="L"), r"L \(BiLSTM\): output_size"),
    (lambda: DeepBiRNN(0, Gaussian(), depth=2), r"DeepBiRNN: nout must be a positive"),
    (lambda: DeepBiLSTM(0, Gaussian()), r"DeepBiLSTM: nout must be a positive"),
    (lambda: LookupTable(5, 0, Gaussian(), name="L"), r"L \(LookupTable\): embedding_dim"),
    (lambda: LookupTable(0, 3, Gaussian(), name="L"), r"L \(LookupTable\): vocab_size"),
], ids=["Recurrent", "LSTM", "GRU", "BiRNN", "BiLSTM", "DeepBiRNN", "DeepBiLSTM",
        "LookupTable-dim", "LookupTable-vocab"])
def test_neon_a_hidden_size_of_0_names_the_layer(nbe, make, match):
    with pytest.raises(ParameterError, match=match):
        make()


@pytest.mark.parametrize("name", ["Recurrent", "LSTM", "GRU"])
@pytest.mark.parametrize("bad", ["hidden", "batch", "ndarray"])
def test_neon_a_mismatched_initial_state_names_the_layer(nbe, name, bad):
    layer, twin = (_configure(NEON_SEQ[name](), (3, 4)) for _ in range(2))
    twin.W[:] = layer.W
    rng = np.random.default_rng(1)
    x = nbe.array(rng.normal(size=(3, 4 * nbe.bsz)))
    h0 = rng.normal(size=(2, nbe.bsz))
    state = {"hidden": lambda: nbe.array(rng.normal(size=(3, nbe.bsz))),
             "batch": lambda: nbe.array(rng.normal(size=(2, nbe.bsz + 1))),
             "ndarray": lambda: h0.astype(np.float32)}[bad]()
    with pytest.raises(ShapeError, match=rf"L \({name}\): init_state must be a "
                                         rf"\(2, {nbe.bsz}\) Tensor"):
        layer.fprop(x, init_state=state)
    np.testing.assert_allclose(_host(layer.fprop(x, init_state=nbe.array(h0))),
                               _host(twin.fprop(x, init_state=nbe.array(h0))),
                               rtol=1e-6, atol=1e-6)
