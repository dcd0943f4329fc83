"""neon.data"""
from refnn.neon.data.dataiterator import NervanaDataIterator, ArrayIterator
from refnn.neon.data.text import Text

__all__ = ["NervanaDataIterator", "ArrayIterator", "Text"]
