"""lstm: a one-layer LSTM over a whole sequence through ``be.op("lstm.*")``, float32.

Input 128, hidden 256, 50 steps, batch 32, time-major x (T, N, I), no initial state.
Variants ``forward`` and ``forward+backward`` (BPTT: dx and the weight gradients; the
upstream gradient reaches every hidden state, none the cell states). The PyTorch
baseline is ``torch.nn.LSTM`` (one layer, same sizes, input with requires_grad).
The gru case (gru.py) reuses this module with 3 gate blocks.
"""
import numpy as np

VARIANTS = ("forward", "forward+backward")
REPEAT = 5
T, N, I, H = 50, 32, 128, 256


def _data(gates):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, I)).astype(np.float32)
    w = (rng.standard_normal((gates * H, I)) / np.sqrt(I)).astype(np.float32)
    u = (rng.standard_normal((gates * H, H)) / np.sqrt(H)).astype(np.float32)
    b = np.zeros(gates * H, np.float32)
    dhs = rng.standard_normal((T, N, H)).astype(np.float32)
    return x, w, u, b, dhs


def make_for(op, gates, path, variant):
    x, w, u, b, dhs = _data(gates)
    backward = variant == "forward+backward"
    if path == "torch":
        return _torch(op, x, dhs, backward)
    from refnn.backends import get_backend
    be = get_backend(path)
    x, w, u, b, dhs = (be.asarray(a) for a in (x, w, u, b, dhs))
    dout = (dhs, be.zeros(dhs.shape)) if op == "lstm" else dhs
    fwd, bwd = be.op(op + ".forward"), be.op(op + ".backward")

    def run():
        _, saved = fwd(x, w, u, b)
        if backward:
            bwd(dout, saved)
        be.synchronize()
    return run


def make(path, variant):
    return make_for("lstm", 4, path, variant)


def _torch(op, x, dhs, backward):
    import torch
    cell = (torch.nn.LSTM if op == "lstm" else torch.nn.GRU)(I, H)
    x = torch.from_numpy(x).requires_grad_(backward)
    dhs = torch.from_numpy(dhs)

    def run():
        if backward:
            cell(x)[0].backward(dhs)
            x.grad = None
            cell.zero_grad()
        else:
            with torch.no_grad():
                cell(x)
    return run
