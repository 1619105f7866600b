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

    private const int TensorFloat = 1;                       // TensorProto.DataType.FLOAT
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
        var b = new float[2 * G * H];                                              // [Wb | Rb]
        if (o.Bias)
        {
            Reorder(p["bias_ih_l0"], cell, H, 1).CopyTo(b, 0);
            Reorder(p["bias_hh_l0"], cell, H, 1).CopyTo(b, G * H);
        }

        bool lstm = cell == CellType.Lstm;
        string opType = cell switch { CellType.Lstm => "LSTM", CellType.Gru => "GRU", _ => "RNN" };
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
                    if (cell == CellType.Gru)
                        n.Message(5, a => a.String(1, "linear_before_reset").Varint(3, o.GruLinearBeforeReset ? 1 : 0).Varint(20, AttrInt));
                    if (cell is CellType.RnnTanh or CellType.RnnRelu)
                        n.Message(5, a => a.String(1, "activations").String(9, cell == CellType.RnnTanh ? "Tanh" : "Relu").Varint(20, AttrStrings));
                });
                g.String(2, $"{o.CellName}_{(step ? "step" : "sequence")}");   // GraphProto.name
                Initializer(g, "W", [1, G * H, I], w);
                Initializer(g, "R", [1, G * H, H], r);
                Initializer(g, "B", [1, 2 * G * H], b);
                foreach (var (name, shape) in graphInputs) ValueInfo(g, 11, name, shape);
                foreach (var (name, shape) in graphOutputs) ValueInfo(g, 12, name, shape);
            })
            .Message(8, op => op.String(1, "").Varint(2, Opset));                 // opset_import: the default domain
        return model.ToArray();
    }

    /// <summary>GraphProto.initializer (5): a TensorProto with dims (1), data_type (2), name (8), raw_data (9).</summary>
    private static void Initializer(ProtoWriter g, string name, long[] dims, float[] values) => g.Message(5, t =>
    {
        foreach (long d in dims) t.Varint(1, d);
        t.Varint(2, TensorFloat);
        t.String(8, name);
        t.RawFloats(9, values);
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
