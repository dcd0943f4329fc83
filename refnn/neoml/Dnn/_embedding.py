"""Embedding layers of the NeoML facade: MultichannelLookup, AccumulativeLookup,
PositionalEmbedding and TiedEmbeddings through refnn's embedding ops
(``refnn.ops.embedding``: lookup, accumulative_lookup, positional_*) and ``linear``
(TiedEmbeddings).

Ids. The lookup ops check every id against the table and raise (never wrap around);
the layers re-raise with their own name in front. AccumulativeLookup takes an int32
blob; MultichannelLookup takes int32 or float ids (a float id is truncated to an int, as
NeoML's C cast does) and reads them to the host once per pass (ids are inputs, never
gradients) to split the channels.

Learning. AccumulativeLookup's table is a parameter like any other: its gradient is the
op's dense scatter-add and the network's solver updates it (as NeoML's
CAccumulativeLookupLayer). MultichannelLookup learns as NeoML's CMultichannelLookupLayer:
by default ("internal" learning, ``use_framework_learning=False``) its backward pass
applies plain SGD to the rows its ids touched, in place, with the solver's learning rate
-- refnn's sparse ``lookup_sgd`` op, table[id] -= learning_rate * dy, no momentum, no
regularisation, no averaging over run_and_backward calls, and (as in NeoML) already in
``run_and_backward``; with ``use_framework_learning=True`` the dense ``lookup.backward``
gradient goes to the solver like any other. A TiedEmbeddings layer always hands its table
gradient to the solver (NeoML adds it to the lookup's parameter gradient).

Channel layout. MultichannelLookup joins the lookups of its channels (and the extra
input channels, passed through) along Channels: each part (rows, D_c) is copied into its
columns [o_c, o_c + D_c) of the (rows, sum D_c) output with the backend's column-block
copy ``be.copy_columns``; the backward pass copies the same columns of the output
gradient back out, one (rows, D_c) block per table.
"""
import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.neoml.Dnn._initializer import Initializer
from refnn.neoml.Dnn._layer import Layer, rows
from refnn.neoml.Dnn._recurrent import _Weighted, call_op, positive_int, sequence_shape


def _check_ids_dtype(layer, x, floats_ok):
    kind = np.dtype(x.dtype).kind
    if kind == "i" or (floats_ok and kind == "f"):
        return
    want = "an int32 or float32" if floats_ok else "an int32"
    raise DTypeError(f"{layer._where()}: input must be {want} blob of ids, got "
                     f"{np.dtype(x.dtype).name}")


# ================================================================= AccumulativeLookup
class AccumulativeLookup(_Weighted):
    """Sum of the vectors of several values of one discrete feature
    (``AccumulativeLookup(input_layer, count, size, name=None)``).

    Input: an int32 blob; every object (BatchLength*BatchWidth*ListSize of them) holds
    K = Height*Width*Depth*Channels ids in [0, count). Output (BL, BW, LS, 1, 1, 1, size):
    y[n] = sum_k table[ids[n, k]]. The table (count, size) starts from the network's
    initializer at the first run, with NeoML's input size max(K // 2, 1)
    (CBaseLayer::InitializeParamBlob takes half the input object size).
    """

    OPS = ("accumulative_lookup",)

    def __init__(self, input_layer, count, size, name=None):
        where = f"AccumulativeLookup {name!r}"
        self._count = positive_int(where, "count", count)
        self._size = positive_int(where, "size", size)
        self._saved = None
        super().__init__(input_layer, name)

    @property
    def count(self):
        """The number of vectors in the table."""
        return self._count

    @count.setter
    def count(self, v):
        self._count = positive_int(self._where(), "count", v)
        self._drop_params()

    @property
    def size(self):
        """The vector length."""
        return self._size

    @size.setter
    def size(self, v):
        self._size = positive_int(self._where(), "size", v)
        self._drop_params()

    def _forward(self, be, xs, training):
        x = xs[0]
        sequence_shape(self, x)
        _check_ids_dtype(self, x, floats_ok=False)
        if "table" not in self._params:
            # NeoML's CBaseLayer::InitializeParamBlob: fan_in = input ObjectSize / 2
            K = int(np.prod(x.shape[3:]))
            t = self._dnn.initializer._draw((self._count, self._size), max(K // 2, 1))
            self._params["table"] = be.asarray(t.astype(np.float32), dtype=np.float32)
        y, self._saved = call_op(self, be, "accumulative_lookup.forward", rows(x),
                                 self._params["table"])
        return [y.reshape(tuple(x.shape[:3]) + (1, 1, 1, self._size))]

    def _backward(self, be, dys, need_dx):
        _, dtable = call_op(self, be, "accumulative_lookup.backward",
                            dys[0].reshape(-1, self._size), self._saved)
        self._accumulate("table", dtable)
        return [None]


# ================================================================= MultichannelLookup
def _dimensions(where, dims):
    if dims is None:
        return []
    try:
        out = [(int(c), int(s)) for c, s in dims]
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: dimensions must be a list of (count, size) pairs, "
                             f"got {dims!r}") from None
    for c, s in out:
        if c < 1 or s < 1:
            raise ParameterError(f"{where}: every (count, size) of dimensions must be "
                                 f"positive, got {(c, s)}")
    return out


class MultichannelLookup(_Weighted):
    """Vector representations of several discrete features (``MultichannelLookup(
    input_layers, dimensions=None, name=None)``; ``dimensions``: one (count, size) per
    table).

    Input: a blob of ids (int32 or float) whose Channels (>= the number of tables) hold,
    per object, one id per table: channel c is looked up in table c, the channels beyond
    the tables are passed through. Output: the input's dimensions with Channels =
    sum(sizes) + the extra channels. No gradient flows back to the ids. Tables start from
    ``initialize(initializer)``'s initializer, else the network's (with NeoML's input
    size 1: Xavier draws N(0, 1)), at the first run; the module docstring says how they
    learn (``use_framework_learning``); ``get_embeddings``/``set_embeddings`` read and write them as
    (count, 1, 1, 1, 1, 1, size) blobs.
    """

    OPS = ("lookup", "lookup_sgd")

    def __init__(self, input_layers, dimensions=None, name=None):
        self._dims = _dimensions(f"MultichannelLookup {name!r}", dimensions)
        self._initializer = None
        self._framework = False
        self._saved = None
        super().__init__(input_layers, name)

    @property
    def dimensions(self):
        """[(count, size)] of the tables."""
        return list(self._dims)

    @dimensions.setter
    def dimensions(self, dims):
        self._dims = _dimensions(self._where(), dims)
        self._drop_params()

    @property
    def use_framework_learning(self):
        """False (NeoML's default): the backward pass updates the seen rows in place with
        plain SGD at the solver's learning rate (``lookup_sgd``); True: the dense table
        gradient goes to the solver (NeoML's SetUseFrameworkLearning)."""
        return self._framework

    @use_framework_learning.setter
    def use_framework_learning(self, v):
        self._framework = bool(v)

    def initialize(self, initializer):
        """Fill this layer's tables with ``initializer`` (not the network's)."""
        if not isinstance(initializer, Initializer):
            raise ParameterError(f"{self._where()}: initialize needs a neoml initializer, "
                                 f"got {initializer!r}")
        self._initializer = initializer

    def _index(self, index):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                or not 0 <= index < len(self._dims):
            raise ParameterError(f"{self._where()}: table index must be in [0, "
                                 f"{len(self._dims)}), got {index!r}")
        return int(index)

    def get_embeddings(self, index):
        """Table ``index`` as a (count, 1, 1, 1, 1, 1, size) blob copy; None before the
        first run unless set."""
        i = self._index(index)
        c, s = self._dims[i]
        return self._param_blob(f"table{i}", (c, 1, 1, 1, 1, 1, s))

    def set_embeddings(self, index, blob):
        """Replace table ``index`` by a blob of count objects of size numbers."""
        i = self._index(index)
        c, s = self._dims[i]
        self._set_param(f"table{i}", blob, c, s, f"({c}, 1, 1, 1, 1, 1, {s}) (count x size)")

    def _table(self, be, i):
        name = f"table{i}"
        if name not in self._params:
            c, s = self._dims[i]
            init = self._initializer or self._dnn.initializer
            # NeoML initializes the tables with an input size of 1 (Xavier: N(0, 1))
            self._params[name] = be.asarray(init._draw((c, s), 1).astype(np.float32),
                                            dtype=np.float32)
        return self._params[name]

    def _check_float_ids(self, ids):
        """Float ids are truncated to int (NeoML's C cast) and the lookup op checks the
        ints; a float the cast cannot represent (NaN, inf, beyond int32) would become an
        arbitrary int (NaN -> INT_MIN on x86), so it raises here, with its value."""
        for i, (count, _) in enumerate(self._dims):
            col = ids[:, i].astype(np.float64)
            bad = ~np.isfinite(col) | (col <= -2.0 ** 31 - 1) | (col >= 2.0 ** 31)
            if bad.any():
                raise ParameterError(f"{self._where()}: lookup: ids must be in [0, "
                                     f"{count - 1}] (the table has {count} rows), got id "
                                     f"{float(col[np.argmax(bad)])} in channel {i}")

    def _forward(self, be, xs, training):
        x = xs[0]
        sequence_shape(self, x)
        _check_ids_dtype(self, x, floats_ok=True)
        n, C = len(self._dims), int(x.shape[6])
        if n == 0:
            raise ParameterError(f"{self._where()}: dimensions is empty -- no tables to look "
                                 f"up")
        if C < n:
            raise ShapeError(f"{self._where()}: input Channels must be >= the number of "
                             f"tables {n}, got {C} (blob shape {tuple(x.shape)})")
        host = be.to_host(x).reshape(-1, C)
        if host.dtype.kind == "f":
            self._check_float_ids(host[:, :n])
        widths = [s for _, s in self._dims] + [C - n]
        total = sum(widths)
        offsets = [int(o) for o in np.cumsum([0] + widths)]
        y, saved = None, []
        for i in range(n):
            ids = be.asarray(np.ascontiguousarray(host[:, i:i + 1], dtype=np.int32),
                             dtype=np.int32)
            part, s_lookup = call_op(self, be, "lookup.forward", ids, self._table(be, i))
            part = part.reshape(-1, widths[i])
            if y is None:
                y = be.empty((part.shape[0], total), dtype=part.dtype)
            be.copy_columns(part, 0, y, offsets[i], widths[i])
            saved.append((ids, s_lookup))
        if C > n:
            extra = be.asarray(np.ascontiguousarray(host[:, n:], dtype=y.dtype), dtype=y.dtype)
            be.copy_columns(extra, 0, y, offsets[n], C - n)
        self._saved = (saved, offsets)
        return [y.reshape(tuple(x.shape[:6]) + (total,))]

    def _backward(self, be, dys, need_dx):
        dy = dys[0]
        dy = dy.reshape(-1, int(dy.shape[6]))
        if not self._learning_enabled:
            return [None]
        saved, offsets = self._saved
        for i, (ids, s_lookup) in enumerate(saved):
            width = self._dims[i][1]
            part = be.copy_columns(dy, offsets[i], be.empty((dy.shape[0], width),
                                                            dtype=dy.dtype), 0, width)
            part = part.reshape(-1, 1, width)
            if self._framework:
                _, dtable = call_op(self, be, "lookup.backward", part, s_lookup)
                self._accumulate(f"table{i}", dtable)
            else:
                call_op(self, be, "lookup_sgd.update", self._params[f"table{i}"], ids, part,
                        learning_rate=self._dnn.solver.learning_rate)
        return [None]


# ================================================================= PositionalEmbedding
TYPES = ("learnable_addition", "transformers")


class PositionalEmbedding(_Weighted):
    """Adds a vector per sequence position (``PositionalEmbedding(input_layer, type_name,
    name=None)``).

    Input (1, BW, LS, H, W, D, C): BW sequences of LS positions (BatchLength must be 1),
    vectors of H*W*D*C numbers (``'transformers'``: H = W = D = 1). ``'transformers'``
    adds the fixed sinusoidal table of refnn's ``positional_sinusoidal`` op (sin on even,
    cos on odd channels); ``'learnable_addition'`` adds trainable ``addends``
    (1, 1, LS, H, W, D, C), drawn at the first run from U(-0.02, 0.02) with the
    network's random generator (NeoML's BERT initialisation, not the network's
    initializer).
    """

    OPS = ("positional_sinusoidal", "positional_learnable")

    def __init__(self, input_layer, type_name, name=None):
        self._type = self._check_type(f"PositionalEmbedding {name!r}", type_name)
        self._dims = None         # (LS, H, W, D, C) of the addends
        self._saved = None
        super().__init__(input_layer, name)

    @staticmethod
    def _check_type(where, v):
        if v not in TYPES:
            raise ParameterError(f"{where}: type_name must be one of {TYPES}, got {v!r}")
        return v

    @property
    def type(self):
        """'learnable_addition' or 'transformers'."""
        return self._type

    @type.setter
    def type(self, v):
        self._type = self._check_type(self._where(), v)

    @property
    def _trainable(self):
        return self._learning_enabled and self._type == "learnable_addition"

    @property
    def addends(self):
        """The trainable addends as a (1, 1, LS, H, W, D, C) blob copy; None before the
        first run unless set."""
        a = self._params.get("addends")
        return None if a is None else self._blob_of(a, (1, 1) + self._dims)

    @addends.setter
    def addends(self, blob):
        if blob is None:
            self._set_param("addends", None, 0, None, "")
            return
        s = tuple(int(v) for v in blob.shape)
        if len(s) != 7 or s[0] * s[1] != 1:
            raise ShapeError(f"{self._where()}: addends must have shape (1, 1, ListSize, "
                             f"Height, Width, Depth, Channels), got {s}")
        self._set_param("addends", blob, s[2], -1, "(1, 1, ListSize, H, W, D, C)")
        self._dims = s[2:]

    def _forward(self, be, xs, training):
        x = xs[0]
        sequence_shape(self, x)
        self._check_float(x)
        s = tuple(int(v) for v in x.shape)
        if s[0] != 1:
            raise ShapeError(f"{self._where()}: input BatchLength must be 1 (sequences run "
                             f"along ListSize), got shape {s}")
        N, T, D = s[1], s[2], int(np.prod(s[3:]))
        x3 = x.reshape(N, T, D)
        if self._type == "transformers":
            if s[3] * s[4] * s[5] != 1:
                raise ShapeError(f"{self._where()}: 'transformers' needs Height = Width = "
                                 f"Depth = 1, got shape {s}")
            y, saved = call_op(self, be, "positional_sinusoidal.forward", x3)
        else:
            if "addends" not in self._params:
                # NeoML (CPositionalEmbeddingLayer::initializeLearnableAddition): BERT's
                # U(-0.02, 0.02) from the network's random generator, whatever the
                # network's initializer
                a = self._dnn.random.uniform(-0.02, 0.02, (T, D)).astype(np.float32)
                self._params["addends"] = be.asarray(a, dtype=np.float32)
                self._dims = s[2:]
            if self._dims[1:] != s[3:]:
                raise ShapeError(f"{self._where()}: input objects must have the addends' "
                                 f"shape {self._dims[1:]}, got {s[3:]}")
            y, saved = call_op(self, be, "positional_learnable.forward", x3,
                               self._params["addends"])
        self._saved = (s, self._type, saved)
        return [y.reshape(s)]

    def _backward(self, be, dys, need_dx):
        s, kind, saved = self._saved
        dy = dys[0].reshape(s[1], s[2], -1)
        if kind == "transformers":
            (dx,) = call_op(self, be, "positional_sinusoidal.backward", dy, saved)
        else:
            dx, da = call_op(self, be, "positional_learnable.backward", dy, saved)
            self._accumulate("addends", da)
        return [dx.reshape(s)]


# ===================================================================== TiedEmbeddings
class TiedEmbeddings(Layer):
    """Scores against a MultichannelLookup's table (Press & Wolf 2016;
    ``TiedEmbeddings(input_layers, embeddings_layer_name, channel, name=None)``).

    Each input (BL, BW, LS, 1, 1, 1, size) gives y = x E^T, E = table ``channel`` of the
    named layer (count, size): output (BL, BW, LS, 1, 1, 1, count). The gradient of E is
    added to that layer's table gradient (the table is shared, trained once by the
    solver).
    """

    OPS = ("linear",)
    N_INPUTS = (1, None)
    N_OUTPUTS = None

    def __init__(self, input_layers, embeddings_layer_name, channel, name=None):
        where = f"TiedEmbeddings {name!r}"
        self._layer_name = self._check_name(where, embeddings_layer_name)
        self._channel = self._check_channel(where, channel)
        self._saved = []
        super().__init__(input_layers, name)

    @staticmethod
    def _check_name(where, v):
        if not isinstance(v, str):
            raise ParameterError(f"{where}: embeddings_layer_name must be a str, got {v!r}")
        return v

    @staticmethod
    def _check_channel(where, v):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ParameterError(f"{where}: channel must be an int >= 0, got {v!r}")
        return int(v)

    @property
    def embeddings_layer_name(self):
        """The name of the MultichannelLookup whose table is used."""
        return self._layer_name

    @embeddings_layer_name.setter
    def embeddings_layer_name(self, v):
        self._layer_name = self._check_name(self._where(), v)

    @property
    def channel(self):
        """The table (channel) index in that layer."""
        return self._channel

    @channel.setter
    def channel(self, v):
        self._channel = self._check_channel(self._where(), v)

    def _lookup(self):
        layer = self._dnn.layers.get(self._layer_name) if self._dnn is not None else None
        if not isinstance(layer, MultichannelLookup):
            raise ParameterError(f"{self._where()}: embeddings_layer_name "
                                 f"{self._layer_name!r} must name a MultichannelLookup of "
                                 f"the network, got {layer!r}")
        if self._channel >= len(layer.dimensions):
            raise ParameterError(f"{self._where()}: channel {self._channel} is out of range "
                                 f"for {self._layer_name!r} with {len(layer.dimensions)} "
                                 f"table(s)")
        return layer

    @property
    def _trainable(self):
        try:
            return self._lookup()._learning_enabled
        except ParameterError:
            return False

    def _forward(self, be, xs, training):
        lookup = self._lookup()
        table = lookup._table(be, self._channel)
        count, size = lookup.dimensions[self._channel]
        self._saved, ys = [], []
        for i, x in enumerate(xs):
            sequence_shape(self, x, f"input {i}")
            self._check_float(x, f"input {i}")
            if int(np.prod(x.shape[3:])) != size:
                raise ShapeError(f"{self._where()}: input {i} must have object size {size} "
                                 f"(the embedding size of {self._layer_name!r} channel "
                                 f"{self._channel}), got shape {tuple(x.shape)}")
            y, saved = call_op(self, be, "linear.forward", rows(x), table)
            self._saved.append((tuple(x.shape), saved))
            ys.append(y.reshape(tuple(x.shape[:3]) + (1, 1, 1, count)))
        return ys

    def _backward(self, be, dys, need_dx):
        lookup = self._lookup()
        dxs = []
        for (shape, saved), dy, need in zip(self._saved, dys, need_dx):
            if dy is None:
                dxs.append(None)
                continue
            dx, dE = call_op(self, be, "linear.backward", rows(dy), saved, need_dx=need)
            lookup._accumulate(f"table{self._channel}", dE)
            dxs.append(None if dx is None else dx.reshape(shape))
        return dxs
