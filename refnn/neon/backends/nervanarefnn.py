"""The neon backends of refnn: a neon Backend wrapping one refnn backend (``be.rb``).

* :class:`NervanaRefnn` -- tensors are NumPy arrays (refnn's ``reference`` and ``cpu``
  backends); op-trees are evaluated with NumPy, ``dot`` with the refnn backend's gemm.
* :class:`NervanaRefnnOpenCL` -- tensors are ``pyopencl.array.Array`` on the OpenCL
  device and stay there; each op-tree compiles into ONE fused elementwise kernel
  (reductions into one small kernel each, see ``_clfuse``), cached by structure.

Layers call refnn ops through ``be.rb.op("relu.forward")`` and convert neon's
(features, batch) layout to the ops' batch-first layout with ``be.to_nc`` /
``be.from_nc`` (``rb.transpose2d``).
"""
import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.neon.backends import _optree
from refnn.neon.backends.backend import Backend, OpTreeNode, Tensor, _shape_of
from refnn.neon.backends.layer_refnn import LayerOpsMixin


class NervanaRefnn(LayerOpsMixin, Backend):
    """neon backend over a host refnn backend (reference or cpu); the conv, pool, LRN
    and batch-norm methods (``fprop_conv`` ...) come from ``layer_refnn.LayerOpsMixin``."""

    def __init__(self, rb, rng_seed=None, batch_size=0, name=None):
        super().__init__(rng_seed=rng_seed, default_dtype=rb.dtype, batch_size=batch_size)
        self.rb = rb
        self.backend_name = name or rb.name

    def __repr__(self):
        return f"<{type(self).__name__} {self.backend_name!r} over {self.rb!r}>"

    # -------------------------------------------------- layout at the op edge
    def to_nc(self, t):
        """neon (features, batch) Tensor -> contiguous batch-first (N, C) backend array.

        A tensor that is itself the transposed view of a contiguous (N, C) array (what
        ``from_nc(a, view=True)`` returns) gives that array back without a copy."""
        a = t._data if isinstance(t, Tensor) else t
        if a.ndim == 2 and a.T.flags.c_contiguous:
            return a.T
        return self._t2d(self._contiguous(t))

    def from_nc(self, a, view=False):
        """Batch-first (N, C) backend array -> neon (features, batch) Tensor: a
        C-contiguous transposed copy, or with ``view`` (host arrays) the transposed view
        a.T itself -- no copy. Layers pass ``view`` only when the next layer reads its
        input through ``to_nc`` (``Layer.TAKES_NC``), which undoes it for free; such a
        tensor is F-ordered, so it cannot be reshaped as a C-ordered one."""
        if view:
            return Tensor(self, a.T)
        return Tensor(self, self._t2d(a))

    #: host matrices with at least this many elements are transposed in row blocks
    BLOCKED_TRANSPOSE_MIN = 1 << 16

    def _t2d(self, a):
        """A C-contiguous copy of a.T: ``rb.transpose2d``; for large host matrices the
        copy goes 32 or 64 source rows at a time (one strided copy of a (128, 11520) float32
        matrix reads or writes a new cache line per element; in blocks the lines are
        reused: about 2x faster on conv-sized activations)."""
        if np.ndim(a) != 2 or a.size < self.BLOCKED_TRANSPOSE_MIN:
            return self.rb.transpose2d(a)
        rows, cols = a.shape
        out = np.empty((cols, rows), a.dtype)
        step = 64 if rows > cols else 32        # measured best for (F, 128) / (128, F)
        for i in range(0, rows, step):
            out[:, i:i + step] = a[i:i + step].T
        return out

    def wrap(self, a):
        """A Tensor around a backend array (no copy)."""
        return Tensor(self, a)

    def _contiguous(self, t):
        a = t._data if isinstance(t, Tensor) else t
        if a.flags.c_contiguous:
            return a
        if isinstance(a, np.ndarray) and a.ndim == 2 and a.T.flags.c_contiguous:
            # a transposed view of host data (from_nc(view=True)): the blocked copy
            return self._t2d(a.T)
        copy = self.empty(a.shape)
        copy[:] = t if isinstance(t, Tensor) else Tensor(self, a)
        return copy._data

    # ----------------------------------------------------------- arrays
    def _to_host(self, a):
        return np.array(a, copy=True)

    def _from_host(self, host):
        return self.rb.asarray(host)

    def _empty(self, shape, dtype):
        return self.rb.empty(shape, dtype)

    def _reshape(self, a, shape):
        shape = tuple(int(s) for s in shape)
        try:
            view = a.view()
            view.shape = shape
        except (AttributeError, ValueError):
            raise ShapeError(f"reshape: cannot view a tensor of shape {a.shape} "
                             f"(strides {a.strides}) as {shape} without a copy") from None
        return view

    def _host_value(self, value, shape):
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise DTypeError(f"Tensor.set: expected numeric data, got dtype {value.dtype}")
        try:
            return np.broadcast_to(value, shape)
        except ValueError:
            raise ShapeError(f"Tensor.set: cannot assign data of shape {value.shape} "
                             f"to a tensor of shape {tuple(shape)}") from None

    def _check_target(self, target, value):
        if isinstance(value, (Tensor, OpTreeNode)):
            vs, ts = _shape_of(value), target.shape
            try:
                ok = np.broadcast_shapes(vs, ts) == ts
            except ValueError:
                ok = False
            if not ok:
                raise ShapeError(f"assignment: a value of shape {vs} does not fit a "
                                 f"tensor of shape {ts}")
        elif not _optree.is_scalar(value) and not isinstance(value, np.ndarray):
            raise ParameterError(f"assignment: cannot assign a {type(value).__name__} "
                                 "to a Tensor")

    def _assign(self, target, value):
        self._check_target(target, value)
        if isinstance(value, np.ndarray):
            target._data[...] = self._host_value(value, target.shape)
        elif _optree.is_scalar(value):
            target._data[...] = value
        else:
            target._data[...] = self._eval(value)

    # ---------------------------------------------------- NumPy evaluation
    def _eval(self, node):
        if isinstance(node, Tensor):
            return node._data
        if _optree.is_scalar(node):
            return node
        op, left, right = node
        name = op["op"]
        a = self._eval(left)
        if name in _optree.UNARY:
            out = _optree.UNARY[name][0](a)
        elif name in _optree.BINARY:
            out = _optree.BINARY[name][0](a, self._eval(right))
        elif name in _optree.REDUCTIONS:
            out = _optree.REDUCTIONS[name](np.asarray(a), axis=op.get("axis"), keepdims=True)
        else:  # dot
            b = self._eval(right)
            out = self.rb.empty((a.shape[0], b.shape[1]))
            self.rb.gemm(a, b, out, 1.0, 0.0)
        if isinstance(out, np.ndarray) and out.dtype != self.default_dtype:
            out = out.astype(self.default_dtype)
        return out

    def _gemm(self, A, B, C, alpha, beta):
        for what, t in (("A", A), ("B", B), ("C", C)):
            if not isinstance(t, Tensor):
                raise ParameterError(f"compound_dot: {what} must be a Tensor, got "
                                     f"{type(t).__name__}")
        (m, k), (k2, n) = A.shape, B.shape
        if k != k2 or C.shape != (m, n):
            raise ShapeError(f"compound_dot: A {A.shape} @ B {B.shape} does not give "
                             f"C {C.shape}")
        a, b = self._gemm_operand(A), self._gemm_operand(B)
        if C._data.flags.c_contiguous:
            self.rb.gemm(a, b, C._data, alpha, beta)
        else:
            tmp = self.empty(C.shape)
            tmp[:] = C
            self.rb.gemm(a, b, tmp._data, alpha, beta)
            C[:] = tmp

    def _gemm_operand(self, t):
        """A itself when it or its transpose is C-contiguous, else a contiguous copy."""
        a = t._data
        if a.flags.c_contiguous or a.T.flags.c_contiguous:
            return a
        return self._contiguous(t)


class NervanaRefnnOpenCL(NervanaRefnn):
    """neon backend over refnn's OpenCL backend: fused op-tree kernels, device tensors."""

    def __init__(self, rb, rng_seed=None, batch_size=0, name=None):
        super().__init__(rb, rng_seed=rng_seed, batch_size=batch_size, name=name)
        from refnn.neon.backends._clfuse import FusedKernels
        self.fused = FusedKernels(rb)

    def _t2d(self, a):
        return self.rb.transpose2d(a)          # the device's own transpose kernel

    def to_nc(self, t):
        """Device tensors are always C-contiguous: one transpose kernel."""
        return self._t2d(self._contiguous(t))

    def from_nc(self, a, view=False):
        """Always a transposed copy on the device (``view`` is a host-only shortcut)."""
        return Tensor(self, self._t2d(a))

    def _to_host(self, a):
        if not a.flags.c_contiguous:
            a = self._contiguous(Tensor(self, a))
        return a.get(queue=self.rb.queue)

    def _reshape(self, a, shape):
        shape = tuple(int(s) for s in shape)
        if not a.flags.c_contiguous:
            raise ShapeError(f"reshape: cannot view a non-contiguous device tensor of "
                             f"shape {a.shape} as {shape} without a copy")
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1]))
            shape = tuple(a.size // known if s == -1 else s for s in shape)
        if int(np.prod(shape)) != a.size:
            raise ShapeError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                             f"to {shape}")
        return a.reshape(shape)

    def _assign(self, target, value):
        self._check_target(target, value)
        if isinstance(value, np.ndarray):
            host = self._host_value(value, target.shape)
            if target._data.flags.c_contiguous and host.shape == target.shape:
                target._data.set(np.ascontiguousarray(host, dtype=self.default_dtype),
                                 queue=self.rb.queue)
                return
            value = Tensor(self, self.rb.asarray(np.ascontiguousarray(
                host, dtype=self.default_dtype)))
        self.fused.assign(target._data, self._prepare(value))

    def _prepare(self, node):
        """Replace reductions and dot nodes by device temporaries -> an elementwise tree."""
        if not isinstance(node, OpTreeNode):
            return node
        op, left, right = node
        left, right = self._prepare(left), self._prepare(right)
        name = op["op"]
        if name in _optree.REDUCTIONS:
            return self._reduce(name, left, op.get("axis"))
        if name == "dot":
            out = self.empty((_shape_of(left)[0], _shape_of(right)[1]))
            self._gemm(self._materialize(left), self._materialize(right), out, 1.0, 0.0)
            return out
        return OpTreeNode(op, left, right)

    def _materialize(self, x):
        if isinstance(x, Tensor):
            return x
        out = self.empty(_shape_of(x))
        self.fused.assign(out._data, x)
        return out

    def _reduce(self, name, child, axis):
        if _optree.is_scalar(child):
            child = self._materialize(OpTreeNode({"op": "add"}, self.zeros((1, 1)), child))
        shape = _shape_of(child)
        if axis is None:
            for d in range(len(shape)):
                child = self._reduce(name, child, d)
            return child
        axis %= len(shape)
        out = self.empty(_optree.reduced_shape(shape, axis))
        self.fused.reduce(name, child, shape, axis, out._data)
        return out
