"""mlp_epoch: one epoch of a 784-100-10 ReLU MLP, softmax cross-entropy, plain SGD.

60,000 random "images" (float32, 784 features) with random labels in batches of 128
(the last batch has 96), one SGD step (lr 0.01) per batch. The network is run op by
op through ``be.op(...)``: linear, bias, relu, cross_entropy (softmax on logits,
integer labels, mean over the batch); the first layer skips dX (need_dx=False).
On OpenCL each batch is uploaded (as a data loader would) and the weights stay on
the device. Dominated at this size by per-call overhead as much as by arithmetic.
"""
import numpy as np

N_SAMPLES, D_IN, D_HIDDEN, D_OUT, BATCH, LR = 60_000, 784, 100, 10, 128, 0.01
VARIANTS = ("train",)
REPEAT = 3

_DATA = {}


def _data():
    if not _DATA:
        rng = np.random.default_rng(0)
        _DATA["X"] = rng.standard_normal((N_SAMPLES, D_IN), dtype=np.float32)
        _DATA["y"] = rng.integers(0, D_OUT, N_SAMPLES).astype(np.int32)
        _DATA["params"] = [
            (rng.standard_normal((D_HIDDEN, D_IN)) / np.sqrt(D_IN)).astype(np.float32),
            np.zeros(D_HIDDEN, np.float32),
            (rng.standard_normal((D_OUT, D_HIDDEN)) / np.sqrt(D_HIDDEN)).astype(np.float32),
            np.zeros(D_OUT, np.float32),
        ]
    return _DATA["X"], _DATA["y"], _DATA["params"]


def make(path, variant):
    X, labels, params = _data()
    if path == "torch":
        return _torch(X, labels, params)
    from refnn.backends import get_backend
    be = get_backend(path)
    W1, b1, W2, b2 = (be.asarray(p) for p in params)
    lin_f, lin_b = be.op("linear.forward"), be.op("linear.backward")
    bias_f, bias_b = be.op("bias.forward"), be.op("bias.backward")
    relu_f, relu_b = be.op("relu.forward"), be.op("relu.backward")
    ce_f, ce_b = be.op("cross_entropy.forward"), be.op("cross_entropy.backward")
    host = path in ("reference", "cpu")
    dl = {n: be.asarray(np.full(n, 1.0 / n, np.float32))
          for n in {BATCH, N_SAMPLES % BATCH or BATCH}}

    def sgd(p, g):
        if host:
            g *= LR
            p -= g
        else:
            p -= LR * g

    def run():
        for i in range(0, N_SAMPLES, BATCH):
            xb = X[i:i + BATCH] if host else be.asarray(X[i:i + BATCH])
            yb = labels[i:i + BATCH]
            h, s1 = lin_f(xb, W1)
            h, s2 = bias_f(h, b1)
            h, s3 = relu_f(h)
            z, s4 = lin_f(h, W2)
            z, s5 = bias_f(z, b2)
            _, s6 = ce_f(z, yb)
            dz = ce_b(dl[xb.shape[0]], s6)[0]
            dz, db2 = bias_b(dz, s5)
            dh, dW2 = lin_b(dz, s4)
            dh = relu_b(dh, s3)[0]
            dh, db1 = bias_b(dh, s2)
            _, dW1 = lin_b(dh, s1, need_dx=False)
            for p, g in ((W1, dW1), (b1, db1), (W2, dW2), (b2, db2)):
                sgd(p, g)
        be.synchronize()
    return run


def _torch(X, labels, params):
    import torch
    import torch.nn.functional as F
    Xt, yt = torch.from_numpy(X), torch.from_numpy(labels.astype(np.int64))
    ps = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    opt = torch.optim.SGD(ps, lr=LR)

    def run():
        W1, b1, W2, b2 = ps
        for i in range(0, N_SAMPLES, BATCH):
            h = F.relu(F.linear(Xt[i:i + BATCH], W1, b1))
            loss = F.cross_entropy(F.linear(h, W2, b2), yt[i:i + BATCH])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return run
