"""pool: max pooling 2x2, stride 2, on 64 channels of 32x32, batch 32, float32.

Through ``be.op("max_pool2d.*")``. Variants ``forward`` and ``forward+backward``
(dX scattered to each window's argmax). Memory-bound: 8 MB in, 2 MB out.
"""
import numpy as np

N, C, H, W = 32, 64, 32, 32
VARIANTS = ("forward", "forward+backward")
REPEAT = 10


def make(path, variant):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    dy = rng.standard_normal((N, C, H // 2, W // 2)).astype(np.float32)
    backward = variant == "forward+backward"
    if path == "torch":
        return _torch(x, dy, backward)
    from refnn.backends import get_backend
    be = get_backend(path)
    x, dy = be.asarray(x), be.asarray(dy)
    fwd, bwd = be.op("max_pool2d.forward"), be.op("max_pool2d.backward")

    def run():
        y, saved = fwd(x, (2, 2), (2, 2))
        if backward:
            bwd(dy, saved)
        be.synchronize()
    return run


def _torch(x, dy, backward):
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(x).requires_grad_(backward)
    dy = torch.from_numpy(dy)

    def run():
        if backward:
            F.max_pool2d(x, 2, 2).backward(dy)
            x.grad = None
        else:
            with torch.no_grad():
                F.max_pool2d(x, 2, 2)
    return run
