"""lenet_step: one SGD training step of LeNet through the refnn.neon facade.

Batch 128 of 28x28x1 random images (pixels in [0, 1)), random labels (10 classes):
conv 5x5x20 (+ bias) - max pool 2 - conv 5x5x50 (+ bias) - max pool 2 - fc 500 (+ bias)
- relu - fc 10 (+ bias) - softmax + cross-entropy, plain SGD (lr 0.01). One step =
``model.fprop`` + ``cost.get_cost/get_errors`` + ``model.bprop`` +
``optimizer.optimize`` -- exactly what ``Model.fit`` runs per minibatch. neon backend
per path: reference -> 'reference', cpu -> 'cpu', opencl -> 'gpu'; the minibatch is
already on the device (as an ArrayIterator leaves it). The PyTorch baseline runs the
same network with torch.nn.functional and torch.optim.SGD.
"""
import numpy as np

BATCH, NCLASS, LR = 128, 10, 0.01
VARIANTS = ("train",)
REPEAT = 10
NEON = {"reference": "reference", "cpu": "cpu", "opencl": "gpu"}


def _data():
    rng = np.random.default_rng(0)
    # pixels in [0, 1) as MNIST's: repeated steps on one batch stay finite (N(0, 1)
    # "pixels" diverge at lr 0.01 within ~10 steps, and inf/NaN would skew the timing)
    X = rng.random((BATCH, 28 * 28), dtype=np.float32)
    y = rng.integers(0, NCLASS, BATCH)
    return X, y


def make(path, variant):
    X, y = _data()
    if path == "torch":
        return _torch(X, y)
    if path not in NEON:
        return None
    from refnn.neon.backends import gen_backend
    from refnn.neon.data import ArrayIterator
    from refnn.neon.initializers import Constant, Xavier
    from refnn.neon.layers import Affine, Conv, GeneralizedCost, Pooling
    from refnn.neon.models import Model
    from refnn.neon.optimizers import GradientDescentMomentum
    from refnn.neon.transforms import CrossEntropyMulti, Rectlin, Softmax

    be = gen_backend(NEON[path], rng_seed=0, batch_size=BATCH)
    train = ArrayIterator(X, y, nclass=NCLASS, lshape=(1, 28, 28))
    init, zero = Xavier(), Constant(0.0)
    layers = [Conv((5, 5, 20), init=init, bias=zero, name="conv1"),
              Pooling(2, name="pool1"),
              Conv((5, 5, 50), init=init, bias=zero, name="conv2"),
              Pooling(2, name="pool2"),
              Affine(500, init=init, bias=zero, activation=Rectlin(), name="fc1"),
              Affine(NCLASS, init=init, bias=zero, activation=Softmax(), name="fc2")]
    model = Model(layers=layers)
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    model.initialize(train, cost)
    opt = GradientDescentMomentum(LR, momentum_coef=0.0)
    x, t = next(iter(train))

    def run():
        out = model.fprop(x)
        cost.get_cost(out, t)
        model.bprop(cost.get_errors(out, t))
        opt.optimize(model.layers_to_optimize, epoch=0)
        be.rb.synchronize()
    return run


def _torch(X, y):
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    x = torch.from_numpy(X).reshape(BATCH, 1, 28, 28)
    t = torch.from_numpy(y.astype(np.int64))
    params = [torch.nn.init.xavier_uniform_(torch.empty(s)) if len(s) > 1 else
              torch.zeros(s) for s in ((20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,),
                                       (500, 800), (500,), (NCLASS, 500), (NCLASS,))]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=LR)
    w1, b1, w2, b2, w3, b3, w4, b4 = params

    def run():
        h = F.max_pool2d(F.conv2d(x, w1, b1), 2)
        h = F.max_pool2d(F.conv2d(h, w2, b2), 2)
        h = F.relu(F.linear(h.reshape(BATCH, -1), w3, b3))
        loss = F.cross_entropy(F.linear(h, w4, b4), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return run
