"""Errors that name the layer (or op), what was expected and what came.

Every shape/dtype/parameter check of refnn raises one of these *before* any kernel
runs, so a bad input never reaches a Cython loop without bounds checks or an OpenCL
kernel.
"""
import numpy as np


class RefnnError(Exception):
    """Base class of refnn's own errors."""


class ShapeError(RefnnError, ValueError):
    """An input has the wrong shape (or rank)."""


class DTypeError(RefnnError, TypeError):
    """An input has the wrong dtype."""


class ParameterError(RefnnError, ValueError):
    """A hyper-parameter or configuration value is invalid."""


def check_shape(where, what, actual, expected):
    """Raise ShapeError unless ``actual`` matches ``expected`` (None = any size)."""
    actual = tuple(actual)
    ok = len(actual) == len(expected) and all(
        e is None or a == e for a, e in zip(actual, expected))
    if not ok:
        shown = tuple("*" if e is None else e for e in expected)
        raise ShapeError(f"{where}: {what} must have shape {shown}, got {actual}")


def check_dtype(where, what, actual, allowed):
    """Raise DTypeError unless dtype ``actual`` is one of ``allowed``."""
    actual = np.dtype(actual)
    allowed = tuple(np.dtype(a) for a in allowed)
    if actual not in allowed:
        raise DTypeError(f"{where}: {what} must have dtype "
                         f"{' or '.join(a.name for a in allowed)}, got {actual.name}")


def check_same_shape(where, what, a_shape, b_shape):
    if tuple(a_shape) != tuple(b_shape):
        raise ShapeError(f"{where}: {what} must have shape {tuple(b_shape)}, got {tuple(a_shape)}")
