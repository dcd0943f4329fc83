"""TransposedConv and TransposedConv3D: NeoML's transposed ("de-") convolutions on
refnn's ``conv_transpose2d`` / ``conv_transpose3d`` ops.

The transposed convolution is the adjoint of the convolution with the same filters
(see refnn.ops.conv): every input pixel spreads its channels, weighted by the filter,
over a kernel-sized window of the output, windows ``stride`` apart. NeoML stores the
filter as a blob (1, C_in, 1, kh, kw, kd, F) -- C_in = the input's channels (in 2-D:
Depth*Channels), F = filter_count, the output channels -- which is the op's filter
(C_in, F, kh, kw[, kd]) with the channels moved last. Blobs are channels-last; the
shared body (``_ConvLayer`` in _conv.py) transposes to the op's NC... layout at the
edge. Output size per axis: s (size - 1) + d (k - 1) + 1 - 2 p (NeoML has no
output_padding). The initializer's fan-in is the filter blob's object size,
kh*kw*kd*F, as in NeoML.
"""
from refnn.neoml.Dnn._conv import Conv, _ConvLayer


class TransposedConv(_ConvLayer):
    """``TransposedConv(input_layers, filter_count=1, filter_size=(3, 3),
    stride_size=(1, 1), padding_size=(0, 0), dilation_size=(1, 1),
    is_zero_free_term=False, name=None)``: inputs (BL, BW, LS, H, W, D, C) with
    D*C = C_in channels -> outputs (BL, BW, LS, Ho, Wo, 1, F),
    Ho = sh (H - 1) + dh (kh - 1) + 1 - 2 ph. Filter blob (1, C_in, 1, kh, kw, 1, F)."""

    OPS = ("conv_transpose2d", "bias")
    ND, OP, TRANSPOSED, HAS_DILATION = 2, "conv_transpose2d", True, True

    def __init__(self, input_layers, filter_count=1, filter_size=(3, 3), stride_size=(1, 1),
                 padding_size=(0, 0), dilation_size=(1, 1), is_zero_free_term=False,
                 name=None):
        super().__init__(input_layers, filter_count, filter_size, stride_size, padding_size,
                         dilation_size, is_zero_free_term, name)

    dilation_size = Conv.dilation_size


class TransposedConv3D(_ConvLayer):
    """``TransposedConv3D(input_layers, filter_count=1, filter_size=(3, 3, 3),
    stride_size=(1, 1, 1), padding_size=(0, 0, 0), is_zero_free_term=False, name=None)``:
    inputs (BL, BW, LS, H, W, D, C_in) -> outputs (BL, BW, LS, Ho, Wo, Do, F),
    Ho = sh (H - 1) + kh - 2 ph per axis. Filter blob (1, C_in, 1, kh, kw, kd, F)."""

    OPS = ("conv_transpose3d", "bias")
    ND, OP, TRANSPOSED, HAS_DILATION = 3, "conv_transpose3d", True, False

    def __init__(self, input_layers, filter_count=1, filter_size=(3, 3, 3),
                 stride_size=(1, 1, 1), padding_size=(0, 0, 0), is_zero_free_term=False,
                 name=None):
        super().__init__(input_layers, filter_count, filter_size, stride_size, padding_size,
                         1, is_zero_free_term, name)
