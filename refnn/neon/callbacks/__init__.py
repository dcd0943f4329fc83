"""neon.callbacks"""
from refnn.neon.callbacks.callbacks import (Callbacks, Callback, TrainCostCallback,
                                            ProgressBarCallback, RunTimerCallback,
                                            LossCallback, MetricCallback)

__all__ = ["Callbacks", "Callback", "TrainCostCallback", "ProgressBarCallback",
           "RunTimerCallback", "LossCallback", "MetricCallback"]
