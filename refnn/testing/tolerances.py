"""The one tolerance table: (op, dtype, backend) -> (rtol, atol, reason).

``tolerance(op, dtype, backend)`` looks up the most specific entry; ``"*"`` matches
anything. Tolerances compare a fast path in ``dtype`` with the float64 reference run
on the same (rounded) inputs; ``atol`` is absolute, so test inputs are kept O(1).
"""
import numpy as np

TOLERANCES = {
    # (op, dtype, backend): (rtol, atol, reason)
    ("*", "float64", "*"): (1e-9, 1e-11, "float64 fast paths differ only in summation order"),
    ("*", "float32", "*"): (1e-4, 1e-5, "float32 rounding of O(1) values, a few ulps per op"),
    ("linear", "float32", "*"): (2e-4, 1e-4, "GEMM sums K products in float32; error ~ sqrt(K) ulp"),
    ("softmax", "float32", "*"): (2e-4, 1e-5, "exp and a row sum in float32"),
    ("erf", "float32", "opencl"): (2e-4, 1e-5, "device erf and exp are accurate to a few ulps"),
    ("gelu", "float32", "*"): (2e-4, 1e-5, "erf/exp in float32"),
    ("power", "float32", "*"): (5e-4, 1e-5, "pow in float32 loses a few ulps per multiply"),
    ("batch_norm", "float32", "*"): (1e-3, 1e-4, "x - mean, rounded in float32, is scaled by "
                                     "1/sqrt(var + eps): up to 32x for eps 1e-3 (constant columns)"),
    ("layer_norm", "float32", "*"): (1e-3, 1e-4, "x - mean, rounded in float32, is scaled by "
                                     "1/sqrt(var + eps): up to 32x for eps 1e-3 (constant rows)"),
    ("*", "float32", "opencl"): (2e-4, 2e-5, "OpenCL builds with -cl-mad-enable (fused multiply-add)"),
    ("reference", "float64", "numerical"): (1e-5, 1e-7, "central differences with eps=1e-6 in float64"),
}


def tolerance(op, dtype, backend):
    """Return (rtol, atol) for comparing ``backend``'s op in ``dtype`` to the reference."""
    dtype = np.dtype(dtype).name
    for key in ((op, dtype, backend), (op, dtype, "*"), ("*", dtype, backend), ("*", dtype, "*")):
        if key in TOLERANCES:
            rtol, atol, _ = TOLERANCES[key]
            return rtol, atol
    raise KeyError(f"no tolerance for {(op, dtype, backend)}")
