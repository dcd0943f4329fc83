"""Sequence family: properties beyond the generic contract of test_generic.py -- NeoML's
SubSequence geometry case by case, the identities between the ops (ReverseSequence is
SubSequence(-1, -T), seq_last is SubSequence(-1, 1)), long sequences, float32 paths,
and the errors, on every backend (the reference included).
"""
import numpy as np
import pytest

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops import sequence as S
from refnn.testing import assert_matches_reference
from refnn.testing.pytest_plugin import backend_names, make_backend

OPS = ("seq_sum", "seq_mean", "seq_last", "subsequence", "reverse_sequence",
       "repeat_sequence", "cumsum")


@pytest.fixture(scope="module", params=["reference"] + backend_names())
def any_backend(request):
    return make_backend(request.param, dtype=np.float64)


def run(be, op, x, dy=None, **params):
    y, saved = be.op(op + ".forward")(be.asarray(x), **params)
    if dy is None:
        return be.to_host(y), None
    (dx,) = be.op(op + ".backward")(be.asarray(dy), saved)
    return be.to_host(y), be.to_host(dx)


def steps(T, N=2, C=3):
    """x[t, n, c] = t + 0.01 (n C + c): the time step is readable from every value."""
    return np.arange(T, dtype=np.float64)[:, None, None] + 0.01 * np.arange(N * C).reshape(N, C)


# (T, start_pos, length) -> the source time steps NeoML's CSubSequenceLayer selects
NEOML_CASES = [
    (5, 0, 1, [0]),
    (5, 1, 10, [1, 2, 3, 4]),                  # clipped at the end
    (5, -2, 2, [3, 4]),                        # negative start counts from the end
    (5, -2, -3, [3, 2, 1]),                    # negative length walks backwards
    (5, 2, -10, [2, 1, 0]),                    # clipped at the beginning
    (5, -10, 2, [0, 1]),                       # start before the beginning -> 0
    (5, -1, -5, [4, 3, 2, 1, 0]),              # ReverseSequence
    (5, 4, 1, [4]),
    (1, 0, 1, [0]),
    (1, -1, -1, [0]),
    (3, 0, 2 ** 31 - 1, [0, 1, 2]),            # NeoML's default length INT_MAX
]


@pytest.mark.parametrize("T, start, length, src", NEOML_CASES)
def test_subsequence_follows_neoml(any_backend, T, start, length, src):
    x = steps(T)
    dy = np.random.default_rng(T).standard_normal((len(src),) + x.shape[1:])
    y, dx = run(any_backend, "subsequence", x, dy, start_pos=start, length=length)
    np.testing.assert_array_equal(y, x[src])
    want = np.zeros_like(x)
    want[src] = dy
    np.testing.assert_array_equal(dx, want)


@pytest.mark.parametrize("T, start, length", [
    (5, 5, 1),          # starts at the end: nothing left
    (5, 9, 3),
    (5, 0, 0),          # length 0
    (5, 5, -1),         # a reversed walk starting past the end
    (5, 8, -2),
])
def test_subsequence_that_selects_nothing_is_an_error(any_backend, T, start, length):
    with pytest.raises(ParameterError, match="subsequence"):
        run(any_backend, "subsequence", steps(T), start_pos=start, length=length)


@pytest.mark.parametrize("bad", [{"start_pos": 1.5}, {"length": "2"}, {"length": True}])
def test_subsequence_parameters_must_be_ints(any_backend, bad):
    with pytest.raises(ParameterError, match="subsequence"):
        run(any_backend, "subsequence", steps(4), **bad)


@pytest.mark.parametrize("T", [1, 2, 7])
def test_reverse_and_last_are_subsequences(any_backend, T):
    x = steps(T)
    rev, _ = run(any_backend, "reverse_sequence", x)
    sub, _ = run(any_backend, "subsequence", x, start_pos=-1, length=-T)
    np.testing.assert_array_equal(rev, x[::-1])
    np.testing.assert_array_equal(rev, sub)
    last, _ = run(any_backend, "seq_last", x)
    np.testing.assert_array_equal(last, x[T - 1])


def test_repeat_sequence_concatenates_and_sums_back(any_backend):
    x = steps(3)
    dy = np.arange(4 * 3 * 2 * 3, dtype=np.float64).reshape(12, 2, 3)
    y, dx = run(any_backend, "repeat_sequence", x, dy, repeat_count=4)
    np.testing.assert_array_equal(y, np.concatenate([x] * 4))
    np.testing.assert_array_equal(dx, dy[0:3] + dy[3:6] + dy[6:9] + dy[9:12])


@pytest.mark.parametrize("count", [0, -1, 2.0])
def test_repeat_count_must_be_a_positive_int(any_backend, count):
    with pytest.raises(ParameterError, match="repeat_sequence.*repeat_count"):
        run(any_backend, "repeat_sequence", steps(2), repeat_count=count)


def test_sum_mean_last_by_hand(any_backend):
    x = steps(4, N=1, C=1)                                 # 0, 1, 2, 3
    dy = np.array([[2.0]])
    for op, want, grad in [("seq_sum", 6.0, [2, 2, 2, 2]), ("seq_mean", 1.5, [.5] * 4),
                           ("seq_last", 3.0, [0, 0, 0, 2])]:
        y, dx = run(any_backend, op, x, dy)
        assert y.shape == (1, 1) and y[0, 0] == pytest.approx(want)
        np.testing.assert_allclose(dx.ravel(), grad)


@pytest.mark.parametrize("axis, reverse", [(0, False), (0, True), (1, True), (-1, False)])
def test_cumsum_is_numpys_and_backward_runs_the_other_way(any_backend, axis, reverse):
    x = np.random.default_rng(1).standard_normal((4, 3, 5))
    dy = np.random.default_rng(2).standard_normal(x.shape)
    y, dx = run(any_backend, "cumsum", x, dy, axis=axis, reverse=reverse)
    flip = (lambda a: np.flip(a, axis)) if reverse else (lambda a: a)
    np.testing.assert_allclose(y, flip(np.cumsum(flip(x), axis=axis)), rtol=1e-12)
    other = (lambda a: a) if reverse else (lambda a: np.flip(a, axis))
    np.testing.assert_allclose(dx, other(np.cumsum(other(dy), axis=axis)), rtol=1e-12)


@pytest.mark.parametrize("axis", [3, -4, 0.0])
def test_cumsum_axis_out_of_range(any_backend, axis):
    with pytest.raises(ParameterError, match="cumsum.*axis"):
        run(any_backend, "cumsum", np.zeros((2, 3, 4)), axis=axis)


@pytest.mark.parametrize("op", OPS[:-1])
@pytest.mark.parametrize("shape", [(5,), (5, 3), (2, 3, 4, 1), (0, 2, 3), (3, 0, 2)])
def test_wrong_rank_or_empty_sequence_names_the_op(any_backend, op, shape):
    with pytest.raises(ShapeError, match=op + ".*T, N, C"):
        run(any_backend, op, np.zeros(shape))


@pytest.mark.parametrize("op, params, dy_shape", [
    ("seq_sum", {}, (2, 3, 1)), ("seq_last", {}, (3, 2)), ("reverse_sequence", {}, (4, 2, 3)),
    ("subsequence", {"start_pos": 1, "length": 2}, (3, 2, 3)), ("cumsum", {}, (3, 2, 2))])
def test_backward_checks_dy(any_backend, op, params, dy_shape):
    _, saved = any_backend.op(op + ".forward")(any_backend.asarray(steps(3)), **params)
    with pytest.raises(ShapeError, match=op + ".*dy"):
        any_backend.op(op + ".backward")(any_backend.asarray(np.zeros(dy_shape)), saved)


@pytest.mark.parametrize("name", backend_names())
def test_integer_sequences_are_rejected_by_fast_paths(name):
    be = make_backend(name)
    with pytest.raises(DTypeError, match="seq_sum"):
        be.op("seq_sum.forward")(be.asarray(np.zeros((2, 2, 2), np.int64), dtype=np.int64))


@pytest.mark.parametrize("name", backend_names())
@pytest.mark.parametrize("op, params", [
    ("seq_mean", {}), ("subsequence", {"start_pos": -3, "length": -400}),
    ("repeat_sequence", {"repeat_count": 3}), ("cumsum", {"reverse": True}),
    ("reverse_sequence", {})])
def test_long_sequences_float32(name, op, params):
    """500 time steps in float32 against the float64 reference."""
    x = np.random.default_rng(0).uniform(-1, 1, (500, 3, 5))
    assert_matches_reference(make_backend(name), op, [x], params, dtype=np.float32)


def test_step_gather_is_the_pattern_of_every_reordering():
    """The fast paths' one gather (y[i] = x[(start + step i) mod T]) reproduces the
    reference's slicing for subsequence, reverse_sequence, repeat_sequence and seq_last."""
    x = steps(6)
    for start, length in [(1, 3), (-2, -4), (0, 6), (-1, 1)]:
        s, L, step = S.subsequence_geometry(6, start, length)
        np.testing.assert_array_equal(S.step_gather(x, s, step, L),
                                      S.subsequence_forward(x, start, length)[0])
        dy = np.random.default_rng(s).standard_normal((L, 2, 3))
        np.testing.assert_array_equal(
            S.step_scatter(dy, s, step, 6),
            S.subsequence_backward(dy, S.subsequence_forward(x, start, length)[1])[0])
    np.testing.assert_array_equal(S.step_gather(x, 0, 1, 18), np.concatenate([x] * 3))
