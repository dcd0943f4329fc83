"""neon.models"""
from refnn.neon.models.model import Model

__all__ = ["Model"]
