"""The reference backend: NumPy arrays, and the op functions of refnn.ops themselves.

It runs in whatever floating dtype it is created with (float64 for gradient checks).
The table below is the whole dispatch: op name -> the readable function in refnn.ops.
"""
from refnn.backends.base import HostBackend
from refnn.ops import activation, dense, loss, optim
from refnn.ops import pool
from refnn.ops import conv
from refnn.ops import channelwise
from refnn.ops import recurrent
from refnn.ops import norm
from refnn.ops import embedding, sequence
from refnn.ops import image
from refnn.ops import attention

KERNELS = {
    # --- dense (linear, bias)
    "linear.forward": dense.linear_forward,
    "linear.backward": dense.linear_backward,
    "bias.forward": dense.bias_forward,
    "bias.backward": dense.bias_backward,
    # --- activation
    "identity.forward": activation.identity_forward,
    "identity.backward": activation.identity_backward,
    "relu.forward": activation.relu_forward,
    "relu.backward": activation.relu_backward,
    "leaky_relu.forward": activation.leaky_relu_forward,
    "leaky_relu.backward": activation.leaky_relu_backward,
    "elu.forward": activation.elu_forward,
    "elu.backward": activation.elu_backward,
    "sigmoid.forward": activation.sigmoid_forward,
    "sigmoid.backward": activation.sigmoid_backward,
    "tanh.forward": activation.tanh_forward,
    "tanh.backward": activation.tanh_backward,
    "hard_sigmoid.forward": activation.hard_sigmoid_forward,
    "hard_sigmoid.backward": activation.hard_sigmoid_backward,
    "hard_tanh.forward": activation.hard_tanh_forward,
    "hard_tanh.backward": activation.hard_tanh_backward,
    "hswish.forward": activation.hswish_forward,
    "hswish.backward": activation.hswish_backward,
    "gelu.forward": activation.gelu_forward,
    "gelu.backward": activation.gelu_backward,
    "abs.forward": activation.abs_forward,
    "abs.backward": activation.abs_backward,
    "power.forward": activation.power_forward,
    "power.backward": activation.power_backward,
    "exp.forward": activation.exp_forward,
    "exp.backward": activation.exp_backward,
    "log.forward": activation.log_forward,
    "log.backward": activation.log_backward,
    "erf.forward": activation.erf_forward,
    "erf.backward": activation.erf_backward,
    "linear_activation.forward": activation.linear_activation_forward,
    "linear_activation.backward": activation.linear_activation_backward,
    "normalizer.forward": activation.normalizer_forward,
    "normalizer.backward": activation.normalizer_backward,
    "softmax.forward": activation.softmax_forward,
    "softmax.backward": activation.softmax_backward,
    "dropout.forward": activation.dropout_forward,
    "dropout.backward": activation.dropout_backward,
    # --- loss
    "cross_entropy_multi.forward": loss.cross_entropy_multi_forward,
    "cross_entropy_multi.backward": loss.cross_entropy_multi_backward,
    "cross_entropy_binary.forward": loss.cross_entropy_binary_forward,
    "cross_entropy_binary.backward": loss.cross_entropy_binary_backward,
    "sum_squared.forward": loss.sum_squared_forward,
    "sum_squared.backward": loss.sum_squared_backward,
    "mean_squared.forward": loss.mean_squared_forward,
    "mean_squared.backward": loss.mean_squared_backward,
    "cross_entropy.forward": loss.cross_entropy_forward,
    "cross_entropy.backward": loss.cross_entropy_backward,
    "binary_cross_entropy.forward": loss.binary_cross_entropy_forward,
    "binary_cross_entropy.backward": loss.binary_cross_entropy_backward,
    "euclidean.forward": loss.euclidean_forward,
    "euclidean.backward": loss.euclidean_backward,
    # --- recurrent (time-major (T, N, I))
    "rnn.forward": recurrent.rnn_forward,
    "rnn.backward": recurrent.rnn_backward,
    "lstm.forward": recurrent.lstm_forward,
    "lstm.backward": recurrent.lstm_backward,
    "gru.forward": recurrent.gru_forward,
    "gru.backward": recurrent.gru_backward,
    "indrnn.forward": recurrent.indrnn_forward,
    "indrnn.backward": recurrent.indrnn_backward,
    "qrnn.forward": recurrent.qrnn_forward,
    "qrnn.backward": recurrent.qrnn_backward,
    # --- channelwise
    "channelwise_conv2d.forward": channelwise.channelwise_conv2d_forward,
    "channelwise_conv2d.backward": channelwise.channelwise_conv2d_backward,
    "time_conv.forward": channelwise.time_conv_forward,
    "time_conv.backward": channelwise.time_conv_backward,
    # --- conv
    "conv2d.forward": conv.conv2d_forward,
    "conv2d.backward": conv.conv2d_backward,
    "conv3d.forward": conv.conv3d_forward,
    "conv3d.backward": conv.conv3d_backward,
    "conv_transpose2d.forward": conv.conv_transpose2d_forward,
    "conv_transpose2d.backward": conv.conv_transpose2d_backward,
    "conv_transpose3d.forward": conv.conv_transpose3d_forward,
    "conv_transpose3d.backward": conv.conv_transpose3d_backward,
    # --- pool (NCHW)
    "max_pool2d.forward": pool.max_pool2d_forward,
    "max_pool2d.backward": pool.max_pool2d_backward,
    "avg_pool2d.forward": pool.avg_pool2d_forward,
    "avg_pool2d.backward": pool.avg_pool2d_backward,
    "global_max_pool.forward": pool.global_max_pool_forward,
    "global_max_pool.backward": pool.global_max_pool_backward,
    "global_mean_pool.forward": pool.global_mean_pool_forward,
    "global_mean_pool.backward": pool.global_mean_pool_backward,
    "global_sum_pool.forward": pool.global_sum_pool_forward,
    "global_sum_pool.backward": pool.global_sum_pool_backward,
    "max_pool3d.forward": pool.max_pool3d_forward,
    "max_pool3d.backward": pool.max_pool3d_backward,
    "avg_pool3d.forward": pool.avg_pool3d_forward,
    "avg_pool3d.backward": pool.avg_pool3d_backward,
    "global_max_pool_topk.forward": pool.global_max_pool_topk_forward,
    "global_max_pool_topk.backward": pool.global_max_pool_topk_backward,
    "max_over_time.forward": pool.max_over_time_forward,
    "max_over_time.backward": pool.max_over_time_backward,
    "projection_pool.forward": pool.projection_pool_forward,
    "projection_pool.backward": pool.projection_pool_backward,
    # --- norm
    "batch_norm.forward": norm.batch_norm_forward,
    "batch_norm.backward": norm.batch_norm_backward,
    "batch_norm_infer.forward": norm.batch_norm_infer_forward,
    "batch_norm_infer.backward": norm.batch_norm_infer_backward,
    "layer_norm.forward": norm.layer_norm_forward,
    "layer_norm.backward": norm.layer_norm_backward,
    "lrn.forward": norm.lrn_forward,
    "lrn.backward": norm.lrn_backward,
    # --- sequence (time-major (T, N, C); cumsum any shape)
    "seq_sum.forward": sequence.seq_sum_forward,
    "seq_sum.backward": sequence.seq_sum_backward,
    "seq_mean.forward": sequence.seq_mean_forward,
    "seq_mean.backward": sequence.seq_mean_backward,
    "seq_last.forward": sequence.seq_last_forward,
    "seq_last.backward": sequence.seq_last_backward,
    "subsequence.forward": sequence.subsequence_forward,
    "subsequence.backward": sequence.subsequence_backward,
    "reverse_sequence.forward": sequence.reverse_sequence_forward,
    "reverse_sequence.backward": sequence.reverse_sequence_backward,
    "repeat_sequence.forward": sequence.repeat_sequence_forward,
    "repeat_sequence.backward": sequence.repeat_sequence_backward,
    "cumsum.forward": sequence.cumsum_forward,
    "cumsum.backward": sequence.cumsum_backward,
    # --- embedding (ids (N, K) int, table (V, D); positional x (N, T, D))
    "lookup.forward": embedding.lookup_forward,
    "lookup.backward": embedding.lookup_backward,
    "accumulative_lookup.forward": embedding.accumulative_lookup_forward,
    "accumulative_lookup.backward": embedding.accumulative_lookup_backward,
    "positional_sinusoidal.forward": embedding.positional_sinusoidal_forward,
    "positional_sinusoidal.backward": embedding.positional_sinusoidal_backward,
    "positional_learnable.forward": embedding.positional_learnable_forward,
    "positional_learnable.backward": embedding.positional_learnable_backward,
    "lookup_sgd.update": embedding.lookup_sgd_update,
    # --- image (NCHW; pixel ops channels last)
    "upsampling2d.forward": image.upsampling2d_forward,
    "upsampling2d.backward": image.upsampling2d_backward,
    "image_resize.forward": image.image_resize_forward,
    "image_resize.backward": image.image_resize_backward,
    "reorg.forward": image.reorg_forward,
    "reorg.backward": image.reorg_backward,
    "pixel_to_image.forward": image.pixel_to_image_forward,
    "pixel_to_image.backward": image.pixel_to_image_backward,
    "image_to_pixel.forward": image.image_to_pixel_forward,
    "image_to_pixel.backward": image.image_to_pixel_backward,
    # --- optim
    "gdm.update": optim.gdm_update,
    "rmsprop.update": optim.rmsprop_update,
    "adagrad.update": optim.adagrad_update,
    "adadelta.update": optim.adadelta_update,
    "adam.update": optim.adam_update,
    "simple_gradient.update": optim.simple_gradient_update,
    "adaptive_gradient.update": optim.adaptive_gradient_update,
    "nesterov_gradient.update": optim.nesterov_gradient_update,
    # --- attention (q (B, Tq, d), k (B, Tk, d), v (B, Tk, dv); heads folded into B)
    "scaled_dot_attention.forward": attention.scaled_dot_attention_forward,
    "scaled_dot_attention.backward": attention.scaled_dot_attention_backward,
    "split_heads.forward": attention.split_heads_forward,
    "split_heads.backward": attention.split_heads_backward,
    "merge_heads.forward": attention.merge_heads_forward,
    "merge_heads.backward": attention.merge_heads_backward,
    "additive_attention.forward": attention.additive_attention_forward,
    "additive_attention.backward": attention.additive_attention_backward,
}


class ReferenceBackend(HostBackend):
    """NumPy backend; op(name) returns the refnn.ops function unchanged."""

    name = "reference"
    KERNELS = KERNELS

    def gemm(self, A, B, C=None, alpha=1.0, beta=0.0):
        """C = alpha * A @ B + beta * C (A, B may be transposed views); returns C."""
        out = alpha * (A @ B)
        if C is None:
            return out
        C[...] = out + beta * C if beta else out
        return C
