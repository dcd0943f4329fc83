"""One epoch of an MLP on the bundled digits, from one seed, on the reference, cpu and
OpenCL engines: the final weights agree within the float32 tolerance below.

Everything random is drawn from the network's neoml.Random (initial weights on the
host, one dropout seed per pass for refnn's counter-based masks), so the engines see
the same numbers; only float32 rounding differs (BLAS vs OpenCL tiles vs NumPy sum in
different orders). Measured after 44 steps: max |difference| ~ 4e-7 on weights of
size ~1; the tolerance leaves a wide margin for other devices.
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.data.digits import load_digits
from tests.neoml.conftest import ENGINES, make_engine

#: documented tolerance for engine agreement after one epoch (float32, ~44 SGD steps)
RTOL, ATOL = 1e-4, 2e-5
BATCH = 32


def train_one_epoch(engine):
    X, y = load_digits("train", seed=0)
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(2024))
    data, labels = neoml.Dnn.Source(dnn, "data"), neoml.Dnn.Source(dnn, "labels")
    hidden = neoml.Dnn.ReLU(neoml.Dnn.FullyConnected(data, 32, name="fc1"))
    fc2 = neoml.Dnn.FullyConnected(neoml.Dnn.Dropout(hidden, rate=0.1), 10, name="fc2")
    loss = neoml.Dnn.CrossEntropyLoss((fc2, labels), name="loss")
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.1, moment_decay_rate=0.9)
    first = None
    for i in range(0, len(X) - BATCH + 1, BATCH):
        xb, yb = X[i:i + BATCH], y[i:i + BATCH].astype(np.int32)
        dnn.learn({"data": neoml.Blob.asblob(engine, xb, (1, BATCH, 1, 1, 1, 1, 64)),
                   "labels": neoml.Blob.asblob(engine, yb, (1, BATCH, 1, 1, 1, 1, 1))})
        first = loss.last_loss if first is None else first
    params = {f"{n}.{p}": getattr(dnn.layers[n], p).asarray()
              for n in ("fc1", "fc2") for p in ("weights", "free_term")}
    return params, first, loss.last_loss


def test_one_epoch_gives_the_same_weights_on_every_engine():
    results = {kind: train_one_epoch(make_engine(kind)) for kind in ENGINES}
    ref_params, first, last = results["reference"]
    assert last < 0.5 * first                 # it learned something
    for kind in ENGINES[1:]:
        params, _, kind_last = results[kind]
        for name, value in ref_params.items():
            np.testing.assert_allclose(params[name], value, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{kind}: {name}")
        assert kind_last == pytest.approx(last, rel=1e-4)
