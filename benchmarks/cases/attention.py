"""attention: NeoML's MultiheadAttention layer, embed 256, 8 heads, sequence 64, batch 16.

Q, K, V blobs (1, 16, 64, 1, 1, 1, 256), hidden_size = output_size = 256, no dropout,
no mask. Variants ``forward`` and ``forward+backward`` (dQ, dK, dV and every weight
gradient) through the layer's own ``_forward`` / ``_backward`` (4 linear + bias,
split_heads x 3, scaled_dot_attention over 16 * 8 = 128 heads of 64 x 64 scores,
merge_heads). The PyTorch baseline is ``nn.MultiheadAttention(256, 8,
batch_first=True)`` on the same three inputs, gradients for all of them.
"""
import numpy as np

VARIANTS = ("forward", "forward+backward")
REPEAT = 10
N, L, E, HEADS = 16, 64, 256, 8


def _data():
    rng = np.random.default_rng(0)
    q, k, v, dy = (rng.standard_normal((N, L, E)).astype(np.float32) for _ in range(4))
    return q, k, v, dy


def make(path, variant):
    q, k, v, dy = _data()
    backward = variant == "forward+backward"
    if path == "torch":
        return _torch(q, k, v, dy, backward)
    import refnn.neoml as neoml
    engine = {"reference": neoml.MathEngine.ReferenceMathEngine,
              "cpu": neoml.MathEngine.CpuMathEngine,
              "opencl": neoml.MathEngine.OpenCLMathEngine}[path]()
    dnn = neoml.Dnn.Dnn(engine, neoml.Random.Random(0))
    srcs = [neoml.Dnn.Source(dnn, n) for n in "qkv"]
    mha = neoml.Dnn.MultiheadAttention(srcs, HEADS, E, E, -1, name="mha")
    be = engine.backend
    shape = (1, N, L, 1, 1, 1, E)
    xs = [be.asarray(a.reshape(shape)) for a in (q, k, v)]
    dys = [be.asarray(dy.reshape(shape))]
    mha._forward(be, xs, True)            # draws the weights (and builds OpenCL programs)

    def run():
        mha._forward(be, xs, True)
        if backward:
            mha._backward(be, dys, [True, True, True])
            mha._grads.clear()
        be.synchronize() if hasattr(be, "synchronize") else None
    return run


def _torch(q, k, v, dy, backward):
    import torch
    mha = torch.nn.MultiheadAttention(E, HEADS, batch_first=True)
    q, k, v = (torch.from_numpy(a).requires_grad_(backward) for a in (q, k, v))
    dy = torch.from_numpy(dy)

    def run():
        if backward:
            out, _ = mha(q, k, v, need_weights=False)
            out.backward(dy)
            q.grad = k.grad = v.grad = None
            mha.zero_grad()
        else:
            with torch.no_grad():
                mha(q, k, v, need_weights=False)
    return run
