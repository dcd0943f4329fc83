"""neon.optimizers"""
from refnn.neon.optimizers.optimizer import (Optimizer, GradientDescentMomentum, RMSProp,
                                             Adagrad, Adadelta, Adam, MultiOptimizer,
                                             Schedule, StepSchedule, PowerSchedule,
                                             ExpSchedule, PolySchedule, get_param_list)

__all__ = ["Optimizer", "GradientDescentMomentum", "RMSProp", "Adagrad", "Adadelta", "Adam",
           "MultiOptimizer", "Schedule", "StepSchedule", "PowerSchedule", "ExpSchedule",
           "PolySchedule", "get_param_list"]
