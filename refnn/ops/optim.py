"""optim family (being written)."""
SPECS = []
