"""refnn.testing -- the public oracle toolkit.

Use it to check your own layer against refnn, or a refnn fast path against the
reference:

* :func:`numerical_grad`, :func:`directional_grad` -- float64 central differences;
* :func:`check_backward` -- analytic backward vs numerical gradient (full for small
  inputs, random directions for large ones);
* :func:`assert_matches_reference` -- run an op (or any forward/backward pair of yours)
  and compare with refnn's float64 reference, forward and backward;
* :data:`TOLERANCES` / :func:`tolerance` -- one table (op, dtype, backend) -> (rtol,
  atol, reason);
* :mod:`refnn.testing.strategies` and :mod:`refnn.testing.op_inputs` -- hypothesis
  strategies (import them only where hypothesis is installed).

Importing this package does not import pytest or hypothesis.
"""
from refnn.testing.gradcheck import check_backward, directional_grad, numerical_grad
from refnn.testing.compare import (assert_matches_reference, assert_backends_agree,
                                   run_op, GradientMismatch)
from refnn.testing.tolerances import TOLERANCES, tolerance

__all__ = ["numerical_grad", "directional_grad", "check_backward",
           "assert_matches_reference", "assert_backends_agree", "run_op",
           "GradientMismatch", "TOLERANCES", "tolerance"]
