"""The ``refnn`` command.

    refnn devices               OpenCL platforms and devices (which one is the default)
    refnn coverage [--json]     op x backend matrix for every op and every API layer
    refnn train [options]       train an MLP or a CNN on the bundled digits, through neon or NeoML
    refnn train --model char-lstm   a character-level LSTM on the bundled text, neon or NeoML

``refnn train`` is also teaching material: :func:`train_neon`, :func:`train_neoml`,
:func:`train_char_lstm_neon` and :func:`train_char_lstm_neoml` are the whole training
scripts, each written only with its public API.
"""
import argparse
import importlib
import inspect
import json
import math
import os
import pkgutil
import sys
import time

BACKENDS = ("reference", "cpu", "opencl")
APIS = ("neon", "neoml")


# ----------------------------------------------------------------------------- devices
def cmd_devices(args):
    """List OpenCL devices; mark the one ``get_backend("opencl")`` would pick."""
    from refnn.backends import BackendError
    from refnn.backends.opencl import choose_device, describe_devices, list_devices
    rows = describe_devices()
    if not rows:
        print("no OpenCL device found (is pocl-binary-distribution installed?)")
        return 1
    try:
        chosen = choose_device(args.device)
        default = next(f"{p}:{d}" for p, d, dev in list_devices() if dev == chosen)
        problem = None
    except BackendError as exc:  # a bad $REFNN_OPENCL_DEVICE / $PYOPENCL_CTX, shown below
        default, problem = None, str(exc)
    print(f"{'':2}{'id':5} {'platform':30} {'device':34} {'type':10} {'fp64':5} "
          f"{'CUs':>4} {'MiB':>7}")
    for r in rows:
        mark = "*" if r["id"] == default else " "
        print(f"{mark:2}{r['id']:5} {r['platform'][:30]:30} {r['device'][:34]:34} "
              f"{r['type'][:10]:10} {'yes' if r['fp64'] else 'no':5} "
              f"{r['compute_units']:>4} {r['global_mem_mb']:>7}")
    if problem:
        print(f"\nthe default device cannot be chosen: {problem}")
        return 1
    print(f"\nthe default device (*) is {default}, chosen by "
          f"{_device_reason(args.device)}. Override with --device, "
          "$REFNN_OPENCL_DEVICE or $PYOPENCL_CTX (an index or 'platform:device').")
    return 0


def _device_reason(device):
    if device is not None:
        return "--device"
    for var in ("REFNN_OPENCL_DEVICE", "PYOPENCL_CTX"):
        if os.environ.get(var):
            return f"${var}={os.environ[var]}"
    return "the first GPU, else the first device"


# ---------------------------------------------------------------------------- coverage
def _kernel_tables():
    """{backend: set of KERNELS keys, or None when the backend cannot be imported}."""
    tables, errors = {}, {}
    for name in BACKENDS:
        module = "refnn.backends." + name
        try:
            tables[name] = set(importlib.import_module(module).KERNELS)
        except Exception as exc:  # e.g. Cython extensions not built: a gap, not a crash
            tables[name], errors[name] = None, f"{type(exc).__name__}: {exc}"
    return tables, errors


def _gradient_tested():
    """Set of op names with an INPUTS strategy, or None when hypothesis is missing."""
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return None
    from refnn.testing.op_inputs import INPUTS
    return set(INPUTS)


def _layer_classes(api):
    """Public classes of refnn.<api> (and its submodules) with an ``OPS`` attribute."""
    package = importlib.import_module("refnn." + api)
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        modules.append(importlib.import_module(info.name))
    found = set()
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__.startswith(package.__name__) and "OPS" in _class_attrs(cls)
                    and not cls.__name__.startswith("_")):
                found.add(cls)
    # a base class that runs no op itself (Layer, Optimizer, ...) is not a row
    bases = {c for c in found if not c.OPS and any(d is not c and issubclass(d, c)
                                                   for d in found)}
    return sorted(found - bases, key=lambda c: (c.__qualname__, c.__module__))


def _layer_label(cls, classes):
    """The class name, or module.name where two classes share a name."""
    twins = [c for c in classes if c.__qualname__ == cls.__qualname__]
    return cls.__qualname__ if len(twins) == 1 else f"{cls.__module__}.{cls.__qualname__}"


def _class_attrs(cls):
    return {k for klass in cls.__mro__ for k in vars(klass)}


def _op_name(entry):
    """OPS entries are op names ("linear"); a phase ("linear.forward") is accepted too."""
    for suffix in (".forward", ".backward", ".update"):
        if entry.endswith(suffix):
            return entry[: -len(suffix)]
    return entry


def coverage_report():
    """The coverage matrix as a JSON-able dict (see ``refnn coverage --json``)."""
    from refnn.ops import all_specs
    specs = all_specs()
    tables, errors = _kernel_tables()
    tested = _gradient_tested()

    def cells(op_names):
        row = {}
        unknown = [n for n in op_names if n not in specs]
        for be in BACKENDS:
            row[be] = (tables[be] is not None and not unknown and
                       all(p in tables[be] for n in op_names for p in specs[n].phases))
        row["gradient_tested"] = None if tested is None else (
            not unknown and all(n in tested for n in op_names))
        if unknown:
            row["unknown_ops"] = unknown
        return row

    ops = [{"op": name, "family": spec.family, "kind": spec.kind, **cells([name])}
           for name, spec in sorted(specs.items(), key=lambda kv: (kv[1].family, kv[0]))]
    layers, api_errors = [], {}
    for api in APIS:
        try:
            classes = _layer_classes(api)
        except Exception as exc:
            api_errors[api] = f"cannot be imported: {type(exc).__name__}: {exc}"
            continue
        if not classes:
            api_errors[api] = "has no layer class with an OPS attribute"
        for cls in classes:
            names = [_op_name(e) for e in cls.OPS]
            layers.append({"api": api, "layer": _layer_label(cls, classes), "ops": names,
                           **cells(names)})

    gaps = []
    for row in ops + layers:
        label = row.get("op") or f"{row['api']}.{row['layer']}"
        missing = [be for be in BACKENDS if not row[be]]
        if row["gradient_tested"] is False:
            missing.append("gradient test")
        if missing:
            gaps.append(f"{label}: {', '.join(missing)}")
    gaps += [f"backend {be} unavailable: {e}" for be, e in errors.items()]
    gaps += [f"refnn.{api} {e}" for api, e in api_errors.items()]
    return {"ops": ops, "layers": layers, "gaps": gaps, "complete": not gaps,
            "gradient_tests_known": tested is not None}


def _mark(value):
    return "unknown" if value is None else ("yes" if value else "MISSING")


def print_coverage(report):
    header = f"{'':28} {'reference':10} {'cpu':8} {'opencl':8} {'grad-tested':11}"
    print("ops (refnn.ops)\n" + header)
    for r in report["ops"]:
        print(f"{r['family'] + '.' + r['op']:28} {_mark(r['reference']):10} {_mark(r['cpu']):8} "
              f"{_mark(r['opencl']):8} {_mark(r['gradient_tested']):11}")
    print("\nlayers, costs and optimizers of refnn.neon and refnn.neoml\n" + header + "  ops")
    for r in report["layers"]:
        print(f"{r['api'] + '.' + r['layer']:28} {_mark(r['reference']):10} "
              f"{_mark(r['cpu']):8} {_mark(r['opencl']):8} "
              f"{_mark(r['gradient_tested']):11}  {', '.join(r['ops']) or '-'}")
    if not report["gradient_tests_known"]:
        print("\ngradient tests: unknown (install hypothesis: pip install 'refnn[test]')")
    if report["gaps"]:
        print(f"\n{len(report['gaps'])} gap(s):")
        for gap in report["gaps"]:
            print("  " + gap)
    else:
        print("\ncomplete: every op and layer has reference, cpu and opencl paths"
              + (" and a gradient test" if report["gradient_tests_known"] else ""))


def cmd_coverage(args):
    report = coverage_report()
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_coverage(report)
    return 0 if report["complete"] else 1


# ------------------------------------------------------------------------------- train
TRAIN_DEFAULTS = dict(backend="cpu", epochs=None, batch_size=32, seed=0, hidden=64, api="neon",
                      model="mlp")
EPOCHS = {"mlp": 10, "cnn": 8}         # the default epochs of each model


def cmd_train(args):
    from refnn.data import load_digits
    if args.device is not None and args.backend != "opencl":
        print(f"refnn train: --device needs -b opencl (got -b {args.backend})", file=sys.stderr)
        return 2
    defaults = CHAR_LSTM_DEFAULTS if args.model == "char-lstm" else TRAIN_DEFAULTS
    for name in ("api", "hidden"):
        if getattr(args, name) is None:
            setattr(args, name, defaults[name])
    if args.model == "char-lstm":
        return cmd_train_char_lstm(args)
    X_train, y_train = load_digits("train", seed=args.seed)
    X_test, y_test = load_digits("test", seed=args.seed)
    if args.epochs is None:
        args.epochs = EPOCHS[args.model]
    network = (f"MLP 64-{args.hidden}-10" if args.model == "mlp" else
               "CNN conv3x3x16-pool2-conv3x3x32-pool2-fc10")
    print(f"digits: {len(y_train)} train / {len(y_test)} test images; {network} "
          f"through refnn.{args.api} on the {args.backend} backend")
    start = time.perf_counter()
    train = train_neon if args.api == "neon" else train_neoml
    accuracy = train(X_train, y_train, X_test, y_test, args)
    print(f"held-out accuracy {accuracy:.2%} after {args.epochs} epoch(s) "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def train_neon(X_train, y_train, X_test, y_test, args):
    """The MLP or CNN through refnn.neon: a plain neon script (only the imports say refnn).

    neon keeps tensors as (features, batch); ArrayIterator copies each minibatch into
    that layout (for the CNN, lshape=(1, 8, 8): C, H, W per image). Affine = Linear +
    Bias + activation, Conv = Convolution + Bias + activation; the Softmax +
    CrossEntropyMulti pair back-propagates neon's shortcut delta y - t.
    """
    from refnn.neon.backends import gen_backend
    from refnn.neon.callbacks import Callback, Callbacks
    from refnn.neon.data import ArrayIterator
    from refnn.neon.initializers import GlorotUniform
    from refnn.neon.layers import Affine, Conv, GeneralizedCost, Pooling
    from refnn.neon.models import Model
    from refnn.neon.optimizers import GradientDescentMomentum
    from refnn.neon.transforms import CrossEntropyMulti, Misclassification, Rectlin, Softmax

    neon_backend = {"reference": "reference", "cpu": "cpu", "opencl": "gpu"}[args.backend]
    gen_backend(backend=neon_backend, batch_size=args.batch_size, rng_seed=args.seed,
                device_id=args.device)
    lshape = (1, 8, 8) if args.model == "cnn" else None
    train = ArrayIterator(X_train, y_train, nclass=10, lshape=lshape)
    test = ArrayIterator(X_test, y_test, nclass=10, lshape=lshape)

    if args.model == "mlp":
        layers = [Affine(nout=args.hidden, init=GlorotUniform(), activation=Rectlin())]
    else:   # 1x8x8 -> 16x8x8 -> 16x4x4 -> 32x4x4 -> 32x2x2
        layers = [Conv((3, 3, 16), init=GlorotUniform(), padding=1, activation=Rectlin()),
                  Pooling(2, op="max"),
                  Conv((3, 3, 32), init=GlorotUniform(), padding=1, activation=Rectlin()),
                  Pooling(2, op="max")]
    net = Model(layers + [Affine(nout=10, init=GlorotUniform(), activation=Softmax())])
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    optimizer = GradientDescentMomentum(learning_rate=0.1, momentum_coef=0.9)

    class EpochReport(Callback):
        """After each epoch: the mean training cost and the held-out accuracy."""

        def on_epoch_end(self, callback_data, model, epoch):
            accuracy = 1 - float(model.eval(test, metric=Misclassification())[0])
            report_epoch(epoch, float(model.total_cost.get()[0, 0]), accuracy)

    callbacks = Callbacks(net, progress_bar=not args.no_progress)
    callbacks.add_callback(EpochReport())
    net.fit(train, cost=cost, optimizer=optimizer, num_epochs=args.epochs,
            callbacks=callbacks)
    return 1 - float(net.eval(test, metric=Misclassification())[0])


def train_neoml(X_train, y_train, X_test, y_test, args):
    """The MLP or CNN through refnn.neoml: a plain NeoML script (``import refnn.neoml as neoml``).

    NeoML blobs are 7-D, (BatchLength, BatchWidth, ListSize, Height, Width, Depth,
    Channels): a minibatch of n digits is (1, n, 1, 1, 1, 1, 64) for the MLP, or
    (1, n, 1, 8, 8, 1, 1) images for the CNN (the same memory), and its labels are
    (1, n, 1, 1, 1, 1, 1) int32 class indices. CrossEntropyLoss applies the softmax itself.
    """
    import numpy as np
    from tqdm import tqdm

    import refnn.neoml as neoml

    engine = {"reference": lambda: neoml.MathEngine.ReferenceMathEngine(),
              "cpu": lambda: neoml.MathEngine.CpuMathEngine(),
              "opencl": lambda: neoml.MathEngine.OpenCLMathEngine(args.device)}[args.backend]()
    dnn = neoml.Dnn.Dnn(engine, random=neoml.Random.Random(args.seed))
    data = neoml.Dnn.Source(dnn, "data")
    labels = neoml.Dnn.Source(dnn, "labels")
    if args.model == "mlp":
        hidden = neoml.Dnn.ReLU(neoml.Dnn.FullyConnected(data, args.hidden, name="fc1"),
                                name="relu")
        shape = (1, 1, 1, 64)                            # H, W, D, C of one digit
    else:   # 8x8x1 -> 8x8x16 -> 4x4x16 -> 4x4x32 -> 2x2x32
        hidden = data
        for i, filters in enumerate((16, 32), 1):
            hidden = neoml.Dnn.ReLU(neoml.Dnn.Conv(hidden, filters, (3, 3), padding_size=(1, 1),
                                                   is_zero_free_term=False, name=f"conv{i}"),
                                    name=f"relu{i}")
            hidden = neoml.Dnn.MaxPooling(hidden, (2, 2), (2, 2), name=f"pool{i}")
        shape = (8, 8, 1, 1)
    scores = neoml.Dnn.FullyConnected(hidden, 10, name="fc2")
    loss = neoml.Dnn.CrossEntropyLoss((scores, labels), name="loss")
    output = neoml.Dnn.Sink(scores, "scores")
    dnn.solver = neoml.Dnn.SimpleGradient(engine, learning_rate=0.1, moment_decay_rate=0.9)

    def inputs(X, y):
        n = len(y)
        return {"data": neoml.Blob.asblob(engine, X, (1, n, 1, *shape)),
                "labels": neoml.Blob.asblob(engine, y.astype(np.int32), (1, n, 1, 1, 1, 1, 1))}

    def held_out_accuracy():
        dnn.run(inputs(X_test, y_test))
        return float(np.mean(output.get_blob().asarray().argmax(axis=-1) == y_test))

    rng = np.random.default_rng(args.seed)
    for epoch in range(args.epochs):
        order = rng.permutation(len(y_train))            # a new shuffle every epoch
        starts = range(0, len(order), args.batch_size)
        bar = tqdm(starts, desc=f"Epoch {epoch}", disable=args.no_progress)
        costs = []
        for i in bar:
            batch = order[i:i + args.batch_size]
            dnn.learn(inputs(X_train[batch], y_train[batch]))
            costs.append(loss.last_loss)
            bar.set_postfix(cost=f"{costs[-1]:.5f}", refresh=False)
        bar.close()
        report_epoch(epoch, float(np.mean(costs)), held_out_accuracy())
    return held_out_accuracy()


def report_epoch(epoch, train_cost, accuracy):
    print(f"epoch {epoch}: train cost {train_cost:.4f}, held-out accuracy {accuracy:.2%}",
          flush=True)


# --------------------------------------------------------------------------- char-lstm
CHAR_LSTM_DEFAULTS = dict(api="neon", hidden=128, steps=300, seq_len=50, learning_rate=0.01,
                          sample_length=300, temperature=0.7, heldout=0.05)
SAMPLE_PROMPT = "Alice "


def cmd_train_char_lstm(args):
    """``refnn train --model char-lstm``: a character-level LSTM on the bundled text."""
    from refnn.data import load_alice, unigram_entropy
    if args.epochs is not None:
        print("refnn train: --model char-lstm trains for --steps windows, not --epochs",
              file=sys.stderr)
        return 2
    text = load_alice()
    split = len(text) - int(len(text) * CHAR_LSTM_DEFAULTS["heldout"])
    train_text, heldout_text = text[:split], text[split:]
    h_unigram = unigram_entropy(train_text)
    print(f"text: Alice's Adventures in Wonderland, {len(train_text):,} characters to train "
          f"on, the last {len(heldout_text):,} held out; {len(set(text))} distinct "
          f"characters, unigram entropy {h_unigram:.3f} nats/char "
          f"({h_unigram / math.log(2):.3f} bits)")
    layers = (f"LSTM({args.hidden}) -> Affine({len(set(text))}, Softmax) -> "
              "CrossEntropyMulti" if args.api == "neon" else
              f"Lstm({args.hidden}) -> FullyConnected({len(set(text))}) -> "
              "CrossEntropyLoss")
    print(f"one-hot characters -> {layers} on every step, {args.batch_size} streams x "
          f"{args.seq_len}-step windows (truncated BPTT), {args.steps} steps through "
          f"refnn.{args.api} on the {args.backend} backend")
    start = time.perf_counter()
    train = train_char_lstm_neon if args.api == "neon" else train_char_lstm_neoml
    result = train(train_text, heldout_text, args)
    costs = result["costs"]
    k = max(1, min(20, len(costs) // 5))
    first, last = sum(costs[:k]) / k, sum(costs[-k:]) / k
    heldout = result["heldout"]

    def nats_bits(h):
        return f"{h:.3f} ({h / math.log(2):.3f})"
    print(f"per-character cross-entropy in nats (bits): first {k} steps {nats_bits(first)}, "
          f"last {k} steps {nats_bits(last)}, held-out text "
          f"{'n/a' if heldout is None else nats_bits(heldout)}; unigram entropy "
          f"{nats_bits(h_unigram)} in {time.perf_counter() - start:.1f} s")
    h, what = (last, "the last steps'") if heldout is None else (heldout, "held-out")
    print(f"{what} cross-entropy is {abs(h_unigram - h):.3f} nats/char "
          f"{'below' if h < h_unigram else 'ABOVE'} the unigram entropy")
    print(f"sample (the prompt {SAMPLE_PROMPT!r}, then {args.sample_length} generated "
          f"characters, temperature {args.temperature}):\n{result['sample']}")
    return 0


class CharCodec:
    """Characters <-> ids 0..V-1 (the sorted distinct characters of a text)."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def encode(self, text):
        import numpy as np
        return np.array([self.index[c] for c in text], dtype=np.int32)

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)


def text_streams(ids, n_streams):
    """(inputs, next characters), both (n_streams, L): the text cut into n_streams
    consecutive pieces, so window k of every stream continues window k-1 -- the state
    a window ends with is the right initial state for the next (truncated BPTT)."""
    L = (len(ids) - 1) // n_streams
    return (ids[:n_streams * L].reshape(n_streams, L),
            ids[1:n_streams * L + 1].reshape(n_streams, L))


def train_char_lstm_neon(train_text, heldout_text, args):
    """The character LSTM through refnn.neon: a plain neon script (neon's char_rnn.py).

    ``Text`` cuts the text into ``batch_size`` parallel streams and yields minibatches
    of ``seq_len`` steps: inputs one-hot (V, seq_len * batch_size), targets the next
    characters one-hot, time-major columns (column t * N + n is step t of stream n).
    LSTM(reset_cells=False) starts every minibatch from the state the previous one
    ended with -- truncated BPTT -- and Affine(V, Softmax) after it acts on every step;
    CrossEntropyMulti's cost is the mean over all T * N columns: nats per character.
    """
    import numpy as np

    from refnn.neon.backends import gen_backend
    from refnn.neon.callbacks import Callback, Callbacks
    from refnn.neon.data import NervanaDataIterator, Text
    from refnn.neon.initializers import GlorotUniform
    from refnn.neon.layers import LSTM, Affine, GeneralizedCost
    from refnn.neon.models import Model
    from refnn.neon.optimizers import Adam
    from refnn.neon.transforms import CrossEntropyMulti, Logistic, Softmax, Tanh

    neon_backend = {"reference": "reference", "cpu": "cpu", "opencl": "gpu"}[args.backend]
    be = gen_backend(backend=neon_backend, batch_size=args.batch_size, rng_seed=args.seed,
                     device_id=args.device)
    vocab = sorted(set(train_text + heldout_text))
    train = Text(args.seq_len, text=train_text, vocab=vocab)

    class Steps(NervanaDataIterator):
        """``steps`` minibatches of ``data``, starting it again when it runs out."""

        def __init__(self, data, steps):
            super().__init__()
            self.data, self.steps = data, steps
            self.shape, self.ndata = data.shape, steps * be.bsz

        @property
        def nbatches(self):
            return self.steps

        def reset(self):
            self.data.reset()

        def __iter__(self):
            done = 0
            while True:
                for minibatch in self.data:
                    yield minibatch
                    done += 1
                    if done == self.steps:
                        return

    def layers():
        init = GlorotUniform()
        return [LSTM(args.hidden, init, activation=Tanh(), gate_activation=Logistic(),
                     reset_cells=False),
                Affine(len(vocab), init, bias=init, activation=Softmax())]

    class StepCosts(Callback):
        """Every minibatch's cost (nats per character)."""

        def __init__(self):
            super().__init__()
            self.costs = []

        def on_minibatch_end(self, callback_data, model, epoch, minibatch):
            self.costs.append(float(model.cost.cost.get()[0, 0]))

    net = Model(layers())
    cost = GeneralizedCost(costfunc=CrossEntropyMulti())
    optimizer = Adam(learning_rate=args.learning_rate, gradient_clip_value=5.0)
    callbacks = Callbacks(net, progress_bar=not args.no_progress)
    step_costs = StepCosts()
    callbacks.add_callback(step_costs)
    net.fit(Steps(train, args.steps), cost=cost, optimizer=optimizer, num_epochs=1,
            callbacks=callbacks)

    # held-out text: forward only, minibatch by minibatch (the state carries on); None
    # when the held-out text does not fill one minibatch of batch_size x seq_len
    total, count = 0.0, 0
    if len(heldout_text) >= args.batch_size * args.seq_len:
        for x, t in Text(args.seq_len, text=heldout_text, vocab=vocab):
            p = net.fprop(x, inference=True).get()
            total -= float(np.sum(np.log(np.maximum(p[t.get() > 0.5], 1e-30))))
            count += p.shape[1]

    # generation: neon's way -- batch size 1, one step, a new model with the weights
    be.bsz = 1
    gen = Model(layers())
    gen.initialize((len(vocab), 1))
    for new, old in zip(gen.layers_to_optimize, net.layers_to_optimize):
        new.W[:] = old.W
    index = {c: i for i, c in enumerate(vocab)}
    rng = np.random.default_rng(args.seed)
    x = np.zeros((len(vocab), 1), np.float32)

    def feed(c):
        """One step of the generator on character c: the next character's probabilities."""
        x[:] = 0
        x[index[c], 0] = 1
        return gen.fprop(be.array(x), inference=True).get()[:, 0].astype(np.float64)

    for c in SAMPLE_PROMPT:
        p = feed(c)
    out = list(SAMPLE_PROMPT)
    for _ in range(args.sample_length):
        out.append(vocab[sample_index(rng, np.log(np.maximum(p, 1e-30)), args.temperature)])
        p = feed(out[-1])
    return {"costs": step_costs.costs, "heldout": total / count if count else None,
            "sample": "".join(out)}


def sample_index(rng, logits, temperature):
    """A draw from softmax(logits / temperature)."""
    import numpy as np
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def train_char_lstm_neoml(train_text, heldout_text, args):
    """The character LSTM through refnn.neoml: a plain NeoML script.

    A minibatch is ``batch_size`` streams of ``seq_len`` characters: the sequence blob
    (BatchLength=seq_len, BatchWidth=batch_size, 1, 1, 1, 1, V) holds one-hot characters,
    the labels blob (seq_len, batch_size, 1, 1, 1, 1, 1) the next character of every
    step. Lstm's outputs are h and c of every step; FullyConnected acts on every object
    (every step of every stream) alike, so it is the per-step affine layer, and
    CrossEntropyLoss averages -log softmax(scores)[next] over all of them: its
    ``last_loss`` is the per-character cross-entropy in nats.

    Truncated BPTT: gradients flow back through one window only, but the state carries
    on -- the last step's (h, c) are read from the sinks and fed back as the Lstm's
    optional inputs 2 (initial previous output) and 1 (initial cell state).
    """
    import numpy as np
    from tqdm import tqdm

    import refnn.neoml as neoml

    engine = {"reference": lambda: neoml.MathEngine.ReferenceMathEngine(),
              "cpu": lambda: neoml.MathEngine.CpuMathEngine(),
              "opencl": lambda: neoml.MathEngine.OpenCLMathEngine(args.device)}[args.backend]()
    codec = CharCodec(train_text + heldout_text)
    V, H, T, N = len(codec.chars), args.hidden, args.seq_len, args.batch_size
    dnn = neoml.Dnn.Dnn(engine, random=neoml.Random.Random(args.seed))
    chars = neoml.Dnn.Source(dnn, "chars")
    c0 = neoml.Dnn.Source(dnn, "c0")
    h0 = neoml.Dnn.Source(dnn, "h0")
    labels = neoml.Dnn.Source(dnn, "next")
    lstm = neoml.Dnn.Lstm([chars, c0, h0], H, name="lstm")
    scores = neoml.Dnn.FullyConnected((lstm, 0), V, name="fc")
    loss = neoml.Dnn.CrossEntropyLoss((scores, labels), name="loss")
    hs, cs = neoml.Dnn.Sink((lstm, 0), "hs"), neoml.Dnn.Sink((lstm, 1), "cs")
    neoml.Dnn.Sink(scores, "scores")
    dnn.solver = neoml.Dnn.AdaptiveGradient(engine, learning_rate=args.learning_rate,
                                            max_gradient_norm=5.0)
    one_hot = np.eye(V, dtype=np.float32)

    def inputs(x_ids, y_ids, h, c):
        """x_ids, y_ids (T, n) ids; h, c (n, H) states -> the Source blobs."""
        t, n = x_ids.shape
        return {"chars": neoml.Blob.asblob(engine, one_hot[x_ids], (t, n, 1, 1, 1, 1, V)),
                "next": neoml.Blob.asblob(engine, np.ascontiguousarray(y_ids, np.int32),
                                          (t, n, 1, 1, 1, 1, 1)),
                "h0": neoml.Blob.asblob(engine, h, (1, n, 1, 1, 1, 1, H)),
                "c0": neoml.Blob.asblob(engine, c, (1, n, 1, 1, 1, 1, H))}

    def last_states(t, n):
        """(h, c) of the last step, (n, H) host arrays, for the next window."""
        return tuple(np.ascontiguousarray(s.get_blob().asarray().reshape(t, n, H)[-1])
                     for s in (hs, cs))

    x_all, y_all = text_streams(codec.encode(train_text), N)
    h = c = np.zeros((N, H), np.float32)
    pos, costs = 0, []
    bar = tqdm(range(args.steps), desc="char-lstm", disable=args.no_progress)
    for _ in bar:
        if pos + T > x_all.shape[1]:           # the end of the text: start again
            pos, h, c = 0, np.zeros((N, H), np.float32), np.zeros((N, H), np.float32)
        dnn.learn(inputs(x_all[:, pos:pos + T].T, y_all[:, pos:pos + T].T, h, c))
        h, c = last_states(T, N)
        pos += T
        costs.append(float(loss.last_loss))
        bar.set_postfix(nats=f"{costs[-1]:.3f}", refresh=False)
    bar.close()

    # held-out text: the same streams-and-windows walk, forward only
    x_ho, y_ho = text_streams(codec.encode(heldout_text), N)
    h = c = np.zeros((N, H), np.float32)
    total, count = 0.0, 0
    for p in range(0, x_ho.shape[1], T):
        x, y = x_ho[:, p:p + T].T, y_ho[:, p:p + T].T
        t = len(x)
        out = dnn.run(inputs(x, y, h, c))
        h, c = last_states(t, N)
        z = out["scores"].asarray().reshape(t * N, V).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        total -= float(log_p[np.arange(t * N), y.reshape(-1)].sum())
        count += t * N

    sample = generate(dnn, inputs, last_states, codec, H, args)
    return {"costs": costs, "heldout": total / count if count else None, "sample": sample}


def generate(dnn, inputs, last_states, codec, H, args):
    """Feed a prompt, then sample one character at a time from softmax(scores / T):
    each step is a run on a (1, 1, ...) blob that starts from the previous state."""
    import numpy as np
    rng = np.random.default_rng(args.seed)
    h = c = np.zeros((1, H), np.float32)
    prompt = codec.encode(SAMPLE_PROMPT)
    ids = prompt.reshape(-1, 1)
    out = list(prompt)
    for _ in range(args.sample_length):
        run = dnn.run(inputs(ids, np.zeros_like(ids), h, c))
        h, c = last_states(len(ids), 1)
        z = run["scores"].asarray().reshape(len(ids), -1)[-1].astype(np.float64)
        nxt = sample_index(rng, z, args.temperature)
        out.append(nxt)
        ids = np.array([[nxt]], dtype=np.int32)
    return codec.decode(out)


# ------------------------------------------------------------------------------- main
def build_parser():
    parser = argparse.ArgumentParser(
        prog="refnn", description="refnn: a readable reference neural-network library "
        "with Cython and OpenCL fast paths behind the neon and NeoML APIs.")
    sub = parser.add_subparsers(dest="command", metavar="{devices,coverage,train}")

    p = sub.add_parser("devices", help="list OpenCL devices and the default one")
    p.add_argument("--device", default=None,
                   help="show which device this spec selects (index or 'platform:device')")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("coverage", help="which ops/layers have reference, cpu, opencl "
                       "paths and gradient tests (exit 1 on any gap)")
    p.add_argument("--json", action="store_true", help="print the matrix as JSON")
    p.set_defaults(func=cmd_coverage)

    d = TRAIN_DEFAULTS
    c = CHAR_LSTM_DEFAULTS
    p = sub.add_parser("train", help="train an MLP or a CNN on the bundled digits, or a "
                       "character-level LSTM on the bundled text (--model char-lstm)")
    p.add_argument("-b", "--backend", choices=BACKENDS, default=d["backend"],
                   help=f"backend (default {d['backend']})")
    p.add_argument("-e", "--epochs", type=_positive, default=d["epochs"],
                   help=f"epochs (default {EPOCHS['mlp']} for the MLP, "
                   f"{EPOCHS['cnn']} for the CNN)")
    p.add_argument("-z", "--batch-size", type=_positive, default=d["batch_size"],
                   help=f"mini-batch size (default {d['batch_size']})")
    p.add_argument("-r", "--seed", type=int, default=d["seed"],
                   help=f"seed of the data split and weights (default {d['seed']})")
    p.add_argument("--hidden", type=_positive, default=None,
                   help=f"hidden units (default {d['hidden']}; char-lstm {c['hidden']})")
    p.add_argument("--model", choices=("mlp", "cnn", "char-lstm"), default=d["model"],
                   help="a 64-hidden-10 MLP or a small LeNet-style CNN on the digits, or "
                   "char-lstm: a character-level LSTM language model on the bundled text "
                   "(Alice's Adventures in Wonderland) that reports its per-character "
                   "cross-entropy in nats and bits against the text's unigram entropy and "
                   "prints a generated sample (default mlp)")
    p.add_argument("--api", choices=APIS, default=None,
                   help=f"which public API trains it (default {d['api']})")
    p.add_argument("--device", default=None,
                   help="OpenCL device for -b opencl (index or 'platform:device', "
                   "see `refnn devices`)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("char-lstm", "options of --model char-lstm (-z is the number "
                             "of text streams trained side by side, default 32)")
    g.add_argument("--steps", type=_positive, default=c["steps"],
                   help=f"training steps, one window per stream each (default {c['steps']})")
    g.add_argument("--seq-len", type=_positive, default=c["seq_len"],
                   help=f"window length: steps of truncated BPTT (default {c['seq_len']})")
    g.add_argument("--learning-rate", type=_positive_float, default=c["learning_rate"],
                   help=f"Adam learning rate (default {c['learning_rate']})")
    g.add_argument("--sample-length", type=_positive, default=c["sample_length"],
                   help=f"characters to generate at the end (default {c['sample_length']})")
    g.add_argument("--temperature", type=_positive_float, default=c["temperature"],
                   help=f"sampling temperature, lower is more conservative "
                   f"(default {c['temperature']})")
    p.set_defaults(func=cmd_train)
    return parser


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from refnn.backends import BackendError
    from refnn.errors import RefnnError
    try:
        return args.func(args)
    except (RefnnError, BackendError) as exc:   # bad input: the message, not a traceback
        print(f"refnn {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
