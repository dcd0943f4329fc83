"""fc: one fully connected layer, Linear 1024 -> 1024 (no bias), batch 128, float32.

Variants: ``forward`` (y = x W^T) and ``forward+backward`` (also dx = dy W and
dW = dy^T x, i.e. three GEMMs of 128 x 1024 x 1024, ~0.8 GFLOP). Baseline ``numpy``:
the same three bare numpy.matmul calls, the floor any host path can hope for.
"""
import numpy as np

N, C_IN, C_OUT = 128, 1024, 1024
VARIANTS = ("forward", "forward+backward")
REPEAT = 20
BASELINES = ("numpy",)


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C_IN)).astype(np.float32)
    W = (rng.standard_normal((C_OUT, C_IN)) / np.sqrt(C_IN)).astype(np.float32)
    dy = rng.standard_normal((N, C_OUT)).astype(np.float32)
    return x, W, dy


def make(path, variant):
    x, W, dy = _data()
    backward = variant == "forward+backward"
    if path == "numpy":
        def run():
            x @ W.T
            if backward:
                dy @ W
                dy.T @ x
        return run
    if path == "torch":
        return _torch(x, W, dy, backward)
    from refnn.backends import get_backend
    be = get_backend(path)
    x, W, dy = be.asarray(x), be.asarray(W), be.asarray(dy)
    fwd, bwd = be.op("linear.forward"), be.op("linear.backward")

    def run():
        y, saved = fwd(x, W)
        if backward:
            bwd(dy, saved)
        be.synchronize()
    return run


def _torch(x, W, dy, backward):
    import torch
    x = torch.from_numpy(x).requires_grad_(backward)
    W = torch.from_numpy(W).requires_grad_(backward)
    dy = torch.from_numpy(dy)

    def run():
        if backward:
            y = torch.nn.functional.linear(x, W)
            y.backward(dy)
            x.grad = W.grad = None
        else:
            with torch.no_grad():
                torch.nn.functional.linear(x, W)
    return run
