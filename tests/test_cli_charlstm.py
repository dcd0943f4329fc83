"""``refnn train --model char-lstm``: a shortened run on cpu and opencl still trains (the
per-character cross-entropy falls), reports it against the unigram entropy and prints a
sample; argument errors are usage errors."""
import math
import re

import numpy as np
import pytest

from refnn import cli
from refnn.data import load_alice, unigram_entropy

#: a short run: 60 steps of 16 streams x 20 characters, 32 hidden units
SHORT = ["train", "--model", "char-lstm", "--steps", "60", "--seq-len", "20", "-z", "16",
         "--hidden", "32", "--learning-rate", "0.02", "--sample-length", "40",
         "--no-progress"]
NUM = r"(\d+\.\d+)"


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def parse(out):
    m = re.search(rf"first \d+ steps {NUM} \({NUM}\), last \d+ steps {NUM} \({NUM}\), "
                  rf"held-out text {NUM} \({NUM}\); unigram entropy {NUM} \({NUM}\)", out)
    assert m, out
    first, first_bits, last, last_bits, heldout, heldout_bits, uni, uni_bits = \
        map(float, m.groups())
    for nats, bits in ((first, first_bits), (last, last_bits), (heldout, heldout_bits),
                       (uni, uni_bits)):
        assert abs(nats / math.log(2) - bits) < 2e-3          # bits = nats / ln 2
    sample = out.split("temperature 0.7):\n", 1)[1].rstrip("\n")
    return first, last, heldout, uni, sample


@pytest.mark.parametrize("api", ["neon", "neoml"])
@pytest.mark.parametrize("backend", ["cpu", "opencl"])
def test_short_run_trains_and_samples(capsys, api, backend):
    code, out, err = run(capsys, *SHORT, "--api", api, "-b", backend)
    assert code == 0, err
    assert f"through refnn.{api}" in out and f"on the {backend} backend" in out
    first, last, heldout, uni, sample = parse(out)
    text = load_alice()
    # the unigram entropy printed is that of the training part of the text
    assert abs(uni - unigram_entropy(text[:len(text) - int(len(text) * 0.05)])) < 1e-3
    assert first > uni                  # the first steps start near log(72) = 4.28
    assert last < first - 0.5, (first, last)
    assert heldout < uni - 0.2, (heldout, uni)      # even the short run beats unigram
    # the sample: the prompt, then 40 generated characters of the text's alphabet
    assert sample.startswith("Alice ") and len(sample) == len("Alice ") + 40, repr(sample)
    assert set(sample) <= set(text)


@pytest.mark.parametrize("api", ["neon", "neoml"])
def test_cpu_and_opencl_train_the_same_network(capsys, api):
    """Same seed, same data: the two backends' float32 runs stay close."""
    results = {}
    for backend in ("cpu", "opencl"):
        code, out, err = run(capsys, *SHORT, "--steps", "15", "--api", api, "-b", backend)
        assert code == 0, err
        results[backend] = parse(out)
    np.testing.assert_allclose(results["cpu"][:3], results["opencl"][:3], atol=0.02)


@pytest.mark.parametrize("api", ["neon", "neoml"])
def test_default_run_beats_the_unigram_entropy(capsys, api):
    """The default run (seconds on an idle cpu): clearly below the unigram entropy."""
    code, out, err = run(capsys, "train", "--model", "char-lstm", "--api", api,
                         "--no-progress")
    assert code == 0, err
    first, last, heldout, uni, sample = parse(out)
    assert cli.CHAR_LSTM_DEFAULTS["steps"] == 300
    assert heldout < uni - 0.6, (heldout, uni)
    assert last < uni - 0.6, (last, uni)
    assert "held-out cross-entropy is" in out and "nats/char below the unigram" in out
    assert len(sample) == len("Alice ") + cli.CHAR_LSTM_DEFAULTS["sample_length"]


def test_defaults_are_resolved_per_model(capsys, monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "cmd_train_char_lstm", lambda args: seen.update(vars(args)))
    args = cli.build_parser().parse_args(["train", "--model", "char-lstm"])
    assert args.api is None and args.hidden is None        # resolved per model
    cli.main(["train", "--model", "char-lstm"])
    assert seen["api"] == "neon" and seen["hidden"] == 128 and seen["steps"] == 300


def test_heldout_text_shorter_than_a_minibatch(capsys):
    """-z 200 x --seq-len 40 does not fit in the 7,424 held-out characters (neon's Text
    needs whole minibatches): the report says n/a and compares the last steps instead."""
    code, out, err = run(capsys, "train", "--model", "char-lstm", "--steps", "3", "-z", "200",
                         "--seq-len", "40", "--hidden", "8", "--sample-length", "5",
                         "--no-progress")
    assert code == 0, err
    assert "held-out text n/a" in out and "the last steps' cross-entropy is" in out


@pytest.mark.parametrize("argv, message", [
    (["-e", "3"], "--steps"),
    (["--device", "0"], "--device needs -b opencl"),
])
def test_bad_combinations_are_usage_errors(capsys, argv, message):
    code, out, err = run(capsys, "train", "--model", "char-lstm", *argv)
    assert code == 2 and message in err, err


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--seq-len", "-1"],
                                  ["--temperature", "0"], ["--learning-rate", "nan"],
                                  ["--temperature", "inf"]])
def test_bad_numbers_are_rejected_by_the_parser(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--model", "char-lstm", *argv])
    assert exc.value.code == 2
    assert "must be a positive" in capsys.readouterr().err


def test_codec_and_streams():
    codec = cli.CharCodec("hello world")
    ids = codec.encode("hello world")
    assert codec.decode(ids) == "hello world" and ids.max() == len(set("hello world")) - 1
    x, y = cli.text_streams(np.arange(11), 2)
    np.testing.assert_array_equal(x, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    np.testing.assert_array_equal(y, x + 1)              # the next character
