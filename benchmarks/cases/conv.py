"""conv / conv_first: 2-D convolutions through ``be.op("conv2d.*")``, float32, NCHW.

``conv``: 64 -> 64 channels, 3x3, stride 1, padding 1, 32x32 images, batch 32
(~2.4 GFLOP forward). Variants ``forward`` and ``forward+backward`` (dX and dW).

``conv_first`` (the module ``CONV_FIRST`` below): a first layer, 3 -> 32 channels,
5x5, no padding, 32x32 images, batch 64; variant ``forward+backward`` where only dW
is wanted: refnn's forward gets ``need_dx=False`` (its backward then skips the dX
GEMM and col2im) and the PyTorch baseline an input without requires_grad.
"""
import numpy as np

VARIANTS = ("forward", "forward+backward")
REPEAT = 5
#: (N, C, H, W), (F, C, kh, kw), padding, whether dX is wanted
GEOMETRY = ((32, 64, 32, 32), (64, 64, 3, 3), 1, True)


def _data(geometry):
    (N, C, H, W), w_shape, pad, _ = geometry
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    fan_in = int(np.prod(w_shape[1:]))
    w = (rng.standard_normal(w_shape) / np.sqrt(fan_in)).astype(np.float32)
    Ho, Wo = H + 2 * pad - w_shape[2] + 1, W + 2 * pad - w_shape[3] + 1
    dy = rng.standard_normal((N, w_shape[0], Ho, Wo)).astype(np.float32)
    return x, w, dy


def make_for(geometry, path, variant):
    x, w, dy = _data(geometry)
    pad, need_dx = geometry[2], geometry[3]
    backward = variant == "forward+backward"
    if path == "torch":
        return _torch(x, w, dy, pad, backward, need_dx)
    from refnn.backends import get_backend
    be = get_backend(path)
    x, w, dy = be.asarray(x), be.asarray(w), be.asarray(dy)
    fwd, bwd = be.op("conv2d.forward"), be.op("conv2d.backward")

    def run():
        y, saved = fwd(x, w, (1, 1), (pad, pad), need_dx=need_dx)
        if backward:
            bwd(dy, saved)        # dX (when need_dx) and dW
        be.synchronize()
    return run


def make(path, variant):
    return make_for(GEOMETRY, path, variant)


def _torch(x, w, dy, pad, backward, need_dx):
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(x).requires_grad_(backward and need_dx)
    w = torch.from_numpy(w).requires_grad_(backward)
    dy = torch.from_numpy(dy)

    def run():
        if backward:
            F.conv2d(x, w, padding=pad).backward(dy)
            x.grad = w.grad = None
        else:
            with torch.no_grad():
                F.conv2d(x, w, padding=pad)
    return run


class CONV_FIRST:
    """The ``conv_first`` case: 3 -> 32, 5x5, no padding, 32x32, batch 64, dW only."""
    VARIANTS = ("forward+backward",)
    REPEAT = 5
    GEOMETRY = ((64, 3, 32, 32), (32, 3, 5, 5), 0, False)

    @staticmethod
    def make(path, variant):
        return make_for(CONV_FIRST.GEOMETRY, path, variant)
