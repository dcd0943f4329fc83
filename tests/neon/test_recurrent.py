"""neon recurrent layers on every backend, against neon's own step equations.

The oracle below is a float64 NumPy transcription of neon's equations in neon's layout
and gate order (LSTM i, f, o, g; GRU r, z, hcan with h = (1 - z) h_prev + z hcan) --
independent of refnn's ops and of the gate permutation the layers do at the op edge.
Gradients are checked against central differences of that oracle.
"""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.neon.callbacks import Callbacks
from refnn.neon.data import ArrayIterator
from refnn.neon.initializers import Constant, Gaussian, Uniform
from refnn.neon.layers import (GRU, LSTM, Affine, BiLSTM, BiRNN, DeepBiLSTM, DeepBiRNN,
                               GeneralizedCost, LookupTable, Recurrent, RecurrentLast,
                               RecurrentMean, RecurrentOutput, RecurrentSum, Sequential)
from refnn.neon.models import Model
from refnn.neon.optimizers import GradientDescentMomentum
from refnn.neon.transforms import (CrossEntropyMulti, Explin, Identity, Logistic,
                                   Normalizer, Rectlin, Softmax, Tanh)

RTOL, ATOL = 2e-3, 2e-4
CLASSES = {"rnn": Recurrent, "lstm": LSTM, "gru": GRU}
NGATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _close(a, ref, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(a.get() if hasattr(a, "get") else a, ref, rtol=rtol,
                               atol=atol)


def sig(z):
    return 1 / (1 + np.exp(-z))


def split_W(W, G, nin, H):
    """neon's views of a unidirectional W (nin + H + 1, G*H)."""
    return (W[:nin].reshape(G * H, nin), W[nin:nin + H].reshape(G * H, H),
            W[-1:].reshape(G * H, 1))


def neon_cell(kind, x, Wi, Wr, b, h, c, N, reverse=False, act=np.tanh, gact=sig):
    """neon's equations over x (nin, T*N) -> (hs (H, T*N), last h, last c); act is the
    activation, gact the gate activation."""
    H, T = Wr.shape[1], x.shape[1] // N
    out = np.empty((H, T * N))
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        xt = x[:, t * N:(t + 1) * N]
        if kind == "rnn":
            h = act(Wi @ xt + Wr @ h + b)
        elif kind == "lstm":
            a = Wi @ xt + Wr @ h + b
            i, f, o = gact(a[:H]), gact(a[H:2 * H]), gact(a[2 * H:3 * H])
            g = act(a[3 * H:])
            c = f * c + i * g
            h = o * act(c)
        else:
            ax = Wi @ xt + b
            r, z = gact(ax[:H] + Wr[:H] @ h), gact(ax[H:2 * H] + Wr[H:2 * H] @ h)
            hcan = act(ax[2 * H:] + Wr[2 * H:] @ (r * h))
            h = (1 - z) * h + z * hcan
        out[:, t * N:(t + 1) * N] = h
    return out, h, c


def numgrad(f, a, eps=1e-6):
    """Central differences of the scalar f() w.r.t. every entry of a (in place)."""
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        fp = f()
        a[idx] = old - eps
        fm = f()
        a[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g


def _layer(cls, in_shape, *args, **kwargs):
    layer = cls(*args, **kwargs)
    layer.configure(in_shape)
    layer.allocate()
    return layer


# ------------------------------------------------------------------ unidirectional
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("nin, H, T, N", [(3, 2, 3, 2), (1, 5, 1, 1), (4, 3, 5, 3),
                                        (2, 3, 17, 1)])
def test_unidirectional_matches_neon_equations(nbe, kind, nin, H, T, N):
    rs = np.random.RandomState(nin * 7 + H + T)
    G = NGATES[kind]
    layer = _layer(CLASSES[kind], (nin, T), H, Gaussian(scale=0.5), name="rec")
    assert layer.W.shape == (nin + H + 1, G * H)
    assert layer.W_input.shape == (G * H, nin) and layer.b.shape == (G * H, 1)
    W = rs.randn(nin + H + 1, G * H) * 0.6
    layer.W.set(W)
    x, e, h0 = rs.randn(nin, T * N), rs.randn(H, T * N), rs.randn(H, N) * 0.5
    zeros = np.zeros((H, N))

    def oracle(x=x, h0=h0, W=W):
        return neon_cell(kind, x, *split_W(W, G, nin, H), h0, zeros, N)

    y = layer.fprop(nbe.array(x), init_state=nbe.array(h0))
    ys, hT, cT = oracle()
    _close(y, ys)
    _close(layer.final_state(), hT)
    layer.bprop(nbe.array(e))
    loss = lambda: float((oracle()[0] * e).sum())        # noqa: E731
    _close(layer.dW, numgrad(loss, W))
    _close(layer.deltas, numgrad(loss, x))
    _close(layer.get_final_hidden_error(), numgrad(loss, h0))
    # the next minibatch starts from the final state (and cell state) of this one
    x2 = rs.randn(nin, T * N)
    _close(layer.fprop(nbe.array(x2)), neon_cell(kind, x2, *split_W(W, G, nin, H), hT,
                                                 cT, N)[0])


def _elu(alpha):
    return lambda z: np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


ACTIVATION_CASES = [  # kind, activation, gate_activation, their NumPy forms
    ("rnn", Logistic(), None, sig, sig),
    ("rnn", Explin(alpha=0.5), None, _elu(0.5), sig),
    ("lstm", Rectlin(slope=0.1), Tanh(), lambda z: np.where(z > 0, z, 0.1 * z), np.tanh),
    ("lstm", Identity(), Logistic(), lambda z: z, sig),
    ("lstm", Tanh(), Explin(), np.tanh, _elu(1.0)),
    ("gru", Explin(alpha=0.5), Logistic(), _elu(0.5), sig),
    ("gru", Rectlin(), None, lambda z: np.maximum(z, 0), sig),
]


@pytest.mark.parametrize("case", ACTIVATION_CASES, ids=lambda c: f"{c[0]}-"
                         f"{type(c[1]).__name__}-{type(c[2]).__name__}")
def test_other_activations_match_neon_equations(nbe, case):
    """activation / gate_activation transforms other than Tanh / Logistic go to the ops'
    activation parameters: forward and every gradient against the oracle."""
    kind, act, gact, np_act, np_gact = case
    nin, H, T, N = 3, 4, 4, 2
    rs = np.random.RandomState(11)
    G = NGATES[kind]
    kwargs = {"activation": act} if kind == "rnn" else {"activation": act,
                                                         "gate_activation": gact}
    layer = _layer(CLASSES[kind], (nin, T), H, Gaussian(scale=0.5), name="rec", **kwargs)
    W = rs.randn(nin + H + 1, G * H) * 0.5
    layer.W.set(W)
    x, e, h0 = rs.randn(nin, T * N), rs.randn(H, T * N), rs.randn(H, N) * 0.5
    zeros = np.zeros((H, N))

    def oracle(x=x, h0=h0, W=W):
        return neon_cell(kind, x, *split_W(W, G, nin, H), h0, zeros, N, act=np_act,
                         gact=np_gact)

    _close(layer.fprop(nbe.array(x), init_state=nbe.array(h0)), oracle()[0])
    layer.bprop(nbe.array(e))
    loss = lambda: float((oracle()[0] * e).sum())        # noqa: E731
    _close(layer.dW, numgrad(loss, W))
    _close(layer.deltas, numgrad(loss, x))
    _close(layer.get_final_hidden_error(), numgrad(loss, h0))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_reset_cells_starts_every_minibatch_from_zeros(nbe, kind):
    rs = np.random.RandomState(3)
    nin, H, T, N = 3, 4, 3, 2
    G = NGATES[kind]
    W = rs.randn(nin + H + 1, G * H) * 0.5
    keep = _layer(CLASSES[kind], (nin, T), H, Gaussian(), name="keep")
    reset = _layer(CLASSES[kind], (nin, T), H, Gaussian(), reset_cells=True, name="reset")
    keep.W.set(W)
    reset.W.set(W)
    x1, x2 = rs.randn(nin, T * N), rs.randn(nin, T * N)
    zeros = np.zeros((H, N))
    for layer in (keep, reset):
        layer.fprop(nbe.array(x1))
    fresh = neon_cell(kind, x2, *split_W(W, G, nin, H), zeros, zeros, N)[0]
    _close(reset.fprop(nbe.array(x2)), fresh)
    assert np.abs(keep.fprop(nbe.array(x2)).get() - fresh).max() > 1e-4


def test_recurrent_rectlin_is_the_relu_rnn(nbe):
    rs = np.random.RandomState(4)
    nin, H, T, N = 2, 3, 4, 2
    layer = _layer(Recurrent, (nin, T), H, Gaussian(), activation=Rectlin(), name="relu")
    W = rs.randn(nin + H + 1, H) * 0.5
    layer.W.set(W)
    x = rs.randn(nin, T * N)
    ref = neon_cell("rnn", x, *split_W(W, 1, nin, H), np.zeros((H, N)), None, N,
                    act=lambda z: np.maximum(z, 0))[0]
    _close(layer.fprop(nbe.array(x)), ref)


def test_init_and_init_inner_fill_their_blocks_bias_zero(nbe):
    layer = _layer(LSTM, (3, 2), 4, Constant(0.5), init_inner=Constant(-0.25), name="l")
    _close(layer.W_input, np.full((16, 3), 0.5))
    _close(layer.W_recur, np.full((16, 4), -0.25))
    _close(layer.b, np.zeros((16, 1)))
    gru = _layer(GRU, (3, 2), 4, Uniform(-0.1, 0.1), name="g")
    w = gru.W_recur.get()
    assert np.abs(w).max() <= 0.1 and np.abs(gru.b.get()).max() == 0


def test_model_configures_sequence_shapes(nbe):
    layers = Sequential([LookupTable(20, 6, Gaussian(), name="emb"),
                         LSTM(5, Gaussian(), name="lstm"), RecurrentSum(name="sum")])
    layers.configure(7)                    # 7 ids per sample
    emb, lstm, rsum = layers.layers
    assert emb.out_shape == (6, 7)
    assert (lstm.nin, lstm.nsteps, lstm.out_shape) == (6, 7, (5, 7))
    assert rsum.out_shape == (5, 1)


# ------------------------------------------------------------------ bidirectional
def split_biW(W, G, nin, H):
    """neon's BiRNN views: (W_input_f, W_recur_f, b_f), (W_input_b, W_recur_b, b_b)."""
    g = G * H
    return ((W[:nin].reshape(g, nin), W[2 * nin:2 * nin + H].reshape(g, H),
             W[-2:-1].reshape(g, 1)),
            (W[nin:2 * nin].reshape(g, nin), W[2 * nin + H:2 * nin + 2 * H].reshape(g, H),
             W[-1:].reshape(g, 1)))


@pytest.mark.parametrize("cls, kind", [(BiRNN, "rnn"), (BiLSTM, "lstm")])
@pytest.mark.parametrize("split", [False, True])
def test_bidirectional_matches_neon_equations(nbe, cls, kind, split):
    rs = np.random.RandomState(5 + split)
    nin, H, T, N = (4, 3, 3, 2)
    half = nin // 2 if split else nin
    G = NGATES[kind]
    layer = _layer(cls, (nin, T), H, Gaussian(), split_inputs=split, name="bi")
    assert layer.W.shape == (2 * (half + H + 1), G * H)
    assert layer.out_shape == (2 * H, T)
    W = rs.randn(*layer.W.shape) * 0.6
    layer.W.set(W)
    x, e = rs.randn(nin, T * N), rs.randn(2 * H, T * N)
    zeros = np.zeros((H, N))

    def oracle():
        fw, bw = split_biW(W, G, half, H)
        xf, xb = (x[:half], x[half:]) if split else (x, x)
        yf, hf, cf = neon_cell(kind, xf, *fw, zeros, zeros, N)
        yb, hb, cb = neon_cell(kind, xb, *bw, zeros, zeros, N, reverse=True)
        return np.concatenate([yf, yb]), (hf, hb, cf, cb)

    y = layer.fprop(nbe.array(x))
    ref, (hf, hb, cf, cb) = oracle()
    _close(y, ref)
    _close(layer.final_state()[0], hf)
    _close(layer.final_state()[1], hb)
    layer.bprop(nbe.array(e))
    loss = lambda: float((oracle()[0] * e).sum())        # noqa: E731
    _close(layer.dW, numgrad(loss, W))
    _close(layer.deltas, numgrad(loss, x))
    # state carried into the next minibatch: forward from its last step, backward from
    # its first
    x2 = rs.randn(nin, T * N)
    fw, bw = split_biW(W, G, half, H)
    xf, xb = (x2[:half], x2[half:]) if split else (x2, x2)
    ref2 = np.concatenate([neon_cell(kind, xf, *fw, hf, cf, N)[0],
                           neon_cell(kind, xb, *bw, hb, cb, N, reverse=True)[0]])
    _close(layer.fprop(nbe.array(x2)), ref2)


@pytest.mark.parametrize("deep, cls", [(DeepBiRNN, BiRNN), (DeepBiLSTM, BiLSTM)])
def test_deep_bidirectional_stacks_split_layers(nbe, deep, cls):
    rs = np.random.RandomState(6)
    nin, H, T, N = 3, 2, 4, 2
    stack = deep(H, Gaussian(scale=0.5), depth=3)
    assert [type(l) for l in stack] == [cls] * 3
    assert [l.split_inputs for l in stack] == [False, True, True]
    seq = Sequential(stack)
    seq.configure((nin, T))
    seq.allocate()
    x = rs.randn(nin, T * N)
    y = seq.fprop(nbe.array(x))
    # by hand: each layer's fprop on the previous one's output
    ref = nbe.array(x)
    for layer in stack:
        layer.reset_cells = True
    for layer in stack:
        ref = layer.fprop(ref)
    _close(y, ref.get())
    assert y.shape == (2 * H, T * N)
    d = seq.bprop(nbe.array(rs.randn(2 * H, T * N)))
    assert stack[0].need_dx is False and d is None
    assert np.abs(stack[1].dW.get()).max() > 0


# ------------------------------------------------------------------ collapsing time
@pytest.mark.parametrize("cls, T", [(RecurrentSum, 3), (RecurrentMean, 4),
                                    (RecurrentLast, 3), (RecurrentSum, 1)])
def test_recurrent_output_layers(nbe, cls, T):
    rs = np.random.RandomState(T)
    nin, N = 5, 3
    layer = _layer(cls, (nin, T), name="out")
    assert layer.out_shape == (nin, 1)
    x, e = rs.randn(nin, T * N), rs.randn(nin, N)
    steps = x.reshape(nin, T, N)
    if cls is RecurrentSum:
        ref, dref = steps.sum(axis=1), np.tile(e, T)
    elif cls is RecurrentMean:
        ref, dref = steps.mean(axis=1), np.tile(e / T, T)
    else:
        dref = np.zeros((nin, T * N))
        dref[:, -N:] = e
        ref = steps[:, -1]
    _close(layer.fprop(nbe.array(x)), ref)
    _close(layer.bprop(nbe.array(e)), dref)


# ------------------------------------------------------------------ training
def test_lstm_model_learns(nbe):
    """LookupTable -> LSTM -> RecurrentLast -> Affine(Softmax): the label is whether
    the *first* id is in the upper half of the vocabulary, so the LSTM has to carry it
    over every step. The training cost falls."""
    rs = np.random.RandomState(0)
    V, T, ndata = 8, 5, 64
    X = rs.randint(0, V, (ndata, T)).astype(np.float32)
    y = (X[:, 0] >= V // 2).astype(np.int64)
    train = ArrayIterator(X, y, nclass=2)
    layers = [LookupTable(V, 6, Uniform(-0.5, 0.5), name="emb"),
              LSTM(8, Uniform(-0.4, 0.4), reset_cells=True, name="lstm"),
              RecurrentLast(name="last"),
              Affine(2, Uniform(-0.4, 0.4), bias=Constant(0.0), activation=Softmax(),
                     name="fc")]
    model = Model(layers=layers)
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    costs = []
    opt = GradientDescentMomentum(0.5, momentum_coef=0.5)
    for _ in range(20):
        model.fit(train, optimizer=opt, num_epochs=model.epoch_index + 1, cost=cost,
                  callbacks=Callbacks(model))
        costs.append(float(model.total_cost.get()[0, 0]))
    assert costs[-1] < 0.25 * costs[0], costs
    out = model.get_outputs(train)
    assert out.shape == (ndata, 2)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("cls", [Recurrent, LSTM, GRU, BiRNN, BiLSTM])
def test_output_size_zero_names_the_layer(cls):
    with pytest.raises(ParameterError, match=rf"bad \({cls.__name__}\): output_size must "
                                             r"be a positive integer, got 0"):
        cls(0, Gaussian(), name="bad")


def test_unsupported_activations_name_the_layer():
    with pytest.raises(ParameterError, match=r"r1 \(Recurrent\): activation must be a "
                                             r"transform that maps onto a refnn "
                                             r"activation.*got Softmax"):
        Recurrent(3, Gaussian(), activation=Softmax(), name="r1")
    with pytest.raises(ParameterError, match=r"l1 \(LSTM\): gate_activation must be a "
                                             r"transform.*got Normalizer"):
        LSTM(3, Gaussian(), gate_activation=Normalizer(), name="l1")
    with pytest.raises(ParameterError, match=r"l2 \(LSTM\): activation must be.*"
                                             r"got Softmax"):
        LSTM(3, Gaussian(), activation=Softmax(), name="l2")
    with pytest.raises(ParameterError, match=r"g1 \(GRU\): gate_activation must be "
                                             r"Logistic.*got Tanh"):
        GRU(3, Gaussian(), gate_activation=Tanh(), name="g1")
    with pytest.raises(ParameterError, match=r"b1 \(BiLSTM\): gate_activation must be a "
                                             r"transform.*got Softmax"):
        BiLSTM(3, Gaussian(), gate_activation=Softmax(), name="b1")
    with pytest.raises(ParameterError, match="RecurrentOutput is the base class"):
        RecurrentOutput(name="ro")
    with pytest.raises(ParameterError, match="DeepBiLSTM: depth must be a positive"):
        DeepBiLSTM(3, Gaussian(), depth=0)
    with pytest.raises(ParameterError, match="bi_sum=True"):
        DeepBiRNN(3, Gaussian(), bi_sum=True)


def test_bad_sequences_name_the_layer(nbe):
    layer = _layer(LSTM, (3, 4), 2, Gaussian(), name="lstm7")
    with pytest.raises(ShapeError, match=r"lstm7 \(LSTM\): inputs must have shape "
                                         r"\(3, 4 \* batch\).*got \(3, 10\)"):
        layer.fprop(nbe.array(np.zeros((3, 10))))
    with pytest.raises(ShapeError, match=r"lstm7 \(LSTM\): inputs must have shape"):
        layer.fprop(nbe.array(np.zeros((2, 8))))
    with pytest.raises(ShapeError, match=r"lstm7 \(LSTM\): init_state must be a \(2, 2\)"):
        layer.fprop(nbe.array(np.zeros((3, 8))), init_state=nbe.array(np.zeros((2, 3))))
    bi = _layer(BiRNN, (3, 2), 2, Gaussian(), name="bi7")
    bi.fprop(nbe.array(np.zeros((3, 4))))
    with pytest.raises(ShapeError, match=r"bi7 \(BiRNN\): inputs must have shape "
                                         r"\(4, 2 \* batch\)"):
        bi.bprop(nbe.array(np.zeros((2, 4))))
    with pytest.raises(ShapeError, match=r"bi8 \(BiLSTM\): split_inputs=True needs an "
                                         r"even number"):
        BiLSTM(2, Gaussian(), split_inputs=True, name="bi8").configure((3, 2))
    out = _layer(RecurrentLast, (3, 4), name="last7")
    with pytest.raises(ShapeError, match=r"last7 \(RecurrentLast\): inputs must have"):
        out.fprop(nbe.array(np.zeros((3, 6))))


def test_ops_tuples():
    assert Recurrent.OPS == BiRNN.OPS == ("rnn",)
    assert LSTM.OPS == BiLSTM.OPS == ("lstm",)
    assert GRU.OPS == ("gru",)
    assert (RecurrentSum.OPS, RecurrentMean.OPS, RecurrentLast.OPS) == \
        (("seq_sum",), ("seq_mean",), ("seq_last",))
