"""OpenCL host wrappers of the image family (kernels in kernels/image.cl).

Signatures are those of refnn.ops.image with the backend first (NCHW for upsampling2d,
image_resize, reorg; channels last for the pixel ops). Arrays stay on the device; the
indices of the pixel ops live there as int32 (the pixel owners of pixel_to_image too).
Parameters and shapes are checked by refnn.ops.image's ``check_*`` helpers. The index
range is checked on the host for host indices, and for device indices (int32 or int64)
by one kernel that finds the first bad position: one int is read back (and, only when
an index is bad, that index, for the error message).
"""
import numpy as np
import pyopencl.array as cla

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, real
from refnn.errors import DTypeError, ShapeError
from refnn.ops import image as ref


def _input(be, op, what, x, check=None):
    """A device array of the backend's dtype (shape checked first) with int32 offsets."""
    if check is not None:
        check(tuple(np.shape(x)))
    x = device_input(be, op, what, x)
    if x.size >= 2 ** 31:
        raise ShapeError(f"{op}: {what} must have fewer than 2**31 elements, got {x.shape}")
    return x


def _grad(be, op, dy, shape, dtype):
    if tuple(np.shape(dy)) != tuple(shape):
        raise ShapeError(f"{op}: dy must have shape {tuple(shape)}, got {tuple(np.shape(dy))}")
    return device_input(be, op, "dy", dy, dtype)


def _indices(be, op, indices, batch, n_pixels, length=None):
    """indices as a checked C-contiguous int32 (B, L) device array."""
    if not isinstance(indices, cla.Array):
        indices = np.asarray(indices)
        ref.check_indices(op, indices, batch, n_pixels, length)
        return be.asarray(indices, dtype=np.int32)
    kind = {np.dtype(np.int32): "int", np.dtype(np.int64): "long"}.get(np.dtype(indices.dtype))
    if kind is None:
        raise DTypeError(f"{op}: device indices must have dtype int32 or int64, got "
                         f"{np.dtype(indices.dtype).name}")
    ref.check_indices(op, indices, batch, n_pixels, length)     # shape (range below)
    if not indices.flags.c_contiguous:
        raise ValueError(f"{op}: indices must be C-contiguous on the device")
    first_bad = be.asarray(np.array([2 ** 31 - 1], np.int32), dtype=np.int32)
    _launch(be, "index_check_" + kind, indices.size, indices.data, first_bad.data,
            np.int64(n_pixels))
    k = int(first_bad.get(queue=be.queue)[0])
    if k != 2 ** 31 - 1:
        bad = int(indices.reshape(-1)[k:k + 1].get(queue=be.queue)[0])
        ref.check_index_range(op, bad, bad, n_pixels)
    return indices if kind == "int" else indices.astype(np.int32)


def _i32(*vals):
    return [np.int32(v) for v in vals]


def _launch(be, name, n, *args):
    be.kernel("image", name)(be.queue, global_1d(n), (LOCAL_1D,), *args, np.uint32(n))


# ------------------------------------------------------------------ upsampling2d
def upsampling2d_forward(be, x, height_copy_count=1, width_copy_count=1):
    op = "upsampling2d"
    x = _input(be, op, "x", x, lambda s: ref.check_input4d(op, s))
    hc, wc = ref.check_upsampling(op, x.shape, height_copy_count, width_copy_count)
    n, c, h, w = x.shape
    y = be.empty((n, c, h * hc, w * wc))
    if y.size >= 2 ** 31:
        raise ShapeError(f"{op}: y must have fewer than 2**31 elements, got {y.shape}")
    _launch(be, "upsampling2d_forward", y.size, x.data, y.data, *_i32(h, w, hc, wc))
    return y, (x.shape, x.dtype, hc, wc)


def upsampling2d_backward(be, dy, saved):
    (n, c, h, w), dtype, hc, wc = saved
    dy = _grad(be, "upsampling2d", dy, (n, c, h * hc, w * wc), dtype)
    dx = be.empty((n, c, h, w), dtype)
    _launch(be, "upsampling2d_backward", dx.size, dy.data, dx.data, *_i32(h, w, hc, wc))
    return (dx,)


# ------------------------------------------------------------------ image_resize
def image_resize_forward(be, x, deltas=(0, 0, 0, 0), default_value=0.0):
    op = "image_resize"
    x = _input(be, op, "x", x, lambda s: ref.check_input4d(op, s))
    (left, _, top, _), (ho, wo) = ref.check_resize(op, x.shape, deltas)
    y = be.empty(x.shape[:2] + (ho, wo))
    if y.size >= 2 ** 31:
        raise ShapeError(f"{op}: y must have fewer than 2**31 elements, got {y.shape}")
    dims = _i32(x.shape[2], x.shape[3], ho, wo, left, top)
    _launch(be, "image_resize_forward", y.size, x.data, y.data, real(be, default_value),
            *dims)
    return y, (x.shape, x.dtype, y.shape, dims)


def image_resize_backward(be, dy, saved):
    shape, dtype, out_shape, dims = saved
    dy = _grad(be, "image_resize", dy, out_shape, dtype)
    dx = be.empty(shape, dtype)
    _launch(be, "image_resize_backward", dx.size, dy.data, dx.data, *dims)
    return (dx,)


# ------------------------------------------------------------------ reorg
def reorg_forward(be, x, stride=1):
    x = _input(be, "reorg", "x", x, lambda s: ref.check_input4d("reorg", s))
    s = ref.check_reorg("reorg", x.shape, stride)
    n, c, h, w = x.shape
    y = be.empty((n, c * s * s, h // s, w // s))
    _launch(be, "reorg_forward", y.size, x.data, y.data, *_i32(c, h, w, s))
    return y, (x.shape, x.dtype, s)


def reorg_backward(be, dy, saved):
    (n, c, h, w), dtype, s = saved
    dy = _grad(be, "reorg", dy, (n, c * s * s, h // s, w // s), dtype)
    dx = be.empty((n, c, h, w), dtype)
    _launch(be, "reorg_backward", dx.size, dy.data, dx.data, *_i32(c, h, w, s))
    return (dx,)


# ------------------------------------------------------------------ pixel ops
def pixel_to_image_forward(be, pixels, indices, height, width):
    op = "pixel_to_image"
    pixels = _input(be, op, "pixels", pixels, lambda s: ref.check_pixels(op, s))
    b, l, c = pixels.shape
    hw = ref._int(op, "height", height, 1) * ref._int(op, "width", width, 1)
    if b * hw * c >= 2 ** 31:
        raise ShapeError(f"{op}: the image must have fewer than 2**31 elements, got "
                         f"{(b, height, width, c)}")
    idx = _indices(be, op, indices, b, hw, l)
    owner = be.empty((b, hw), np.int32)
    _launch(be, "pixel_owners", b, idx.data, owner.data, *_i32(l, hw))
    image = be.empty((b, height, width, c))
    _launch(be, "pixel_to_image_forward", image.size, pixels.data, owner.data, image.data,
            *_i32(l, hw, c))
    return image, (idx, owner, image.shape, pixels.dtype)


def pixel_to_image_backward(be, dy, saved):
    idx, owner, (b, h, w, c), dtype = saved
    dy = _grad(be, "pixel_to_image", dy, (b, h, w, c), dtype)
    l = idx.shape[1]
    dpixels = be.empty((b, l, c), dtype)
    _launch(be, "pixel_to_image_backward", dpixels.size, dy.data, idx.data, owner.data,
            dpixels.data, *_i32(l, h * w, c))
    return dpixels, None


def image_to_pixel_forward(be, image, indices):
    op = "image_to_pixel"
    image = _input(be, op, "image", image,
                   lambda s: ref.check_input4d(op, s, "image", "(B, H, W, C)"))
    b, h, w, c = image.shape
    idx = _indices(be, op, indices, b, h * w)
    l = idx.shape[1]
    pixels = be.empty((b, l, c))
    if pixels.size >= 2 ** 31:
        raise ShapeError(f"{op}: pixels must have fewer than 2**31 elements, got "
                         f"{pixels.shape}")
    _launch(be, "image_to_pixel_forward", pixels.size, image.data, idx.data, pixels.data,
            *_i32(l, h * w, c))
    return pixels, (idx, image.shape, image.dtype)


def image_to_pixel_backward(be, dy, saved):
    idx, (b, h, w, c), dtype = saved
    l = idx.shape[1]
    dy = _grad(be, "image_to_pixel", dy, (b, l, c), dtype)
    dimage = be.empty((b, h, w, c), dtype)
    _launch(be, "image_to_pixel_backward", b * c, dy.data, idx.data, dimage.data,
            *_i32(l, h * w, c))
    return dimage, None
