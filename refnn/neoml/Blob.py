"""neoml.Blob: the 7-D data blob of NeoML.

Dimensions, row-major (the last one varies fastest)::

    (BatchLength, BatchWidth, ListSize, Height, Width, Depth, Channels)

``object_count = BatchLength * BatchWidth * ListSize`` objects of
``object_size = Height * Width * Depth * Channels`` numbers each: seen as a matrix
(object_count, object_size) a blob is exactly the batch-first ``(N, C)`` layout of
refnn's ops, so a fully connected layer needs no copy at the facade's edge.

Data types: float32 and int32. On a host engine (CPU, reference) the blob memory is a
NumPy array: ``asblob(engine, array, shape)`` without ``copy`` wraps the array itself
and ``blob.asarray()`` returns a view -- writing through one is seen through the
other. On an OpenCL engine the data stays on the device and ``asarray`` copies.
"""
import weakref

import numpy as np

from refnn.errors import DTypeError, ShapeError

__all__ = ["Blob", "asblob", "vector", "matrix", "tensor", "list_blob", "image2d",
           "image3d", "store", "load"]

DIMS = ("batch_len", "batch_width", "list_size", "height", "width", "depth", "channels")
DTYPES = {"float32": np.float32, "int32": np.int32}


def _dtype(dtype, where):
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise DTypeError(f"{where}: dtype must be 'float32' or 'int32', got {dtype!r}")
    return np.dtype(DTYPES[name])


def _shape7(shape, where):
    try:
        dims = [int(s) for s in shape]
    except (TypeError, ValueError):
        raise ShapeError(f"{where}: shape must be 7 positive ints, got {shape!r}") from None
    if len(dims) != 7 or any(s < 1 for s in dims):
        raise ShapeError(f"{where}: shape must be 7 positive ints {DIMS}, got {tuple(shape)}")
    return tuple(dims)


class Blob:
    """The class that stores and transmits data in neural networks (7-D, see module doc).

    Create blobs with the module functions (``asblob``, ``vector``, ``tensor``, ...);
    ``Blob(internal)`` is not meant to be called by users.
    """

    def __init__(self, internal):
        engine, data = internal
        if data.ndim != 7:
            raise ShapeError(f"Blob: data must be 7-D, got shape {data.shape}")
        _dtype(data.dtype, "Blob")
        self._engine = engine
        self._data = data

    @classmethod
    def _new(cls, engine, data, owned=True):
        """Wrap backend array ``data`` (7-D); ``owned`` blobs count in the engine's memory."""
        blob = cls((engine, data))
        if owned:
            nbytes = int(data.size) * data.dtype.itemsize
            engine._allocated(nbytes)
            weakref.finalize(blob, engine._freed, nbytes)
        return blob

    # ---------------------------------------------------------------- refnn side
    @property
    def data(self):
        """The backend array (NumPy or pyopencl), 7-D (refnn extension)."""
        return self._data

    @property
    def dtype(self):
        """'float32' or 'int32'."""
        return np.dtype(self._data.dtype).name

    # ------------------------------------------------------------------- NeoML API
    def asarray(self, copy=False, keep_dims=False):
        """The contents as a NumPy array: a view on host engines unless ``copy``; a copy
        from the device on OpenCL engines. ``keep_dims=False`` drops the dimensions of
        length 1 (a one-element blob gives shape (1,))."""
        be = self._engine.backend
        if self._engine.is_host:
            out = np.array(self._data, copy=True) if copy else self._data
        else:
            out = be.to_host(self._data)
        if keep_dims:
            return out
        dims = tuple(s for s in self.shape if s != 1) or (1,)
        return out.reshape(dims)

    def copy(self, math_engine=None):
        """A blob copy independent of this blob (on ``math_engine``, default: the same)."""
        engine = math_engine or self._engine
        if engine is self._engine and not engine.is_host:
            return Blob._new(engine, self._data.copy(queue=engine.backend.queue))
        host = np.array(self.asarray(keep_dims=True), copy=True)
        return Blob._new(engine, engine.backend.asarray(host, dtype=host.dtype))

    @property
    def math_engine(self):
        return self._engine

    @property
    def shape(self):
        """The 7 dimension lengths (a NumPy int array)."""
        return np.array(self._data.shape, dtype=np.int64)

    @property
    def size(self):
        return int(np.prod(self._data.shape))

    @property
    def object_count(self):
        s = self._data.shape
        return s[0] * s[1] * s[2]

    @property
    def object_size(self):
        s = self._data.shape
        return s[3] * s[4] * s[5] * s[6]

    batch_len = property(lambda self: self._data.shape[0], doc="The BatchLength dimension.")
    batch_width = property(lambda self: self._data.shape[1], doc="The BatchWidth dimension.")
    list_size = property(lambda self: self._data.shape[2], doc="The ListSize dimension.")
    height = property(lambda self: self._data.shape[3], doc="The Height dimension.")
    width = property(lambda self: self._data.shape[4], doc="The Width dimension.")
    depth = property(lambda self: self._data.shape[5], doc="The Depth dimension.")
    channels = property(lambda self: self._data.shape[6], doc="The Channels dimension.")

    def __repr__(self):
        return f"<neoml Blob {tuple(self._data.shape)} {self.dtype} on {self._engine!r}>"


# ------------------------------------------------------------------- constructors
def asblob(math_engine, data, shape=None, copy=False):
    """Organize ``data`` (array-like, float32 or int32) into a blob of ``shape`` (7 ints;
    default: a one-element blob). Without ``copy`` a C-contiguous NumPy array of the right
    dtype is wrapped, not copied, on host engines (the blob and the array share memory).
    """
    shape = _shape7((1,) * 7 if shape is None else shape, "Blob.asblob")
    if not isinstance(data, np.ndarray):
        data = np.asarray(data)
        if data.dtype.kind == "f":
            data = data.astype(np.float32)
        elif data.dtype.kind in "iub":
            data = data.astype(np.int32)
    dtype = _dtype(data.dtype.name, "Blob.asblob: data")
    if data.size != int(np.prod(shape)):
        raise ShapeError(f"Blob.asblob: data has {data.size} elements, shape {shape} "
                         f"needs {int(np.prod(shape))}")
    if math_engine.is_host and not copy and data.flags.c_contiguous:
        return Blob._new(math_engine, data.reshape(shape), owned=False)
    host = np.ascontiguousarray(data, dtype=dtype).reshape(shape)
    if math_engine.is_host:
        host = host.copy() if np.shares_memory(host, data) else host
        return Blob._new(math_engine, host)
    return Blob._new(math_engine, math_engine.backend.asarray(host, dtype=dtype))


def _empty(math_engine, shape, dtype, where):
    """A new zero-filled blob (NeoML leaves new blobs uninitialized; zeros are safer)."""
    shape = _shape7(shape, where)
    dtype = _dtype(dtype, where)
    return Blob._new(math_engine, math_engine.backend.zeros(shape, dtype=dtype))


def tensor(math_engine, shape, dtype="float32"):
    """A blob of the 7-D ``shape``."""
    return _empty(math_engine, shape, dtype, "Blob.tensor")


def vector(math_engine, size, dtype="float32"):
    """A vector: (size, 1, 1, 1, 1, 1, 1) -- size objects of one number (as NeoML)."""
    return _empty(math_engine, (size, 1, 1, 1, 1, 1, 1), dtype, "Blob.vector")


def matrix(math_engine, matrix_height, matrix_width, dtype="float32"):
    """A matrix: (height, width, 1, 1, 1, 1, 1) as in NeoML (BatchLength x BatchWidth)."""
    return _empty(math_engine, (matrix_height, matrix_width, 1, 1, 1, 1, 1), dtype,
                  "Blob.matrix")


def list_blob(math_engine, batch_len, batch_width, list_size, channels, dtype="float32"):
    return _empty(math_engine, (batch_len, batch_width, list_size, 1, 1, 1, channels), dtype,
                  "Blob.list_blob")


def image2d(math_engine, batch_len, batch_width, height, width, channels, dtype="float32"):
    return _empty(math_engine, (batch_len, batch_width, 1, height, width, 1, channels), dtype,
                  "Blob.image2d")


def image3d(math_engine, batch_len, batch_width, height, width, depth, channels,
            dtype="float32"):
    return _empty(math_engine, (batch_len, batch_width, 1, height, width, depth, channels),
                  dtype, "Blob.image3d")


def store(blob, file_path):
    """Store ``blob`` at ``file_path`` (refnn writes NumPy's .npy format, not NeoML's
    binary archive: files are exchanged with refnn, not with the real NeoML)."""
    with open(file_path, "wb") as f:
        np.save(f, blob.asarray(copy=True, keep_dims=True), allow_pickle=False)


def load(math_engine, file_path):
    """Load a blob stored by :func:`store`."""
    with open(file_path, "rb") as f:
        data = np.load(f, allow_pickle=False)
    return asblob(math_engine, data, data.shape, copy=True)
