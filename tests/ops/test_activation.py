"""Special properties of the activation family (the generic tests in test_generic.py
already check every op's gradient and every backend against the reference).

Here: dropout's counter-based mask is the same on every backend and across versions,
identity at inference; softmax rows sum to 1 and survive huge inputs; the parallel
(large-array) code paths; NaN rather than a crash for powers of negative numbers;
clear errors for bad parameters and inputs on every backend.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refnn.errors import DTypeError, ParameterError, ShapeError
from refnn.ops import activation as ref
from refnn.testing import assert_backends_agree
from refnn.testing import strategies as rst
from refnn.testing.pytest_plugin import backend_names, make_backend

ALL = ["reference"] + backend_names()


@pytest.fixture(scope="module", params=ALL)
def any_backend(request):
    """reference, cpu and opencl (module-scoped: hypothesis rejects function scope)."""
    return make_backend(request.param)


def run(be, op, x, dy=None, **params):
    """Forward (and backward with dy) of ``op`` on backend ``be``, results on the host."""
    y, saved = be.op(op + ".forward")(be.asarray(x), **params)
    if dy is None:
        return be.to_host(y)
    (dx,) = be.op(op + ".backward")(be.asarray(dy), saved)
    return be.to_host(y), be.to_host(dx)


# ----------------------------------------------------------------------- dropout
def _fmix32(h):
    """MurmurHash3 fmix32 written independently of refnn, on plain Python ints."""
    h ^= h >> 16
    h = h * 0x85EBCA6B % 2 ** 32
    h ^= h >> 13
    h = h * 0xC2B2AE35 % 2 ** 32
    return h ^ (h >> 16)


def test_dropout_hash_matches_its_documented_formula_and_pinned_values():
    for seed in (0, 1, 12345, 2 ** 32 - 1):
        key = _fmix32(seed ^ 0x9E3779B9)
        want = [_fmix32((key + i * 0x9E3779B9) % 2 ** 32) for i in range(50)]
        assert [int(h) for h in ref.dropout_hash(seed, np.arange(50))] == want
    # pinned: changing the hash would silently change every saved experiment's masks
    assert [int(h) for h in ref.dropout_hash(0, np.arange(4))] == \
        [2856213345, 3553795876, 2060969114, 3789282531]


@given(shape=rst.shapes(max_side=7), keep=st.floats(0.0, 1.0),
       seed=st.integers(0, 2 ** 32 - 1))
def test_dropout_mask_is_identical_on_every_backend(any_backend, shape, keep, seed):
    x = np.random.default_rng(seed % 1000).uniform(0.5, 2.0, shape).astype(np.float32)
    y, dx = run(any_backend, "dropout", x, np.ones_like(x), keep=keep, seed=seed)
    mask = ref.dropout_mask(shape, keep, seed)
    np.testing.assert_array_equal(y, np.where(mask, x, 0))        # scale 1: exact
    np.testing.assert_array_equal(dx, mask.astype(np.float32))    # same mask backward


def test_dropout_is_reproducible_and_seeds_differ(any_backend):
    x = np.ones((300, 333), np.float32)
    a = run(any_backend, "dropout", x, keep=0.3, seed=7)
    b = run(any_backend, "dropout", x, keep=0.3, seed=7)
    c = run(any_backend, "dropout", x, keep=0.3, seed=8)
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.3                   # independent masks disagree ~42%
    assert abs(np.mean(a != 0) - 0.3) < 0.01       # the kept fraction is keep


def test_dropout_keep_extremes_and_scale(any_backend):
    x = np.arange(1.0, 101.0, dtype=np.float32).reshape(4, 25)
    np.testing.assert_array_equal(run(any_backend, "dropout", x, keep=1.0, seed=3), x)
    np.testing.assert_array_equal(run(any_backend, "dropout", x, keep=0.0, seed=3), 0 * x)
    y = run(any_backend, "dropout", x, keep=0.5, seed=3, scale=2.0)   # NeoML: 1 / keep
    assert set(np.unique(y / x)) <= {0.0, 2.0}


def test_dropout_at_inference_is_the_identity(any_backend):
    x = np.linspace(-2, 2, 24, dtype=np.float32).reshape(2, 3, 4)
    dy = x[::-1].copy()
    y, dx = run(any_backend, "dropout", x, dy, keep=0.2, seed=1, scale=5.0, training=False)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(dx, dy)


# ----------------------------------------------------------------------- softmax
@given(x=rst.shapes(max_side=7).flatmap(
    lambda s: rst.arrays(s, st.floats(-50, 50, width=32))))
def test_softmax_rows_sum_to_one(any_backend, x):
    y = run(any_backend, "softmax", x.astype(np.float32))
    assert np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)


def test_softmax_is_stable_for_huge_inputs_and_shift_invariant(any_backend):
    x = np.array([[1000.0, 1000.0, 999.0], [-1000.0, -1001.0, -1000.0]], np.float32)
    y = run(any_backend, "softmax", x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, run(any_backend, "softmax", x - x[:, :1]), rtol=1e-5)
    np.testing.assert_allclose(y[0], [0.4223188, 0.4223188, 0.1553624], rtol=1e-5)


def test_softmax_of_a_row_of_length_one_is_one(any_backend):
    y, dx = run(any_backend, "softmax", np.full((3, 1), 4.0, np.float32),
                np.ones((3, 1), np.float32))
    np.testing.assert_array_equal(y, 1.0)
    np.testing.assert_array_equal(dx, 0.0)


# ------------------------------------------------- large arrays (parallel paths)
LARGE = [("sigmoid", {}), ("gelu", {"form": "erf"}), ("leaky_relu", {"alpha": 0.1}),
         ("softmax", {}), ("dropout", {"keep": 0.5, "seed": 11, "scale": 2.0})]


@pytest.mark.parametrize("op,params", LARGE, ids=[op for op, _ in LARGE])
def test_large_arrays_take_the_parallel_path_and_agree(backend, op, params):
    x = np.random.default_rng(0).uniform(-3, 3, (257, 301))   # > PAR_MIN elements
    assert_backends_agree(op, backend, (x,), params)


# ---------------------------------------------------------- documented behaviours
def test_gelu_default_is_neomls_fast_form_and_erf_form_is_precise(any_backend):
    x = np.linspace(-3, 3, 13, dtype=np.float32)
    fast = run(any_backend, "gelu", x)
    np.testing.assert_allclose(fast, x / (1 + np.exp(-1.702 * x.astype(np.float64))),
                               rtol=1e-5, atol=1e-6)
    precise = run(any_backend, "gelu", x, form="erf")
    np.testing.assert_allclose(precise[[0, 6, 12]], [-0.0040496, 0.0, 2.9959504], atol=1e-6)


def test_neoml_piecewise_formulas(any_backend):
    x = np.array([-5.0, -3.0, -1.5, 0.0, 1.5, 3.0, 5.0], np.float32)
    np.testing.assert_allclose(run(any_backend, "hswish", x),
                               [0, 0, -0.375, 0, 1.125, 3, 5], atol=1e-6)
    np.testing.assert_allclose(run(any_backend, "hard_sigmoid", x, slope=0.25, bias=0.5),
                               [0, 0, 0.125, 0.5, 0.875, 1, 1], atol=1e-6)
    np.testing.assert_allclose(run(any_backend, "hard_tanh", x), np.clip(x, -1, 1))
    np.testing.assert_allclose(run(any_backend, "elu", x, alpha=2.0)[[0, 6]],
                               [2 * np.expm1(-5.0), 5.0], rtol=1e-6)


def test_power_has_the_true_gradient_for_negative_inputs(any_backend):
    # real NeoML computes dx from the output (y * e / x); the true gradient is e x^(e-1)
    x = np.array([-2.0, -0.5, 1.5], np.float32)
    y, dx = run(any_backend, "power", x, np.ones_like(x), exponent=3.0)
    np.testing.assert_allclose(y, x.astype(np.float64) ** 3, rtol=1e-5)
    np.testing.assert_allclose(dx, 3 * x.astype(np.float64) ** 2, rtol=1e-5)


def test_power_of_negative_inputs_with_fractional_exponent_is_nan_not_a_crash(any_backend):
    x = np.array([-2.0, 4.0], np.float32)
    y, dx = run(any_backend, "power", x, np.ones_like(x), exponent=0.5)
    assert np.isnan(y[0]) and np.isnan(dx[0])
    np.testing.assert_allclose([y[1], dx[1]], [2.0, 0.25], rtol=1e-5)


def test_log_of_non_positive_inputs_is_nan_or_minus_inf(any_backend):
    y = run(any_backend, "log", np.array([-1.0, 0.0, 1.0], np.float32))
    assert np.isnan(y[0]) and y[1] == -np.inf and y[2] == 0


NAN_OPS = [("relu", {}), ("relu", {"threshold": 1.5}), ("leaky_relu", {"alpha": 0.1}),
           ("elu", {}), ("abs", {}), ("hard_tanh", {}), ("hard_sigmoid", {}), ("hswish", {}), ("sigmoid", {}), ("gelu", {}),
           ("linear_activation", {"multiplier": 2.0, "free_term": 1.0})]


@pytest.mark.parametrize("op,params", NAN_OPS, ids=[f"{op}{sorted(p.values())}"
                                                    for op, p in NAN_OPS])
def test_nan_inputs_give_nan_outputs_as_in_the_reference(any_backend, op, params):
    x = np.array([np.nan, 0.5, -0.5, np.nan], np.float32)    # branch-free kernels too
    y = run(any_backend, op, x, **params)
    assert np.isnan(y[[0, 3]]).all() and not np.isnan(y[[1, 2]]).any()


# ------------------------------------------------------------------------ errors
BAD_PARAMS = [
    ("normalizer", {"divisor": 0.0}, "divisor"),
    ("hard_sigmoid", {"slope": 0.0}, "slope"),
    ("gelu", {"form": "tanh"}, "form"),
    ("dropout", {"keep": 1.5, "seed": 0}, "keep"),
    ("dropout", {"keep": 0.5, "seed": -1}, "seed"),
    ("dropout", {"keep": 0.5, "seed": 1.5}, "seed"),
]


@pytest.mark.parametrize("op,params,word", BAD_PARAMS,
                         ids=[f"{op}-{w}" for op, p, w in BAD_PARAMS])
def test_bad_parameters_raise_parameter_error_naming_op_and_value(any_backend, op,
                                                                   params, word):
    with pytest.raises(ParameterError, match=rf"^{op}: {word} .*got"):
        run(any_backend, op, np.ones((2, 3), np.float32), **params)


@pytest.mark.parametrize("op,params", [("leaky_relu", {"alpha": float("nan")}),
                                       ("power", {"exponent": "two"}),
                                       ("linear_activation",
                                        {"multiplier": 1.0, "free_term": float("inf")})])
def test_non_finite_parameters_are_rejected_by_fast_paths(backend, op, params):
    with pytest.raises(ParameterError, match=op):
        run(backend, op, np.ones(3, np.float32), **params)


def test_softmax_needs_an_axis(any_backend):
    with pytest.raises(ShapeError, match="softmax: x must have at least 1 dimension"):
        any_backend.op("softmax.forward")(np.array(1.0, np.float32))


@pytest.mark.parametrize("op,params", [("sigmoid", {}), ("relu", {}), ("identity", {}),
                                       ("dropout", {"keep": 0.5, "seed": 2})])
def test_zero_dimensional_inputs_keep_their_shape(any_backend, op, params):
    x, dy = np.array(0.5, np.float32), np.array(2.0, np.float32)
    y, saved = any_backend.op(op + ".forward")(x, **params)
    (dx,) = any_backend.op(op + ".backward")(dy, saved)
    assert np.shape(any_backend.to_host(y)) == () == np.shape(any_backend.to_host(dx))


@pytest.mark.parametrize("op", ["sigmoid", "softmax", "dropout"])
def test_wrong_dy_shape_is_a_shape_error(backend, op):
    params = {"keep": 0.5, "seed": 1} if op == "dropout" else {}
    with pytest.raises(ShapeError, match=rf"{op}: dy must have shape \(2, 3\), got \(3, 2\)"):
        run(backend, op, np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), **params)


def test_integer_input_is_a_dtype_error_on_the_cpu():
    be = make_backend("cpu")
    with pytest.raises(DTypeError, match="elu: x must have dtype"):
        be.op("elu.forward")(np.ones(3, np.int64))
