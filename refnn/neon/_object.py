"""NervanaObject: the base of every neon object, holding the backend ``be``.

neon keeps the current backend in the class attribute ``NervanaObject.be`` (set by
``gen_backend``) and every layer, cost and optimizer reads ``self.be``. That is the
facade's only global state, and neon's API requires it. To keep several threads
independent, the slot is per thread: ``gen_backend`` (or ``NervanaObject.be = x``) in
a thread sets that thread's backend and the process-wide default that threads which
never called ``gen_backend`` fall back to.
"""
import itertools
import threading

_LOCAL = threading.local()
_DEFAULT = {"be": None}


def _current_backend():
    return getattr(_LOCAL, "be", _DEFAULT["be"])


def _set_backend(be):
    _LOCAL.be = be
    _DEFAULT["be"] = be


class _BackendSlot:
    """``NervanaObject.be`` / ``self.be``: this thread's neon backend."""

    def __get__(self, obj, cls=None):
        return _current_backend()


class _NervanaMeta(type):
    def __setattr__(cls, name, value):
        if name == "be":
            _set_backend(value)
        else:
            super().__setattr__(name, value)


class NervanaObject(metaclass=_NervanaMeta):
    """Base (global) object available to all other classes; ``be`` is the backend.

    ``name`` defaults to ``<ClassName>_<n>`` with a process-wide counter, as in neon.
    """

    be = _BackendSlot()
    _counter = itertools.count()

    def __init__(self, name=None):
        if name is None:
            name = f"{type(self).__name__}_{next(NervanaObject._counter)}"
        self.name = name

    @property
    def classnm(self):
        return type(self).__name__

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
