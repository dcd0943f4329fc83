"""neoml.Dnn: the network, its layers, initializers and solvers (refnn's NeoML facade).

Layers here own NeoML's conventions (7-D blobs, channels last, NeoML's weight shapes)
and compute only through refnn ops (``be.op("linear.forward")``); each class lists
its ops in ``OPS``.
"""
from refnn.neoml.Dnn._dnn import Dnn
from refnn.neoml.Dnn._layer import Layer, Source, Sink
from refnn.neoml.Dnn._fully_connected import FullyConnected
from refnn.neoml.Dnn._conv import Conv
from refnn.neoml.Dnn._normalization import BatchNormalization, ObjectNormalization, Lrn
from refnn.neoml.Dnn._conv import Conv3D
from refnn.neoml.Dnn._transposed_conv import TransposedConv, TransposedConv3D
from refnn.neoml.Dnn._channelwise_conv import ChannelwiseConv
from refnn.neoml.Dnn._time_conv import TimeConv
from refnn.neoml.Dnn._pooling import (
    MaxPooling, MeanPooling, GlobalMaxPooling, GlobalMeanPooling, GlobalSumPooling)
from refnn.neoml.Dnn._pooling import (
    MaxPooling3D, MeanPooling3D, MaxOverTimePooling, ProjectionPooling)
from refnn.neoml.Dnn._activation import (
    Linear, ELU, ReLU, LeakyReLU, HSwish, GELU, Abs, Sigmoid, Tanh, HardTanh, HardSigmoid,
    Power, Exp, Log, Erf, Softmax, Dropout)
from refnn.neoml.Dnn._loss import (
    CrossEntropyLoss, BinaryCrossEntropyLoss, EuclideanLoss, Accuracy,
    CustomLossCalculatorBase)
from refnn.neoml.Dnn._initializer import Initializer, Xavier, XavierUniform, Uniform
from refnn.neoml.Dnn._solver import Solver, SimpleGradient, AdaptiveGradient, NesterovGradient
from refnn.neoml.Dnn._image import (
    Upsampling2D, ImageResize, Reorg, PixelToImage, ImageToPixel)
from refnn.neoml.Dnn._recurrent import Lstm, Gru, Irnn, IndRnn, Qrnn
from refnn.neoml.Dnn._sequence import SubSequence, ReverseSequence, SequenceSum, CumSum
from refnn.neoml.Dnn._embedding import (
    MultichannelLookup, AccumulativeLookup, PositionalEmbedding, TiedEmbeddings)
from refnn.neoml.Dnn._attention import AttentionDecoder, MultiheadAttention

#: every layer class of the facade (read by ``refnn coverage`` via their ``OPS``)
LAYERS = (Source, Sink, FullyConnected, Conv, Conv3D, TransposedConv, TransposedConv3D,
          ChannelwiseConv, TimeConv,
          MaxPooling, MeanPooling, GlobalMaxPooling,
          GlobalMeanPooling, GlobalSumPooling, MaxPooling3D, MeanPooling3D,
          MaxOverTimePooling, ProjectionPooling, Linear, ELU, ReLU, LeakyReLU, HSwish, GELU, Abs,
          Sigmoid, Tanh, HardTanh, HardSigmoid, Power, Exp, Log, Erf, Softmax, Dropout,
          BatchNormalization, ObjectNormalization, Lrn,
          CrossEntropyLoss, BinaryCrossEntropyLoss, EuclideanLoss, Accuracy,
          Upsampling2D, ImageResize, Reorg, PixelToImage, ImageToPixel,
          Lstm, Gru, Irnn, IndRnn, Qrnn, SubSequence, ReverseSequence, SequenceSum, CumSum,
          MultichannelLookup, AccumulativeLookup, PositionalEmbedding, TiedEmbeddings,
          MultiheadAttention, AttentionDecoder)

__all__ = [c.__name__ for c in LAYERS] + [
    "Dnn", "Layer", "CustomLossCalculatorBase", "Initializer", "Xavier", "XavierUniform",
    "Uniform", "Solver", "SimpleGradient", "AdaptiveGradient", "NesterovGradient", "LAYERS"]
