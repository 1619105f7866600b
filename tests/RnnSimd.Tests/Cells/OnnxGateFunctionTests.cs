using RnnSimd.Layers;
using RnnSimd.Onnx;
using RnnSimd.Tests.Reference;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Cells;

/// <summary>
/// ONNX's gate activations (attribute activations) and clip (attribute clip) for LSTM, GRU and RNN against the float64
/// spec cases of tests/data/onnx/spec (see its README.md: what clip clamps, the activations' order), read here tensor by
/// tensor and mapped onto <see cref="RecurrentOptions.ActivationF"/>, <see cref="RecurrentOptions.ActivationG"/>,
/// <see cref="RecurrentOptions.ActivationH"/> and <see cref="RecurrentOptions.Clip"/> the way an ONNX importer does
/// (<see cref="Functions"/>). A bidirectional node whose directions have different activations runs as two networks,
/// a forward one and a <see cref="RecurrentOptions.Reverse"/> one, as the importer splits it. The double oracle and the
/// network (every kernel set; training and inference workspaces; Step at batch B and at batch 1 for the forward
/// unidirectional cases) must reproduce the expected Y, Y_h, Y_c. Independent of the ONNX importer: only the
/// TensorProto files are read, and each case's attributes are written in the table below.
/// </summary>
[Trait("Category", "Cells")]
public class OnnxGateFunctionTests
{
    private static string SpecDir => Path.Combine(Path.GetDirectoryName(TorchParityTests.DataDir)!, "onnx", "spec");

    /// <summary>Case folder; operator; bidirectional; linear_before_reset; clip; activations as written in the node (from the README's case table).</summary>
    public static TheoryData<string, string, bool, bool, float, string> Cases => new()
    {
        { "lstm_clip", "LSTM", false, false, 0.5f, "" },
        { "gru_clip", "GRU", false, false, 0.5f, "" },
        { "gru_clip_linear_before_reset1", "GRU", false, true, 0.5f, "" },
        { "rnn_clip", "RNN", false, false, 0.5f, "" },
        { "lstm_activations_sigmoid_relu_tanh", "LSTM", false, false, 0f, "Sigmoid,Relu,Tanh" },
        { "lstm_activations_tanh_sigmoid_relu", "LSTM", false, false, 0f, "Tanh,Sigmoid,Relu" },
        { "gru_activations_relu_tanh", "GRU", false, false, 0f, "Relu,Tanh" },
        { "rnn_relu", "RNN", false, false, 0f, "Relu" },
        { "lstm_bidirectional_activations_per_direction", "LSTM", true, false, 0f, "Sigmoid,Relu,Tanh,Tanh,Sigmoid,Relu" },
        { "gru_bidirectional_activations_per_direction", "GRU", true, false, 0f, "Relu,Tanh,Tanh,Sigmoid" },
        { "rnn_bidirectional_activations_relu_tanh", "RNN", true, false, 0f, "Relu,Tanh" },
    };

    /// <summary>
    /// ONNX's activations of direction <paramref name="d"/> as options, names compared case-insensitively: LSTM (f, g, h),
    /// GRU (f, g), RNN (f), the list holding each direction's in turn; an absent list keeps the defaults. An RNN's f
    /// also picks its cell type (Relu: RnnRelu, else RnnTanh), so tanh and relu run the compiled RNN cells.
    /// </summary>
    internal static (CellType Cell, GateActivation? F, GateActivation? G, GateActivation? H) Functions(string op, string[] activations, int d)
    {
        static GateActivation Parse(string a) => a.ToLowerInvariant() switch
        {
            "sigmoid" => GateActivation.Sigmoid,
            "tanh" => GateActivation.Tanh,
            "relu" => GateActivation.Relu,
            _ => throw new NotSupportedException($"activation '{a}'"),
        };
        int k = op switch { "LSTM" => 3, "GRU" => 2, _ => 1 };
        if (activations.Length == 0)
            return (op switch { "LSTM" => CellType.Lstm, "GRU" => CellType.Gru, _ => CellType.RnnTanh }, null, null, null);
        var a = activations.Skip(d * k).Take(k).Select(Parse).ToArray();
        return op switch
        {
            "LSTM" => (CellType.Lstm, a[0], a[1], a[2]),
            "GRU" => (CellType.Gru, a[0], a[1], null),
            _ => a[0] == GateActivation.Relu ? (CellType.RnnRelu, null, null, null) : (CellType.RnnTanh, a[0], null, null),
        };
    }

    /// <summary>ONNX's gate blocks as PyTorch's: block q here is ONNX's block From[q] (LSTM i,o,f,c → i,f,g,o; GRU z,r,h → r,z,n).</summary>
    private static int[] GateFrom(string op) => op switch { "LSTM" => [0, 2, 3, 1], "GRU" => [1, 0, 2], _ => [0] };

    /// <summary>
    /// An ONNX node's W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H] as one-layer state_dicts, one per direction, each under
    /// the suffix "_l0" (a direction run as a network of its own).
    /// </summary>
    private static Dictionary<string, float[]>[] ToStateDicts(string op, int D, int H, int I, float[] w, float[] r, float[]? b)
    {
        int[] from = GateFrom(op);
        int G = from.Length;
        float[] Blocks(float[] src, int offset, int block)
        {
            var dst = new float[G * block];
            for (int q = 0; q < G; q++) Array.Copy(src, offset + from[q] * block, dst, q * block, block);
            return dst;
        }
        var sds = new Dictionary<string, float[]>[D];
        for (int d = 0; d < D; d++)
        {
            sds[d] = new()
            {
                ["weight_ih_l0"] = Blocks(w, d * G * H * I, H * I),
                ["weight_hh_l0"] = Blocks(r, d * G * H * H, H * H),
            };
            if (b is not null)
            {
                sds[d]["bias_ih_l0"] = Blocks(b, d * 2 * G * H, H);
                sds[d]["bias_hh_l0"] = Blocks(b, d * 2 * G * H + G * H, H);
            }
        }
        return sds;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Network_and_oracle_reproduce_onnx_cases(string name, string op, bool bidirectional, bool linearBeforeReset, float clip, string activationList)
    {
        string dir = Path.Combine(SpecDir, name, "test_data_set_0");
        var inputs = Directory.GetFiles(dir, "input_*.pb").Select(Read).ToDictionary(t => t.Name);
        var outputs = Directory.GetFiles(dir, "output_*.pb").Select(Read).ToDictionary(t => t.Name);
        OnnxTensor x = inputs["X"], w = inputs["W"], r = inputs["R"];
        int T = (int)x.Dims[0], B = (int)x.Dims[1], I = (int)x.Dims[2], D = bidirectional ? 2 : 1, H = (int)r.Dims[2];
        bool lstm = op == "LSTM";
        Assert.Equal(D, w.Dims[0]);
        Assert.False(inputs.ContainsKey("sequence_lens"));
        float[]? b = inputs.GetValueOrDefault("B")?.Floats;
        float[] h0 = inputs.GetValueOrDefault("initial_h")?.Floats ?? new float[D * B * H];
        float[] c0 = inputs.GetValueOrDefault("initial_c")?.Floats ?? new float[D * B * H];
        string[] activations = activationList.Length == 0 ? [] : activationList.Split(',');
        var sds = ToStateDicts(op, D, H, I, w.Floats!, r.Floats!, b);

        // Expected, in RnnSimd's layout: Y [T, D, B, H] as (T, B, D*H); Y_h, Y_c [D, B, H] as they are.
        var yt = outputs["Y"];
        var y = new double[T * B * D * H];
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++)
                for (int n = 0; n < B; n++)
                    for (int j = 0; j < H; j++) y[((t * B + n) * D + d) * H + j] = yt.Floats![((t * D + d) * B + n) * H + j];
        double[] yh = D2(outputs["Y_h"].Floats!);
        double[]? yc = outputs.TryGetValue("Y_c", out var yct) ? D2(yct.Floats!) : null;

        // Direction d's options (and, for the oracle, a spec): one network per direction when they differ, as an importer splits the node.
        var fn = Enumerable.Range(0, D).Select(d => Functions(op, activations, d)).ToArray();
        bool split = D == 2 && fn[0] != fn[1];
        RecurrentOptions Options(int d) => new(fn[d].Cell, I, H, Bidirectional: D == 2 && !split, Bias: b is not null, Reverse: split && d == 1,
            GruLinearBeforeReset: linearBeforeReset, ActivationF: fn[d].F, ActivationG: fn[d].G, ActivationH: fn[d].H, Clip: clip);
        if (activations.Length > 0) Assert.True(split || D == 1, "the per-direction cases have different activations per direction");

        // The oracle (double), bidirectional with each direction's functions in turn; 3e-7 both ways covers one rounding
        // to float32 on each side (the expected values are float64 rounded once).
        var merged = new Dictionary<string, double[]>();
        for (int d = 0; d < D; d++)
            foreach (var (key, v) in sds[d]) merged[d == 0 ? key : key + "_reverse"] = D2(v);
        for (int d = 0; d < D; d++)
        {
            var o = Options(d);
            var spec = new RecurrentSpec(op switch { "LSTM" => "lstm", "GRU" => "gru", _ => o.Cell == CellType.RnnRelu ? "rnn_relu" : "rnn_tanh" },
                I, H, Bidirectional: D == 2, Bias: b is not null, GruLinearBeforeReset: linearBeforeReset,
                ActivationF: Name(o.ActivationF), ActivationG: Name(o.ActivationG), ActivationH: Name(o.ActivationH), Clip: clip);
            var oracle = new NaiveRecurrent(spec, merged).Run(D2(x.Floats!), T, B, D2(h0), lstm ? D2(c0) : null, new double[T * B * D * H]);
            AssertClose($"{name} oracle Y direction {d}", F(Direction(oracle.Output, T * B, D, H, d)), Direction(y, T * B, D, H, d), _ => 3e-7, 3e-7);
            AssertClose($"{name} oracle Y_h direction {d}", F(oracle.HN.AsSpan(d * B * H, B * H).ToArray()), yh.AsSpan(d * B * H, B * H), _ => 3e-7, 3e-7);
            if (yc is not null)
                AssertClose($"{name} oracle Y_c direction {d}", F(oracle.CN!.AsSpan(d * B * H, B * H).ToArray()), yc.AsSpan(d * B * H, B * H), _ => 3e-7, 3e-7);
        }

        // The network (float), with OnnxBackendTests' tolerance for the spec cases: a few steps of dot products of at most
        // 5 + 4 terms in float32 land within a few 1e-7.
        foreach (var set in Sets)
        foreach (bool record in new[] { true, false })
        {
            string tag = $"{name} {set} record={record}";
            float[] yo = new float[T * B * D * H], hN = new float[D * B * H], cN = new float[D * B * H];
            if (!split)
            {
                var net = Network(Options(0), set, sds);
                var ws = record ? net.CreateWorkspace(T, B) : net.CreateInferenceWorkspace(T, B);
                net.Forward(x.Floats!, T, B, h0, lstm ? c0 : [], yo, hN, lstm ? cN : [], ws);
            }
            else
            {
                for (int d = 0; d < 2; d++)
                {
                    var net = Network(Options(d), set, [sds[d]]);
                    var ws = record ? net.CreateWorkspace(T, B) : net.CreateInferenceWorkspace(T, B);
                    float[] yd = new float[T * B * H];
                    net.Forward(x.Floats!, T, B, h0.AsSpan(d * B * H, B * H), lstm ? c0.AsSpan(d * B * H, B * H) : [], yd,
                        hN.AsSpan(d * B * H, B * H), lstm ? cN.AsSpan(d * B * H, B * H) : [], ws);
                    for (int k = 0; k < T * B; k++) yd.AsSpan(k * H, H).CopyTo(yo.AsSpan((k * 2 + d) * H, H));
                }
            }
            AssertClose(tag + " Y", yo, y, _ => 1e-5, 1e-5);
            AssertClose(tag + " Y_h", hN, yh, _ => 1e-5, 1e-5);
            if (yc is not null) AssertClose(tag + " Y_c", cN, yc, _ => 1e-5, 1e-5);
        }
        if (D == 2) return;

        // Streaming: B streams as one state, and each stream on its own (batch 1: the fused [x | h] GEMV path).
        foreach (var set in Sets)
        {
            var net = Network(Options(0), set, sds);
            var state = net.CreateState(B);
            h0.CopyTo(state.Hidden(0));
            if (lstm) c0.CopyTo(state.Cell(0));
            var single = Enumerable.Range(0, B).Select(n =>
            {
                var s = net.CreateState();
                h0.AsSpan(n * H, H).CopyTo(s.Hidden(0));
                if (lstm) c0.AsSpan(n * H, H).CopyTo(s.Cell(0));
                return s;
            }).ToArray();
            float[] ys = new float[B * H], y1 = new float[H];
            for (int t = 0; t < T; t++)
            {
                net.Step(state, x.Floats.AsSpan(t * B * I, B * I), ys);
                AssertClose($"{name} {set} Step t={t}", ys, y.AsSpan(t * B * H, B * H), _ => 1e-5, 1e-5);
                for (int n = 0; n < B; n++)
                {
                    net.Step(single[n], x.Floats.AsSpan((t * B + n) * I, I), y1);
                    AssertClose($"{name} {set} Step t={t} stream {n}", y1, y.AsSpan((t * B + n) * H, H), _ => 1e-5, 1e-5);
                }
            }
            if (yc is not null) AssertClose($"{name} {set} Step c", state.Cell(0), yc, _ => 1e-5, 1e-5);
        }
    }

    /// <summary>A network of <paramref name="o"/> holding the state_dicts of its directions (suffix "_l0", the second as "_l0_reverse").</summary>
    private static RecurrentNetwork Network(RecurrentOptions o, RnnSimd.Kernels.KernelSet set, Dictionary<string, float[]>[] sds)
    {
        var net = new RecurrentNetwork(o, 0, set);
        for (int d = 0; d < sds.Length; d++)
            foreach (var (key, v) in sds[d]) v.CopyTo(net.Parameters[d == 0 ? key : key + "_reverse"]);
        net.ParametersChanged();
        return net;
    }

    /// <summary>Columns [d*H, (d+1)*H) of every one of <paramref name="rows"/> rows of D*H.</summary>
    private static double[] Direction(double[] a, int rows, int D, int H, int d)
    {
        var o = new double[rows * H];
        for (int k = 0; k < rows; k++) Array.Copy(a, (k * D + d) * H, o, k * H, H);
        return o;
    }

    private static string? Name(GateActivation? a) => a?.ToString().ToLowerInvariant();

    private static OnnxTensor Read(string path) => OnnxTensor.Parse(File.ReadAllBytes(path), path);

    private static double[] D2(float[] v) => v.Select(f => (double)f).ToArray();

    private static float[] F(double[] v) => v.Select(d => (float)d).ToArray();
}
