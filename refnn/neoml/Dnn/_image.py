"""Image conversion layers: Upsampling2D, ImageResize, Reorg, PixelToImage, ImageToPixel,
through refnn's ``image`` ops (upsampling2d, image_resize, reorg, pixel_to_image,
image_to_pixel).

Layout at the edge: a blob (BL, BW, LS, H, W, D, C) is N = BL*BW*LS images of H x W
pixels, channels last. Upsampling2D and ImageResize treat D*C as the channels (NeoML:
"Depth * Channels is the number of channels"); Reorg needs Depth 1. Their ops are NCHW,
so these layers transpose in (NHWC -> NCHW) and out. The pixel ops are channels last
already: an image blob (1, B, 1, H, W, 1, C) is the (B, H, W, C) image, a pixel blob
(1, B, L, 1, 1, 1, C) the (B, L, C) list, and an int32 index blob holds B lists of L
positions ``h * W + w`` (BatchLength 1, BatchWidth B, the other five dimensions
multiplying to L: NeoML's docs say ListSize = L, its C++ code wants Channels = L; both
are accepted).

Every error -- bad parameters, bad shapes, out-of-range indices -- names the layer.
Data blobs must be float32 (NeoML's ImageToPixel also gathers from int images; refnn's
ops are float only).
"""
import numpy as np

from refnn.errors import DTypeError, ParameterError, RefnnError, ShapeError
from refnn.neoml.Dnn._conv import _swap_last
from refnn.neoml.Dnn._layer import Layer


def _positive(where, what, v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ParameterError(f"{where}: {what} must be an int > 0, got {v!r}")
    return int(v)


class _ImageLayer(Layer):
    """Shared plumbing: NHWC <-> NCHW swaps and errors re-raised with the layer name."""

    def __init__(self, input_layers, name=None):
        self._saved = None
        super().__init__(input_layers, name)

    def _swap(self, a):
        engine = self._dnn.math_engine
        return _swap_last(engine.backend, engine.is_host, a)

    def _op(self, be, name, *args, **params):
        """be.op(name)(...), with any refnn error re-raised naming this layer."""
        try:
            return be.op(name)(*args, **params)
        except RefnnError as err:
            raise type(err)(f"{self._where()}: {err}") from None

    def _to_nchw(self, x):
        s = tuple(int(v) for v in x.shape)
        n, h, w, c = s[0] * s[1] * s[2], s[3], s[4], s[5] * s[6]
        return self._swap(x.reshape(n, h * w, c)).reshape(n, c, h, w)

    def _to_blob(self, y4, lead, depth_channels):
        n, c, h, w = (int(v) for v in y4.shape)
        y = self._swap(y4.reshape(n, c, h * w))
        return y.reshape(tuple(lead) + (h, w) + tuple(depth_channels))

    def _check_image_blob(self, x, i=0):
        self._check_float(x, f"input {i}")
        if min(int(v) for v in x.shape) < 1:
            raise ShapeError(f"{self._where()}: input {i} is empty (blob shape "
                             f"{tuple(x.shape)})")


class Upsampling2D(_ImageLayer):
    """``Upsampling2D(input_layers, height_copy_count, width_copy_count, name=None)``:
    every pixel is repeated height_copy_count times down and width_copy_count times
    across (no interpolation); one output per input, (BL, BW, LS, H hc, W wc, D, C):

        y[n, i, j, :] = x[n, i // hc, j // wc, :]

    The gradient of each input pixel is the sum over its hc x wc copies.
    """

    OPS = ("upsampling2d",)
    N_INPUTS = (1, None)
    N_OUTPUTS = None

    def __init__(self, input_layers, height_copy_count, width_copy_count, name=None):
        where = f"Upsampling2D {name!r}"
        self._hc = _positive(where, "height_copy_count", height_copy_count)
        self._wc = _positive(where, "width_copy_count", width_copy_count)
        super().__init__(input_layers, name)

    @property
    def height_copy_count(self):
        """The height multiplier."""
        return self._hc

    @height_copy_count.setter
    def height_copy_count(self, value):
        self._hc = _positive(self._where(), "height_copy_count", value)

    @property
    def width_copy_count(self):
        """The width multiplier."""
        return self._wc

    @width_copy_count.setter
    def width_copy_count(self, value):
        self._wc = _positive(self._where(), "width_copy_count", value)

    def _forward(self, be, xs, training):
        outs, self._saved = [], []
        for i, x in enumerate(xs):
            self._check_image_blob(x, i)
            s = tuple(int(v) for v in x.shape)
            y4, saved = self._op(be, "upsampling2d.forward", self._to_nchw(x), self._hc,
                                 self._wc)
            self._saved.append((s, saved))
            outs.append(self._to_blob(y4, s[:3], s[5:]))
        return outs

    def _backward(self, be, dys, need_dx):
        dxs = []
        for (s, saved), dy, need in zip(self._saved, dys, need_dx):
            if dy is None or not need:
                dxs.append(None)
                continue
            (dx4,) = self._op(be, "upsampling2d.backward", self._to_nchw(dy), saved)
            dxs.append(self._to_blob(dx4, s[:3], s[5:]))
        return dxs


class ImageResize(_ImageLayer):
    """``ImageResize(input_layer, deltas, default_value=0.0, name=None)``: deltas =
    (left, right, top, bottom); a positive delta adds that many columns / rows of
    ``default_value`` on that side, a negative one removes them. Output
    (BL, BW, LS, H + top + bottom, W + left + right, D, C):

        y[n, i, j, :] = x[n, i - top, j - left, :] where that pixel exists,
                        default_value elsewhere.

    As in NeoML, no delta may remove the whole image (delta > -size) and the result must
    keep at least one row and one column. The added pixels get no gradient.
    """

    OPS = ("image_resize",)

    def __init__(self, input_layer, deltas, default_value=0.0, name=None):
        where = f"ImageResize {name!r}"
        self._deltas = self._check_deltas(where, deltas)
        self._default = self._check_value(where, default_value)
        super().__init__(input_layer, name)

    @staticmethod
    def _check_deltas(where, deltas):
        try:
            vals = tuple(deltas)
        except TypeError:
            vals = None
        if vals is None or len(vals) != 4:
            raise ParameterError(f"{where}: deltas must contain 4 elements (left, right, "
                                 f"top, bottom), got {deltas!r}")
        for v in vals:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise ParameterError(f"{where}: deltas must be ints, got {deltas!r}")
        return tuple(int(v) for v in vals)

    @staticmethod
    def _check_value(where, v):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            raise ParameterError(f"{where}: default_value must be a number, got {v!r}")
        return float(v)

    @property
    def deltas(self):
        """The size differences (left, right, top, bottom)."""
        return self._deltas

    @deltas.setter
    def deltas(self, value):
        self._deltas = self._check_deltas(self._where(), value)

    @property
    def default_value(self):
        """The value of the added pixels."""
        return self._default

    @default_value.setter
    def default_value(self, value):
        self._default = self._check_value(self._where(), value)

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_image_blob(x)
        s = tuple(int(v) for v in x.shape)
        y4, saved = self._op(be, "image_resize.forward", self._to_nchw(x), self._deltas,
                             self._default)
        self._saved = (s, saved)
        return [self._to_blob(y4, s[:3], s[5:])]

    def _backward(self, be, dys, need_dx):
        s, saved = self._saved
        (dx4,) = self._op(be, "image_resize.backward", self._to_nchw(dys[0]), saved)
        return [self._to_blob(dx4, s[:3], s[5:])]


class Reorg(_ImageLayer):
    """``Reorg(input_layer, stride=1, name=None)``: YOLO's (darknet's) reorganisation of
    (BL, BW, LS, H, W, 1, C) into (BL, BW, LS, H / stride, W / stride, 1, C stride^2),
    with NeoML's exact channel order -- not a plain space-to-depth: NeoML reads the
    image memory as C / s^2 planes of (H s) x (W s) before moving each s x s block into
    channels; see refnn.ops.image.reorg_forward. Height and Width must be multiples of
    stride and Depth must be 1 (as in NeoML); Channels must be a multiple of stride^2
    (NeoML only asks Channels >= stride^2 and then reads pixels of the next image).
    """

    OPS = ("reorg",)

    def __init__(self, input_layer, stride=1, name=None):
        self._stride = _positive(f"Reorg {name!r}", "stride", stride)
        super().__init__(input_layer, name)

    @property
    def stride(self):
        """The divider of the image size."""
        return self._stride

    @stride.setter
    def stride(self, value):
        self._stride = _positive(self._where(), "stride", value)

    def _forward(self, be, xs, training):
        (x,) = xs
        self._check_image_blob(x)
        s = tuple(int(v) for v in x.shape)
        if s[5] != 1:
            raise ShapeError(f"{self._where()}: the input must have Depth 1, got {s[5]} "
                             f"(blob shape {s})")
        y4, saved = self._op(be, "reorg.forward", self._to_nchw(x), self._stride)
        self._saved = (s, saved)
        return [self._to_blob(y4, s[:3], (1, int(y4.shape[1])))]

    def _backward(self, be, dys, need_dx):
        s, saved = self._saved
        (dx4,) = self._op(be, "reorg.backward", self._to_nchw(dys[0]), saved)
        return [self._to_blob(dx4, s[:3], s[5:])]


class _PixelLayer(_ImageLayer):
    """Two inputs (data, int32 indices), one output; no gradient for the indices."""

    N_INPUTS = (2, 2)

    def _indices(self, idx, batch):
        """The int32 index blob as (B, L)."""
        s = tuple(int(v) for v in idx.shape)
        if np.dtype(idx.dtype) != np.int32:
            raise DTypeError(f"{self._where()}: input 1 (indices) must be an int32 blob, "
                             f"got {np.dtype(idx.dtype).name}")
        if s[0] != 1 or s[1] != batch:
            raise ShapeError(f"{self._where()}: input 1 (indices) must have BatchLength 1 "
                             f"and BatchWidth {batch} (that of input 0), got blob shape {s}")
        return idx.reshape(batch, int(np.prod(s[2:])))


class PixelToImage(_PixelLayer):
    """``PixelToImage(input_layer, height, width, name=None)``; input_layer = [pixels,
    indices]. pixels (1, B, L, 1, 1, 1, C), indices int32 with B lists of L positions
    ``h * width + w``; output (1, B, 1, height, width, 1, C), zero where no pixel lands:

        image[b, idx[b, j] // width, idx[b, j] % width, :] = pixels[b, j, :]

    When a position repeats, the last list entry wins (NeoML writes the list in order;
    its multi-threaded CPU code leaves the winner to chance). Indices outside
    [0, height * width) raise ParameterError (NeoML writes into a neighbouring image).
    Gradient: each list entry gets the image gradient at its position if it is the
    entry that landed there, else 0 -- the true gradient; NeoML hands every duplicate
    the gradient.
    """

    OPS = ("pixel_to_image",)

    def __init__(self, input_layer, height, width, name=None):
        where = f"PixelToImage {name!r}"
        self._height = _positive(where, "height", height)
        self._width = _positive(where, "width", width)
        super().__init__(input_layer, name)

    @property
    def height(self):
        """The output image height."""
        return self._height

    @height.setter
    def height(self, value):
        self._height = _positive(self._where(), "height", value)

    @property
    def width(self):
        """The output image width."""
        return self._width

    @width.setter
    def width(self, value):
        self._width = _positive(self._where(), "width", value)

    def _forward(self, be, xs, training):
        x, idx = xs
        self._check_image_blob(x)
        s = tuple(int(v) for v in x.shape)
        if s[0] != 1 or s[3:6] != (1, 1, 1):
            raise ShapeError(f"{self._where()}: input 0 (pixels) must have BatchLength 1 "
                             f"and Height = Width = Depth = 1, got blob shape {s}")
        b, l, c = s[1], s[2], s[6]
        ind = self._indices(idx, b)
        if int(ind.shape[1]) != l:
            raise ShapeError(f"{self._where()}: input 1 (indices) must hold {l} positions "
                             f"per image (the ListSize of input 0), got "
                             f"{int(ind.shape[1])} (blob shape {tuple(idx.shape)})")
        hw = (self._height, self._width)
        image, saved = self._op(be, "pixel_to_image.forward", x.reshape(b, l, c), ind, *hw)
        self._saved = (s, hw, saved)
        return [image.reshape((1, b, 1) + hw + (1, c))]

    def _backward(self, be, dys, need_dx):
        s, (h, w), saved = self._saved
        dpix, _ = self._op(be, "pixel_to_image.backward", dys[0].reshape(s[1], h, w, s[6]),
                           saved)
        return [dpix.reshape(s), None]


class ImageToPixel(_PixelLayer):
    """``ImageToPixel(input_layer, name=None)``; input_layer = [images, indices].
    images (1, B, 1, H, W, 1, C), indices int32 with B lists of L positions
    ``h * W + w``; output (1, B, L, 1, 1, 1, C):

        pixels[b, j, :] = image[b, idx[b, j] // W, idx[b, j] % W, :]

    Indices outside [0, H * W) raise ParameterError (NeoML reads a neighbouring image).
    Gradient: each image pixel collects the gradients of all list entries that read it
    -- the true gradient; NeoML's backward copies instead of adding, so a repeated
    index keeps only one of them.
    """

    OPS = ("image_to_pixel",)

    def __init__(self, input_layer, name=None):
        super().__init__(input_layer, name)

    def _forward(self, be, xs, training):
        x, idx = xs
        self._check_image_blob(x)
        s = tuple(int(v) for v in x.shape)
        if s[0] != 1 or s[2] != 1 or s[5] != 1:
            raise ShapeError(f"{self._where()}: input 0 (images) must have BatchLength, "
                             f"ListSize and Depth 1, got blob shape {s}")
        b, h, w, c = s[1], s[3], s[4], s[6]
        ind = self._indices(idx, b)
        pixels, saved = self._op(be, "image_to_pixel.forward", x.reshape(b, h, w, c), ind)
        self._saved = (s, saved)
        return [pixels.reshape(1, b, int(ind.shape[1]), 1, 1, 1, c)]

    def _backward(self, be, dys, need_dx):
        s, saved = self._saved
        b, c = s[1], s[6]
        dimage, _ = self._op(be, "image_to_pixel.backward",
                             dys[0].reshape(b, int(dys[0].shape[2]), c), saved)
        return [dimage.reshape(s), None]
