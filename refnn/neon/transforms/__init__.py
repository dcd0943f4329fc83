"""neon.transforms: activation functions, costs and metrics."""
from refnn.neon.transforms.transform import Transform
from refnn.neon.transforms.activation import (Identity, Rectlin, Explin, Normalizer, Tanh,
                                              Logistic, Softmax)
from refnn.neon.transforms.cost import (Cost, CrossEntropyMulti, CrossEntropyBinary,
                                        SumSquared, MeanSquared, Metric, Misclassification,
                                        Accuracy, LogLoss, TopKMisclassification)

__all__ = ["Transform", "Identity", "Rectlin", "Explin", "Normalizer", "Tanh", "Logistic",
           "Softmax", "Cost", "CrossEntropyMulti", "CrossEntropyBinary", "SumSquared",
           "MeanSquared", "Metric", "Misclassification", "Accuracy", "LogLoss",
           "TopKMisclassification"]
