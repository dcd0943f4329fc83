"""Input strategies for the dense family (batch-first (N, C) inputs).

Sizes reach batch 1 and feature counts up to 37, which do not divide the OpenCL GEMM
tile (8), so the kernels' edge blocks are exercised as well as full ones.
"""
from hypothesis import strategies as st

from refnn.testing import strategies as rst

_N = st.integers(1, 9)
_C = st.integers(1, 37)


def _linear():
    """(x (N, C_in), W (C_out, C_in))."""
    return st.tuples(_N, _C, _C).flatmap(lambda s: st.tuples(
        st.tuples(rst.arrays((s[0], s[1])), rst.arrays((s[2], s[1]))),
        st.just({})))


def _bias():
    """(x (N, C), b (C,))."""
    return st.tuples(_N, _C).flatmap(lambda s: st.tuples(
        st.tuples(rst.arrays((s[0], s[1])), rst.arrays((s[1],))),
        st.just({})))


INPUTS = {
    "linear": _linear(),
    "bias": _bias(),
}
