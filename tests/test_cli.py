"""The ``refnn`` command: devices, coverage, train."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import refnn
from refnn import cli
from refnn.ops import all_specs


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, out


# ----------------------------------------------------------------------------- devices
def test_devices_lists_pocl_and_marks_the_default(capsys):
    code, out = run_cli(capsys, "devices")
    assert code == 0
    assert "Portable Computing Language" in out
    default_rows = [line for line in out.splitlines() if line.startswith("* ")]
    assert len(default_rows) == 1
    assert "default device" in out and "REFNN_OPENCL_DEVICE" in out


def test_devices_reports_a_bad_device_variable(capsys, monkeypatch):
    monkeypatch.setenv("REFNN_OPENCL_DEVICE", "7:7")
    code, out = run_cli(capsys, "devices")
    assert code == 1
    assert "7:7" in out and "cannot be chosen" in out


def test_devices_honours_the_device_option(capsys):
    code, out = run_cli(capsys, "devices", "--device", "0:0")
    assert code == 0 and "--device" in out


# ---------------------------------------------------------------------------- coverage
def test_coverage_json_parses_and_lists_every_op(capsys):
    code, out = run_cli(capsys, "coverage", "--json")
    report = json.loads(out)
    assert {row["op"] for row in report["ops"]} == set(all_specs())
    for row in report["ops"] + report["layers"]:
        for key in ("reference", "cpu", "opencl"):
            assert isinstance(row[key], bool)
        assert row["gradient_tested"] in (True, False)   # hypothesis is installed here
    assert report["complete"] == (not report["gaps"])
    assert code == (0 if report["complete"] else 1)


def test_coverage_matrix_agrees_with_the_kernel_tables(capsys):
    from refnn.backends import cpu, opencl, reference
    from refnn.testing.op_inputs import INPUTS
    _, out = run_cli(capsys, "coverage", "--json")
    specs = all_specs()
    for row in json.loads(out)["ops"]:
        phases = specs[row["op"]].phases
        assert row["reference"] == all(p in reference.KERNELS for p in phases)
        assert row["cpu"] == all(p in cpu.KERNELS for p in phases)
        assert row["opencl"] == all(p in opencl.KERNELS for p in phases)
        assert row["gradient_tested"] == (row["op"] in INPUTS)


def test_coverage_finds_layers_of_both_apis(capsys):
    _, out = run_cli(capsys, "coverage", "--json")
    layers = json.loads(out)["layers"]
    specs = all_specs()
    for api in ("neon", "neoml"):
        rows = [r for r in layers if r["api"] == api]
        assert rows, f"no refnn.{api} layer class has an OPS attribute"
        for r in rows:
            assert all(op in specs for op in r["ops"]), r


def test_coverage_is_complete(capsys):
    """The contract: every op and layer has all three paths and a gradient test."""
    code, out = run_cli(capsys, "coverage")
    assert code == 0, out


def test_coverage_says_unknown_without_hypothesis(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "hypothesis", None)   # import hypothesis -> ImportError
    _, out = run_cli(capsys, "coverage", "--json")
    report = json.loads(out)
    assert report["gradient_tests_known"] is False
    assert all(r["gradient_tested"] is None for r in report["ops"])
    _, text = run_cli(capsys, "coverage")
    assert "unknown" in text


def test_a_layer_naming_an_unknown_op_is_a_gap(capsys, monkeypatch):
    class Bogus:
        OPS = ("relu", "no_such_op")
    real = cli._layer_classes
    monkeypatch.setattr(cli, "_layer_classes",
                        lambda api: real(api) + ([Bogus] if api == "neon" else []))
    code, out = run_cli(capsys, "coverage", "--json")
    report = json.loads(out)
    row = next(r for r in report["layers"] if r["layer"].endswith("Bogus"))
    assert row["unknown_ops"] == ["no_such_op"] and not row["cpu"]
    assert code == 1 and any("Bogus" in g for g in report["gaps"])


# ------------------------------------------------------------------------------- misc
def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "devices" in capsys.readouterr().out


def test_module_entry_point_runs():
    env = dict(os.environ, PYTHONPATH=str(Path(refnn.__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-m", "refnn.cli", "devices"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Portable Computing Language" in done.stdout
