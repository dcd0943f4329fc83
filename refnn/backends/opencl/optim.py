"""OpenCL host wrappers of the optimizer family (kernels in kernels/optim.cl).

Signatures are those of refnn.ops.optim with the backend first. ``param`` and the
states are updated in place on the device, so they must be contiguous device arrays
of the backend's dtype; ``grad`` may be host data (it is uploaded). Scalar
coefficients are computed on the host in float64 (refnn.ops.optim helpers).
"""
import numpy as np
import pyopencl.array as cla

from refnn.backends.opencl._common import LOCAL_1D, device_input, global_1d, real
from refnn.errors import ParameterError, ShapeError, check_dtype
from refnn.ops import optim as _ref


def _device(be, op, param, grad, *states, names=()):
    """Check that param and states are device arrays of one shape; upload grad."""
    for what, a in (("param", param), *zip(names, states)):
        if not isinstance(a, cla.Array):
            raise ShapeError(f"{op}: {what} must be a device array (it is updated in place), "
                             f"got {type(a).__name__}")
        check_dtype(op, what, a.dtype, (be.dtype,))
        if a.shape != param.shape:
            raise ShapeError(f"{op}: {what} must have shape {param.shape} (that of param), "
                             f"got {a.shape}")
        if not a.flags.c_contiguous:
            raise ShapeError(f"{op}: {what} must be C-contiguous (it is updated in place)")
    g = device_input(be, op, "grad", grad)
    if g.shape != param.shape:
        raise ShapeError(f"{op}: grad must have shape {param.shape} (that of param), got {g.shape}")
    return g


def _launch(be, name, param, *args):
    be.kernel("optim", name)(be.queue, global_1d(param.size), (LOCAL_1D,), *args,
                             np.uint32(param.size))


def _clip(be, op, clip_value):
    if clip_value is not None and clip_value == 0:
        raise ParameterError(f"{op}: clip_value must be None or non-zero, got 0")
    return real(be, 0.0 if clip_value is None else abs(clip_value))


def gdm_update(be, param, grad, velocity, *, learning_rate, momentum_coef, wdecay=0.0,
               nesterov=False, grad_scale=1.0, clip_value=None, norm_scale=1.0):
    if nesterov and momentum_coef == 0:
        raise ParameterError("gdm: nesterov=True requires momentum_coef > 0, got 0")
    g = _device(be, "gdm", param, grad, velocity, names=("velocity",))
    r = lambda v: real(be, v)  # noqa: E731
    _launch(be, "gdm_update", param, param.data, g.data, velocity.data, r(learning_rate),
            r(momentum_coef), r(wdecay), np.int32(bool(nesterov)), r(grad_scale),
            _clip(be, "gdm", clip_value), r(norm_scale))


def rmsprop_update(be, param, grad, state, *, learning_rate=2e-3, decay_rate=0.95,
                   epsilon=1e-6, grad_scale=1.0, clip_value=None, norm_scale=1.0):
    g = _device(be, "rmsprop", param, grad, state, names=("state",))
    r = lambda v: real(be, v)  # noqa: E731
    _launch(be, "rmsprop_update", param, param.data, g.data, state.data, r(learning_rate),
            r(decay_rate), r(epsilon), r(grad_scale), _clip(be, "rmsprop", clip_value),
            r(norm_scale))


def adagrad_update(be, param, grad, state, *, learning_rate=0.01, epsilon=1e-6,
                   grad_scale=1.0, clip_value=None, norm_scale=1.0):
    g = _device(be, "adagrad", param, grad, state, names=("state",))
    r = lambda v: real(be, v)  # noqa: E731
    _launch(be, "adagrad_update", param, param.data, g.data, state.data, r(learning_rate),
            r(epsilon), r(grad_scale), _clip(be, "adagrad", clip_value), r(norm_scale))


def adadelta_update(be, param, grad, eg2, edx2, *, decay=0.95, epsilon=1e-6, grad_scale=1.0):
    g = _device(be, "adadelta", param, grad, eg2, edx2, names=("eg2", "edx2"))
    r = lambda v: real(be, v)  # noqa: E731
    _launch(be, "adadelta_update", param, param.data, g.data, eg2.data, edx2.data, r(decay),
            r(epsilon), r(grad_scale))


def adam_update(be, param, grad, m, v, *, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                epsilon=1e-8, t=1, grad_scale=1.0, clip_value=None, norm_scale=1.0):
    _ref.check_t("adam", t)
    g = _device(be, "adam", param, grad, m, v, names=("m", "v"))
    r = lambda x: real(be, x)  # noqa: E731
    rate = norm_scale * _ref.adam_rate(learning_rate, beta_1, beta_2, t)
    _launch(be, "adam_update", param, param.data, g.data, m.data, v.data, r(rate), r(beta_1),
            r(beta_2), r(epsilon), r(grad_scale), _clip(be, "adam", clip_value))


def simple_gradient_update(be, param, grad, hist, *, learning_rate=0.01,
                           moment_decay_rate=0.9, l1=0.0, l2=0.0, grad_scale=1.0):
    g = _device(be, "simple_gradient", param, grad, hist, names=("hist",))
    r = lambda v: real(be, v)  # noqa: E731
    _launch(be, "simple_gradient_update", param, param.data, g.data, hist.data,
            r(learning_rate), r(moment_decay_rate), r(l1), r(l2), r(grad_scale))


def _adaptive(be, op, param, grad, m, v, vmax, *, learning_rate, moment_decay_rate,
              second_moment_decay_rate, epsilon, l1, l2, t, amsgrad, decoupled_weight_decay,
              grad_scale):
    """adaptive_gradient and nesterov_gradient: one fused kernel, coefficients from
    refnn.ops.optim.fused_coefficients."""
    _ref.check_t(op, t)
    _ref.check_amsgrad_state(op, amsgrad, vmax)
    states = (m, v) + ((vmax,) if amsgrad else ())
    g = _device(be, op, param, grad, *states, names=("m", "v", "vmax"))
    vmax_ = vmax if amsgrad else v      # not read by the kernel without amsgrad
    rate, g_mult, m_mult, v_div = _ref.fused_coefficients(
        op, learning_rate, moment_decay_rate, second_moment_decay_rate, t)
    r = lambda x: real(be, x)  # noqa: E731
    _launch(be, "adaptive_update", param, param.data, g.data, m.data, v.data, vmax_.data,
            np.int32(bool(amsgrad)), np.int32(bool(decoupled_weight_decay)), r(rate),
            r(moment_decay_rate), r(second_moment_decay_rate), r(epsilon), r(l1), r(l2),
            r(g_mult), r(m_mult), r(v_div), r(grad_scale))


def _hyper(local_vars):
    """The keyword hyper-parameters out of an update function's locals()."""
    return {k: v for k, v in local_vars.items()
            if k not in ("be", "param", "grad", "m", "v", "vmax")}


def adaptive_gradient_update(be, param, grad, m, v, vmax=None, *, learning_rate=0.01,
                             moment_decay_rate=0.9, second_moment_decay_rate=0.99,
                             epsilon=1e-6, l1=0.0, l2=0.0, t=1, amsgrad=False,
                             decoupled_weight_decay=False, grad_scale=1.0):
    _adaptive(be, "adaptive_gradient", param, grad, m, v, vmax, **_hyper(locals()))


def nesterov_gradient_update(be, param, grad, m, v, vmax=None, *, learning_rate=0.01,
                             moment_decay_rate=0.9, second_moment_decay_rate=0.99,
                             epsilon=1e-6, l1=0.0, l2=0.0, t=1, amsgrad=False,
                             decoupled_weight_decay=False, grad_scale=1.0):
    _adaptive(be, "nesterov_gradient", param, grad, m, v, vmax, **_hyper(locals()))
