"""Op-tree -> ONE fused OpenCL kernel (``pyopencl.elementwise.ElementwiseKernel``).

An elementwise tree becomes straight-line C: one temporary per node, each leaf read
through its own offset and strides (so ``.T`` views, slices and broadcast (n, 1) / (1, n)
operands all work without copies), the result written through the target's strides.
A reduction becomes one work-item per output element looping over the reduced axis,
with its (elementwise) child tree inlined in the loop body.

Kernels are cached per backend object by the tree's *structure* (op names, leaf ranks,
which operands are scalars, the target rank, the dtype); shapes, strides, offsets and
scalar values are kernel arguments, so a training loop compiles each tree once.
"""
import numpy as np
import pyopencl.array as cla
from pyopencl.elementwise import ElementwiseKernel

from refnn.neon.backends import _optree

_INIT = {"sum": "0", "max": "-INFINITY", "min": "INFINITY",
         "argmax": "-INFINITY", "argmin": "INFINITY"}
#: accumulate ``v`` into ``acc`` (``best`` holds the index for arg-reductions)
_ACCUMULATE = {
    "sum": "acc += v;",
    "max": "acc = fmax(acc, v);",
    "min": "acc = fmin(acc, v);",
    "argmax": "if (v > acc) { acc = v; best = j; }",
    "argmin": "if (v < acc) { acc = v; best = j; }",
}


def _flat(a):
    """A contiguous 1-D array over the whole buffer a view ``a`` reads (for kernel args)."""
    item = a.dtype.itemsize
    extent = a.offset // item + 1 + sum((n - 1) * (s // item)
                                        for n, s in zip(a.shape, a.strides) if n > 0)
    return cla.Array(a.queue, (extent,), a.dtype, data=a.base_data)


def _strides(a, shape):
    """Element strides of ``a`` broadcast to ``shape`` (0 along broadcast dims)."""
    pad = len(shape) - a.ndim
    dims = (1,) * pad + tuple(a.shape)
    steps = (0,) * pad + tuple(s // a.dtype.itemsize for s in a.strides)
    return [0 if d == 1 and n != 1 else s for d, n, s in zip(dims, shape, steps)]


class _Codegen:
    """Collects argument declarations/values, statements and the cache key of a tree."""

    def __init__(self, ctype, dtype, nd):
        self.ctype, self.dtype, self.nd = ctype, np.dtype(dtype), nd
        self.decls, self.values, self.stmts, self.key = [], [], [], []
        self.count = 0

    def _arg(self, decl, value):
        self.decls.append(decl)
        self.values.append(value)

    def index(self, name, a, shape):
        """Declare strided view ``a`` (buffer, offset, strides); return the C expression of
        its flat index at coordinates c0..c{nd-1}."""
        self._arg(f"__global {self.ctype} *{name}", _flat(a))
        self._arg(f"long {name}o", np.int64(a.offset // a.dtype.itemsize))
        for d, s in enumerate(_strides(a, shape)):
            self._arg(f"long {name}s{d}", np.int64(s))
        return " + ".join([f"{name}o"] + [f"c{d} * {name}s{d}" for d in range(self.nd)])

    def view(self, name, a, shape):
        """``name[index]``: view ``a`` read (or written) at coordinates c0..c{nd-1}."""
        return f"{name}[{self.index(name, a, shape)}]"

    def expr(self, node, shape):
        """Emit statements computing ``node``; return the C name holding its value."""
        from refnn.neon.backends.backend import OpTreeNode, Tensor
        k = self.count
        self.count += 1
        if isinstance(node, Tensor):
            self.key.append(("T", node._data.ndim))
            return self.view(f"x{k}", node._data, shape)
        if _optree.is_scalar(node):
            self.key.append("S")
            self._arg(f"{self.ctype} s{k}", self.dtype.type(node))
            return f"s{k}"
        assert isinstance(node, OpTreeNode), node
        op = node.op
        self.key.append(op)
        a = self.expr(node[1], shape)
        if op in _optree.UNARY:
            code = _optree.UNARY[op][1].format(a=a)
        else:
            b = self.expr(node[2], shape)
            code = _optree.BINARY[op][1].format(a=a, b=b)
        self.stmts.append(f"real t{k} = {code};")
        return f"t{k}"

    def coords(self, sizes):
        """C lines turning the flat work-item index i into coordinates c0..c{nd-1}."""
        lines = ["long r = i;"]
        for d in reversed(range(self.nd)):
            self._arg(f"long n{d}", np.int64(sizes[d]))
            lines.append(f"long c{d} = r % n{d}; r /= n{d};")
        return lines


class FusedKernels:
    """Per-backend cache of generated kernels; ``assign`` and ``reduce`` run them."""

    def __init__(self, rb):
        self.rb = rb
        self.ctype = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[rb.dtype]
        self._cache = {}

    def _gen(self, nd):
        return _Codegen(self.ctype, self.rb.dtype, nd)

    def _launch(self, key, g, body, n):
        kernel = self._cache.get(key)
        if kernel is None:
            preamble = f"#define real {self.ctype}\n"
            if self.ctype == "double":
                preamble = "#pragma OPENCL EXTENSION cl_khr_fp64: enable\n" + preamble
            kernel = self._cache[key] = ElementwiseKernel(
                self.rb.context, ", ".join(g.decls), body, name=f"neon_fused_{len(self._cache)}",
                preamble=preamble)
        kernel(*g.values, range=slice(int(n)), queue=self.rb.queue)

    def assign(self, target, tree):
        """target (a strided device view) = elementwise ``tree``, broadcast to its shape."""
        shape = tuple(target.shape)
        if target.size == 0:
            return
        g = self._gen(len(shape))
        lines = g.coords(shape)
        value = g.expr(tree, shape)
        out = g.view("out", target, shape)
        body = "\n".join(lines + g.stmts + [f"{out} = {value};"])
        self._launch(("assign", len(shape), tuple(g.key)), g, body, target.size)

    def reduce(self, op, tree, in_shape, axis, target):
        """target (kept-dims shape) = reduction ``op`` of elementwise ``tree`` along ``axis``."""
        nd = len(in_shape)
        g = self._gen(nd)
        out_shape = tuple(target.shape)
        lines = g.coords(out_shape)
        out_index = g.index("out", target, out_shape)
        g._arg("long L", np.int64(in_shape[axis]))
        value = g.expr(tree, in_shape)
        loop = [f"real acc = {_INIT[op]}; long best = 0;",
                "for (long j = 0; j < L; j++) {", f"c{axis} = j;"] + g.stmts + [
                f"real v = {value};", _ACCUMULATE[op], "}"]
        # the output index uses c{axis} == 0, so it is computed before the loop
        result = "(real)best" if op.startswith("arg") else "acc"
        body = "\n".join(lines + [f"long oi = {out_index};"] + loop +
                         [f"out[oi] = {result};"])
        self._launch(("reduce", op, axis, nd, tuple(g.key)), g, body,
                     int(np.prod(out_shape)))
