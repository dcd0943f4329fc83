"""dense family (being written)."""
SPECS = []
