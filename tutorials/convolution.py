"""Convolution, from the formula to the fast paths -- a walk through refnn/ops/conv.py.

refnn's reference conv2d (``refnn.ops.conv.conv2d_forward``) computes

    y[n,f,i,j] = sum_{c,p,q} w[f,c,p,q] * xpad[n, c, i*sh + p*dh, j*sw + q*dw]

x: (N, C, H, W), w: (F, C, kh, kw) -> y: (N, F, Ho, Wo), xpad is x with zero padding,
s the stride, d the dilation, and Ho = (H + 2 ph - dh (kh - 1) - 1) // sh + 1 (same for Wo).

1. A naive 6-loop convolution written straight from the formula equals conv2d_forward.
2. im2col: every window becomes a column, so conv is ONE matrix product.
3. The backward pass: col2im, check_backward against float64 central differences, and
   a deliberately wrong gradient being caught.
4. The fast paths (cpu, opencl) compared with the reference.
5. Max pooling, and where its gradient goes.

Run it:  python tutorials/convolution.py
"""
import numpy as np

import refnn
from refnn.ops.conv import col2im, conv2d_backward, conv2d_forward, im2col
from refnn.ops.pool import max_pool2d_backward, max_pool2d_forward
from refnn.testing import (GradientMismatch, assert_backends_agree,
                           assert_matches_reference, check_backward)

STRIDE, PADDING, DILATION = (2, 1), (1, 1), (1, 2)


def naive_conv2d(x, w, stride, padding, dilation):
    """The formula, one loop per index: n, f, i, j (outputs) and c, p, q (the sum)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    for c in range(C):
                        for p in range(kh):
                            for q in range(kw):
                                y[n, f, i, j] += (w[f, c, p, q] *
                                                  xpad[n, c, i * sh + p * dh, j * sw + q * dw])
    return y


def step1_naive(x, w):
    y_naive = naive_conv2d(x, w, STRIDE, PADDING, DILATION)
    y_ref, _ = conv2d_forward(x, w, stride=STRIDE, padding=PADDING, dilation=DILATION)
    assert y_ref.shape == y_naive.shape, (y_ref.shape, y_naive.shape)
    np.testing.assert_allclose(y_ref, y_naive, rtol=1e-12, atol=1e-12)
    print(f"1. naive 6-loop conv == conv2d_forward: x {x.shape} * w {w.shape} -> "
          f"y {y_ref.shape} (stride {STRIDE}, padding {PADDING}, dilation {DILATION})")


def step2_im2col(x, w):
    (ph, pw), (F, C, kh, kw) = PADDING, w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y_ref, _ = conv2d_forward(x, w, stride=STRIDE, padding=PADDING, dilation=DILATION)
    out_hw = y_ref.shape[2:]
    cols = im2col(xpad, kh, kw, STRIDE, DILATION, out_hw)
    # One row per filter tap (c, p, q), one column per output pixel (i, j):
    #     cols[n, (c*kh + p)*kw + q, i*Wo + j] = xpad[n, c, i*sh + p*dh, j*sw + q*dw]
    assert cols.shape == (x.shape[0], C * kh * kw, out_hw[0] * out_hw[1]), cols.shape
    (sh, sw), (dh, dw), Wo = STRIDE, DILATION, out_hw[1]
    n, c, p, q, i, j = 1, 1, 2, 1, 1, 2
    assert cols[n, (c * kh + p) * kw + q, i * Wo + j] == xpad[n, c, i * sh + p * dh,
                                                              j * sw + q * dw]
    # Column i*Wo + j is the window under output pixel (i, j), flattened like a filter:
    window = xpad[n, :, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                  j * sw:j * sw + dw * (kw - 1) + 1:dw]
    np.testing.assert_array_equal(cols[n, :, i * Wo + j], window.ravel())
    # So the whole convolution is one matrix product per image: (F, C*kh*kw) @ cols[n].
    y_mat = (w.reshape(F, -1) @ cols).reshape(y_ref.shape)
    np.testing.assert_allclose(y_mat, y_ref, rtol=1e-12, atol=1e-12)
    print(f"2. im2col: cols {cols.shape} = (N, C*kh*kw, Ho*Wo); "
          f"w.reshape{(F, C * kh * kw)} @ cols == conv2d_forward")


def step3_backward(x, w):
    (ph, pw), (F, C, kh, kw) = PADDING, w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y, saved = conv2d_forward(x, w, stride=STRIDE, padding=PADDING, dilation=DILATION)
    out_hw = y.shape[2:]
    # col2im is the transpose (adjoint) of im2col: <im2col(a), b> == <a, col2im(b)>.
    # A pixel that sits in several windows collects the sum of all their entries.
    b = np.random.default_rng(1).standard_normal((x.shape[0], C * kh * kw, np.prod(out_hw)))
    lhs = np.sum(im2col(xpad, kh, kw, STRIDE, DILATION, out_hw) * b)
    rhs = np.sum(xpad * col2im(b, xpad.shape, kh, kw, STRIDE, DILATION, out_hw))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    # Hence the backward pass: dw = dy @ cols^T, dx = col2im(w^T @ dy) minus the padding.
    dy = np.random.default_rng(2).standard_normal(y.shape)
    dx, dw = conv2d_backward(dy, saved)
    dy_mat = dy.reshape(x.shape[0], F, -1)
    np.testing.assert_allclose(dw, np.einsum("nfk,nrk->fr", dy_mat, saved[0])
                               .reshape(w.shape), rtol=1e-12, atol=1e-12)
    dxpad = col2im(w.reshape(F, -1).T @ dy_mat, xpad.shape, kh, kw, STRIDE, DILATION,
                   out_hw)
    np.testing.assert_allclose(dx, dxpad[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]],
                               rtol=1e-12, atol=1e-12)
    print("3a. col2im is the transpose of im2col; dx = col2im(w^T dy), dw = dy cols^T")

    # The reference gradient vs float64 central differences (needs no reference at all).
    params = dict(stride=STRIDE, padding=PADDING, dilation=DILATION)
    check_backward(conv2d_forward, conv2d_backward, [x, w], params=params, name="conv2d")
    print("3b. check_backward: conv2d_backward is the gradient of conv2d_forward")

    # A deliberately wrong gradient: dx with its largest entry zeroed (as if one pixel's
    # contributions had been lost). check_backward must reject it.
    def buggy_backward(dy, saved):
        dx, dw = conv2d_backward(dy, saved)
        return dx * (np.abs(dx) < np.abs(dx).max()), dw   # drops the largest entry
    try:
        check_backward(conv2d_forward, buggy_backward, [x, w], params=params,
                       name="buggy_conv2d")
    except GradientMismatch as e:
        print(f"3c. the wrong gradient is caught: {str(e).splitlines()[0][:100]}")
    else:
        raise AssertionError("check_backward missed a wrong conv2d gradient")


def step4_fast_paths(x, w):
    params = dict(stride=STRIDE, padding=PADDING, dilation=DILATION)
    for name in ("cpu", "opencl"):
        be = refnn.get_backend(name)                 # float32 fast path
        # The backend's conv2d vs refnn's float64 reference, forward and backward,
        # within the TOLERANCES entry for (conv2d, float32, backend). The test-suite
        # spelling takes the dtype from the backend; the general one (which also takes
        # a forward/backward pair of your own framework) names it explicitly.
        assert_backends_agree("conv2d", be, [x, w], params=params)
        assert_matches_reference(be, "conv2d", [x, w], params=params, dtype=np.float32)
        print(f"4. {name} backend's conv2d matches the reference (float32 tolerances)")


def step5_pooling():
    # Max pooling keeps the largest value of each window; its gradient goes ONLY to that
    # one input (the first maximum in row-major order) -- every other input gets zero.
    x = np.array([[[[1., 5., 2., 0.],
                    [3., 4., 8., 1.],
                    [0., 2., 6., 7.],
                    [9., 1., 3., 2.]]]])
    y, saved = max_pool2d_forward(x, kernel=(2, 2), stride=(2, 2))
    np.testing.assert_array_equal(y[0, 0], [[5., 8.], [9., 7.]])
    (dx,) = max_pool2d_backward(np.ones_like(y), saved)   # backward returns a tuple
    np.testing.assert_array_equal(dx[0, 0], (x[0, 0] == np.kron(y[0, 0], np.ones((2, 2))))
                                  .astype(float))
    print("5. max_pool2d:\n", y[0, 0], "\n   gradient of ones lands on the maxima:\n",
          dx[0, 0])
    rng = np.random.default_rng(3)
    xr = rng.standard_normal((2, 3, 5, 5))           # ties are unlikely: differentiable
    params = dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    check_backward(max_pool2d_forward, max_pool2d_backward, [xr], params=params,
                   name="max_pool2d")
    for name in ("cpu", "opencl"):
        assert_backends_agree("max_pool2d", refnn.get_backend(name), [xr], params=params)
    print("5. max_pool2d: check_backward passes; cpu and opencl match the reference")


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 8))   # N=2 images, C=3 channels, 7x8 pixels
    w = rng.standard_normal((4, 3, 3, 2))   # F=4 filters of 3 channels, 3x2 taps
    step1_naive(x, w)
    step2_im2col(x, w)
    step3_backward(x, w)
    step4_fast_paths(x, w)
    step5_pooling()
    print("all checks passed")


if __name__ == "__main__":
    main()
