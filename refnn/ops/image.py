"""Image family: NeoML's image conversion layers as ops (no arithmetic, only data moves).

Canonical layouts (each docstring says which):

* upsampling2d, image_resize, reorg: NCHW -- x is (N, C, H, W), every channel of every
  image (a "plane") handled on its own (reorg mixes channels of one image).
* pixel_to_image, image_to_pixel: channels LAST -- an image is (B, H, W, C) and a pixel
  list is (B, L, C), because both ops move whole C-vectors (rows) between a pixel list
  and the B x (H W) pixel table of the images. ``indices`` is an integer (B, L) array:
  ``indices[b, j]`` is the position ``h W + w`` of list entry j in image b.

The semantics are those of the real NeoML (read from its C++ sources, NeoML/src/Dnn/
Layers/{Upsampling2DLayer,ImageResizeLayer,ReorgLayer,ImageAndPixelConversionLayer}.cpp
and the CPU math engine), with two deliberate differences, both where NeoML is wrong:

* indices outside 0 <= i < H W raise ``ParameterError`` on every backend (NeoML adds
  ``b H W`` to each index and so silently reads or writes a neighbouring image, or
  skips negative indices of image 0 only);
* the gradients of the pixel ops are the true gradients when an index repeats (NeoML
  copies instead of adding in ImageToPixel's backward, and hands every duplicate the
  gradient in PixelToImage's backward although only one of them reached the image).

``check_*`` functions are the one validation: every backend calls them (the same
messages everywhere) before anything runs.
"""
import numpy as np

from refnn.errors import DTypeError, ParameterError, ShapeError, check_same_shape
from refnn.ops._spec import OpSpec


# ------------------------------------------------------------------ validation
def _int(op, name, v, minimum=None):
    """A Python int from an integer ``v`` (>= minimum when given)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ParameterError(f"{op}: {name} must be an int, got {v!r}")
    if minimum is not None and v < minimum:
        raise ParameterError(f"{op}: {name} must be >= {minimum}, got {v}")
    return int(v)


def check_input4d(op, shape, what="x", layout="(N, C, H, W)"):
    """A 4-D shape with no empty axis."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise ShapeError(f"{op}: {what} must have shape {layout}, got {shape}")
    if min(shape) < 1:
        raise ShapeError(f"{op}: {what} must have no empty axis, got {shape}")
    return shape


def check_upsampling(op, shape, height_copy_count, width_copy_count):
    """Returns (hc, wc); x must be (N, C, H, W)."""
    check_input4d(op, shape)
    return (_int(op, "height_copy_count", height_copy_count, 1),
            _int(op, "width_copy_count", width_copy_count, 1))


def check_resize(op, shape, deltas):
    """NeoML's ImageResize checks. Returns ((left, right, top, bottom), (Ho, Wo))."""
    n, c, h, w = check_input4d(op, shape)
    if np.ndim(deltas) != 1 or len(deltas) != 4:
        raise ParameterError(f"{op}: deltas must be 4 ints (left, right, top, bottom), "
                             f"got {deltas!r}")
    left, right, top, bottom = (_int(op, "deltas", d) for d in deltas)
    for side, d, size, axis in (("left", left, w, "W"), ("right", right, w, "W"),
                                ("top", top, h, "H"), ("bottom", bottom, h, "H")):
        if d <= -size:
            raise ShapeError(f"{op}: delta {side}={d} removes the whole image ({axis} = "
                             f"{size}); it must be > -{size}")
    ho, wo = h + top + bottom, w + left + right
    if ho < 1 or wo < 1:
        raise ShapeError(f"{op}: deltas {(left, right, top, bottom)} leave an empty image "
                         f"(input H, W = {(h, w)} -> {(ho, wo)})")
    return (left, right, top, bottom), (ho, wo)


def check_reorg(op, shape, stride):
    """Returns s; x must be (N, C, H, W) with s | H, s | W and s^2 | C."""
    n, c, h, w = check_input4d(op, shape)
    s = _int(op, "stride", stride, 1)
    if h % s or w % s:
        raise ShapeError(f"{op}: H and W must be multiples of stride {s}, got {(h, w)}")
    if c % (s * s):
        raise ShapeError(f"{op}: C must be a multiple of stride^2 = {s * s}, got {c}")
    return s


def check_indices(op, indices, batch, n_pixels, length=None):
    """``indices`` must be an integer (B, L) array with 0 <= i < n_pixels (host arrays;
    the OpenCL wrapper checks the range on the device). Returns L."""
    shape = tuple(np.shape(indices))
    if np.dtype(indices.dtype).kind not in "iu":
        raise DTypeError(f"{op}: indices must have an integer dtype, got "
                         f"{np.dtype(indices.dtype).name}")
    want = (batch, length if length is not None else "L")
    if len(shape) != 2 or shape[0] != batch or (length is not None and shape[1] != length) \
            or shape[1] < 1:
        raise ShapeError(f"{op}: indices must have shape {want} with L >= 1, got {shape}")
    if isinstance(indices, np.ndarray):
        check_index_range(op, int(indices.min()), int(indices.max()), n_pixels)
    return shape[1]


def check_index_range(op, lo, hi, n_pixels):
    if lo < 0 or hi >= n_pixels:
        bad = lo if lo < 0 else hi
        raise ParameterError(f"{op}: indices must lie in [0, {n_pixels}) (the H * W pixels "
                             f"of an image), got {bad}")


def check_pixels(op, shape):
    """pixels must be (B, L, C)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ShapeError(f"{op}: pixels must have shape (B, L, C) with no empty axis, "
                         f"got {shape}")
    return shape


def _check_dy(op, dy, shape):
    check_same_shape(op, "dy", np.shape(dy), shape)


# ------------------------------------------------------------------ upsampling2d
def upsampling2d_forward(x, height_copy_count=1, width_copy_count=1):
    """Nearest-neighbour upscaling (NeoML Upsampling2D), NCHW:

        y[n, c, i, j] = x[n, c, i // hc, j // wc]        y: (N, C, H hc, W wc)

    >>> upsampling2d_forward(np.array([[[[1., 2.]]]]), 2, 2)[0][0, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.]])
    """
    hc, wc = check_upsampling("upsampling2d", x.shape, height_copy_count, width_copy_count)
    return np.repeat(np.repeat(x, hc, axis=2), wc, axis=3), (x.shape, hc, wc)


def upsampling2d_backward(dy, saved):
    """dx[n, c, h, w] = sum_{i < hc, j < wc} dy[n, c, h hc + i, w wc + j]"""
    (n, c, h, w), hc, wc = saved
    _check_dy("upsampling2d", dy, (n, c, h * hc, w * wc))
    return (dy.reshape(n, c, h, hc, w, wc).sum(axis=(3, 5)),)


# ------------------------------------------------------------------ image_resize
def image_resize_forward(x, deltas=(0, 0, 0, 0), default_value=0.0):
    """Pad or crop every side (NeoML ImageResize), NCHW. deltas = (left, right, top,
    bottom): a positive delta adds that many rows/columns of ``default_value``, a
    negative one removes them. Ho = H + top + bottom, Wo = W + left + right and

        y[n, c, i, j] = x[n, c, i - top, j - left]   where that pixel exists,
                        default_value                 elsewhere.

    >>> image_resize_forward(np.ones((1, 1, 1, 2)), (1, -1, 0, 1), 7.0)[0][0, 0]
    array([[7., 1.],
           [7., 7.]])
    """
    (left, right, top, bottom), (ho, wo) = check_resize("image_resize", x.shape, deltas)
    n, c, h, w = x.shape
    y = np.full((n, c, ho, wo), default_value, dtype=x.dtype)
    (yi, xi), (yj, xj) = _overlap(top, h, ho), _overlap(left, w, wo)
    y[:, :, yi, yj] = x[:, :, xi, xj]
    return y, (x.shape, (left, right, top, bottom))


def _overlap(shift, size, out_size):
    """Slices (of y, of x) of the rows (or columns) present in both: y[k] = x[k - shift]."""
    lo, hi = max(shift, 0), min(out_size, size + shift)
    return slice(lo, hi), slice(lo - shift, hi - shift)


def image_resize_backward(dy, saved):
    """dx[n, c, h, w] = dy[n, c, h + top, w + left]  (0 for a cropped pixel); the
    padding's gradient is dropped (default_value is a constant)."""
    (n, c, h, w), (left, right, top, bottom) = saved
    ho, wo = h + top + bottom, w + left + right
    _check_dy("image_resize", dy, (n, c, ho, wo))
    dx = np.zeros((n, c, h, w), dtype=dy.dtype)
    (yi, xi), (yj, xj) = _overlap(top, h, ho), _overlap(left, w, wo)
    dx[:, :, xi, xj] = dy[:, :, yi, yj]
    return (dx,)


# ------------------------------------------------------------------ reorg
def reorg_forward(x, stride=1):
    """NeoML's (darknet's) Reorg, NCHW: (N, C, H, W) -> (N, C s^2, H / s, W / s).

    NeoML's ReorgFunc first reads the memory of x (NCHW order) as a (N, C', H s, W s)
    array xs with C' = C / s^2 (not as x itself!), then moves the pixel at offset
    (i, j) of every s x s block of xs to channel (i s + j) C' + c':

        t[n, (i s + j) C' + c', h, w] = xs[n, c', h s + i, w s + j]     t: (N, C, H, W)

    and finally reads the memory of t as the (N, C s^2, H / s, W / s) output. For s = 1
    this is the identity. The same as darknet's ``reorg_cpu(..., forward=0)``. NeoML
    only asks C >= s^2; when s^2 does not divide C its loop reads pixels of the next
    image, so refnn requires s^2 | C (and s | H, s | W as NeoML does).

    >>> reorg_forward(np.arange(16.).reshape(1, 4, 2, 2), 2)[0].ravel()[:8]
    array([ 0.,  2.,  8., 10.,  1.,  3.,  9., 11.])
    """
    s = check_reorg("reorg", x.shape, stride)
    n, c, h, w = x.shape
    xs = x.reshape(n, c // (s * s), h, s, w, s)              # xs[n, c', h, i, w, j]
    t = xs.transpose(0, 3, 5, 1, 2, 4)                       # t[n, i, j, c', h, w]
    return t.reshape(n, c * s * s, h // s, w // s), (x.shape, s)


def reorg_backward(dy, saved):
    """The inverse permutation: dx = (the forward's moves undone on dy)."""
    (n, c, h, w), s = saved
    _check_dy("reorg", dy, (n, c * s * s, h // s, w // s))
    dt = dy.reshape(n, s, s, c // (s * s), h, w)             # dt[n, i, j, c', h, w]
    return (dt.transpose(0, 3, 4, 1, 5, 2).reshape(n, c, h, w),)


# ------------------------------------------------------------------ pixel ops
def pixel_owners(indices, n_pixels):
    """owner[b, p] = the LAST list entry j with indices[b, j] == p, or -1 (none).

    NeoML writes the list entries in order, so when an index repeats the last one wins.
    """
    b, l = indices.shape
    owner = np.full((b, n_pixels), -1, dtype=np.int64)
    np.maximum.at(owner, (np.arange(b)[:, None], indices), np.arange(l))
    return owner


def pixel_to_image_forward(pixels, indices, height, width):
    """Scatter a pixel list into blank images (NeoML PixelToImage), channels last:
    pixels (B, L, C), indices (B, L) int -> image (B, height, width, C),

        image[b, p // width, p % width, :] = pixels[b, owner[b, p], :]  (0 if no owner)

    where owner[b, p] is the last j with indices[b, j] == p (see ``pixel_owners``).
    indices get no gradient.

    >>> pixel_to_image_forward(np.array([[[1.], [2.]]]), np.array([[3, 0]]), 2, 2)[0][0, :, :, 0]
    array([[2., 0.],
           [0., 1.]])
    """
    op = "pixel_to_image"
    b, l, c = check_pixels(op, pixels.shape)
    hw = _int(op, "height", height, 1) * _int(op, "width", width, 1)
    check_indices(op, indices, b, hw, l)
    owner = pixel_owners(indices, hw)
    rows = np.take_along_axis(pixels, np.maximum(owner, 0)[:, :, None], axis=1)
    image = rows * (owner >= 0)[:, :, None]
    return image.reshape(b, height, width, c), (indices, owner, (b, height, width, c))


def pixel_to_image_backward(dy, saved):
    """dpixels[b, j, :] = dimage[b, indices[b, j], :] if j owns that pixel, else 0
    (a list entry overwritten by a later one with the same index did not reach the
    image). d indices = None."""
    indices, owner, (b, h, w, c) = saved
    _check_dy("pixel_to_image", dy, (b, h, w, c))
    hw, l = h * w, indices.shape[1]
    rows = np.take_along_axis(dy.reshape(b, hw, c), indices[:, :, None], axis=1)
    owns = np.take_along_axis(owner, indices, axis=1) == np.arange(l)
    return rows * owns[:, :, None], None


def image_to_pixel_forward(image, indices):
    """Gather a pixel list from images (NeoML ImageToPixel), channels last:
    image (B, H, W, C), indices (B, L) int -> pixels (B, L, C),

        pixels[b, j, :] = image[b, indices[b, j] // W, indices[b, j] % W, :]

    >>> image_to_pixel_forward(np.arange(4.).reshape(1, 2, 2, 1), np.array([[3, 0, 3]]))[0]
    array([[[3.],
            [0.],
            [3.]]])
    """
    op = "image_to_pixel"
    b, h, w, c = check_input4d(op, image.shape, "image", "(B, H, W, C)")
    check_indices(op, indices, b, h * w)
    rows = np.take_along_axis(image.reshape(b, h * w, c), indices[:, :, None], axis=1)
    return rows, (indices, image.shape)


def image_to_pixel_backward(dy, saved):
    """dimage[b, p, :] = sum_{j: indices[b, j] == p} dpixels[b, j, :]  (a repeated
    index collects every copy's gradient). d indices = None."""
    indices, (b, h, w, c) = saved
    _check_dy("image_to_pixel", dy, (b, indices.shape[1], c))
    dimage = np.zeros((b, h * w, c), dtype=dy.dtype)
    np.add.at(dimage, (np.arange(b)[:, None], indices), dy)
    return dimage.reshape(b, h, w, c), None


SPECS = [
    OpSpec("upsampling2d", "image", upsampling2d_forward, upsampling2d_backward,
           layout="NCHW"),
    OpSpec("image_resize", "image", image_resize_forward, image_resize_backward,
           layout="NCHW"),
    OpSpec("reorg", "image", reorg_forward, reorg_backward, layout="NCHW"),
    OpSpec("pixel_to_image", "image", pixel_to_image_forward, pixel_to_image_backward,
           diff_args=(0,), layout="BLC"),
    OpSpec("image_to_pixel", "image", image_to_pixel_forward, image_to_pixel_backward,
           diff_args=(0,), layout="NHWC"),
]
