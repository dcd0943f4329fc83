"""The ``refnn`` command: devices, coverage, train."""
import contextlib
import functools
import io
import json
import re
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


# ------------------------------------------------------------------------------- train
EPOCH_LINE = re.compile(r"epoch (\d+): train cost ([0-9.]+), held-out accuracy ([0-9.]+)%")


def train(*argv):
    """Run ``refnn train *argv``; (exit code, stdout, stderr, [(epoch, cost, accuracy)])."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["train", *argv])
    epochs = [(int(e), float(c), float(a) / 100) for e, c, a in EPOCH_LINE.findall(out.getvalue())]
    return code, out.getvalue(), err.getvalue(), epochs


@functools.lru_cache(maxsize=None)
def one_epoch(api, backend):
    return train("-e", "1", "-b", backend, "--api", api)


@pytest.mark.parametrize("api", ["neon", "neoml"])
@pytest.mark.parametrize("backend", ["reference", "cpu", "opencl"])
def test_train_one_epoch_on_every_backend(api, backend):
    code, out, err, epochs = one_epoch(api, backend)
    assert code == 0, err
    assert [e for e, _, _ in epochs] == [0], out
    _, cost, accuracy = epochs[0]
    assert 0 < cost < 2.3      # below log(10): it learned something in one epoch
    assert accuracy > 0.7
    assert "Epoch 0" in err    # the progress bar


@pytest.mark.parametrize("api", ["neon", "neoml"])
def test_backends_train_the_same_network(api):
    """Same seed, same data, same arithmetic: every backend ends one epoch alike."""
    results = {b: one_epoch(api, b)[3][-1] for b in ("reference", "cpu", "opencl")}
    costs = [c for _, c, _ in results.values()]
    accuracies = [a for _, _, a in results.values()]
    assert max(costs) - min(costs) <= 1e-3 * max(costs), results
    assert max(accuracies) - min(accuracies) <= 0.01, results


@pytest.mark.parametrize("api", ["neon", "neoml"])
def test_default_training_reaches_90_percent(api):
    code, _, err, epochs = train("--api", api, "--no-progress")
    assert code == 0, err
    assert len(epochs) == cli.EPOCHS["mlp"]
    assert epochs[-1][1] < epochs[0][1]          # the training cost went down
    assert epochs[-1][2] >= 0.90
    assert "Epoch" not in err                    # --no-progress


@pytest.mark.parametrize("api", ["neon", "neoml"])
@pytest.mark.parametrize("backend", ["cpu", "opencl"])
def test_cnn_learns_in_one_epoch(api, backend):
    code, out, err, epochs = train("--model", "cnn", "-e", "1", "-z", "64", "-b", backend,
                                   "--api", api, "--no-progress")
    assert code == 0, err
    assert "CNN" in out and [e for e, _, _ in epochs] == [0], out
    _, cost, accuracy = epochs[0]
    assert 0 < cost < 2.3      # below log(10)
    assert accuracy > 0.5      # chance is 0.1


def test_default_cnn_training_reaches_95_percent():
    code, _, err, epochs = train("--model", "cnn", "--no-progress")
    assert code == 0, err
    assert len(epochs) == cli.EPOCHS["cnn"]
    assert epochs[-1][1] < epochs[0][1]
    assert epochs[-1][2] >= 0.95


def test_train_rejects_a_device_without_opencl(capsys):
    code = cli.main(["train", "-b", "cpu", "--device", "0:0", "-e", "1"])
    assert code == 2
    assert "--device needs -b opencl" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["-e", "0"], ["-z", "-1"], ["-b", "cuda"], ["--api", "keras"]])
def test_train_rejects_bad_options(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *argv])
    assert exc.value.code == 2


def test_train_reports_bad_input_without_a_traceback(capsys):
    code = cli.main(["train", "-z", "5000", "-e", "1", "--no-progress"])   # > 1,438 images
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("refnn train:") and "batch size" in err
