"""neon.data"""
from refnn.neon.data.dataiterator import NervanaDataIterator, ArrayIterator

__all__ = ["NervanaDataIterator", "ArrayIterator"]
