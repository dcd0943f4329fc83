"""The conv / pool / norm / image layers of refnn.neoml against the NeoML Python API spec
(neoml-dnn-python-api.txt), one table row per layer:

* the constructor: argument names, order and defaults exactly as the spec's signature
  (copied below), and a layer built with the defaults reads them back;
* every property the spec lists (plus NeoML's pooling window components) is readable and
  settable: setting then reading gives the value back, and a bad value raises an error
  naming the layer;
* the blob properties (filter, free_term, final_params, scale, bias) in NeoML's shapes;
* the output shape of each layer is the spec's formula;
* NeoML's solver never regularises BatchNormalization's gamma/beta.
"""
import ast
import inspect

import numpy as np
import pytest

import refnn.neoml as neoml
from refnn.errors import RefnnError

D = neoml.Dnn

# Spec signatures, verbatim from neoml-dnn-python-api.txt. One deliberate reading:
# ProjectionPooling's signature line shows ``original_size`` without a default, while its
# parameter list says "original_size (bool, default=False)"; refnn keeps the default.
SPEC_SIGNATURES = {
    "Conv": "(input_layers, filter_count=1, filter_size=(3, 3), stride_size=(1, 1), "
            "padding_size=(0, 0), dilation_size=(1, 1), is_zero_free_term=True, name=None)",
    "Conv3D": "(input_layers, filter_count=1, filter_size=(3, 3, 3), stride_size=(1, 1, 1), "
              "padding_size=(0, 0, 0), is_zero_free_term=False, name=None)",
    "TransposedConv3D": "(input_layers, filter_count=1, filter_size=(3, 3, 3), "
                        "stride_size=(1, 1, 1), padding_size=(0, 0, 0), "
                        "is_zero_free_term=False, name=None)",
    "TransposedConv": "(input_layers, filter_count=1, filter_size=(3, 3), stride_size=(1, 1), "
                      "padding_size=(0, 0), dilation_size=(1, 1), is_zero_free_term=False, "
                      "name=None)",
    "ChannelwiseConv": "(input_layers, filter_count, filter_size=(3, 3), stride_size=(1, 1), "
                       "padding_size=(0, 0), is_zero_free_term=False, name=None)",
    "TimeConv": "(input_layers, filter_count, filter_size, padding_front=0, padding_back=0, "
                "dilation=1, stride=1, name=None)",
    "MaxPooling": "(input_layers, filter_size=(3, 3), stride_size=(1, 1), name=None)",
    "MeanPooling": "(input_layers, filter_size=(3, 3), stride_size=(1, 1), name=None)",
    "MaxPooling3D": "(input_layers, filter_size=(3, 3, 3), stride_size=(1, 1, 1), name=None)",
    "MeanPooling3D": "(input_layers, filter_size=(3, 3, 3), stride_size=(1, 1, 1), name=None)",
    "GlobalMaxPooling": "(input_layers, max_count, name=None)",
    "GlobalMeanPooling": "(input_layers, name=None)",
    "GlobalSumPooling": "(input_layers, name=None)",
    "MaxOverTimePooling": "(input_layers, filter_len, stride_len, name=None)",
    "ProjectionPooling": "(input_layers, dimension, original_size=False, name=None)",
    "BatchNormalization": "(input_layer, channel_based=True, zero_free_term=False, "
                          "slow_convergence_rate=1.0, name=None)",
    "ObjectNormalization": "(input_layer, epsilon=1e-05, name=None)",
    "Lrn": "(input_layer, window_size=1, bias=1.0, alpha=0.0001, beta=0.75, name=None)",
    "Upsampling2D": "(input_layers, height_copy_count, width_copy_count, name=None)",
    "ImageResize": "(input_layer, deltas, default_value=0.0, name=None)",
    "Reorg": "(input_layer, stride=1, name=None)",
    "PixelToImage": "(input_layer, height, width, name=None)",
    "ImageToPixel": "(input_layer, name=None)",
}

#: constructor argument -> the property that reads it back (where the names differ)
PROPERTY_OF_ARG = {"is_zero_free_term": "zero_free_term"}

_SIZE2, _SIZE3 = {"filter_size": (2, 4), "stride_size": (3, 2)}, \
    {"filter_size": (2, 4, 3), "stride_size": (3, 1, 2)}

# name -> (required constructor args, {property: a new valid value},
#          [(property, a bad value)])
ROWS = {
    "Conv": (dict(filter_count=2),
             dict(filter_count=4, filter_size=(2, 5), stride_size=(2, 3), padding_size=(1, 2),
                  dilation_size=(2, 1), zero_free_term=False),
             [("filter_count", 0), ("filter_size", (3,)), ("stride_size", (0, 1)),
              ("padding_size", (-1, 0)), ("dilation_size", (1, 0)), ("filter_size", "x")]),
    "Conv3D": ({}, dict(filter_count=4, filter_size=(2, 3, 4), stride_size=(2, 1, 3),
                        padding_size=(1, 0, 2), zero_free_term=True),
               [("filter_count", -1), ("filter_size", (3, 3)), ("stride_size", (1, 0, 1)),
                ("padding_size", (0, 0, -2))]),
    "TransposedConv": ({}, dict(filter_count=4, filter_size=(2, 5), stride_size=(2, 3),
                                padding_size=(1, 2), dilation_size=(2, 1),
                                zero_free_term=True),
                       [("filter_count", 0), ("stride_size", (0, 0)),
                        ("dilation_size", (0, 1)), ("padding_size", (0, -1))]),
    "TransposedConv3D": ({}, dict(filter_count=4, filter_size=(2, 3, 4), stride_size=(2, 1, 3),
                                  padding_size=(1, 0, 2), zero_free_term=True),
                         [("filter_count", 0), ("filter_size", (3, 3, 0)),
                          ("stride_size", (1, 1))]),
    "ChannelwiseConv": (dict(filter_count=3),
                        dict(filter_count=4, filter_size=(2, 5), stride_size=(2, 3),
                             padding_size=(1, 2), zero_free_term=True),
                        [("filter_count", 0), ("filter_size", (0, 3)),
                         ("stride_size", (1, 0))]),
    "TimeConv": (dict(filter_count=3, filter_size=2),
                 dict(filter_count=4, filter_size=5, padding_front=1, padding_back=2,
                      dilation=3, stride=2),
                 [("filter_count", 0), ("filter_size", 0), ("padding_front", -1),
                  ("padding_back", -1), ("dilation", 0), ("stride", 0), ("stride", 1.5)]),
    "MaxPooling": ({}, dict(_SIZE2, filter_height=5, filter_width=1, stride_height=4,
                            stride_width=2),
                   [("filter_size", (0, 2)), ("stride_size", (1, 0)), ("filter_height", 0),
                    ("filter_width", 1.5), ("stride_height", -1), ("stride_width", True)]),
    "MeanPooling": ({}, dict(_SIZE2, filter_height=5, filter_width=1, stride_height=4,
                             stride_width=2),
                    [("filter_size", (2, 2, 2)), ("stride_height", 0),
                     ("filter_width", "3")]),
    "MaxPooling3D": ({}, dict(_SIZE3, filter_height=5, filter_width=1, filter_depth=2,
                              stride_height=4, stride_width=2, stride_depth=3),
                     [("filter_size", (2, 2)), ("filter_depth", 0), ("stride_depth", 0)]),
    "MeanPooling3D": ({}, dict(_SIZE3, filter_depth=2, stride_depth=3),
                      [("stride_size", (1, 1, 0)), ("filter_depth", -3)]),
    "GlobalMaxPooling": (dict(max_count=2), dict(max_count=3),
                         [("max_count", 0), ("max_count", 1.5)]),
    "GlobalMeanPooling": ({}, {}, []),
    "GlobalSumPooling": ({}, {}, []),
    "MaxOverTimePooling": (dict(filter_len=2, stride_len=1), dict(filter_len=4, stride_len=3),
                           [("stride_len", 0), ("filter_len", "x")]),
    "ProjectionPooling": (dict(dimension="width"),
                          dict(dimension="channels", original_size=True),
                          [("dimension", "colour"), ("dimension", 3)]),
    "BatchNormalization": ({}, dict(channel_based=False, zero_free_term=True,
                                    slow_convergence_rate=0.5,
                                    use_final_params_for_init=True),
                           [("slow_convergence_rate", 0), ("slow_convergence_rate", 1.5),
                            ("slow_convergence_rate", "x")]),
    "ObjectNormalization": ({}, dict(epsilon=1e-3), [("epsilon", "x"), ("epsilon", -1.0)]),
    "Lrn": ({}, dict(window_size=3, bias=2.0, alpha=0.01, beta=0.5),
            [("window_size", 0), ("bias", "x"), ("alpha", None)]),
    "Upsampling2D": (dict(height_copy_count=2, width_copy_count=3),
                     dict(height_copy_count=4, width_copy_count=5),
                     [("height_copy_count", 0), ("width_copy_count", -2)]),
    "ImageResize": (dict(deltas=(1, 1, 1, 1)), dict(deltas=(2, -1, 0, 3), default_value=1.5),
                    [("deltas", (1, 2, 3)), ("deltas", "x"), ("default_value", "x")]),
    "Reorg": ({}, dict(stride=2), [("stride", 0), ("stride", 2.0)]),
    "PixelToImage": (dict(height=3, width=4), dict(height=5, width=6),
                     [("height", 0), ("width", -1)]),
    "ImageToPixel": ({}, {}, []),
}

TWO_INPUTS = ("PixelToImage", "ImageToPixel")


def _layer(engine, name, **override):
    dnn = D.Dnn(engine)
    src = D.Source(dnn, "x")
    inputs = [src, D.Source(dnn, "idx")] if name in TWO_INPUTS else src
    args = dict(ROWS[name][0], **override)
    return getattr(D, name)(inputs, name="L_" + name, **args)


def _parse(sig):
    args = ast.parse(f"def f{sig}: pass").body[0].args
    names = [a.arg for a in args.args]
    defaults = [ast.literal_eval(d) for d in args.defaults]
    return names, dict(zip(names[len(names) - len(defaults):], defaults))


def test_the_table_covers_every_layer_of_the_issue():
    assert set(ROWS) == set(SPEC_SIGNATURES)
    for name in ROWS:
        assert issubclass(getattr(D, name), D.Layer)


@pytest.mark.parametrize("name", sorted(SPEC_SIGNATURES))
def test_constructor_matches_the_spec_signature(name):
    names, defaults = _parse(SPEC_SIGNATURES[name])
    params = list(inspect.signature(getattr(D, name).__init__).parameters.values())[1:]
    assert [p.name for p in params] == names
    got = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    assert got == defaults


@pytest.mark.parametrize("name", sorted(SPEC_SIGNATURES))
def test_defaults_read_back_through_the_properties(engine, name):
    layer = _layer(engine, name)
    _, defaults = _parse(SPEC_SIGNATURES[name])
    required = ROWS[name][0]
    checked = 0
    for arg, value in dict(defaults, **required).items():
        prop = PROPERTY_OF_ARG.get(arg, arg)
        if arg == "name" or not hasattr(type(layer), prop):
            continue
        got = getattr(layer, prop)
        assert (tuple(got) if isinstance(value, tuple) else got) == value, (prop, got)
        checked += 1
    assert layer.name == "L_" + name
    assert checked == len([a for a in dict(defaults, **required) if a != "name"]), \
        "every constructor argument has a property"


@pytest.mark.parametrize("name", sorted(n for n in ROWS if ROWS[n][1]))
def test_every_property_is_settable_and_reads_back(engine, name):
    layer = _layer(engine, name)
    for prop, value in ROWS[name][1].items():
        setattr(layer, prop, value)
        got = getattr(layer, prop)
        assert (tuple(got) if isinstance(value, tuple) else got) == value, (prop, got)


@pytest.mark.parametrize("name,prop,bad", [(n, p, b) for n in sorted(ROWS)
                                           for p, b in ROWS[n][2]])
def test_bad_property_values_raise_errors_naming_the_layer(engine, name, prop, bad):
    layer = _layer(engine, name)
    before = getattr(layer, prop)
    with pytest.raises(RefnnError, match=f"{name} 'L_{name}'.*{prop}"):
        setattr(layer, prop, bad)
    assert getattr(layer, prop) == before, "a rejected value leaves the property unchanged"


@pytest.mark.parametrize("name,prop,bad", [(n, p, b) for n in sorted(ROWS)
                                           for p, b in ROWS[n][2]
                                           if p in inspect.signature(
                                               getattr(D, n).__init__).parameters])
def test_bad_constructor_values_raise_errors_naming_the_layer(engine, name, prop, bad):
    with pytest.raises(RefnnError, match=f"{name} 'L_{name}'.*{prop}"):
        _layer(engine, name, **{prop: bad})


def test_pooling_window_components_drive_the_output():
    """Setting filter_height/stride_width (NeoML's component properties) changes the
    pooling geometry, not only the value read back."""
    engine = neoml.MathEngine.ReferenceMathEngine()
    layer = _layer(engine, "MaxPooling", filter_size=(2, 2), stride_size=(1, 1))
    neoml.Dnn.Sink(layer, name="out")
    layer.filter_height, layer.stride_width = 3, 2
    assert layer.filter_size == (3, 2) and layer.stride_size == (1, 2)
    x = np.random.default_rng(0).normal(size=(1, 2, 1, 5, 6, 1, 3)).astype(np.float32)
    y = layer._dnn.run({"x": neoml.Blob.asblob(engine, x, x.shape, copy=True)})["out"]
    assert tuple(y.shape) == (1, 2, 1, 3, 3, 1, 3)
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 2), axis=(3, 4))
    np.testing.assert_allclose(y.asarray(keep_dims=True),
                               windows[:, :, :, :, ::2].max(axis=(-2, -1)))


# ------------------------------------------------------------------ blob properties
# name -> (constructor overrides, {property: the blob shape NeoML gives it})
BLOB_ROWS = {
    "Conv": (dict(filter_count=4, filter_size=(2, 3)),
             {"filter": (1, 4, 1, 2, 3, 1, 5), "free_term": (4, 1, 1, 1, 1, 1, 1)}),
    "Conv3D": (dict(filter_count=4, filter_size=(2, 3, 2)),
               {"filter": (1, 4, 1, 2, 3, 2, 5), "free_term": (4, 1, 1, 1, 1, 1, 1)}),
    "TransposedConv": (dict(filter_count=4, filter_size=(2, 3)),
                       {"filter": (1, 5, 1, 2, 3, 1, 4), "free_term": (4, 1, 1, 1, 1, 1, 1)}),
    "TransposedConv3D": (dict(filter_count=4, filter_size=(2, 3, 2)),
                         {"filter": (1, 5, 1, 2, 3, 2, 4),
                          "free_term": (4, 1, 1, 1, 1, 1, 1)}),
    "ChannelwiseConv": (dict(filter_count=5, filter_size=(2, 3)),
                        {"filter": (1, 1, 1, 2, 3, 1, 5), "free_term": (5, 1, 1, 1, 1, 1, 1)}),
    "TimeConv": (dict(filter_count=4, filter_size=3),
                 {"filter": (1, 4, 1, 3, 1, 1, 6), "free_term": (4, 1, 1, 1, 1, 1, 1)}),
    "BatchNormalization": ({}, {"final_params": (1, 2, 1, 1, 1, 1, 5)}),
    "ObjectNormalization": ({}, {"scale": (1, 1, 1, 2, 3, 1, 5),
                                 "bias": (1, 1, 1, 2, 3, 1, 5)}),
}


def _blob(engine, shape, seed=0):
    a = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return neoml.Blob.asblob(engine, a, shape, copy=True)


@pytest.mark.parametrize("name", sorted(BLOB_ROWS))
def test_blob_properties_set_and_read_back(engine, name):
    overrides, props = BLOB_ROWS[name]
    layer = _layer(engine, name, **overrides)
    for i, (prop, shape) in enumerate(props.items()):
        assert getattr(layer, prop) is None, "empty before the first run (NeoML)"
        blob = _blob(engine, shape, i)
        setattr(layer, prop, blob)
        got = getattr(layer, prop)
        assert tuple(int(v) for v in got.shape) == shape
        np.testing.assert_array_equal(got.asarray(keep_dims=True), blob.asarray(keep_dims=True))
        where = f"{name} 'L_{name}'.*{prop}"
        with pytest.raises(RefnnError, match=where + ".*must be a neoml Blob"):
            setattr(layer, prop, np.zeros(shape, np.float32))
        with pytest.raises(RefnnError, match=where):
            setattr(layer, prop, _blob(engine, (1, 1, 1, 1, 1, 1, 7)))
        np.testing.assert_array_equal(getattr(layer, prop).asarray(keep_dims=True),
                                      blob.asarray(keep_dims=True))


# ------------------------------------------------------------------ output shapes
# name -> (constructor overrides, input blob shape, the spec's output shape)
SHAPE_ROWS = {
    # Height = (2 p + H - (1 + d (k - 1))) / s + 1; Depth * Channels are the channels
    "Conv": (dict(filter_count=4, filter_size=(3, 2), stride_size=(2, 1), padding_size=(1, 0),
                  dilation_size=(1, 2)), (1, 2, 1, 7, 6, 2, 3), (1, 2, 1, 4, 4, 1, 4)),
    "Conv3D": (dict(filter_count=4, filter_size=(3, 2, 2), stride_size=(2, 1, 2),
                    padding_size=(1, 0, 1)), (2, 1, 1, 7, 6, 5, 3), (2, 1, 1, 4, 5, 3, 4)),
    # Height = s (H - 1) + (k - 1) d + 1 - 2 p
    "TransposedConv": (dict(filter_count=4, filter_size=(3, 2), stride_size=(2, 1),
                            padding_size=(1, 0), dilation_size=(1, 2)),
                       (1, 2, 1, 4, 3, 2, 3), (1, 2, 1, 7, 5, 1, 4)),
    "TransposedConv3D": (dict(filter_count=4, filter_size=(3, 2, 2), stride_size=(2, 1, 2),
                              padding_size=(1, 0, 1)),
                         (1, 2, 1, 4, 3, 3, 3), (1, 2, 1, 7, 4, 4, 4)),
    "ChannelwiseConv": (dict(filter_count=6, filter_size=(3, 2), stride_size=(2, 1),
                             padding_size=(1, 1)), (1, 2, 1, 7, 6, 2, 3), (1, 2, 1, 4, 7, 1, 6)),
    # BatchLength = (pf + pb + T - (1 + d (k - 1))) / s + 1
    "TimeConv": (dict(filter_count=3, filter_size=3, padding_front=1, padding_back=2,
                      dilation=2, stride=2), (9, 2, 1, 2, 1, 1, 5), (4, 2, 1, 1, 1, 1, 3)),
    "MaxPooling": (dict(filter_size=(3, 2), stride_size=(2, 2)), (1, 2, 1, 7, 6, 2, 3),
                   (1, 2, 1, 3, 3, 2, 3)),
    "MeanPooling": (dict(filter_size=(3, 2), stride_size=(2, 2)), (1, 2, 1, 7, 6, 1, 3),
                    (1, 2, 1, 3, 3, 1, 3)),
    "MaxPooling3D": (dict(filter_size=(3, 2, 2), stride_size=(2, 2, 1)),
                     (1, 2, 1, 7, 6, 4, 3), (1, 2, 1, 3, 3, 3, 3)),
    "MeanPooling3D": (dict(filter_size=(3, 2, 2), stride_size=(2, 2, 1)),
                      (1, 2, 1, 7, 6, 4, 3), (1, 2, 1, 3, 3, 3, 3)),
    "GlobalMaxPooling": (dict(max_count=2), (1, 2, 1, 3, 4, 2, 5), (1, 2, 1, 1, 2, 1, 5)),
    "GlobalMeanPooling": ({}, (1, 2, 1, 3, 4, 2, 5), (1, 2, 1, 1, 1, 1, 5)),
    "GlobalSumPooling": ({}, (1, 2, 1, 3, 4, 2, 5), (1, 2, 1, 1, 1, 1, 5)),
    "MaxOverTimePooling": (dict(filter_len=3, stride_len=2), (8, 2, 1, 1, 2, 1, 5),
                           (3, 2, 1, 1, 2, 1, 5)),
    "ProjectionPooling": (dict(dimension="width"), (1, 2, 1, 3, 4, 1, 5),
                          (1, 2, 1, 3, 1, 1, 5)),
    "BatchNormalization": ({}, (1, 2, 1, 3, 4, 1, 5), (1, 2, 1, 3, 4, 1, 5)),
    "ObjectNormalization": ({}, (1, 2, 1, 3, 4, 1, 5), (1, 2, 1, 3, 4, 1, 5)),
    "Lrn": (dict(window_size=3), (1, 2, 1, 3, 4, 1, 5), (1, 2, 1, 3, 4, 1, 5)),
    "Upsampling2D": (dict(height_copy_count=2, width_copy_count=3), (1, 2, 1, 3, 4, 2, 5),
                     (1, 2, 1, 6, 12, 2, 5)),
    # Height + top + bottom, Width + left + right; deltas = (left, right, top, bottom)
    "ImageResize": (dict(deltas=(1, -2, 3, 0)), (1, 2, 1, 3, 4, 2, 5), (1, 2, 1, 6, 3, 2, 5)),
    "Reorg": (dict(stride=2), (1, 2, 1, 4, 6, 1, 4), (1, 2, 1, 2, 3, 1, 16)),
}


@pytest.mark.parametrize("name", sorted(SHAPE_ROWS))
def test_output_shape_is_the_spec_formula(engine, name):
    overrides, shape, expected = SHAPE_ROWS[name]
    layer = _layer(engine, name, **overrides)
    D.Sink(layer, name="out")
    y = layer._dnn.run({"x": _blob(engine, shape)})["out"]
    assert tuple(int(v) for v in y.shape) == expected


def test_pixel_layers_output_shapes(engine):
    """PixelToImage: (1, B, L, 1, 1, 1, C) pixels + (1, B, L, 1, 1, 1, 1) int indices ->
    (1, B, 1, height, width, 1, C); ImageToPixel the way back."""
    dnn = D.Dnn(engine)
    pix, idx = D.Source(dnn, "pix"), D.Source(dnn, "idx")
    p2i = D.PixelToImage([pix, idx], 3, 4, name="p2i")
    i2p = D.ImageToPixel([p2i, idx], name="i2p")
    D.Sink(p2i, name="image")
    D.Sink(i2p, name="pixels")
    idx_np = np.array([[0, 5, 11], [2, 3, 7]], np.int32).reshape(1, 2, 3, 1, 1, 1, 1)
    out = dnn.run({"pix": _blob(engine, (1, 2, 3, 1, 1, 1, 5)),
                   "idx": neoml.Blob.asblob(engine, idx_np, idx_np.shape, copy=True)})
    assert tuple(int(v) for v in out["image"].shape) == (1, 2, 1, 3, 4, 1, 5)
    assert tuple(int(v) for v in out["pixels"].shape) == (1, 2, 3, 1, 1, 1, 5)
    np.testing.assert_array_equal(out["pixels"].asarray(keep_dims=True),
                                  _blob(engine, (1, 2, 3, 1, 1, 1, 5)).asarray(keep_dims=True))


# ------------------------------------------------------------------ regularisation
def _bn_net(engine, solver):
    """Source -> BatchNormalization -> FullyConnected(1) -> EuclideanLoss."""
    dnn = D.Dnn(engine, neoml.Random.Random(5))
    x, t = D.Source(dnn, "x"), D.Source(dnn, "t")
    bn = D.BatchNormalization(x, name="bn")
    fc = D.FullyConnected(bn, 1, name="fc")
    D.EuclideanLoss((fc, t), name="loss")
    dnn.solver = solver
    return dnn, bn, fc


@pytest.mark.parametrize("solver", ["SimpleGradient", "AdaptiveGradient",
                                    "NesterovGradient", "decoupled"])
def test_solver_regularisation_skips_batch_norm_gamma_beta(engine, solver):
    """NeoML's CBatchNormalizationLayer sets its base l1/l2 multipliers to 0: with
    l1 = l2 > 0 gamma and beta follow exactly the unregularised path, while the
    FullyConnected behind it is regularised."""
    rng = np.random.default_rng(1)
    x = rng.normal(0.5, 2, (1, 12, 1, 1, 1, 1, 3)).astype(np.float32)
    t = rng.normal(0, 0.3, (1, 12, 1, 1, 1, 1, 1)).astype(np.float32)
    cls = getattr(D, "AdaptiveGradient" if solver == "decoupled" else solver)
    extra = {"decoupled_weight_decay": True} if solver == "decoupled" else {}
    results = []
    for l1, l2 in ((0.0, 0.0), (0.3, 0.7)):
        dnn, bn, fc = _bn_net(engine, cls(engine, learning_rate=0.1, l1=l1, l2=l2, **extra))
        fc.weights = neoml.Blob.asblob(engine, np.array([[0.8, -0.6, 0.4]], np.float32),
                                       (1, 1, 1, 1, 1, 1, 3), copy=True)
        fc.free_term = neoml.Blob.asblob(engine, np.array([0.2], np.float32), (1,) * 7,
                                         copy=True)
        be = engine.backend
        # one step: gamma/beta's gradient depends on the (then identical) FC weights
        dnn.learn({"x": neoml.Blob.asblob(engine, x, x.shape, copy=True),
                   "t": neoml.Blob.asblob(engine, t, t.shape, copy=True)})
        results.append(({k: be.to_host(v).copy() for k, v in bn._params.items()},
                        fc.weights.asarray(copy=True)))
    (bn0, fc0), (bn1, fc1) = results
    assert set(bn0) == {"gamma", "beta"}
    assert not np.allclose(bn0["gamma"], 1.0, atol=1e-3), "gamma learned something"
    for k in bn0:
        np.testing.assert_allclose(bn1[k], bn0[k], rtol=1e-6, atol=1e-7, err_msg=k)
    assert not np.allclose(fc1, fc0, atol=1e-3), "the FullyConnected weights are regularised"


def test_batch_norm_regularisation_multipliers_are_neoml_s():
    assert (D.BatchNormalization._l1_mult, D.BatchNormalization._l2_mult) == (0.0, 0.0)
    for name in ("Conv", "FullyConnected", "ObjectNormalization"):
        assert getattr(getattr(D, name), "_l1_mult", 1.0) == 1.0
        assert getattr(getattr(D, name), "_l2_mult", 1.0) == 1.0


# ------------------------------------------------------------------ apply_batch_normalization
# name -> (constructor overrides, input shape); the spec gives the method to all five
FOLD_ROWS = {
    "Conv": (dict(filter_count=3, filter_size=(2, 2), padding_size=(1, 0)),
             (1, 2, 1, 4, 3, 1, 2)),
    "Conv3D": (dict(filter_count=3, filter_size=(2, 2, 2), padding_size=(0, 1, 0)),
               (1, 2, 1, 3, 3, 3, 2)),
    "TransposedConv": (dict(filter_count=3, filter_size=(2, 3), stride_size=(2, 1)),
                       (1, 2, 1, 2, 3, 1, 2)),
    "TransposedConv3D": (dict(filter_count=3, filter_size=(2, 2, 2), stride_size=(1, 2, 1)),
                         (1, 2, 1, 2, 2, 2, 2)),
    "ChannelwiseConv": (dict(filter_count=3, filter_size=(2, 2), padding_size=(1, 1)),
                        (1, 2, 1, 3, 3, 1, 3)),
}


def _of(engine, a):
    return neoml.Blob.asblob(engine, a, a.shape, copy=True)


@pytest.mark.parametrize("name", sorted(FOLD_ROWS))
def test_apply_batch_normalization_folds_into_every_conv(engine, name):
    """conv -> channel-based BatchNormalization in run mode == the folded conv alone
    (NeoML's apply_batch_normalization, listed by the spec for every conv layer)."""
    overrides, shape = FOLD_ROWS[name]
    rng = np.random.default_rng(11)
    dnn = D.Dnn(engine, neoml.Random.Random(3))
    src = D.Source(dnn, "x")
    conv = getattr(D, name)(src, name="conv", **dict(overrides, is_zero_free_term=False))
    bn = D.BatchNormalization(conv, name="bn")
    sink = D.Sink(bn, name="out")
    x = rng.normal(0, 1, shape).astype(np.float32)
    dnn.run_and_backward({"x": _of(engine, x)})       # learn-mode statistics
    be = engine.backend
    conv._params["free_term"] = be.asarray(rng.normal(0, 1, 3).astype(np.float32))
    bn._params["gamma"] = be.asarray(rng.uniform(0.5, 2, 3).astype(np.float32))
    bn._params["beta"] = be.asarray(rng.normal(0, 1, 3).astype(np.float32))
    bn._final_dirty = True
    before = dnn.run({"x": _of(engine, x)})["out"].asarray(copy=True)
    conv.apply_batch_normalization(bn)
    dnn.delete_layer(bn)
    sink.connect(conv)
    after = dnn.run({"x": _of(engine, x)})["out"].asarray(copy=True)
    assert not np.allclose(before, x.mean()), "the batch norm did something"
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(FOLD_ROWS))
def test_apply_batch_normalization_errors_name_the_layer(engine, name):
    dnn = D.Dnn(engine)
    src = D.Source(dnn, "x")
    conv = getattr(D, name)(src, name="conv", **FOLD_ROWS[name][0])
    with pytest.raises(RefnnError, match=f"{name} 'conv'.*apply_batch_normalization"):
        conv.apply_batch_normalization(D.ReLU(conv, name="relu"))
    with pytest.raises(RefnnError, match=f"{name} 'conv'.*run the network first"):
        conv.apply_batch_normalization(D.BatchNormalization(conv, name="bn"))
