"""Optimizer family: in-place parameter updates ``update(param, grad, *state, **hyper)``.

Each op mutates ``param`` and its state arrays (all of ``param``'s shape) in place and
returns None; ``grad`` is never changed. The formulas are those of the real libraries,
step by step, including where their epsilons sit.

neon (``neon.optimizers``): ``gdm``, ``rmsprop``, ``adagrad``, ``adadelta``, ``adam``.
neon divides each gradient by the batch size, clips it element-wise to
+-gradient_clip_value and multiplies by a global norm-clip factor. Here:

* ``grad_scale`` multiplies the raw gradient first (the facade passes 1 / batch size);
* ``clip_value`` (None or > 0) then clips element-wise, as neon's clip_gradient_value;
* ``norm_scale`` is neon's ``clip_gradient_norm`` scale factor (computed by the facade
  over all layers), applied exactly where neon applies it -- to the gradient in gdm,
  to the step (not to the running averages) in rmsprop, adagrad and adam.

NeoML (``neoml.Dnn`` solvers): ``simple_gradient``, ``adaptive_gradient`` (Adam),
``nesterov_gradient`` (NAdam, Dozat's Algorithm 8). ``grad_scale`` multiplies the
gradient first: the facade passes (1 / number of run_and_backward calls) times the
layer's max_gradient_norm clip factor. Regularisation adds ``l2 w + clip(w, -l1, l1)``.
``t`` is the 1-based number of the update (neon's Adam counter, NeoML's train count).
"""
import numpy as np

from refnn.errors import ParameterError
from refnn.ops._spec import OpSpec


def _scaled(grad, grad_scale, clip_value=None):
    """neon's gradient preparation: clip(grad * grad_scale, -|clip_value|, |clip_value|)."""
    g = grad * grad_scale
    return g if clip_value is None else np.clip(g, -abs(clip_value), abs(clip_value))


def _regularizer(w, l1, l2):
    """NeoML's regularisation gradient: l2 w + clip(w, -l1, l1)."""
    return l2 * w + np.clip(w, -l1, l1)


def check_t(op, t):
    if int(t) != t or t < 1:
        raise ParameterError(f"{op}: t (the 1-based update count) must be an integer >= 1, "
                             f"got {t!r}")


def check_amsgrad_state(op, amsgrad, vmax):
    if amsgrad and vmax is None:
        raise ParameterError(f"{op}: amsgrad=True needs the state vmax (the running maximum "
                             f"of v), got None")


def adam_rate(learning_rate, beta_1, beta_2, t):
    """The bias-corrected step size lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    (neon's Adam and NeoML's AdaptiveGradient)."""
    return learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)


def nadam_coefficients(moment_decay_rate, t):
    """NeoML NesterovGradient's (mu_t, mu_{t+1}, prod_{k<=t} mu_k) with
    mu_k = moment_decay_rate (1 - 0.5 * 0.96^(0.004 k))."""
    mu = [moment_decay_rate * (1 - 0.5 * 0.96 ** (0.004 * k)) for k in range(1, int(t) + 2)]
    return mu[-2], mu[-1], float(np.prod(mu[:-1]))


def fused_coefficients(op, learning_rate, moment_decay_rate, second_moment_decay_rate, t):
    """(rate, g_mult, m_mult, v_div) of the fast paths' one fused NeoML Adam/NAdam kernel:
    step = (g_mult g + m_mult m) / (sqrt(s / v_div) + epsilon);  w -= rate step."""
    b1, b2 = moment_decay_rate, second_moment_decay_rate
    if op == "adaptive_gradient":
        return adam_rate(learning_rate, b1, b2, t), 0.0, 1.0, 1.0
    mu_t, mu_next, prod = nadam_coefficients(b1, t)
    return (learning_rate, (1 - mu_t) / (1 - prod), mu_next / (1 - prod * mu_next),
            1 - b2 ** t)


# ------------------------------------------------------------------ neon
def gdm_update(param, grad, velocity, *, learning_rate, momentum_coef, wdecay=0.0,
               nesterov=False, grad_scale=1.0, clip_value=None, norm_scale=1.0):
    """neon GradientDescentMomentum:

        g = norm_scale * clip(grad * grad_scale) + wdecay * param
        velocity = momentum_coef * velocity - learning_rate * g
        param += velocity                                  (nesterov=False)
        param += momentum_coef * velocity - learning_rate * g   (nesterov=True, torch's NAG)

    With momentum_coef = 0 this is plain SGD (velocity just holds the last step).
    """
    if nesterov and momentum_coef == 0:
        raise ParameterError("gdm: nesterov=True requires momentum_coef > 0, got 0")
    g = norm_scale * _scaled(grad, grad_scale, clip_value) + wdecay * param
    velocity[...] = momentum_coef * velocity - learning_rate * g
    if nesterov:
        param += momentum_coef * velocity - learning_rate * g
    else:
        param += velocity


def rmsprop_update(param, grad, state, *, learning_rate=2e-3, decay_rate=0.95, epsilon=1e-6,
                   grad_scale=1.0, clip_value=None, norm_scale=1.0):
    """neon RMSProp:

        g = clip(grad * grad_scale)
        state = decay_rate * state + (1 - decay_rate) g^2
        param -= norm_scale * learning_rate * g / (sqrt(state + epsilon) + epsilon)
    """
    g = _scaled(grad, grad_scale, clip_value)
    state[...] = decay_rate * state + (1 - decay_rate) * g * g
    param -= norm_scale * learning_rate * g / (np.sqrt(state + epsilon) + epsilon)


def adagrad_update(param, grad, state, *, learning_rate=0.01, epsilon=1e-6,
                   grad_scale=1.0, clip_value=None, norm_scale=1.0):
    """neon Adagrad:

        g = clip(grad * grad_scale)
        state += g^2
        param -= norm_scale * learning_rate * g / sqrt(state + epsilon)
    """
    g = _scaled(grad, grad_scale, clip_value)
    state += g * g
    param -= norm_scale * learning_rate * g / np.sqrt(state + epsilon)


def adadelta_update(param, grad, eg2, edx2, *, decay=0.95, epsilon=1e-6, grad_scale=1.0):
    """neon Adadelta (no gradient clipping in neon):

        g = grad * grad_scale
        eg2 = decay * eg2 + (1 - decay) g^2                 (E[g^2])
        dx = sqrt((edx2 + epsilon) / (eg2 + epsilon)) * g
        edx2 = decay * edx2 + (1 - decay) dx^2              (E[dx^2])
        param -= dx
    """
    g = grad * grad_scale
    eg2[...] = decay * eg2 + (1 - decay) * g * g
    dx = np.sqrt((edx2 + epsilon) / (eg2 + epsilon)) * g
    edx2[...] = decay * edx2 + (1 - decay) * dx * dx
    param -= dx


def adam_update(param, grad, m, v, *, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                epsilon=1e-8, t=1, grad_scale=1.0, clip_value=None, norm_scale=1.0):
    """neon Adam (t = 1 on the first update):

        g = clip(grad * grad_scale)
        m = beta_1 m + (1 - beta_1) g;   v = beta_2 v + (1 - beta_2) g^2
        param -= norm_scale * lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

    (epsilon is added to sqrt(v) before the bias correction, as neon does.)
    """
    check_t("adam", t)
    g = _scaled(grad, grad_scale, clip_value)
    m[...] = beta_1 * m + (1 - beta_1) * g
    v[...] = beta_2 * v + (1 - beta_2) * g * g
    param -= norm_scale * adam_rate(learning_rate, beta_1, beta_2, t) * m / (np.sqrt(v) + epsilon)


# ------------------------------------------------------------------ NeoML
def simple_gradient_update(param, grad, hist, *, learning_rate=0.01, moment_decay_rate=0.9,
                           l1=0.0, l2=0.0, grad_scale=1.0):
    """NeoML SimpleGradient (SGD with momentum):

        hist = moment_decay_rate * hist - learning_rate * (g + l2 w + clip(w, -l1, l1))
        w += hist                                          (g = grad * grad_scale)
    """
    g = grad * grad_scale
    hist[...] = moment_decay_rate * hist - learning_rate * (g + _regularizer(param, l1, l2))
    param += hist


def adaptive_gradient_update(param, grad, m, v, vmax=None, *, learning_rate=0.01,
                             moment_decay_rate=0.9, second_moment_decay_rate=0.99,
                             epsilon=1e-6, l1=0.0, l2=0.0, t=1, amsgrad=False,
                             decoupled_weight_decay=False, grad_scale=1.0):
    """NeoML AdaptiveGradient (Adam; b1 = moment_decay_rate, b2 = second_moment_decay_rate):

        g = grad * grad_scale (+ l2 w + clip(w, -l1, l1) unless decoupled_weight_decay)
        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        vmax = max(vmax, v) and s = vmax with amsgrad, else s = v
        step = m / (sqrt(s) + epsilon)   (+ l2 w + clip(w, -l1, l1) if decoupled)
        w -= lr sqrt(1 - b2^t) / (1 - b1^t) * step

    epsilon is added before the bias correction (NeoML's placement); with decoupled
    weight decay the regulariser is scaled by the bias-corrected rate too, as in NeoML.
    """
    check_t("adaptive_gradient", t)
    check_amsgrad_state("adaptive_gradient", amsgrad, vmax)
    b1, b2 = moment_decay_rate, second_moment_decay_rate
    g = grad * grad_scale
    if not decoupled_weight_decay:
        g = g + _regularizer(param, l1, l2)
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    s = v
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        s = vmax
    step = m / (np.sqrt(s) + epsilon)
    if decoupled_weight_decay:
        step = step + _regularizer(param, l1, l2)
    param -= adam_rate(learning_rate, b1, b2, t) * step


def nesterov_gradient_update(param, grad, m, v, vmax=None, *, learning_rate=0.01,
                             moment_decay_rate=0.9, second_moment_decay_rate=0.99,
                             epsilon=1e-6, l1=0.0, l2=0.0, t=1, amsgrad=False,
                             decoupled_weight_decay=False, grad_scale=1.0):
    """NeoML NesterovGradient (NAdam, Dozat 2015 Algorithm 8, with NeoML's schedule
    mu_k = b1 (1 - 0.5 * 0.96^(0.004 k)) and P_t = prod_{k<=t} mu_k):

        g, m, v, vmax as in adaptive_gradient
        m_bar = (1 - mu_t) / (1 - P_t) g + mu_{t+1} / (1 - P_t mu_{t+1}) m
        n_hat = s / (1 - b2^t)                      (s = vmax with amsgrad, else v)
        step = m_bar / (sqrt(n_hat) + epsilon)   (+ l2 w + clip(w, -l1, l1) if decoupled)
        w -= learning_rate * step
    """
    check_t("nesterov_gradient", t)
    check_amsgrad_state("nesterov_gradient", amsgrad, vmax)
    b1, b2 = moment_decay_rate, second_moment_decay_rate
    mu_t, mu_next, prod = nadam_coefficients(b1, t)
    g = grad * grad_scale
    if not decoupled_weight_decay:
        g = g + _regularizer(param, l1, l2)
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    s = v
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        s = vmax
    m_bar = (1 - mu_t) / (1 - prod) * g + mu_next / (1 - prod * mu_next) * m
    step = m_bar / (np.sqrt(s / (1 - b2 ** t)) + epsilon)
    if decoupled_weight_decay:
        step = step + _regularizer(param, l1, l2)
    param -= learning_rate * step


SPECS = [
    OpSpec("gdm", "optim", update=gdm_update),
    OpSpec("rmsprop", "optim", update=rmsprop_update),
    OpSpec("adagrad", "optim", update=adagrad_update),
    OpSpec("adadelta", "optim", update=adadelta_update),
    OpSpec("adam", "optim", update=adam_update),
    OpSpec("simple_gradient", "optim", update=simple_gradient_update),
    OpSpec("adaptive_gradient", "optim", update=adaptive_gradient_update),
    OpSpec("nesterov_gradient", "optim", update=nesterov_gradient_update),
]
