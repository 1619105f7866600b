#!/usr/bin/python3
"""Writes tests/data/onnx/spec/: our own ONNX LSTM / GRU / RNN test cases with expected values from an
independent float64 numpy implementation of the operator spec, plus tests/data/onnx/spec/README.md.

    /usr/bin/python3 tools/gen-onnx-spec-cases.py      (from the repository root)

Needs the Debian package python3-onnx (onnx 1.12) and /usr/bin/python3. onnx is used only to build,
check and serialize the models; the expected values come from the float64 code below, written from
the operator text (onnx.defs.get_schema('LSTM').doc, https://onnx.ai/onnx/operators/onnx__LSTM.html,
onnx__GRU.html, onnx__RNN.html). Neither onnx's reference code nor onnxruntime is used.

Every case is a folder in the ONNX backend-test format: model.onnx, test_data_set_0/input_K.pb
(graph input K, in graph input order) and output_K.pb (graph output K), each a TensorProto whose name
is that graph input/output. Inputs are float32 (sequence_lens int32); weights ~ U(-0.5, 0.5), data
(X, initial_h, initial_c) ~ U(-1, 1) (U(-3, 3) for X in the clip cases), from
numpy.random.default_rng([SEED, crc32(case name)]), so each case's data depend only on its name.
Expected values are computed in float64 from the float32 inputs and rounded once to float32.

Before writing, the float64 code is checked against two outside sources (the run fails otherwise):
  - tests/data/onnx/node/ (ONNX's own node tests, tools/gen-onnx-node-tests.py): to 2e-7;
  - tests/data/torch/*.safetensors (LibTorch float64 runs of nn.LSTM / nn.GRU / nn.RNN, 1-2 layers,
    uni/bidirectional, written by tests/RnnSimd.TorchGolden): the same torch-export-like graph the
    graph_* cases use is built from the torch parameters and run through the float64 interpreter
    below; it must match expected.output / h_n / c_n to 1e-12.
"""
import json
import pathlib
import shutil
import struct
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 20240611
ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OUT = DATA / "onnx" / "spec"
PRODUCER = "RnnSimd tools/gen-onnx-spec-cases.py"

# ----------------------------------------------------------------------------------------------------
# float64 reference, written from the ONNX operator text
# ----------------------------------------------------------------------------------------------------


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS = {"Sigmoid": sigmoid, "Tanh": np.tanh, "Relu": lambda x: np.maximum(x, 0.0)}


class Stats:
    """Counts, per run, how many gate pre-activations the clip attribute changed."""

    def __init__(self):
        self.clipped = 0
        self.total = 0


STATS = Stats()


def clip_pre(x, clip):
    """clip: 'Cell clip threshold. Clipping bounds the elements of a tensor in the range of
    [-threshold, +threshold] and is applied to the input of activations.' Implemented as: every gate
    pre-activation (LSTM i, f, c, o; GRU z, r, h; RNN's one) is clamped to [-clip, clip] right before
    its activation function, after all terms (biases, peepholes) are added. The cell state Ct given
    to LSTM's h() is not clipped (it is not a gate pre-activation; onnxruntime's CPU LSTM does the
    same)."""
    if clip is None:
        return x
    STATS.total += x.size
    STATS.clipped += int(np.count_nonzero(np.abs(x) > clip))
    return np.minimum(np.maximum(x, -clip), clip)


def directions_of(direction):
    """Per direction index d: True if that direction runs backwards in time."""
    if direction == "forward":
        return [False]
    if direction == "reverse":
        return [True]
    if direction == "bidirectional":
        return [False, True]
    raise ValueError(direction)


def steps_of(length, backwards):
    """The time steps a direction visits for one batch entry of valid length `length`: forward 0 ..
    length-1; reverse from the entry's last valid step, length-1, down to 0. Steps t >= length are
    never visited: Y stays 0 there, and Y_h / Y_c are the states after the last visited step."""
    return range(length - 1, -1, -1) if backwards else range(length)


def to_time_major(layout, X, *states):
    """layout 1: X [B, T, I] -> [T, B, I]; initial_h / initial_c [B, D, H] -> [D, B, H]."""
    if layout == 0:
        return (X,) + states
    return (X.transpose(1, 0, 2),) + tuple(None if s is None else s.transpose(1, 0, 2) for s in states)


def from_time_major(layout, Y, *states):
    """layout 1: Y [T, D, B, H] -> [B, T, D, H]; Y_h / Y_c [D, B, H] -> [B, D, H]."""
    if layout == 0:
        return (Y,) + states
    return (Y.transpose(2, 0, 1, 3),) + tuple(s.transpose(1, 0, 2) for s in states)


def lstm_reference(X, W, R, B, sequence_lens, initial_h, initial_c, P, *, hidden_size, direction="forward",
                   layout=0, activations=None, clip=None, input_forget=0):
    f64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    X, W, R, B, initial_h, initial_c, P = map(f64, (X, W, R, B, initial_h, initial_c, P))
    X, initial_h, initial_c = to_time_major(layout, X, initial_h, initial_c)
    T, batch, _ = X.shape
    H = hidden_size
    dirs = directions_of(direction)
    D = len(dirs)
    acts = activations or ["Sigmoid", "Tanh", "Tanh"] * D
    assert len(acts) == 3 * D
    lens = [T] * batch if sequence_lens is None else [int(v) for v in sequence_lens]
    Y = np.zeros((T, D, batch, H))
    Y_h = np.zeros((D, batch, H))
    Y_c = np.zeros((D, batch, H))
    for d, backwards in enumerate(dirs):
        f, g, h = (ACTIVATIONS[a] for a in acts[3 * d:3 * d + 3])
        # W[iofc], R[iofc]: gate blocks of H rows in the order input, output, forget, cell.
        Wi, Wo, Wf, Wc = W[d][0:H], W[d][H:2 * H], W[d][2 * H:3 * H], W[d][3 * H:4 * H]
        Ri, Ro, Rf, Rc = R[d][0:H], R[d][H:2 * H], R[d][2 * H:3 * H], R[d][3 * H:4 * H]
        # B = [Wb[iofc], Rb[iofc]], 8H values; absent: 0.
        b = B[d] if B is not None else np.zeros(8 * H)
        Wbi, Wbo, Wbf, Wbc = b[0:H], b[H:2 * H], b[2 * H:3 * H], b[3 * H:4 * H]
        Rbi, Rbo, Rbf, Rbc = b[4 * H:5 * H], b[5 * H:6 * H], b[6 * H:7 * H], b[7 * H:8 * H]
        # P = P[iof], 3H values; absent: 0.
        p = P[d] if P is not None else np.zeros(3 * H)
        Pi, Po, Pf = p[0:H], p[H:2 * H], p[2 * H:3 * H]
        for n in range(batch):
            Ht_1 = initial_h[d, n] if initial_h is not None else np.zeros(H)
            Ct_1 = initial_c[d, n] if initial_c is not None else np.zeros(H)
            for t in steps_of(lens[n], backwards):
                Xt = X[t, n]
                it = f(clip_pre(Xt @ Wi.T + Ht_1 @ Ri.T + Pi * Ct_1 + Wbi + Rbi, clip))
                if input_forget:
                    # input_forget: "Couple the input and forget gates if 1." The spec gives no
                    # equation; implemented as ft = 1 - it (the coupled input-forget gate, as in
                    # onnxruntime's CPU LSTM and CNTK): Wf, Rf, Wbf, Rbf and Pf are then unused.
                    ft = 1.0 - it
                else:
                    ft = f(clip_pre(Xt @ Wf.T + Ht_1 @ Rf.T + Pf * Ct_1 + Wbf + Rbf, clip))
                ct = g(clip_pre(Xt @ Wc.T + Ht_1 @ Rc.T + Wbc + Rbc, clip))
                Ct = ft * Ct_1 + it * ct
                ot = f(clip_pre(Xt @ Wo.T + Ht_1 @ Ro.T + Po * Ct + Wbo + Rbo, clip))
                Ht = ot * h(Ct)
                Y[t, d, n] = Ht
                Ht_1, Ct_1 = Ht, Ct
            Y_h[d, n] = Ht_1
            Y_c[d, n] = Ct_1
    return from_time_major(layout, Y, Y_h, Y_c)


def gru_reference(X, W, R, B, sequence_lens, initial_h, *, hidden_size, direction="forward", layout=0,
                  activations=None, clip=None, linear_before_reset=0):
    f64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    X, W, R, B, initial_h = map(f64, (X, W, R, B, initial_h))
    X, initial_h = to_time_major(layout, X, initial_h)
    T, batch, _ = X.shape
    H = hidden_size
    dirs = directions_of(direction)
    D = len(dirs)
    acts = activations or ["Sigmoid", "Tanh"] * D
    assert len(acts) == 2 * D
    lens = [T] * batch if sequence_lens is None else [int(v) for v in sequence_lens]
    Y = np.zeros((T, D, batch, H))
    Y_h = np.zeros((D, batch, H))
    for d, backwards in enumerate(dirs):
        f, g = (ACTIVATIONS[a] for a in acts[2 * d:2 * d + 2])
        # W[zrh], R[zrh]: update, reset, hidden.
        Wz, Wr, Wh = W[d][0:H], W[d][H:2 * H], W[d][2 * H:3 * H]
        Rz, Rr, Rh = R[d][0:H], R[d][H:2 * H], R[d][2 * H:3 * H]
        # B = [Wb[zrh], Rb[zrh]], 6H values; absent: 0.
        b = B[d] if B is not None else np.zeros(6 * H)
        Wbz, Wbr, Wbh = b[0:H], b[H:2 * H], b[2 * H:3 * H]
        Rbz, Rbr, Rbh = b[3 * H:4 * H], b[4 * H:5 * H], b[5 * H:6 * H]
        for n in range(batch):
            Ht_1 = initial_h[d, n] if initial_h is not None else np.zeros(H)
            for t in steps_of(lens[n], backwards):
                Xt = X[t, n]
                zt = f(clip_pre(Xt @ Wz.T + Ht_1 @ Rz.T + Wbz + Rbz, clip))
                rt = f(clip_pre(Xt @ Wr.T + Ht_1 @ Rr.T + Wbr + Rbr, clip))
                if linear_before_reset:
                    ht = g(clip_pre(Xt @ Wh.T + (rt * (Ht_1 @ Rh.T + Rbh)) + Wbh, clip))
                else:
                    ht = g(clip_pre(Xt @ Wh.T + (rt * Ht_1) @ Rh.T + Rbh + Wbh, clip))
                Ht = (1.0 - zt) * ht + zt * Ht_1
                Y[t, d, n] = Ht
                Ht_1 = Ht
            Y_h[d, n] = Ht_1
    return from_time_major(layout, Y, Y_h)


def rnn_reference(X, W, R, B, sequence_lens, initial_h, *, hidden_size, direction="forward", layout=0,
                  activations=None, clip=None):
    f64 = lambda a: None if a is None else np.asarray(a, dtype=np.float64)  # noqa: E731
    X, W, R, B, initial_h = map(f64, (X, W, R, B, initial_h))
    X, initial_h = to_time_major(layout, X, initial_h)
    T, batch, _ = X.shape
    H = hidden_size
    dirs = directions_of(direction)
    D = len(dirs)
    acts = activations or ["Tanh"] * D
    assert len(acts) == D
    lens = [T] * batch if sequence_lens is None else [int(v) for v in sequence_lens]
    Y = np.zeros((T, D, batch, H))
    Y_h = np.zeros((D, batch, H))
    for d, backwards in enumerate(dirs):
        f = ACTIVATIONS[acts[d]]
        Wi, Ri = W[d], R[d]
        # B = [Wbi, Rbi], 2H values; absent: 0.
        b = B[d] if B is not None else np.zeros(2 * H)
        Wbi, Rbi = b[0:H], b[H:2 * H]
        for n in range(batch):
            Ht_1 = initial_h[d, n] if initial_h is not None else np.zeros(H)
            for t in steps_of(lens[n], backwards):
                Xt = X[t, n]
                Ht = f(clip_pre(Xt @ Wi.T + Ht_1 @ Ri.T + Wbi + Rbi, clip))
                Y[t, d, n] = Ht
                Ht_1 = Ht
            Y_h[d, n] = Ht_1
    return from_time_major(layout, Y, Y_h)


# ----------------------------------------------------------------------------------------------------
# a float64 interpreter for the few node types the cases use
# ----------------------------------------------------------------------------------------------------

RNN_INPUTS = {
    "LSTM": ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"],
    "GRU": ["X", "W", "R", "B", "sequence_lens", "initial_h"],
    "RNN": ["X", "W", "R", "B", "sequence_lens", "initial_h"],
}


def attrs_of(node):
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def run_node(node, env):
    get = lambda k: env[node.input[k]] if k < len(node.input) and node.input[k] else None  # noqa: E731
    a = attrs_of(node)
    op = node.op_type
    if op in RNN_INPUTS:
        assert "activation_alpha" not in a and "activation_beta" not in a
        kw = dict(hidden_size=a["hidden_size"], direction=a.get("direction", "forward"), layout=a.get("layout", 0),
                  activations=a.get("activations"), clip=a.get("clip"))
        args = [get(k) for k in range(len(RNN_INPUTS[op]))]
        if op == "LSTM":
            res = lstm_reference(*args, input_forget=a.get("input_forget", 0), **kw)
        elif op == "GRU":
            res = gru_reference(*args, linear_before_reset=a.get("linear_before_reset", 0), **kw)
        else:
            res = rnn_reference(*args, **kw)
    elif op == "Slice":
        data, starts, ends = get(0), get(1), get(2)
        axes = get(3) if get(3) is not None else range(len(starts))
        assert get(4) is None
        index = [slice(None)] * data.ndim
        for s, e, ax in zip(starts, ends, axes):
            index[int(ax)] = slice(int(s), int(e))
        res = [data[tuple(index)]]
    elif op == "Transpose":
        res = [np.transpose(get(0), a["perm"])]
    elif op == "Reshape":
        data, shape = get(0), [int(v) for v in get(1)]
        assert not a.get("allowzero", 0)
        shape = [data.shape[i] if v == 0 else v for i, v in enumerate(shape)]
        res = [data.reshape(shape)]
    elif op == "Squeeze":
        res = [np.squeeze(get(0), axis=tuple(int(v) for v in get(1)))]
    elif op == "Concat":
        res = [np.concatenate([env[n] for n in node.input], axis=a["axis"])]
    elif op == "MatMul":
        res = [get(0) @ get(1)]
    elif op == "Add":
        res = [get(0) + get(1)]
    else:
        raise NotImplementedError(op)
    for name, value in zip(node.output, res):
        if name:
            env[name] = value


def run_model(model, feeds):
    """Runs the graph in float64 (int tensors stay int); returns the graph outputs in order."""
    env = {}
    for init in model.graph.initializer:
        v = numpy_helper.to_array(init)
        env[init.name] = v.astype(np.float64) if v.dtype.kind == "f" else v
    for name, v in feeds.items():
        env[name] = v.astype(np.float64) if v.dtype.kind == "f" else v
    for node in model.graph.node:
        run_node(node, env)
    return [env[o.name] for o in model.graph.output]


# ----------------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------------

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
OUTPUT_NAMES = {"LSTM": ["Y", "Y_h", "Y_c"], "GRU": ["Y", "Y_h"], "RNN": ["Y", "Y_h"]}
SMALL = dict(T=4, B=3, I=3, H=5)
BIG = dict(T=7, B=4, I=20, H=33)
CASES = []


def case(name, op, desc, *, inputs, outputs=None, opset=14, sizes=SMALL, lens=None, x_range=1.0, **attrs):
    """A one-node case. inputs: node input names (any of RNN_INPUTS[op]; '' for an omitted one);
    outputs: node output names ('' for an omitted one), default all."""
    CASES.append(dict(kind="node", name=name, op=op, desc=desc, inputs=inputs,
                      outputs=outputs or OUTPUT_NAMES[op], opset=opset, sizes=sizes, lens=lens,
                      x_range=x_range, attrs=attrs))


def rng_for(name):
    return np.random.default_rng([SEED, zlib.crc32(name.encode())])


def uniform(rng, lo, hi, shape):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def build_node_case(c):
    op, s, a = c["op"], c["sizes"], c["attrs"]
    T, Bn, I, H = s["T"], s["B"], s["I"], s["H"]
    D = 2 if a.get("direction") == "bidirectional" else 1
    layout = a.get("layout", 0)
    G = GATES[op]
    shapes = {
        "X": [T, Bn, I] if layout == 0 else [Bn, T, I],
        "W": [D, G * H, I], "R": [D, G * H, H], "B": [D, 2 * G * H], "sequence_lens": [Bn],
        "initial_h": [D, Bn, H] if layout == 0 else [Bn, D, H], "P": [D, 3 * H],
    }
    shapes["initial_c"] = shapes["initial_h"]
    out_shapes = {"Y": [T, D, Bn, H] if layout == 0 else [Bn, T, D, H], "Y_h": shapes["initial_h"],
                  "Y_c": shapes["initial_h"]}
    rng = rng_for(c["name"])
    feeds = {}
    for n in c["inputs"]:
        if not n:
            continue
        assert n in RNN_INPUTS[op], n
        if n == "sequence_lens":
            v = np.array(c["lens"], dtype=np.int32)
            assert v.shape == (Bn,) and v.min() >= 1 and v.max() <= T
        elif n == "X":
            v = uniform(rng, -c["x_range"], c["x_range"], shapes[n])
        elif n in ("initial_h", "initial_c"):
            v = uniform(rng, -1.0, 1.0, shapes[n])
        else:
            v = uniform(rng, -0.5, 0.5, shapes[n])
        feeds[n] = v
    assert (c["lens"] is None) == ("sequence_lens" not in feeds)
    node = helper.make_node(op, inputs=list(c["inputs"]), outputs=list(c["outputs"]), hidden_size=H, **a)
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT32 if n == "sequence_lens" else TensorProto.FLOAT,
                                            shapes[n]) for n in feeds]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, out_shapes[n]) for n in c["outputs"] if n]
    graph = helper.make_graph([node], c["name"], inputs, outputs)
    return graph, feeds


def torch_like_graph(name, op, layers, bidirectional, params, T, Bn, I, H, *, head=None, squeeze=False,
                     node_attrs=None):
    """The graph torch.onnx.export writes for nn.LSTM / nn.GRU / nn.RNN (batch_first=False) called as
    module(X, h0) or module(X, (h0, c0)): per layer, Slice of the initial states along axis 0
    (starts/ends/axes as int64 tensors), the RNN node (sequence_lens ''), then Transpose(perm 0,2,1,3)
    of Y and Reshape to (T, B, D*H) (or, with squeeze=True, Squeeze of Y along axis 1), feeding the
    next layer; hn (and cn) = Concat of the layers' Y_h (Y_c) along axis 0. head=(Wh, bh) appends
    MatMul + Add on the last layer's output. params[l] = (W, R, B) of layer l, B may be None.
    node_attrs: extra attributes of every RNN node (torch writes linear_before_reset=1 for GRU)."""
    D = 2 if bidirectional else 1
    lstm = op == "LSTM"
    inits, nodes = [], []

    def const(n, v):
        inits.append(numpy_helper.from_array(v, n))
        return n

    const("reshape_shape", np.array([0, 0, -1], dtype=np.int64))
    const("slice_axes", np.array([0], dtype=np.int64))
    if squeeze:
        const("squeeze_axes", np.array([1], dtype=np.int64))
    x = "X"
    h_outs, c_outs = [], []
    for layer in range(layers):
        W, R, B = params[layer]
        p = f"l{layer}"
        const(f"slice_starts_{p}", np.array([layer * D], dtype=np.int64))
        const(f"slice_ends_{p}", np.array([(layer + 1) * D], dtype=np.int64))
        nodes.append(helper.make_node("Slice", ["h0", f"slice_starts_{p}", f"slice_ends_{p}", "slice_axes"],
                                      [f"h0_{p}"]))
        if lstm:
            nodes.append(helper.make_node("Slice", ["c0", f"slice_starts_{p}", f"slice_ends_{p}", "slice_axes"],
                                          [f"c0_{p}"]))
        ins = [x, const(f"W_{p}", W), const(f"R_{p}", R), const(f"B_{p}", B) if B is not None else "", "", f"h0_{p}"]
        if lstm:
            ins.append(f"c0_{p}")
        outs = [f"Y_{p}", f"Y_h_{p}"] + ([f"Y_c_{p}"] if lstm else [])
        nodes.append(helper.make_node(op, ins, outs, hidden_size=H,
                                      direction="bidirectional" if bidirectional else "forward",
                                      **(node_attrs or {})))
        last = layer == layers - 1
        out = "output" if last and head is None else f"out_{p}"
        if squeeze:
            assert not bidirectional
            nodes.append(helper.make_node("Squeeze", [f"Y_{p}", "squeeze_axes"], [out]))
        else:
            nodes.append(helper.make_node("Transpose", [f"Y_{p}"], [f"Y_t_{p}"], perm=[0, 2, 1, 3]))
            nodes.append(helper.make_node("Reshape", [f"Y_t_{p}", "reshape_shape"], [out]))
        x = out
        h_outs.append(f"Y_h_{p}")
        c_outs.append(f"Y_c_{p}")
    nodes.append(helper.make_node("Concat", h_outs, ["hn"], axis=0))
    if lstm:
        nodes.append(helper.make_node("Concat", c_outs, ["cn"], axis=0))
    if head is not None:
        Wh, bh = head
        nodes.append(helper.make_node("MatMul", [x, const("head_W", Wh)], ["head_mm"]))
        nodes.append(helper.make_node("Add", ["head_mm", const("head_b", bh)], ["logits"]))
    fl = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("X", fl, [T, Bn, I]),
              helper.make_tensor_value_info("h0", fl, [layers * D, Bn, H])]
    if lstm:
        inputs.append(helper.make_tensor_value_info("c0", fl, [layers * D, Bn, H]))
    if head is not None:
        outputs = [helper.make_tensor_value_info("logits", fl, [T, Bn, head[0].shape[1]])]
    else:
        outputs = [helper.make_tensor_value_info("output", fl, [T, Bn, D * H])]
    outputs.append(helper.make_tensor_value_info("hn", fl, [layers * D, Bn, H]))
    if lstm:
        outputs.append(helper.make_tensor_value_info("cn", fl, [layers * D, Bn, H]))
    return helper.make_graph(nodes, name, inputs, outputs, initializer=inits)


def graph_case(name, op, desc, *, layers, bidirectional, head=False, squeeze=False, opset=14, sizes=SMALL):
    CASES.append(dict(kind="graph", name=name, op=op, desc=desc, layers=layers, bidirectional=bidirectional,
                      head=head, squeeze=squeeze, opset=opset, sizes=sizes))


def build_graph_case(c):
    T, Bn, I, H = (c["sizes"][k] for k in "TBIH")
    op, L = c["op"], c["layers"]
    D = 2 if c["bidirectional"] else 1
    G = GATES[op]
    rng = rng_for(c["name"])
    params = []
    for layer in range(L):
        In = I if layer == 0 else D * H
        params.append((uniform(rng, -0.5, 0.5, [D, G * H, In]), uniform(rng, -0.5, 0.5, [D, G * H, H]),
                       uniform(rng, -0.5, 0.5, [D, 2 * G * H])))
    head = (uniform(rng, -0.5, 0.5, [D * H, 2]), uniform(rng, -0.5, 0.5, [2])) if c["head"] else None
    feeds = {"X": uniform(rng, -1, 1, [T, Bn, I]), "h0": uniform(rng, -1, 1, [L * D, Bn, H])}
    if op == "LSTM":
        feeds["c0"] = uniform(rng, -1, 1, [L * D, Bn, H])
    graph = torch_like_graph(c["name"], op, L, c["bidirectional"], params, T, Bn, I, H, head=head,
                             squeeze=c["squeeze"], node_attrs={"linear_before_reset": 1} if op == "GRU" else None)
    return graph, feeds


# --- the case list -----------------------------------------------------------------------------------

def common_cases(op):
    p = op.lower()
    lstm = op == "LSTM"
    h0 = ["initial_h", "initial_c"] if lstm else ["initial_h"]
    states = "initial_h, initial_c" if lstm else "initial_h"
    B4 = ["X", "W", "R", "B"]
    case(f"{p}_forward_defaults", op, "direction forward (default), no attributes but hidden_size; all outputs",
         inputs=B4)
    case(f"{p}_reverse", op, "direction reverse; opset 7", inputs=B4, direction="reverse", opset=7)
    case(f"{p}_bidirectional", op, "direction bidirectional; opset 17", inputs=B4, direction="bidirectional",
         opset=17)
    case(f"{p}_bidirectional_seqlens_initial_states", op,
         f"bidirectional with sequence_lens [2, 4, 1] (T = 4) and {states}", inputs=B4 + ["sequence_lens"] + h0,
         lens=[2, 4, 1], direction="bidirectional")
    case(f"{p}_reverse_seqlens", op, "reverse with sequence_lens [3, 1, 4]", inputs=B4 + ["sequence_lens"],
         lens=[3, 1, 4], direction="reverse")
    case(f"{p}_layout1_forward", op, "layout=1 (batch-major X [B, T, I], Y [B, T, D, H]), forward",
         inputs=B4, layout=1)
    case(f"{p}_layout1_reverse_initial_states", op, f"layout=1, reverse, {states} ([B, D, H]), no sequence_lens",
         inputs=B4 + [""] + h0, layout=1, direction="reverse")
    case(f"{p}_layout1_bidirectional_seqlens_initial_states", op,
         f"layout=1, bidirectional, sequence_lens [4, 1, 3], {states} ([B, D, H])",
         inputs=B4 + ["sequence_lens"] + h0, lens=[4, 1, 3], layout=1, direction="bidirectional")
    case(f"{p}_nobias", op, "no B (node inputs [X, W, R])", inputs=["X", "W", "R"])
    case(f"{p}_nobias_seqlens", op, "no B, given as '' before sequence_lens [1, 3, 4]",
         inputs=["X", "W", "R", "", "sequence_lens"], lens=[1, 3, 4])
    case(f"{p}_initial_states_nobias", op, f"{states} with B and sequence_lens '' (omitted); opset 7",
         inputs=["X", "W", "R", "", ""] + h0, opset=7)
    case(f"{p}_only_Y", op, "node outputs [Y] only", inputs=B4, outputs=["Y"])
    case(f"{p}_only_Y_h_bidirectional_seqlens", op,
         "node outputs ['', Y_h]: Y_h without Y; bidirectional, sequence_lens [2, 4, 1]; opset 17",
         inputs=B4 + ["sequence_lens"], outputs=["", "Y_h"], lens=[2, 4, 1], direction="bidirectional", opset=17)
    case(f"{p}_clip", op, "clip=0.5 with X ~ U(-3, 3), so many pre-activations lie beyond it",
         inputs=B4 + [""] + h0, clip=0.5, x_range=3.0)
    case(f"{p}_big_bidirectional_seqlens_initial_states", op,
         f"I=20, H=33, B=4, T=7: bidirectional, sequence_lens [7, 3, 1, 5], {states}; opset 17",
         inputs=B4 + ["sequence_lens"] + h0, sizes=BIG, lens=[7, 3, 1, 5], direction="bidirectional", opset=17)


def all_cases():
    for op in ("LSTM", "GRU", "RNN"):
        common_cases(op)
    B4 = ["X", "W", "R", "B"]
    # LSTM only
    case("lstm_only_Y_c_reverse_seqlens", "LSTM", "node outputs ['', '', Y_c]; reverse, sequence_lens [3, 1, 4]",
         inputs=B4 + ["sequence_lens"], outputs=["", "", "Y_c"], lens=[3, 1, 4], direction="reverse")
    case("lstm_peepholes", "LSTM", "peepholes P [1, 3H] (p_i, p_o, p_f); inputs [X, W, R, B, '', '', '', P]",
         inputs=B4 + ["", "", "", "P"])
    case("lstm_peepholes_bidirectional_seqlens_initial_states", "LSTM",
         "peepholes, bidirectional, sequence_lens [3, 4, 1], initial_h, initial_c: all 8 inputs",
         inputs=B4 + ["sequence_lens", "initial_h", "initial_c", "P"], lens=[3, 4, 1], direction="bidirectional")
    case("lstm_input_forget", "LSTM", "input_forget=1 (implemented as ft = 1 - it), initial_h, initial_c",
         inputs=B4 + ["", "initial_h", "initial_c"], input_forget=1)
    case("lstm_activations_sigmoid_relu_tanh", "LSTM", "activations [Sigmoid, Relu, Tanh] (f, g, h)",
         inputs=B4, activations=["Sigmoid", "Relu", "Tanh"])
    case("lstm_activations_tanh_sigmoid_relu", "LSTM", "activations [Tanh, Sigmoid, Relu] (f, g, h)",
         inputs=B4, activations=["Tanh", "Sigmoid", "Relu"])
    case("lstm_bidirectional_activations_per_direction", "LSTM",
         "bidirectional, activations [Sigmoid, Relu, Tanh, Tanh, Sigmoid, Relu]: forward f,g,h then reverse f,g,h",
         inputs=B4, direction="bidirectional", activations=["Sigmoid", "Relu", "Tanh", "Tanh", "Sigmoid", "Relu"])
    # GRU only
    case("gru_linear_before_reset0_bidirectional", "GRU",
         "linear_before_reset=0 given explicitly, bidirectional, initial_h",
         inputs=B4 + ["", "initial_h"], direction="bidirectional", linear_before_reset=0)
    case("gru_linear_before_reset1_bidirectional", "GRU", "linear_before_reset=1, bidirectional, initial_h",
         inputs=B4 + ["", "initial_h"], direction="bidirectional", linear_before_reset=1)
    case("gru_linear_before_reset1_reverse_seqlens", "GRU", "linear_before_reset=1, reverse, sequence_lens [3, 1, 4]",
         inputs=B4 + ["sequence_lens"], lens=[3, 1, 4], direction="reverse", linear_before_reset=1)
    case("gru_clip_linear_before_reset1", "GRU",
         "clip=0.5 with linear_before_reset=1 (the whole h pre-activation is clipped), X ~ U(-3, 3)",
         inputs=B4 + ["", "initial_h"], clip=0.5, linear_before_reset=1, x_range=3.0)
    case("gru_activations_relu_tanh", "GRU", "activations [Relu, Tanh] (f for z and r, g for h)",
         inputs=B4, activations=["Relu", "Tanh"])
    case("gru_bidirectional_activations_per_direction", "GRU",
         "bidirectional, activations [Relu, Tanh, Tanh, Sigmoid]: forward f,g then reverse f,g",
         inputs=B4, direction="bidirectional", activations=["Relu", "Tanh", "Tanh", "Sigmoid"])
    # RNN only
    case("rnn_relu", "RNN", "activations [Relu]", inputs=B4 + ["", "initial_h"], activations=["Relu"])
    case("rnn_bidirectional_activations_relu_tanh", "RNN",
         "bidirectional, activations [Relu, Tanh]: forward Relu, reverse Tanh", inputs=B4,
         direction="bidirectional", activations=["Relu", "Tanh"])
    # graphs shaped like torch.onnx.export's output
    graph_case("graph_torch_lstm_2layer_bidirectional", "LSTM",
               "torch-export-like graph of a 2-layer bidirectional nn.LSTM: inputs X (T,B,I), h0, c0 (L*D,B,H); "
               "outputs output (T,B,2H), hn, cn", layers=2, bidirectional=True)
    graph_case("graph_torch_lstm_2layer_forward", "LSTM",
               "torch-export-like graph of a 2-layer unidirectional nn.LSTM (Transpose + Reshape after each layer)",
               layers=2, bidirectional=False)
    graph_case("graph_torch_gru_2layer_bidirectional", "GRU",
               "torch-export-like graph of a 2-layer bidirectional nn.GRU (linear_before_reset=1, as torch writes it); "
               "outputs output, hn", layers=2,
               bidirectional=True)
    graph_case("graph_torch_lstm_2layer_bidirectional_head", "LSTM",
               "2-layer bidirectional LSTM graph plus a MatMul (W (2H, 2)) + Add (b (2)) head on the last output; "
               "outputs logits (T,B,2), hn, cn", layers=2, bidirectional=True, head=True)
    graph_case("graph_torch_lstm_1layer_squeeze", "LSTM",
               "torch-export-like graph of a 1-layer unidirectional nn.LSTM: Squeeze(Y, axes [1]) (opset 13+ "
               "Squeeze with axes input); opset 17", layers=1, bidirectional=False, squeeze=True, opset=17)


# ----------------------------------------------------------------------------------------------------
# self-checks against outside data
# ----------------------------------------------------------------------------------------------------

def check_against_onnx_node_tests():
    node_dir = DATA / "onnx" / "node"
    folders = sorted(p for p in node_dir.iterdir() if p.is_dir()) if node_dir.exists() else []
    if not folders:
        sys.exit(f"{node_dir} is missing: run tools/gen-onnx-node-tests.py first")
    worst = 0.0
    for folder in folders:
        model = onnx.load(str(folder / "model.onnx"))
        ds = folder / "test_data_set_0"
        feeds = {}
        for k, vi in enumerate(model.graph.input):
            t = onnx.load_tensor(str(ds / f"input_{k}.pb"))
            assert t.name == vi.name
            feeds[vi.name] = numpy_helper.to_array(t)
        got = run_model(model, feeds)
        for k, g in enumerate(got):
            want = numpy_helper.to_array(onnx.load_tensor(str(ds / f"output_{k}.pb"))).astype(np.float64)
            assert g.shape == want.shape, (folder.name, g.shape, want.shape)
            err = float(np.max(np.abs(g - want)))
            worst = max(worst, err)
            if err > 2e-7:
                sys.exit(f"self-check failed: {folder.name} output {k}: max |diff| {err:.3g}")
    print(f"self-check: {len(folders)} ONNX node tests reproduced, max |diff| {worst:.2g}")


def read_safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        dt = {"F32": np.float32, "F64": np.float64}[v["dtype"]]
        lo, hi = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + lo:8 + n + hi], dtype=dt).reshape(v["shape"])
    return meta, out


def check_against_torch_golden():
    files = sorted((DATA / "torch").glob("*.safetensors"))
    if not files:
        print("self-check: tests/data/torch not found, torch cross-check skipped")
        return
    # torch gate blocks -> ONNX gate blocks: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
    order = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn_tanh": [0], "rnn_relu": [0]}
    worst = 0.0
    for path in files:
        meta, t = read_safetensors(path)
        cell = meta["cell"]
        op = {"lstm": "LSTM", "gru": "GRU"}.get(cell, "RNN")
        T, Bn, I, H = (int(meta[k]) for k in ("seq_len", "batch", "input_size", "hidden_size"))
        L = int(meta["num_layers"])
        bi = meta["bidirectional"] == "true"
        dirs = ["", "_reverse"] if bi else [""]

        def reorder(w):
            return np.concatenate([np.split(w, len(order[cell]))[i] for i in order[cell]])

        params = []
        for layer in range(L):
            W = np.stack([reorder(t[f"weight_ih_l{layer}{s}"]) for s in dirs])
            R = np.stack([reorder(t[f"weight_hh_l{layer}{s}"]) for s in dirs])
            B = None
            if meta["bias"] == "true":
                B = np.stack([np.concatenate([reorder(t[f"bias_ih_l{layer}{s}"]), reorder(t[f"bias_hh_l{layer}{s}"])])
                              for s in dirs])
            params.append((W, R, B))
        attrs = None
        if op == "RNN":
            attrs = {"activations": ["Relu" if cell == "rnn_relu" else "Tanh"] * (2 if bi else 1)}
        if op == "GRU":  # PyTorch's GRU applies the reset gate after the recurrent product
            attrs = {"linear_before_reset": 1}
        graph = torch_like_graph(path.stem, op, L, bi, params, T, Bn, I, H, node_attrs=attrs)
        model = helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", 14)])
        onnx.checker.check_model(model, full_check=True)
        feeds = {"X": t["input"], "h0": t["h0"]}
        if op == "LSTM":
            feeds["c0"] = t["c0"]
        got = run_model(model, feeds)
        names = ["output", "h_n"] + (["c_n"] if op == "LSTM" else [])
        for g, n in zip(got, names):
            err = float(np.max(np.abs(g - t[f"expected.{n}"])))
            worst = max(worst, err)
            if err > 1e-12:
                sys.exit(f"self-check failed: {path.name} {n}: max |diff| {err:.3g} against LibTorch float64")
    print(f"self-check: {len(files)} LibTorch float64 golden files reproduced, max |diff| {worst:.2g}")


# ----------------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------------

def fmt_attr(name, v):
    if isinstance(v, list):
        return f"{name}=[{', '.join(map(str, v))}]"
    return f"{name}={v}"


def shape_str(vi):
    return "[" + ", ".join(str(d.dim_value) for d in vi.type.tensor_type.shape.dim) + "]"


def write_case(c):
    if c["kind"] == "node":
        graph, feeds = build_node_case(c)
    else:
        graph, feeds = build_graph_case(c)
    model = helper.make_model_gen_version(graph, opset_imports=[helper.make_opsetid("", c["opset"])],
                                          producer_name=PRODUCER)
    onnx.checker.check_model(model, full_check=True)  # full_check: strict shape inference too
    STATS.clipped = STATS.total = 0
    expected = run_model(model, feeds)
    if any(n.op_type in RNN_INPUTS and any(a.name == "clip" for a in n.attribute) for n in model.graph.node):
        frac = STATS.clipped / STATS.total
        assert 0.2 < frac < 0.9, (c["name"], frac)
        c["clipped"] = f"{STATS.clipped} of {STATS.total} gate pre-activations beyond the clip"
    folder = OUT / c["name"]
    ds = folder / "test_data_set_0"
    ds.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    for k, vi in enumerate(graph.input):
        (ds / f"input_{k}.pb").write_bytes(numpy_helper.from_array(feeds[vi.name], vi.name).SerializeToString())
    for k, (vi, v) in enumerate(zip(graph.output, expected)):
        want = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        assert list(v.shape) == want, (c["name"], vi.name, v.shape, want)
        assert np.all(np.isfinite(v))
        (ds / f"output_{k}.pb").write_bytes(
            numpy_helper.from_array(v.astype(np.float32), vi.name).SerializeToString())
    c["graph_inputs"] = ", ".join(f"{vi.name}{shape_str(vi)}" for vi in graph.input)
    c["graph_outputs"] = ", ".join(f"{vi.name}{shape_str(vi)}" for vi in graph.output)
    c["ir"] = model.ir_version


def readme():
    lines = [
        "# ONNX LSTM / GRU / RNN spec cases (float64 reference)",
        "",
        "Written by `/usr/bin/python3 tools/gen-onnx-spec-cases.py` (from the repository root; needs the Debian",
        f"package python3-onnx, onnx {onnx.__version__}); do not edit by hand. Rerunning rewrites every file",
        "byte-identically.",
        "",
        "Expected values: float64 numpy from the spec, tools/gen-onnx-spec-cases.py (a naive per-batch-entry,",
        "per-step implementation written from the operator text, independent of onnx's and onnxruntime's",
        "code), computed from the float32 inputs and rounded once to float32. Before writing, the generator",
        "checks that code against ONNX's own node tests in `../node/` (to 2e-7) and against the LibTorch",
        "float64 golden files in `tests/data/torch/` (to 1e-12, through the same torch-export-like graph as",
        "the `graph_torch_*` cases), and runs `onnx.checker.check_model(full_check=True)` on every model.",
        "",
        "## Format",
        "",
        "`<case>/model.onnx`, `<case>/test_data_set_0/input_K.pb` (graph input K, in graph input order) and",
        "`output_K.pb` (graph output K), each a serialized `TensorProto` whose `name` is that input/output.",
        "In the one-node cases every present node input is a graph input (weights included), in node input",
        "order; an omitted optional input ('' in the node, or trailing) has no file. The `graph_torch_*`",
        "cases keep weights, biases and Slice/Reshape/Squeeze constants as initializers; their graph inputs",
        "are X, h0 (and c0).",
        "",
        f"Data: numpy.random.default_rng([{SEED}, crc32(case name)]); weights (W, R, B, P, head) ~ U(-0.5, 0.5),",
        "X, initial_h, initial_c ~ U(-1, 1) (X ~ U(-3, 3) in the clip cases), all float32;",
        "sequence_lens int32. Sizes I=3, H=5, B=3, T=4 unless the name says big (I=20, H=33, B=4, T=7).",
        "",
        "## Semantics implemented (where the spec text is terse)",
        "",
        "- Gate order: LSTM W/R rows i, o, f, c; B = [Wb_iofc, Rb_iofc]; P = [p_i, p_o, p_f]. GRU z, r, h;",
        "  B = [Wb_zrh, Rb_zrh]. RNN B = [Wbi, Rbi]. Absent B, P, initial_h, initial_c are zeros.",
        "- LSTM: it = f(Xt Wi^T + Ht-1 Ri^T + Pi.Ct-1 + Wbi + Rbi); ft likewise with Pf.Ct-1;",
        "  ct = g(Xt Wc^T + Ht-1 Rc^T + Wbc + Rbc); Ct = ft.Ct-1 + it.ct;",
        "  ot = f(Xt Wo^T + Ht-1 Ro^T + Po.Ct + Wbo + Rbo) (the peephole of o sees the new Ct); Ht = ot.h(Ct).",
        "- input_forget=1 (spec: \"Couple the input and forget gates if 1\", no equation): ft = 1 - it, so",
        "  the forget-gate weights, biases and Pf are unused (as in onnxruntime's CPU LSTM).",
        "- clip: every gate pre-activation (LSTM i, f, c, o; GRU z, r, h; RNN) is clamped to [-clip, clip]",
        "  after all its terms are summed and before its activation; LSTM's cell state Ct is not clipped",
        "  before h() (as in onnxruntime). With GRU linear_before_reset=1 the clamp applies to the whole",
        "  Xt Wh^T + rt.(Ht-1 Rh^T + Rbh) + Wbh.",
        "- GRU linear_before_reset=0: ht = g(Xt Wh^T + (rt.Ht-1) Rh^T + Rbh + Wbh); =1:",
        "  ht = g(Xt Wh^T + rt.(Ht-1 Rh^T + Rbh) + Wbh); Ht = (1 - zt).ht + zt.Ht-1.",
        "- activations: per direction, forward's then reverse's (LSTM f, g, h; GRU f, g with f for z and r;",
        "  RNN f).",
        "- sequence_lens: batch entry b has steps 0 .. len_b - 1. Forward visits them in order; reverse starts",
        "  at step len_b - 1 (not T - 1) and goes down to 0. Y is 0 at t >= len_b for both directions.",
        "  Y_h / Y_c hold the state after each direction's last processed step: forward's after step",
        "  len_b - 1, reverse's after step 0. All lengths here are >= 1.",
        "- layout=1: X [B, T, I], initial_h / initial_c / Y_h / Y_c [B, D, H], Y [B, T, D, H].",
        "",
        "## Cross-check against onnxruntime (one-off, not part of the generator)",
        "",
        "onnxruntime 1.31.1 (CPU, float32, from NuGet Microsoft.ML.OnnxRuntime, run through its C++ API)",
        "reproduced every case here and in `../node/` within 1.6e-6 absolute (most within 2e-7; the largest",
        "is rnn_big_bidirectional_seqlens_initial_states), including input_forget, clip, sequence_lens with",
        "reverse and bidirectional, the activations lists and the torch-like graphs. Its CPU kernels refuse",
        "layout=1, so the layout=1 cases were run there as layout=0 models on transposed tensors. A float32",
        "implementation should land within a few 1e-7 (about 1e-6 for the big cases).",
        "",
        "## Cases",
        "",
        "| case | op | opset | attributes | node inputs | node outputs | graph inputs | graph outputs | covers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in CASES:
        if c["kind"] == "node":
            attrs = ", ".join(fmt_attr(k, v) for k, v in c["attrs"].items()) or "-"
            ins = "[" + ", ".join(n if n else "''" for n in c["inputs"]) + "]"
            outs = "[" + ", ".join(n if n else "''" for n in c["outputs"]) + "]"
        else:
            attrs = ("bidirectional" if c["bidirectional"] else "forward") + f", {c['layers']} layer(s)"
            ins = outs = "(graph)"
        desc = c["desc"] + (f" ({c['clipped']})" if "clipped" in c else "")
        lines.append(f"| `{c['name']}` | {c['op']} | {c['opset']} | {attrs} | {ins} | {outs} | {c['graph_inputs']} | "
                     f"{c['graph_outputs']} | {desc} |")
    lines += [
        "",
        "## The graph_torch_* cases",
        "",
        "Built like torch.onnx.export's output for nn.LSTM / nn.GRU with batch_first=False: per layer l,",
        "`Slice(h0, starts=[l*D], ends=[(l+1)*D], axes=[0])` (and c0; starts/ends/axes are int64",
        "initializers), the RNN node with inputs [X_l, W, R, B, '', h0_l(, c0_l)], then",
        "`Transpose(Y, perm=[0, 2, 1, 3])` and `Reshape(shape=[0, 0, -1])` to (T, B, D*H) feeding the next layer",
        "(graph_torch_lstm_1layer_squeeze instead has `Squeeze(Y, axes=[1])`, the form torch writes for a",
        "unidirectional layer); hn / cn = `Concat(axis=0)` of the layers' Y_h / Y_c (a one-input Concat for",
        "one layer). GRU nodes have linear_before_reset=1, as torch writes them. Opset 14 (17 for the Squeeze",
        "case). Weights are random ONNX-ordered (i,o,f,c / z,r,h) values, not converted PyTorch parameters.",
        "",
    ]
    return "\n".join(lines)


def main():
    check_against_onnx_node_tests()
    check_against_torch_golden()
    all_cases()
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    for c in CASES:
        write_case(c)
    (OUT / "README.md").write_text(readme())
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(CASES)} cases to {OUT.relative_to(ROOT)} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
