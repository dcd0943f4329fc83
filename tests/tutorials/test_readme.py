"""README.md stays true: the quick start is what CI runs, and its code examples run."""
import os
import re
import subprocess
import textwrap
import sys
from pathlib import Path

import pytest

import refnn

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def fenced_blocks(text, lang):
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def test_quick_start_is_two_lines_and_ci_runs_the_second():
    section = README.split("## Quick start", 1)[1]
    lines = fenced_blocks(section, "bash")[0].strip().splitlines()
    assert len(lines) == 2, lines
    assert "pip install" in lines[0] and "refnn train" in lines[0]
    assert "pip install" in lines[1] and "pytest" in lines[1]
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[0].startswith("#!") and "bash" in ci[0]
    assert "set -euo pipefail" in ci
    assert ci[-1] == lines[1], "the last line of .ci/run must be quick start line 2, verbatim"
    index = (ROOT / "docs" / "index.rst").read_text()
    assert all(line in index for line in lines), "docs/index.rst shows another quick start"


PYTHON_BLOCKS = fenced_blocks(README, "python")


def test_readme_has_examples():
    assert len(PYTHON_BLOCKS) >= 2


@pytest.mark.parametrize("code", PYTHON_BLOCKS,
                         ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))])
def test_readme_example_runs(code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=str(Path(refnn.__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"


def rst_python_blocks(path):
    """The ``.. code-block:: python`` blocks of a reStructuredText file, dedented."""
    blocks, lines = [], path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() == ".. code-block:: python":
            body = []
            for follow in lines[i + 1:]:
                if follow.strip() and not follow.startswith("    "):
                    break
                body.append(follow[4:])
            blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return blocks


#: docs pages whose examples are complete programs (testing.rst holds fragments)
DOCS_EXAMPLES = [(page, k, code) for page in ("backends.rst", "dense.rst", "data.rst")
                 for k, code in enumerate(rst_python_blocks(ROOT / "docs" / page))]


@pytest.mark.parametrize("page,k,code", DOCS_EXAMPLES,
                         ids=[f"{p}-{k}" for p, k, _ in DOCS_EXAMPLES])
def test_docs_example_runs(page, k, code, tmp_path):
    test_readme_example_runs(code, tmp_path)
