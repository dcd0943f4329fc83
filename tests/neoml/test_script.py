"""A NeoML script, written against NeoML's documented Python API, runs on refnn.neoml
with only its import line changed (text substitution)."""
import numpy as np

NEOML_SCRIPT = '''
import numpy as np
import neoml

math_engine = neoml.MathEngine.CpuMathEngine(1)
dnn = neoml.Dnn.Dnn(math_engine, neoml.Random.Random(7))
data = neoml.Dnn.Source(dnn, "data")
labels = neoml.Dnn.Source(dnn, "labels")
fc1 = neoml.Dnn.FullyConnected(data, 16, name="fc1")
relu1 = neoml.Dnn.ReLU(fc1, name="relu1")
fc2 = neoml.Dnn.FullyConnected(relu1, 3, name="fc2")
loss = neoml.Dnn.CrossEntropyLoss((fc2, labels), name="loss")
sink = neoml.Dnn.Sink(neoml.Dnn.Softmax(fc2, name="softmax"), name="sink")
dnn.solver = neoml.Dnn.AdaptiveGradient(math_engine, learning_rate=0.05)

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4)).astype(np.float32)
y = (X[:, 0] > 0).astype(np.int32) + (X[:, 1] > 0).astype(np.int32)
x_blob = neoml.Blob.asblob(math_engine, X, (1, 60, 1, 1, 1, 1, 4))
y_blob = neoml.Blob.asblob(math_engine, y, (1, 60, 1, 1, 1, 1, 1))
losses = []
for epoch in range(60):
    dnn.learn({"data": x_blob, "labels": y_blob})
    losses.append(loss.last_loss)
probs = dnn.run({"data": x_blob, "labels": y_blob})["sink"].asarray()
accuracy = float(np.mean(probs.argmax(axis=1) == y))
'''


def test_neoml_script_runs_with_only_the_import_changed():
    assert NEOML_SCRIPT.count("import neoml\n") == 1
    script = NEOML_SCRIPT.replace("import neoml\n", "import refnn.neoml as neoml\n")
    namespace = {}
    exec(compile(script, "neoml_script.py", "exec"), namespace)
    losses = namespace["losses"]
    assert losses[-1] < 0.5 * losses[0]
    assert namespace["accuracy"] > 0.9
    assert namespace["probs"].shape == (60, 3)
    np.testing.assert_allclose(namespace["probs"].sum(axis=1), 1, rtol=1e-5)
