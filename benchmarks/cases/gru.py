"""gru: a one-layer GRU (NeoML's equations) over a whole sequence through
``be.op("gru.*")``, float32; sizes, variants and baseline as in lstm.py (input 128,
hidden 256, 50 steps, batch 32; PyTorch's ``torch.nn.GRU``, which applies the reset gate
after the recurrent product -- the same work)."""
from cases import lstm

VARIANTS = lstm.VARIANTS
REPEAT = lstm.REPEAT


def make(path, variant):
    return lstm.make_for("gru", 3, path, variant)
