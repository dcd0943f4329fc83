"""cpu wrappers of the optimizer family: validate, compute the scalar coefficients in
float64, call the fused kernel of refnn._ext.optim (which updates in place).

Signatures are those of refnn.ops.optim. ``param`` and the states are updated in
place, so they must already be C-contiguous arrays of one float dtype (a copy would
silently drop the update); ``grad`` is converted when needed.
"""
import numpy as np

from refnn._ext import optim as _k
from refnn.backends.cpu._common import FLOATS, float_input, n_threads
from refnn.errors import ParameterError, ShapeError, check_dtype
from refnn.ops import optim as _ref


def _flat(op, param, grad, *states, names=()):
    """Flat views of param, grad and states after checking shape, dtype, contiguity."""
    if not isinstance(param, np.ndarray):
        raise ShapeError(f"{op}: param must be a NumPy array (updated in place), "
                         f"got {type(param).__name__}")
    check_dtype(op, "param", param.dtype, FLOATS)
    out = []
    for what, a in (("param", param), *zip(names, states)):
        if not isinstance(a, np.ndarray):
            raise ShapeError(f"{op}: {what} must be a NumPy array (updated in place), "
                             f"got {type(a).__name__}")
        check_dtype(op, what, a.dtype, (param.dtype,))
        if a.shape != param.shape:
            raise ShapeError(f"{op}: {what} must have shape {param.shape} (that of param), "
                             f"got {a.shape}")
        if not a.flags.c_contiguous or not a.flags.writeable:
            raise ShapeError(f"{op}: {what} must be C-contiguous and writeable (it is "
                             f"updated in place)")
        out.append(a.reshape(-1))
    g = float_input(op, "grad", grad, param.dtype)
    if g.shape != param.shape:
        raise ShapeError(f"{op}: grad must have shape {param.shape} (that of param), got {g.shape}")
    return out[0], g.reshape(-1), out[1:]


def _clip(op, clip_value):
    if clip_value is None:
        return 0.0
    if clip_value == 0:
        raise ParameterError(f"{op}: clip_value must be None or non-zero, got 0")
    return abs(float(clip_value))


def gdm_update(param, grad, velocity, *, learning_rate, momentum_coef, wdecay=0.0,
               nesterov=False, grad_scale=1.0, clip_value=None, norm_scale=1.0):
    if nesterov and momentum_coef == 0:
        raise ParameterError("gdm: nesterov=True requires momentum_coef > 0, got 0")
    w, g, (v,) = _flat("gdm", param, grad, velocity, names=("velocity",))
    _k.gdm_update(w, g, v, learning_rate, momentum_coef, wdecay, bool(nesterov), grad_scale,
                  _clip("gdm", clip_value), norm_scale, n_threads())


def rmsprop_update(param, grad, state, *, learning_rate=2e-3, decay_rate=0.95, epsilon=1e-6,
                   grad_scale=1.0, clip_value=None, norm_scale=1.0):
    w, g, (s,) = _flat("rmsprop", param, grad, state, names=("state",))
    _k.rmsprop_update(w, g, s, learning_rate, decay_rate, epsilon, grad_scale,
                      _clip("rmsprop", clip_value), norm_scale, n_threads())


def adagrad_update(param, grad, state, *, learning_rate=0.01, epsilon=1e-6,
                   grad_scale=1.0, clip_value=None, norm_scale=1.0):
    w, g, (s,) = _flat("adagrad", param, grad, state, names=("state",))
    _k.adagrad_update(w, g, s, learning_rate, epsilon, grad_scale,
                      _clip("adagrad", clip_value), norm_scale, n_threads())


def adadelta_update(param, grad, eg2, edx2, *, decay=0.95, epsilon=1e-6, grad_scale=1.0):
    w, g, (a, b) = _flat("adadelta", param, grad, eg2, edx2, names=("eg2", "edx2"))
    _k.adadelta_update(w, g, a, b, decay, epsilon, grad_scale, n_threads())


def adam_update(param, grad, m, v, *, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                epsilon=1e-8, t=1, grad_scale=1.0, clip_value=None, norm_scale=1.0):
    _ref.check_t("adam", t)
    w, g, (m_, v_) = _flat("adam", param, grad, m, v, names=("m", "v"))
    rate = norm_scale * _ref.adam_rate(learning_rate, beta_1, beta_2, t)
    _k.adam_update(w, g, m_, v_, rate, beta_1, beta_2, epsilon, grad_scale,
                   _clip("adam", clip_value), n_threads())


def simple_gradient_update(param, grad, hist, *, learning_rate=0.01, moment_decay_rate=0.9,
                           l1=0.0, l2=0.0, grad_scale=1.0):
    w, g, (h,) = _flat("simple_gradient", param, grad, hist, names=("hist",))
    _k.simple_gradient_update(w, g, h, learning_rate, moment_decay_rate, l1, l2, grad_scale,
                              n_threads())


def _adaptive(op, param, grad, m, v, vmax, *, learning_rate, moment_decay_rate,
              second_moment_decay_rate, epsilon, l1, l2, t, amsgrad, decoupled_weight_decay,
              grad_scale):
    """adaptive_gradient and nesterov_gradient: one fused kernel, coefficients from
    refnn.ops.optim.fused_coefficients."""
    _ref.check_t(op, t)
    _ref.check_amsgrad_state(op, amsgrad, vmax)
    states = (m, v) + ((vmax,) if amsgrad else ())
    w, g, flat = _flat(op, param, grad, *states, names=("m", "v", "vmax"))
    vmax_ = flat[2] if amsgrad else flat[1]      # not read by the kernel without amsgrad
    rate, g_mult, m_mult, v_div = _ref.fused_coefficients(
        op, learning_rate, moment_decay_rate, second_moment_decay_rate, t)
    _k.adaptive_update(w, g, flat[0], flat[1], vmax_, bool(amsgrad), bool(decoupled_weight_decay),
                       rate, moment_decay_rate, second_moment_decay_rate, epsilon, l1, l2,
                       g_mult, m_mult, v_div, grad_scale, n_threads())


def adaptive_gradient_update(param, grad, m, v, vmax=None, *, learning_rate=0.01,
                             moment_decay_rate=0.9, second_moment_decay_rate=0.99,
                             epsilon=1e-6, l1=0.0, l2=0.0, t=1, amsgrad=False,
                             decoupled_weight_decay=False, grad_scale=1.0):
    _adaptive("adaptive_gradient", param, grad, m, v, vmax, **_hyper(locals()))


def nesterov_gradient_update(param, grad, m, v, vmax=None, *, learning_rate=0.01,
                             moment_decay_rate=0.9, second_moment_decay_rate=0.99,
                             epsilon=1e-6, l1=0.0, l2=0.0, t=1, amsgrad=False,
                             decoupled_weight_decay=False, grad_scale=1.0):
    _adaptive("nesterov_gradient", param, grad, m, v, vmax, **_hyper(locals()))


def _hyper(local_vars):
    """The keyword hyper-parameters out of an update function's locals()."""
    return {k: v for k, v in local_vars.items() if k not in ("param", "grad", "m", "v", "vmax")}
