#!/usr/bin/python3
"""Writes tests/data/onnx/node/: the ONNX project's own backend node tests for LSTM, GRU and RNN
(every test whose name starts with test_lstm_, test_gru_, test_rnn_ or test_simple_rnn_), plus
tests/data/onnx/README.md (the table of those tests) and tests/data/onnx/LICENSE-onnx.md.

    /usr/bin/python3 tools/gen-onnx-node-tests.py      (from the repository root)

Needs the Debian package python3-onnx (onnx 1.12; `apt-get install -y python3-onnx`) and the system
python (/usr/bin/python3), not a pyenv one. The test cases come from onnx.backend.test.case.node, the
same code that `python3 -m onnx.backend.test.cmd_tools generate-data` runs; the files are written
exactly as cmd_tools writes them (model.onnx, test_data_set_0/input_K.pb and output_K.pb, each a
serialized TensorProto named after graph input/output K). Deterministic: onnx seeds numpy's global
RNG with 0 before every export_* function, and the whole node/ folder is deleted and rewritten.
"""
import pathlib
import shutil
import sys

import numpy as np

# onnx 1.12's test-case modules (other operators' ones, imported by collect_testcases) still use the
# numpy aliases that numpy 1.24 removed; restore them here instead of editing the installed package.
np.float = float
np.int = int
np.bool = bool
np.object = object

import onnx  # noqa: E402
import onnx.backend.test.case.node as node_test  # noqa: E402
from onnx import numpy_helper  # noqa: E402

PREFIXES = ("test_lstm_", "test_gru_", "test_rnn_", "test_simple_rnn_")
ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "onnx"
COMMAND = "/usr/bin/python3 tools/gen-onnx-node-tests.py"

OPTIONAL_INPUTS = {
    "LSTM": ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"],
    "GRU": ["X", "W", "R", "B", "sequence_lens", "initial_h"],
    "RNN": ["X", "W", "R", "B", "sequence_lens", "initial_h"],
}
OUTPUTS = {"LSTM": ["Y", "Y_h", "Y_c"], "GRU": ["Y", "Y_h"], "RNN": ["Y", "Y_h"]}


def write_case(case, folder: pathlib.Path) -> None:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(case.model.SerializeToString())
    assert len(case.data_sets) == 1
    inputs, outputs = case.data_sets[0]
    ds = folder / "test_data_set_0"
    ds.mkdir()
    graph = case.model.graph
    for j, a in enumerate(inputs):
        assert graph.input[j].type.HasField("tensor_type")
        (ds / f"input_{j}.pb").write_bytes(numpy_helper.from_array(a, graph.input[j].name).SerializeToString())
    for j, a in enumerate(outputs):
        assert graph.output[j].type.HasField("tensor_type")
        (ds / f"output_{j}.pb").write_bytes(numpy_helper.from_array(a, graph.output[j].name).SerializeToString())


def fmt_attr(a) -> str:
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        v = v.decode()
    elif isinstance(v, list):
        v = "[" + ", ".join(x.decode() if isinstance(x, bytes) else repr(x) for x in v) + "]"
    return f"{a.name}={v}"


def shape_of(vi) -> str:
    return "[" + ", ".join(str(d.dim_value) for d in vi.type.tensor_type.shape.dim) + "]"


def describe(folder: pathlib.Path) -> dict:
    """Reads a written model back and describes its single node."""
    model = onnx.load(str(folder / "model.onnx"))
    onnx.checker.check_model(model)
    (node,) = model.graph.node
    shapes = {vi.name: shape_of(vi) for vi in list(model.graph.input) + list(model.graph.output)}
    names = OPTIONAL_INPUTS[node.op_type]
    used_in = [f"{names[k]}{shapes[n]}" for k, n in enumerate(node.input) if n]
    omitted_in = [names[k] for k in range(len(names)) if k >= len(node.input) or not node.input[k]]
    onames = OUTPUTS[node.op_type]
    used_out = [f"{onames[k]}{shapes[n]}" for k, n in enumerate(node.output) if n]
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    ds = folder / "test_data_set_0"
    files = sorted(p.name for p in ds.iterdir())
    return {
        "name": folder.name, "op": node.op_type, "opset": opset, "ir": model.ir_version,
        "attrs": ", ".join(fmt_attr(a) for a in node.attribute),
        "inputs": ", ".join(used_in), "omitted": ", ".join(omitted_in) or "-",
        "outputs": ", ".join(used_out), "files": len(files),
    }


def main() -> None:
    cases = node_test.collect_testcases(None)
    selected = sorted((c for c in cases if c.name.startswith(PREFIXES)), key=lambda c: c.name)
    assert selected, "no test cases found"
    node_dir = OUT / "node"
    if node_dir.exists():
        shutil.rmtree(node_dir)
    for c in selected:
        assert c.kind == "node"
        write_case(c, node_dir / c.name)
    rows = [describe(node_dir / c.name) for c in selected]

    table = ["| test | op | opset | attributes | inputs used (shape) | optional inputs omitted | outputs (shape) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| `{r['name']}` | {r['op']} | {r['opset']} | {r['attrs']} | {r['inputs']} | {r['omitted']} | {r['outputs']} |")

    readme = f"""# ONNX test data for LSTM, GRU and RNN

Two sets of test cases, both in the ONNX backend-test folder format: `<case>/model.onnx` and
`<case>/test_data_set_0/input_K.pb`, `output_K.pb`, each a serialized `TensorProto` whose `name` is
graph input / output K (K in graph order; an omitted optional input of the node has no file).

- `node/`: the ONNX project's own backend node tests for these operators ({len(rows)} cases), written
  by `{COMMAND}` with onnx {onnx.__version__}. See `LICENSE-onnx.md`. Table below.
- `spec/`: our own cases with expected values from an independent float64 numpy implementation of the
  operator spec, written by `/usr/bin/python3 tools/gen-onnx-spec-cases.py`. See `spec/README.md`.

Do not edit these files by hand; change the generator and rerun it (both rewrite their folders
byte-identically).

## node/: the ONNX backend node tests (onnx {onnx.__version__})

Expected values there come from onnx's own numpy helpers (`onnx/backend/test/case/node/lstm.py`,
`gru.py`, `rnn.py`), stored as float32; onnx's runners compare with rtol=1e-3, atol=1e-7. Our float64
code in tools/gen-onnx-spec-cases.py reproduces every one of them within 2e-7 (it checks this on each run).
What they cover is narrow: all are single-direction forward with T = 1 (the `*_seq_length` cases:
T = 2, B = 3), weights are constants (`weight_scale * ones`, except the `*_seq_length` cases, which
use `randn` with numpy's RNG seeded 0), X is a ramp such as 1..9, and most return only `Y_h` (node
outputs `["", "Y_h"]`). None passes a `sequence_lens` shorter than the sequence:
`test_lstm_with_peepholes` passes the full length [1, 1] (with zero initial_h / initial_c), and the
`*_seq_length` cases pass no `sequence_lens` at all despite the name. The `*_batchwise` cases
(layout=1) have T = 1 and D = 1, so their `Y_h`, which onnx's helper takes as `Y[:, :, -1, :]` (the
direction axis of the [B, T, D, H] output, not the time axis), is still right.

{chr(10).join(table)}

(Shapes are those of the graph inputs/outputs; `sequence_lens` is int32, everything else float32.
With layout=1, X is [batch, seq, input] and Y is [batch, seq, num_directions, hidden].)
"""
    (OUT / "README.md").write_text(readme)

    license_text = f"""# Origin and license of tests/data/onnx/node/

The folders under `node/` are generated from the ONNX project's backend test cases
(`onnx/backend/test/case/node/lstm.py`, `gru.py`, `rnn.py`, with `onnx/backend/test/case/node/__init__.py`
building the models), https://github.com/onnx/onnx.

Copyright (c) ONNX Project Contributors. Licensed under the Apache License, Version 2.0
(SPDX-License-Identifier: Apache-2.0); you may obtain a copy of the License at
http://www.apache.org/licenses/LICENSE-2.0. The data is distributed on an "AS IS" BASIS, WITHOUT
WARRANTIES OR CONDITIONS OF ANY KIND.

- onnx version: {onnx.__version__} (Debian package python3-onnx), numpy {np.__version__}
- command: `{COMMAND}` (from the repository root; it calls
  `onnx.backend.test.case.node.collect_testcases` and writes the test folders the way
  `python3 -m onnx.backend.test.cmd_tools generate-data` does, keeping only the tests whose names
  start with {", ".join("`" + p + "`" for p in PREFIXES)})

The files under `spec/` are not derived from ONNX's test cases; they are written by
`tools/gen-onnx-spec-cases.py` in this repository.
"""
    (OUT / "LICENSE-onnx.md").write_text(license_text)
    for r in rows:
        print(f"{r['name']}: {r['op']} opset {r['opset']} [{r['attrs']}] in: {r['inputs']} out: {r['outputs']}")


if __name__ == "__main__":
    if sys.executable != "/usr/bin/python3":
        print(f"warning: running under {sys.executable}; the data was made with /usr/bin/python3 (Debian python3-onnx)",
              file=sys.stderr)
    main()
