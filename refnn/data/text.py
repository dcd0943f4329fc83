"""Bundled text: Lewis Carroll's *Alice's Adventures in Wonderland* (1865, public domain).

``alice29.txt`` (148,480 characters, 72 distinct ones, plain ASCII) is the
"Millennium Fulcrum Edition 2.9" transcription that the Canterbury compression corpus
calls ``alice29.txt``, taken from the test data of the Brotli sdist on PyPI
(``brotli-1.2.1.tar.gz``, ``tests/testdata/alice29.txt``). The only change: CRLF line
ends became LF and the trailing DOS end-of-file byte (0x1A) was dropped. Provenance,
licence and the checksum of the original are in ALICE_LICENSE.md beside this file.

It is the training text of ``refnn train --model char-lstm`` (a character-level LSTM).

>>> from refnn.data import load_alice
>>> text = load_alice()
>>> len(text), text.split()[:3]
(148480, ["ALICE'S", 'ADVENTURES', 'IN'])
"""
import math
from collections import Counter

from refnn.data.registry import DataFile, Dataset, fetch, register

FILE = DataFile("alice29.txt",
                "99e53cbb0aeb274344a254733db996ca2d05d5fcd10fc0ca02d6966f2b2bc961")


def _load(paths):
    with open(paths[FILE.name], encoding="ascii", newline="") as f:
        return f.read()


ALICE = register(Dataset(
    name="alice", files=(FILE,), loader=_load, bundled=True,
    source="Lewis Carroll: Alice's Adventures in Wonderland (1865), Millennium Fulcrum "
           "Edition 2.9, as alice29.txt of the Canterbury corpus (via the Brotli sdist)",
    license="public domain (published 1865; the author died in 1898)"))


def load_alice():
    """The whole text of *Alice's Adventures in Wonderland* as one ``str`` (LF line ends).

    The file's SHA-256 is verified on every load (refnn.data.ChecksumError if not).
    """
    return _load(fetch("alice"))


def unigram_entropy(text):
    """Entropy in nats of the characters' frequencies: H = -sum_c p(c) log p(c).

    The cross-entropy per character of the best model that ignores context; a
    character-level language model has learnt something once it goes below it.
    """
    counts = Counter(text)
    n = len(text)
    return -sum(k / n * math.log(k / n) for k in counts.values())
