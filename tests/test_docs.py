"""The Sphinx docs build with no warning: they are part of the product.

The build is the one docs/conf.py describes, warnings as errors (``-W``), with every
cross-reference required to resolve (``nitpicky`` in docs/conf.py) and no network
(no intersphinx). sphinx is in the ``test`` extra, so this runs in CI; the build writes
only under tmp_path.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

from refnn.ops import FAMILIES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def sphinx_build(srcdir, outdir, builder="html"):
    """Run ``python -m sphinx -W --keep-going`` (fresh environment, doctrees in outdir)."""
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", builder,
           "-d", str(outdir / "doctrees"), str(srcdir), str(outdir / builder)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_docs_build_without_warnings(tmp_path):
    done = sphinx_build(DOCS, tmp_path)
    assert done.returncode == 0, ("the docs do not build cleanly (python -m sphinx -W "
                                  f"--keep-going -b html docs OUT):\n{done.stderr}")
    assert done.stderr.strip() == "", done.stderr
    html = tmp_path / "html"
    for page in DOCS.glob("*.rst"):
        assert (html / f"{page.stem}.html").is_file(), f"{page.name} was not built"
    api = (html / "api.html").read_text()
    # the reference ops' docstrings (their formulas) are on the API page
    assert 'id="refnn.ops.conv.conv2d_forward"' in api
    assert 'id="refnn.neoml.Dnn.FullyConnected"' in api


def test_a_broken_page_fails_the_build(tmp_path):
    """The check above can fail: a copy of the docs with an rst error and a dangling
    cross-reference in one page does not build, and the errors name that page."""
    src = tmp_path / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("_build"))
    page = src / "conv.rst"
    page.write_text(page.read_text() + "\n\n.. no-such-directive::\n\nSee "
                    ":func:`refnn.ops.conv.no_such_function`.\n")
    done = sphinx_build(src, tmp_path / "out", builder="dummy")
    assert done.returncode != 0, done.stderr
    assert re.search(r"conv\.rst:\d+: ERROR: Unknown directive type", done.stderr), done.stderr
    assert re.search(r"conv\.rst:\d+: WARNING: py:func reference target not found: "
                     r"refnn\.ops\.conv\.no_such_function", done.stderr), done.stderr


def toctree_entries():
    index = (DOCS / "index.rst").read_text()
    block = index.split(".. toctree::", 1)[1]
    entries = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith(" "):
            break
        line = line.strip()
        if line and not line.startswith(":"):
            entries.append(line)
    return entries


def test_every_page_is_in_the_toctree_once():
    entries = toctree_entries()
    pages = sorted(p.stem for p in DOCS.glob("*.rst") if p.stem != "index")
    assert sorted(set(entries)) == pages, (entries, pages)
    assert len(entries) == len(set(entries)), f"a page is listed twice: {entries}"


def test_api_page_has_every_ops_family():
    """Each family's reference module (its formulas) is rendered on the API page."""
    api = (DOCS / "api.rst").read_text()
    listed = set(re.findall(r"^\.\. automodule:: refnn\.ops\.(\w+)\s*$", api, flags=re.M))
    missing = [f for f in FAMILIES if f not in listed]
    assert not missing, f"docs/api.rst lacks '.. automodule:: refnn.ops.<family>' for {missing}"


def test_index_intro_names_the_models_refnn_train_has():
    import argparse

    from refnn.cli import build_parser

    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    train = next(a for a in commands.choices["train"]._actions if "--model" in a.option_strings)
    assert len(train.choices) >= 3, train.choices
    index = (DOCS / "index.rst").read_text()
    for model in train.choices:
        assert f"--model {model}" in index, f"docs/index.rst does not mention --model {model}"
