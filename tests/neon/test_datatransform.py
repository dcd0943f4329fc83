"""neon DataTransform: applies its transform in fprop (through the transform's refnn
op), passes deltas through in bprop; first layer of a Model trained one step."""
import numpy as np
import pytest

from refnn.errors import ParameterError, ShapeError
from refnn.neon.callbacks import Callbacks
from refnn.neon.data import ArrayIterator
from refnn.neon.initializers import Gaussian
from refnn.neon.layers import Affine, DataTransform, GeneralizedCost, Sequential
from refnn.neon.models import Model
from refnn.neon.optimizers import GradientDescentMomentum
from refnn.neon.transforms import CrossEntropyMulti, Normalizer, Rectlin, Softmax
from refnn.ops import activation as A

N = 8


@pytest.mark.parametrize("transform, ref", [
    (Normalizer(divisor=255.0), lambda x: A.normalizer_forward(x, divisor=255.0)[0]),
    (Rectlin(), lambda x: A.relu_forward(x)[0])])
def test_fprop_applies_the_transform_bprop_passes_through(nbe, transform, ref):
    rs = np.random.RandomState(0)
    layer = DataTransform(transform, name="dt")
    layer.configure((3, 2, 2))
    layer.allocate()
    assert layer.out_shape == (3, 2, 2)
    x = rs.randn(12, N) * 100
    y = layer.fprop(nbe.array(x)).get()
    np.testing.assert_allclose(y, ref(x), rtol=1e-5, atol=1e-5)
    e = nbe.array(rs.randn(12, N))
    assert layer.bprop(e) is e
    assert "relu" in DataTransform.OPS and "normalizer" in DataTransform.OPS


def test_datatransform_first_in_a_model(nbe):
    rs = np.random.RandomState(1)
    X = (rs.rand(N, 6) * 255).astype(np.float32)
    labels = rs.randint(0, 3, N)
    train = ArrayIterator(X, labels, nclass=3)
    fc = Affine(3, init=Gaussian(scale=0.3), activation=Softmax(), name="fc")
    model = Model(layers=Sequential([DataTransform(Normalizer(divisor=255.0), name="dt"),
                                     fc]))
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    model.initialize(train, cost)
    w0 = fc[0].W.get().astype(np.float64)
    model.fit(train, optimizer=GradientDescentMomentum(0.1, momentum_coef=0.0),
              num_epochs=1, cost=cost, callbacks=Callbacks(model))
    # the Linear layer saw x / 255: its gradient is (softmax(W x) - t) x^T
    x = X.T.astype(np.float64) / 255.0
    z = w0 @ x
    probs = np.exp(z - z.max(axis=0))
    probs /= probs.sum(axis=0)
    t = np.eye(3)[labels].T
    np.testing.assert_allclose(fc[0].dW.get(), (probs - t) @ x.T, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(fc[0].W.get(), w0 - 0.1 * fc[0].dW.get() / N, rtol=1e-5,
                               atol=1e-6)


def test_bad_transform_and_inputs_name_the_layer(nbe):
    with pytest.raises(ParameterError, match=r"dt2 \(DataTransform\): transform must be"):
        DataTransform(lambda x: x, name="dt2")
    layer = DataTransform(Normalizer(), name="dt3").configure(5)
    with pytest.raises(ShapeError, match=r"dt3 \(DataTransform\): inputs must have shape"):
        layer.fprop(nbe.array(np.zeros((4, N))))
