"""The math of refnn: one module per family, plain NumPy forward/backward functions.

``SPECS`` lists every op of every family; the generic tests, the coverage matrix and
the tolerance table are all driven from it. A new family module is added to
``FAMILIES`` below (and nowhere else in this package).
"""
import importlib

FAMILIES = ("dense", "activation", "loss", "optim", "conv", "pool", "norm", "channelwise", "sequence", "embedding", "recurrent", "image", "attention")


def all_specs():
    """Return {op name: OpSpec} for every family in FAMILIES."""
    specs = {}
    for family in FAMILIES:
        module = importlib.import_module(f"refnn.ops.{family}")
        for spec in module.SPECS:
            if spec.name in specs:
                raise ValueError(f"op {spec.name!r} is defined twice")
            specs[spec.name] = spec
    return specs
