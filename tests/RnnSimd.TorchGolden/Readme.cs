namespace RnnSimd.TorchGolden;

/// <summary>Text of tests/data/torch/README.md, written by the generator so it always matches the files.</summary>
internal static class Readme
{
    public static string Text(string generator, IReadOnlyList<SummaryRow> rows, string table)
    {
        string worst = rows.Max(r => r.Worst).ToString("0.0E+0", System.Globalization.CultureInfo.InvariantCulture);
        return $$"""
# PyTorch golden cases

{{rows.Count}} cases of `torch.nn.RNN` (tanh and relu), `torch.nn.LSTM` and `torch.nn.GRU`, run by LibTorch,
that RnnSimd must reproduce. This file and every `*.safetensors` here are written by
`tests/RnnSimd.TorchGolden` — do not edit them by hand; change the generator and regenerate.

Generator: {{generator}}.

## Regenerate

```
dotnet run -c Release --project tests/RnnSimd.TorchGolden -- tests/data/torch
```

Needs NuGet `TorchSharp-cpu` 0.107.0 (about 600 MB of LibTorch native libraries; this is why the
generator is not part of `RnnSimd.sln`). On Debian 12 the project's post-build step
(`weaken_glibcxx.py`, run from the csproj target `WeakenLibTorchSharpGlibcxx`) marks the
`GLIBCXX_3.4.32` requirement of the copied `libLibTorchSharp.so` as weak so that it loads.
Re-running rewrites byte-identical files (checked: two runs, same SHA-256 for every file). The
parameters and inputs come from our own seeded generator, never from LibTorch's RNG; LibTorch runs on
one thread; and the generator pins, through setenv before its first LibTorch call,
`MKL_CBWR=COMPATIBLE` (without it, MKL's GEMM picks kernels by buffer alignment and two identical
float32 runs in one process differed by 1-2 ulp) and `ATEN_CPU_CAPABILITY=avx2` (so ATen's vector
kernels are the same on AVX2 and AVX-512 machines; with `avx512`, `torch32.*` of 5 files changed in
the last bits). Every case is also run twice in float64 and twice in float32, and the generator fails
unless the two agree bitwise. A machine without AVX2 would still give other `torch32.*` bits.

## File names

`<cell>_L<num_layers>_<uni|bi>_<bias|nobias>_T<seq_len>_B<batch>_I<input_size>_H<hidden_size>.safetensors`

Cells: `rnn_tanh`, `rnn_relu`, `lstm`, `gru` (PyTorch's GRU: the reset gate multiplies
`W_hn h + b_hn`, "linear before reset"). Gate order in the weights is PyTorch's: LSTM i,f,g,o; GRU r,z,n.
Shapes: T=5,B=3,I=7,H=16 with four (layers, direction, bias) settings per cell that together cover
every pair of option values; T=1,B=1,I=3,H=5 (smallest; plus 2-layer bidirectional LSTM and GRU);
T=4,B=2,I=17,H=33 (just past vector widths, all four cells); a bidirectional GRU at T=3,B=2,I=9,H=17
(just past 8 and 16 floats). Not covered: `batch_first` (a layout change only; every file is
time-major), `dropout` (random, training only, between layers), and `proj_size` (not exposed by
TorchSharp 0.107's LSTM).

## Contents of each file (safetensors)

8-byte little-endian header length, UTF-8 JSON header padded with spaces to a multiple of 8, then
raw little-endian data (F64 tensors first, so each is 8-byte aligned). L = num_layers, D = 2 if
bidirectional else 1.

| tensor | dtype | shape | what |
|---|---|---|---|
| `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}`, and `..._reverse` | F32 | as in PyTorch's `state_dict` | the parameters (no `bias_*` when bias=false) |
| `input` | F32 | (T, B, I) | |
| `h0` | F32 | (L*D, B, H) | initial hidden state |
| `c0` | F32 | (L*D, B, H) | initial cell state, LSTM only |
| `target` | F32 | (T, B, D*H) | for the loss |
| `expected.output` | F64 | (T, B, D*H) | float64 run |
| `expected.h_n`, `expected.c_n` (LSTM) | F64 | (L*D, B, H) | float64 run |
| `expected.loss` | F64 | (1) | 0.5 * sum((output - target)^2) over every element |
| `expected.grad.input`, `expected.grad.h0`, `expected.grad.c0` (LSTM), `expected.grad.<param>` | F64 | as the tensor | d loss / d tensor, float64 run |
| `torch32.*` (same names as `expected.*`) | F32 | same | LibTorch's own float32 run, for comparison |

String metadata (`__metadata__`): `cell`, `input_size`, `hidden_size`, `num_layers`, `bidirectional`
and `bias` (`true`/`false`), `seq_len`, `batch`, `batch_first` (always `false`), `loss`, `generator`.

## How the values were made

1. Parameters ~ U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default init range), `input`, `h0`, `c0`,
   `target` ~ U(-1, 1), all float32, from SplitMix64 seeded with the FNV-1a hash of the file name.
2. The module is built in float32 with TorchSharp, the parameters copied in, `module.to(float64)`
   applied; input/h0/c0 are converted to float64 with `requires_grad`; forward, loss, `loss.backward()`
   give `expected.*`. The same without conversion gives `torch32.*`.
3. Self-check, every run, failing the generator on any mismatch: an independent plain-double forward
   (`NaiveRnn.cs`, written from PyTorch's equations) must match `expected.output`, `h_n`, `c_n`,
   `loss` to 1e-12, and about five entries of every `expected.grad.*` tensor must match central
   finite differences of that double loss to 1e-6 (relative to 1 + |grad|). It also checks that
   LibTorch names the parameters as above and that `to(float64)` kept every value exactly.

## LibTorch float32 against float64

Normwise relative error ||torch32 - expected|| / ||expected|| (2-norm over the whole tensor); the
last column is the worst parameter gradient. Worst over everything: {{worst}}. A float32
implementation that lands in this range is as accurate as LibTorch's own.

{{table}}

""";
    }
}
