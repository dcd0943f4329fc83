"""neon.util: the pieces of neon's utilities an MLP script touches."""
from refnn.neon.util.argparser import NeonArgparser, extract_valid_args

__all__ = ["NeonArgparser", "extract_valid_args"]
