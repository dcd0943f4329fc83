"""Benchmark cases; each module defines VARIANTS, REPEAT and make(path, variant)."""
