"""Recurrent networks, from the equations to the fast paths -- a walk through
refnn/ops/recurrent.py.

A recurrent layer reads a sequence x_0 .. x_{T-1} one step at a time and carries a state.
refnn's layout is time-major: x (T, N, I) -- T steps of a batch of N vectors of I
features -- and every op returns the states of all steps, hs (T, N, H).

    simple RNN:  h_t = tanh(x_t w^T + h_{t-1} u^T + b)
    LSTM:        [a_g, a_f, a_i, a_o] = x_t w^T + h_{t-1} u^T + b     (NeoML's gate order)
                 c_t = sigmoid(a_f) * c_{t-1} + sigmoid(a_i) * tanh(a_g)
                 h_t = sigmoid(a_o) * tanh(c_t)

1. A simple RNN and an LSTM written from the equations equal rnn_forward / lstm_forward.
2. Backpropagation through time (BPTT) by hand: the gradient of the last step's output
   flows back to every earlier input through u, and equals rnn_backward's.
3. Why LSTMs: how much gradient reaches step 0 from step T-1 (tanh RNN vs LSTM).
4. check_backward against float64 central differences (rnn, lstm with initial states,
   reversed gru), and a truncated BPTT being caught as a wrong gradient.
5. The fast paths (cpu, opencl) compared with the reference.

Run it:  python tutorials/recurrent.py
"""
import numpy as np

import refnn
from refnn.ops.recurrent import (gru_backward, gru_forward, lstm_backward, lstm_forward,
                                 rnn_backward, rnn_forward, sigmoid)
from refnn.testing import GradientMismatch, assert_backends_agree, check_backward

T, N, I, H = 6, 2, 3, 5          # 6 steps, batch of 2, 3 input features, 5 hidden units


def weights(rng, gates, scale=1.0):
    """w (G*H, I), u (G*H, H), b (G*H,) for a cell with ``gates`` blocks."""
    return (rng.standard_normal((gates * H, I)) * scale / np.sqrt(I),
            rng.standard_normal((gates * H, H)) * scale / np.sqrt(H),
            rng.standard_normal(gates * H) * 0.1)


def my_rnn(x, w, u, b):
    """The simple RNN as one loop over time: h_t = tanh(x_t w^T + h_{t-1} u^T + b)."""
    h = np.zeros((x.shape[1], u.shape[1]))         # h_{-1} = 0
    hs = []
    for x_t in x:                                   # x_t: (N, I)
        h = np.tanh(x_t @ w.T + h @ u.T + b)
        hs.append(h)
    return np.stack(hs)


def my_lstm(x, w, u, b):
    """The LSTM as one loop over time, gate blocks g, f, i, o (rows of w, u, b)."""
    h = c = np.zeros((x.shape[1], u.shape[1]))
    hs, cs = [], []
    for x_t in x:
        a_g, a_f, a_i, a_o = np.split(x_t @ w.T + h @ u.T + b, 4, axis=1)
        c = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)    # forget some, write some
        h = sigmoid(a_o) * np.tanh(c)                          # show some
        hs.append(h)
        cs.append(c)
    return np.stack(hs), np.stack(cs)


def step1_equations(rng, x):
    w, u, b = weights(rng, 1)
    hs, _ = rnn_forward(x, w, u, b)
    np.testing.assert_allclose(hs, my_rnn(x, w, u, b), rtol=1e-12, atol=1e-12)
    w4, u4, b4 = weights(rng, 4)
    (hs4, cs4), _ = lstm_forward(x, w4, u4, b4)
    mine_h, mine_c = my_lstm(x, w4, u4, b4)
    np.testing.assert_allclose(hs4, mine_h, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cs4, mine_c, rtol=1e-12, atol=1e-12)
    print(f"1. the loops from the equations == rnn_forward and lstm_forward: "
          f"x {x.shape} -> hs {hs.shape} (and the LSTM's cell states cs {cs4.shape})")


def my_rnn_bptt(x, w, u, b, dhs):
    """BPTT of my_rnn for the loss L = sum_t <dhs[t], h_t>, written out step by step.

    h_t depends on x_t directly and on x_0 .. x_{t-1} through h_{t-1}, so walking
    backwards we carry dh_next = dL/dh_t from the steps after t:

        dz_t = (dhs[t] + dh_next) * (1 - h_t^2)          (tanh' = 1 - tanh^2)
        dx_t = dz_t w      dw += dz_t^T x_t      du += dz_t^T h_{t-1}      db += sum_n dz_t
        dh_next = dz_t u                                  (into step t-1)
    """
    hs = my_rnn(x, w, u, b)
    hprev = np.concatenate([np.zeros_like(hs[:1]), hs[:-1]])
    dx, dw, du, db = np.zeros_like(x), np.zeros_like(w), np.zeros_like(u), np.zeros_like(b)
    dh_next = np.zeros_like(hs[0])
    for t in reversed(range(len(x))):
        dz = (dhs[t] + dh_next) * (1 - hs[t] ** 2)
        dx[t] = dz @ w
        dw += dz.T @ x[t]
        du += dz.T @ hprev[t]
        db += dz.sum(axis=0)
        dh_next = dz @ u
    return dx, dw, du, db


def step2_bptt(rng, x):
    w, u, b = weights(rng, 1)
    # A loss on the LAST step only (a many-to-one task such as classifying a sequence):
    dhs = np.zeros((T, N, H))
    dhs[-1] = rng.standard_normal((N, H))
    mine = my_rnn_bptt(x, w, u, b, dhs)
    hs, saved = rnn_forward(x, w, u, b)
    ref = rnn_backward(dhs, saved)                   # (dx, dw, du, db, dh0 = None)
    for name, m, r in zip(("dx", "dw", "du", "db"), mine, ref):
        np.testing.assert_allclose(m, r, rtol=1e-12, atol=1e-12, err_msg=name)
    assert ref[4] is None                            # no h0 given: no gradient for it
    # Every earlier input got a gradient although only the last output was scored:
    assert all(np.abs(mine[0][t]).sum() > 0 for t in range(T))
    print("2. BPTT by hand == rnn_backward; a loss on step T-1 reaches every x_t: "
          "|dx_t| = " + " ".join(f"{np.abs(mine[0][t]).sum():.3f}" for t in range(T)))


def step3_long_range(rng):
    # How much of a gradient at the last step survives back to step 0? For the RNN it is
    # multiplied by diag(1 - h_t^2) u^T at every step and shrinks geometrically; the LSTM's
    # cell state is carried by the forget gate alone (dc_{t-1} = dc_t * f), so with the
    # forget gate open (a bias of +3: f ~ 0.95) much more gets through.
    steps = 40
    x = rng.standard_normal((steps, 1, I))
    dhs = np.zeros((steps, 1, H))
    dhs[-1] = 1.0
    w, u, b = weights(rng, 1)
    _, saved = rnn_forward(x, w, u, b)
    rnn_dx0 = np.abs(rnn_backward(dhs, saved)[0][0]).sum()
    w4, u4, b4 = weights(rng, 4)
    b4[H:2 * H] = 3.0                                 # rows H..2H are the forget gate
    _, saved = lstm_forward(x, w4, u4, b4)
    lstm_dx0 = np.abs(lstm_backward((dhs, np.zeros_like(dhs)), saved)[0][0]).sum()
    assert lstm_dx0 > 10 * rnn_dx0, (lstm_dx0, rnn_dx0)
    print(f"3. gradient reaching x_0 from a loss at step {steps - 1}: "
          f"tanh RNN {rnn_dx0:.2e}, LSTM (open forget gate) {lstm_dx0:.2e}")


def step4_gradcheck(rng, x):
    # check_backward perturbs every input element by +-eps in float64 and compares the
    # central differences with what backward returns (all inputs: x, w, u, b, h0, c0).
    check_backward(rnn_forward, rnn_backward, [x, *weights(rng, 1)], name="rnn")
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    check_backward(lstm_forward, lstm_backward, [x, *weights(rng, 4), h0, c0],
                   name="lstm")
    check_backward(gru_forward, gru_backward, [x, *weights(rng, 3), h0],
                   params=dict(reverse=True), name="gru")
    print("4a. check_backward: rnn, lstm (with h0, c0) and reversed gru gradients are "
          "right in float64")

    # Truncated BPTT as a *bug*: forget the gradient that flows into the previous state
    # (dh_next stays 0). Each step then only sees its own output -- check_backward
    # notices, because the numerical gradient knows h_t depends on all earlier inputs.
    def truncated_backward(dhs, saved):
        xs, w, u, h0_, hs = saved[:5]           # the reference's saved tuple starts so
        dx, dw, du, db = (np.zeros_like(a) for a in (xs, w, u, u[:, 0]))
        hprev = np.concatenate([np.zeros_like(hs[:1]), hs[:-1]])
        for t in range(len(xs)):
            dz = dhs[t] * (1 - hs[t] ** 2)            # no dh_next
            dx[t], db = dz @ w, db + dz.sum(axis=0)
            dw += dz.T @ xs[t]
            du += dz.T @ hprev[t]
        return dx, dw, du, db, None
    try:
        check_backward(rnn_forward, truncated_backward, [x, *weights(rng, 1)],
                       name="rnn without BPTT")
    except GradientMismatch as e:
        print(f"4b. the truncated gradient is caught: {str(e).splitlines()[0][:90]}")
    else:
        raise AssertionError("check_backward missed a gradient without BPTT")


def step5_fast_paths(rng, x):
    # The same ops in float32 through the Cython (cpu) and OpenCL backends: the input
    # projection of all T steps is one GEMM there, the gates one fused kernel per step.
    # Tolerances are the TOLERANCES entries for (op, float32, backend).
    h0 = rng.standard_normal((N, H))
    cases = [("rnn", [x, *weights(rng, 1)], {"activation": "tanh"}),
             ("lstm", [x, *weights(rng, 4), h0, rng.standard_normal((N, H))], {}),
             ("gru", [x, *weights(rng, 3), h0], {"reverse": True})]
    for name in ("cpu", "opencl"):
        be = refnn.get_backend(name)
        for op, args, params in cases:
            assert_backends_agree(op, be, args, params=params)
        print(f"5. {name} backend: rnn, lstm and gru forward and BPTT match the reference")


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, I))
    step1_equations(rng, x)
    step2_bptt(rng, x)
    step3_long_range(rng)
    step4_gradcheck(rng, x)
    step5_fast_paths(rng, x)
    print("all checks passed")


if __name__ == "__main__":
    main()
