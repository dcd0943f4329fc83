"""Learning rules and schedules (neon.optimizers.optimizer).

Each optimizer runs one refnn ``<op>.update`` per parameter, in place, with neon's
gradient preparation passed as hyper-parameters: ``grad_scale = 1 / be.bsz`` (neon
divides every gradient by the batch size), ``clip_value`` (gradient_clip_value) and
``norm_scale`` (the global gradient_clip_norm factor, computed here over all layers).
"""
import numpy as np

from refnn.errors import ParameterError
from refnn.neon._object import NervanaObject


# ----------------------------------------------------------------- schedules
class Schedule(NervanaObject):
    """Learning rate schedule: lr * change ** steps.

    step_config an int: steps = floor(epoch / step_config); a list: steps = number of
    its epochs already reached; step_config and change both lists: behaves like
    StepSchedule. The default (no steps) keeps the rate constant.
    """

    def __init__(self, step_config=None, change=1.0, name=None):
        super().__init__(name)
        if isinstance(step_config, list) and isinstance(change, list) \
                and len(step_config) != len(change):
            raise ParameterError("Schedule: step_config and change must have the same length")
        self.step_config = [] if step_config is None else step_config
        self.change = change
        self.steps = 0

    def get_learning_rate(self, learning_rate, epoch):
        if isinstance(self.step_config, list) and isinstance(self.change, list):
            if epoch in self.step_config:
                self.steps = self.change[self.step_config.index(epoch)]
            return learning_rate if self.steps == 0 else self.steps
        if isinstance(self.step_config, int):
            self.steps = np.floor(epoch / self.step_config)
        elif isinstance(self.step_config, list):
            self.steps = np.sum(epoch >= np.array(self.step_config))
        return float(learning_rate * self.change ** self.steps)


class StepSchedule(Schedule):
    """At each epoch in ``step_config`` the rate becomes the matching ``change`` value."""

    def __init__(self, step_config, change, name=None):
        if not isinstance(step_config, list) or not isinstance(change, list):
            raise ParameterError("StepSchedule: step_config and change must be lists")
        super().__init__(step_config, change, name)


class PowerSchedule(Schedule):
    """lr * change ** (epoch // step_config)."""

    def __init__(self, step_config, change, name=None):
        if not isinstance(step_config, int) or step_config <= 0:
            raise ParameterError(f"PowerSchedule: step_config must be a positive int, "
                                 f"got {step_config!r}")
        super().__init__(step_config, change, name)

    def get_learning_rate(self, learning_rate, epoch):
        return float(learning_rate * self.change ** (epoch // self.step_config))


class ExpSchedule(Schedule):
    """lr / (1 + decay * epoch)."""

    def __init__(self, decay, name=None):
        super().__init__(name=name)
        self.decay = decay

    def get_learning_rate(self, learning_rate, epoch):
        return float(learning_rate / (1.0 + self.decay * epoch))


class PolySchedule(Schedule):
    """lr * (1 - epoch / total_epochs) ** power."""

    def __init__(self, total_epochs, power, name=None):
        super().__init__(name=name)
        self.total_epochs = np.float32(total_epochs)
        self.power = power

    def get_learning_rate(self, learning_rate, epoch):
        return float(learning_rate * (1.0 - epoch / self.total_epochs) ** self.power)


# ---------------------------------------------------------------- optimizers
def get_param_list(layer_list):
    """[((param, grad), states), ...] over the layers (containers are expanded)."""
    out = []
    for layer in layer_list:
        out.extend(layer.get_params())
    return out


class Optimizer(NervanaObject):
    """The gradient update stage of training: ``optimize(layer_list, epoch)``."""

    OPS = ()

    def __init__(self, name=None):
        super().__init__(name)

    def optimize(self, layer_list, epoch):
        raise NotImplementedError(f"{type(self).__name__} must implement optimize")

    def clip_gradient_norm(self, param_list, clip_norm=None):
        """neon's scale factor clip_norm / max(||g|| / bsz, clip_norm) (1 without clipping)."""
        if not clip_norm:
            return 1.0
        be = self.be
        total = be.zeros((1, 1))
        for (_, grad), _ in param_list:
            total[:] = total + be.sum(be.square(grad))
        grad_norm = float(np.sqrt(total.get()[0, 0])) / be.bsz
        return clip_norm / max(grad_norm, float(clip_norm))

    def _hyper(self, scale_factor, clip=True):
        h = {"grad_scale": 1.0 / self.be.bsz, "norm_scale": scale_factor}
        if clip:
            h["clip_value"] = self.gradient_clip_value
        return h

    def _clip_param(self, param):
        if self.param_clip_value is not None:
            param[:] = self.be.clip(param, -self.param_clip_value, self.param_clip_value)

    def _run(self, layer_list, epoch, n_states, **hyper):
        param_list = get_param_list(layer_list)
        scale = self.clip_gradient_norm(param_list, getattr(self, "gradient_clip_norm", None))
        update = self.be.rb.op(self.OPS[0] + ".update")
        for (param, grad), states in param_list:
            while len(states) < n_states:
                states.append(self.be.zeros_like(grad))
            update(param._data, grad._data, *(s._data for s in states[:n_states]),
                   **self._hyper(scale), **hyper)
            self._clip_param(param)


class GradientDescentMomentum(Optimizer):
    """SGD with momentum (refnn ``gdm``), neon's order of operations:

    g = norm_scale * clip(grad / bsz) + wdecay * param; v = momentum v - lr g;
    param += v (nesterov: param += momentum v - lr g).
    """

    OPS = ("gdm",)

    def __init__(self, learning_rate, momentum_coef, stochastic_round=False, wdecay=0.0,
                 gradient_clip_norm=None, gradient_clip_value=None, param_clip_value=None,
                 name=None, schedule=None, nesterov=False):
        super().__init__(name)
        if stochastic_round:
            raise ParameterError("GradientDescentMomentum: stochastic_round is not provided")
        if nesterov and not momentum_coef:
            raise ParameterError("GradientDescentMomentum: nesterov=True requires "
                                 f"momentum_coef > 0, got {momentum_coef!r}")
        self.learning_rate, self.momentum_coef = learning_rate, momentum_coef
        self.wdecay, self.nesterov = wdecay, nesterov
        self.gradient_clip_norm = gradient_clip_norm
        self.gradient_clip_value = gradient_clip_value
        self.param_clip_value = param_clip_value
        self.schedule = schedule if schedule is not None else Schedule()

    def optimize(self, layer_list, epoch):
        lrate = self.schedule.get_learning_rate(self.learning_rate, epoch)
        self._run(layer_list, epoch, 1, learning_rate=lrate,
                  momentum_coef=self.momentum_coef, wdecay=self.wdecay, nesterov=self.nesterov)


class RMSProp(Optimizer):
    """Root Mean Square propagation (refnn ``rmsprop``)."""

    OPS = ("rmsprop",)

    def __init__(self, stochastic_round=False, decay_rate=0.95, learning_rate=2e-3,
                 epsilon=1e-6, gradient_clip_norm=None, gradient_clip_value=None,
                 param_clip_value=None, name=None, schedule=None):
        super().__init__(name)
        if stochastic_round:
            raise ParameterError("RMSProp: stochastic_round is not provided")
        self.decay_rate, self.learning_rate, self.epsilon = decay_rate, learning_rate, epsilon
        self.gradient_clip_norm = gradient_clip_norm
        self.gradient_clip_value = gradient_clip_value
        self.param_clip_value = param_clip_value
        self.schedule = schedule if schedule is not None else Schedule()

    def optimize(self, layer_list, epoch):
        lrate = self.schedule.get_learning_rate(self.learning_rate, epoch)
        self._run(layer_list, epoch, 1, learning_rate=lrate, decay_rate=self.decay_rate,
                  epsilon=self.epsilon)


class Adagrad(Optimizer):
    """Adagrad (refnn ``adagrad``)."""

    OPS = ("adagrad",)

    def __init__(self, stochastic_round=False, learning_rate=0.01, epsilon=1e-6,
                 gradient_clip_norm=None, gradient_clip_value=None, param_clip_value=None,
                 name=None):
        super().__init__(name)
        if stochastic_round:
            raise ParameterError("Adagrad: stochastic_round is not provided")
        self.learning_rate, self.epsilon = learning_rate, epsilon
        self.gradient_clip_norm = gradient_clip_norm
        self.gradient_clip_value = gradient_clip_value
        self.param_clip_value = param_clip_value

    def optimize(self, layer_list, epoch):
        self._run(layer_list, epoch, 1, learning_rate=self.learning_rate,
                  epsilon=self.epsilon)


class Adadelta(Optimizer):
    """Adadelta (refnn ``adadelta``; neon has no gradient clipping here)."""

    OPS = ("adadelta",)

    def __init__(self, stochastic_round=False, decay=0.95, epsilon=1e-6,
                 param_clip_value=None, name=None):
        super().__init__(name)
        if stochastic_round:
            raise ParameterError("Adadelta: stochastic_round is not provided")
        self.decay, self.epsilon = decay, epsilon
        self.param_clip_value = param_clip_value

    def optimize(self, layer_list, epoch):
        update = self.be.rb.op("adadelta.update")
        for (param, grad), states in get_param_list(layer_list):
            while len(states) < 2:
                states.append(self.be.zeros_like(grad))
            update(param._data, grad._data, states[0]._data, states[1]._data,
                   decay=self.decay, epsilon=self.epsilon, grad_scale=1.0 / self.be.bsz)
            self._clip_param(param)


class Adam(Optimizer):
    """Adam (refnn ``adam``); the step counter t starts at 1 on the first optimize."""

    OPS = ("adam",)

    def __init__(self, stochastic_round=False, learning_rate=0.001, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, gradient_clip_norm=None,
                 gradient_clip_value=None, param_clip_value=None, name="adam"):
        super().__init__(name)
        if stochastic_round:
            raise ParameterError("Adam: stochastic_round is not provided")
        self.learning_rate, self.beta_1, self.beta_2 = learning_rate, beta_1, beta_2
        self.epsilon = epsilon
        self.gradient_clip_norm = gradient_clip_norm
        self.gradient_clip_value = gradient_clip_value
        self.param_clip_value = param_clip_value
        self.t = 0

    def optimize(self, layer_list, epoch):
        self.t += 1
        self._run(layer_list, epoch, 2, learning_rate=self.learning_rate,
                  beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, t=self.t)


class MultiOptimizer(Optimizer):
    """Different optimizers for different layers.

    ``optimizer_mapping`` maps a layer name or a layer class name to an optimizer;
    ``'default'`` (required) covers the rest. A layer's name wins over its class name.
    """

    def __init__(self, optimizer_mapping, name=None):
        super().__init__(name)
        if "default" not in optimizer_mapping:
            raise ParameterError("MultiOptimizer: optimizer_mapping needs a 'default' entry")
        self.optimizer_mapping = optimizer_mapping

    OPS = ()   # each mapped optimizer runs its own op

    def _map(self, layer):
        for key in (layer.name, type(layer).__name__):
            if key in self.optimizer_mapping:
                return self.optimizer_mapping[key]
        return self.optimizer_mapping["default"]

    def optimize(self, layer_list, epoch):
        groups = {}
        for layer in layer_list:
            opt = self._map(layer)
            groups.setdefault(id(opt), (opt, []))[1].append(layer)
        for opt, layers in groups.values():
            opt.optimize(layers, epoch)
