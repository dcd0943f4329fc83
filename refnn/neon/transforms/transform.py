"""Transform: the base of activation functions and costs.

A refnn transform names the refnn op that computes it (``OP``) and its parameters
(``op_params()``); the arithmetic runs in the backend (``be.rb.op(OP + ".forward")``),
never here.
"""
from refnn.neon._object import NervanaObject


class Transform(NervanaObject):
    """Base class for activation or cost functions and their derivatives."""

    #: the refnn op computing this transform (``"<OP>.forward"``/``"<OP>.backward"``)
    OP = None
    #: "any" for elementwise ops; "NC" when the op works over the last axis of a
    #: batch-first array (softmax), so neon's (features, batch) tensors are transposed
    LAYOUT = "any"

    def __init__(self, name=None):
        super().__init__(name)

    def op_params(self):
        """Keyword parameters of the refnn op."""
        return {}
