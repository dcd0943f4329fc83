"""bn: training-mode batch normalization of 64 channels of 32x32 images, batch 32, float32.

Through ``be.op("batch_norm.*")`` on the (N*H*W, C) = (32768, 64) matrix -- the layout
NeoML's channels-last blobs already have (a per-channel reduction over 32768 rows).
Variants ``forward`` (y, batch mean and variance) and ``forward+backward`` (dx, dgamma,
dbeta with ``(dy, None, None)``, as the facades call it). PyTorch: ``F.batch_norm`` with
training=True on the same (32768, 64) matrix. Memory-bound: 8 MB in, 8 MB out.
"""
import numpy as np

N, C, H, W = 32, 64, 32, 32
VARIANTS = ("forward", "forward+backward")
REPEAT = 10
EPS = 1e-5


def make(path, variant):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N * H * W, C)).astype(np.float32)
    dy = rng.standard_normal((N * H * W, C)).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, C).astype(np.float32)
    beta = rng.standard_normal(C).astype(np.float32)
    backward = variant == "forward+backward"
    if path == "torch":
        return _torch(x, dy, gamma, beta, backward)
    from refnn.backends import get_backend
    be = get_backend(path)
    x, dy, gamma, beta = (be.asarray(a) for a in (x, dy, gamma, beta))
    fwd, bwd = be.op("batch_norm.forward"), be.op("batch_norm.backward")

    def run():
        _, saved = fwd(x, gamma, beta, eps=EPS)
        if backward:
            bwd((dy, None, None), saved)
        be.synchronize()
    return run


def _torch(x, dy, gamma, beta, backward):
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(x).requires_grad_(backward)
    g = torch.from_numpy(gamma).requires_grad_(backward)
    b = torch.from_numpy(beta).requires_grad_(backward)
    dy = torch.from_numpy(dy)

    def run():
        if backward:
            F.batch_norm(x, None, None, g, b, training=True, eps=EPS).backward(dy)
            x.grad = g.grad = b.grad = None
        else:
            with torch.no_grad():
                F.batch_norm(x, None, None, g, b, training=True, eps=EPS)
    return run
