"""Sphinx configuration of refnn's documentation.

Build:  pip install ".[docs]" && python -m sphinx -W --keep-going -b html docs docs/_build/html

tests/test_docs.py runs that build (warnings are errors) in the test suite.
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

project = "refnn"
author = "the refnn authors"
copyright = "the refnn authors; digits data: E. Alpaydin, C. Kaynak (CC BY 4.0)"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}

# every :mod:/:func:/:class: reference must resolve (a broken one is a warning, and the
# build runs with -W); no intersphinx: the build needs no network
nitpicky = True

master_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []


def _docstring_as_written(app, what, name, obj, options, lines):
    """refnn's docstrings are plain text with ASCII formulas (``y_nj = sum_i x_ni W_ji``),
    written to be read in the source and in help(); show them verbatim, as a literal
    block, rather than parse them as reStructuredText."""
    if lines:
        lines[:] = ["::", ""] + ["    " + line for line in lines] + [""]


def setup(app):
    app.connect("autodoc-process-docstring", _docstring_as_written)
