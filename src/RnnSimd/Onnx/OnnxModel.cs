using System.Text;
using RnnSimd.Layers;

namespace RnnSimd.Onnx;

/// <summary>
/// An ONNX model loaded for inference: its recurrent nodes (LSTM, GRU, RNN) become <see cref="RecurrentNetwork"/>s
/// and the nodes exporters put around them run as small planned kernels. Immutable once loaded and safe to share by
/// threads: each thread runs it through its own <see cref="OnnxSession"/>.
/// </summary>
/// <remarks>
/// <para>Everything is validated at load, before any large allocation: the protobuf bytes (lengths, counts, sizes
/// against the file), the opset (ai.onnx 7 to 22), every operator (an unknown one is listed with all the others in one
/// <see cref="NotSupportedException"/>), attributes (an attribute that could change the result and is not
/// supported is refused, never ignored), the graph's order and every recurrent node's weight shapes.</para>
/// <para>Supported operators: LSTM, GRU, RNN, Identity, Constant, Cast, Shape, Reshape, Squeeze, Unsqueeze,
/// Transpose, Slice, Concat, Gather, Add, MatMul (right operand 2-D), Gemm. Tensors: float32 and integers.</para>
/// </remarks>
public sealed class OnnxModel
{
    /// <summary>The ai.onnx opsets supported.</summary>
    public const int MinOpset = 7, MaxOpset = 22;

    private readonly OnnxModelProto _proto;
    internal readonly OnnxOp[] Ops;               // what runs: the graph's nodes with stacked layers fused
    private readonly OnnxOp[] _graphOps;          // the graph's nodes one by one
    internal readonly OnnxValue?[] Shared;       // per slot: the initializer's value (shared, read-only), else null
    internal readonly (string Name, bool IsFloat, OnnxDataType Type)[] Slots;
    internal readonly int[] InputSlots, OutputSlots;

    private OnnxModel(OnnxModelProto proto, string source, bool fuse)
    {
        _proto = proto;
        Source = source;
        long opset = proto.Opset;
        if (opset < MinOpset || opset > MaxOpset)
            throw new NotSupportedException($"unsupported: ai.onnx opset {opset} in '{source}' (opsets {MinOpset} to {MaxOpset} are supported)");
        var g = proto.Graph;
        var slotOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var slots = new List<(string, bool, OnnxDataType)>();
        var shared = new List<OnnxValue?>();
        var planStatic = new List<bool>();
        var constants = new Dictionary<int, OnnxValue>();

        int Define(string name, bool isFloat, OnnxDataType type, OnnxValue? value, bool isStatic, string what)
        {
            if (slotOf.ContainsKey(name)) throw new InvalidDataException($"Invalid ONNX model '{source}': {what} defines '{name}', which is already defined.");
            slotOf[name] = slots.Count;
            slots.Add((name, isFloat, type));
            shared.Add(value);
            planStatic.Add(isStatic);
            return slots.Count - 1;
        }

        foreach (var t in g.Initializers)
        {
            if (t.Name.Length == 0) throw new InvalidDataException($"Invalid ONNX model '{source}': an initializer has no name.");
            OnnxValue v;
            try { v = OnnxValue.FromTensor(t); }
            catch (NotSupportedException e) { throw new NotSupportedException($"{e.Message} (initializer in '{source}')"); }
            constants[Define(t.Name, v.IsFloat, t.DataType, v, true, "an initializer")] = v;
        }
        var inputs = new List<OnnxValueInfo>();
        var inputSlots = new List<int>();
        foreach (var vi in g.Inputs)
        {
            if (slotOf.ContainsKey(vi.Name)) continue; // an initializer listed as an input (IR < 4): a constant here
            bool isFloat = vi.ElementType == OnnxDataType.Float;
            if (!isFloat && !OnnxTensor.IsInteger(vi.ElementType))
                throw new NotSupportedException($"unsupported: graph input '{vi.Name}' of type {vi.ElementType} in '{source}' (float and integer inputs are supported)");
            inputSlots.Add(Define(vi.Name, isFloat, vi.ElementType, null, false, "a graph input"));
            inputs.Add(vi);
        }

        // Unknown operators first, all in one message (before their outputs are missed by the nodes that read them).
        var unknown = g.Nodes.Where(n => Create(n) is null)
            .Select(n => $"{(n.Domain.Length > 0 && n.Domain != "ai.onnx" ? n.Domain + "." : "")}{n.OpType} ({n.Describe()})").ToList();
        if (unknown.Count > 0)
            throw new NotSupportedException($"unsupported operators in '{source}': {string.Join(", ", unknown)}. Supported: {string.Join(", ", SupportedOperators)}.");
        var ops = new List<OnnxOp>();
        foreach (var n in g.Nodes)
        {
            var op = Create(n)!;
            op.Node = n;
            op.Index = ops.Count;
            op.In = new int[n.Inputs.Length];
            for (int k = 0; k < n.Inputs.Length; k++)
            {
                string name = n.Inputs[k];
                if (name.Length == 0) { op.In[k] = -1; continue; }
                if (!slotOf.TryGetValue(name, out op.In[k]))
                    throw new InvalidDataException($"Invalid ONNX model '{source}': input '{name}' of {n.Describe()} is not a graph input, an initializer or the output of an earlier node.");
            }
            op.Check(opset);
            if (op is RecurrentOp rec) rec.Build(slot => constants.GetValueOrDefault(slot));
            bool allStatic = op.In.All(k => k < 0 || planStatic[k]) || op is ShapeOp;
            op.PlanStatic = allStatic;
            foreach (int k in op.MustBeStatic)
                if (k < op.In.Length && op.In[k] >= 0 && !planStatic[op.In[k]])
                    throw new NotSupportedException($"unsupported: input {k} ('{n.Inputs[k]}') of {n.Describe()} depends on the data; only values known from shapes and constants are supported there");
            op.Out = new int[n.Outputs.Length];
            for (int k = 0; k < n.Outputs.Length; k++)
            {
                string name = n.Outputs[k];
                if (name.Length == 0) { op.Out[k] = -1; continue; }
                bool isFloat = op.OutputIsFloat(k, i => i < op.In.Length && op.In[i] >= 0 && slots[op.In[i]].Item2);
                op.Out[k] = Define(name, isFloat, isFloat ? OnnxDataType.Float : OutputIntType(op, slots), null, allStatic, n.Describe());
                if (op is ConstantOp c) constants[op.Out[k]] = c.Value;
            }
            ops.Add(op);
        }
        var outputs = new List<OnnxValueInfo>();
        var outputSlots = new List<int>();
        foreach (var vi in g.Outputs)
        {
            if (!slotOf.TryGetValue(vi.Name, out int slot))
                throw new InvalidDataException($"Invalid ONNX model '{source}': graph output '{vi.Name}' is not produced by any node.");
            outputSlots.Add(slot);
            outputs.Add(vi);
        }
        _graphOps = [.. ops];
        Ops = fuse ? [.. FuseStacks(ops, [.. outputSlots], slot => constants.GetValueOrDefault(slot))] : _graphOps;
        Shared = [.. shared];
        Slots = [.. slots];
        InputSlots = [.. inputSlots];
        OutputSlots = [.. outputSlots];
        Inputs = inputs.AsReadOnly();
        Outputs = outputs.AsReadOnly();
        Networks = Ops.SelectMany(op => op switch { StackOp s => [s.Network], RecurrentOp r => r.Parts ?? [], _ => Array.Empty<RecurrentNetwork>() })
            .ToList().AsReadOnly();
    }

    private static OnnxDataType OutputIntType(OnnxOp op, List<(string, bool, OnnxDataType Type)> slots) => op switch
    {
        ShapeOp => OnnxDataType.Int64,
        CastOp c => c.To,
        ConstantOp c => c.Value.Type,
        _ => op.In.Length > 0 && op.In[0] >= 0 ? slots[op.In[0]].Type : OnnxDataType.Int64,
    };

    /// <summary>The operator types a model may use.</summary>
    public static IReadOnlyList<string> SupportedOperators { get; } =
        ["LSTM", "GRU", "RNN", "Identity", "Constant", "Cast", "Shape", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Slice", "Concat",
         "Gather", "Add", "MatMul", "Gemm"];

    private static OnnxOp? Create(OnnxNode n)
    {
        if (n.Domain.Length > 0 && n.Domain != "ai.onnx") return null;
        return n.OpType switch
        {
            "LSTM" or "GRU" or "RNN" => new RecurrentOp(),
            "Identity" => new IdentityOp(),
            "Constant" => new ConstantOp(),
            "Cast" => new CastOp(),
            "Shape" => new ShapeOp(),
            "Reshape" or "Squeeze" or "Unsqueeze" => new ReshapeOp(n.OpType),
            "Transpose" => new TransposeOp(),
            "Slice" => new SliceOp(),
            "Concat" => new ConcatOp(),
            "Gather" => new GatherOp(),
            "Add" => new AddOp(),
            "MatMul" => new MatMulOp(gemm: false),
            "Gemm" => new MatMulOp(gemm: true),
            _ => null,
        };
    }

    /// <summary>Loads an .onnx file; external tensor data is read from files beside it.</summary>
    /// <exception cref="InvalidDataException">The file is not a valid ONNX model; the message names the part and byte offset.</exception>
    /// <exception cref="NotSupportedException">The model uses an operator, attribute, type or opset RnnSimd does not run; the message names them.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static OnnxModel Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        if (stream.Length > Array.MaxLength)
            throw new InvalidDataException($"Invalid ONNX model '{path}': {stream.Length} bytes, above protobuf's 2 GiB limit (large weights belong in external data files).");
        var bytes = GC.AllocateUninitializedArray<byte>((int)stream.Length);
        stream.ReadExactly(bytes);
        return Load(bytes, Path.GetFileName(path), Path.GetDirectoryName(Path.GetFullPath(path)));
    }

    /// <summary>Loads a model from its bytes.</summary>
    /// <param name="bytes">The serialized ModelProto.</param>
    /// <param name="source">A name for errors.</param>
    /// <param name="directory">Where external data files are; null refuses external data.</param>
    /// <exception cref="InvalidDataException">The bytes are not a valid ONNX model.</exception>
    /// <exception cref="NotSupportedException">The model uses something RnnSimd does not run.</exception>
    public static OnnxModel Load(ReadOnlySpan<byte> bytes, string source = "model", string? directory = null) => Load(bytes, source, directory, fuse: true);

    /// <summary><see cref="Load(ReadOnlySpan{byte}, string, string?)"/>, with stacked layers fused or run node by node (tests compare the two).</summary>
    internal static OnnxModel Load(ReadOnlySpan<byte> bytes, string source, string? directory, bool fuse)
    {
        var proto = OnnxParser.ReadModel(bytes, directory);
        try { return new OnnxModel(proto, source, fuse); }
        catch (ArgumentException e) { throw new InvalidDataException($"Invalid ONNX model '{source}': {e.Message}", e); }
    }

    /// <summary>The file name or source given at load.</summary>
    public string Source { get; }

    /// <summary>The graph inputs a caller supplies (initializers excluded), in the graph's order.</summary>
    public IReadOnlyList<OnnxValueInfo> Inputs { get; }

    /// <summary>The graph outputs, in the graph's order.</summary>
    public IReadOnlyList<OnnxValueInfo> Outputs { get; }

    /// <summary>
    /// The networks the model runs, in graph order: one per fused stack of layers, one per other recurrent node whose
    /// weights are initializers (two for a bidirectional node whose directions have different activations).
    /// </summary>
    public IReadOnlyList<RecurrentNetwork> Networks { get; }

    /// <summary>The ai.onnx opset imported.</summary>
    public long Opset => _proto.Opset;

    /// <summary>The IR version.</summary>
    public long IrVersion => _proto.IrVersion;

    /// <summary>The producer (e.g. "pytorch 2.5").</summary>
    public string Producer => (_proto.ProducerName + " " + _proto.ProducerVersion).Trim();

    /// <summary>
    /// The model's recurrent nodes as one stacked <see cref="RecurrentNetwork"/> (weights copied), when they form the
    /// stack torch.onnx.export writes for a multi-layer nn.LSTM / GRU / RNN: the same cell, sizes and direction in
    /// every layer, and each layer after the first fed its predecessor's Y through Squeeze(axis 1) (one direction) or
    /// Transpose(0, 2, 1, 3) + Reshape to [0, 0, -1] (Identity nodes allowed between). What surrounds the stack (initial
    /// state slicing, heads) is not part of the network.
    /// </summary>
    /// <exception cref="NotSupportedException">The recurrent nodes do not form such a stack; the message says where.</exception>
    public RecurrentNetwork ToNetwork()
    {
        if (Ops.OfType<StackOp>().ToList() is [var only] && !Ops.OfType<RecurrentOp>().Any())
        {
            var copy = new RecurrentNetwork(only.Network.Options);
            only.Network.Parameters.Data.CopyTo(copy.Parameters.Data, 0);
            copy.ParametersChanged();
            return copy;
        }
        var recs = _graphOps.OfType<RecurrentOp>().ToList();
        if (recs.Any(r => r.Fused))
            throw new NotSupportedException($"'{Source}' has a fused stack of recurrent nodes beside other recurrent nodes; they form no single network.");
        if (recs.Count == 0) throw new NotSupportedException($"'{Source}' has no LSTM, GRU or RNN node.");
        foreach (var r in recs)
            if (r.Network is null)
                throw new NotSupportedException(r.Parts is null ? $"{r.Where} takes its weights as graph inputs; a network needs them as initializers."
                    : $"{r.Where} has different activations per direction, which one network cannot hold (it runs as a forward and a reverse network).");
        var first = recs[0].Network!.Options;
        int D = first.Directions, H = first.HiddenSize;
        var producer = new Dictionary<int, OnnxOp>();
        foreach (var op in _graphOps) foreach (int k in op.Out) if (k >= 0) producer[k] = op;
        for (int l = 1; l < recs.Count; l++)
        {
            var o = recs[l].Network!.Options;
            if (o != first with { InputSize = D * H })
                throw new NotSupportedException($"{recs[l].Where} ({Describe(o)}) does not continue the stack begun by {recs[0].Where} ({Describe(first)}).");
            if (FedBy(recs[l].In[0], recs[l - 1], producer, Constant) is null)
                throw new NotSupportedException($"{recs[l].Where}'s X is not {recs[l - 1].Where}'s Y reshaped to (T, B, D*H) the way torch.onnx.export writes it.");
        }
        var net = new RecurrentNetwork(first with { NumLayers = recs.Count });
        for (int l = 0; l < recs.Count; l++)
            foreach (var e in recs[l].Network!.Parameters.Entries)
                recs[l].Network!.Parameters.View(e).CopyTo(net.Parameters[e.Name.Replace("_l0", $"_l{l}")]);
        net.ParametersChanged();
        return net;
    }

    /// <summary>
    /// The nodes between <paramref name="prev"/>'s Y and slot <paramref name="x"/> when x is that Y in (T, B, D*H) form
    /// (see <see cref="ToNetwork"/>): Identity nodes, then Squeeze(axis 1) (one direction) or Transpose(0, 2, 1, 3) +
    /// Reshape to [0, 0, -1] or [0, 0, D*H]; null when it is not.
    /// </summary>
    private static List<OnnxOp>? FedBy(int x, RecurrentOp prev, Dictionary<int, OnnxOp> producer, Func<int, OnnxValue?> constant)
    {
        static bool IsConst(OnnxValue? v, params long[] values) => v is { IsFloat: false } && v.Ints.SequenceEqual(values);
        var chain = new List<OnnxOp>();
        OnnxOp? Back(int slot)
        {
            var op = producer.GetValueOrDefault(slot);
            while (op is IdentityOp) { chain.Add(op); op = producer.GetValueOrDefault(op.In[0]); }
            return op;
        }
        if (prev.Network is null || prev.Out.Length == 0 || prev.Out[0] < 0) return null;
        var last = Back(x);
        int D = prev.Network.Options.Directions, H = prev.Network.Options.HiddenSize;
        if (last is ReshapeOp { Kind: "Squeeze" } sq && D == 1)
        {
            chain.Add(sq);
            var axes = sq.AxesAttribute ?? (sq.In.Length > 1 && sq.In[1] >= 0 ? constant(sq.In[1])?.Ints.ToArray() : null);
            return axes is [1] or [-3] && Back(sq.In[0]) == prev ? chain : null;
        }
        if (last is ReshapeOp { Kind: "Reshape" } rs && (IsConst(constant(rs.In[1]), 0, 0, -1) || IsConst(constant(rs.In[1]), 0, 0, D * H)))
        {
            chain.Add(rs);
            if (Back(rs.In[0]) is not TransposeOp { Perm: [0, 2, 1, 3] } tr) return null;
            chain.Add(tr);
            return Back(tr.In[0]) == prev ? chain : null;
        }
        return null;
    }

    /// <summary>An initializer's or Constant node's value, else null.</summary>
    private OnnxValue? Constant(int slot) =>
        slot < 0 ? null : Shared[slot] ?? _graphOps.OfType<ConstantOp>().FirstOrDefault(c => c.Out.Contains(slot))?.Value;

    /// <summary>
    /// Replaces each run of stacked recurrent nodes (<see cref="FedBy"/>, same options, layout 0, the same
    /// sequence_lens) whose in-between tensors nothing else reads by one <see cref="StackOp"/> at the last layer's place.
    /// </summary>
    private static List<OnnxOp> FuseStacks(List<OnnxOp> ops, int[] graphOutputs, Func<int, OnnxValue?> constant)
    {
        var producer = new Dictionary<int, OnnxOp>();
        var readers = new Dictionary<int, List<int>>();       // slot -> indices of the ops reading it
        for (int i = 0; i < ops.Count; i++)
        {
            foreach (int k in ops[i].Out) if (k >= 0) producer[k] = ops[i];
            foreach (int k in ops[i].In) if (k >= 0) (readers.TryGetValue(k, out var l) ? l : readers[k] = []).Add(i);
        }
        bool OnlyReadBy(int slot, OnnxOp reader) =>
            !graphOutputs.Contains(slot) && readers.TryGetValue(slot, out var l) && l.All(i => ops[i] == reader);
        var removed = new HashSet<OnnxOp>();
        var replace = new Dictionary<OnnxOp, OnnxOp>();
        var recs = ops.OfType<RecurrentOp>().Where(r => r.Network is not null && r.Layout == 0).ToList();
        for (int start = 0; start < recs.Count; start++)
        {
            if (removed.Contains(recs[start]) || recs[start].Fused) continue;
            var stack = new List<RecurrentOp> { recs[start] };
            var between = new List<OnnxOp>();
            var o0 = recs[start].Network!.Options;
            int D = o0.Directions, H = o0.HiddenSize;
            foreach (var next in recs.Skip(start + 1))
            {
                var prev = stack[^1];
                var chain = FedBy(next.In[0], prev, producer, constant);
                if (chain is null) continue;
                bool sameLens = (next.In.Length > 4 ? next.In[4] : -1) == (recs[start].In.Length > 4 ? recs[start].In[4] : -1);
                // Every tensor from prev's Y to next's X is read only by the next op of the chain (chain[0] feeds next,
                // chain[^1] reads prev's Y).
                bool privateValues = OnlyReadBy(prev.Out[0], chain.Count > 0 ? chain[^1] : next)
                    && chain.All(c => c.Out.Length == 1 && OnlyReadBy(c.Out[0], chain.IndexOf(c) == 0 ? next : chain[chain.IndexOf(c) - 1]));
                if (next.Network!.Options != o0 with { InputSize = D * H } || !sameLens || !privateValues) break;
                stack.Add(next);
                between.AddRange(chain);
            }
            if (stack.Count < 2) continue;
            // The earlier layers' Y_h / Y_c move to the last layer's place: nothing between may read them.
            int lastIndex = ops.IndexOf(stack[^1]);
            bool movable = stack.Take(stack.Count - 1).All(r => r.Out.Skip(1).All(k => k < 0 || !readers.TryGetValue(k, out var l) || l.All(i => i > lastIndex)));
            if (!movable) continue;
            int L = stack.Count;
            bool lstm = o0.Cell == CellType.Lstm;
            int Input(RecurrentOp r, int k) => k < r.In.Length ? r.In[k] : -1;
            int Output(RecurrentOp r, int k) => k < r.Out.Length ? r.Out[k] : -1;
            var net = new RecurrentNetwork(o0 with { NumLayers = L });
            for (int l = 0; l < L; l++)
                foreach (var e in stack[l].Network!.Parameters.Entries)
                    stack[l].Network!.Parameters.View(e).CopyTo(net.Parameters[e.Name.Replace("_l0", $"_l{l}")]);
            net.ParametersChanged();
            var op = new StackOp(net, stack[^1].Node, L)
            {
                In = [Input(stack[0], 0), Input(stack[0], 4), .. stack.Select(r => Input(r, 5)), .. lstm ? stack.Select(r => Input(r, 6)) : []],
                Out = [Output(stack[^1], 0), .. stack.Select(r => Output(r, 1)), .. lstm ? stack.Select(r => Output(r, 2)) : []],
            };
            replace[stack[^1]] = op;
            foreach (var r in stack) r.ReleaseIntoStack(); // the stack's network holds their weights now
            foreach (var r in stack.Take(L - 1)) removed.Add(r);
            foreach (var c in between) removed.Add(c);
        }
        var result = new List<OnnxOp>();
        foreach (var op in ops)
        {
            if (removed.Contains(op)) continue;
            var o = replace.GetValueOrDefault(op, op);
            o.Index = result.Count;
            result.Add(o);
        }
        return result;
    }

    /// <summary>Creates a session: the buffers one thread runs this model with.</summary>
    public OnnxSession CreateSession() => new(this);

    /// <summary>
    /// Describes an .onnx file even when RnnSimd cannot run it: the loaded model's <see cref="Describe()"/>, or the graph
    /// as read (opset, inputs, outputs, every node with its attributes) and why it cannot run.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a valid ONNX model.</exception>
    public static string Inspect(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try { return Load(path).Describe() + "runs in RnnSimd: yes\n"; }
        catch (NotSupportedException e)
        {
            var bytes = File.ReadAllBytes(path);
            var p = OnnxParser.ReadModel(bytes, Path.GetDirectoryName(Path.GetFullPath(path)));
            var sb = new StringBuilder();
            sb.AppendLine($"ONNX model '{Path.GetFileName(path)}': IR version {p.IrVersion}, opset {p.Opset}, producer '{(p.ProducerName + " " + p.ProducerVersion).Trim()}', graph '{p.Graph.Name}'");
            sb.AppendLine($"  inputs:  {string.Join("; ", p.Graph.Inputs)}");
            sb.AppendLine($"  outputs: {string.Join("; ", p.Graph.Outputs)}");
            sb.AppendLine($"  initializers: {p.Graph.Initializers.Count}");
            sb.AppendLine($"  nodes: {p.Graph.Nodes.Count}");
            foreach (var n in p.Graph.Nodes) sb.AppendLine("    " + NodeLine(n));
            sb.AppendLine($"runs in RnnSimd: no: {e.Message}");
            return sb.ToString();
        }
    }

    private static string NodeLine(OnnxNode n)
    {
        string attrs = string.Join(", ", n.Attributes.Values.Select(a => $"{a.Name}={AttrText(a)}"));
        return $"{n.Describe()}: ({string.Join(", ", n.Inputs.Select(i => i.Length == 0 ? "-" : i))}) -> ({string.Join(", ", n.Outputs.Select(o => o.Length == 0 ? "-" : o))})"
            + (attrs.Length > 0 ? $" [{attrs}]" : "");
    }

    /// <summary>A multi-line description: producer, opset, inputs, outputs, nodes (recurrent ones with their attributes).</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"ONNX model '{Source}': IR version {IrVersion}, opset {Opset}, producer '{Producer}', graph '{_proto.Graph.Name}'");
        sb.AppendLine($"  inputs:  {string.Join("; ", Inputs)}");
        sb.AppendLine($"  outputs: {string.Join("; ", Outputs)}");
        sb.AppendLine($"  initializers: {_proto.Graph.Initializers.Count} ({_proto.Graph.Initializers.Sum(t => t.ElementCount):N0} values)");
        sb.AppendLine($"  nodes: {Ops.Length}");
        foreach (var op in _graphOps)
        {
            sb.Append("    " + NodeLine(op.Node));
            if (op is RecurrentOp { Parts: { } parts }) sb.Append($" => {string.Join(" + ", parts.Select(p => Describe(p.Options)))}");
            sb.AppendLine();
        }
        foreach (var stack in Ops.OfType<StackOp>())
            sb.AppendLine($"  fused: {stack.Node.Describe()} run as one {stack.Network.Options.NumLayers}-layer network ({Describe(stack.Network.Options)})");
        return sb.ToString();
    }

    private static string AttrText(OnnxAttribute a) => a.Type switch
    {
        OnnxAttribute.FloatType => a.F.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        OnnxAttribute.IntType => a.I.ToString(System.Globalization.CultureInfo.InvariantCulture),
        OnnxAttribute.StringType => a.S ?? "",
        OnnxAttribute.IntsType => "[" + string.Join(",", a.Ints) + "]",
        OnnxAttribute.FloatsType => "[" + string.Join(",", a.Floats) + "]",
        OnnxAttribute.StringsType => "[" + string.Join(",", a.Strings) + "]",
        OnnxAttribute.TensorType => $"tensor {a.T?.ShapeText}",
        _ => a.TypeName,
    };

    internal static string Describe(RecurrentOptions o) =>
        $"{o.CellName} I={o.InputSize} H={o.HiddenSize} " + (o.Bidirectional ? "bidirectional" : o.Reverse ? "reverse" : "forward")
        + (o.Bias ? "" : " no-bias") + (o.Cell == CellType.Gru ? $" linear_before_reset={(o.GruLinearBeforeReset ? 1 : 0)}" : "")
        + (o.Peepholes ? " peepholes" : "") + (o.CoupledInputForget ? " input_forget=1" : "")
        + (o.ActivationF is { } f ? $" f={f}" : "") + (o.ActivationG is { } g ? $" g={g}" : "") + (o.ActivationH is { } h ? $" h={h}" : "")
        + (o.Clip > 0 ? $" clip={o.Clip.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}" : "");
}
