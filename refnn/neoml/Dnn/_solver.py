"""Solvers: SimpleGradient, AdaptiveGradient (Adam), NesterovGradient (NAdam).

One ``learn`` = one solver step for every layer whose learning is enabled. NeoML's
rules, as the refnn ops take them (``refnn.ops.optim``):

* the gradient is the AVERAGE of the gradients accumulated by the ``run_and_backward``
  calls since the last step (the learn's own pass included): grad_scale = 1 / count;
* with ``max_gradient_norm`` > 0 the averaged gradient of EACH LAYER (all its
  parameters together) is scaled by max_norm / max(norm, max_norm) -- per layer, not
  global; this factor goes into grad_scale too;
* l1/l2 regularisation adds l2 w + clip(w, -l1, l1) (inside the op), each multiplied
  by the layer's ``_l1_mult`` / ``_l2_mult`` (NeoML's base regularisation multipliers,
  1 by default; BatchNormalization sets both to 0, as NeoML's C++ layer does, so its
  gamma/beta are never decayed);
* ``t`` counts the steps of the solver (1 on the first).

The norm of a layer's gradient is the only arithmetic done here: each parameter's
sum of squares comes from the backend's GEMM (g . g) and is read back once per step.
"""
import numpy as np

from refnn.errors import ParameterError


def _number(v, where, what):
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ParameterError(f"{where}: {what} must be a number, got {v!r}") from None


def _sum_of_squares(be, g):
    """sum(g^2) of a backend array as a Python float: the (1, n) x (n, 1) product
    through the backend's GEMM, read back to the host."""
    return float(be.to_host(be.gemm(g.reshape(1, -1), g.reshape(-1, 1))).reshape(()))


class Solver:
    """Base class: learning_rate, l1, l2, max_gradient_norm (negative: off)."""

    OP = None
    STATE = ()

    def __init__(self, math_engine, learning_rate=0.01, l1=0.0, l2=0.0,
                 max_gradient_norm=-1.0):
        from refnn.neoml.MathEngine import MathEngine
        where = type(self).__name__
        if not isinstance(math_engine, MathEngine):
            raise ParameterError(f"{where}: math_engine must be a neoml MathEngine, "
                                 f"got {math_engine!r}")
        self._engine = math_engine
        self.learning_rate = learning_rate
        self.l1 = l1
        self.l2 = l2
        self.max_gradient_norm = max_gradient_norm
        self._state = {}
        self._t = 0

    learning_rate = property(lambda self: self._lr)
    l1 = property(lambda self: self._l1)
    l2 = property(lambda self: self._l2)
    max_gradient_norm = property(lambda self: self._max_norm)

    @learning_rate.setter
    def learning_rate(self, v):
        self._lr = _number(v, type(self).__name__, "learning_rate")

    @l1.setter
    def l1(self, v):
        self._l1 = _number(v, type(self).__name__, "l1")

    @l2.setter
    def l2(self, v):
        self._l2 = _number(v, type(self).__name__, "l2")

    @max_gradient_norm.setter
    def max_gradient_norm(self, v):
        self._max_norm = _number(v, type(self).__name__, "max_gradient_norm")

    @property
    def math_engine(self):
        return self._engine

    def reset(self):
        """Forget the moments and the step count."""
        self._state.clear()
        self._t = 0

    # ------------------------------------------------------------ checkpoints
    def __getstate__(self):
        """Hyper-parameters, step count and moments as host arrays (no engine)."""
        state = self.__dict__.copy()
        be = self._engine.backend
        state["_engine"] = None
        state["_state"] = {k: [None if a is None else be.to_host(a) for a in arrays]
                           for k, arrays in self._state.items()}
        return state

    def _attach(self, engine):
        """Move the moments of an unpickled solver onto ``engine``."""
        self._engine = engine
        be = engine.backend
        self._state = {k: [None if a is None else be.asarray(a, dtype=a.dtype) for a in arrays]
                       for k, arrays in self._state.items()}

    # ------------------------------------------------------------------ a step
    def _hyper(self):
        return {"learning_rate": self._lr, "l1": self._l1, "l2": self._l2}

    def _new_state(self, be, param):
        return [be.zeros(param.shape, dtype=param.dtype) for _ in self.STATE]

    def _train(self, dnn, count):
        """One step for every trainable layer of ``dnn`` with the gradients
        accumulated over ``count`` backward passes (cleared afterwards)."""
        if dnn.math_engine is not self._engine:
            raise ParameterError(f"{type(self).__name__}: the solver's math engine is not "
                                 f"the network's")
        be = self._engine.backend
        self._t += 1
        update = be.op(self.OP + ".update")
        hyper = self._hyper()
        for layer in dnn._layers.values():
            if not layer._params or not layer._learning_enabled:
                layer._grads.clear()
                continue
            grads = {n: layer._grads.get(n) for n in layer._params}
            scale = 1.0 / max(count, 1)
            if self._max_norm > 0:
                norm = np.sqrt(sum(_sum_of_squares(be, g) for g in grads.values()
                                   if g is not None)) * scale
                scale *= self._max_norm / max(norm, self._max_norm)
            # NeoML's per-layer base regularisation multipliers (0 for BatchNormalization)
            layer_hyper = dict(hyper, l1=hyper["l1"] * getattr(layer, "_l1_mult", 1.0),
                               l2=hyper["l2"] * getattr(layer, "_l2_mult", 1.0))
            for name, param in layer._params.items():
                g = grads[name]
                if g is None:
                    g = be.zeros(param.shape, dtype=param.dtype)
                key = (layer.name, name)
                state = self._state.get(key)
                if state is None or state[0].shape != param.shape:
                    state = self._state[key] = self._new_state(be, param)
                update(param, g, *state, grad_scale=scale, **layer_hyper)
            layer._grads.clear()


class SimpleGradient(Solver):
    """SGD with momentum (NeoML defaults: learning_rate 0.01, moment_decay_rate 0.9,
    l1 = l2 = 0, max_gradient_norm -1 = off). The network's default solver.

        hist = m * hist - lr * (g + l2 w + clip(w, -l1, l1));  w += hist
    (the first step is plain SGD whatever the momentum, since hist starts at 0).
    """

    OP = "simple_gradient"
    STATE = ("hist",)

    def __init__(self, math_engine, learning_rate=0.01, l1=0, l2=0, max_gradient_norm=-1.0,
                 moment_decay_rate=0.9):
        super().__init__(math_engine, learning_rate, l1, l2, max_gradient_norm)
        self.moment_decay_rate = moment_decay_rate

    moment_decay_rate = property(lambda self: self._m)

    @moment_decay_rate.setter
    def moment_decay_rate(self, v):
        self._m = _number(v, type(self).__name__, "moment_decay_rate")

    def _hyper(self):
        return dict(super()._hyper(), moment_decay_rate=self._m)


class AdaptiveGradient(Solver):
    """Adam (defaults: moment_decay_rate 0.9, second_moment_decay_rate 0.99,
    epsilon 1e-6; AMSGrad and decoupled weight decay as options). The step is
    lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps): epsilon is added before
    the bias correction, as in NeoML."""

    OP = "adaptive_gradient"
    STATE = ("m", "v", "vmax")

    def __init__(self, math_engine, learning_rate=0.01, l1=0, l2=0, max_gradient_norm=-1.0,
                 moment_decay_rate=0.9, second_moment_decay_rate=0.99, epsilon=1e-6,
                 ams_grad=False, decoupled_weight_decay=False):
        super().__init__(math_engine, learning_rate, l1, l2, max_gradient_norm)
        where = type(self).__name__
        self._m = _number(moment_decay_rate, where, "moment_decay_rate")
        self._m2 = _number(second_moment_decay_rate, where, "second_moment_decay_rate")
        self._eps = _number(epsilon, where, "epsilon")
        self._ams = bool(ams_grad)
        self._decoupled = bool(decoupled_weight_decay)

    moment_decay_rate = property(lambda self: self._m)
    second_moment_decay_rate = property(lambda self: self._m2)
    epsilon = property(lambda self: self._eps)
    ams_grad = property(lambda self: self._ams)
    decoupled_weight_decay = property(lambda self: self._decoupled)

    def _new_state(self, be, param):
        m, v = (be.zeros(param.shape, dtype=param.dtype) for _ in range(2))
        vmax = be.zeros(param.shape, dtype=param.dtype) if self._ams else None
        return [m, v, vmax]

    def _hyper(self):
        return dict(super()._hyper(), moment_decay_rate=self._m,
                    second_moment_decay_rate=self._m2, epsilon=self._eps, t=self._t,
                    amsgrad=self._ams, decoupled_weight_decay=self._decoupled)


class NesterovGradient(AdaptiveGradient):
    """NAdam as NeoML's NesterovGradient (Dozat's Algorithm 8 with NeoML's momentum
    schedule mu_k = b1 (1 - 0.5 * 0.96^(0.004 k)))."""

    OP = "nesterov_gradient"
