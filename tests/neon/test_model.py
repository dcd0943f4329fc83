"""Model training end to end: one seed -> equal weights on reference, cpu and opencl;
a neon script run unchanged apart from its imports; the custom-layer guide's
MultiplyByTwo; callbacks; per-thread backends."""
import threading

import numpy as np
import pytest

from refnn.errors import ShapeError
from refnn.neon import NervanaObject
from refnn.neon.backends import gen_backend
from refnn.neon.callbacks.callbacks import Callbacks
from refnn.neon.data import ArrayIterator
from refnn.neon.initializers import Constant, Gaussian, GlorotUniform
from refnn.neon.layers import Affine, GeneralizedCost, Layer
from refnn.neon.models import Model
from refnn.neon.optimizers import GradientDescentMomentum
from refnn.neon.transforms import (CrossEntropyMulti, Misclassification, Rectlin, Softmax,
                                   Tanh)

rs = np.random.RandomState(7)
X = rs.randn(70, 10)
Y = rs.randint(0, 3, 70)

#: float32 weights after one epoch (9 minibatches, 3 layers) on cpu/opencl vs the
#: float32 reference: GEMM summation order and fused multiply-adds differ by a few
#: ulps per op, accumulated over 9 updates (measured: max |diff| 6e-8 on weights of
#: O(0.3); the bound leaves a ~16x margin).
MLP_RTOL, MLP_ATOL = 1e-5, 1e-6


def train_mlp(name, epochs=1):
    gen_backend(name, rng_seed=0, batch_size=8)
    train = ArrayIterator(X, Y, nclass=3)
    layers = [Affine(nout=16, init=Gaussian(scale=0.3), bias=Constant(0.1),
                     activation=Rectlin()),
              Affine(nout=8, init=GlorotUniform(), bias=Constant(0), activation=Tanh()),
              Affine(nout=3, init=Gaussian(scale=0.3), bias=Constant(0),
                     activation=Softmax())]
    model = Model(layers=layers)
    model.fit(train, cost=GeneralizedCost(costfunc=CrossEntropyMulti()),
              optimizer=GradientDescentMomentum(0.1, momentum_coef=0.9),
              num_epochs=epochs, callbacks=Callbacks(model, progress_bar=False))
    return model, train


def test_one_epoch_gives_equal_weights_on_every_backend():
    results = {}
    for name in ("reference", "cpu", "gpu"):
        model, _ = train_mlp(name)
        results[name] = [l.W.get() for l in model.layers_to_optimize]
        assert model.total_cost.get()[0, 0] > 0
    for name in ("cpu", "gpu"):
        for w_ref, w in zip(results["reference"], results[name]):
            np.testing.assert_allclose(w, w_ref, rtol=MLP_RTOL, atol=MLP_ATOL)


def test_training_reduces_cost_and_eval_get_outputs(nbe):
    model, train = train_mlp(nbe.backend_name, epochs=4)
    miss = model.eval(train, metric=Misclassification())
    assert miss.shape == (1,) and 0 <= miss[0] < 0.5
    out = model.get_outputs(train)
    assert out.shape == (70, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    expect = (out.argmax(1) != Y).mean()
    assert miss[0] == pytest.approx(expect, abs=1e-6)


def test_callbacks_record_train_cost_and_eval_loss():
    gen_backend("cpu", rng_seed=0, batch_size=10)
    train = ArrayIterator(X, Y, nclass=3)
    model = Model([Affine(nout=3, init=Gaussian(scale=0.1), activation=Softmax())])
    cbs = Callbacks(model, eval_set=train, eval_freq=1, progress_bar=True)
    model.fit(train, cost=GeneralizedCost(CrossEntropyMulti()),
              optimizer=GradientDescentMomentum(0.5, 0.0), num_epochs=3, callbacks=cbs)
    train_cost = cbs.callback_data["cost/train"]
    loss = cbs.callback_data["cost/loss"]
    assert train_cost.shape == (21,) and np.all(train_cost > 0)
    assert loss.shape == (3,) and loss[2] < loss[0]


NEON_SCRIPT = '''
from neon.backends import gen_backend
from neon.data import ArrayIterator
from neon.initializers import Gaussian
from neon.layers import Affine, GeneralizedCost
from neon.models import Model
from neon.optimizers import GradientDescentMomentum
from neon.transforms import Rectlin, Softmax, CrossEntropyMulti, Misclassification
from neon.callbacks.callbacks import Callbacks

be = gen_backend(backend=BACKEND, batch_size=16, rng_seed=0)
train_set = ArrayIterator(X=X, y=y, nclass=3)
init = Gaussian(loc=0.0, scale=0.1)
layers = [Affine(nout=20, init=init, bias=init, activation=Rectlin()),
          Affine(nout=3, init=init, bias=init, activation=Softmax())]
mlp = Model(layers=layers)
cost = GeneralizedCost(costfunc=CrossEntropyMulti())
optimizer = GradientDescentMomentum(0.1, momentum_coef=0.9)
callbacks = Callbacks(mlp, eval_set=train_set)
mlp.fit(train_set, optimizer=optimizer, num_epochs=5, cost=cost, callbacks=callbacks)
error = mlp.eval(train_set, metric=Misclassification())
'''


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_a_neon_script_runs_with_only_its_imports_changed(backend):
    source = NEON_SCRIPT.replace("from neon.", "from refnn.neon.")
    namespace = {"BACKEND": backend, "X": X, "y": Y}
    exec(compile(source, "<neon script>", "exec"), namespace)
    assert 0 <= namespace["error"][0] < 0.6
    assert namespace["be"].rb.name == {"cpu": "cpu", "gpu": "opencl"}[backend]


class MultiplyByTwo(Layer):
    " A layer that multiples the input by two. "

    # constructor and initialize buffers
    def __init__(self, name=None):
        super(MultiplyByTwo, self).__init__(name)

    # configure the layer input and output shapes
    def configure(self, in_obj):
        super(MultiplyByTwo, self).configure(in_obj)
        self.out_shape = self.in_shape
        return self

    # compute the fprop
    def fprop(self, inputs, inference=False):
        self.outputs = inputs
        self.outputs[:] = inputs*2
        return self.outputs

    # backprop the gradients
    def bprop(self, error):
        error[:] = 2*error
        return error


def test_the_creating_layers_guide_multiply_by_two(nbe):
    layers = [Affine(nout=4, init=Gaussian(scale=0.3), activation=Rectlin()),
              MultiplyByTwo(),
              Affine(nout=3, init=Gaussian(scale=0.3), activation=Softmax())]
    model = Model(layers)
    train = ArrayIterator(X[:16], Y[:16], nclass=3)
    model.fit(train, cost=GeneralizedCost(CrossEntropyMulti()),
              optimizer=GradientDescentMomentum(0.1, 0.0), num_epochs=2,
              callbacks=Callbacks(model, progress_bar=False))
    times2 = model.layers.layers[2]
    assert isinstance(times2, MultiplyByTwo)
    err = rs.randn(4, 8)
    np.testing.assert_allclose(times2.bprop(nbe.array(err)).get(), 2 * err, rtol=1e-6)
    # the trained model computes softmax(W2 (2 relu(W1 x)))
    W1, W2 = (l.W.get() for l in model.layers_to_optimize)
    z = W2 @ (2 * np.maximum(W1 @ X[:16].T, 0))
    e = np.exp(z - z.max(axis=0))
    np.testing.assert_allclose(model.get_outputs(train), (e / e.sum(axis=0)).T,
                               rtol=1e-4, atol=1e-6)


def test_model_rejects_targets_that_do_not_match_the_output():
    gen_backend("cpu", rng_seed=0, batch_size=8)
    train = ArrayIterator(X, Y, nclass=3)
    model = Model([Affine(nout=4, init=Gaussian(), activation=Softmax())])
    with pytest.raises(ShapeError, match=r"targets of shape \(3, 8\).*\(4, 8\)"):
        model.fit(train, cost=GeneralizedCost(CrossEntropyMulti()),
                  optimizer=GradientDescentMomentum(0.1, 0.0), num_epochs=1,
                  callbacks=Callbacks(model, progress_bar=False))


def test_each_thread_has_its_own_backend():
    """gen_backend in a thread sets that thread's NervanaObject.be; two threads train
    on different backends at once and get the single-threaded results."""
    expected = {n: [l.W.get() for l in train_mlp(n)[0].layers_to_optimize]
                for n in ("cpu", "gpu")}
    got, errors = {}, []
    barrier = threading.Barrier(2)

    def work(name):
        try:
            gen_backend(name, rng_seed=0, batch_size=8)
            barrier.wait()
            assert NervanaObject.be.backend_name == name
            got[name] = [l.W.get() for l in train_mlp(name)[0].layers_to_optimize]
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("cpu", "gpu")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for name in expected:
        for a, b in zip(expected[name], got[name]):
            np.testing.assert_array_equal(a, b)


def test_neon_argparser_builds_the_backend():
    from refnn.errors import ParameterError
    from refnn.neon.util import NeonArgparser
    args = NeonArgparser().parse_args(["-b", "reference", "-z", "4", "-r", "3", "-e", "2"])
    be = NervanaObject.be
    assert (be.backend_name, be.bsz, be.rng_seed, args.epochs) == ("reference", 4, 3, 2)
    model = Model([Affine(nout=3, init=Gaussian())])
    Callbacks(model, **args.callback_args)
    with pytest.raises(ParameterError, match="save_path"):
        Callbacks(model, save_path="model.prm")


def test_get_description_gives_the_weights_as_the_models_guide_shows():
    model, _ = train_mlp("cpu")
    pdict = model.get_description(get_weights=True)
    W = pdict["model"]["config"]["layers"][0]["params"]["W"]
    np.testing.assert_array_equal(W, model.layers.layers[0].W.get())
    from refnn.errors import ParameterError
    with pytest.raises(ParameterError, match="serialized"):
        Model("mnist_model.prm")
