namespace RnnSimd.Onnx;

/// <summary>A dimension of a graph input or output: a number, or a named symbolic size (dim_param), or unknown.</summary>
/// <param name="Value">The size when known, else -1.</param>
/// <param name="Param">The symbolic name (e.g. "batch"), or null.</param>
public readonly record struct OnnxDim(long Value, string? Param)
{
    /// <inheritdoc />
    public override string ToString() => Value >= 0 ? Value.ToString() : Param ?? "?";
}

/// <summary>A graph input or output as the model declares it (ValueInfoProto with a tensor type).</summary>
/// <param name="Name">The value's name.</param>
/// <param name="ElementType">The element type (Undefined when the model does not say).</param>
/// <param name="Shape">The dimensions, or null when the model gives no shape.</param>
public sealed record OnnxValueInfo(string Name, OnnxDataType ElementType, OnnxDim[]? Shape)
{
    /// <summary>"X: float [seq, batch, 3]".</summary>
    public override string ToString() =>
        $"{Name}: {ElementType.ToString().ToLowerInvariant()} " + (Shape is null ? "(shape unknown)" : "[" + string.Join(", ", Shape) + "]");
}

/// <summary>An attribute of a node (AttributeProto); only the kinds the supported operators use are decoded.</summary>
internal sealed class OnnxAttribute
{
    public const int FloatType = 1, IntType = 2, StringType = 3, TensorType = 4, GraphType = 5, FloatsType = 6, IntsType = 7, StringsType = 8;

    public string Name = "";
    public int Type;
    public float F;
    public long I;
    public string? S;
    public OnnxTensor? T;
    public float[] Floats = [];
    public long[] Ints = [];
    public string[] Strings = [];

    /// <summary>The declared type, or (for files that omit it, as some old exporters do) the one implied by the fields set.</summary>
    public string TypeName => Type switch
    {
        FloatType => "float", IntType => "int", StringType => "string", TensorType => "tensor", GraphType => "graph",
        FloatsType => "floats", IntsType => "ints", StringsType => "strings", _ => $"type {Type}",
    };
}

/// <summary>A node (NodeProto).</summary>
internal sealed class OnnxNode
{
    public string Name = "", OpType = "", Domain = "";
    public string[] Inputs = [], Outputs = [];
    public Dictionary<string, OnnxAttribute> Attributes = new(StringComparer.Ordinal);

    /// <summary>"LSTM node 'lstm_0'" (or its first output's name when the node has no name).</summary>
    public string Describe() => $"{OpType} node '{(Name.Length > 0 ? Name : Outputs.FirstOrDefault(o => o.Length > 0) ?? "?")}'";

    public string Input(int i) => i < Inputs.Length ? Inputs[i] : "";

    public string Output(int i) => i < Outputs.Length ? Outputs[i] : "";
}

/// <summary>The main graph (GraphProto).</summary>
internal sealed class OnnxGraph
{
    public string Name = "";
    public List<OnnxNode> Nodes = [];
    public List<OnnxTensor> Initializers = [];
    public List<OnnxValueInfo> Inputs = [], Outputs = [];
}

/// <summary>A model (ModelProto).</summary>
internal sealed class OnnxModelProto
{
    public long IrVersion;
    public string ProducerName = "", ProducerVersion = "", Domain = "";
    public long ModelVersion;
    public Dictionary<string, long> Opsets = new(StringComparer.Ordinal); // "" = ai.onnx
    public OnnxGraph Graph = new();
    public Dictionary<string, string> Metadata = new(StringComparer.Ordinal);

    /// <summary>The ai.onnx opset the model imports (0 if none).</summary>
    public long Opset => Opsets.TryGetValue("", out long v) ? v : Opsets.TryGetValue("ai.onnx", out v) ? v : 0;
}

/// <summary>
/// Parses ModelProto / TensorProto bytes into <see cref="OnnxModelProto"/> / <see cref="OnnxTensor"/>. Bounds: every
/// length against its message, counts (nodes, initializers, attributes, values) against the limits below so a small
/// hostile file cannot ask for unbounded memory, tensor sizes against their data, and no recursion: subgraphs
/// (If/Loop bodies), sparse tensors, nested type protos and training info are skipped unread, so depth is fixed.
/// </summary>
internal static class OnnxParser
{
    public const int MaxNodes = 100_000, MaxInitializers = 100_000, MaxValueInfos = 100_000, MaxAttributes = 1_000,
        MaxNodeIo = 10_000, MaxOpsets = 1_000, MaxAttributeValues = 1 << 20, MaxMetadata = 10_000;

    public static OnnxModelProto ReadModel(ReadOnlySpan<byte> bytes, string? directory)
    {
        var r = new ProtoReader(bytes, 0, "model");
        var m = new OnnxModelProto();
        bool hasGraph = false;
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1: m.IrVersion = r.ReadInt64(w, "ir_version"); break;
                case 2: m.ProducerName = r.ReadString(w, "producer_name"); break;
                case 3: m.ProducerVersion = r.ReadString(w, "producer_version"); break;
                case 4: m.Domain = r.ReadString(w, "domain"); break;
                case 5: m.ModelVersion = r.ReadInt64(w, "model_version"); break;
                case 7:
                    if (hasGraph) throw r.Error("the model has two graphs");
                    var g = r.ReadMessage(w, "graph", "model.graph");
                    m.Graph = ReadGraph(ref g, directory);
                    hasGraph = true;
                    break;
                case 8:
                {
                    if (m.Opsets.Count >= MaxOpsets) throw r.Error($"more than {MaxOpsets} opset imports");
                    var o = r.ReadMessage(w, "opset_import", $"model.opset_import[{m.Opsets.Count}]");
                    string domain = "";
                    long version = 0;
                    while (!o.End)
                    {
                        var (of, ow) = o.ReadTag();
                        if (of == 1) domain = o.ReadString(ow, "domain");
                        else if (of == 2) version = o.ReadInt64(ow, "version");
                        else o.Skip(ow, $"field {of}");
                    }
                    if (!m.Opsets.TryAdd(domain, version)) throw o.Error($"domain '{domain}' is imported twice");
                    break;
                }
                case 14:
                {
                    if (m.Metadata.Count >= MaxMetadata) throw r.Error($"more than {MaxMetadata} metadata entries");
                    var e = r.ReadMessage(w, "metadata_props", $"model.metadata_props[{m.Metadata.Count}]");
                    var (k, v) = ReadStringPair(ref e);
                    m.Metadata[k] = v;
                    break;
                }
                default: r.Skip(w, $"field {f}"); break; // doc_string, training_info, functions
            }
        }
        if (!hasGraph) throw r.Error("the model has no graph");
        return m;
    }

    private static (string Key, string Value) ReadStringPair(ref ProtoReader e)
    {
        string k = "", v = "";
        while (!e.End)
        {
            var (f, w) = e.ReadTag();
            if (f == 1) k = e.ReadString(w, "key");
            else if (f == 2) v = e.ReadString(w, "value", 1 << 20);
            else e.Skip(w, $"field {f}");
        }
        return (k, v);
    }

    private static OnnxGraph ReadGraph(ref ProtoReader r, string? directory)
    {
        var g = new OnnxGraph();
        int valueInfos = 0;
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1:
                {
                    if (g.Nodes.Count >= MaxNodes) throw r.Error($"more than {MaxNodes} nodes");
                    var n = r.ReadMessage(w, "node", $"{r.Path}.node[{g.Nodes.Count}]");
                    g.Nodes.Add(ReadNode(ref n));
                    break;
                }
                case 2: g.Name = r.ReadString(w, "name"); break;
                case 5:
                {
                    if (g.Initializers.Count >= MaxInitializers) throw r.Error($"more than {MaxInitializers} initializers");
                    var t = r.ReadMessage(w, "initializer", $"{r.Path}.initializer[{g.Initializers.Count}]");
                    g.Initializers.Add(ReadTensor(ref t, directory));
                    break;
                }
                case 15: throw r.Error("sparse initializers are not supported");
                case 11 or 12:
                {
                    if (++valueInfos > MaxValueInfos) throw r.Error($"more than {MaxValueInfos} inputs and outputs");
                    var list = f == 11 ? g.Inputs : g.Outputs;
                    var v = r.ReadMessage(w, f == 11 ? "input" : "output", $"{r.Path}.{(f == 11 ? "input" : "output")}[{list.Count}]");
                    list.Add(ReadValueInfo(ref v));
                    break;
                }
                default: r.Skip(w, $"field {f}"); break; // doc_string, value_info, quantization_annotation
            }
        }
        return g;
    }

    private static OnnxNode ReadNode(ref ProtoReader r)
    {
        var n = new OnnxNode();
        List<string> inputs = [], outputs = [];
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1 or 2:
                    if (inputs.Count + outputs.Count >= MaxNodeIo) throw r.Error($"more than {MaxNodeIo} inputs and outputs");
                    (f == 1 ? inputs : outputs).Add(r.ReadString(w, f == 1 ? "input" : "output"));
                    break;
                case 3: n.Name = r.ReadString(w, "name"); break;
                case 4: n.OpType = r.ReadString(w, "op_type"); break;
                case 7: n.Domain = r.ReadString(w, "domain"); break;
                case 5:
                {
                    if (n.Attributes.Count >= MaxAttributes) throw r.Error($"more than {MaxAttributes} attributes");
                    var a = r.ReadMessage(w, "attribute", $"{r.Path}.attribute[{n.Attributes.Count}]");
                    var attr = ReadAttribute(ref a);
                    if (!n.Attributes.TryAdd(attr.Name, attr)) throw a.Error($"attribute '{attr.Name}' appears twice");
                    break;
                }
                default: r.Skip(w, $"field {f}"); break; // doc_string
            }
        }
        n.Inputs = [.. inputs];
        n.Outputs = [.. outputs];
        return n;
    }

    private static OnnxAttribute ReadAttribute(ref ProtoReader r)
    {
        var a = new OnnxAttribute();
        List<long> ints = [];
        List<float> floats = [];
        List<string> strings = [];
        int nInts = 0, nFloats = 0, set = 0;
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1: a.Name = r.ReadString(w, "name"); break;
                case 20: a.Type = r.ReadInt32(w, "type"); break;
                case 2: a.F = r.ReadFloat(w, "f"); set |= 1 << OnnxAttribute.FloatType; break;
                case 3: a.I = r.ReadInt64(w, "i"); set |= 1 << OnnxAttribute.IntType; break;
                case 4: a.S = r.ReadString(w, "s", 1 << 20); set |= 1 << OnnxAttribute.StringType; break;
                case 5:
                {
                    var t = r.ReadMessage(w, "t", r.Path + ".t");
                    a.T = ReadTensor(ref t, null);
                    set |= 1 << OnnxAttribute.TensorType;
                    break;
                }
                case 6: r.Skip(w, "g"); set |= 1 << OnnxAttribute.GraphType; break;
                case 7: r.ReadRepeatedFloat(w, "floats", ref nFloats, MaxAttributeValues, floats); set |= 1 << OnnxAttribute.FloatsType; break;
                case 8: r.ReadRepeatedVarint(w, "ints", ref nInts, MaxAttributeValues, ints); set |= 1 << OnnxAttribute.IntsType; break;
                case 9:
                    if (strings.Count >= MaxAttributeValues) throw r.Error($"strings has more than {MaxAttributeValues} values");
                    strings.Add(r.ReadString(w, "strings"));
                    set |= 1 << OnnxAttribute.StringsType;
                    break;
                case 21: throw r.Error($"attribute '{a.Name}' refers to a function attribute (ref_attr_name), which only functions may use");
                default: r.Skip(w, $"field {f}"); break; // doc_string, sparse tensors, graphs, type protos, tensors
            }
        }
        if (a.Name.Length == 0) throw r.Error("an attribute has no name");
        // Old exporters (IR version < 4 era) omit the type: infer it when exactly one kind of field is set.
        if (a.Type == 0 && set != 0 && (set & (set - 1)) == 0) a.Type = System.Numerics.BitOperations.TrailingZeroCount(set);
        a.Ints = [.. ints];
        a.Floats = [.. floats];
        a.Strings = [.. strings];
        return a;
    }

    private static OnnxValueInfo ReadValueInfo(ref ProtoReader r)
    {
        string name = "";
        var type = OnnxDataType.Undefined;
        OnnxDim[]? shape = null;
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            if (f == 1) name = r.ReadString(w, "name");
            else if (f == 2)
            {
                var tp = r.ReadMessage(w, "type", r.Path + ".type");
                while (!tp.End)
                {
                    var (tf, tw) = tp.ReadTag();
                    if (tf != 1) { tp.Skip(tw, $"field {tf}"); continue; } // sequence, map, optional types: not tensors
                    var tt = tp.ReadMessage(tw, "tensor_type", tp.Path + ".tensor_type");
                    while (!tt.End)
                    {
                        var (ef, ew) = tt.ReadTag();
                        if (ef == 1) type = (OnnxDataType)tt.ReadInt32(ew, "elem_type");
                        else if (ef == 2) shape = ReadShape(ref tt, ew);
                        else tt.Skip(ew, $"field {ef}");
                    }
                }
            }
            else r.Skip(w, $"field {f}");
        }
        return new OnnxValueInfo(name, type, shape);
    }

    private static OnnxDim[] ReadShape(ref ProtoReader tt, int wire)
    {
        var s = tt.ReadMessage(wire, "shape", tt.Path + ".shape");
        var dims = new List<OnnxDim>();
        while (!s.End)
        {
            var (f, w) = s.ReadTag();
            if (f != 1) { s.Skip(w, $"field {f}"); continue; }
            if (dims.Count >= OnnxTensor.MaxRank) throw s.Error($"more than {OnnxTensor.MaxRank} dimensions");
            var d = s.ReadMessage(w, "dim", $"{s.Path}.dim[{dims.Count}]");
            long value = -1;
            string? param = null;
            while (!d.End)
            {
                var (df, dw) = d.ReadTag();
                if (df == 1)
                {
                    value = d.ReadInt64(dw, "dim_value");
                    if (value < 0) throw d.Error($"dim_value {value} is negative");
                }
                else if (df == 2) param = d.ReadString(dw, "dim_param");
                else d.Skip(dw, $"field {df}");
            }
            dims.Add(new OnnxDim(value, param));
        }
        return [.. dims];
    }

    /// <summary>Reads a TensorProto. External data is read from <paramref name="externalDirectory"/> (refused when null).</summary>
    public static OnnxTensor ReadTensor(ref ProtoReader r, string? externalDirectory)
    {
        string name = "";
        var type = OnnxDataType.Undefined;
        List<long> dims = [], ints = [];
        List<float> floats = [];
        List<double> doubles = [];
        int nDims = 0, nInts = 0, nFloats = 0, nDoubles = 0;
        ReadOnlySpan<byte> raw = default;
        bool hasRaw = false, external = false;
        string? location = null;
        long offset = 0, length = -1;
        int start = r.Offset;
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1: r.ReadRepeatedVarint(w, "dims", ref nDims, OnnxTensor.MaxRank, dims); break;
                case 2: type = (OnnxDataType)r.ReadInt32(w, "data_type"); break;
                case 3: throw r.Error("segmented tensors (TensorProto.segment) are not supported");
                case 4: r.ReadRepeatedFloat(w, "float_data", ref nFloats, Array.MaxLength, floats); break;
                case 5 or 7 or 11: r.ReadRepeatedVarint(w, f == 5 ? "int32_data" : f == 7 ? "int64_data" : "uint64_data", ref nInts, Array.MaxLength, ints); break;
                case 6: throw r.Error("string tensors are not supported");
                case 8: name = r.ReadString(w, "name"); break;
                case 9: raw = r.ReadBytes(w, "raw_data"); hasRaw = true; break;
                case 10: r.ReadRepeatedDouble(w, "double_data", ref nDoubles, Array.MaxLength, doubles); break;
                case 13:
                {
                    var e = r.ReadMessage(w, "external_data", r.Path + ".external_data");
                    var (k, v) = ReadStringPair(ref e);
                    if (k == "location") location = v;
                    else if (k == "offset") offset = ParseExternalNumber(ref r, k, v);
                    else if (k == "length") length = ParseExternalNumber(ref r, k, v);
                    break;
                }
                case 14: external = r.ReadInt32(w, "data_location") == 1; break;
                default: r.Skip(w, $"field {f}"); break; // doc_string
            }
        }
        string label = name.Length > 0 ? $"tensor '{name}'" : "a tensor";
        int size = OnnxTensor.ElementSize(type);
        if (size == 0) throw r.Error($"{label} has data type {type}, which is not supported (float, double, integer and bool tensors are)", start);
        long[] shape = [.. dims];
        long count;
        try { count = OnnxTensor.CheckedCount(shape, name); }
        catch (ArgumentException e) { throw r.Error(e.Message, start); }

        int sources = (hasRaw ? 1 : 0) + (external ? 1 : 0) + (nFloats > 0 ? 1 : 0) + (nInts > 0 ? 1 : 0) + (nDoubles > 0 ? 1 : 0);
        if (sources > 1) throw r.Error($"{label} has its data in more than one field", start);
        if (external)
        {
            byte[] bytes = ReadExternal(ref r, label, externalDirectory, location, offset, length, count * size, start);
            return OnnxTensor.FromRaw(name, type, shape, bytes);
        }
        if (hasRaw)
        {
            if (raw.Length != count * size)
                throw r.Error($"{label} of shape [{string.Join(", ", shape)}] {type} needs {count * size} bytes of raw_data, has {raw.Length}", start);
            return OnnxTensor.FromRaw(name, type, shape, raw);
        }
        long have = nFloats + nInts + nDoubles;
        if (have != count) throw r.Error($"{label} of shape [{string.Join(", ", shape)}] has {have} values, expected {count}", start);
        switch (type)
        {
            case OnnxDataType.Float:
                if (count > 0 && nFloats == 0) throw r.Error($"{label} is float but its values are not in float_data", start);
                return new OnnxTensor(name, type, shape, [.. floats], null, null);
            case OnnxDataType.Double:
                if (count > 0 && nDoubles == 0) throw r.Error($"{label} is double but its values are not in double_data", start);
                return new OnnxTensor(name, type, shape, null, [.. doubles], null);
            default:
                if (count > 0 && nInts == 0) throw r.Error($"{label} is {type} but its values are not in an integer field", start);
                var values = ints.ToArray();
                for (int i = 0; i < values.Length; i++) values[i] = Narrow(values[i], type);
                return new OnnxTensor(name, type, shape, null, null, values);
        }
    }

    /// <summary>An integer value from int32_data etc. as its type reads it (int32_data holds narrower types too).</summary>
    private static long Narrow(long v, OnnxDataType t) => t switch
    {
        OnnxDataType.Int8 => (sbyte)v, OnnxDataType.UInt8 => (byte)v, OnnxDataType.Int16 => (short)v, OnnxDataType.UInt16 => (ushort)v,
        OnnxDataType.Int32 => (int)v, OnnxDataType.UInt32 => (uint)v, OnnxDataType.Bool => v != 0 ? 1 : 0, _ => v,
    };

    private static long ParseExternalNumber(ref ProtoReader r, string key, string value) =>
        long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n)
            ? n : throw r.Error($"external_data {key} '{value}' is not a non-negative integer");

    private static byte[] ReadExternal(ref ProtoReader r, string label, string? directory, string? location, long offset, long length,
        long expected, int start)
    {
        if (directory is null) throw r.Error($"{label} keeps its data in an external file, which needs the model loaded from a file path", start);
        if (string.IsNullOrEmpty(location)) throw r.Error($"{label} keeps its data externally but gives no location", start);
        if (Path.IsPathRooted(location) || location.Contains("..") || location.Contains(':') || location.IndexOf('\0') >= 0)
            throw r.Error($"{label}: external data location '{location}' is not a plain relative path beside the model", start);
        string dir = Path.GetFullPath(directory);
        string full = Path.GetFullPath(Path.Combine(dir, location));
        if (!full.StartsWith(dir.EndsWith(Path.DirectorySeparatorChar) ? dir : dir + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw r.Error($"{label}: external data location '{location}' leaves the model's directory", start);
        if (length >= 0 && length != expected)
            throw r.Error($"{label}: external data length {length} is not the {expected} bytes its shape and type need", start);
        if (expected > Array.MaxLength)
            throw r.Error($"{label} needs {expected} bytes of external data, more than one array holds ({Array.MaxLength})", start);
        try
        {
            using var s = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
            if (offset > s.Length || expected > s.Length - offset)
                throw r.Error($"{label}: external file '{location}' is {s.Length} bytes, too short for {expected} bytes at offset {offset}", start);
            var bytes = GC.AllocateUninitializedArray<byte>((int)expected);
            s.Position = offset;
            s.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw r.Error($"{label}: cannot read external file '{location}': {e.Message}", start);
        }
    }
}
