"""dense family (being written)."""
INPUTS = {}
