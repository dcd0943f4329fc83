"""A small NeonArgparser: neon's common command-line flags for example scripts.

Parses -b/--backend, -z/--batch_size, -e/--epochs, -r/--rng_seed, -i/--device_id,
--datatype; ``gen_backend(**extract_valid_args(args, gen_backend))`` then works as in
neon's examples. Configuration files, logging and serialization flags are not provided.
"""
import argparse
import inspect

import numpy as np


class NeonArgparser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("description", "refnn neon script")
        super().__init__(*args, **kwargs)
        self.add_argument("-b", "--backend", default="cpu",
                          choices=["cpu", "gpu", "reference", "mkl"])
        self.add_argument("-z", "--batch_size", type=int, default=128)
        self.add_argument("-e", "--epochs", type=int, default=10)
        self.add_argument("-r", "--rng_seed", type=int, default=None)
        self.add_argument("-i", "--device_id", default=None)
        self.add_argument("--datatype", default="f32", choices=["f32", "f64"])
        self.add_argument("--no_progress_bar", action="store_true")

    def parse_args(self, args=None, namespace=None, gen_be=True):
        ns = super().parse_args(args, namespace)
        ns.datatype = {"f32": np.float32, "f64": np.float64}[ns.datatype]
        ns.callback_args = {"progress_bar": not ns.no_progress_bar}
        if gen_be:
            from refnn.neon.backends import gen_backend
            gen_backend(**extract_valid_args(ns, gen_backend))
        return ns


def extract_valid_args(args, func, startidx=0):
    """The entries of namespace ``args`` that are parameters of ``func``."""
    names = list(inspect.signature(func).parameters)[startidx:]
    return {k: v for k, v in vars(args).items() if k in names}
