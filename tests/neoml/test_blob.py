"""neoml.Blob and neoml.MathEngine: 7-D shapes, dtypes, memory sharing, accounting."""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import DTypeError, ShapeError
from tests.neoml.conftest import make_engine


@pytest.mark.parametrize("kind", ["reference", "cpu"])
def test_asblob_and_asarray_share_memory_on_host_engines(kind):
    me = make_engine(kind)
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    blob = neoml.Blob.asblob(me, a, (1, 3, 1, 1, 1, 1, 4))
    a[0, 0] = 42.0                       # write through the array ...
    assert blob.asarray()[0, 0] == 42.0  # ... read through the blob
    view = blob.asarray()
    view[2, 3] = -7.0                    # write through the blob's array ...
    assert a[2, 3] == -7.0               # ... read through the original
    copied = blob.asarray(copy=True)
    copied[1, 1] = 100.0
    assert a[1, 1] == 5.0


def test_asblob_copy_true_does_not_share(engine):
    a = np.ones((2, 3), dtype=np.float32)
    blob = neoml.Blob.asblob(engine, a, (1, 2, 1, 1, 1, 1, 3), copy=True)
    a[:] = 5
    np.testing.assert_array_equal(blob.asarray(), np.ones((2, 3)))


def test_opencl_blob_round_trip():
    me = make_engine("opencl")
    a = np.arange(6, dtype=np.int32)
    blob = neoml.Blob.asblob(me, a, (1, 6, 1, 1, 1, 1, 1))
    assert blob.dtype == "int32"
    np.testing.assert_array_equal(blob.asarray(), a)
    c = blob.copy()
    np.testing.assert_array_equal(c.asarray(), a)
    host = blob.copy(make_engine("cpu"))
    assert isinstance(host.data, np.ndarray)


def test_shapes_and_keep_dims(engine):
    b = neoml.Blob.image2d(engine, 2, 3, 4, 5, 6)
    assert tuple(b.shape) == (2, 3, 1, 4, 5, 1, 6)
    assert (b.batch_len, b.batch_width, b.list_size, b.height, b.width, b.depth,
            b.channels) == (2, 3, 1, 4, 5, 1, 6)
    assert b.object_count == 6 and b.object_size == 120 and b.size == 720
    assert b.asarray().shape == (2, 3, 4, 5, 6)
    assert b.asarray(keep_dims=True).shape == (2, 3, 1, 4, 5, 1, 6)
    one = neoml.Blob.asblob(engine, np.array([3.5], dtype=np.float32))
    assert one.asarray().shape == (1,)
    assert tuple(neoml.Blob.vector(engine, 5).shape) == (5, 1, 1, 1, 1, 1, 1)
    assert tuple(neoml.Blob.matrix(engine, 2, 3, "int32").shape) == (2, 3, 1, 1, 1, 1, 1)
    assert tuple(neoml.Blob.list_blob(engine, 1, 2, 3, 4).shape) == (1, 2, 3, 1, 1, 1, 4)
    assert tuple(neoml.Blob.image3d(engine, 1, 2, 3, 4, 5, 6).shape) == (1, 2, 1, 3, 4, 5, 6)
    t = neoml.Blob.tensor(engine, (1, 1, 1, 1, 1, 1, 2), dtype="int32")
    assert t.dtype == "int32" and t.asarray().dtype == np.int32


def test_bad_blobs_raise(engine):
    with pytest.raises(DTypeError, match="float32' or 'int32'.*float64"):
        neoml.Blob.tensor(engine, (1,) * 7, dtype="float64")
    with pytest.raises(DTypeError, match="float64"):
        neoml.Blob.asblob(engine, np.zeros(3), (1, 3, 1, 1, 1, 1, 1))
    with pytest.raises(ShapeError, match="7 positive ints"):
        neoml.Blob.tensor(engine, (2, 3))
    with pytest.raises(ShapeError, match="has 5 elements.*needs 6"):
        neoml.Blob.asblob(engine, np.zeros(5, np.float32), (1, 6, 1, 1, 1, 1, 1))


def test_peak_memory_usage_counts_blob_bytes():
    me = neoml.MathEngine.CpuMathEngine(thread_count=0)
    assert me.peak_memory_usage == 0
    blob = neoml.Blob.vector(me, 10, dtype="int32")
    assert me.peak_memory_usage == 40
    del blob
    assert me.memory_usage == 0 and me.peak_memory_usage == 40
    me.reset_peak_memory_usage()
    assert me.peak_memory_usage == 0


def test_store_and_load(engine, tmp_path):
    a = np.arange(6, dtype=np.float32)
    blob = neoml.Blob.asblob(engine, a, (1, 2, 1, 1, 1, 1, 3))
    neoml.Blob.store(blob, str(tmp_path / "b.npy"))
    back = neoml.Blob.load(engine, str(tmp_path / "b.npy"))
    assert tuple(back.shape) == (1, 2, 1, 1, 1, 1, 3)
    np.testing.assert_array_equal(back.asarray(), a.reshape(2, 3))


def test_engines_and_gpu_enumeration():
    gpus = neoml.MathEngine.enum_gpu()
    assert isinstance(gpus, tuple)
    with pytest.raises(ValueError, match=f"gpu_index must be in \\[0, {len(gpus)}\\)"):
        neoml.MathEngine.GpuMathEngine(len(gpus))
    with pytest.raises(ValueError):
        neoml.MathEngine.GpuMathEngine(-1)
    with pytest.raises(ValueError, match="thread_count"):
        neoml.MathEngine.CpuMathEngine(thread_count=-2)
    assert neoml.MathEngine.CpuMathEngine(thread_count=2).backend.name == "cpu"
    assert neoml.MathEngine.ReferenceMathEngine().backend.name == "reference"
    ocl = neoml.MathEngine.OpenCLMathEngine()
    assert ocl.backend.name == "opencl" and not ocl.is_host
    for i, gpu in enumerate(gpus):
        assert gpu["index"] == i
        assert neoml.MathEngine.GpuMathEngine(i).backend.name == "opencl"
