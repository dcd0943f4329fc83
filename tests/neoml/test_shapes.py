"""Hypothesis: FullyConnected + an activation on drawn 7-D blob shapes (batch 1, odd
sizes, images) gives the float64 reference result on every engine."""
import numpy as np
from hypothesis import given, strategies as st

import refnn.neoml as neoml
from refnn.ops import activation as A, dense as D
from refnn.testing import strategies as rst

ACTS = {"Sigmoid": (neoml.Dnn.Sigmoid, A.sigmoid_forward),
        "Tanh": (neoml.Dnn.Tanh, A.tanh_forward),
        "Softmax": (neoml.Dnn.Softmax, A.softmax_forward)}


BLOB_SHAPES = st.tuples(*(rst.sizes(1, 3) for _ in range(3)), *(rst.sizes(1, 4) for _ in range(4)))


@given(shape=BLOB_SHAPES,
       n_out=st.sampled_from(rst.ODD_SIZES[:5]), act=st.sampled_from(sorted(ACTS)),
       seed=st.integers(0, 2 ** 16))
def test_fully_connected_and_activation_on_drawn_blob_shapes(engine, shape, n_out, act, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(seed))
    fc = neoml.Dnn.FullyConnected(neoml.Dnn.Source(dnn, "x"), n_out, name="fc")
    make, ref = ACTS[act]
    neoml.Dnn.Sink(make(fc), name="out")
    out = dnn.run({"x": neoml.Blob.asblob(engine, x, shape, copy=True)})["out"]
    assert tuple(out.shape) == shape[:3] + (1, 1, 1, n_out)
    W = fc.weights.asarray(keep_dims=True)
    assert tuple(W.shape) == (1, n_out, 1) + shape[3:]
    y, _ = D.linear_forward(x.reshape(-1, int(np.prod(shape[3:]))).astype(np.float64),
                            W.reshape(n_out, -1).astype(np.float64))
    expected, _ = ref(y)
    np.testing.assert_allclose(out.asarray(keep_dims=True).reshape(-1, n_out), expected,
                               rtol=1e-4, atol=1e-5)
