"""Attention family: properties beyond the generic contract of test_generic.py -- closed
forms (equal scores average the values, one open key copies its value, keep = 0 gives
0), the shared mask equals the same mask per entry, the default scale, the head
permutation's index map, sizes that need several OpenMP chunks and OpenCL tiles, float32
fast paths on large inputs, and the errors, on every backend (the reference included).
"""
import numpy as np
import pytest

from refnn.errors import ShapeError
from refnn.ops import attention as A
from refnn.testing import assert_matches_reference
from refnn.testing.pytest_plugin import backend_names, make_backend

OP = "scaled_dot_attention"


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param, dtype=np.float64)


def attend(be, q, k, v, mask=None, keep=None, dout=None, **params):
    dev = [None if a is None else be.asarray(a) for a in (q, k, v, mask, keep)]
    while dev and dev[-1] is None:
        dev.pop()
    out, saved = be.op(OP + ".forward")(*dev, **params)
    if dout is None:
        return be.to_host(out), None
    grads = be.op(OP + ".backward")(be.asarray(dout), saved)
    return be.to_host(out), [None if g is None else be.to_host(g) for g in grads]


def test_equal_scores_average_the_values(any_backend):
    rng = np.random.default_rng(0)
    q = np.zeros((2, 3, 4))
    k, v = rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 6))
    out, _ = attend(any_backend, q, k, v)
    np.testing.assert_allclose(out, np.broadcast_to(v.mean(axis=1, keepdims=True), out.shape),
                               rtol=1e-12, atol=1e-12)


def test_one_open_key_copies_its_value_and_gets_all_gradient(any_backend):
    rng = np.random.default_rng(1)
    q, k, v = rng.normal(size=(1, 4, 3)), rng.normal(size=(1, 6, 3)), rng.normal(size=(1, 6, 2))
    blocked = np.ones((4, 6), bool)
    blocked[np.arange(4), [0, 2, 5, 2]] = False        # query i may read key open[i] only
    dout = rng.normal(size=(1, 4, 2))
    out, (dq, dk, dv, dmask) = attend(any_backend, q, k, v, A.additive_mask(blocked),
                                      dout=dout)
    np.testing.assert_allclose(out[0], v[0, [0, 2, 5, 2]], rtol=1e-12, atol=1e-12)
    assert dmask is None
    np.testing.assert_allclose(dq, 0, atol=1e-12)       # a one-hot softmax is flat
    want_dv = np.zeros((6, 2))
    np.add.at(want_dv, [0, 2, 5, 2], dout[0])
    np.testing.assert_allclose(dv[0], want_dv, rtol=1e-12, atol=1e-12)


def test_keep_zero_gives_zero_and_keep_one_is_plain(any_backend):
    rng = np.random.default_rng(2)
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 3))
    dout = rng.normal(size=(2, 3, 3))
    out0, g0 = attend(any_backend, q, k, v, None, np.zeros((2, 3, 5)), dout=dout)
    np.testing.assert_array_equal(out0, 0)
    for g in g0[:3]:
        np.testing.assert_allclose(g, 0, atol=1e-15)
    assert len(g0) == 5 and g0[3] is None and g0[4] is None
    out1, g1 = attend(any_backend, q, k, v, None, np.ones((2, 3, 5)), dout=dout)
    out, g = attend(any_backend, q, k, v, dout=dout)
    assert len(g) == 3
    np.testing.assert_allclose(out1, out, rtol=1e-12, atol=1e-12)
    for a, b in zip(g1[:3], g):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_shared_mask_equals_the_same_mask_per_entry_and_default_scale(any_backend):
    rng = np.random.default_rng(3)
    q, k, v = rng.normal(size=(3, 4, 9)), rng.normal(size=(3, 7, 9)), rng.normal(size=(3, 7, 2))
    m = rng.normal(size=(4, 7))
    dout = rng.normal(size=(3, 4, 2))
    a, ga = attend(any_backend, q, k, v, m, dout=dout)
    b, gb = attend(any_backend, q, k, v, np.broadcast_to(m, (3, 4, 7)).copy(), dout=dout)
    c, gc = attend(any_backend, q, k, v, m, dout=dout, scale=1 / 3)   # 1 / sqrt(9)
    for x, y in ((a, b), (a, c)):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)
    for x, y, z in zip(ga[:3], gb[:3], gc[:3]):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(x, z, rtol=1e-12, atol=1e-12)
    d, _ = attend(any_backend, q, k, v, m, scale=0.1)
    assert not np.allclose(a, d)


def test_head_permutation_index_map(any_backend):
    N, T, H, d = 2, 3, 4, 5
    x = np.arange(N * T * H * d, dtype=np.float64).reshape(N, T, H * d)
    y, saved = any_backend.op("split_heads.forward")(any_backend.asarray(x), heads=H)
    y = any_backend.to_host(y)
    for n in range(N):
        for h in range(H):
            np.testing.assert_array_equal(y[n * H + h], x[n, :, h * d:(h + 1) * d])
    z, _ = any_backend.op("merge_heads.forward")(any_backend.asarray(y), heads=H)
    np.testing.assert_array_equal(any_backend.to_host(z), x)
    (dx,) = any_backend.op("split_heads.backward")(any_backend.asarray(y), saved)
    np.testing.assert_array_equal(any_backend.to_host(dx), x)


@pytest.mark.parametrize("shape", [(128, 64, 64, 32, 32), (5, 33, 70, 17, 40),
                                   (1, 1, 200, 3, 1)])
def test_large_float32_inputs_match_the_reference(shape):
    """Benchmark-sized batches (many OpenMP chunks), sizes past several 16-wide tiles."""
    B, Tq, Tk, d, dv = shape
    rng = np.random.default_rng(4)
    args = [rng.normal(0, 0.5, (B, Tq, d)), rng.normal(0, 0.5, (B, Tk, d)),
            rng.normal(size=(B, Tk, dv)), rng.normal(size=(Tq, Tk)),
            (rng.random((B, Tq, Tk)) < 0.9) / 0.9]
    for name in backend_names():
        assert_matches_reference(make_backend(name), OP, args)
        assert_matches_reference(make_backend(name), OP, args[:3])


BAD = [  # (q, k, v, mask, keep shapes, message)
    ((2, 3), (2, 3, 4), (2, 3, 4), None, None, r"q must have shape \(B, Tq, d\)"),
    ((2, 3, 4), (2, 5, 3), (2, 5, 4), None, None, r"k must have shape \(2, Tk >= 1, 4\)"),
    ((2, 3, 4), (1, 5, 4), (1, 5, 4), None, None, r"k must have shape \(2, Tk >= 1, 4\)"),
    ((2, 3, 4), (2, 5, 4), (2, 6, 4), None, None, r"v must have shape \(2, 5, dv >= 1\)"),
    ((2, 3, 4), (2, 5, 4), (2, 5, 2), (5, 3), None, r"mask must have shape \(3, 5\)"),
    ((2, 3, 4), (2, 5, 4), (2, 5, 2), None, (2, 3, 4), r"keep must have shape \(2, 3, 5\)"),
    ((2, 0, 4), (2, 5, 4), (2, 5, 2), None, None, r"q must have B, Tq, d >= 1"),
]


@pytest.mark.parametrize("case", BAD)
def test_bad_shapes_raise_naming_the_op(any_backend, case):
    *shapes, msg = case
    arrays = [None if s is None else np.zeros(s) for s in shapes]
    with pytest.raises(ShapeError, match="scaled_dot_attention: " + msg):
        attend(any_backend, *arrays)


def test_bad_heads_raise_naming_the_op(any_backend):
    x = any_backend.asarray(np.zeros((2, 3, 10)))
    with pytest.raises(ShapeError, match=r"split_heads: the feature count 10 .* heads=4"):
        any_backend.op("split_heads.forward")(x, heads=4)
    with pytest.raises(ShapeError, match=r"merge_heads: the batch 2 .* heads=4"):
        any_backend.op("merge_heads.forward")(x, heads=4)
    with pytest.raises(ShapeError, match=r"split_heads: heads must be an int >= 1"):
        any_backend.op("split_heads.forward")(x, heads=0)
    with pytest.raises(ShapeError, match=r"merge_heads: x must have shape \(B \* heads"):
        any_backend.op("merge_heads.forward")(any_backend.asarray(np.zeros((2, 3))), heads=1)


def test_additive_attention_loop_oracle_and_zero_score_vector(any_backend):
    """Bahdanau's formula by explicit loops; w = 0 gives equal weights (the mean of v)."""
    rng = np.random.default_rng(5)
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 2))
    w = rng.normal(size=4)
    dev = [any_backend.asarray(a) for a in (q, k, v, w)]
    out, _ = any_backend.op("additive_attention.forward")(*dev)
    want = np.zeros((2, 3, 2))
    for b in range(2):
        for i in range(3):
            s = np.array([w @ np.tanh(q[b, i] + k[b, j]) for j in range(5)])
            p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            want[b, i] = p @ v[b]
    np.testing.assert_allclose(any_backend.to_host(out), want, rtol=1e-12, atol=1e-12)
    dev[3] = any_backend.asarray(np.zeros(4))
    out, saved = any_backend.op("additive_attention.forward")(*dev)
    np.testing.assert_allclose(any_backend.to_host(out),
                               np.broadcast_to(v.mean(axis=1, keepdims=True), (2, 3, 2)),
                               rtol=1e-12, atol=1e-12)
    dq, dk, dv, dw = (any_backend.to_host(g) for g in any_backend.op(
        "additive_attention.backward")(any_backend.asarray(np.ones((2, 3, 2))), saved))
    np.testing.assert_allclose(dq, 0, atol=1e-15)       # w = 0: the scores ignore q, k
    np.testing.assert_allclose(dk, 0, atol=1e-15)
    np.testing.assert_allclose(dv, np.full((2, 5, 2), 3 / 5), rtol=1e-12)


def test_additive_attention_bad_input_names_the_op(any_backend):
    a = any_backend.asarray
    with pytest.raises(ShapeError, match=r"additive_attention: w must have shape \(4,\)"):
        any_backend.op("additive_attention.forward")(a(np.zeros((1, 2, 4))),
                                                     a(np.zeros((1, 3, 4))),
                                                     a(np.zeros((1, 3, 2))), a(np.zeros(3)))
    with pytest.raises(ShapeError, match=r"additive_attention: k must have shape"):
        any_backend.op("additive_attention.forward")(a(np.zeros((1, 2, 4))),
                                                     a(np.zeros((1, 3, 5))),
                                                     a(np.zeros((1, 3, 2))), a(np.zeros(4)))


def test_additive_attention_float32_decoder_sizes():
    rng = np.random.default_rng(6)
    args = [rng.normal(0, 0.5, (16, 1, 64)), rng.normal(0, 0.5, (16, 40, 64)),
            rng.normal(size=(16, 40, 33)), rng.normal(0, 0.3, 64)]
    for name in backend_names():
        assert_matches_reference(make_backend(name), "additive_attention", args)
