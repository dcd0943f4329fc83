"""optim family (being written)."""
