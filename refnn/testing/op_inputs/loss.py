"""Input strategies for the loss family: predictions (N, C), targets, labels, weights.

Batch sizes reach 1 and class counts reach values that are not tile multiples.
Probabilities are kept >= ~0.05 / C (away from the log floors and NeoML's
[FLT_EPSILON, 1 - FLT_EPSILON] clip); max_gradient stays None here because a clipped
gradient is not the gradient (tests/ops/test_loss.py checks the clip itself).
"""
from hypothesis import strategies as st

from refnn.testing import strategies as rst


def _floats(lo, hi):
    """Floats in [lo, hi] (64-bit draws: the bounds need not be float32-exact)."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _probabilities(shape):
    """Rows of positive values >= 0.05 (before normalising) summing to 1."""
    return rst.arrays(shape, _floats(0.05, 1.0)).map(lambda a: a / a.sum(axis=-1, keepdims=True))


def _nc(min_c=1, max_c=17):
    return st.tuples(st.integers(1, 9), st.integers(min_c, max_c))


def _weights(n):
    """None (all ones) or positive object weights."""
    return st.one_of(st.none(), rst.arrays((n,), _floats(0.1, 2.0)))


def _neon(targets):
    """(y, t) with y probabilities and t drawn by ``targets(n, c)``."""
    return _nc().flatmap(lambda nc: st.tuples(
        st.tuples(_probabilities(nc), targets(*nc)), st.just({})))


def _binary_probs(shape):
    return rst.arrays(shape, _floats(0.05, 0.95))


def _cross_entropy_binary():
    def case(nc):
        targets = st.one_of(rst.arrays(nc, st.sampled_from([0.0, 1.0])),
                            rst.arrays(nc, _floats(0.0, 1.0)))
        return st.tuples(st.tuples(_binary_probs(nc), targets), st.just({}))
    return _nc().flatmap(case)


def _squared():
    return _nc().flatmap(lambda nc: st.tuples(
        st.tuples(rst.arrays(nc), rst.arrays(nc)), st.just({})))


def _cross_entropy():
    def case(nc, softmax):
        n, c = nc
        x = rst.arrays(nc) if softmax else _probabilities(nc)
        labels = st.one_of(rst.labels(n, c), rst.one_hot(n, c), _probabilities(nc))
        return st.tuples(st.tuples(x, labels, _weights(n)), st.just({"softmax": softmax}))
    return st.tuples(_nc(min_c=2), st.booleans()).flatmap(lambda a: case(*a))


def _binary_cross_entropy():
    def case(nc, q):
        y = rst.arrays(nc, st.sampled_from([-1.0, 1.0]))
        return st.tuples(st.tuples(rst.arrays(nc), y, _weights(nc[0])),
                         st.just({"positive_weight": q}))
    return st.tuples(st.tuples(st.integers(1, 9), st.sampled_from([1, 1, 3])),
                     st.sampled_from([1.0, 0.5, 2.5])).flatmap(lambda a: case(*a))


def _euclidean():
    return _nc().flatmap(lambda nc: st.tuples(
        st.tuples(rst.arrays(nc), rst.arrays(nc), _weights(nc[0])), st.just({})))


INPUTS = {
    # targets: one-hot rows or soft probability rows
    "cross_entropy_multi": _neon(lambda n, c: st.one_of(rst.one_hot(n, c),
                                                        _probabilities((n, c)))),
    "cross_entropy_binary": _cross_entropy_binary(),
    "sum_squared": _squared(),
    "mean_squared": _squared(),
    # logits (softmax) or probability rows (softmax=False); int, one-hot or soft labels
    "cross_entropy": _cross_entropy(),
    "binary_cross_entropy": _binary_cross_entropy(),
    "euclidean": _euclidean(),
}
