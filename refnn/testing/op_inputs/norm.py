"""Input strategies for the norm family (batch_norm, batch_norm_infer, layer_norm, lrn).

Batch sizes reach 1 (batch_norm over one value: variance 0, so eps > 0 is what keeps
1/sqrt(var + eps) finite -- eps is always drawn > 0) and sizes around and above the
OpenCL work-group (64, 65, 130 rows; 37 features), drawn from a seed so that big arrays
stay cheap. Small arrays come from hypothesis element by element, so repeated values
(a constant column: variance exactly 0) occur too. LRN draws window sizes 1..6 (even
ones too: NeoML's asymmetric window) and more channels than the window and fewer.
"""
import numpy as np
from hypothesis import strategies as st

from refnn.testing import strategies as rst

_EPS = st.sampled_from([1e-3, 1e-2, 0.1, 1.0])


def _matrix(n, c):
    """An (n, c) float64 array in [-3, 3]: hypothesis elements when small, else seeded."""
    if n * c <= 64:
        return rst.arrays((n, c))
    return st.integers(0, 2 ** 32 - 1).map(
        lambda s: np.random.default_rng(s).uniform(-3.0, 3.0, (n, c)))


def _rows():
    return st.one_of(st.integers(1, 9), st.sampled_from([31, 64, 65, 130]))


def _batch_norm():
    """(x (N, C), gamma (C,), beta (C,)), eps."""
    return st.tuples(_rows(), st.integers(1, 37)).flatmap(lambda s: st.tuples(
        st.tuples(_matrix(*s), rst.arrays((s[1],)), rst.arrays((s[1],))),
        st.fixed_dictionaries({"eps": _EPS})))


def _batch_norm_infer():
    """(x, gamma, beta, mean, var >= 0.25), eps (the running statistics of a real batch)."""
    return st.tuples(_rows(), st.integers(1, 37)).flatmap(lambda s: st.tuples(
        st.tuples(_matrix(*s), rst.arrays((s[1],)), rst.arrays((s[1],)),
                  rst.arrays((s[1],)), rst.positive_arrays((s[1],), 0.25, 3.0)),
        st.fixed_dictionaries({"eps": _EPS})))


def _layer_norm():
    """(x (N, D), scale (D,), bias (D,)), eps; D reaches 1 (a lone feature: xhat = 0)
    and 70, 130 (more than one work-group per row)."""
    cols = st.one_of(st.integers(1, 13), st.sampled_from([37, 64, 70, 130]))
    return st.tuples(st.integers(1, 9), cols).flatmap(lambda s: st.tuples(
        st.tuples(_matrix(*s), rst.arrays((s[1],)), rst.arrays((s[1],))),
        st.fixed_dictionaries({"eps": _EPS})))


@st.composite
def _lrn(draw):
    """x (N, C, H, W), size, k, alpha, beta."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 9))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    x = draw(rst.arrays((n, c, h, w)))
    params = {
        "size": draw(st.integers(1, 6)),
        "k": draw(st.sampled_from([0.5, 1.0, 2.0])),
        "alpha": draw(st.sampled_from([0.0, 1e-4, 0.1, 1.0])),
        "beta": draw(st.sampled_from([0.5, 0.75, 1.0])),
    }
    return (x,), params


INPUTS = {
    "batch_norm": _batch_norm(),
    "batch_norm_infer": _batch_norm_infer(),
    "layer_norm": _layer_norm(),
    "lrn": _lrn(),
}
