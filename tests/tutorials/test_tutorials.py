"""Every tutorials/*.py runs to the end in a fresh interpreter (exit status 0)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import refnn

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.py"))


def test_there_are_tutorials():
    assert TUTORIALS, f"no tutorials found in {ROOT / 'tutorials'}"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs(path):
    env = dict(os.environ)
    # the refnn this test imported (a source tree or site-packages) comes first
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(refnn.__file__).resolve().parents[1])] +
        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    done = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout}\n{done.stderr}"
