"""The opencl backend: arrays are pyopencl.array.Array that stay on the device.

Device choice (first match wins): the device argument (an int index into
list_devices(), a "platform:device" string as in PYOPENCL_CTX, or a
pyopencl.Device), $REFNN_OPENCL_DEVICE, $PYOPENCL_CTX, the first GPU of any
platform, else the first device (PoCL's CPU device, which pocl-binary-distribution
installs on every Linux x86-64 machine).

Each backend object owns its command queue and memory pool, so several threads can
each build and run their own network; contexts and built programs are shared (both
are thread-safe in OpenCL), kernels are cached per backend object.

Copies to the host happen only in to_host (the API edge). Family host wrappers
live in dense.py, activation.py, ...; their OpenCL C in kernels/*.cl.
"""
import os
import threading

import numpy as np
import pyopencl as cl
import pyopencl.array as cla
import pyopencl.tools as cltools

from refnn.backends.base import Backend, BackendError
from refnn.backends.opencl import _pocl, _programs, activation, dense, loss, optim
from refnn.backends.opencl import pool
from refnn.backends.opencl import conv
from refnn.backends.opencl import recurrent
from refnn.backends.opencl import norm
from refnn.backends.opencl import channelwise
from refnn.backends.opencl import embedding, sequence
from refnn.backends.opencl import image
from refnn.backends.opencl import attention

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
    # --- channelwise
    "channelwise_conv2d.forward": channelwise.channelwise_conv2d_forward,
    "channelwise_conv2d.backward": channelwise.channelwise_conv2d_backward,
    "time_conv.forward": channelwise.time_conv_forward,
    "time_conv.backward": channelwise.time_conv_backward,
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
    # --- norm (batch_norm: (N, C), outputs (y, mean, var); lrn: NCHW)
    "batch_norm.forward": norm.batch_norm_forward,
    "batch_norm.backward": norm.batch_norm_backward,
    "batch_norm_infer.forward": norm.batch_norm_infer_forward,
    "batch_norm_infer.backward": norm.batch_norm_infer_backward,
    "layer_norm.forward": norm.layer_norm_forward,
    "layer_norm.backward": norm.layer_norm_backward,
    "lrn.forward": norm.lrn_forward,
    "lrn.backward": norm.lrn_backward,
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

_CONTEXTS = {}
_CTX_LOCK = threading.Lock()


def list_devices():
    """All OpenCL devices as [(platform_index, device_index, device)]."""
    found = []
    try:
        platforms = cl.get_platforms()
    except cl.Error:
        return found
    for p_i, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except cl.Error:
            continue
        found.extend((p_i, d_i, dev) for d_i, dev in enumerate(devices))
    return found


def describe_devices():
    """One dict per device: indices, names, type, float64 support, compute units."""
    rows = []
    for p_i, d_i, dev in list_devices():
        rows.append({
            "id": f"{p_i}:{d_i}",
            "platform": dev.platform.name.strip(),
            "device": dev.name.strip(),
            "type": cl.device_type.to_string(dev.type),
            "fp64": "cl_khr_fp64" in dev.extensions or dev.double_fp_config != 0,
            "compute_units": dev.max_compute_units,
            "global_mem_mb": dev.global_mem_size // 2**20,
        })
    return rows


def _parse_device_spec(spec, devices):
    if isinstance(spec, cl.Device):
        return spec
    if isinstance(spec, (int, np.integer)):
        if not 0 <= spec < len(devices):
            raise BackendError(
                f"OpenCLBackend: device index {spec} out of range; "
                f"{len(devices)} device(s) exist (see `refnn devices`)")
        return devices[spec][2]
    text = str(spec).strip()
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return _parse_device_spec(int(parts[0]), devices)
        p_i = int(parts[0])
        d_i = int(parts[1]) if parts[1] else 0
    except ValueError:
        raise BackendError(
            f"OpenCLBackend: cannot parse device {spec!r}; expected an index or "
            f"'platform:device' (see `refnn devices`)") from None
    for p, d, dev in devices:
        if (p, d) == (p_i, d_i):
            return dev
    raise BackendError(
        f"OpenCLBackend: no device {text!r}; available: "
        f"{', '.join(f'{p}:{d}' for p, d, _ in devices) or 'none'} (see `refnn devices`)")


def choose_device(device=None):
    """Pick the pyopencl.Device as documented in the module docstring."""
    devices = list_devices()
    if not devices:
        raise BackendError("OpenCLBackend: no OpenCL device found (is "
                           "pocl-binary-distribution installed?)")
    for spec in (device, os.environ.get("REFNN_OPENCL_DEVICE"), os.environ.get("PYOPENCL_CTX")):
        if spec is not None and spec != "":
            return _parse_device_spec(spec, devices)
    for _, _, dev in devices:
        if dev.type & cl.device_type.GPU:
            return dev
    return devices[0][2]


def _context_for(dev):
    with _CTX_LOCK:
        ctx = _CONTEXTS.get(dev.int_ptr)
        if ctx is None:
            _pocl.fix_unknown_cpu(dev)      # PoCL 3.0 on a CPU its LLVM does not know
            ctx = _CONTEXTS[dev.int_ptr] = cl.Context([dev])
        return ctx


class OpenCLBackend(Backend):
    """PyOpenCL backend. float32 by default; float64 only where the device has fp64."""

    name = "opencl"
    KERNELS = KERNELS

    def __init__(self, dtype=np.float32, device=None):
        super().__init__(dtype)
        self.device = choose_device(device)
        if self.dtype == np.float64 and not ("cl_khr_fp64" in self.device.extensions):
            raise BackendError(
                f"OpenCLBackend: device {self.device.name!r} has no cl_khr_fp64; "
                "use dtype=float32")
        if self.dtype not in (np.float32, np.float64):
            raise BackendError(f"OpenCLBackend: dtype must be float32 or float64, got {dtype}")
        self.context = _context_for(self.device)
        self.queue = cl.CommandQueue(self.context)
        self.allocator = cltools.MemoryPool(cltools.ImmediateAllocator(self.queue))
        self._kernels = {}

    # ------------------------------------------------------------- kernels
    def _bind(self, fn):
        def bound(*args, **kwargs):
            return fn(self, *args, **kwargs)
        bound.__name__ = getattr(fn, "__name__", "op")
        bound.__doc__ = getattr(fn, "__doc__", None)
        return bound

    def program(self, family, dtype=None, options=()):
        """The built program of kernels/<family>.cl (cached per context and dtype)."""
        return _programs.get(self.context, family, dtype or self.dtype, options)

    def kernel(self, family, name, dtype=None, options=()):
        """A cached pyopencl.Kernel of this backend (kernels are not shared across
        threads: each backend object has its own)."""
        key = (family, name, np.dtype(dtype or self.dtype), tuple(options))
        k = self._kernels.get(key)
        if k is None:
            k = self._kernels[key] = cl.Kernel(self.program(family, dtype, options), name)
        return k

    # -------------------------------------------------------------- arrays
    def asarray(self, a, dtype=None):
        if isinstance(a, cla.Array):
            if dtype is None or a.dtype == np.dtype(dtype):
                return a
            return a.astype(dtype)
        host = np.ascontiguousarray(a, dtype=dtype or self.dtype)
        return cla.to_device(self.queue, host, allocator=self.allocator)

    def to_host(self, a):
        if isinstance(a, cla.Array):
            return a.get(queue=self.queue)
        return np.asarray(a)

    def empty(self, shape, dtype=None):
        return cla.empty(self.queue, shape, dtype or self.dtype, allocator=self.allocator)

    def zeros(self, shape, dtype=None):
        return cla.zeros(self.queue, shape, dtype or self.dtype, allocator=self.allocator)

    def synchronize(self):
        self.queue.finish()

    def _is_array(self, a):
        return isinstance(a, cla.Array) and a.context == self.context

    @staticmethod
    def _span(a, col0, ncols):
        """[first byte, end) in a's buffer of the columns [col0, col0 + ncols) of all rows."""
        item, (rows, cols) = a.dtype.itemsize, a.shape
        return (a.offset + col0 * item,
                a.offset + ((rows - 1) * cols + col0 + ncols) * item)

    def _blocks_overlap(self, src, src_col0, dst, dst_col0, ncols):
        if src.base_data.int_ptr != dst.base_data.int_ptr:
            return False
        s0, s1 = self._span(src, src_col0, ncols)
        d0, d1 = self._span(dst, dst_col0, ncols)
        return s0 < d1 and d0 < s1

    def _copy_columns(self, src, src_col0, dst, dst_col0, ncols):
        # clEnqueueCopyBufferRect, no kernel of ours: each block is ncols * itemsize
        # bytes of every row at its array's row pitch; its first byte (array offset plus
        # first column) is given as (x, y) = divmod by the pitch, so that the runtime's
        # overlap check sees the true rectangle of a row slice
        item, rows = src.dtype.itemsize, src.shape[0]
        if src.base_data.int_ptr == dst.base_data.int_ptr and src.shape[1] != dst.shape[1]:
            # OpenCL refuses different pitches within one buffer: go through a temporary
            tmp = self.empty((rows, ncols), dtype=src.dtype)
            self._copy_columns(src, src_col0, tmp, 0, ncols)
            src, src_col0 = tmp, 0
        sp, dp = src.shape[1] * item, dst.shape[1] * item
        sy, sx = divmod(src.offset + src_col0 * item, sp)
        dy, dx = divmod(dst.offset + dst_col0 * item, dp)
        evt = cl.enqueue_copy(
            self.queue, dst.base_data, src.base_data,
            src_origin=(sx, sy, 0), dst_origin=(dx, dy, 0), region=(ncols * item, rows, 1),
            src_pitches=(sp, 0), dst_pitches=(dp, 0),      # slice pitch 0: rows * pitch
            wait_for=list(src.events) + list(dst.events))
        dst.add_event(evt)

    def gemm(self, A, B, C=None, alpha=1.0, beta=0.0):
        """C = alpha * A @ B + beta * C with the register-blocked GEMM kernel of dense.cl."""
        return dense.gemm(self, A, B, C, alpha, beta)

    def transpose2d(self, a):
        """A C-contiguous transposed copy of 2-D device array ``a`` (tiled kernel)."""
        return dense.transpose2d(self, a)

    def __repr__(self):
        return f"<OpenCLBackend {self.device.name.strip()!r} dtype={self.dtype}>"
