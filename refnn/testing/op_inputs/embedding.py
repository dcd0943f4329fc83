"""Input strategies for the embedding family.

Vocabularies V reach 1 and 2 (so ids repeat within a batch, the case the table-gradient
scatter-add must accumulate), batches reach N = 1, id lists reach K = 20, vector lengths
D do not divide the OpenCL work-group. Ids come as int64 or int32. Positional inputs
(N, T, D) reach T = 1 and long sequences; learnable tables have T_max >= T rows.
"""
import numpy as np
from hypothesis import strategies as st

from refnn.testing.op_inputs.sequence import values

_V = (1, 2, 5, 17, 40)
_D = (1, 3, 7, 16)
_N = (1, 2, 5)
_K = (1, 2, 7, 20)


@st.composite
def _ids_table(draw):
    V, D = draw(st.sampled_from(_V)), draw(st.sampled_from(_D))
    N, K = draw(st.sampled_from(_N)), draw(st.sampled_from(_K))
    dtype = draw(st.sampled_from([np.int64, np.int32]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    ids = np.random.default_rng(seed).integers(0, V, (N, K)).astype(dtype)
    return ids, draw(values((V, D)))


def _lookup():
    return _ids_table().map(lambda it: (it, {}))


@st.composite
def _sgd(draw):
    ids, table = draw(_ids_table())
    N, K = ids.shape
    D = table.shape[1]
    dy = draw(values(draw(st.sampled_from([(N, K, D), (N, D)]))))
    return (table, ids, dy), {"learning_rate": draw(st.sampled_from([0.01, 0.3, 1.0]))}


@st.composite
def _positional(draw, learnable):
    N, T = draw(st.sampled_from((1, 2, 3))), draw(st.sampled_from((1, 2, 5, 33)))
    D = draw(st.sampled_from((1, 2, 7, 16)))
    x = draw(values((N, T, D)))
    if not learnable:
        return (x,), {}
    return (x, draw(values((T + draw(st.integers(0, 3)), D)))), {}


INPUTS = {
    "lookup": _lookup(),
    "accumulative_lookup": _lookup(),
    "lookup_sgd": _sgd(),
    "positional_sinusoidal": _positional(learnable=False),
    "positional_learnable": _positional(learnable=True),
}
