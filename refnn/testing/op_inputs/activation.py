"""Input strategies for the activation family (elementwise: any shape)."""
from hypothesis import strategies as st

from refnn.testing import strategies as rst


def _elementwise(kinks=(), params=st.just({}), **bounds):
    return st.tuples(
        rst.shapes().flatmap(lambda s: rst.arrays(s, rst.floats_away_from(kinks, **bounds))
                             ).map(lambda x: (x,)),
        params)


INPUTS = {
    "identity": _elementwise(),
    # thresholds 0 (no clip) or positive; values kept away from 0 and the threshold
    "relu": st.sampled_from([0.0, 1.5]).flatmap(
        lambda t: _elementwise((0.0, t), st.just({"threshold": t}))),
}
