"""Compare an implementation of an op with refnn's float64 reference.

``impl`` may be
  * a refnn backend object or name ("cpu", "opencl", ...), or
  * a pair ``(forward, backward)`` of your own functions following the op convention
    (``out, saved = forward(*args, **params)``; ``grads = backward(dout, saved)``),
    working on NumPy arrays -- this is how another framework uses refnn as its oracle.

The reference runs in float64 on the very values the implementation sees (its inputs
rounded to the implementation's dtype), so only the implementation's arithmetic is
judged. Inputs and upstream gradients must come back unmutated.
"""
import numpy as np

from refnn.testing.gradcheck import GradientMismatch, _as_tuple, _assert_close
from refnn.testing.tolerances import tolerance


def _reference_spec(op):
    from refnn.ops import all_specs
    try:
        return all_specs()[op]
    except KeyError:
        raise KeyError(f"refnn has no op {op!r}") from None


def _backend(impl):
    from refnn.backends import Backend, get_backend
    if isinstance(impl, str):
        return get_backend(impl)
    if isinstance(impl, Backend):
        return impl
    return None


def run_op(impl, op, args, params=None, douts=None, dtype=np.float32):
    """Run forward (and backward when ``douts`` is given) of ``op`` with ``impl``.

    Returns (outputs, grads) as tuples of NumPy arrays (grads None without douts).
    For update ops: returns (updated param and states, None).
    """
    params = params or {}
    be = _backend(impl)
    if be is None:
        forward, backward = impl
        to_dev, to_host = (lambda a: a), np.asarray
        update = forward
    else:
        to_dev = lambda a: be.asarray(a, dtype=a.dtype)  # noqa: E731
        to_host = be.to_host
        spec = _reference_spec(op)
        if spec.kind == "update":
            update = be.op(op + ".update")
        else:
            forward, backward = be.op(op + ".forward"), be.op(op + ".backward")
    dev_args = [to_dev(a) if isinstance(a, np.ndarray) else a for a in args]
    if be is not None and _reference_spec(op).kind == "update":
        update(*dev_args, **params)
        return tuple(to_host(a) for a in dev_args if not isinstance(a, (int, float))), None
    out, saved = forward(*dev_args, **params)
    outs = tuple(to_host(o) for o in _as_tuple(out))
    grads = None
    if douts is not None:
        d = tuple(to_dev(x) for x in _as_tuple(douts))
        g = backward(d if isinstance(out, tuple) else d[0], saved)
        grads = tuple(None if x is None else to_host(x) for x in g)
    return outs, grads


def _cast(args, dtype):
    """Float arrays -> dtype (the implementation's precision); others unchanged."""
    return [a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
            for a in args]


def assert_matches_reference(impl, op, args, params=None, douts=None, dtype=np.float32,
                             rtol=None, atol=None, backend_name=None):
    """Assert that ``impl`` computes refnn's ``op``: forward outputs and, when the op has
    a backward, gradients for upstream gradient ``douts`` (default: seeded normal).

    Tolerances default to the TOLERANCES entry for (op, dtype, backend).
    """
    params = params or {}
    spec = _reference_spec(op)
    be = _backend(impl)
    name = backend_name or (be.name if be is not None else "external")
    if rtol is None or atol is None:
        r, a = tolerance(op, dtype, name)
        rtol = r if rtol is None else rtol
        atol = a if atol is None else atol
    low = _cast(args, dtype)
    high = _cast(low, np.float64)
    snapshot = [a.copy() if isinstance(a, np.ndarray) else a for a in low]

    if spec.kind == "update":
        got, _ = run_op(impl, op, [a.copy() if isinstance(a, np.ndarray) else a for a in low],
                        params, dtype=dtype)
        want = [a.copy() if isinstance(a, np.ndarray) else a for a in high]
        spec.update(*want, **params)
        want = [a for a in want if isinstance(a, np.ndarray)]
        for k, (g, w) in enumerate(zip(got, want)):
            _assert_close(g, w, rtol, atol, f"{op}.update on {name}: array {k}")
        return got

    ref_out, ref_saved = spec.forward(*high, **params)
    ref_outs = _as_tuple(ref_out)
    if douts is None:
        rng = np.random.default_rng(0)
        douts = tuple(rng.standard_normal(np.shape(o)) for o in ref_outs)
    douts = tuple(np.asarray(d, dtype=dtype) for d in _as_tuple(douts))
    dsnap = [d.copy() for d in douts]
    outs, grads = run_op(impl, op, low, params, douts, dtype)
    for k, (o, r) in enumerate(zip(outs, ref_outs)):
        _assert_close(o, r, rtol, atol, f"{op}.forward on {name}: output {k}")
    ddouble = tuple(d.astype(np.float64) for d in douts)
    ref_grads = spec.backward(ddouble if isinstance(ref_out, tuple) else ddouble[0], ref_saved)
    diff = spec.diff_args if spec.diff_args is not None else range(len(args))
    for i in diff:
        if ref_grads[i] is None:
            continue
        _assert_close(grads[i], ref_grads[i], rtol, atol, f"{op}.backward on {name}: d input {i}")
    for k, (a, s) in enumerate(zip(low, snapshot)):
        if isinstance(a, np.ndarray) and not np.array_equal(a, s, equal_nan=True):
            raise GradientMismatch(f"{op} on {name}: input {k} was mutated")
    for k, (d, s) in enumerate(zip(douts, dsnap)):
        if not np.array_equal(d, s, equal_nan=True):
            raise GradientMismatch(f"{op} on {name}: upstream gradient {k} was mutated")
    return outs, grads


def assert_backends_agree(op, backend, args, params=None, douts=None):
    """Test-suite spelling: ``backend``'s op equals the reference (dtype = backend's)."""
    be = _backend(backend)
    return assert_matches_reference(be, op, args, params, douts, dtype=be.dtype)
