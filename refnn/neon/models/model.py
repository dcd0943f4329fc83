"""Model (neon.models.model): a Sequential of layers with fit / eval / get_outputs."""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neon._object import NervanaObject
from refnn.neon.backends.backend import Block
from refnn.neon.layers.container import Sequential


class Model(NervanaObject):
    """Stores a list of layers (wrapped into a Sequential) and trains them.

    Layer shapes are set when a dataset is first seen (``initialize``): the dataset's
    shape is propagated through each layer's ``configure``, then ``allocate`` creates
    weights (drawn from ``be.rng``) and buffers. A model is initialized only once.
    """

    def __init__(self, layers, dataset=None, weights_only=False, name="model",
                 optimizer=None):
        super().__init__(name)
        if isinstance(layers, (str, dict)):
            raise ParameterError("Model: loading a serialized model is not provided; "
                                 "pass a list of layers or a Sequential")
        self.optimizer = optimizer
        self.initialized = False
        self.cost = None
        self.nbatches = 0
        self.ndata = 0
        self.epoch_index = 0
        self.finished = False
        self.total_cost = None
        self.layers = layers if isinstance(layers, Sequential) else Sequential(layers)
        self.layers_to_optimize = self.layers.layers_to_optimize
        if dataset is not None:
            self.initialize(dataset)

    def __str__(self):
        return f"Network Layers:\n{self.layers.nested_str(1)}"

    def initialize(self, dataset, cost=None):
        """Configure shapes from ``dataset`` and allocate buffers (once)."""
        if self.initialized:
            return
        self.layers.configure(dataset)
        self.layers.allocate()
        self.layers.allocate_deltas()
        if cost is not None:
            cost.initialize(self.layers)
            self.cost = cost
        self.initialized = True

    def fprop(self, x, inference=False):
        return self.layers.fprop(x, inference=inference)

    def bprop(self, delta):
        return self.layers.bprop(delta)

    def _check_targets(self, x, t):
        if t is None:
            raise ParameterError("Model: the dataset yields no targets (ArrayIterator y=None)")
        if tuple(t.shape) != tuple(x.shape):
            raise ShapeError(f"Model: targets of shape {t.shape} do not match the output of "
                             f"layer {self.layers.layers[-1].name!r}, {x.shape} "
                             "(features, batch)")

    def fit(self, dataset, cost, optimizer, num_epochs, callbacks):
        """Train for ``num_epochs`` epochs over ``dataset``."""
        self.nbatches = dataset.nbatches
        self.ndata = dataset.ndata
        self.total_cost = self.be.zeros((1, 1))
        self.optimizer = optimizer
        self.initialize(dataset, cost)
        if self.cost is not cost:     # initialized earlier without a cost
            cost.initialize(self.layers)
            self.cost = cost
        callbacks.on_train_begin(num_epochs)
        while self.epoch_index < num_epochs and not self.finished:
            self.nbatches = dataset.nbatches
            callbacks.on_epoch_begin(self.epoch_index)
            self._epoch_fit(dataset, callbacks)
            callbacks.on_epoch_end(self.epoch_index)
            self.epoch_index += 1
        callbacks.on_train_end()

    def _epoch_fit(self, dataset, callbacks):
        epoch = self.epoch_index
        self.total_cost[:] = 0
        nbatches = 0
        for mb_idx, (x, t) in enumerate(dataset):
            callbacks.on_minibatch_begin(epoch, mb_idx)
            self.be.begin(Block.minibatch, mb_idx)
            x = self.fprop(x)
            self._check_targets(x, t)
            self.total_cost[:] = self.total_cost + self.cost.get_cost(x, t)
            delta = self.cost.get_errors(x, t)
            self.bprop(delta)
            self.optimizer.optimize(self.layers_to_optimize, epoch=epoch)
            self.be.end(Block.minibatch, mb_idx)
            callbacks.on_minibatch_end(epoch, mb_idx)
            nbatches += 1
        self.total_cost[:] = self.total_cost / max(nbatches, 1)

    def eval(self, dataset, metric):
        """Mean of ``metric`` over every sample of ``dataset`` (a NumPy array). After a
        recurrent layer (outputs (nclass, nsteps * bsz)) every step of every sample
        counts once, as in neon."""
        self.initialize(dataset)
        running = np.zeros(len(metric.metric_names), dtype=np.float64)
        nprocessed = nvalues = 0
        dataset.reset()
        for x, t in dataset:
            x = self.fprop(x, inference=True)
            self._check_targets(x, t)
            nsteps = max(x.shape[1] // self.be.bsz, 1)
            bsz = min(dataset.ndata - nprocessed, self.be.bsz)
            if nsteps == 1 or bsz == self.be.bsz:
                calcrange = slice(0, nsteps * bsz)
            else:       # a partial batch: the first bsz samples of every (time-major) step
                calcrange = (np.arange(nsteps)[:, None] * self.be.bsz
                             + np.arange(bsz)).ravel()
            running += np.asarray(metric(x, t, calcrange=calcrange)) * nsteps * bsz
            nprocessed += bsz
            nvalues += nsteps * bsz
        dataset.reset()
        return (running / max(nvalues, 1)).astype(np.float32)

    def get_outputs(self, dataset):
        """The last layer's outputs for every sample, (ndata, nout) NumPy array; after a
        recurrent layer (outputs (nout, nsteps * bsz), time-major) (ndata, nsteps, nout),
        as neon's."""
        self.initialize(dataset)
        dataset.reset()
        rows = []
        for x, _ in dataset:
            y = self.fprop(x, inference=True).get()
            nsteps = max(y.shape[1] // self.be.bsz, 1)
            # (nout, nsteps * bsz) -> (bsz, nsteps, nout): column s * bsz + n is (n, s)
            rows.append(y.reshape(y.shape[0], nsteps, -1).transpose(2, 1, 0))
        dataset.reset()
        out = np.concatenate(rows)[:dataset.ndata]
        return out[:, 0, :] if out.shape[1] == 1 else out

    def get_description(self, get_weights=False, keep_states=False):
        layers = [layer.get_description(get_weights, keep_states)
                  for layer in self.layers.layers]
        return {"model": {"type": "Model", "config": {"layers": layers}},
                "epoch_index": self.epoch_index}
