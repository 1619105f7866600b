using RnnSimd.Layers;
using RnnSimd.Onnx;
using RnnSimd.Tests.Reference;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Cells;

/// <summary>
/// ONNX's LSTM peepholes (input P) and coupled input and forget gates (input_forget = 1) against ONNX's own data: the
/// node test test_lstm_with_peepholes and the float64 spec cases of tests/data/onnx (see spec/README.md), read here
/// tensor by tensor and mapped onto <see cref="RecurrentOptions.Peepholes"/> and
/// <see cref="RecurrentOptions.CoupledInputForget"/> by <see cref="ToStateDict"/>, the mapping an ONNX importer uses.
/// The double oracle and the network (every kernel set; training and inference workspaces; Step at batch B and at
/// batch 1 where the case has no padding) must reproduce the expected Y, Y_h, Y_c. Independent of the ONNX importer:
/// only the TensorProto files are read, and each case's attributes are written in the table below.
/// </summary>
[Trait("Category", "Cells")]
public class OnnxLstmVariantTests
{
    private static string OnnxDir => Path.Combine(Path.GetDirectoryName(TorchParityTests.DataDir)!, "onnx");

    /// <summary>Case folder; direction = bidirectional; input_forget (the node's attributes, from the case tables in tests/data/onnx).</summary>
    public static TheoryData<string, bool, bool> Cases => new()
    {
        { "node/test_lstm_with_peepholes", false, false },
        { "spec/lstm_peepholes", false, false },
        { "spec/lstm_peepholes_bidirectional_seqlens_initial_states", true, false },
        { "spec/lstm_input_forget", false, true },
    };

    /// <summary>ONNX's LSTM gate blocks are i, o, f, c; RnnSimd's (PyTorch's) i, f, g, o: block q here is ONNX's block GateFrom[q].</summary>
    private static readonly int[] GateFrom = [0, 2, 3, 1];

    /// <summary>ONNX's P is [p_i, p_o, p_f]; weight_peep's rows are p_i, p_f, p_o: row q here is ONNX's block PeepFrom[q].</summary>
    private static readonly int[] PeepFrom = [0, 2, 1];

    /// <summary>
    /// An ONNX LSTM's weights as a one-layer state_dict, direction d with suffix "_l0" or "_l0_reverse": W [D, 4H, I] →
    /// weight_ih, R [D, 4H, H] → weight_hh, B [D, 8H] = [Wb | Rb] → bias_ih, bias_hh (gate blocks i,o,f,c → i,f,g,o), and
    /// P [D, 3H] → weight_peep (3, H) (blocks p_i, p_o, p_f → rows p_i, p_f, p_o).
    /// </summary>
    internal static Dictionary<string, float[]> ToStateDict(int D, int H, int I, float[] w, float[] r, float[]? b, float[]? p)
    {
        static float[] Blocks(float[] src, int offset, int block, int[] from)
        {
            var dst = new float[from.Length * block];
            for (int q = 0; q < from.Length; q++) Array.Copy(src, offset + from[q] * block, dst, q * block, block);
            return dst;
        }
        var sd = new Dictionary<string, float[]>();
        for (int d = 0; d < D; d++)
        {
            string sfx = "_l0" + (d == 1 ? "_reverse" : "");
            sd["weight_ih" + sfx] = Blocks(w, d * 4 * H * I, H * I, GateFrom);
            sd["weight_hh" + sfx] = Blocks(r, d * 4 * H * H, H * H, GateFrom);
            if (b is not null)
            {
                sd["bias_ih" + sfx] = Blocks(b, d * 8 * H, H, GateFrom);
                sd["bias_hh" + sfx] = Blocks(b, d * 8 * H + 4 * H, H, GateFrom);
            }
            if (p is not null) sd["weight_peep" + sfx] = Blocks(p, d * 3 * H, H, PeepFrom);
        }
        return sd;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Network_and_oracle_reproduce_onnx_cases(string name, bool bidirectional, bool inputForget)
    {
        string dir = Path.Combine(OnnxDir, name, "test_data_set_0");
        var inputs = Directory.GetFiles(dir, "input_*.pb").Select(Read).ToDictionary(t => t.Name);
        var outputs = Directory.GetFiles(dir, "output_*.pb").Select(Read).ToDictionary(t => t.Name);
        OnnxTensor x = inputs["X"], w = inputs["W"], r = inputs["R"];
        int T = (int)x.Dims[0], B = (int)x.Dims[1], I = (int)x.Dims[2], D = bidirectional ? 2 : 1, H = (int)r.Dims[2];
        Assert.Equal(D, w.Dims[0]);
        float[]? b = inputs.GetValueOrDefault("B")?.Floats, p = inputs.GetValueOrDefault("P")?.Floats;
        int[]? lengths = inputs.GetValueOrDefault("sequence_lens")?.Integers!.Select(v => (int)v).ToArray();
        float[] h0 = inputs.GetValueOrDefault("initial_h")?.Floats ?? new float[D * B * H];
        float[] c0 = inputs.GetValueOrDefault("initial_c")?.Floats ?? new float[D * B * H];
        var o = new RecurrentOptions(CellType.Lstm, I, H, Bidirectional: bidirectional, Bias: b is not null, Peepholes: p is not null,
            CoupledInputForget: inputForget);
        Assert.True(o.Peepholes || o.CoupledInputForget, "each case exercises a variant");
        var sd = ToStateDict(D, H, I, w.Floats!, r.Floats!, b, p);

        // Expected values in RnnSimd's layout: Y [T, D, B, H] as (T, B, D*H); Y_h, Y_c [D, B, H] as they are.
        double[]? y = null;
        if (outputs.TryGetValue("Y", out var yt))
        {
            y = new double[T * B * D * H];
            for (int t = 0; t < T; t++)
                for (int d = 0; d < D; d++)
                    for (int n = 0; n < B; n++)
                        for (int j = 0; j < H; j++) y[((t * B + n) * D + d) * H + j] = yt.Floats![((t * D + d) * B + n) * H + j];
        }
        double[] yh = D2(outputs["Y_h"].Floats!);
        double[]? yc = outputs.TryGetValue("Y_c", out var yct) ? D2(yct.Floats!) : null;

        // The oracle (double). The expected values are float64 rounded once to float32 (the node test's: float32 numpy,
        // within 2e-7 of float64 per tests/data/onnx/README.md), so 3e-7 both ways covers one rounding each side.
        var spec = new RecurrentSpec("lstm", I, H, Bidirectional: bidirectional, Bias: b is not null, Peepholes: p is not null,
            CoupledInputForget: inputForget);
        var oracle = new NaiveRecurrent(spec, sd.ToDictionary(kv => kv.Key, kv => D2(kv.Value)))
            .Run(D2(x.Floats!), T, B, D2(h0), D2(c0), new double[T * B * D * H], lengths);
        if (y is not null) AssertClose($"{name} oracle Y", F(oracle.Output), y, _ => 3e-7, 3e-7);
        AssertClose($"{name} oracle Y_h", F(oracle.HN), yh, _ => 3e-7, 3e-7);
        if (yc is not null) AssertClose($"{name} oracle Y_c", F(oracle.CN!), yc, _ => 3e-7, 3e-7);

        // The network (float), with OnnxBackendTests' tolerance for the spec cases: float32 evaluation of a few steps of
        // dot products of at most 5 + 4 terms lands within a few 1e-7.
        foreach (var set in Sets)
        {
            var net = new RecurrentNetwork(o, 0, set);
            foreach (var (key, v) in sd) v.CopyTo(net.Parameters[key]);
            net.ParametersChanged();
            foreach (bool record in new[] { true, false })
            {
                var ws = record ? net.CreateWorkspace(T, B) : net.CreateInferenceWorkspace(T, B);
                float[] yo = new float[T * B * D * H], hN = new float[D * B * H], cN = new float[D * B * H];
                net.Forward(x.Floats!, T, B, h0, c0, yo, hN, cN, ws, lengths);
                string tag = $"{name} {set} record={record}";
                if (y is not null) AssertClose(tag + " Y", yo, y, _ => 1e-5, 1e-5);
                AssertClose(tag + " Y_h", hN, yh, _ => 1e-5, 1e-5);
                if (yc is not null) AssertClose(tag + " Y_c", cN, yc, _ => 1e-5, 1e-5);
            }
            if (bidirectional || (lengths is not null && lengths.Any(l => l != T))) continue;
            // Streaming: B streams as one state, and each stream on its own (batch 1: the fused [x | h] GEMV path).
            var state = net.CreateState(B);
            h0.CopyTo(state.Hidden(0));
            c0.CopyTo(state.Cell(0));
            var single = Enumerable.Range(0, B).Select(n =>
            {
                var s = net.CreateState();
                h0.AsSpan(n * H, H).CopyTo(s.Hidden(0));
                c0.AsSpan(n * H, H).CopyTo(s.Cell(0));
                return s;
            }).ToArray();
            float[] ys = new float[B * H], y1 = new float[H];
            for (int t = 0; t < T; t++)
            {
                net.Step(state, x.Floats.AsSpan(t * B * I, B * I), ys);
                var expected = y?.AsSpan(t * B * H, B * H).ToArray() ?? (t == T - 1 ? yh : null);
                if (expected is not null) AssertClose($"{name} {set} Step t={t}", ys, expected, _ => 1e-5, 1e-5);
                for (int n = 0; n < B; n++)
                {
                    net.Step(single[n], x.Floats.AsSpan((t * B + n) * I, I), y1);
                    if (expected is not null) AssertClose($"{name} {set} Step t={t} stream {n}", y1, expected.AsSpan(n * H, H), _ => 1e-5, 1e-5);
                }
            }
            if (yc is not null) AssertClose($"{name} {set} Step c", state.Cell(0), yc, _ => 1e-5, 1e-5);
        }
    }

    private static OnnxTensor Read(string path) => OnnxTensor.Parse(File.ReadAllBytes(path), path);

    private static double[] D2(float[] v) => v.Select(f => (double)f).ToArray();

    private static float[] F(double[] v) => v.Select(d => (float)d).ToArray();
}
