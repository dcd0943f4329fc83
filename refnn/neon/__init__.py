"""refnn.neon -- Intel Nervana neon's API on refnn's ops.

A neon script runs after changing only its imports (``neon`` -> ``refnn.neon``)::

    from refnn.neon.backends import gen_backend
    from refnn.neon.data import ArrayIterator
    ...

The facade owns neon's conventions only -- (features, batch) tensors, the global
``NervanaObject.be``, the Model/Layer/Optimizer life cycle -- and runs every layer's
arithmetic through a refnn backend's ops (``be.rb.op(...)``): ``gen_backend('cpu')``
(Cython), ``'gpu'`` (OpenCL), ``'reference'`` (NumPy).

neon quirks kept on purpose: optimizers divide gradients by the batch size; the
Softmax + CrossEntropyMulti (and Logistic + CrossEntropyBinary) pair uses the delta
y - t; dropout does not rescale in training and multiplies by ``keep`` at inference;
a last partial minibatch wraps around to the start of the data.
"""
from refnn.neon._object import NervanaObject

__all__ = ["NervanaObject"]
