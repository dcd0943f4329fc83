"""neon layers after a recurrent layer: in_shape (nfeatures, nsteps), tensors
(nfeatures, nsteps * N) time-major (column t * N + n). As in neon, Linear / Bias /
Activation / Affine treat the steps as extra batch (the same weights at every step)."""
import numpy as np
import pytest

from tests.neon.conftest import REFNN_NAME
from refnn.errors import ParameterError, ShapeError
from refnn.neon import NervanaObject
from refnn.neon.callbacks import Callbacks
from refnn.neon.data import Text
from refnn.neon.initializers import Array, Constant, Gaussian, Uniform
from refnn.neon.layers import (LSTM, Activation, Affine, Bias, GeneralizedCost, Linear,
                               LookupTable, Sequential)
from refnn.neon.models import Model
from refnn.neon.optimizers import Adam
from refnn.neon.transforms import CrossEntropyMulti, Logistic, Misclassification, Softmax, Tanh
from refnn.ops import activation as act_ops
from refnn.ops import dense as dense_ops
from refnn.ops import loss as loss_ops
from refnn.testing import tolerance

rs = np.random.RandomState(11)


def check(op, nbe, actual, expected):
    rtol, atol = tolerance(op, "float32", REFNN_NAME[nbe.backend_name])
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * 10)


@pytest.mark.parametrize("nin,nout,T,N", [(5, 3, 4, 8), (3, 7, 1, 8), (6, 2, 9, 1)])
def test_linear_per_step_matches_reference(nbe, nin, nout, T, N):
    nbe.bsz = N
    W = rs.randn(nout, nin)
    x = rs.randn(nin, T * N)
    err = rs.randn(nout, T * N)
    layer = Linear(nout, init=Array(W), name="fc_td")
    layer.configure((nin, T))
    assert layer.out_shape == (nout, T) and layer.weight_shape == (nout, nin)
    layer.allocate()
    assert layer.outputs.shape == (nout, T * N)
    y = layer.fprop(nbe.array(x)).get()
    dx = layer.bprop(nbe.array(err)).get()
    for t in range(T):                       # y[:, t*N:(t+1)*N] = W x_t
        cols = slice(t * N, (t + 1) * N)
        y_ref, _ = dense_ops.linear_forward(x[:, cols].T, W)
        check("linear", nbe, y[:, cols], y_ref.T)
    _, saved = dense_ops.linear_forward(x.T, W)
    dx_ref, dW_ref = dense_ops.linear_backward(err.T, saved)   # dW sums over all steps
    check("linear", nbe, dx, dx_ref.T)
    check("linear", nbe, layer.dW.get(), dW_ref)


def test_bias_and_softmax_per_step(nbe):
    F, T, N = 4, 3, 8
    b = rs.randn(F, 1)
    x = rs.randn(F, T * N)
    bias = Bias(init=Array(b), name="b_td").configure((F, T))
    bias.allocate()
    y = bias.fprop(nbe.array(x)).get()
    y_ref, _ = dense_ops.bias_forward(x.T, b[:, 0])
    check("bias", nbe, y, y_ref.T)
    assert bias.out_shape == (F, T) and bias.W.shape == (F, 1)
    act = Activation(Softmax(), name="sm_td").configure((F, T))
    s = act.fprop(nbe.array(x)).get()
    s_ref, _ = act_ops.softmax_forward(x.T)      # over the features of each column
    check("softmax", nbe, s, s_ref.T)


def test_wrong_sequence_shape_names_layer(nbe):
    layer = Linear(3, init=Array(rs.randn(3, 5)), name="fc_bad").configure((5, 4))
    layer.allocate()
    with pytest.raises(ShapeError, match=r"fc_bad.*\(5, 4 \* batch\)"):
        layer.fprop(nbe.array(rs.randn(5, 4 * 8 + 1)))
    with pytest.raises(ShapeError, match="fc_bad"):
        layer.fprop(nbe.array(rs.randn(20, 8)))        # flattened (nin*nsteps, N)


def onehot(ids, V):
    t = np.zeros((V, ids.size))
    t[ids.reshape(-1), np.arange(ids.size)] = 1.0
    return t


# ------------------------------------------- LSTM -> Affine(Softmax) -> CrossEntropyMulti
@pytest.mark.parametrize("nin,H,V,T,N", [(3, 5, 6, 4, 8), (2, 3, 5, 7, 1), (4, 4, 3, 1, 8)])
def test_lstm_affine_softmax_cost_per_step_matches_reference(nbe, nin, H, V, T, N):
    nbe.bsz = N
    W, b = rs.randn(V, H) * 0.7, rs.randn(V, 1) * 0.3
    lstm = LSTM(H, Gaussian(scale=0.4), activation=Tanh(), gate_activation=Logistic(),
                reset_cells=True, name="lstm")
    aff = Affine(V, init=Array(W), bias=Array(b), activation=Softmax(), name="out")
    seq = Sequential([lstm, aff])
    seq.configure((nin, T))
    seq.allocate()
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    cost.initialize(seq)
    assert seq.layers[-1].out_shape == (V, T)
    x = rs.randn(nin, T * N)
    ids = rs.randint(0, V, T * N)
    t = onehot(ids, V)
    y = seq.fprop(nbe.array(x))
    assert y.shape == (V, T * N)
    h = lstm.outputs.get().astype(np.float64)
    y_np = y.get()
    for s_ in range(T):                 # step s_: softmax(W h_s + b), the same W, b
        cols = slice(s_ * N, (s_ + 1) * N)
        z, _ = dense_ops.linear_forward(h[:, cols].T, W)
        z, _ = dense_ops.bias_forward(z, b[:, 0])
        p, _ = act_ops.softmax_forward(z)
        check("softmax", nbe, y_np[:, cols], p.T)
    # the cost is the mean over all nsteps * N columns (neon's GeneralizedCost)
    yt = nbe.array(t)
    c = cost.get_cost(y, yt).get()[0, 0]
    l_ref, saved = loss_ops.cross_entropy_multi_forward(y_np.T.astype(np.float64), t.T)
    check("cross_entropy_multi", nbe, c, l_ref.mean())
    assert cost.outputs.shape == (1, T * N)
    # backward: the Softmax + CrossEntropyMulti shortcut y - t into the time-distributed
    # Linear; dW and db sum over every step
    delta = cost.get_errors(y, yt)
    check("softmax", nbe, delta.get(), y_np - t)
    seq.bprop(delta)
    z_all, lsaved = dense_ops.linear_forward(h.T, W)
    dh_ref, dW_ref = dense_ops.linear_backward((y_np - t).T, lsaved)
    _, bsaved = dense_ops.bias_forward(z_all, b[:, 0])
    _, db_ref = dense_ops.bias_backward((y_np - t).T, bsaved)
    linear, bias = aff[0], aff[1]
    check("linear", nbe, linear.dW.get(), dW_ref)
    check("linear", nbe, linear.deltas.get(), dh_ref.T)
    check("bias", nbe, bias.dW.get(), db_ref[:, None])


def test_char_model_gradients_match_finite_differences(ref_be):
    """LookupTable -> LSTM -> Affine(V, Softmax) -> CrossEntropyMulti in float64 on the
    reference backend: every parameter's gradient (the sum over the nsteps * N columns,
    as neon's optimizers expect) equals central differences of the summed cost."""
    NervanaObject.be = ref_be
    ref_be.bsz = N = 3
    V, D, H, T = 5, 3, 4, 4
    r = np.random.RandomState(5)
    layers = [LookupTable(V, D, Gaussian(scale=0.5), name="emb"),
              LSTM(H, Gaussian(scale=0.5), activation=Tanh(), gate_activation=Logistic(),
                   reset_cells=True, name="lstm"),
              Affine(V, Gaussian(scale=0.5), bias=Gaussian(scale=0.2),
                     activation=Softmax(), name="out")]
    seq = Sequential(layers)
    seq.configure((T, 1))
    seq.allocate()
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    cost.initialize(seq)
    ids = ref_be.array(r.randint(0, V, (T, N)))
    t = ref_be.array(onehot(r.randint(0, V, T * N), V))

    def total():
        y = seq.fprop(ids)
        return float(cost.costfunc(y, t).get().sum())

    y = seq.fprop(ids)
    seq.bprop(cost.get_errors(y, t))
    params = [p for layer in seq.layers_to_optimize for (p, _), _ in layer.get_params()]
    grads = [g.get().copy() for layer in seq.layers_to_optimize
             for (_, g), _ in layer.get_params()]
    assert len(params) == 4                  # table, LSTM W, Affine W, bias
    eps = 1e-6
    for P, G in zip(params, grads):
        host = P.get().copy()
        for idx in list(np.ndindex(host.shape))[::max(1, host.size // 12)]:
            old = host[idx]
            host[idx] = old + eps
            P.set(host)
            fp = total()
            host[idx] = old - eps
            P.set(host)
            fm = total()
            host[idx] = old
            P.set(host)
            np.testing.assert_allclose(G[idx], (fp - fm) / (2 * eps), rtol=1e-5,
                                       atol=1e-8, err_msg=f"{P.name} {idx}")


# ------------------------------------------------------------------ training
TEXT = "the quick brown fox jumps over the lazy dog. " * 12


@pytest.mark.parametrize("onehot_input", [False, True])
def test_char_rnn_on_text_trains(nbe, onehot_input):
    """neon's char-rnn example in small: Text -> [LookupTable] -> LSTM ->
    Affine(len(vocab), Softmax), CrossEntropyMulti on one-hot targets per step."""
    nbe.bsz = 4
    T = 8
    train = Text(T, text=TEXT, onehot_input=onehot_input)
    V = len(train.vocab)
    init = Uniform(-0.1, 0.1)
    layers = ([] if onehot_input else [LookupTable(V, 8, init, name="emb")]) + [
        LSTM(24, init, activation=Tanh(), gate_activation=Logistic(), reset_cells=True,
             name="lstm"),
        Affine(V, init, bias=Constant(0.0), activation=Softmax(), name="out")]
    model = Model(layers=layers)
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    opt = Adam(learning_rate=0.02)
    costs = []
    for _ in range(6):
        model.fit(train, optimizer=opt, num_epochs=model.epoch_index + 1, cost=cost,
                  callbacks=Callbacks(model))
        costs.append(float(model.total_cost.get()[0, 0]))
    assert costs[-1] < 0.6 * costs[0], costs
    assert costs[0] == pytest.approx(np.log(V), rel=0.1)    # uniform at the start
    miss = model.eval(train, metric=Misclassification())
    assert 0.0 <= float(miss[0]) < 0.6
    out = model.get_outputs(train)
    assert out.shape == (train.ndata, T, V)
    np.testing.assert_allclose(out.sum(axis=2), 1.0, rtol=1e-4)
    # get_outputs orders (sample, step): sample n of minibatch 0 is stream n
    x0, _ = next(iter(train))
    y0 = model.fprop(x0, inference=True).get()
    np.testing.assert_allclose(out[1, 2], y0[:, 2 * nbe.bsz + 1], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ Text iterator
ALPHA = "abcdefghijklmnopqrstuvwxyz"


def _decode(data, t):
    return "".join(data.vocab[i] for i in t.get().argmax(axis=0))


def test_text_layout_parallel_streams_time_major(nbe):
    """bsz streams of contiguous text; column s * bsz + n is step s of stream n; the
    target is the next character (the whole stream wraps at its end), as in neon."""
    nbe.bsz = 2
    data = Text(3, text=ALPHA)                    # 24 characters used, 'yz' dropped
    assert (data.nbatches, data.ndata, data.shape) == (4, 8, (24, 3))
    assert data.vocab == sorted(ALPHA[:24]) and data.nout == 24
    got = [(_decode(data, x), _decode(data, y)) for x, y in data]
    assert got == [("ambnco", "bncodp"), ("dpeqfr", "eqfrgs"),
                   ("gshtiu", "htiujv"), ("jvkwlx", "kwlxma")]
    assert len(list(data)) == 4                   # a new epoch starts from minibatch 0


def test_text_id_inputs_reverse_target_and_prev_target(nbe):
    nbe.bsz = 2
    data = Text(3, text=ALPHA[:12], onehot_input=False)
    assert data.shape == (3, 1)
    x, y = next(iter(data))
    assert x.shape == (3, 2)                      # (time_steps, bsz) ids for LookupTable
    np.testing.assert_array_equal(x.get(), [[0, 6], [1, 7], [2, 8]])
    assert _decode(data, y) == "bhcidj"
    rev = Text(3, text=ALPHA[:12], reverse_target=True)
    x, y = next(iter(rev))
    assert _decode(rev, x) == "agbhci" and _decode(rev, y) == "cibhag"
    prev = Text(3, text=ALPHA[:12], get_prev_target=True)
    (x, z), y = next(iter(prev))
    zz = z.get()
    assert zz[:, :2].sum() == 0                   # step 0 has no previous target
    np.testing.assert_array_equal(zz[:, 2:], y.get()[:, :-2])


def test_text_tokenizer_vocab_path_and_valid_split(nbe, tmp_path):
    nbe.bsz = 1
    words = "a rose is a rose is a rose"
    data = Text(2, text=words, tokenizer=str.split)
    assert data.vocab == ["a", "is", "rose"] and data.nbatches == 4
    assert [_decode(data, x) for x, _ in data][:2] == ["arose", "isa"]
    big = Text(2, text=words, tokenizer=str.split, vocab=["a", "is", "rose", "tulip"])
    assert big.nout == 4
    f = tmp_path / "corpus.txt"
    f.write_text(ALPHA, encoding="utf-8")
    assert Text(5, path=str(f)).nbatches == 5
    train, valid = Text.create_valid_file(str(f), valid_split=0.25)
    assert open(train).read() + open(valid).read() == ALPHA
    assert len(open(valid).read()) == 26 - int(26 * 0.75)


def test_text_errors(nbe):
    nbe.bsz = 4
    with pytest.raises(ShapeError, match=r"Text: 10 tokens do not fill one minibatch .* 20"):
        Text(5, text=ALPHA[:10])
    with pytest.raises(ParameterError, match=r"Text: token 'c' is not in the given vocab"):
        Text(2, text=ALPHA, vocab=["a", "b"])
    with pytest.raises(ParameterError, match="exactly one of path= .* and text="):
        Text(2)
    with pytest.raises(ParameterError, match="time_steps must be a positive integer"):
        Text(0, text=ALPHA)


def test_dropout_and_eval_after_lstm(nbe):
    """Dropout keeps (nfeatures, nsteps); Model.eval counts every step of every sample."""
    from refnn.neon.layers import Dropout
    nbe.bsz = 2
    d = Dropout(keep=0.5, name="drop_td").configure((3, 4))
    d.allocate()
    y = d.fprop(nbe.array(np.ones((3, 8))), inference=True)
    assert d.out_shape == (3, 4) and y.shape == (3, 8)
    np.testing.assert_allclose(y.get(), 0.5)
    data = Text(4, text=ALPHA[:16])
    V = len(data.vocab)
    model = Model([LSTM(5, Uniform(-0.1, 0.1), reset_cells=True, name="l"),
                   Affine(V, Uniform(-0.1, 0.1), activation=Softmax(), name="o")])
    miss = model.eval(data, metric=Misclassification())
    expected = np.mean([np.mean(model.fprop(x, inference=True).get().argmax(0)
                                != t.get().argmax(0)) for x, t in data])
    assert float(miss[0]) == pytest.approx(expected)


class _Seqs:
    """A minimal sequence iterator: ndata = 3 one-hot sequences in minibatches of 2 (the
    last one partial, its second column a wrapped-around copy of sequence 0). Every real
    target is the input id; the wrapped copy's targets are all id + 1."""

    def __init__(self, be, V, T):
        r = np.random.RandomState(2)
        self.be, self.ndata, self.nbatches, self.shape = be, 3, 2, (V, T)
        ids = r.randint(0, V, (4, T))
        ids[3] = ids[0]
        tids = ids.copy()
        tids[3] = (ids[0] + 1) % V
        self.batches = [(onehot(ids[b:b + 2].T.reshape(-1), V),
                         onehot(tids[b:b + 2].T.reshape(-1), V)) for b in (0, 2)]

    def reset(self):
        pass

    def __iter__(self):
        for x, t in self.batches:
            yield self.be.array(x), self.be.array(t)


def test_eval_partial_minibatch_counts_only_real_samples(nbe):
    """Affine(W = I) predicts the input id: every real step is right, every step of the
    wrapped copy wrong; eval must count the 3 * T real steps only."""
    nbe.bsz = 2
    V, T = 4, 3
    data = _Seqs(nbe, V, T)
    model = Model([Affine(V, Array(np.eye(V) * 5), activation=Softmax(), name="o")])
    assert float(model.eval(data, metric=Misclassification())[0]) == 0.0
    (x, t), = list(data)[1:]
    w = model.fprop(x, inference=True).get().argmax(0) != t.get().argmax(0)
    np.testing.assert_array_equal(w, [False, True] * T)     # the wrapped columns


def test_generalized_cost_buffers_follow_the_sequence_layout(nbe):
    nbe.bsz = 4
    seq = Sequential([LSTM(3, Gaussian(), name="l"),
                      Affine(5, Gaussian(), activation=Softmax(), name="o")])
    seq.configure((2, 6))
    seq.allocate()
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    cost.initialize(seq)
    assert cost.outputs.shape == (1, 24) and cost.deltas.shape == (5, 24)
