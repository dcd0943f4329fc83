"""dense family (being written)."""
