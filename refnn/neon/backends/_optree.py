"""The op-tree vocabulary shared by every neon backend: names, NumPy meaning, OpenCL C.

An op-tree node is ``(op_dict, left, right)`` (see :class:`OpTreeNode`); ``op_dict``
holds ``"op"`` (a name below) and, for reductions, ``"axis"``. Leaves are Tensors and
Python scalars. The NumPy backends evaluate the tables' ``np`` column; the OpenCL
backend pastes the ``c`` column into one generated kernel (``a``/``b`` are the operand
temporaries, ``real`` is float or double).
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError

_EXP_M50 = float(np.exp(-50.0))

#: name -> (numpy function, OpenCL C template of ``{a}``)
UNARY = {
    "neg": (np.negative, "-{a}"),
    "abs": (np.abs, "fabs({a})"),
    "sqrt": (np.sqrt, "sqrt({a})"),
    "sqr": (np.square, "{a} * {a}"),
    "exp": (np.exp, "exp({a})"),
    "log": (np.log, "log({a})"),
    "exp2": (np.exp2, "exp2({a})"),
    "log2": (np.log2, "log2({a})"),
    "sig": (lambda a: 1 / (1 + np.exp(-a)), "1 / (1 + exp(-{a}))"),
    "sig2": (lambda a: 1 / (1 + np.exp2(-a)), "1 / (1 + exp2(-{a}))"),
    "tanh": (np.tanh, "tanh({a})"),
    "tanh2": (lambda a: (np.exp2(2 * a) - 1) / (np.exp2(2 * a) + 1),
              "(exp2(2 * {a}) - 1) / (exp2(2 * {a}) + 1)"),
    "safelog": (lambda a: np.log(np.maximum(a, _EXP_M50)), f"log(fmax({{a}}, (real){_EXP_M50!r}))"),
    "rcp": (np.reciprocal, "1 / {a}"),
    "sgn": (np.sign, "(real)(({a} > 0) - ({a} < 0))"),
    "finite": (np.isfinite, "(real)isfinite({a})"),
    "rint": (np.rint, "rint({a})"),
}

#: name -> (numpy function, OpenCL C template of ``{a}`` and ``{b}``)
BINARY = {
    "add": (np.add, "{a} + {b}"),
    "sub": (np.subtract, "{a} - {b}"),
    "mul": (np.multiply, "{a} * {b}"),
    "div": (np.divide, "{a} / {b}"),
    "pow": (np.power, "pow({a}, {b})"),
    "minimum": (np.minimum, "fmin({a}, {b})"),
    "maximum": (np.maximum, "fmax({a}, {b})"),
    "eq": (np.equal, "(real)({a} == {b})"),
    "ne": (np.not_equal, "(real)({a} != {b})"),
    "lt": (np.less, "(real)({a} < {b})"),
    "le": (np.less_equal, "(real)({a} <= {b})"),
    "gt": (np.greater, "(real)({a} > {b})"),
    "ge": (np.greater_equal, "(real)({a} >= {b})"),
}

#: reductions along one axis, keeping the reduced axis with size 1 (neon's convention)
REDUCTIONS = {
    "sum": np.sum,
    "max": np.max,
    "min": np.min,
    "argmax": np.argmax,
    "argmin": np.argmin,
}

#: nodes a backend evaluates on its own before the elementwise part (results are Tensors)
SPECIAL = ("dot",)


def is_scalar(x):
    return isinstance(x, (int, float, np.integer, np.floating, bool, np.bool_))


def broadcast_shapes(where, a, b):
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise ShapeError(f"{where}: operands of shapes {tuple(a)} and {tuple(b)} "
                         "do not broadcast") from None


def reduced_shape(shape, axis):
    """The kept-dims shape of a reduction; axis None reduces every axis (neon: (1, 1))."""
    if axis is None:
        return tuple(1 for _ in shape)
    if not -len(shape) <= axis < len(shape):
        raise ParameterError(f"reduction: axis {axis} out of range for shape {tuple(shape)}")
    axis %= len(shape)
    return tuple(1 if d == axis else n for d, n in enumerate(shape))


def check_op(name):
    if name not in UNARY and name not in BINARY and name not in REDUCTIONS \
            and name not in SPECIAL:
        raise ParameterError(f"op-tree: unknown op {name!r}")
