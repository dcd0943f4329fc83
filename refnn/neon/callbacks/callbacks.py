"""Callbacks (neon.callbacks.callbacks): hooks run at the start/end of training,
epochs and minibatches.

``Callbacks(model, eval_set=None, eval_freq=1)`` always records the training cost
(TrainCostCallback), shows a tqdm progress bar (ProgressBarCallback) and, given an
``eval_set``, the loss on it every ``eval_freq`` epochs (LossCallback). Results go to
``callbacks.callback_data``, a dict of NumPy arrays keyed like neon's HDF5 file
('cost/train', 'cost/loss', 'time_markers/minibatch', ...).
"""
import time

import numpy as np

from refnn.errors import ParameterError
from refnn.neon._object import NervanaObject


class Callbacks(NervanaObject):
    """Container class for storing and iterating over callbacks."""

    def __init__(self, model, train_set=None, eval_set=None, eval_freq=1, progress_bar=True,
                 metric=None, name=None, **neon_only_args):
        super().__init__(name)
        given = sorted(k for k, v in neon_only_args.items() if v not in (None, 0, False, ""))
        if given:
            raise ParameterError(f"Callbacks: {', '.join(given)} not provided by refnn.neon "
                                 "(serialization, output files and logging are not built in)")
        self.model = model
        self.callbacks = []
        self.callback_data = {}
        self.epoch_marker = 0
        self.add_callback(TrainCostCallback())
        if progress_bar:
            self.add_callback(ProgressBarCallback())
        if eval_set is not None:
            if not eval_freq or eval_freq <= 0:
                raise ParameterError(f"Callbacks: eval_freq must be a positive int, got "
                                     f"{eval_freq!r}")
            self.add_callback(LossCallback(eval_set, eval_freq))
            if metric is not None:
                self.add_callback(MetricCallback(eval_set, metric, eval_freq))

    def add_callback(self, callback, insert_pos=None):
        if insert_pos is None:
            self.callbacks.append(callback)
        else:
            self.callbacks.insert(insert_pos, callback)

    def _each(self, method, *args):
        for cb in self.callbacks:
            getattr(cb, method)(self.callback_data, self.model, *args)

    def on_train_begin(self, epochs):
        self.callback_data["config/total_epochs"] = epochs
        self.callback_data["time_markers/minibatch"] = np.zeros(epochs)
        self._each("on_train_begin", epochs)

    def on_train_end(self):
        self._each("on_train_end")

    def on_epoch_begin(self, epoch):
        self._each("on_epoch_begin", epoch)

    def on_epoch_end(self, epoch):
        self._each("on_epoch_end", epoch)
        self.epoch_marker += self.model.nbatches
        self.callback_data["time_markers/minibatch"][epoch] = self.epoch_marker

    def on_minibatch_begin(self, epoch, minibatch):
        self._each("on_minibatch_begin", epoch, minibatch)

    def on_minibatch_end(self, epoch, minibatch):
        self._each("on_minibatch_end", epoch, minibatch)


class Callback(NervanaObject):
    """Interface: override any of the on_* hooks (each gets callback_data and model)."""

    def __init__(self, epoch_freq=1, minibatch_freq=1):
        super().__init__()
        self.epoch_freq = epoch_freq
        self.minibatch_freq = minibatch_freq

    def on_train_begin(self, callback_data, model, epochs): pass
    def on_train_end(self, callback_data, model): pass
    def on_epoch_begin(self, callback_data, model, epoch): pass
    def on_epoch_end(self, callback_data, model, epoch): pass
    def on_minibatch_begin(self, callback_data, model, epoch, minibatch): pass
    def on_minibatch_end(self, callback_data, model, epoch, minibatch): pass

    def should_fire(self, callback_data, model, time, freq):
        return freq and (time + 1) % freq == 0


class TrainCostCallback(Callback):
    """Records each minibatch's cost in callback_data['cost/train'] (a running mean
    over the last ``wsz`` minibatches, as neon)."""

    def __init__(self, wsz=10):
        super().__init__()
        self.wsz = wsz

    def on_train_begin(self, callback_data, model, epochs):
        total = max(1, int(model.nbatches) * int(epochs))
        callback_data["cost/train"] = np.zeros(total, dtype=np.float32)
        self.costs = np.zeros(self.wsz, dtype=np.float32)
        self.steps = 0

    def on_minibatch_end(self, callback_data, model, epoch, minibatch):
        cost = float(model.cost.cost.get()[0, 0])
        self.costs[self.steps % self.wsz] = cost
        mean = self.costs[:min(self.steps + 1, self.wsz)].mean()
        data = callback_data["cost/train"]
        if self.steps >= data.size:
            callback_data["cost/train"] = data = np.resize(data, self.steps + 1)
        data[self.steps] = mean
        self.steps += 1


class ProgressBarCallback(Callback):
    """A live tqdm progress bar per epoch showing the current training cost."""

    def __init__(self, **tqdm_args):
        super().__init__()
        self.tqdm_args = tqdm_args
        self.bar = None

    def on_epoch_begin(self, callback_data, model, epoch):
        from tqdm import tqdm
        self.bar = tqdm(total=model.nbatches, desc=f"Epoch {epoch}", leave=True,
                        **self.tqdm_args)

    def on_minibatch_end(self, callback_data, model, epoch, minibatch):
        self.bar.update(1)
        self.bar.set_postfix(cost=f"{float(model.cost.cost.get()[0, 0]):.5f}", refresh=False)

    def on_epoch_end(self, callback_data, model, epoch):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class RunTimerCallback(Callback):
    """Records the total training time in callback_data['time/train']."""

    def on_train_begin(self, callback_data, model, epochs):
        self.start = time.time()

    def on_train_end(self, callback_data, model):
        callback_data["time/train"] = time.time() - self.start


class LossCallback(Callback):
    """The mean cost on ``eval_set`` every ``epoch_freq`` epochs -> 'cost/loss'."""

    def __init__(self, eval_set, epoch_freq=1):
        super().__init__(epoch_freq=epoch_freq)
        self.eval_set = eval_set

    def on_train_begin(self, callback_data, model, epochs):
        callback_data["cost/loss"] = np.zeros(epochs // self.epoch_freq, dtype=np.float32)

    def on_epoch_end(self, callback_data, model, epoch):
        if self.should_fire(callback_data, model, epoch, self.epoch_freq):
            loss = model.eval(self.eval_set, metric=_CostMetric(model.cost))
            callback_data["cost/loss"][(epoch + 1) // self.epoch_freq - 1] = loss[0]


class MetricCallback(Callback):
    """``metric`` on ``eval_set`` every ``epoch_freq`` epochs -> 'metrics/<name>'."""

    def __init__(self, eval_set, metric, epoch_freq=1):
        super().__init__(epoch_freq=epoch_freq)
        self.eval_set, self.metric = eval_set, metric

    def on_train_begin(self, callback_data, model, epochs):
        for name in self.metric.metric_names:
            callback_data[f"metrics/{name}"] = np.zeros(epochs // self.epoch_freq)

    def on_epoch_end(self, callback_data, model, epoch):
        if self.should_fire(callback_data, model, epoch, self.epoch_freq):
            values = np.atleast_1d(model.eval(self.eval_set, metric=self.metric))
            for name, v in zip(self.metric.metric_names, values):
                callback_data[f"metrics/{name}"][(epoch + 1) // self.epoch_freq - 1] = v


class _CostMetric:
    """Adapts a GeneralizedCost to Model.eval's metric interface (mean per-sample cost)."""

    metric_names = ["Loss"]

    def __init__(self, cost):
        self.cost = cost

    def __call__(self, y, t, calcrange=slice(0, None)):
        per_sample = self.cost.costfunc(y, t)
        buf = y.backend.empty((1, y.shape[1]))
        buf[:] = per_sample
        return float(buf.get()[:, calcrange].mean())
