"""cpu wrappers of the image family: validate, allocate, call refnn._ext.image.

Each function has the signature and return convention of refnn.ops.image (NCHW for
upsampling2d / image_resize / reorg, channels last for the pixel ops). Parameters, shapes
and the index range are checked by refnn.ops.image's ``check_*`` helpers (the same
messages on every backend); indices are handed to the kernels as C-contiguous int32.
"""
import numpy as np

from refnn._ext import image as _k
from refnn.backends.cpu._common import float_input, n_threads
from refnn.errors import ShapeError, check_same_shape
from refnn.ops import image as ref


def _float(op, what, a, dtype=None):
    """A C-contiguous float array whose size fits the kernels' int32 offsets."""
    a = float_input(op, what, a, dtype).reshape(np.shape(a))
    if a.size >= 2 ** 31:
        raise ShapeError(f"{op}: {what} must have fewer than 2**31 elements, got {a.shape}")
    return a


def _grad(op, dy, shape, dtype):
    check_same_shape(op, "dy", np.shape(dy), shape)
    return _float(op, "dy", dy, dtype)


def _planes(a):
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2], a.shape[3])


def _indices(op, indices, batch, n_pixels, length=None):
    """indices as a checked C-contiguous int32 (B, L) array."""
    indices = np.asarray(indices)
    ref.check_indices(op, indices, batch, n_pixels, length)
    return np.ascontiguousarray(indices, dtype=np.int32)


# ------------------------------------------------------------------ upsampling2d
def upsampling2d_forward(x, height_copy_count=1, width_copy_count=1):
    x = _float("upsampling2d", "x", x)
    hc, wc = ref.check_upsampling("upsampling2d", x.shape, height_copy_count,
                                  width_copy_count)
    n, c, h, w = x.shape
    y = np.empty((n, c, h * hc, w * wc), x.dtype)
    _k.upsampling2d_forward(_planes(x), _planes(y), hc, wc, n_threads())
    return y, (x.shape, x.dtype, hc, wc)


def upsampling2d_backward(dy, saved):
    (n, c, h, w), dtype, hc, wc = saved
    dy = _grad("upsampling2d", dy, (n, c, h * hc, w * wc), dtype)
    dx = np.empty((n, c, h, w), dtype)
    _k.upsampling2d_backward(_planes(dy), _planes(dx), hc, wc, n_threads())
    return (dx,)


# ------------------------------------------------------------------ image_resize
def image_resize_forward(x, deltas=(0, 0, 0, 0), default_value=0.0):
    x = _float("image_resize", "x", x)
    (left, _, top, _), (ho, wo) = ref.check_resize("image_resize", x.shape, deltas)
    y = np.empty(x.shape[:2] + (ho, wo), x.dtype)
    _k.image_resize_forward(_planes(x), _planes(y), left, top, float(default_value),
                            n_threads())
    return y, (x.shape, x.dtype, y.shape, left, top)


def image_resize_backward(dy, saved):
    shape, dtype, out_shape, left, top = saved
    dy = _grad("image_resize", dy, out_shape, dtype)
    dx = np.empty(shape, dtype)
    _k.image_resize_backward(_planes(dy), _planes(dx), left, top, n_threads())
    return (dx,)


# ------------------------------------------------------------------ reorg
def reorg_forward(x, stride=1):
    x = _float("reorg", "x", x)
    s = ref.check_reorg("reorg", x.shape, stride)
    n, c, h, w = x.shape
    y = np.empty((n, c * s * s, h // s, w // s), x.dtype)
    _k.reorg_forward(x.reshape(n, -1), y.reshape(n, -1), c, h, w, s, n_threads())
    return y, (x.shape, x.dtype, s)


def reorg_backward(dy, saved):
    (n, c, h, w), dtype, s = saved
    dy = _grad("reorg", dy, (n, c * s * s, h // s, w // s), dtype)
    dx = np.empty((n, c, h, w), dtype)
    _k.reorg_backward(dy.reshape(n, -1), dx.reshape(n, -1), c, h, w, s, n_threads())
    return (dx,)


# ------------------------------------------------------------------ pixel ops
def pixel_to_image_forward(pixels, indices, height, width):
    op = "pixel_to_image"
    pixels = _float(op, "pixels", pixels)
    b, l, c = ref.check_pixels(op, pixels.shape)
    hw = ref._int(op, "height", height, 1) * ref._int(op, "width", width, 1)
    if b * hw * c >= 2 ** 31:
        raise ShapeError(f"{op}: the image must have fewer than 2**31 elements, got "
                         f"{(b, height, width, c)}")
    idx = _indices(op, indices, b, hw, l)
    owner = np.empty((b, hw), np.int32)
    _k.pixel_owners(idx, owner, n_threads())
    image = np.empty((b, hw, c), pixels.dtype)
    _k.pixel_to_image_forward(pixels, owner, image, n_threads())
    return image.reshape(b, height, width, c), (idx, owner, (b, height, width, c),
                                                 pixels.dtype)


def pixel_to_image_backward(dy, saved):
    idx, owner, (b, h, w, c), dtype = saved
    dy = _grad("pixel_to_image", dy, (b, h, w, c), dtype)
    dpixels = np.empty((b, idx.shape[1], c), dtype)
    _k.pixel_to_image_backward(dy.reshape(b, h * w, c), idx, owner, dpixels, n_threads())
    return dpixels, None


def image_to_pixel_forward(image, indices):
    op = "image_to_pixel"
    image = _float(op, "image", image)
    b, h, w, c = ref.check_input4d(op, image.shape, "image", "(B, H, W, C)")
    idx = _indices(op, indices, b, h * w)
    pixels = np.empty((b, idx.shape[1], c), image.dtype)
    _k.image_to_pixel_forward(image.reshape(b, h * w, c), idx, pixels, n_threads())
    return pixels, (idx, image.shape, image.dtype)


def image_to_pixel_backward(dy, saved):
    idx, (b, h, w, c), dtype = saved
    dy = _grad("image_to_pixel", dy, (b, idx.shape[1], c), dtype)
    dimage = np.zeros((b, h * w, c), dtype)
    _k.image_to_pixel_backward(dy, idx, dimage, n_threads())
    return dimage.reshape(b, h, w, c), None
