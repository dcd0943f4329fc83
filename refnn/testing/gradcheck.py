"""Numerical gradients by float64 central differences, and the backward check.

For a forward ``out, saved = f(*args, **params)`` and an upstream gradient ``dout``
we test the scalar  L(args) = sum(out * dout):  its gradient with respect to input i is
exactly what ``backward(dout, saved)[i]`` must return.

    dL/dx_k ~= (L(x + eps e_k) - L(x - eps e_k)) / (2 eps)              (numerical_grad)
    <dL/dx, v> ~= (L(x + eps v) - L(x - eps v)) / (2 eps)               (directional_grad)

Small inputs are checked element by element; large ones along a few random directions
(cost: 2 forward passes per direction instead of 2 per element).
"""
import numpy as np

#: inputs with more elements than this are checked along random directions
MAX_FULL_SIZE = 256


class GradientMismatch(AssertionError):
    """The analytic gradient differs from the numerical one (or a backend's from the
    reference's); the message names the op, the input and the worst element."""


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _scalar_objective(forward, args, params, douts):
    outs = _as_tuple(forward(*args, **params)[0])
    return sum(float(np.sum(np.asarray(o, dtype=np.float64) * d)) for o, d in zip(outs, douts))


def numerical_grad(forward, args, i, douts, params=None, eps=1e-6):
    """dL/d args[i] element by element, L = sum(forward(*args)[0] * douts)."""
    params = params or {}
    args = list(args)
    x = np.array(args[i], dtype=np.float64)
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        orig = flat[k]
        flat[k] = orig + eps
        args[i] = x
        plus = _scalar_objective(forward, args, params, douts)
        flat[k] = orig - eps
        minus = _scalar_objective(forward, args, params, douts)
        flat[k] = orig
        gflat[k] = (plus - minus) / (2 * eps)
    return grad


def directional_grad(forward, args, i, douts, v, params=None, eps=1e-6):
    """<dL/d args[i], v> by one central difference along direction v."""
    params = params or {}
    args = list(args)
    x = np.asarray(args[i], dtype=np.float64)
    args[i] = x + eps * v
    plus = _scalar_objective(forward, args, params, douts)
    args[i] = x - eps * v
    minus = _scalar_objective(forward, args, params, douts)
    return (plus - minus) / (2 * eps)


def check_backward(forward, backward, args, params=None, douts=None, diff_args=None,
                   rtol=1e-5, atol=1e-7, eps=1e-6, n_directions=4, seed=0, name=None):
    """Assert that ``backward`` is the gradient of ``forward`` (run everything in float64).

    args:      positional inputs of forward (float arrays are cast to float64).
    douts:     upstream gradient(s); default: standard normal of the output shape(s).
    diff_args: indices of differentiable inputs (default: every floating array).
    Returns the tuple of analytic gradients. Raises GradientMismatch.
    """
    params = params or {}
    rng = np.random.default_rng(seed)
    args = [np.asarray(a, dtype=np.float64) if _is_float_array(a) else a for a in args]
    out, saved = forward(*args, **params)
    outs = _as_tuple(out)
    if douts is None:
        douts = tuple(rng.standard_normal(np.shape(o)) for o in outs)
    douts = _as_tuple(douts)
    dout_arg = douts if isinstance(out, tuple) else douts[0]
    grads = backward(dout_arg, saved)
    if diff_args is None:
        diff_args = [k for k, a in enumerate(args) if _is_float_array(a)]
    label = name or getattr(forward, "__name__", "op")
    for i in diff_args:
        g = np.asarray(grads[i], dtype=np.float64)
        if g.shape != np.shape(args[i]):
            raise GradientMismatch(f"{label}: gradient of input {i} has shape {g.shape}, "
                                   f"expected {np.shape(args[i])}")
        if np.size(args[i]) <= MAX_FULL_SIZE:
            num = numerical_grad(forward, args, i, douts, params, eps)
            _assert_close(g, num, rtol, atol, f"{label}: d input {i} (analytic vs numerical)")
        else:
            for _ in range(n_directions):
                v = rng.standard_normal(np.shape(args[i]))
                num = directional_grad(forward, args, i, douts, v, params, eps)
                ana = float(np.sum(g * v))
                tol = atol * np.sqrt(v.size) + rtol * max(abs(num), abs(ana))
                if not abs(num - ana) <= tol:
                    raise GradientMismatch(
                        f"{label}: d input {i} along a random direction: analytic {ana!r}, "
                        f"numerical {num!r} (tolerance {tol:.3g})")
    return tuple(grads)


def _is_float_array(a):
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _assert_close(actual, expected, rtol, atol, what):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise GradientMismatch(f"{what}: shape {actual.shape}, expected {expected.shape}")
    err = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    bad = ~(err <= bound)
    if np.any(bad):
        k = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), err.shape)
        raise GradientMismatch(
            f"{what}: {int(bad.sum())} of {err.size} elements differ; worst at {k}: "
            f"got {actual[k]!r}, expected {expected[k]!r} (rtol={rtol}, atol={atol})")
