"""The public oracle toolkit refnn.testing, as another framework's developer uses it."""
import numpy as np
import pytest

from refnn.ops import activation
from refnn.testing import (TOLERANCES, GradientMismatch, assert_matches_reference,
                           check_backward, directional_grad, numerical_grad, tolerance)


def cube_forward(x, a):
    """y = a x^3 (elementwise): dy/dx = 3 a x^2, dy/da = x^3."""
    return a * x ** 3, (x, a)


def cube_backward(dy, saved):
    x, a = saved
    return 3 * a * x ** 2 * dy, x ** 3 * dy


def cube_backward_wrong(dy, saved):
    x, a = saved
    return 2 * a * x ** 2 * dy, x ** 3 * dy   # 2 instead of 3


RNG = np.random.default_rng(1)
X = RNG.standard_normal((3, 4))
A = RNG.standard_normal((3, 4))


def test_numerical_grad_of_a_known_function():
    dout = RNG.standard_normal((3, 4))
    got = numerical_grad(cube_forward, [X, A], 0, (dout,))
    np.testing.assert_allclose(got, 3 * A * X ** 2 * dout, rtol=1e-7, atol=1e-9)
    got_a = numerical_grad(cube_forward, [X, A], 1, (dout,))
    np.testing.assert_allclose(got_a, X ** 3 * dout, rtol=1e-7, atol=1e-9)


def test_numerical_grad_leaves_inputs_unchanged():
    x = X.copy()
    numerical_grad(cube_forward, [x, A], 0, (np.ones_like(x),))
    np.testing.assert_array_equal(x, X)


def test_directional_grad_is_the_projected_gradient():
    dout, v = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    got = directional_grad(cube_forward, [X, A], 0, (dout,), v)
    assert got == pytest.approx(np.sum(3 * A * X ** 2 * dout * v), rel=1e-7)


def test_check_backward_accepts_the_right_gradient_and_returns_it():
    grads = check_backward(cube_forward, cube_backward, [X, A])
    assert len(grads) == 2 and grads[0].shape == X.shape


def test_check_backward_catches_a_wrong_gradient():
    with pytest.raises(GradientMismatch, match=r"cube_forward: d input 0"):
        check_backward(cube_forward, cube_backward_wrong, [X, A])


def test_check_backward_catches_a_wrong_gradient_on_large_inputs():
    # more than MAX_FULL_SIZE elements: checked along random directions
    x, a = RNG.standard_normal((20, 30)), RNG.standard_normal((20, 30))
    check_backward(cube_forward, cube_backward, [x, a])
    with pytest.raises(GradientMismatch, match="random direction"):
        check_backward(cube_forward, cube_backward_wrong, [x, a])


def test_check_backward_catches_a_wrong_shape():
    def bad(dy, saved):
        x, a = saved
        return (3 * a * x ** 2 * dy)[:, :2], x ** 3 * dy
    with pytest.raises(GradientMismatch, match="shape"):
        check_backward(cube_forward, bad, [X, A])


# ---------------------------------------------------------- an external (forward, backward)
def my_relu_forward(x):
    return np.maximum(x, 0), (x,)


def my_relu_backward(dy, saved):
    (x,) = saved
    return (dy * (x > 0),)


def my_relu_backward_wrong(dy, saved):
    (x,) = saved
    return (dy * (x >= -0.5),)   # leaks gradient for x in [-0.5, 0]


X_AWAY = np.where(np.abs(X) < 0.1, 0.5, X)   # away from the kink at 0
X_AWAY[0, :3] = [-0.3, -0.2, 0.7]           # some values where the wrong gradient leaks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_assert_matches_reference_accepts_an_external_pair(dtype):
    outs, grads = assert_matches_reference((my_relu_forward, my_relu_backward), "relu",
                                           [X_AWAY], dtype=dtype)
    np.testing.assert_allclose(outs[0], np.maximum(X_AWAY, 0), rtol=1e-6)
    assert grads[0].shape == X.shape


def test_assert_matches_reference_catches_a_wrong_external_gradient():
    with pytest.raises(GradientMismatch, match=r"relu\.backward on external"):
        assert_matches_reference((my_relu_forward, my_relu_backward_wrong), "relu", [X_AWAY])


def test_assert_matches_reference_catches_a_wrong_forward():
    def leaky(x):
        return np.where(x > 0, x, 0.01 * x), (x,)
    with pytest.raises(GradientMismatch, match=r"relu\.forward on external"):
        assert_matches_reference((leaky, my_relu_backward), "relu", [X_AWAY])


def test_assert_matches_reference_catches_a_mutated_input():
    def inplace_forward(x):
        np.maximum(x, 0, out=x)
        return x.copy(), (x,)
    with pytest.raises(GradientMismatch, match="mutated"):
        assert_matches_reference((inplace_forward, my_relu_backward), "relu", [X_AWAY])


def test_assert_matches_reference_uses_the_reference_op():
    # the reference it compares with is refnn.ops.activation.relu_forward itself
    y, _ = activation.relu_forward(X_AWAY)
    outs, _ = assert_matches_reference((my_relu_forward, my_relu_backward), "relu", [X_AWAY],
                                       dtype=np.float64)
    np.testing.assert_array_equal(outs[0], y)


def test_unknown_op_is_named():
    with pytest.raises(KeyError, match="no_such_op"):
        assert_matches_reference((my_relu_forward, my_relu_backward), "no_such_op", [X])


# ------------------------------------------------------------------------------ tolerances
def test_tolerance_lookup_most_specific_first():
    assert tolerance("linear", np.float32, "cpu") == TOLERANCES[("linear", "float32", "*")][:2]
    assert tolerance("relu", "float32", "opencl") == TOLERANCES[("*", "float32", "opencl")][:2]
    assert tolerance("relu", np.float32, "external") == TOLERANCES[("*", "float32", "*")][:2]
    assert tolerance("relu", np.float64, "cpu") == TOLERANCES[("*", "float64", "*")][:2]


def test_every_tolerance_has_a_reason():
    for key, (rtol, atol, reason) in TOLERANCES.items():
        assert len(key) == 3 and rtol >= 0 and atol >= 0
        assert isinstance(reason, str) and reason.strip(), key


def test_tolerance_for_an_unknown_dtype_raises():
    with pytest.raises(KeyError, match="float16"):
        tolerance("relu", np.float16, "cpu")
