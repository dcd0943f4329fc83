"""Input strategies for the attention family: q (B, Tq, d), k (B, Tk, d), v (B, Tk, dv).

Batches of 1, single queries and keys, sizes up to 37 that do not divide the OpenCL
strip (16), up to 70 keys, more keys than queries and the reverse; with or without an
additive mask -- shared (Tq, Tk) or per entry (B, Tq, Tk), random values or NeoML's -1e9
on blocked keys (each row keeps at least one key) -- with or without a dropout
multiplier ``keep``, and default or explicit ``scale``.
"""
import numpy as np
from hypothesis import strategies as st

from refnn.ops.attention import MASK_VALUE
from refnn.testing import strategies as rst


def _blocked_mask(shape):
    """-1e9 on blocked keys, 0 elsewhere; the last key of every row stays open."""
    def build(bits):
        m = np.where(np.asarray(bits, dtype=bool).reshape(shape), MASK_VALUE, 0.0)
        m[..., -1] = 0.0
        return m
    n = int(np.prod(shape))
    return st.lists(st.booleans(), min_size=n, max_size=n).map(build)


def _keep(shape):
    """A dropout multiplier: 0 or 1 / 0.75 per weight (dropout rate 0.25)."""
    n = int(np.prod(shape))
    return st.lists(st.booleans(), min_size=n, max_size=n).map(
        lambda bits: np.asarray(bits, dtype=float).reshape(shape) / 0.75)


def _case(draw):
    B = draw(st.integers(1, 3))
    Tq = draw(st.sampled_from([1, 2, 5, 17]))
    Tk = draw(st.sampled_from([1, 3, 16, 19, 70]))       # 70: a long sequence
    d = draw(st.sampled_from([1, 4, 7, 37]))
    dv = draw(st.sampled_from([1, 3, 18]))
    # |S| stays O(1) so float32 softmax errors stay at a few ulps
    small = rst.floats_away_from(min_value=-1.0, max_value=1.0)
    q = draw(rst.arrays((B, Tq, d), elements=small))
    k = draw(rst.arrays((B, Tk, d), elements=small))
    v = draw(rst.arrays((B, Tk, dv)))
    args = [q, k, v]
    mask_kind = draw(st.sampled_from(["none", "shared", "batched", "blocked"]))
    with_keep = draw(st.booleans())
    if mask_kind == "shared":
        args.append(draw(rst.arrays((Tq, Tk))))
    elif mask_kind == "batched":
        args.append(draw(rst.arrays((B, Tq, Tk))))
    elif mask_kind == "blocked":
        args.append(draw(_blocked_mask((Tq, Tk))))
    elif with_keep:
        args.append(None)
    if with_keep:
        args.append(draw(_keep((B, Tq, Tk))))
    params = draw(st.sampled_from([{}, {"scale": 0.5}, {"scale": 1.0 / np.sqrt(8.0)}]))
    return tuple(args), params


def _heads(split):
    """split_heads: x (N, T, H * d); merge_heads: x (N * H, T, d)."""
    def build(draw):
        N, T = draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 7, 17]))
        H, d = draw(st.integers(1, 5)), draw(st.sampled_from([1, 3, 8]))
        shape = (N, T, H * d) if split else (N * H, T, d)
        return (draw(rst.arrays(shape)),), {"heads": H}
    return st.composite(build)()


def _additive(draw):
    """q (B, Tq, d), k (B, Tk, d), v (B, Tk, dv), w (d,); decoder-like Tq = 1 included."""
    B = draw(st.integers(1, 3))
    Tq, Tk = draw(st.sampled_from([1, 2, 5])), draw(st.sampled_from([1, 3, 17]))
    d, dv = draw(st.sampled_from([1, 4, 19])), draw(st.sampled_from([1, 3, 18]))
    return (draw(rst.arrays((B, Tq, d))), draw(rst.arrays((B, Tk, d))),
            draw(rst.arrays((B, Tk, dv))), draw(rst.arrays((d,)))), {}


INPUTS = {
    "additive_attention": st.composite(_additive)(),
    "scaled_dot_attention": st.composite(_case)(),
    "split_heads": _heads(True),
    "merge_heads": _heads(False),
}
