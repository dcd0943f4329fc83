"""Input strategies for the sequence family (time-major x (T, N, C)).

T reaches 1 and long sequences (64 steps), N reaches 1, C sizes do not divide the
OpenCL work-group. SubSequence draws start_pos and length from well past both ends of
the sequence (negative = from the end / reversed), keeping the ones NeoML accepts (a
non-empty result). cumsum draws any shape of rank 1..4 and any axis, both directions.
"""
import numpy as np
from hypothesis import strategies as st

from refnn.ops import sequence as ref
from refnn.testing import strategies as rst

_T = (1, 2, 3, 5, 17, 64)
_N = (1, 2, 3, 5)
_C = (1, 3, 7, 17)


def values(shape):
    """Uniform floats in [-3, 3] of ``shape`` from a drawn seed (fast for long sequences)."""
    return st.integers(0, 2 ** 32 - 1).map(
        lambda seed: np.random.default_rng(seed).uniform(-3.0, 3.0, shape))


@st.composite
def _sequence(draw, max_size=2048):
    T, N, C = draw(st.sampled_from(_T)), draw(st.sampled_from(_N)), draw(st.sampled_from(_C))
    while T * N * C > max_size:         # long sequences keep a smaller batch
        if C > 1:
            C = _C[_C.index(C) - 1]
        else:
            N = 1
    return draw(values((T, N, C)))


def _plain():
    return _sequence().map(lambda x: ((x,), {}))


def _selects_something(T, start_pos, length):
    try:
        ref.subsequence_geometry(T, start_pos, length)
    except ValueError:
        return False
    return True


@st.composite
def _subsequence(draw):
    x = draw(_sequence())
    T = x.shape[0]
    start, length = draw(st.tuples(st.integers(-T - 2, T + 2), st.integers(-T - 2, T + 2))
                         .filter(lambda p: _selects_something(T, *p)))
    return (x,), {"start_pos": start, "length": length}


@st.composite
def _repeat(draw):
    return (draw(_sequence(max_size=512)),), {"repeat_count": draw(st.integers(1, 4))}


@st.composite
def _cumsum(draw):
    shape = draw(rst.shapes(min_dims=1, max_dims=4, min_side=1, max_side=7))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return (draw(values(shape)),), {"axis": axis, "reverse": draw(st.booleans())}


INPUTS = {
    "seq_sum": _plain(),
    "seq_mean": _plain(),
    "seq_last": _plain(),
    "subsequence": _subsequence(),
    "reverse_sequence": _plain(),
    "repeat_sequence": _repeat(),
    "cumsum": _cumsum(),
}
