"""Check a layer of *your* framework against refnn -- refnn as a correctness oracle.

Here a small dense layer written in NumPy plays "the other framework". The same three
steps work for any framework whose tensors convert to NumPy arrays:

1. ``check_backward``: is my backward the gradient of my forward?  (float64 central
   differences; needs no reference at all)
2. ``assert_matches_reference``: does my layer compute what refnn's float64 reference
   computes, forward and backward, within the tolerance of my dtype?
3. A deliberately wrong gradient, to see what a failure looks like.

Run it:  python tutorials/check_your_layer.py
"""
import numpy as np

from refnn.testing import GradientMismatch, assert_matches_reference, check_backward


# --------------------------------------------------------------------------------------
# "The other framework": a fused dense layer  y = x W^T + b  with its own gradients.
# x: (N, C_in), W: (C_out, C_in), b: (C_out,)  ->  y: (N, C_out)
def my_dense_forward(x, W, b):
    return x @ W.T + b, (x, W)


def my_dense_backward(dy, saved):
    x, W = saved
    return dy @ W, dy.T @ x, dy.sum(axis=0)          # dx, dW, db


def my_buggy_dense_backward(dy, saved):
    x, W = saved
    return dy @ W, dy.T @ x, dy.mean(axis=0)         # bug: db averaged over the batch


# --------------------------------------------------------------------------------------
# refnn splits a dense layer into two ops, "linear" (y = x W^T) and "bias" (y = x + b).
# An adapter per op, following refnn's op convention
#     out, saved = forward(*arrays);   grads = backward(dout, saved)
# lets refnn compare the framework's layer with each reference op.
def linear_pair(forward, backward):
    """My fused layer seen as refnn's "linear": the bias held at zero."""
    def fwd(x, W):
        return forward(x, W, np.zeros(W.shape[0], dtype=x.dtype))

    def bwd(dy, saved):
        dx, dW, _ = backward(dy, saved)
        return dx, dW
    return fwd, bwd


def bias_pair(forward, backward):
    """My fused layer seen as refnn's "bias": the weights held at the identity."""
    def fwd(x, b):
        return forward(x, np.eye(x.shape[1], dtype=x.dtype), b)

    def bwd(dy, saved):
        dx, _, db = backward(dy, saved)
        return dx, db
    return fwd, bwd


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4))      # a batch of 5, 4 features in
    W = rng.standard_normal((3, 4))      # 3 features out
    b = rng.standard_normal(3)
    h = rng.standard_normal((5, 3))      # what the bias op adds b to

    # 1. Analytic gradients of my layer vs float64 numerical gradients.
    check_backward(my_dense_forward, my_dense_backward, [x, W, b], name="my_dense")
    print("1. check_backward: my dense layer's backward is its gradient")

    # 2. My layer vs refnn's reference, in float32 (tolerances from refnn.testing.TOLERANCES)
    #    and in float64 (where only summation order may differ).
    for dtype in (np.float32, np.float64):
        assert_matches_reference(linear_pair(my_dense_forward, my_dense_backward),
                                 "linear", [x, W], dtype=dtype)
        assert_matches_reference(bias_pair(my_dense_forward, my_dense_backward),
                                 "bias", [h, b], dtype=dtype)
    print("2. assert_matches_reference: forward and backward equal refnn's linear and bias "
          "(float32 and float64)")

    # 3. A wrong gradient is caught -- by the numerical check and by the reference.
    try:
        check_backward(my_dense_forward, my_buggy_dense_backward, [x, W, b],
                       name="my_buggy_dense")
    except GradientMismatch as err:
        print(f"3. check_backward caught the bug:\n     {err}")
    else:
        raise SystemExit("the wrong gradient was NOT caught")
    try:
        assert_matches_reference(bias_pair(my_dense_forward, my_buggy_dense_backward),
                                 "bias", [h, b], dtype=np.float32)
    except GradientMismatch as err:
        print(f"   assert_matches_reference caught it too:\n     {err}")
    else:
        raise SystemExit("the wrong gradient was NOT caught")


if __name__ == "__main__":
    main()
