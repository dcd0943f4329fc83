"""neon's Tensor, OpTreeNode, Block and the Backend interface.

A :class:`Tensor` wraps one array of a refnn backend (a NumPy array for the reference
and cpu backends, a ``pyopencl.array.Array`` for opencl) and never leaves it:
``get()`` is the only copy to the host. Arithmetic on Tensors builds lazy op-trees
(:class:`OpTreeNode`) that run when assigned::

    out[:] = be.maximum(x, 0) * y        # one fused kernel on OpenCL

Reductions keep the reduced axis with size 1 (``be.sum(x, axis=0)`` of a (F, N)
tensor is (1, N)); ``axis=None`` reduces to (1, 1), as in neon.
"""
import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.neon.backends import _optree


class _OpMixin:
    """Python operators build op-tree nodes (Tensor and OpTreeNode share them)."""

    __array_ufunc__ = None     # NumPy scalars defer to our reflected operators

    def __add__(self, o): return OpTreeNode.build("add", self, o)
    def __radd__(self, o): return OpTreeNode.build("add", o, self)
    def __sub__(self, o): return OpTreeNode.build("sub", self, o)
    def __rsub__(self, o): return OpTreeNode.build("sub", o, self)
    def __mul__(self, o): return OpTreeNode.build("mul", self, o)
    def __rmul__(self, o): return OpTreeNode.build("mul", o, self)
    def __truediv__(self, o): return OpTreeNode.build("div", self, o)
    def __rtruediv__(self, o): return OpTreeNode.build("div", o, self)
    def __pow__(self, o): return OpTreeNode.build("pow", self, o)
    def __rpow__(self, o): return OpTreeNode.build("pow", o, self)
    def __neg__(self): return OpTreeNode.build("neg", self, None)
    def __abs__(self): return OpTreeNode.build("abs", self, None)
    def __eq__(self, o): return OpTreeNode.build("eq", self, o)
    def __ne__(self, o): return OpTreeNode.build("ne", self, o)
    def __lt__(self, o): return OpTreeNode.build("lt", self, o)
    def __le__(self, o): return OpTreeNode.build("le", self, o)
    def __gt__(self, o): return OpTreeNode.build("gt", self, o)
    def __ge__(self, o): return OpTreeNode.build("ge", self, o)
    __hash__ = object.__hash__


class OpTreeNode(_OpMixin, tuple):
    """An OpTreeNode is a tuple of length 3: ``(op_dict, left, right)``.

    ``op_dict["op"]`` names the operation (see ``_optree``), ``left``/``right`` are
    Tensors, scalars or nodes (``right`` is None for unary ops and reductions).
    ``shape`` is inferred with NumPy broadcasting when the node is built.
    """

    def __new__(cls, op_dict, left, right=None):
        return tuple.__new__(cls, (op_dict, left, right))

    @staticmethod
    def build(op, left, right, **extra):
        _optree.check_op(op)
        for operand in (left, right):
            if isinstance(operand, np.ndarray):
                raise ParameterError(
                    f"op-tree {op!r}: NumPy arrays are not operands; wrap them with "
                    "be.array(...) first")
        node = OpTreeNode(dict(op=op, **extra), left, right)
        node.shape  # noqa: B018 -- infer (and check) shapes now, not at execution
        return node

    @property
    def op(self):
        return self[0]["op"]

    @property
    def shape(self):
        cached = self[0].get("_shape")
        if cached is None:
            cached = self[0]["_shape"] = self._infer_shape()
        return cached

    def _infer_shape(self):
        op, left, right = self[0]["op"], self[1], self[2]
        if op in _optree.REDUCTIONS:
            return _optree.reduced_shape(_shape_of(left), self[0].get("axis"))
        if op == "dot":
            return (_shape_of(left)[0], _shape_of(right)[1])
        if right is None:
            return _shape_of(left)
        return _optree.broadcast_shapes(f"op-tree {op!r}", _shape_of(left), _shape_of(right))

    def leaves(self):
        """Every Tensor leaf of the tree (depth first)."""
        for child in self[1:]:
            if isinstance(child, OpTreeNode):
                yield from child.leaves()
            elif isinstance(child, Tensor):
                yield child

    def __repr__(self):
        return f"OpTreeNode({self.op}, {self[1]!r}, {self[2]!r})"


def _shape_of(x):
    if x is None or _optree.is_scalar(x):
        return ()
    return tuple(x.shape)


class Block:
    """Simple class that identifies different elements of the computation."""
    epoch, minibatch, fprop, bprop, update = range(5)


class Tensor(_OpMixin):
    """The n-dimensional array data structure of a neon backend.

    ``backend`` is the neon backend that owns it; ``_data`` the refnn backend array
    (NumPy or pyopencl). Slicing, ``.T`` and ``reshape`` return views sharing memory.
    """

    def __init__(self, backend, data, name=None, persist_values=True):
        self.backend = backend
        self._data = data
        self.name = name
        self.persist_values = persist_values

    # ------------------------------------------------------------ metadata
    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def size(self):
        return int(np.prod(self.shape))

    @property
    def T(self):
        return Tensor(self.backend, self._data.T, name=self.name)

    def transpose(self, out=None):
        if out is None:
            return self.T
        out[:] = self.T
        return out

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Tensor(self.backend, self.backend._reshape(self._data, shape), name=self.name)

    def __len__(self):
        return self.shape[0]

    # --------------------------------------------------------------- data
    def get(self):
        """A NumPy copy of the contents (the only copy to the host)."""
        return self.backend._to_host(self._data)

    def set(self, value):
        """Copy host data ``value`` (broadcast to this shape) into the tensor; returns self."""
        self.backend._assign(self, value)
        return self

    def fill(self, value):
        self.backend._assign(self, float(value))
        return self

    def copy(self, a):
        """Copy tensor ``a`` into this one (neon's ``Tensor.copy``)."""
        self.backend._assign(self, a)
        return self

    def __getitem__(self, key):
        return Tensor(self.backend, self._data[key], name=self.name)

    def __setitem__(self, key, value):
        target = self if _is_full(key) else self[key]
        self.backend._assign(target, value)

    def asnumpyarray(self):
        return self.get()

    def __repr__(self):
        return f"<Tensor {self.name or ''} shape={self.shape} dtype={self.dtype}>"

    def __bool__(self):
        return True


def _is_full(key):
    if isinstance(key, slice):
        return key == slice(None)
    if isinstance(key, tuple):
        return all(isinstance(k, slice) and k == slice(None) for k in key) or key == ()
    return key is Ellipsis


class Backend:
    """Backend interface used to manipulate Tensor data (neon's backend.Backend).

    Concrete backends provide ``_to_host``, ``_from_host``, ``_empty``, ``_reshape``
    and ``_execute(target, tree)``; everything else -- the op-tree builders, the
    allocation helpers -- lives here.
    """

    def __init__(self, rng_seed=None, default_dtype=np.float32, batch_size=0):
        self.rng_seed = rng_seed
        self.rng = np.random.RandomState(rng_seed)
        self.default_dtype = np.dtype(default_dtype)
        self.bsz = batch_size

    # -------------------------------------------------------- allocation
    def _dtype(self, dtype):
        dtype = np.dtype(dtype or self.default_dtype)
        if dtype != self.default_dtype:
            raise ParameterError(
                f"{type(self).__name__}: tensors have the backend's dtype "
                f"{self.default_dtype.name}; got dtype={dtype.name}")
        return dtype

    def empty(self, shape, dtype=None, name=None, persist_values=True, **_):
        return Tensor(self, self._empty(_shape_tuple(shape), self._dtype(dtype)), name,
                      persist_values)

    def zeros(self, shape, dtype=None, name=None, persist_values=True, **_):
        t = self.empty(shape, dtype, name, persist_values)
        t.fill(0.0)
        return t

    def ones(self, shape, dtype=None, name=None, persist_values=True, **_):
        t = self.empty(shape, dtype, name, persist_values)
        t.fill(1.0)
        return t

    def array(self, ary, dtype=None, name=None, persist_values=True, **_):
        ary = np.asarray(ary)
        if ary.ndim == 1:
            ary = ary.reshape(-1, 1)   # neon: a 1-D array becomes a column
        if ary.dtype.kind not in "biuf":
            raise DTypeError(f"array: expected numeric data, got dtype {ary.dtype}")
        host = np.array(ary, dtype=self._dtype(dtype), order="C", copy=True)
        return Tensor(self, self._from_host(host), name, persist_values)

    def empty_like(self, t, dtype=None, name=None, persist_values=True):
        return self.empty(t.shape, dtype, name, persist_values)

    def zeros_like(self, t, dtype=None, name=None, persist_values=True):
        return self.zeros(t.shape, dtype, name, persist_values)

    def iobuf(self, dim0, x=None, dtype=None, name=None, persist_values=True,
              shared=None, parallelism=None):
        """An input/output buffer of shape (prod(dim0), bsz); a view of ``shared`` if given."""
        if x is not None:
            return x
        rows = int(np.prod(dim0)) if isinstance(dim0, (tuple, list)) else int(dim0)
        shape = (rows, self.bsz)
        if shared is not None:
            if shared.size < rows * self.bsz:
                raise ParameterError(f"iobuf: shared buffer of size {shared.size} is "
                                     f"smaller than {shape}")
            return shared.reshape(shared.size)[:rows * self.bsz].reshape(shape)
        return self.zeros(shape, dtype, name, persist_values)

    def distribute_data(self, tensor, layout):
        return False

    def begin(self, block, identifier):
        """Hook at the start of a Block (no-op)."""

    def end(self, block, identifier):
        """Hook at the end of a Block (no-op)."""

    # ------------------------------------------------------------- op-trees
    def _tree(self, op, a, b=None, out=None, **extra):
        node = OpTreeNode.build(op, a, b, **extra)
        if out is None:
            return node
        out[:] = node
        return out

    def add(self, a, b, out=None): return self._tree("add", a, b, out)
    def subtract(self, a, b, out=None): return self._tree("sub", a, b, out)
    def multiply(self, a, b, out=None): return self._tree("mul", a, b, out)
    def divide(self, a, b, out=None): return self._tree("div", a, b, out)
    true_divide = divide
    def power(self, a, b, out=None): return self._tree("pow", a, b, out)
    def maximum(self, a, b, out=None): return self._tree("maximum", a, b, out)
    def minimum(self, a, b, out=None): return self._tree("minimum", a, b, out)
    def equal(self, a, b, out=None): return self._tree("eq", a, b, out)
    def not_equal(self, a, b, out=None): return self._tree("ne", a, b, out)
    def less(self, a, b, out=None): return self._tree("lt", a, b, out)
    def less_equal(self, a, b, out=None): return self._tree("le", a, b, out)
    def greater(self, a, b, out=None): return self._tree("gt", a, b, out)
    def greater_equal(self, a, b, out=None): return self._tree("ge", a, b, out)
    def negative(self, a, out=None): return self._tree("neg", a, None, out)
    def absolute(self, a, out=None): return self._tree("abs", a, None, out)
    fabs = absolute
    def sqrt(self, a, out=None): return self._tree("sqrt", a, None, out)
    def square(self, a, out=None): return self._tree("sqr", a, None, out)
    def exp(self, a, out=None): return self._tree("exp", a, None, out)
    def log(self, a, out=None): return self._tree("log", a, None, out)
    def exp2(self, a, out=None): return self._tree("exp2", a, None, out)
    def log2(self, a, out=None): return self._tree("log2", a, None, out)
    def safelog(self, a, out=None): return self._tree("safelog", a, None, out)
    def sig(self, a, out=None): return self._tree("sig", a, None, out)
    def sig2(self, a, out=None): return self._tree("sig2", a, None, out)
    def tanh(self, a, out=None): return self._tree("tanh", a, None, out)
    def tanh2(self, a, out=None): return self._tree("tanh2", a, None, out)
    def reciprocal(self, a, out=None): return self._tree("rcp", a, None, out)
    def sgn(self, a, out=None): return self._tree("sgn", a, None, out)
    def finite(self, a, out=None): return self._tree("finite", a, None, out)
    def rint(self, a, out=None): return self._tree("rint", a, None, out)

    def clip(self, a, a_min, a_max, out=None):
        return self.minimum(self.maximum(a, a_min), a_max, out=out)

    def sum(self, a, axis=None, out=None, keepdims=True):
        return self._tree("sum", a, None, out, axis=axis)

    def max(self, a, axis=None, out=None, keepdims=True):
        return self._tree("max", a, None, out, axis=axis)

    def min(self, a, axis=None, out=None, keepdims=True):
        return self._tree("min", a, None, out, axis=axis)

    def argmax(self, a, axis=1, out=None, keepdims=True):
        return self._tree("argmax", a, None, out, axis=self._one_axis("argmax", a, axis))

    def argmin(self, a, axis=1, out=None, keepdims=True):
        return self._tree("argmin", a, None, out, axis=self._one_axis("argmin", a, axis))

    def mean(self, a, axis=None, out=None, keepdims=True):
        n = _count(a, axis)
        return self._tree("mul", self.sum(a, axis=axis), 1.0 / n, out)

    def var(self, a, axis=None, out=None, keepdims=True):
        return self.mean(self.square(a - self.mean(a, axis=axis)), axis=axis, out=out)

    def std(self, a, axis=None, out=None, keepdims=True):
        return self.sqrt(self.var(a, axis=axis), out=out)

    @staticmethod
    def _one_axis(name, a, axis):
        if axis is None:
            raise ParameterError(f"{name}: axis must be 0 or 1, got None")
        _optree.reduced_shape(_shape_of(a), axis)
        return axis

    # ------------------------------------------------------------- products
    def dot(self, a, b, out=None):
        """a @ b as an op-tree node (evaluated by the refnn backend's gemm)."""
        sa, sb = _shape_of(a), _shape_of(b)
        if len(sa) != 2 or len(sb) != 2 or sa[1] != sb[0]:
            raise ShapeError(f"dot: shapes {sa} and {sb} are not aligned")
        return self._tree("dot", a, b, out)

    def compound_dot(self, A, B, C, alpha=1.0, beta=0.0, relu=False, bsum=None):
        """C = alpha * A @ B + beta * C through the refnn backend's gemm (A, B may be .T)."""
        if relu or bsum is not None:
            raise ParameterError("compound_dot: relu/bsum fusion is not provided")
        self._gemm(A, B, C, alpha, beta)
        return C

    def onehot(self, indices, axis, out=None):
        """out[c, n] = (indices[n] == c) for axis=0 (the layout of ArrayIterator targets)."""
        if axis not in (0, 1):
            raise ParameterError(f"onehot: axis must be 0 or 1, got {axis}")
        if out is None:
            raise ParameterError("onehot: an out tensor is required")
        n_class = out.shape[axis]
        classes = self.array(np.arange(n_class))
        if axis == 0:
            out[:] = self.equal(indices.reshape((1, indices.size)), classes)
        else:
            out[:] = self.equal(indices.reshape((indices.size, 1)), classes.T)
        return out


def _shape_tuple(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _count(a, axis):
    shape = _shape_of(a)
    if axis is None:
        return int(np.prod(shape))
    return shape[axis]
