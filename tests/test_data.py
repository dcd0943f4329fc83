"""refnn.data: the bundled digits (values, split, checksum) and the dataset registry."""
import gzip
import shutil

import numpy as np
import pytest

from refnn import data
from refnn.data import registry
from refnn.errors import ParameterError


def test_digits_values_and_shapes():
    X, y = data.load_digits("all")
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype.kind == "i"
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    # first row of the file: pixels 0,0,5,13,9,1,0,0 / 16, label 0
    np.testing.assert_array_equal(X[0, :8] * 16, [0, 0, 5, 13, 9, 1, 0, 0])
    assert y[0] == 0
    # pixel values are multiples of 1/16
    np.testing.assert_array_equal(X * 16, np.round(X * 16))


def test_split_is_a_stratified_partition():
    X_tr, y_tr = data.load_digits("train", seed=3, test_fraction=0.25)
    X_te, y_te = data.load_digits("test", seed=3, test_fraction=0.25)
    X_all, y_all = data.load_digits("all")
    assert len(y_tr) + len(y_te) == len(y_all)
    # the same rows, exactly once each
    both = np.concatenate([np.c_[X_tr, y_tr], np.c_[X_te, y_te]])
    full = np.c_[X_all, y_all]
    assert sorted(map(bytes, both)) == sorted(map(bytes, full))
    # every class keeps its share in the test split (to one example)
    counts = np.bincount(y_all, minlength=10)
    assert np.all(np.abs(np.bincount(y_te, minlength=10) - 0.25 * counts) <= 0.5)


def test_split_depends_on_seed_only():
    a = data.load_digits("test", seed=1)
    b = data.load_digits("test", seed=1)
    c = data.load_digits("test", seed=2)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_returned_arrays_are_independent_copies():
    X, _ = data.load_digits("all")
    X[:] = -1
    assert data.load_digits("all")[0].min() == 0.0


@pytest.mark.parametrize("kwargs", [dict(split="validation"), dict(test_fraction=0.0),
                                    dict(test_fraction=1.0)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ParameterError, match="load_digits"):
        data.load_digits(**kwargs)


def test_checksum_is_verified(tmp_path, monkeypatch):
    with gzip.open(registry.PACKAGE_DIR / "digits.csv.gz", "rt") as f:
        text = f.read()
    with gzip.open(tmp_path / "digits.csv.gz", "wt") as f:  # one pixel changed
        f.write(text.replace("0,0,5,13", "0,0,5,14", 1))
    monkeypatch.setattr(registry, "PACKAGE_DIR", tmp_path)
    with pytest.raises(data.ChecksumError, match="sha256"):
        data.load_digits()


def test_missing_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "PACKAGE_DIR", tmp_path / "pkg")
    monkeypatch.setenv("REFNN_DATA", str(tmp_path / "cache"))
    with pytest.raises(data.DatasetNotFound, match="digits.csv.gz"):
        data.fetch("digits")


def test_cache_directory_is_searched(tmp_path, monkeypatch):
    (tmp_path / "cache" / "digits").mkdir(parents=True)
    shutil.copy(registry.PACKAGE_DIR / "digits.csv.gz", tmp_path / "cache" / "digits")
    monkeypatch.setattr(registry, "PACKAGE_DIR", tmp_path / "pkg")
    monkeypatch.setenv("REFNN_DATA", str(tmp_path / "cache"))
    paths = data.fetch("digits")
    assert paths["digits.csv.gz"].parent == tmp_path / "cache" / "digits"


def test_registry_records_attribution():
    digits = data.DATASETS["digits"]
    assert "Alpaydin" in digits.source and "CC BY 4.0" in digits.license
    assert (registry.PACKAGE_DIR / "DIGITS_LICENSE.md").is_file()
    with pytest.raises(ParameterError, match="mnist"):
        data.fetch("mnist")


# ----------------------------------------------------------------- the bundled text
def test_alice_text_values():
    text = data.load_alice()
    assert isinstance(text, str) and len(text) == 148480
    assert text.split()[:4] == ["ALICE'S", "ADVENTURES", "IN", "WONDERLAND"]
    assert "Alice was beginning to get very tired" in text
    assert text.rstrip().endswith("THE END")
    assert "\r" not in text and "\x1a" not in text         # LF line ends, no DOS EOF
    assert len(set(text)) == 72 and all(" " <= c <= "~" or c == "\n" for c in text)


def test_unigram_entropy():
    assert data.unigram_entropy("aaaa") == 0.0
    assert abs(data.unigram_entropy("abab") - np.log(2)) < 1e-15
    assert abs(data.unigram_entropy("abcd" * 3) - np.log(4)) < 1e-15
    # the text: 72 characters, but far from uniform
    h = data.unigram_entropy(data.load_alice())
    assert 3.0 < h < np.log(72)
    assert abs(h - 3.128022) < 1e-6


def test_alice_registry_record_and_licence():
    alice = data.DATASETS["alice"]
    assert alice.bundled and "Carroll" in alice.source and "public domain" in alice.license
    note = (registry.PACKAGE_DIR / "ALICE_LICENSE.md").read_text()
    assert alice.files[0].sha256 in note and "public domain" in note.lower()
    assert data.load("alice") == data.load_alice()


def test_alice_checksum_is_verified(tmp_path, monkeypatch):
    text = (registry.PACKAGE_DIR / "alice29.txt").read_text()
    (tmp_path / "alice29.txt").write_text(text.replace("Rabbit", "Rabbet", 1))
    monkeypatch.setattr(registry, "PACKAGE_DIR", tmp_path)
    with pytest.raises(data.ChecksumError, match="alice29.txt"):
        data.load_alice()


def test_alice_ships_as_package_data():
    import tomllib
    from pathlib import Path
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not a source checkout")
    globs = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    from fnmatch import fnmatch
    for name in ("alice29.txt", "ALICE_LICENSE.md"):
        assert any(fnmatch(name, g) for g in globs["refnn.data"]), name
