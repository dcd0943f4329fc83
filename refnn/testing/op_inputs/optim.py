"""Input strategies for the optimizer family: (param, grad, *state) of one shape, and
hyper-parameters.

States are either fresh (zeros: the first update) or warm (running averages of a
plausible size; second moments >= 0.1 so steps stay O(learning rate)). Hyper-parameters
cover momentum 0 and > 0, nesterov on/off, clipping on/off, t >= 1, amsgrad on/off,
decoupled weight decay on/off, l1/l2 on/off.
"""
import numpy as np
from hypothesis import strategies as st

from refnn.testing import strategies as rst


def _shape():
    return rst.shapes(max_dims=3, max_side=7)


def _state(shape, warm, low=-1.0, high=1.0):
    if not warm:
        return st.just(np.zeros(shape))
    return rst.arrays(shape, st.floats(low, high, allow_nan=False))


def _case(states, hyper):
    """states: list of (low, high) ranges for the warm state arrays (after param, grad)."""
    def build(shape, warm):
        arrays = [rst.arrays(shape), rst.arrays(shape)]
        arrays += [_state(shape, warm, lo, hi) for lo, hi in states]
        return st.tuples(st.tuples(*arrays), hyper)
    return st.tuples(_shape(), st.booleans()).flatmap(lambda a: build(*a))


_neon_grad = dict(grad_scale=st.sampled_from([1.0, 0.125]),
                  clip_value=st.sampled_from([None, 0.5]),
                  norm_scale=st.sampled_from([1.0, 0.7]))


def _gdm_hyper():
    def build(momentum):
        return st.fixed_dictionaries(dict(
            learning_rate=st.sampled_from([0.01, 0.1]), momentum_coef=st.just(momentum),
            wdecay=st.sampled_from([0.0, 0.01]),
            nesterov=st.booleans() if momentum > 0 else st.just(False), **_neon_grad))
    return st.sampled_from([0.0, 0.9]).flatmap(build)


def _neoml_hyper(adaptive):
    hyper = dict(learning_rate=st.sampled_from([0.01, 0.1]),
                 moment_decay_rate=st.sampled_from([0.0, 0.9]),
                 l1=st.sampled_from([0.0, 0.05]), l2=st.sampled_from([0.0, 0.01]),
                 grad_scale=st.sampled_from([1.0, 0.5]))
    if adaptive:
        hyper.update(moment_decay_rate=st.sampled_from([0.9, 0.5]),
                     second_moment_decay_rate=st.sampled_from([0.99, 0.9]),
                     epsilon=st.sampled_from([1e-6, 1e-3]), t=st.integers(1, 60),
                     decoupled_weight_decay=st.booleans())
    return st.fixed_dictionaries(hyper)


def _adaptive():
    """m, v (and vmax with amsgrad=True)."""
    def build(amsgrad):
        states = [(-1.0, 1.0), (0.1, 3.0)] + ([(0.1, 3.0)] if amsgrad else [])
        return _case(states, _neoml_hyper(True).map(lambda h: {**h, "amsgrad": amsgrad}))
    return st.booleans().flatmap(build)


INPUTS = {
    "gdm": _case([(-1.0, 1.0)], _gdm_hyper()),
    "rmsprop": _case([(0.1, 3.0)], st.fixed_dictionaries(dict(
        learning_rate=st.sampled_from([2e-3, 0.05]), decay_rate=st.sampled_from([0.95, 0.5]),
        epsilon=st.sampled_from([1e-6, 1e-3]), **_neon_grad))),
    "adagrad": _case([(0.1, 3.0)], st.fixed_dictionaries(dict(
        learning_rate=st.sampled_from([0.01, 0.1]), epsilon=st.sampled_from([1e-6, 1e-3]),
        **_neon_grad))),
    "adadelta": _case([(0.1, 3.0), (0.01, 1.0)], st.fixed_dictionaries(dict(
        decay=st.sampled_from([0.95, 0.5]), epsilon=st.sampled_from([1e-6, 1e-3]),
        grad_scale=st.sampled_from([1.0, 0.125])))),
    "adam": _case([(-1.0, 1.0), (0.1, 3.0)], st.fixed_dictionaries(dict(
        learning_rate=st.sampled_from([1e-3, 0.05]), beta_1=st.sampled_from([0.9, 0.5]),
        beta_2=st.sampled_from([0.999, 0.9]), epsilon=st.sampled_from([1e-8, 1e-3]),
        t=st.integers(1, 60), **_neon_grad))),
    "simple_gradient": _case([(-1.0, 1.0)], _neoml_hyper(False)),
    "adaptive_gradient": _adaptive(),
    "nesterov_gradient": _adaptive(),
}
