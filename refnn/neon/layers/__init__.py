"""neon.layers: Layer, ParameterLayer, CompoundLayer, the MLP layers and containers."""
from refnn.neon.layers.layer import (Layer, ParameterLayer, CompoundLayer, Linear, Bias,
                                     Affine, Activation, Dropout, GeneralizedCost)
from refnn.neon.layers.convolution import Convolution, Conv
from refnn.neon.layers.convolution import Deconvolution, Deconv
from refnn.neon.layers.pooling import Pooling
from refnn.neon.layers.layer import DataTransform
from refnn.neon.layers.normalization import BatchNorm, LRN
from refnn.neon.layers.container import LayerContainer, Sequential
from refnn.neon.layers.recurrent import (Recurrent, LSTM, GRU, BiRNN, BiLSTM, DeepBiRNN,
                                         DeepBiLSTM, RecurrentOutput, RecurrentSum,
                                         RecurrentMean, RecurrentLast, LookupTable)

__all__ = ["Layer", "ParameterLayer", "CompoundLayer", "Linear", "Bias", "Affine",
           "Activation", "Dropout", "GeneralizedCost", "Convolution", "Conv", "Pooling",
           "Deconvolution", "Deconv",
           "LayerContainer", "DataTransform", "BatchNorm", "LRN",
           "Sequential",
           "Recurrent", "LSTM", "GRU", "BiRNN", "BiLSTM", "DeepBiRNN", "DeepBiLSTM",
           "RecurrentOutput", "RecurrentSum", "RecurrentMean", "RecurrentLast",
           "LookupTable"]
