using RnnSimd.Layers;

namespace RnnSimd.Peers.Onnx;

/// <summary>
/// Builds a one-node ONNX model (opset 14) running an RnnSimd network's weights through ONNX's LSTM / GRU / RNN op.
/// W [1, G*H, I], R [1, G*H, H] and B [1, 2*G*H] are constant initializers (so ONNX Runtime may pre-pack them, as
/// it does for its CPU LSTM/GRU), with the gate blocks reordered from PyTorch's order to ONNX's:
/// LSTM: ONNX i, o, f, c  from PyTorch i, f, g, o  (PyTorch blocks 0, 3, 1, 2);
/// GRU:  ONNX z, r, h     from PyTorch r, z, n     (PyTorch blocks 1, 0, 2), with linear_before_reset = 1 (PyTorch's form);
/// RNN:  one block, activation Tanh (or Relu).
/// Two shapes of graph:
/// <list type="bullet">
/// <item><b>sequence</b> (S2, S3): inputs X [T, B, I]; outputs Y [T, 1, B, H] and Y_h [1, B, H]; zero initial state
/// (initial_h / initial_c omitted), as RnnSimd's Forward with empty h0 / c0.</item>
/// <item><b>step</b> (S1): inputs X [1, B, I], initial_h [1, B, H] (and initial_c for LSTM); outputs Y_h (and Y_c),
/// Y omitted (it equals Y_h when T = 1). The caller feeds Y_h / Y_c back as the next call's initial state.</item>
/// </list>
/// Only single-layer, unidirectional networks without projection (all the workloads use).
/// </summary>
internal static class OnnxRnnModel
{
    public const int Opset = 14;
    /// <summary>IR version 7 is the one that came with opset 14 (ONNX 1.9).</summary>
    public const int IrVersion = 7;

    private const int TensorFloat = 1, TensorInt8 = 3;       // TensorProto.DataType.FLOAT, INT8
    private const string MicrosoftDomain = "com.microsoft";
    private const int AttrInt = 2, AttrStrings = 8;          // AttributeProto.AttributeType

    /// <summary>For each ONNX gate block in order, the PyTorch block it comes from.</summary>
    public static int[] GateOrder(CellType cell) => cell switch
    {
        CellType.Lstm => [0, 3, 1, 2],
        CellType.Gru => [1, 0, 2],
        _ => [0],
    };

    /// <summary>src: (G*H, cols) in PyTorch's block order → the same rows in ONNX's block order.</summary>
    public static float[] Reorder(ReadOnlySpan<float> src, CellType cell, int hidden, int cols)
    {
        var order = GateOrder(cell);
        int block = hidden * cols;
        if (src.Length != order.Length * block)
            throw new ArgumentException($"expected {order.Length}*{hidden}*{cols} = {order.Length * block} values, got {src.Length}.", nameof(src));
        var dst = new float[src.Length];
        for (int k = 0; k < order.Length; k++) src.Slice(order[k] * block, block).CopyTo(dst.AsSpan(k * block, block));
        return dst;
    }

    /// <summary>The serialized ModelProto for <paramref name="net"/> at (steps, batch); <paramref name="step"/> picks the graph shape (see the type's summary).</summary>
    public static byte[] Build(RecurrentNetwork net, int steps, int batch, bool step)
    {
        var o = net.Options;
        if (o.NumLayers != 1 || o.Bidirectional || o.ProjSize != 0)
            throw new NotSupportedException("only single-layer, unidirectional networks without projection are exported.");
        int I = o.InputSize, H = o.HiddenSize, G = o.GateCount;
        var cell = o.Cell;
        var p = net.Parameters;

        float[] w = Reorder(p["weight_ih_l0"], cell, H, I);                        // (G*H, I), ONNX order
        float[] r = Reorder(p["weight_hh_l0"], cell, H, H);                        // (G*H, H), ONNX order
        float[] b = Biases(net);
        string opType = cell switch { CellType.Lstm => "LSTM", CellType.Gru => "GRU", _ => "RNN" };
        return Write(net, steps, batch, step, opType, domain: "", [], $"{o.CellName}_{(step ? "step" : "sequence")}",
            n =>
            {
                if (cell == CellType.Gru)
                    n.Message(5, a => a.String(1, "linear_before_reset").Varint(3, o.GruLinearBeforeReset ? 1 : 0).Varint(20, AttrInt));
                if (cell is CellType.RnnTanh or CellType.RnnRelu)
                    n.Message(5, a => a.String(1, "activations").String(9, cell == CellType.RnnTanh ? "Tanh" : "Relu").Varint(20, AttrStrings));
            },
            g =>
            {
                Initializer(g, "W", [1, G * H, I], w);
                Initializer(g, "R", [1, G * H, H], r);
                Initializer(g, "B", [1, 2 * G * H], b);
            });
    }

    /// <summary>
    /// The serialized ModelProto running an int8 RnnSimd LSTM (<see cref="RecurrentNetwork.ToInference"/> with
    /// <see cref="Precision.Int8"/>) through ONNX Runtime's contrib operator com.microsoft.DynamicQuantizeLSTM, with the
    /// very codes and per-row scales RnnSimd computes with (<see cref="RecurrentNetwork.GetReducedWeights"/>): W int8
    /// [1, I, 4H] and R int8 [1, H, 4H] (ORT's layout: the transpose of PyTorch's (4H, I) / (4H, H), gate blocks in
    /// ONNX's order i, o, f, c), W_scale / R_scale [1, 4H] (per channel: one scale per output row, reordered alike),
    /// int8 zero points 0 (symmetric, as ORT requires for int8 weights), B [1, 8H] float32. Graph shapes and state
    /// handling as <see cref="Build"/>. ORT quantizes the activations its own way (X for the whole call and h at each
    /// step, asymmetric uint8 with a zero point) where RnnSimd quantizes x and h symmetrically to int8 each step, so the
    /// two agree only to the activation quantization's error, not bitwise.
    /// </summary>
    public static byte[] BuildDynamicQuantizedLstm(RecurrentNetwork net, int steps, int batch, bool step)
    {
        var o = net.Options;
        if (o.Cell != CellType.Lstm || net.Precision != Precision.Int8)
            throw new ArgumentException($"DynamicQuantizeLSTM takes an int8 LSTM; got a {net.Precision.Name()} {o.CellName} network.", nameof(net));
        if (o.NumLayers != 1 || o.Bidirectional || o.Reverse || o.ProjSize != 0 || o.Peepholes || o.CoupledInputForget || o.Clip > 0
            || o.ActivationF is not null || o.ActivationG is not null || o.ActivationH is not null)
            throw new NotSupportedException("only single-layer, forward LSTMs without projection, peepholes, coupling, clip or other activations are exported.");
        int I = o.InputSize, H = o.HiddenSize, G = o.GateCount;
        var reduced = net.GetReducedWeights().ToDictionary(t => t.Name);
        var (w, wScale) = TransposedCodes(reduced["weight_ih_l0"], H);             // [I, 4H], [4H]
        var (r, rScale) = TransposedCodes(reduced["weight_hh_l0"], H);             // [H, 4H], [4H]
        float[] b = Biases(net);
        var zeros = new byte[G * H];
        // Inputs 0-7 as the LSTM operator's (P, index 7, none), then the quantization parameters.
        return Write(net, steps, batch, step, "DynamicQuantizeLSTM", MicrosoftDomain, ["W_scale", "W_zero_point", "R_scale", "R_zero_point"],
            $"lstm_int8_{(step ? "step" : "sequence")}", _ => { },
            g =>
            {
                Initializer(g, "W", [1, I, G * H], TensorInt8, w);
                Initializer(g, "R", [1, H, G * H], TensorInt8, r);
                Initializer(g, "B", [1, 2 * G * H], b);
                Initializer(g, "W_scale", [1, G * H], wScale);
                Initializer(g, "W_zero_point", [1, G * H], TensorInt8, zeros);
                Initializer(g, "R_scale", [1, G * H], rScale);
                Initializer(g, "R_zero_point", [1, G * H], TensorInt8, zeros);
            });
    }

    /// <summary>[Wb | Rb] (2*G*H) in ONNX's gate order; zeros without biases.</summary>
    private static float[] Biases(RecurrentNetwork net)
    {
        var o = net.Options;
        int GH = o.GateCount * o.HiddenSize;
        var b = new float[2 * GH];
        if (o.Bias)
        {
            Reorder(net.Parameters["bias_ih_l0"], o.Cell, o.HiddenSize, 1).CopyTo(b, 0);
            Reorder(net.Parameters["bias_hh_l0"], o.Cell, o.HiddenSize, 1).CopyTo(b, GH);
        }
        return b;
    }

    /// <summary>
    /// The one-node model: the node (inputs X, W, R, B, then for the step graph sequence_lens "", initial_h (, initial_c);
    /// <paramref name="extraInputs"/> from index 8 on, the optional inputs before them left empty), its attributes
    /// (hidden_size, then <paramref name="attributes"/>), the initializers, the graph's inputs and outputs (see the type's
    /// summary), and the opset imports (the default domain, and <paramref name="domain"/> at version 1 if it is another).
    /// </summary>
    private static byte[] Write(RecurrentNetwork net, int steps, int batch, bool step, string opType, string domain, string[] extraInputs,
        string graphName, Action<ProtoWriter> attributes, Action<ProtoWriter> initializers)
    {
        var o = net.Options;
        int I = o.InputSize, H = o.HiddenSize;
        bool lstm = o.Cell == CellType.Lstm;
        var nodeInputs = new List<string> { "X", "W", "R", "B" };
        var nodeOutputs = new List<string>();
        var graphInputs = new List<(string, long[])> { ("X", [steps, batch, I]) };
        var graphOutputs = new List<(string, long[])>();
        if (step)
        {
            nodeInputs.Add("");                                                    // sequence_lens: all T
            nodeInputs.Add("initial_h");
            graphInputs.Add(("initial_h", [1, batch, H]));
            if (lstm) { nodeInputs.Add("initial_c"); graphInputs.Add(("initial_c", [1, batch, H])); }
            nodeOutputs.Add("");                                                   // Y: not needed (= Y_h at T = 1)
            nodeOutputs.Add("Y_h");
            graphOutputs.Add(("Y_h", [1, batch, H]));
            if (lstm) { nodeOutputs.Add("Y_c"); graphOutputs.Add(("Y_c", [1, batch, H])); }
        }
        else
        {
            nodeOutputs.Add("Y");
            nodeOutputs.Add("Y_h");
            graphOutputs.Add(("Y", [steps, 1, batch, H]));
            graphOutputs.Add(("Y_h", [1, batch, H]));
        }
        if (extraInputs.Length > 0)
        {
            while (nodeInputs.Count < 8) nodeInputs.Add("");                       // optional inputs not given
            nodeInputs.AddRange(extraInputs);
        }

        var model = new ProtoWriter()
            .Varint(1, IrVersion)                                                  // ModelProto.ir_version
            .String(2, "RnnSimd.Peers")                                            // producer_name
            .Message(7, g =>                                                       // graph
            {
                g.Message(1, n =>                                                  // GraphProto.node
                {
                    foreach (var s in nodeInputs) n.String(1, s);                  // NodeProto.input
                    foreach (var s in nodeOutputs) n.String(2, s);                 // output
                    n.String(3, opType.ToLowerInvariant());                        // name
                    n.String(4, opType);                                           // op_type
                    n.Message(5, a => a.String(1, "hidden_size").Varint(3, H).Varint(20, AttrInt));
                    attributes(n);
                    if (domain.Length > 0) n.String(7, domain);                    // domain
                });
                g.String(2, graphName);                                            // GraphProto.name
                initializers(g);
                foreach (var (name, shape) in graphInputs) ValueInfo(g, 11, name, shape);
                foreach (var (name, shape) in graphOutputs) ValueInfo(g, 12, name, shape);
            })
            .Message(8, op => op.String(1, "").Varint(2, Opset));                 // opset_import: the default domain
        if (domain.Length > 0) model.Message(8, op => op.String(1, domain).Varint(2, 1));   // and the operator's, version 1
        return model.ToArray();
    }

    /// <summary>
    /// An int8 tensor (4H, K) in PyTorch's gate order → ORT's (K, 4H) codes as bytes, gate blocks in ONNX's order, and
    /// its per-row scales reordered alike: ORT column j is RnnSimd row j of the reordered matrix.
    /// </summary>
    internal static (byte[] Codes, float[] Scales) TransposedCodes(QuantizedTensor t, int hidden)
    {
        int rows = t.Rows, cols = t.Cols;
        var order = GateOrder(CellType.Lstm);
        if (t.Precision != Precision.Int8 || rows != order.Length * hidden)
            throw new ArgumentException($"{t}: expected int8 ({order.Length * hidden}, {cols}).", nameof(t));
        var codes = new byte[rows * cols];                                         // (cols, rows): [k, j]
        var scales = new float[rows];
        for (int k = 0; k < order.Length; k++)
            for (int u = 0; u < hidden; u++)
            {
                int j = k * hidden + u, src = order[k] * hidden + u;               // ONNX row j ← PyTorch row src
                scales[j] = t.Scales[src];
                for (int c = 0; c < cols; c++) codes[c * rows + j] = unchecked((byte)t.Codes[src * cols + c]);
            }
        return (codes, scales);
    }

    /// <summary>GraphProto.initializer (5): a TensorProto with dims (1), data_type (2), name (8), raw_data (9).</summary>
    private static void Initializer(ProtoWriter g, string name, long[] dims, float[] values) => g.Message(5, t =>
    {
        foreach (long d in dims) t.Varint(1, d);
        t.Varint(2, TensorFloat);
        t.String(8, name);
        t.RawFloats(9, values);
    });

    /// <summary>An initializer of another element type, its little-endian bytes given as they are.</summary>
    private static void Initializer(ProtoWriter g, string name, long[] dims, int dataType, byte[] raw) => g.Message(5, t =>
    {
        foreach (long d in dims) t.Varint(1, d);
        t.Varint(2, dataType);
        t.String(8, name);
        t.Bytes(9, raw);
    });

    /// <summary>GraphProto.input (11) / output (12): ValueInfoProto { name, type { tensor_type { elem_type, shape { dim { dim_value } } } } }.</summary>
    private static void ValueInfo(ProtoWriter g, int field, string name, long[] dims) => g.Message(field, v =>
    {
        v.String(1, name);
        v.Message(2, type => type.Message(1, tensor =>
        {
            tensor.Varint(1, TensorFloat);
            tensor.Message(2, shape =>
            {
                foreach (long d in dims) shape.Message(1, dim => dim.Varint(1, d));
            });
        }));
    });
}
