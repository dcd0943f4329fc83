"""optim family (being written)."""
INPUTS = {}
