"""Input strategies for the activation family (elementwise: any shape, batch 1 included).

Values stay a margin (1e-2) away from every kink: a central difference across a kink
is meaningless, and a float32 fast path could land on the other side of it than the
float64 reference. Hyper-parameters are drawn as float32-representable numbers.
"""
from hypothesis import strategies as st

from refnn.testing import strategies as rst


def _elementwise(kinks=(), params=st.just({}), **bounds):
    return st.tuples(
        rst.shapes().flatmap(lambda s: rst.arrays(s, rst.floats_away_from(kinks, **bounds))
                             ).map(lambda x: (x,)),
        params)


def _real(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=32)


def _with(params, make):
    """Draw params, then the inputs that depend on them: make(params) -> strategy."""
    return params.flatmap(make)


def _hard_sigmoid(p):
    # kinks where slope * x + bias crosses 0 and 1
    corners = (-p["bias"] / p["slope"], (1 - p["bias"]) / p["slope"])
    return _elementwise(corners, st.just(p))


def _power(p):
    e = p["exponent"]
    if float(e).is_integer():
        # integer exponents are defined for negative x; 0 is kept away from (x^-1)
        return _elementwise((0.0,), st.just(p), margin=0.2)
    # non-integer exponents: only x > 0 has a real power
    return _elementwise((), st.just(p), min_value=0.25, max_value=3.0)


def _dropout(p):
    scale = st.just(1.0) if p["keep"] == 0 else st.sampled_from([1.0, 1.0 / p["keep"]])
    return _elementwise((), scale.map(lambda s: {**p, "scale": s}))


INPUTS = {
    "identity": _elementwise(),
    # thresholds 0 (no clip) or positive; values kept away from 0 and the threshold
    "relu": st.sampled_from([0.0, 1.5]).flatmap(
        lambda t: _elementwise((0.0, t), st.just({"threshold": t}))),
    "leaky_relu": _elementwise((0.0,), st.fixed_dictionaries({"alpha": _real(0.0, 1.0)})),
    "elu": _elementwise((0.0,), st.fixed_dictionaries({"alpha": _real(0.125, 2.0)})),
    "sigmoid": _elementwise(),
    "tanh": _elementwise(),
    "hard_sigmoid": _with(st.fixed_dictionaries({"slope": _real(0.25, 2.0),
                                                 "bias": _real(-1.0, 1.0)}), _hard_sigmoid),
    "hard_tanh": _elementwise((-1.0, 1.0)),
    # [-4, 4] reaches all three pieces (0 | x (x + 3) / 6 | x)
    "hswish": _elementwise((-3.0, 3.0), min_value=-4.0, max_value=4.0),
    "gelu": _elementwise((), st.fixed_dictionaries(
        {"form": st.sampled_from(["sigmoid", "erf"])})),
    "abs": _elementwise((0.0,)),
    "power": _with(st.fixed_dictionaries({"exponent": st.one_of(
        st.sampled_from([-1.0, 0.0, 1.0, 2.0, 3.0]), _real(-2.0, 3.0))}), _power),
    "exp": _elementwise(),
    "log": _elementwise((), min_value=0.125, max_value=3.0),
    "erf": _elementwise(),
    "linear_activation": _elementwise((), st.fixed_dictionaries(
        {"multiplier": _real(-3.0, 3.0), "free_term": _real(-3.0, 3.0)})),
    "normalizer": _elementwise((), st.fixed_dictionaries(
        {"divisor": st.one_of(_real(0.5, 4.0), _real(-4.0, -0.5))})),
    # rows over the last axis, any length (1 included)
    "softmax": _elementwise(),
    "dropout": _with(st.fixed_dictionaries({
        "keep": st.one_of(st.sampled_from([0.0, 0.5, 1.0]), _real(0.0, 1.0)),
        "seed": st.integers(0, 2 ** 32 - 1),
        "training": st.booleans()}), _dropout),
}
