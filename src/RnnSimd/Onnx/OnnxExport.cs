using RnnSimd.Layers;

namespace RnnSimd.Onnx;

/// <summary>
/// Writes a <see cref="RecurrentNetwork"/> as an ONNX model in the form torch.onnx.export gives a stacked nn.LSTM / GRU /
/// RNN, so runtimes and tools that know that form read it: graph inputs input (T, B, I), h0 (L*D, B, H) and for LSTM c0;
/// per layer a Slice of h0 (and c0), one LSTM / GRU / RNN node (weights as initializers, ONNX gate order), and
/// Transpose(0, 2, 1, 3) + Reshape to (T, B, D*H) feeding the next layer; outputs output (T, B, D*H), hn, cn (the
/// layers' Y_h / Y_c concatenated). T and B are symbolic ("seq_length", "batch_size"). Opset 14.
/// </summary>
public static class OnnxExport
{
    /// <summary>The opset written.</summary>
    public const int Opset = 14;

    // ONNX gate block k comes from PyTorch block Inv[k] (the inverse of the importer's reordering).
    private static readonly int[] LstmInv = [0, 3, 1, 2], GruInv = [1, 0, 2], RnnInv = [0];
    // ONNX's P block k (p_i, p_o, p_f) comes from RnnSimd's peephole row PeepInv[k] (p_i, p_f, p_o).
    private static readonly int[] PeepInv = [0, 2, 1];

    /// <summary>Writes the model to <paramref name="path"/> (atomically: a temporary file renamed over it).</summary>
    /// <exception cref="NotSupportedException">The network has a projection (ONNX's LSTM has none).</exception>
    public static void Save(RecurrentNetwork network, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] bytes = ToBytes(network);
        string tmp = path + ".tmp";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>The serialized ModelProto.</summary>
    /// <exception cref="NotSupportedException">The network has a projection (ONNX's LSTM has none).</exception>
    public static byte[] ToBytes(RecurrentNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var o = network.Options;
        if (o.ProjSize > 0) throw new NotSupportedException("unsupported: an LSTM with a projection (proj_size) cannot be written as ONNX, whose LSTM has none.");
        var w = new ProtoWriter();
        w.Int64(1, 8);                                   // ir_version 8 (ONNX 1.10+, opset 14 needs >= 7)
        w.String(2, "RnnSimd");
        w.String(3, typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "");
        w.Message(7, g => WriteGraph(g, network));
        w.Message(8, op => { op.String(1, ""); op.Int64(2, Opset); });
        return w.ToArray();
    }

    private static void WriteGraph(ProtoWriter g, RecurrentNetwork net)
    {
        var o = net.Options;
        int L = o.NumLayers, D = o.Directions, H = o.HiddenSize, gates = o.GateCount;
        bool lstm = o.Cell == CellType.Lstm;
        string op = o.Cell switch { CellType.Lstm => "LSTM", CellType.Gru => "GRU", _ => "RNN" };
        int[] inv = lstm ? LstmInv : o.Cell == CellType.Gru ? GruInv : RnnInv;
        g.String(2, "rnnsimd_" + o.CellName);

        var initializers = new List<OnnxTensor>
        {
            OnnxTensor.FromIntegers("reshape_shape", OnnxDataType.Int64, [0, 0, -1], 3),
            OnnxTensor.FromIntegers("slice_axes", OnnxDataType.Int64, [0], 1),
        };
        for (int l = 0; l < L; l++)
        {
            int I = o.LayerInput(l), gh = gates * H;
            var W = new float[D * gh * I];
            var R = new float[D * gh * H];
            var B = o.Bias ? new float[D * 2 * gh] : null;
            var P = o.Peepholes ? new float[D * 3 * H] : null;
            for (int d = 0; d < D; d++)
            {
                string sfx = $"_l{l}" + (d == 1 ? "_reverse" : "");
                Reorder(net.Parameters["weight_ih" + sfx], W.AsSpan(d * gh * I, gh * I), inv, H * I);
                Reorder(net.Parameters["weight_hh" + sfx], R.AsSpan(d * gh * H, gh * H), inv, H * H);
                if (B is not null)
                {
                    Reorder(net.Parameters["bias_ih" + sfx], B.AsSpan(d * 2 * gh, gh), inv, H);
                    Reorder(net.Parameters["bias_hh" + sfx], B.AsSpan(d * 2 * gh + gh, gh), inv, H);
                }
                if (P is not null) Reorder(net.Parameters["weight_peep" + sfx], P.AsSpan(d * 3 * H, 3 * H), PeepInv, H);
            }
            initializers.Add(OnnxTensor.FromFloats($"W_l{l}", W, D, gh, I));
            initializers.Add(OnnxTensor.FromFloats($"R_l{l}", R, D, gh, H));
            if (B is not null) initializers.Add(OnnxTensor.FromFloats($"B_l{l}", B, D, 2 * gh));
            if (P is not null) initializers.Add(OnnxTensor.FromFloats($"P_l{l}", P, D, 3 * H));
            initializers.Add(OnnxTensor.FromIntegers($"slice_start_l{l}", OnnxDataType.Int64, [l * D], 1));
            initializers.Add(OnnxTensor.FromIntegers($"slice_end_l{l}", OnnxDataType.Int64, [(l + 1) * D], 1));
        }

        string x = "input";
        for (int l = 0; l < L; l++)
        {
            Node(g, "Slice", $"slice_h0_l{l}", ["h0", $"slice_start_l{l}", $"slice_end_l{l}", "slice_axes"], [$"h0_l{l}"]);
            if (lstm) Node(g, "Slice", $"slice_c0_l{l}", ["c0", $"slice_start_l{l}", $"slice_end_l{l}", "slice_axes"], [$"c0_l{l}"]);
            string[] inputs = lstm
                ? [x, $"W_l{l}", $"R_l{l}", o.Bias ? $"B_l{l}" : "", "", $"h0_l{l}", $"c0_l{l}", .. o.Peepholes ? new[] { $"P_l{l}" } : []]
                : [x, $"W_l{l}", $"R_l{l}", o.Bias ? $"B_l{l}" : "", "", $"h0_l{l}"];
            string[] outputs = lstm ? [$"Y_l{l}", $"Y_h_l{l}", $"Y_c_l{l}"] : [$"Y_l{l}", $"Y_h_l{l}"];
            Node(g, op, $"{op.ToLowerInvariant()}_l{l}", inputs, outputs, a =>
            {
                a.Add(w => { w.String(1, "hidden_size"); w.Int64(20, OnnxAttribute.IntType); w.Int64(3, H); });
                string dir = o.Bidirectional ? "bidirectional" : o.Reverse ? "reverse" : "forward";
                a.Add(w => { w.String(1, "direction"); w.Int64(20, OnnxAttribute.StringType); w.String(4, dir); });
                if (o.CoupledInputForget)
                    a.Add(w => { w.String(1, "input_forget"); w.Int64(20, OnnxAttribute.IntType); w.Int64(3, 1); });
                if (o.Cell == CellType.Gru)
                    a.Add(w => { w.String(1, "linear_before_reset"); w.Int64(20, OnnxAttribute.IntType); w.Int64(3, o.GruLinearBeforeReset ? 1 : 0); });
                // ONNX's activations (f, g, h per direction) when any differs from ONNX's defaults (RNN: Tanh).
                var (f, gAct, hAct) = o.Activations;
                string[] names = o.Cell switch
                {
                    CellType.Lstm => [f.ToString(), gAct.ToString(), hAct.ToString()],
                    CellType.Gru => [f.ToString(), gAct.ToString()],
                    _ => [f.ToString()],
                };
                string[] onnxDefault = o.Cell switch { CellType.Lstm => ["Sigmoid", "Tanh", "Tanh"], CellType.Gru => ["Sigmoid", "Tanh"], _ => ["Tanh"] };
                if (!names.SequenceEqual(onnxDefault))
                    a.Add(w =>
                    {
                        w.String(1, "activations"); w.Int64(20, OnnxAttribute.StringsType);
                        for (int d = 0; d < D; d++) foreach (var name in names) w.StringAlways(9, name);
                    });
                if (o.Clip > 0) a.Add(w => { w.String(1, "clip"); w.Int64(20, OnnxAttribute.FloatType); w.Float(2, o.Clip); });
            });
            Node(g, "Transpose", $"transpose_l{l}", [$"Y_l{l}"], [$"Y_t_l{l}"],
                a => a.Add(w => { w.String(1, "perm"); w.Int64(20, OnnxAttribute.IntsType); foreach (long p in new long[] { 0, 2, 1, 3 }) w.Int64(8, p); }));
            x = l == L - 1 ? "output" : $"out_l{l}";
            Node(g, "Reshape", $"reshape_l{l}", [$"Y_t_l{l}", "reshape_shape"], [x]);
        }
        Node(g, "Concat", "concat_hn", Enumerable.Range(0, L).Select(l => $"Y_h_l{l}").ToArray(), ["hn"],
            a => a.Add(w => { w.String(1, "axis"); w.Int64(20, OnnxAttribute.IntType); w.Int64(3, 0); }));
        if (lstm)
            Node(g, "Concat", "concat_cn", Enumerable.Range(0, L).Select(l => $"Y_c_l{l}").ToArray(), ["cn"],
                a => a.Add(w => { w.String(1, "axis"); w.Int64(20, OnnxAttribute.IntType); w.Int64(3, 0); }));

        foreach (var t in initializers) g.Message(5, t.Write);
        ValueInfo(g, 11, "input", ["seq_length", "batch_size", o.InputSize]);
        ValueInfo(g, 11, "h0", [L * D, "batch_size", H]);
        if (lstm) ValueInfo(g, 11, "c0", [L * D, "batch_size", H]);
        ValueInfo(g, 12, "output", ["seq_length", "batch_size", D * H]);
        ValueInfo(g, 12, "hn", [L * D, "batch_size", H]);
        if (lstm) ValueInfo(g, 12, "cn", [L * D, "batch_size", H]);
    }

    private static void Reorder(ReadOnlySpan<float> torch, Span<float> onnx, int[] inv, int block)
    {
        for (int k = 0; k < inv.Length; k++) torch.Slice(inv[k] * block, block).CopyTo(onnx.Slice(k * block, block));
    }

    private static void Node(ProtoWriter g, string op, string name, string[] inputs, string[] outputs, Action<List<Action<ProtoWriter>>>? attributes = null)
    {
        g.Message(1, n =>
        {
            foreach (var i in inputs) n.StringAlways(1, i);
            foreach (var o in outputs) n.StringAlways(2, o);
            n.String(3, name);
            n.String(4, op);
            var attrs = new List<Action<ProtoWriter>>();
            attributes?.Invoke(attrs);
            foreach (var a in attrs) n.Message(5, a);
        });
    }

    /// <summary>A float tensor ValueInfoProto; each dimension a number or a symbolic name.</summary>
    private static void ValueInfo(ProtoWriter g, int field, string name, object[] dims) => g.Message(field, v =>
    {
        v.String(1, name);
        v.Message(2, type => type.Message(1, tensor =>
        {
            tensor.Int64(1, (long)OnnxDataType.Float);
            tensor.Message(2, shape =>
            {
                foreach (var d in dims)
                    shape.Message(1, dim => { if (d is string s) dim.String(2, s); else dim.Int64(1, Convert.ToInt64(d)); });
            });
        }));
    });
}
