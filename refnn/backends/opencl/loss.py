"""loss family (being written)."""
