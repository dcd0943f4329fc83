"""OpSpec: one record per op, the single source the generic tests and `refnn coverage` read.

An op is a pair of plain functions in the reference (``forward``/``backward``) or, for an
optimizer, one in-place ``update`` function. The conventions shared by every backend:

* ``out, saved = forward(*arrays, **params)`` -- ``out`` is an array (or a tuple of
  arrays for ops with several outputs); ``saved`` is opaque to the caller and only ever
  handed back to the same backend's ``backward``.
* ``grads = backward(dout, saved)`` -- a tuple with one entry per positional array input
  of ``forward``: the gradient, or ``None`` for an input that is not differentiable
  (labels, indices). ``backward`` never mutates ``dout`` or the saved inputs.
* ``update(param, grad, *state, **hyper)`` mutates ``param`` and ``state`` in place
  and returns ``None`` (optimizers).

Strategies that draw inputs for an op live in ``refnn/testing/op_inputs/`` keyed by the
op's name; this module must not import hypothesis.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple


@dataclass(frozen=True)
class OpSpec:
    """Describes one op of the reference.

    name:      the op name; backends register ``name + ".forward"``/``".backward"``
               (or ``".update"``) in their KERNELS tables.
    family:    the module stem (``dense``, ``activation``, ``loss``, ``optim``, ...).
    forward, backward: the reference functions (``backward`` is None for updates).
    update:    the reference in-place update (optimizers only).
    diff_args: indices of the forward's positional inputs that are differentiable;
               ``None`` means all of them.
    kinks:     input values where the derivative jumps (kept away from by strategies).
    layout:    the canonical layout of the first input, e.g. ``"NC"`` or ``"any"``.
    """

    name: str
    family: str
    forward: Optional[Callable] = None
    backward: Optional[Callable] = None
    update: Optional[Callable] = None
    diff_args: Optional[Tuple[int, ...]] = None
    kinks: Tuple[float, ...] = ()
    layout: str = "any"
    doc: str = field(default="", compare=False)

    @property
    def kind(self):
        return "update" if self.update is not None else "layer"

    @property
    def phases(self):
        """The KERNELS keys a backend must provide for this op."""
        if self.kind == "update":
            return (self.name + ".update",)
        return (self.name + ".forward", self.name + ".backward")
