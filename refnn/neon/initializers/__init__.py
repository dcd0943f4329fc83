"""neon.initializers"""
from refnn.neon.initializers.initializer import (Initializer, Constant, Array, Uniform,
                                                 Gaussian, IdentityInit, GlorotUniform,
                                                 Xavier, Kaiming, Orthonormal)

__all__ = ["Initializer", "Constant", "Array", "Uniform", "Gaussian", "IdentityInit",
           "GlorotUniform", "Xavier", "Kaiming", "Orthonormal"]
