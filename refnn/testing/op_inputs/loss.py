"""loss family (being written)."""
INPUTS = {}
