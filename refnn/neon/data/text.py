"""Text datasets (neon.data.text): ``Text`` iterates a token stream for language models.

The stream of ``ntokens`` tokens is cut to a multiple of ``bsz * time_steps`` and laid
out as ``bsz`` contiguous parallel streams (neon's layout, so a sequence continues in
the same batch column from one minibatch to the next): minibatch b, step t, column n
holds token ``n * nbatches * time_steps + b * time_steps + t``. The target of a token is
the next one (the stream wraps around at its end), or the token itself with
``reverse_target`` (then read backwards within each minibatch).

Tensors are neon's sequence layout, time-major (column ``t * bsz + n``):
inputs (nvocab, time_steps * bsz) one-hot (``onehot_input=True``, ``shape`` (nvocab,
time_steps), for a recurrent layer) or (time_steps, bsz) token ids (``onehot_input=
False``, ``shape`` (time_steps, 1), for a LookupTable); targets are always one-hot
(nvocab, time_steps * bsz), the layout of a time-distributed Affine(nvocab, Softmax)
and CrossEntropyMulti.
"""
import numpy as np

from refnn.errors import ParameterError, ShapeError
from refnn.neon.data.dataiterator import NervanaDataIterator


class Text(NervanaDataIterator):
    """Iterates (inputs, targets) minibatches of a text for next-token prediction.

    time_steps:      tokens per sequence (the recurrent layer's nsteps).
    path:            a text file to read (UTF-8); or give the string as ``text=``
                     (refnn's addition; exactly one of the two).
    vocab:           the tokens to index (sorted); by default the set of tokens seen.
    tokenizer:       a function str -> list of tokens; by default characters.
    onehot_input:    one-hot inputs (True) or token ids (False, for a LookupTable).
    reverse_target:  the targets are the inputs, reversed in time (autoencoders).
    get_prev_target: also yield the targets shifted one step later (zero at step 0) as
                     a second input: ((inputs, prev_targets), targets).
    """

    def __init__(self, time_steps, path=None, vocab=None, tokenizer=None,
                 onehot_input=True, reverse_target=False, get_prev_target=False,
                 text=None, name=None):
        super().__init__(name)
        be = self._batch_backend()
        if isinstance(time_steps, bool) or not isinstance(time_steps, (int, np.integer)) \
                or time_steps < 1:
            raise ParameterError(f"Text: time_steps must be a positive integer, got "
                                 f"{time_steps!r}")
        if (path is None) == (text is None):
            raise ParameterError("Text: give exactly one of path= (a text file) and text= "
                                 "(a string)")
        if path is not None:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        self.seq_length = int(time_steps)
        self.onehot_input = bool(onehot_input)
        self.reverse_target = bool(reverse_target)
        self.get_prev_target = bool(get_prev_target)
        self.batch_index = 0

        X, y = self._get_data(text, tokenizer, vocab)
        bsz, T = be.bsz, self.seq_length
        # (bsz, nbatches, T) streams -> per minibatch the (T, bsz) block, flattened
        # time-major: row b of Xb is minibatch b, column t * bsz + n
        Xs = X.reshape(bsz, self.nbatches, T)
        ys = y.reshape(bsz, self.nbatches, T)
        if self.reverse_target:
            ys = ys[:, :, ::-1]
        self.X = Xs
        self.y = ys
        self.Xdev = be.array(Xs.transpose(1, 2, 0).reshape(self.nbatches, T * bsz))
        self.ydev = be.array(ys.transpose(1, 2, 0).reshape(self.nbatches, T * bsz))
        self.nout = len(self.vocab)
        self._lbl = be.empty((1, T * bsz))
        self.dev_y = be.empty((self.nout, T * bsz))
        if self.onehot_input:
            self.shape = (self.nout, T)
            self.dev_X = be.empty((self.nout, T * bsz))
        else:
            self.shape = (T, 1)
            self.dev_X = be.empty((T, bsz))
        self.dev_Z = be.zeros((self.nout, T * bsz)) if self.get_prev_target else None

    def _get_data(self, text, tokenizer, vocab):
        if not isinstance(text, str):
            raise ParameterError(f"Text: text must be a str, got {type(text).__name__}")
        tokens = self.get_tokens(text, tokenizer)
        per_batch = self.be.bsz * self.seq_length
        self._nbatches = len(tokens) // per_batch
        if self._nbatches == 0:
            raise ShapeError(f"Text: {len(tokens)} tokens do not fill one minibatch of "
                             f"batch_size * time_steps = {per_batch} tokens")
        tokens = tokens[:self.nbatches * per_batch]
        self.ndata = self.nbatches * self.be.bsz     # sequences; leftovers are dropped
        self.vocab = sorted(self.get_vocab(tokens, vocab))
        if not self.vocab:
            raise ParameterError("Text: the vocabulary is empty")
        self.token_to_index = {t: i for i, t in enumerate(self.vocab)}
        self.index_to_token = {i: t for i, t in enumerate(self.vocab)}
        missing = [t for t in tokens if t not in self.token_to_index]
        if missing:
            raise ParameterError(f"Text: token {missing[0]!r} is not in the given vocab "
                                 f"({len(set(missing))} such tokens)")
        X = np.asarray([self.token_to_index[t] for t in tokens], dtype=np.int64)
        y = X.copy() if self.reverse_target else np.concatenate((X[1:], X[:1]))
        return X, y

    @property
    def nbatches(self):
        """Minibatches per epoch (every one full: leftover tokens are dropped)."""
        return self._nbatches

    @staticmethod
    def get_tokens(string, tokenizer=None):
        """The tokens of ``string``: its characters, or ``tokenizer(string)``."""
        return string if tokenizer is None else list(tokenizer(string))

    @staticmethod
    def get_vocab(tokens, vocab=None):
        """``vocab`` if given, else the set of ``tokens``."""
        return vocab if vocab is not None else set(tokens)

    @staticmethod
    def create_valid_file(path, valid_split=0.1):
        """Split the text file ``path`` into '<path>.train' and '<path>.valid' (the last
        ``valid_split`` of its characters); returns the two paths."""
        if not 0 < valid_split < 1:
            raise ParameterError(f"Text.create_valid_file: valid_split must be in (0, 1), "
                                 f"got {valid_split!r}")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        split = int(len(text) * (1 - valid_split))
        train_path, valid_path = path + ".train", path + ".valid"
        with open(train_path, "w", encoding="utf-8") as f:
            f.write(text[:split])
        with open(valid_path, "w", encoding="utf-8") as f:
            f.write(text[split:])
        return train_path, valid_path

    def reset(self):
        self.batch_index = 0

    def __iter__(self):
        be, bsz = self.be, self.be.bsz
        self.batch_index = 0
        while self.batch_index < self.nbatches:
            b = self.batch_index
            self._lbl[:] = self.Xdev[b:b + 1]
            if self.onehot_input:
                be.onehot(self._lbl, axis=0, out=self.dev_X)
            else:
                self.dev_X[:] = self._lbl.reshape((self.seq_length, bsz))
            self._lbl[:] = self.ydev[b:b + 1]
            be.onehot(self._lbl, axis=0, out=self.dev_y)
            self.batch_index += 1
            if self.get_prev_target:
                # step t's extra input is step t-1's target; step 0 gets zeros
                self.dev_Z[:, bsz:] = self.dev_y[:, :-bsz]
                self.dev_Z[:, :bsz] = 0.0
                yield (self.dev_X, self.dev_Z), self.dev_y
            else:
                yield self.dev_X, self.dev_y
