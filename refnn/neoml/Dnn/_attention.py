"""MultiheadAttention: NeoML's multi-head attention through refnn's attention ops.

    Q' = Q W_Q^T + b_Q,  K' = K W_K^T + b_K,  V' = V W_V^T + b_V      (hidden_size each)
    head_i = softmax(Q'_i K'_i^T / sqrt(hidden_size) - 1e9 * mask) V'_i
    out = dropout_if_needed(...) concat(head_1, ..., head_H) W_O^T + b_O

Layout at the edge: input blobs Q (BL, BW, Lq, H, W, D, Cq), K (BL, BW, Lk, ..., Ck),
V (BL, BW, Lk, ..., Cv): every BatchLength*BatchWidth entry is one sample, ListSize is
the sequence and the object (H*W*D*C) one step's features -- NeoML's documentation
shows (1, BW, L, 1, 1, 1, C). The projections are the ``linear`` and ``bias`` ops on the
(samples*L, object) rows; ``split_heads`` folds the heads into the op's batch
((N, L, hidden) -> (N*heads, L, hidden/heads)), ``scaled_dot_attention`` computes all
heads at once and ``merge_heads`` concatenates them again. Output blob
(BL, BW, Lq, 1, 1, 1, output_size).

Where NeoML surprises (and refnn copies it):

* the scores are scaled by 1 / sqrt(hidden_size), not 1 / sqrt(hidden_size / head_count)
  (NeoML's CMultiheadAttentionLayer, contrary to its own documentation's d_k);
* the mask (4th input, use_mask=True) is ONE (Lq, Lk) matrix shared by all samples and
  heads -- a blob of Lq*Lk numbers, e.g. (1, 1, 1, 1, Lq, 1, Lk) -- multiplied by -1e9 and
  added to the scores, so 1 blocks a key and 0 keeps it; it gets no gradient;
* changing any setting (head_count, hidden_size, output_size, dropout_rate, use_mask)
  rebuilds NeoML's inner layers and thereby drops the weights (they are redrawn at the
  next run);
* dropout (dropout_rate > 0, learning passes only) acts on the attention weights after
  the softmax, kept weights scaled by 1 / (1 - rate); a rate <= 0 means no dropout.

Weights (refnn additions, NeoML keeps them inside its composite layer): each of the four
inner FullyConnected layers Q, K, V and Out.Dense shows NeoML's FullyConnected blob
shapes: ``q_weights`` (1, hidden_size, 1, H, W, D, Cq) of the Q object, ``q_free_term``
(hidden_size, 1, 1, 1, 1, 1, 1), likewise ``k_*``, ``v_*``, and ``output_weights``
(1, output_size, 1, 1, 1, 1, hidden_size), ``output_free_term`` (output_size, 1, ...).
They start with the network's initializer (NeoML's Xavier: N(0, 1/fan_in)) and zero free
terms at the first run.
"""
import math

import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neoml.Dnn._fully_connected import FullyConnected
from refnn.neoml.Dnn._layer import Layer
from refnn.neoml.Dnn._recurrent import positive_int

#: NeoML multiplies the 0/1 mask by this before adding it to the scores
MASK_MULTIPLIER = -1e9
_PROJ = ("q", "k", "v")


class MultiheadAttention(Layer):
    """``MultiheadAttention(input_layer, head_count, hidden_size, output_size,
    dropout_rate, name=None)``: inputs Q, K, V (and, with ``use_mask``, the mask);
    one output (BL, BW, ListSize_Q, 1, 1, 1, output_size). See the module docstring
    for the formula, the layouts and NeoML's surprises."""

    OPS = ("linear", "bias", "split_heads", "scaled_dot_attention", "merge_heads",
           "dropout")
    N_INPUTS = (3, 4)

    def __init__(self, input_layer, head_count, hidden_size, output_size, dropout_rate,
                 name=None):
        where = f"MultiheadAttention {name!r}" if name else "MultiheadAttention"
        self._head_count = positive_int(where, "head_count", head_count)
        self._hidden_size = positive_int(where, "hidden_size", hidden_size)
        self._check_heads(where, self._head_count, self._hidden_size)
        self._output_size = positive_int(where, "output_size", output_size)
        self._dropout_rate = self._check_rate(where, dropout_rate)
        self._use_mask = False
        self._in_dims = {}
        self._saved = None
        super().__init__(input_layer, name)

    # --------------------------------------------------------------- properties
    @staticmethod
    def _check_heads(where, heads, hidden):
        if hidden % heads:
            raise ParameterError(f"{where}: hidden_size must be a multiple of head_count, "
                                 f"got hidden_size={hidden}, head_count={heads}")

    @staticmethod
    def _check_rate(where, rate):
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating,
                                                           np.integer)):
            raise ParameterError(f"{where}: dropout_rate must be a number, got {rate!r}")
        rate = float(rate)
        if not math.isfinite(rate) or rate >= 1:
            raise ParameterError(f"{where}: dropout_rate must be < 1 (<= 0: no dropout), "
                                 f"got {rate!r}")
        return rate

    def _rebuild(self):
        """NeoML deletes its inner layers on every setting change: the weights go."""
        for p in _PROJ + ("output",):
            for w in ("weights", "free_term"):
                self._params.pop(f"{p}_{w}", None)
                self._grads.pop(f"{p}_{w}", None)
        self._in_dims = {}

    @property
    def head_count(self):
        """The number of heads."""
        return self._head_count

    @head_count.setter
    def head_count(self, v):
        v = positive_int(self._where(), "head_count", v)
        self._check_heads(self._where(), v, self._hidden_size)
        self._head_count = v
        self._rebuild()

    @property
    def hidden_size(self):
        """The size of the trainable matrices W_Q, W_K, W_V (a multiple of head_count)."""
        return self._hidden_size

    @hidden_size.setter
    def hidden_size(self, v):
        v = positive_int(self._where(), "hidden_size", v)
        self._check_heads(self._where(), self._head_count, v)
        self._hidden_size = v
        self._rebuild()

    @property
    def output_size(self):
        """The output size (channels of the result)."""
        return self._output_size

    @output_size.setter
    def output_size(self, v):
        self._output_size = positive_int(self._where(), "output_size", v)
        self._rebuild()

    @property
    def dropout_rate(self):
        """The rate of dropout applied to the softmax (<= 0: none)."""
        return self._dropout_rate

    @dropout_rate.setter
    def dropout_rate(self, v):
        self._dropout_rate = self._check_rate(self._where(), v)
        self._rebuild()

    @property
    def use_mask(self):
        """Whether the 4th input (the mask) is used."""
        return self._use_mask

    @use_mask.setter
    def use_mask(self, v):
        self._use_mask = bool(v)
        self._rebuild()

    # ---------------------------------------------------------- weight blobs
    def _n_out(self, p):
        return self._output_size if p == "output" else self._hidden_size

    def _weights_blob(self, p):
        W = self._params.get(f"{p}_weights")
        if W is None:
            return None
        dims = self._in_dims.get(p, (1, 1, 1, W.shape[1]))
        return self._blob_of(W, (1, W.shape[0], 1) + dims)

    def _set_weights(self, p, blob):
        be = self._engine_backend()
        key = f"{p}_weights"
        self._grads.pop(key, None)
        if blob is None:
            self._params.pop(key, None)
            return
        host = self._host_float(blob, key)
        n = self._n_out(p)
        if blob.object_count != n or (p == "output" and host.size != n * self._hidden_size):
            tail = f"1, 1, 1, {self._hidden_size}" if p == "output" else "H, W, D, C"
            raise ShapeError(f"{self._where()}: {key} must have shape (1, {n}, 1, {tail}), "
                             f"got blob shape {tuple(blob.shape)}")
        self._in_dims[p] = tuple(int(s) for s in blob.shape[3:])
        self._params[key] = be.asarray(host.reshape(n, -1), dtype=np.float32)

    def _free_term_blob(self, p):
        b = self._params.get(f"{p}_free_term")
        return None if b is None else self._blob_of(b, (b.shape[0], 1, 1, 1, 1, 1, 1))

    def _set_free_term(self, p, blob):
        be = self._engine_backend()
        key = f"{p}_free_term"
        self._grads.pop(key, None)
        if blob is None:
            self._params.pop(key, None)
            return
        host = self._host_float(blob, key)
        n = self._n_out(p)
        if host.size != n:
            raise ShapeError(f"{self._where()}: {key} must have {n} elements, got blob "
                             f"shape {tuple(blob.shape)}")
        self._params[key] = be.asarray(host.reshape(-1), dtype=np.float32)

    # FullyConnected's helpers, borrowed rather than repeated
    _engine_backend = FullyConnected._engine_backend
    _host_float = FullyConnected._host_float
    _blob_of = FullyConnected._blob_of
    _accumulate = FullyConnected._accumulate

    q_weights = property(lambda s: s._weights_blob("q"), lambda s, b: s._set_weights("q", b),
                         doc="W_Q as a blob (1, hidden_size, 1, H, W, D, C) of the Q object.")
    k_weights = property(lambda s: s._weights_blob("k"), lambda s, b: s._set_weights("k", b),
                         doc="W_K as a blob (1, hidden_size, 1, H, W, D, C) of the K object.")
    v_weights = property(lambda s: s._weights_blob("v"), lambda s, b: s._set_weights("v", b),
                         doc="W_V as a blob (1, hidden_size, 1, H, W, D, C) of the V object.")
    output_weights = property(lambda s: s._weights_blob("output"),
                              lambda s, b: s._set_weights("output", b),
                              doc="W_O as a blob (1, output_size, 1, 1, 1, 1, hidden_size).")
    q_free_term = property(lambda s: s._free_term_blob("q"),
                           lambda s, b: s._set_free_term("q", b),
                           doc="b_Q as a blob (hidden_size, 1, 1, 1, 1, 1, 1).")
    k_free_term = property(lambda s: s._free_term_blob("k"),
                           lambda s, b: s._set_free_term("k", b),
                           doc="b_K as a blob (hidden_size, 1, 1, 1, 1, 1, 1).")
    v_free_term = property(lambda s: s._free_term_blob("v"),
                           lambda s, b: s._set_free_term("v", b),
                           doc="b_V as a blob (hidden_size, 1, 1, 1, 1, 1, 1).")
    output_free_term = property(lambda s: s._free_term_blob("output"),
                                lambda s, b: s._set_free_term("output", b),
                                doc="b_O as a blob (output_size, 1, 1, 1, 1, 1, 1).")

    @property
    def _trainable(self):
        return self._learning_enabled

    # ------------------------------------------------------------------ passes
    def _check_inputs(self, xs):
        where = self._where()
        want = 4 if self._use_mask else 3
        if len(xs) != want:
            raise ParameterError(
                f"{where}: takes {want} inputs (Q, K, V{', mask' if self._use_mask else ''}) "
                f"with use_mask={self._use_mask}, got {len(xs)}")
        for x, what in zip(xs, ("Q", "K", "V", "mask")):
            self._check_float(x, what)
            if len(x.shape) != 7:
                raise ShapeError(f"{where}: {what} must be a 7-D blob (BatchLength, "
                                 f"BatchWidth, ListSize, Height, Width, Depth, Channels), "
                                 f"got shape {tuple(x.shape)}")
        q, k, v = xs[:3]
        for x, what in ((k, "K"), (v, "V")):
            if tuple(x.shape[:2]) != tuple(q.shape[:2]):
                raise ShapeError(f"{where}: {what} must have Q's BatchLength x BatchWidth "
                                 f"{tuple(q.shape[:2])}, got blob shape {tuple(x.shape)}")
        if v.shape[2] != k.shape[2]:
            raise ShapeError(f"{where}: V must have K's ListSize {k.shape[2]}, got blob "
                             f"shape {tuple(v.shape)}")
        if self._use_mask:
            m, n = q.shape[2] * k.shape[2], int(np.prod(xs[3].shape))
            if n != m:
                raise ShapeError(f"{where}: the mask must hold ListSize_Q x ListSize_V = "
                                 f"{q.shape[2]} x {k.shape[2]} numbers (blob (1, 1, 1, 1, "
                                 f"{q.shape[2]}, 1, {k.shape[2]})), got blob shape "
                                 f"{tuple(xs[3].shape)}")

    def _init_params(self, be, xs):
        init = self._dnn.initializer
        sizes = {p: (tuple(int(s) for s in x.shape[3:])) for p, x in zip(_PROJ, xs)}
        sizes["output"] = (1, 1, 1, self._hidden_size)
        for p, dims in sizes.items():
            fan_in = int(np.prod(dims))
            if f"{p}_weights" not in self._params:
                W = init._draw((self._n_out(p), fan_in), fan_in)
                self._params[f"{p}_weights"] = be.asarray(W.astype(np.float32),
                                                          dtype=np.float32)
                self._in_dims[p] = dims
            W = self._params[f"{p}_weights"]
            if W.shape[1] != fan_in:
                what = {"q": "Q", "k": "K", "v": "V"}[p]
                raise ShapeError(f"{self._where()}: {what} must have object size (Height*"
                                 f"Width*Depth*Channels) {W.shape[1]} like {p}_weights, got "
                                 f"{fan_in}")
            if f"{p}_free_term" not in self._params:
                self._params[f"{p}_free_term"] = be.zeros((self._n_out(p),),
                                                          dtype=np.float32)

    def _forward(self, be, xs, training):
        self._check_inputs(xs)
        self._init_params(be, xs)
        q, k, v = xs[:3]
        N, Lq, Lk = q.shape[0] * q.shape[1], q.shape[2], k.shape[2]
        H, hid = self._head_count, self._hidden_size
        linear, bias = be.op("linear.forward"), be.op("bias.forward")
        split = be.op("split_heads.forward")
        saved = {}
        heads = []
        for p, x in zip(_PROJ, (q, k, v)):
            L = x.shape[2]
            y, s_lin = linear(x.reshape(N * L, -1), self._params[f"{p}_weights"])
            y, s_bias = bias(y, self._params[f"{p}_free_term"])
            yh, s_split = split(y.reshape(N, L, hid), heads=H)
            saved[p] = (x.shape, s_lin, s_bias, s_split)
            heads.append(yh)
        mask = None
        if self._use_mask:
            mask = xs[3].reshape(Lq, Lk) * np.float32(MASK_MULTIPLIER)
        keep = None
        if training and self._dropout_rate > 0:
            kr = 1.0 - self._dropout_rate
            ones = be.zeros((N * H, Lq, Lk), dtype=np.float32) + np.float32(1)
            seed = self._dnn.random.seed32()
            keep, _ = be.op("dropout.forward")(ones, keep=kr, seed=seed, scale=1.0 / kr)
        att, s_att = be.op("scaled_dot_attention.forward")(
            *heads, mask, keep, scale=1.0 / math.sqrt(hid))
        merged, s_merge = be.op("merge_heads.forward")(att, heads=H)
        y, s_lin = linear(merged.reshape(N * Lq, hid), self._params["output_weights"])
        y, s_bias = bias(y, self._params["output_free_term"])
        saved["att"], saved["merge"] = s_att, s_merge
        saved["output"] = (None, s_lin, s_bias, None)
        self._saved = saved
        return [y.reshape(tuple(q.shape[:3]) + (1, 1, 1, self._output_size))]

    def _backward(self, be, dys, need_dx):
        (dy,) = dys
        s = self._saved
        N, Lq = dy.shape[0] * dy.shape[1], dy.shape[2]
        lin_b, bias_b = be.op("linear.backward"), be.op("bias.backward")
        _, s_lin, s_bias, _ = s["output"]
        d, db = bias_b(dy.reshape(N * Lq, self._output_size), s_bias)
        self._accumulate("output_free_term", db)
        d, dW = lin_b(d, s_lin)
        self._accumulate("output_weights", dW)
        (d,) = be.op("merge_heads.backward")(d.reshape(N, Lq, self._hidden_size), s["merge"])
        grads = be.op("scaled_dot_attention.backward")(d, s["att"])
        dxs = []
        for p, dh, need in zip(_PROJ, grads[:3], need_dx):
            shape, s_lin, s_bias, s_split = s[p]
            (dp,) = be.op("split_heads.backward")(dh, s_split)
            dp, db = bias_b(dp.reshape(-1, self._hidden_size), s_bias)
            self._accumulate(f"{p}_free_term", db)
            dx, dW = lin_b(dp, s_lin, need_dx=need)
            self._accumulate(f"{p}_weights", dW)
            dxs.append(None if dx is None else dx.reshape(shape))
        return dxs + [None] * (len(self._links) - 3)


# ------------------------------------------------------------------ AttentionDecoder
_SCORES = ("additive", "dot_product")


class AttentionDecoder(Layer):
    """``AttentionDecoder(input_layers, score, hidden_size, output_object_size,
    output_seq_len, name=None)``: NeoML's attention decoder, a GRU-like recurrent cell
    that reads the whole input sequence through attention at every output step.

    Inputs: 0 -- the input sequence (T, BW, 1, H, W, D, C) (BatchLength = T steps of BW
    sequences; objects of C' = H*W*D*C numbers); 1 -- the special character that starts
    the output sequence: 1, output_object_size or BW * output_object_size numbers (one
    value for everything, one object for every sequence, or one object per sequence).
    Output: (output_seq_len, BW, 1, 1, 1, 1, output_object_size).

    With X_j the input steps, P_j = X_j W_P^T + b_P (hidden_size), s_0 = tanh(X_0 W_I^T),
    y_0 the special character, at each output step t (as NeoML's
    CAttentionRecurrentLayer, whose update gate u weighs the NEW candidate):

        score_j = w . tanh(P_j + s_{t-1} W_S^T)     (score="additive")
        score_j = P_j . s_{t-1}                      (score="dot_product")
        c = sum_j softmax_j(score)_j X_j             (the context: raw input steps)
        r, u = sigmoid([c, y_{t-1}, s_{t-1}] W_G^T + b_G)          (reset, update)
        m = tanh([c, y_{t-1}, r * s_{t-1}] W_M^T + b_M)
        s_t = u * m + (1 - u) * s_{t-1}
        y_t = softmax([c, y_{t-1}, s_{t-1}] W_O^T + b_O)            (the output object)

    (y_t uses the state before the update, as in NeoML.) The cell is refnn's ``gru`` op
    on x_t = [c, y_{t-1}] with z = 1 - u (its weights stored in the op's layout, rows
    z, r, n); the attention is ``additive_attention`` or ``scaled_dot_attention`` (scale 1)
    with the decoder state as the single query; the projections are ``linear``/``bias``,
    the output ``softmax``. x_t = [c, y_{t-1}] is joined with the backend's column-block
    copy ``be.copy_columns`` (c into columns [0, C), y into [C, C + O)); the backward
    pass splits dx_t back into dc and dy_{t-1} with the same copy.

    Weights are drawn at the first run (the network's initializer, fan-in as NeoML's
    FullyConnected layers; zero free terms) and kept in ``_params``; changing
    ``score``, ``hidden_layer_size`` or ``output_object_size`` drops them (NeoML rebuilds
    its inner layers), ``output_seq_len`` keeps them. Teacher forcing is not provided.
    """

    OPS = ("linear", "bias", "tanh", "split_heads", "additive_attention",
           "scaled_dot_attention", "gru", "softmax")
    N_INPUTS = (2, 2)

    def __init__(self, input_layers, score, hidden_size, output_object_size, output_seq_len,
                 name=None):
        where = f"AttentionDecoder {name!r}" if name else "AttentionDecoder"
        self._score = self._check_score(where, score)
        self._hidden = positive_int(where, "hidden_size", hidden_size)
        self._out_size = positive_int(where, "output_object_size", output_object_size)
        self._seq_len = positive_int(where, "output_seq_len", output_seq_len)
        self._saved = None
        super().__init__(input_layers, name)

    @staticmethod
    def _check_score(where, score):
        if score not in _SCORES:
            raise ParameterError(f"{where}: score must be 'additive' or 'dot_product', "
                                 f"got {score!r}")
        return score

    def _drop(self):
        self._params.clear()
        self._grads.clear()

    @property
    def score(self):
        """The estimate function: 'additive' or 'dot_product'."""
        return self._score

    @score.setter
    def score(self, v):
        v = self._check_score(self._where(), v)
        if v != self._score:
            self._score = v
            self._drop()

    @property
    def hidden_layer_size(self):
        """The size of the hidden layer (the decoder state)."""
        return self._hidden

    @hidden_layer_size.setter
    def hidden_layer_size(self, v):
        self._hidden = positive_int(self._where(), "hidden_layer_size", v)
        self._drop()

    hidden_size = hidden_layer_size

    @property
    def output_object_size(self):
        """The number of channels of each output object."""
        return self._out_size

    @output_object_size.setter
    def output_object_size(self, v):
        self._out_size = positive_int(self._where(), "output_object_size", v)
        self._drop()

    @property
    def output_seq_len(self):
        """The length of the output sequence."""
        return self._seq_len

    @output_seq_len.setter
    def output_seq_len(self, v):
        self._seq_len = positive_int(self._where(), "output_seq_len", v)

    @property
    def _trainable(self):
        return self._learning_enabled

    # ------------------------------------------------------------------ passes
    def _shapes(self, xs):
        where = self._where()
        x, y0 = xs
        for a, what in ((x, "the input sequence"), (y0, "the special character")):
            self._check_float(a, what)
            if len(a.shape) != 7:
                raise ShapeError(f"{where}: {what} must be a 7-D blob (BatchLength, "
                                 f"BatchWidth, ListSize, Height, Width, Depth, Channels), "
                                 f"got shape {tuple(a.shape)}")
        T, N, LS = x.shape[:3]
        if LS != 1:
            raise ShapeError(f"{where}: the input sequence must have ListSize 1 (BatchLength "
                             f"= steps, BatchWidth = sequences), got blob shape "
                             f"{tuple(x.shape)}")
        C = int(np.prod(x.shape[3:]))
        n0 = int(np.prod(y0.shape))
        n_out = self._out_size
        if n0 not in (1, n_out, N * n_out):
            raise ShapeError(f"{where}: the special character must hold 1, "
                             f"output_object_size={n_out} or BatchWidth x output_object_size="
                             f"{N * n_out} numbers, got blob shape {tuple(y0.shape)}")
        return T, N, C

    def _init_params(self, be, C):
        H, n_out = self._hidden, self._out_size
        In = C + n_out
        fan = {"p_w": C, "i_w": C, "s_w": H, "gru_w": In + H, "gru_u": In + H,
               "o_wx": In + H, "o_ws": In + H}
        shapes = {"p_w": (H, C), "i_w": (H, C), "s_w": (H, H), "gru_w": (3 * H, In),
                  "gru_u": (3 * H, H), "o_wx": (n_out, In), "o_ws": (n_out, H)}
        if self._score != "additive":
            del shapes["s_w"]
        if "p_w" in self._params and self._params["p_w"].shape[1] != C:
            raise ShapeError(f"{self._where()}: the input sequence must have object size "
                             f"(Height*Width*Depth*Channels) {self._params['p_w'].shape[1]} "
                             f"like the weights, got {C}")
        init = self._dnn.initializer
        for k, shape in shapes.items():
            if k not in self._params:
                W = init._draw(shape, fan[k])
                self._params[k] = be.asarray(W.astype(np.float32), dtype=np.float32)
        zeros = {"p_b": H, "gru_b": 3 * H, "o_b": n_out}
        if self._score == "additive" and "score_w" not in self._params:
            w = init._draw((1, H), H).reshape(H)
            self._params["score_w"] = be.asarray(w.astype(np.float32), dtype=np.float32)
        for k, n in zeros.items():
            if k not in self._params:
                self._params[k] = be.zeros((n,), dtype=np.float32)

    def _first_output(self, be, y0, N):
        """y_0 (N, O) from the special character: per sequence as given, or one object
        (or one number) broadcast to every sequence as ones (N, 1) @ row (1, O)."""
        n_out = self._out_size
        n0 = int(np.prod(y0.shape))
        flat = y0.reshape(n0)
        if n0 == N * n_out:
            return flat.reshape(N, n_out)
        linear = be.op("linear.forward")
        col = flat.reshape(n0, 1)                     # the W (n_out, 1) of ones @ W^T
        if n0 == 1:                                   # (n_out, 1) copies of the number
            col = linear(be.zeros((n_out, 1), dtype=np.float32) + np.float32(1), col)[0]
        return linear(be.zeros((N, 1), dtype=np.float32) + np.float32(1), col)[0]

    def _forward(self, be, xs, training):
        T, N, C = self._shapes(xs)
        self._in_shape = tuple(xs[0].shape)
        self._init_params(be, C)
        p, H, n_out = self._params, self._hidden, self._out_size
        op = be.op
        linear, bias = op("linear.forward"), op("bias.forward")
        x_tnc = xs[0].reshape(T, N, C)
        x_ntc, s_perm = op("split_heads.forward")(x_tnc.reshape(1, T, N * C), heads=N)
        P, s_p = linear(x_ntc.reshape(N * T, C), p["p_w"])
        P, s_pb = bias(P, p["p_b"])
        P = P.reshape(N, T, H)
        z0, s_i = linear(x_tnc.reshape(T * N, C)[:N], p["i_w"])
        s, s_t0 = op("tanh.forward")(z0)
        y = self._first_output(be, xs[1], N)
        steps, outs = [], []
        for _ in range(self._seq_len):
            st = {}
            if self._score == "additive":
                h, st["h"] = linear(s, p["s_w"])
                c, st["att"] = op("additive_attention.forward")(
                    h.reshape(N, 1, H), P, x_ntc, p["score_w"])
            else:
                c, st["att"] = op("scaled_dot_attention.forward")(
                    s.reshape(N, 1, H), P, x_ntc, scale=1.0)
            x_t = be.empty((N, C + n_out), dtype=np.float32)      # [c, y_{t-1}]
            be.copy_columns(c.reshape(N, C), 0, x_t, 0, C)
            be.copy_columns(y, 0, x_t, C, n_out)
            hs, st["gru"] = op("gru.forward")(x_t.reshape(1, N, C + n_out), p["gru_w"],
                                              p["gru_u"], p["gru_b"], s)
            lx, st["ox"] = linear(x_t, p["o_wx"])
            ls, st["os"] = linear(s, p["o_ws"])
            logits, st["ob"] = bias(lx + ls, p["o_b"])
            y, st["soft"] = op("softmax.forward")(logits)
            outs.append(y)
            steps.append(st)
            s = hs.reshape(N, H)
        out = be.empty((self._seq_len, N, n_out), dtype=np.float32)
        for t, y_t in enumerate(outs):
            out[t] = y_t
        self._saved = (T, N, C, s_perm, s_p, s_pb, s_i, s_t0, steps)
        return [out.reshape(self._seq_len, N, 1, 1, 1, 1, n_out)]

    def _backward(self, be, dys, need_dx):
        (dy,) = dys
        T, N, C, s_perm, s_p, s_pb, s_i, s_t0, steps = self._saved
        H, n_out, L = self._hidden, self._out_size, self._seq_len
        op = be.op
        lin_b, bias_b = op("linear.backward"), op("bias.backward")
        dy = dy.reshape(L, N, n_out)
        grads = {}

        def acc(k, g):
            grads[k] = g if k not in grads else grads[k] + g

        ds = be.zeros((N, H), dtype=np.float32)
        dy_next = be.zeros((N, n_out), dtype=np.float32)
        dP = be.zeros((N, T, H), dtype=np.float32)
        dX = be.zeros((N, T, C), dtype=np.float32)
        for t in reversed(range(L)):
            st = steps[t]
            (dlog,) = op("softmax.backward")(dy[t] + dy_next, st["soft"])
            dlog, db = bias_b(dlog, st["ob"])
            acc("o_b", db)
            dx_t, dW = lin_b(dlog, st["ox"])
            acc("o_wx", dW)
            ds_prev, dW = lin_b(dlog, st["os"])
            acc("o_ws", dW)
            dx_g, dw, du, db, dh0 = op("gru.backward")(ds.reshape(1, N, H), st["gru"])
            acc("gru_w", dw)
            acc("gru_u", du)
            acc("gru_b", db)
            ds_prev = ds_prev + dh0
            dx_t = dx_t + dx_g.reshape(N, C + n_out)
            dc = be.copy_columns(dx_t, 0, be.empty((N, C), dtype=dx_t.dtype), 0, C)
            dy_next = be.copy_columns(dx_t, C, be.empty((N, n_out), dtype=dx_t.dtype), 0,
                                      n_out)
            if self._score == "additive":
                dq, dk, dv, dw = op("additive_attention.backward")(dc.reshape(N, 1, C),
                                                                   st["att"])
                acc("score_w", dw)
                dsa, dW = lin_b(dq.reshape(N, H), st["h"])
                acc("s_w", dW)
            else:
                dq, dk, dv = op("scaled_dot_attention.backward")(dc.reshape(N, 1, C),
                                                                 st["att"])
                dsa = dq.reshape(N, H)
            ds = ds_prev + dsa
            dP = dP + dk
            dX = dX + dv
        (dz0,) = op("tanh.backward")(ds, s_t0)
        dX0, dW = lin_b(dz0, s_i)
        acc("i_w", dW)
        dPr, db = bias_b(dP.reshape(N * T, H), s_pb)
        acc("p_b", db)
        dXp, dW = lin_b(dPr, s_p)
        acc("p_w", dW)
        dX = dX + dXp.reshape(N, T, C)
        (dx_tnc,) = op("split_heads.backward")(dX, s_perm)
        dx_rows = dx_tnc.reshape(T * N, C)
        dx_rows[:N] += dX0
        if self._learning_enabled:
            for k, g in grads.items():
                self._grads[k] = g if k not in self._grads else self._grads[k] + g
        x_shape = (T, N, 1) + tuple(int(v) for v in self._in_shape[3:])
        return [dx_rows.reshape(x_shape) if need_dx[0] else None, None]
