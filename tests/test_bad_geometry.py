"""Bad geometry raises a clear error naming the layer -- never a crash (issue 3, "Done
when"), for the conv/pool layers of both APIs on every backend / engine:

* a kernel larger than the padded input (for a transposed conv: a padding that leaves
  no output pixel);
* a zero stride;
* channels that do not match the filter;
* a 3-D blob into a 2-D conv (and a 2-D blob into a 3-D layer whose window needs depth).

After each error the same layer still runs a good input (nothing half-updated).
"""
import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import ParameterError, ShapeError
from refnn.neon import NervanaObject
from refnn.neon.backends import gen_backend
from refnn.neon.initializers import Constant, Gaussian
from refnn.neon.layers import Conv, Convolution, Deconv, Deconvolution, Pooling, Sequential

D = neoml.Dnn
ENGINES = {"reference": neoml.MathEngine.ReferenceMathEngine,
           "cpu": neoml.MathEngine.CpuMathEngine,
           "opencl": neoml.MathEngine.OpenCLMathEngine}


@pytest.fixture(scope="module", params=sorted(ENGINES))
def engine(request):
    return ENGINES[request.param]()


@pytest.fixture(scope="module", params=("reference", "cpu", "gpu"))
def nbe(request):
    be = gen_backend(request.param, rng_seed=0, batch_size=4)
    NervanaObject.be = be
    yield be


# ============================================================== refnn.neoml
def _net(engine, make):
    dnn = D.Dnn(engine, neoml.Random.Random(0))
    layer = make(D.Source(dnn, "x"))
    D.Sink(layer, name="out")
    return dnn, layer


def _run(engine, dnn, shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    return tuple(int(v) for v in dnn.run(
        {"x": neoml.Blob.asblob(engine, x, shape, copy=True)})["out"].shape)


# (id, layer factory, a good input shape or None, the bad input shape, error, message)
NEOML_RUN_CASES = [
    # ---- kernel larger than the padded input
    ("conv-kernel", lambda s: D.Conv(s, 2, (5, 3), padding_size=(1, 1), name="L"),
     (1, 2, 1, 5, 5, 1, 3), (1, 2, 1, 2, 5, 1, 3), ShapeError,
     r"Conv 'L'.*kernel spans 5 pixels along H.*padded input has only 4"),
    ("conv-dilated-kernel", lambda s: D.Conv(s, 2, (2, 2), dilation_size=(1, 4), name="L"),
     (1, 1, 1, 5, 5, 1, 3), (1, 1, 1, 5, 4, 1, 3), ShapeError,
     r"Conv 'L'.*kernel spans 5 pixels along W"),
    ("conv3d-kernel", lambda s: D.Conv3D(s, 2, (2, 2, 3), padding_size=(0, 0, 0), name="L"),
     (1, 2, 1, 4, 4, 3, 3), (1, 2, 1, 4, 4, 2, 3), ShapeError,
     r"Conv3D 'L'.*kernel spans 3 pixels along D"),
    ("tconv-padding", lambda s: D.TransposedConv(s, 2, (3, 3), padding_size=(2, 0), name="L"),
     (1, 2, 1, 3, 3, 1, 3), (1, 2, 1, 2, 3, 1, 3), ShapeError,
     r"TransposedConv 'L'.*0 pixels along H.*padding is too large"),
    ("tconv3d-padding", lambda s: D.TransposedConv3D(s, 2, (3, 3, 3),
                                                     padding_size=(0, 0, 2), name="L"),
     (1, 1, 1, 2, 2, 3, 3), (1, 1, 1, 2, 2, 2, 3), ShapeError,
     r"TransposedConv3D 'L'.*0 pixels along D"),
    ("channelwise-kernel", lambda s: D.ChannelwiseConv(s, 3, (5, 5), padding_size=(1, 1),
                                                       name="L"),
     (1, 2, 1, 4, 4, 1, 3), (1, 2, 1, 2, 4, 1, 3), ShapeError, r"ChannelwiseConv 'L'"),
    ("timeconv-kernel", lambda s: D.TimeConv(s, 2, 5, padding_front=1, padding_back=1,
                                             name="L"),
     (3, 2, 1, 1, 1, 1, 3), (2, 2, 1, 1, 1, 1, 3), ShapeError,
     r"TimeConv 'L'.*filter spans 5 steps.*only 4"),
    ("maxpool-kernel", lambda s: D.MaxPooling(s, (3, 3), name="L"),
     (1, 2, 1, 3, 3, 1, 3), (1, 2, 1, 2, 3, 1, 3), ShapeError,
     r"MaxPooling 'L'.*filter_size \(3, 3\) is larger"),
    ("meanpool-kernel", lambda s: D.MeanPooling(s, (2, 4), name="L"),
     (1, 2, 1, 3, 4, 1, 3), (1, 2, 1, 3, 3, 1, 3), ShapeError,
     r"MeanPooling 'L'.*filter_size \(2, 4\) is larger"),
    ("maxpool3d-kernel", lambda s: D.MaxPooling3D(s, (2, 2, 3), name="L"),
     (1, 2, 1, 3, 3, 3, 3), (1, 2, 1, 3, 1, 3, 3), ShapeError,
     r"MaxPooling3D 'L'.*larger"),
    ("meanpool3d-kernel", lambda s: D.MeanPooling3D(s, (2, 2, 2), name="L"),
     (1, 2, 1, 3, 3, 3, 3), (1, 2, 1, 1, 3, 3, 3), ShapeError,
     r"MeanPooling3D 'L'.*larger"),
    # ---- channels that do not match the filter (made by the first good run)
    ("conv-channels", lambda s: D.Conv(s, 2, (3, 3), name="L"),
     (1, 2, 1, 4, 4, 1, 3), (1, 2, 1, 4, 4, 1, 2), ShapeError,
     r"Conv 'L'.*3 channels.*like the filter, got 2"),
    ("conv3d-channels", lambda s: D.Conv3D(s, 2, (2, 2, 2), name="L"),
     (1, 2, 1, 3, 3, 3, 3), (1, 2, 1, 3, 3, 3, 4), ShapeError,
     r"Conv3D 'L'.*3 channels.*like the filter, got 4"),
    ("tconv-channels", lambda s: D.TransposedConv(s, 2, (3, 3), name="L"),
     (1, 2, 1, 4, 4, 1, 3), (1, 2, 1, 4, 4, 1, 5), ShapeError,
     r"TransposedConv 'L'.*3 channels.*like the filter, got 5"),
    ("tconv3d-channels", lambda s: D.TransposedConv3D(s, 2, (2, 2, 2), name="L"),
     (1, 2, 1, 3, 3, 3, 3), (1, 2, 1, 3, 3, 3, 1), ShapeError,
     r"TransposedConv3D 'L'.*3 channels.*like the filter, got 1"),
    ("channelwise-channels", lambda s: D.ChannelwiseConv(s, 3, (3, 3), name="L"),
     (1, 2, 1, 4, 4, 1, 3), (1, 2, 1, 4, 4, 1, 2), ShapeError,
     r"ChannelwiseConv 'L'.*3 channels.*got 2"),
    ("timeconv-channels", lambda s: D.TimeConv(s, 2, 2, name="L"),
     (3, 2, 1, 1, 1, 1, 3), (3, 2, 1, 1, 1, 1, 4), ShapeError,
     r"TimeConv 'L'.*object size.*3 like the filter, got 4"),
    # ---- a 3-D blob (Depth > 1) into a 2-D conv whose filter has Depth*Channels = 3
    ("conv-3d-blob", lambda s: D.Conv(s, 2, (3, 3), name="L"),
     (1, 2, 1, 4, 4, 1, 3), (1, 2, 1, 4, 4, 2, 3), ShapeError,
     r"Conv 'L'.*3 channels \(Depth\*Channels\) like the filter, got 6"),
    ("tconv-3d-blob", lambda s: D.TransposedConv(s, 2, (3, 3), name="L"),
     (1, 2, 1, 4, 4, 1, 3), (1, 2, 1, 4, 4, 3, 3), ShapeError,
     r"TransposedConv 'L'.*3 channels \(Depth\*Channels\) like the filter, got 9"),
    ("channelwise-3d-blob", lambda s: D.ChannelwiseConv(s, 3, (3, 3), name="L"),
     (1, 2, 1, 4, 4, 1, 3), (1, 2, 1, 4, 4, 2, 3), ShapeError,
     r"ChannelwiseConv 'L'.*3 channels \(Depth\*Channels\).*got 6"),
    # ---- a 2-D blob (Depth 1) into a 3-D layer whose window needs depth
    ("conv3d-2d-blob", lambda s: D.Conv3D(s, 2, (2, 2, 2), name="L"),
     (1, 2, 1, 3, 3, 2, 3), (1, 2, 1, 3, 3, 1, 3), ShapeError,
     r"Conv3D 'L'.*along D"),
    ("maxpool3d-2d-blob", lambda s: D.MaxPooling3D(s, (2, 2, 2), name="L"),
     (1, 2, 1, 3, 3, 2, 3), (1, 2, 1, 3, 3, 1, 3), ShapeError,
     r"MaxPooling3D 'L'.*\(Height, Width, Depth\) = \(3, 3, 1\)"),
]


@pytest.mark.parametrize("case", NEOML_RUN_CASES, ids=[c[0] for c in NEOML_RUN_CASES])
def test_neoml_bad_input_geometry_names_the_layer(engine, case):
    _, make, good, bad, error, message = case
    dnn, _ = _net(engine, make)
    before = _run(engine, dnn, good)
    with pytest.raises(error, match=message):
        _run(engine, dnn, bad)
    assert _run(engine, dnn, good) == before, "the layer still works after the error"


# (id, layer factory, message): zero strides rejected when the layer is built
NEOML_STRIDE_CASES = [
    ("Conv", lambda s: D.Conv(s, 2, (3, 3), stride_size=(0, 1), name="L"), "stride_size"),
    ("Conv3D", lambda s: D.Conv3D(s, 2, stride_size=(1, 1, 0), name="L"), "stride_size"),
    ("TransposedConv", lambda s: D.TransposedConv(s, 2, stride_size=(1, 0), name="L"),
     "stride_size"),
    ("TransposedConv3D", lambda s: D.TransposedConv3D(s, 2, stride_size=(0, 0, 0), name="L"),
     "stride_size"),
    ("ChannelwiseConv", lambda s: D.ChannelwiseConv(s, 3, stride_size=(0, 2), name="L"),
     "stride_size"),
    ("TimeConv", lambda s: D.TimeConv(s, 2, 3, stride=0, name="L"), "stride"),
    ("MaxPooling", lambda s: D.MaxPooling(s, stride_size=(1, 0), name="L"), "stride_size"),
    ("MeanPooling", lambda s: D.MeanPooling(s, stride_size=0, name="L"), "stride_size"),
    ("MaxPooling3D", lambda s: D.MaxPooling3D(s, stride_size=(1, 0, 1), name="L"),
     "stride_size"),
    ("MeanPooling3D", lambda s: D.MeanPooling3D(s, stride_size=(0, 1, 1), name="L"),
     "stride_size"),
]


@pytest.mark.parametrize("case", NEOML_STRIDE_CASES, ids=[c[0] for c in NEOML_STRIDE_CASES])
def test_neoml_zero_stride_names_the_layer(engine, case):
    cls, make, what = case
    with pytest.raises(ParameterError, match=f"{cls} 'L'.*{what} must be >= 1"):
        _net(engine, make)


@pytest.mark.parametrize("case", NEOML_STRIDE_CASES, ids=[c[0] for c in NEOML_STRIDE_CASES])
def test_neoml_zero_stride_set_later_names_the_layer(engine, case):
    """Setting a zero stride on a built layer is refused too (the property setter)."""
    cls, _, what = case
    good = {"TimeConv": lambda s: D.TimeConv(s, 2, 3, name="M")}.get(
        cls, lambda s: getattr(D, cls)(s, *((3,) if "Conv" in cls else ()), name="M"))
    _, layer = _net(engine, good)
    old = getattr(layer, what)
    zero = 0 if what == "stride" else (0,) * len(old)
    with pytest.raises(ParameterError, match=f"{cls} 'M'.*{what}"):
        setattr(layer, what, zero)
    assert getattr(layer, what) == old


@pytest.mark.parametrize("cls", ["Conv", "TransposedConv", "ChannelwiseConv"])
def test_neoml_filter_set_for_other_channels_names_the_layer(engine, cls):
    """A filter blob set for 3 channels, then a 2-channel input: ShapeError at the run."""
    count = 3 if cls == "ChannelwiseConv" else 2
    dnn, layer = _net(engine, lambda s: getattr(D, cls)(s, count, (2, 2), name="L"))
    shape = {"Conv": (1, count, 1, 2, 2, 1, 3), "TransposedConv": (1, 3, 1, 2, 2, 1, count),
             "ChannelwiseConv": (1, 1, 1, 2, 2, 1, 3)}[cls]
    layer.filter = neoml.Blob.asblob(engine, np.ones(shape, np.float32), shape, copy=True)
    with pytest.raises(ShapeError, match=f"{cls} 'L'.*channels"):
        _run(engine, dnn, (1, 2, 1, 3, 3, 1, 2))
    assert _run(engine, dnn, (1, 2, 1, 3, 3, 1, 3))[-1] == count


# ============================================================== refnn.neon
def _neon(kind, **kw):
    init = kw.pop("init", Gaussian(scale=0.1))
    if kind == "Convolution":
        return Convolution((3, 3, 4), init=init, name="L", **kw)
    if kind == "Conv":
        return Sequential(Conv((3, 3, 4), init=init, bias=Constant(0), name="L", **kw))
    if kind == "Deconvolution":
        return Deconvolution((3, 3, 4), init=init, name="L", **kw)
    if kind == "Deconv":
        return Sequential(Deconv((3, 3, 4), init=init, bias=Constant(0), name="L", **kw))
    return Pooling(3, name="L", **kw)


NEON_KINDS = ("Convolution", "Conv", "Deconvolution", "Deconv", "Pooling")
#: the class named in the message (Conv / Deconv are compounds around these)
NEON_NAMED = {"Convolution": "Convolution", "Conv": "Convolution",
              "Deconvolution": "Deconvolution", "Deconv": "Deconvolution",
              "Pooling": "Pooling"}


def _configure(layer, shape):
    layer.configure(shape)
    layer.allocate()
    return layer


@pytest.mark.parametrize("kind", NEON_KINDS)
def test_neon_kernel_larger_than_padded_input(nbe, kind):
    # a deconv's "kernel larger than the padded input" is a padding leaving no output
    kw = {"padding": 2} if kind.startswith("Deconv") else {"padding": 0}
    with pytest.raises(ShapeError, match=rf"L \({NEON_NAMED[kind]}\)"):
        _configure(_neon(kind, **kw), (3, 2, 5))


def test_neon_pooling_window_larger_than_the_padded_input(nbe):
    with pytest.raises(ShapeError, match=r"L \(Pooling\).*kernel \(4, 4\).*larger"):
        _configure(Pooling(4, padding={"pad_h": 1}, name="L"), (3, 1, 6))


@pytest.mark.parametrize("kind", NEON_KINDS)
@pytest.mark.parametrize("strides", [0, {"str_h": 0}, {"str_w": 0}])
def test_neon_zero_stride(nbe, kind, strides):
    with pytest.raises(ParameterError, match=rf"L \({NEON_NAMED[kind]}\).*strides"):
        _neon(kind, strides=strides)


@pytest.mark.parametrize("kind", NEON_KINDS)
def test_neon_channels_that_do_not_match_the_configured_layer(nbe, kind):
    """Configured for 3 channels (the filter is (3*R*S, K)), fed 2: ShapeError naming the
    layer; the 3-channel input still runs afterwards."""
    layer = _configure(_neon(kind), (3, 5, 5))
    rs = np.random.RandomState(0)
    with pytest.raises(ShapeError, match=rf"L \({NEON_NAMED[kind]}\).*\(75, batch\)"):
        layer.fprop(nbe.array(rs.randn(2 * 5 * 5, nbe.bsz)))
    y = layer.fprop(nbe.array(rs.randn(3 * 5 * 5, nbe.bsz)))
    assert y.shape[1] == nbe.bsz


@pytest.mark.parametrize("kind", ["Convolution", "Conv", "Deconvolution", "Deconv"])
def test_neon_3d_sample_into_a_2d_conv(nbe, kind):
    with pytest.raises(ShapeError, match=rf"L \({NEON_NAMED[kind]}\).*in_shape \(3, 2, 5, 5\)"):
        _configure(_neon(kind), (3, 2, 5, 5))


def test_neon_pooling_depth_window_needs_3d_samples(nbe):
    """Pooling takes (C, D, H, W) samples (3-D pooling); a depth window on 2-D samples
    is the error case."""
    with pytest.raises(ShapeError, match=r"L \(Pooling\).*T = 2.*\(C, D, H, W\)"):
        _configure(Pooling((2, 2, 2), name="L"), (3, 5, 5))


# the backend methods neon's layers and users call (named in the message)
NEON_BACKEND_CASES = [
    ("conv_layer-kernel", lambda be: be.conv_layer(np.float32, 4, 3, 8, H=2, W=5, R=3, S=3),
     ShapeError, r"conv_layer: along H"),
    ("conv_layer-stride", lambda be: be.conv_layer(np.float32, 4, 3, 8, H=5, W=5, R=3, S=3,
                                                   str_w=0),
     ParameterError, r"conv_layer: str_w must be >= 1"),
    ("deconv_layer-padding", lambda be: be.deconv_layer(np.float32, 4, 3, 8, P=2, Q=2, R=3,
                                                        S=3, pad_h=2),
     ShapeError, r"deconv_layer: the output H"),
    ("deconv_layer-stride", lambda be: be.deconv_layer(np.float32, 4, 3, 8, P=2, Q=2, R=3,
                                                       S=3, str_h=0),
     ParameterError, r"deconv_layer: str_h"),
    ("pool_layer-kernel", lambda be: be.pool_layer(np.float32, "max", 4, 3, H=5, W=2, R=3,
                                                   S=3),
     ShapeError, r"pool_layer: along W"),
    ("pool_layer-stride", lambda be: be.pool_layer(np.float32, "avg", 4, 3, H=5, W=5, R=3,
                                                   S=3, str_h=0),
     ParameterError, r"pool_layer: str_h must be >= 1"),
]


@pytest.mark.parametrize("case", NEON_BACKEND_CASES, ids=[c[0] for c in NEON_BACKEND_CASES])
def test_neon_backend_layer_descriptors(nbe, case):
    _, make, error, message = case
    with pytest.raises(error, match=message):
        make(nbe)
