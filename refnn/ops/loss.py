"""loss family (being written)."""
SPECS = []
