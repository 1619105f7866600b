using RnnSimd.Onnx;

namespace RnnSimd.Tests.Onnx;

/// <summary>
/// Writes small ONNX models by hand with the library's <see cref="ProtoWriter"/>, field by field, so a test can build
/// exactly the (often invalid) file it needs. Field numbers are onnx.proto's: ModelProto ir_version 1, graph 7,
/// opset_import 8; GraphProto node 1, initializer 5, input 11, output 12; NodeProto input 1, output 2, name 3,
/// op_type 4, attribute 5, domain 7; AttributeProto name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, type 20.
/// </summary>
internal static class OnnxTestModel
{
    /// <summary>A ModelProto: IR version 8, ai.onnx <paramref name="opset"/> (none when null), then the graph.</summary>
    public static byte[] Model(Action<ProtoWriter> graph, long? opset = 14)
    {
        var w = new ProtoWriter();
        w.Int64(1, 8);
        if (opset is { } v) w.Message(8, o => o.Int64(2, v));
        w.Message(7, graph);
        return w.ToArray();
    }

    public static void Node(ProtoWriter g, string op, string[] inputs, string[] outputs, params Action<ProtoWriter>[] attributes) =>
        Node(g, op, "", inputs, outputs, attributes);

    public static void Node(ProtoWriter g, string op, string domain, string[] inputs, string[] outputs, params Action<ProtoWriter>[] attributes) =>
        g.Message(1, n =>
        {
            foreach (var i in inputs) n.StringAlways(1, i);
            foreach (var o in outputs) n.StringAlways(2, o);
            n.String(3, op.ToLowerInvariant() + "_" + (outputs.FirstOrDefault() ?? ""));
            n.String(4, op);
            n.String(7, domain);
            foreach (var a in attributes) n.Message(5, a);
        });

    public static Action<ProtoWriter> Int(string name, long v) => a => { a.String(1, name); a.Int64(3, v); a.Int64(20, OnnxAttribute.IntType); };
    public static Action<ProtoWriter> Float(string name, float v) => a => { a.String(1, name); a.Float(2, v); a.Int64(20, OnnxAttribute.FloatType); };
    public static Action<ProtoWriter> Str(string name, string v) => a => { a.String(1, name); a.StringAlways(4, v); a.Int64(20, OnnxAttribute.StringType); };
    public static Action<ProtoWriter> Ints(string name, params long[] v) => a => { a.String(1, name); a.PackedInt64(8, v); a.Int64(20, OnnxAttribute.IntsType); };
    public static Action<ProtoWriter> Tensor(string name, OnnxTensor t) => a => { a.String(1, name); a.Message(5, t.Write); a.Int64(20, OnnxAttribute.TensorType); };

    /// <summary>A graph input (ValueInfoProto); a negative dimension is written as the symbolic dim_param "n".</summary>
    public static void Input(ProtoWriter g, string name, OnnxDataType type, params long[] dims) => ValueInfo(g, 11, name, type, dims);

    public static void Output(ProtoWriter g, string name, OnnxDataType type, params long[] dims) => ValueInfo(g, 12, name, type, dims);

    private static void ValueInfo(ProtoWriter g, int field, string name, OnnxDataType type, long[] dims) =>
        g.Message(field, v =>
        {
            v.String(1, name);
            v.Message(2, tp => tp.Message(1, tt =>
            {
                tt.Int64(1, (long)type);
                tt.Message(2, s =>
                {
                    foreach (long d in dims) s.Message(1, dim => { if (d >= 0) dim.Int64(1, d); else dim.String(2, "n"); });
                });
            }));
        });

    public static void Initializer(ProtoWriter g, OnnxTensor t) => g.Message(5, t.Write);

    public static OnnxTensor Floats(string name, long[] dims, float value = 0.1f)
    {
        long n = 1;
        foreach (long d in dims) n *= d;
        return OnnxTensor.FromFloats(name, Enumerable.Repeat(value, (int)n).ToArray(), dims);
    }

    public static OnnxTensor Int64s(string name, params long[] values) => OnnxTensor.FromIntegers(name, OnnxDataType.Int64, values, values.Length);

    /// <summary>
    /// A graph running one LSTM (H = 3, I = 2, forward) on X [T, B, 2] with W, R, B as initializers; the optional
    /// hooks replace a weight or add attributes.
    /// </summary>
    public static byte[] Lstm(long[]? rDims = null, params Action<ProtoWriter>[] attributes) => Model(g =>
    {
        Input(g, "X", OnnxDataType.Float, -1, -1, 2);
        Initializer(g, Floats("W", [1, 12, 2]));
        Initializer(g, Floats("R", rDims ?? [1, 12, 3]));
        Initializer(g, Floats("B", [1, 24]));
        Node(g, "LSTM", ["X", "W", "R", "B"], ["Y", "Y_h"], attributes);
        Output(g, "Y", OnnxDataType.Float);
        Output(g, "Y_h", OnnxDataType.Float);
    });

    /// <summary>
    /// Every supported operator in one small graph (opset 14), the fuzz corpus's seed for the non-recurrent ops
    /// (tests/RnnSimd.Fuzz/corpus-onnx/ops.onnx): X [batch, 3, 4] is reshaped to [batch, 12] through Shape, Gather,
    /// Unsqueeze and Concat, transposed, sliced with a step, multiplied (MatMul, Gemm), added to a Constant and cast;
    /// an LSTM (H = 2) runs beside it on X transposed and sliced to [2, 3, 2], with sequence_lens from a graph input. Outputs: Y [5, 3], Y_h [1, 3, 2].
    /// </summary>
    public static byte[] OpsGraph() => Model(g =>
    {
        Input(g, "X", OnnxDataType.Float, -1, 3, 4);
        Input(g, "lens", OnnxDataType.Int32, 3);
        Initializer(g, OnnxTensor.FromIntegers("zero", OnnxDataType.Int64, [0]));
        Initializer(g, Int64s("minus1", -1));
        Initializer(g, Int64s("axes0", 0));
        Initializer(g, Int64s("starts", 1));
        Initializer(g, Int64s("ends", -1));
        Initializer(g, Int64s("steps", 2));
        Initializer(g, Floats("Wm", [2, 3], 0.5f));
        Initializer(g, Floats("Wg", [3, 3], 0.25f));
        Initializer(g, Floats("Cg", [3], 1));
        Initializer(g, Floats("W", [1, 8, 2], 0.1f));
        Initializer(g, Floats("R", [1, 8, 2], 0.2f));
        Initializer(g, Floats("B", [1, 16], 0.3f));
        Node(g, "Shape", ["X"], ["shape"]);
        Node(g, "Gather", ["shape", "zero"], ["batch"], Int("axis", 0));
        Node(g, "Unsqueeze", ["batch", "axes0"], ["batch1"]);
        Node(g, "Concat", ["batch1", "minus1"], ["flat"], Int("axis", 0));
        Node(g, "Reshape", ["X", "flat"], ["X2"]);
        Node(g, "Transpose", ["X2"], ["X3"], Ints("perm", 1, 0));
        Node(g, "Slice", ["X3", "starts", "ends", "axes0", "steps"], ["X4"]);
        Node(g, "MatMul", ["X4", "Wm"], ["M"]);
        Node(g, "Gemm", ["M", "Wg", "Cg"], ["G"], Int("transB", 1), Float("alpha", 0.5f));
        Node(g, "Constant", [], ["K"], Tensor("value", Floats("k", [1], 2)));
        Node(g, "Add", ["G", "K"], ["A"]);
        Node(g, "Unsqueeze", ["A", "axes0"], ["A1"]);
        Node(g, "Squeeze", ["A1", "axes0"], ["A2"]);
        Node(g, "Cast", ["A2"], ["A3"], Int("to", (long)OnnxDataType.Float));
        Node(g, "Identity", ["A3"], ["Y"]);
        Node(g, "Transpose", ["X"], ["Xt"], Ints("perm", 2, 0, 1));
        Node(g, "Slice", ["Xt", "starts", "minus1", "axes0"], ["Xs"]);
        Node(g, "Transpose", ["Xs"], ["Xl"], Ints("perm", 1, 2, 0));
        Node(g, "LSTM", ["Xl", "W", "R", "B", "lens"], ["", "Y_h"], Int("hidden_size", 2), Int("layout", 0));
        Output(g, "Y", OnnxDataType.Float, 5, 3);
        Output(g, "Y_h", OnnxDataType.Float, 1, 3, 2);
    });

    /// <summary>A TensorProto written field by field (dims unpacked, as some writers do).</summary>
    public static byte[] TensorBytes(Action<ProtoWriter> body)
    {
        var w = new ProtoWriter();
        body(w);
        return w.ToArray();
    }
}
