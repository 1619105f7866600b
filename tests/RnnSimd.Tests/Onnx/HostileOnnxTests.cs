using RnnSimd.Onnx;
using static RnnSimd.Tests.Onnx.OnnxTestModel;

namespace RnnSimd.Tests.Onnx;

/// <summary>
/// Hand-built hostile ONNX files, one per way a file can be wrong, each checked for the documented outcome: an
/// <see cref="InvalidDataException"/> naming the part of the file (and, from the protobuf reader, the byte offset) for
/// a malformed file, a <see cref="NotSupportedException"/> whose message starts "unsupported" for valid ONNX that
/// RnnSimd does not run, and never any other exception or a large allocation.
/// </summary>
[Trait("Category", "Onnx")]
public class HostileOnnxTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-onnx-hostile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string SpecModel(string name) => Path.Combine(OnnxBackendTests.OnnxDir, "spec", name, "model.onnx");

    private static InvalidDataException Invalid(byte[] bytes, params string[] parts)
    {
        var e = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(bytes, "hostile"));
        foreach (var p in parts) Assert.Contains(p, e.Message);
        return e;
    }

    private static NotSupportedException Unsupported(byte[] bytes, params string[] parts)
    {
        var e = Assert.Throws<NotSupportedException>(() => OnnxModel.Load(bytes, "hostile"));
        Assert.StartsWith("unsupported", e.Message);
        foreach (var p in parts) Assert.Contains(p, e.Message);
        return e;
    }

    /// <summary>Loads and runs on float inputs of the given shapes (zeros); returns the outputs.</summary>
    private static OnnxTensor[] Run(byte[] bytes, params long[][] shapes)
    {
        var m = OnnxModel.Load(bytes, "hostile");
        return m.CreateSession().Run(shapes.Select((s, k) => Floats(m.Inputs[k].Name, s, 0)).ToList());
    }

    // ---- protobuf wire format -------------------------------------------------------------------------------------

    [Fact]
    public void Every_prefix_of_a_real_model_loads_or_fails_as_documented()
    {
        byte[] model = File.ReadAllBytes(SpecModel("lstm_forward_defaults"));
        int loaded = 0;
        for (int n = 0; n < model.Length; n++)
        {
            try
            {
                OnnxModel.Load(model.AsSpan(0, n), "prefix");
                loaded++;
            }
            catch (InvalidDataException e) { Assert.Matches(@"^Invalid ONNX file: model[.:].* \(at byte \d+\)\.$", e.Message); }
            catch (NotSupportedException e) { Assert.StartsWith("unsupported", e.Message); }
        }
        // The generator writes the opset import last: no proper prefix has both a whole graph and an opset.
        Assert.Equal(0, loaded);
        Assert.NotNull(OnnxModel.Load(model, "whole"));
    }

    [Fact]
    public void A_varint_of_11_bytes_is_refused_with_its_offset()
    {
        // ir_version (field 1, varint) followed by ten continuation bytes and a last one.
        byte[] bytes = [0x08, .. Enumerable.Repeat((byte)0xFF, 10), 0x01];
        Invalid(bytes, "model:", "varint", "at byte 1");
    }

    [Fact]
    public void A_varint_running_past_the_end_is_refused()
    {
        Invalid([0x08, 0x80, 0x80], "model:", "varint runs past the end", "at byte 1");
    }

    [Fact]
    public void A_length_running_past_the_end_is_refused()
    {
        // graph (field 7, length-delimited) declaring 100 bytes with 3 present.
        Invalid([0x3A, 100, 1, 2, 3], "model:", "graph declares 100 bytes but only 3 remain", "at byte 1");
    }

    [Theory]
    [InlineData(3, "group")]
    [InlineData(4, "group")]
    [InlineData(6, "wire type 6")]
    [InlineData(7, "wire type 7")]
    public void Wire_types_3_4_6_7_are_refused(int wire, string what)
    {
        Invalid([(byte)((1 << 3) | wire), 0, 0, 0, 0, 0, 0, 0, 0], "model:", what, "at byte 0");
    }

    [Fact]
    public void A_group_inside_a_node_is_refused_with_the_node_path()
    {
        // node 0 holds field 9 as a start-group / end-group pair (wire 3, 4).
        var bytes = Model(g => g.Bytes(1, [(9 << 3) | 3, (9 << 3) | 4]));
        var e = Invalid(bytes, "model.graph.node[0]", "group");
        Assert.Matches(@"at byte \d+", e.Message);
    }

    [Fact]
    public void A_field_of_the_wrong_wire_type_is_refused()
    {
        // ir_version as a 32-bit field.
        Invalid([0x0D, 1, 0, 0, 0], "model:", "ir_version has wire type 5, expected 0");
    }

    [Fact]
    public void Field_number_zero_is_refused()
    {
        Invalid([0x00, 0x00], "model:", "field number 0");
    }

    [Fact]
    public void Invalid_utf8_in_a_name_is_refused()
    {
        var bytes = Model(g => g.Bytes(2, [0xC3, 0x28]));
        Invalid(bytes, "model.graph", "name is not valid UTF-8");
    }

    // ---- tensors ---------------------------------------------------------------------------------------------------

    private static byte[] WithInitializer(Action<ProtoWriter> tensor) => Model(g =>
    {
        g.Message(5, tensor);
        Input(g, "X", OnnxDataType.Float, 2);
        Node(g, "Identity", ["X"], ["Y"]);
        Output(g, "Y", OnnxDataType.Float);
    });

    [Fact]
    public void A_tensor_whose_dims_product_overflows_int64_is_refused()
    {
        var bytes = WithInitializer(t =>
        {
            t.PackedInt64(1, [1L << 40, 1L << 40, 1L << 40]);
            t.Int64(2, (long)OnnxDataType.Float);
            t.String(8, "big");
        });
        Invalid(bytes, "model.graph.initializer[0]", "tensor 'big'", "more than", "elements", "at byte");
        var e = Assert.Throws<InvalidDataException>(() => OnnxTensor.Parse(TensorBytes(t =>
        {
            t.PackedInt64(1, [long.MaxValue, 2]);
            t.Int64(2, (long)OnnxDataType.Float);
        }), "t.pb"));
        Assert.Contains("t.pb", e.Message);
        Assert.Contains("elements", e.Message);
    }

    [Fact]
    public void A_tensor_whose_raw_data_length_disagrees_with_its_dims_is_refused()
    {
        var bytes = WithInitializer(t =>
        {
            t.PackedInt64(1, [2, 3]);
            t.Int64(2, (long)OnnxDataType.Float);
            t.String(8, "w");
            t.Bytes(9, new byte[20]);
        });
        Invalid(bytes, "model.graph.initializer[0]", "tensor 'w'", "needs 24 bytes of raw_data, has 20");
    }

    [Fact]
    public void Negative_dims_are_refused()
    {
        var bytes = WithInitializer(t =>
        {
            t.Int64(1, -3);
            t.Int64(2, (long)OnnxDataType.Float);
            t.String(8, "w");
        });
        Invalid(bytes, "model.graph.initializer[0]", "negative dimension -3");
    }

    [Fact]
    public void Dims_with_40_entries_are_refused()
    {
        var bytes = WithInitializer(t =>
        {
            t.PackedInt64(1, Enumerable.Repeat(1L, 40).ToArray());
            t.Int64(2, (long)OnnxDataType.Float);
        });
        Invalid(bytes, "model.graph.initializer[0]", "dims has more than 32 values");
        // Unpacked too: the count is checked per value.
        var unpacked = WithInitializer(t => { for (int i = 0; i < 40; i++) t.Int64(1, 1); });
        Invalid(unpacked, "model.graph.initializer[0]", "dims has more than 32 values");
    }

    [Fact]
    public void A_float_data_count_mismatch_is_refused()
    {
        var bytes = WithInitializer(t =>
        {
            t.PackedInt64(1, [2, 3]);
            t.Int64(2, (long)OnnxDataType.Float);
            t.String(8, "w");
            for (int i = 0; i < 5; i++) t.Float(4, i);
        });
        Invalid(bytes, "model.graph.initializer[0]", "tensor 'w' of shape [2, 3] has 5 values, expected 6");
    }

    [Fact]
    public void A_tensor_with_both_raw_data_and_float_data_is_refused()
    {
        var bytes = WithInitializer(t =>
        {
            t.Int64(1, 1);
            t.Int64(2, (long)OnnxDataType.Float);
            t.String(8, "w");
            t.Float(4, 1);
            t.Bytes(9, new byte[4]);
        });
        Invalid(bytes, "model.graph.initializer[0]", "tensor 'w' has its data in more than one field");
    }

    [Fact]
    public void A_tensor_of_an_unsupported_type_is_refused()
    {
        var bytes = WithInitializer(t => { t.Int64(1, 1); t.Int64(2, (long)OnnxDataType.Float16); t.String(8, "h"); t.Bytes(9, new byte[2]); });
        Invalid(bytes, "model.graph.initializer[0]", "tensor 'h' has data type Float16, which is not supported");
        var strings = WithInitializer(t => { t.Int64(1, 1); t.Int64(2, (long)OnnxDataType.String); t.Bytes(6, "a"u8); });
        Invalid(strings, "model.graph.initializer[0]", "string tensors");
    }

    [Fact]
    public void Float_values_in_an_integer_field_are_refused()
    {
        var bytes = WithInitializer(t => { t.Int64(1, 2); t.Int64(2, (long)OnnxDataType.Float); t.PackedInt64(7, [1, 2]); t.String(8, "w"); });
        Invalid(bytes, "model.graph.initializer[0]", "tensor 'w' is float but its values are not in float_data");
    }

    [Fact]
    public void Packed_integers_cost_at_most_8_bytes_per_file_byte_before_a_count_mismatch_is_found()
    {
        // 1,000,000 one-byte varints for a tensor of 3 elements: the values are read before the count can be compared
        // (protobuf fields come in any order), into a list sized once: 8 MB, not the 16-24 MB of a doubling list.
        byte[] tensor = TensorBytes(t =>
        {
            t.Int64(1, 3);
            t.Int64(2, (long)OnnxDataType.Int64);
            t.Bytes(7, new byte[1_000_000]);
        });
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => OnnxTensor.Parse(tensor, "t.pb"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("has 1000000 values, expected 3", e.Message);
        Assert.True(allocated < 9 * tensor.Length, $"{allocated:N0} bytes allocated for a {tensor.Length:N0}-byte tensor");
    }

    [Fact]
    public void Too_many_packed_values_are_refused_before_they_are_read()
    {
        var bytes = Lstm(null, a => { a.String(1, "activation_alpha"); a.PackedInt64(8, new long[OnnxParser.MaxAttributeValues + 1]); });
        long before = GC.GetAllocatedBytesForCurrentThread();
        Invalid(bytes, "model.graph.node[0]", $"ints has more than {OnnxParser.MaxAttributeValues} values");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 2 * bytes.Length, "the values were read before the count was checked");
    }

    // ---- external data ---------------------------------------------------------------------------------------------

    /// <summary>A model with one external float initializer 'w' of shape [4] (16 bytes), written to the temp dir.</summary>
    private string ExternalModel(string location, long? offset = null, long? length = null, long count = 4, OnnxDataType type = OnnxDataType.Float)
    {
        var bytes = WithInitializer(t =>
        {
            t.Int64(1, count);
            t.Int64(2, (long)type);
            t.String(8, "w");
            t.Message(13, e => { e.String(1, "location"); e.StringAlways(2, location); });
            if (offset is { } o) t.Message(13, e => { e.String(1, "offset"); e.String(2, o.ToString()); });
            if (length is { } l) t.Message(13, e => { e.String(1, "length"); e.String(2, l.ToString()); });
            t.Int64(14, 1);
        });
        string path = Path.Combine(_dir, "model.onnx");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static InvalidDataException InvalidFile(string path, params string[] parts)
    {
        var e = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(path));
        foreach (var p in parts) Assert.Contains(p, e.Message);
        Assert.Contains("model.graph.initializer[0]", e.Message);
        return e;
    }

    [Fact]
    public void External_data_beside_the_model_loads()
    {
        File.WriteAllBytes(Path.Combine(_dir, "w.bin"), [.. new byte[8], .. BitConverter.GetBytes(1f), .. BitConverter.GetBytes(2f), .. BitConverter.GetBytes(3f), .. BitConverter.GetBytes(4f)]);
        var m = OnnxModel.Load(ExternalModel("w.bin", offset: 8, length: 16));
        Assert.Single(m.Inputs);
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("/etc/passwd")]
    [InlineData("a/../../x")]
    [InlineData("..")]
    [InlineData("C:x")]
    public void External_data_outside_the_models_directory_is_refused(string location)
    {
        InvalidFile(ExternalModel(location), "tensor 'w'", $"'{location}'", "not a plain relative path beside the model");
    }

    [Fact]
    public void A_missing_external_file_is_refused()
    {
        InvalidFile(ExternalModel("absent.bin"), "tensor 'w'", "cannot read external file 'absent.bin'");
    }

    [Fact]
    public void A_directory_as_external_file_is_refused()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "sub"));
        InvalidFile(ExternalModel("sub"), "tensor 'w'", "'sub'");
    }

    [Fact]
    public void External_data_past_the_end_of_its_file_is_refused()
    {
        File.WriteAllBytes(Path.Combine(_dir, "short.bin"), new byte[10]);
        InvalidFile(ExternalModel("short.bin"), "external file 'short.bin' is 10 bytes, too short for 16 bytes at offset 0");
        InvalidFile(ExternalModel("short.bin", offset: 8), "too short for 16 bytes at offset 8");
        InvalidFile(ExternalModel("short.bin", offset: long.MaxValue), "too short");
        InvalidFile(ExternalModel("short.bin", length: 10), "external data length 10 is not the 16 bytes");
        InvalidFile(ExternalModel("short.bin", offset: -1), "offset '-1' is not a non-negative integer");
    }

    [Fact]
    public void External_data_above_the_array_limit_is_refused_before_reading()
    {
        // 300M int64 = 2.4 GB: more than one array holds. The file is sparse, so this costs no disk.
        string data = Path.Combine(_dir, "huge.bin");
        using (var f = new FileStream(data, FileMode.Create)) f.SetLength(2_400_000_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        InvalidFile(ExternalModel("huge.bin", count: 300_000_000, type: OnnxDataType.Int64), "tensor 'w'", "2400000000 bytes");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated before refusing");
    }

    [Fact]
    public void External_data_from_bytes_without_a_directory_is_refused()
    {
        byte[] bytes = File.ReadAllBytes(ExternalModel("w.bin"));
        Invalid(bytes, "model.graph.initializer[0]", "tensor 'w' keeps its data in an external file, which needs the model loaded from a file path");
    }

    // ---- graph structure -------------------------------------------------------------------------------------------

    [Fact]
    public void More_than_MaxNodes_nodes_are_refused()
    {
        // 100,001 empty NodeProtos: 2 bytes each.
        var bytes = Model(g => { for (int i = 0; i <= OnnxParser.MaxNodes; i++) g.Bytes(1, []); });
        Assert.True(bytes.Length < 300_000);
        Invalid(bytes, "model.graph", $"more than {OnnxParser.MaxNodes} nodes");
    }

    [Fact]
    public void Unknown_operators_are_all_listed()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, "Frobnicate", ["X"], ["a"]);
            Node(g, "Identity", ["X"], ["b"]);
            Node(g, "LSTM", "com.example", ["X"], ["c"]);
            Node(g, "Softmax", ["X"], ["d"]);
            Output(g, "b", OnnxDataType.Float);
        });
        var e = Unsupported(bytes, "Frobnicate (Frobnicate node", "com.example.LSTM", "Softmax (Softmax node", "Supported: LSTM");
        Assert.DoesNotContain("Identity (", e.Message);
    }

    [Fact]
    public void An_unknown_operator_feeding_a_known_one_is_unsupported_not_invalid()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, "Frobnicate", ["X"], ["y"]);
            Node(g, "Identity", ["y"], ["z"]);
            Output(g, "z", OnnxDataType.Float);
        });
        Unsupported(bytes, "Frobnicate");
    }

    private static byte[] IdentityModel(long? opset) => Model(g =>
    {
        Input(g, "X", OnnxDataType.Float, 2);
        Node(g, "Identity", ["X"], ["Y"]);
        Output(g, "Y", OnnxDataType.Float);
    }, opset);

    [Theory]
    [InlineData(6)]
    [InlineData(23)]
    [InlineData(-1)]
    public void Opsets_outside_7_to_22_are_unsupported(long opset)
    {
        Unsupported(IdentityModel(opset), $"opset {opset}", "opsets 7 to 22");
        Assert.Equal(7, OnnxModel.Load(IdentityModel(7)).Opset);
        Assert.Equal(22, OnnxModel.Load(IdentityModel(22)).Opset);
    }

    [Fact]
    public void A_model_without_an_opset_import_is_unsupported()
    {
        Unsupported(IdentityModel(null), "opset 0");
    }

    [Fact]
    public void A_model_without_a_graph_is_refused()
    {
        var w = new ProtoWriter();
        w.Int64(1, 8);
        w.Message(8, o => o.Int64(2, 14));
        Invalid(w.ToArray(), "model:", "has no graph");
        Invalid([], "model:", "has no graph", "at byte 0");
    }

    [Fact]
    public void Two_graphs_are_refused()
    {
        byte[] one = IdentityModel(14);
        var w = new ProtoWriter();
        w.Message(7, g => Node(g, "Identity", ["X"], ["Y"]));
        Invalid([.. one, .. w.ToArray()], "model:", "two graphs");
    }

    [Fact]
    public void A_node_input_that_is_never_defined_is_refused()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, "Add", ["X", "nowhere"], ["Y"]);
            Output(g, "Y", OnnxDataType.Float);
        });
        Invalid(bytes, "input 'nowhere' of Add node 'add_Y'", "not a graph input, an initializer or the output of an earlier node");
    }

    [Fact]
    public void Nodes_out_of_order_are_refused()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, "Identity", ["a"], ["Y"]);
            Node(g, "Identity", ["X"], ["a"]);
            Output(g, "Y", OnnxDataType.Float);
        });
        Invalid(bytes, "input 'a' of Identity node");
    }

    [Fact]
    public void A_duplicate_output_name_is_refused()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, "Identity", ["X"], ["Y"]);
            Node(g, "Identity", ["X"], ["Y"]);
            Output(g, "Y", OnnxDataType.Float);
        });
        Invalid(bytes, "Identity node 'identity_Y' defines 'Y', which is already defined");
        var overInput = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, "Identity", ["X"], ["X"]);
            Output(g, "X", OnnxDataType.Float);
        });
        Invalid(overInput, "defines 'X', which is already defined");
    }

    [Fact]
    public void A_graph_output_not_produced_is_refused()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, "Identity", ["X"], ["Y"]);
            Output(g, "Z", OnnxDataType.Float);
        });
        Invalid(bytes, "graph output 'Z' is not produced by any node");
    }

    [Fact]
    public void A_duplicate_attribute_is_refused()
    {
        var bytes = Lstm(null, Int("hidden_size", 3), Int("hidden_size", 3));
        Invalid(bytes, "model.graph.node[0].attribute[1]", "attribute 'hidden_size' appears twice");
    }

    [Fact]
    public void An_attribute_without_a_name_is_refused()
    {
        var bytes = Model(g => g.Message(1, n => { n.String(4, "Identity"); n.Message(5, a => a.Int64(3, 1)); }));
        Invalid(bytes, "model.graph.node[0].attribute[0]", "an attribute has no name");
    }

    // ---- recurrent nodes -------------------------------------------------------------------------------------------

    [Fact]
    public void The_lstm_model_used_below_loads_and_runs()
    {
        var y = Run(Lstm(), [2, 1, 2]);
        Assert.Equal([2L, 1, 1, 3], y[0].Dims);
    }

    [Fact]
    public void An_lstm_whose_R_has_the_wrong_shape_is_refused_naming_R_and_the_expected_shape()
    {
        var e = Invalid(Lstm([1, 12, 2]), "LSTM node", "R [1, 12, 2] is not [1, 12, 3]");
        Assert.DoesNotContain("W [", e.Message);
    }

    [Fact]
    public void Hidden_size_disagreeing_with_W_is_refused()
    {
        Invalid(Lstm(null, Int("hidden_size", 4)), "LSTM node", "hidden_size = 4 but W [1, 12, 2] holds 4 x 3 rows");
    }

    [Fact]
    public void Direction_sideways_is_unsupported()
    {
        Unsupported(Lstm(null, Str("direction", "sideways")), "direction = 'sideways'", "LSTM node");
    }

    [Fact]
    public void Layout_2_is_unsupported()
    {
        Unsupported(Lstm(null, Int("layout", 2)), "layout = 2");
    }

    [Fact]
    public void An_attribute_of_the_wrong_type_is_refused()
    {
        Invalid(Lstm(null, Float("hidden_size", 3)), "LSTM node", "attribute 'hidden_size' is float, expected int");
        Invalid(Lstm(null, Int("direction", 1)), "attribute 'direction' is int, expected string");
    }

    [Fact]
    public void An_unknown_lstm_attribute_is_unsupported()
    {
        Unsupported(Lstm(null, Int("frobnicate", 1)), "attribute 'frobnicate'");
    }

    [Fact]
    public void An_lstm_without_R_is_refused()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2, 1, 2);
            Initializer(g, Floats("W", [1, 12, 2]));
            Node(g, "LSTM", ["X", "W"], ["Y"]);
            Output(g, "Y", OnnxDataType.Float);
        });
        Invalid(bytes, "needs X, W and R");
    }

    // ---- shapes and planning ---------------------------------------------------------------------------------------

    [Fact]
    public void A_reshape_whose_shape_depends_on_the_data_is_unsupported()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2, 3);
            Input(g, "S", OnnxDataType.Int64, 2);
            Node(g, "Reshape", ["X", "S"], ["Y"]);
            Output(g, "Y", OnnxDataType.Float);
        });
        Unsupported(bytes, "input 1 ('S') of Reshape node", "depends on the data");
    }

    private static byte[] ReshapeTo(params long[] shape) => Model(g =>
    {
        Input(g, "X", OnnxDataType.Float, 2, 3);
        Initializer(g, Int64s("shape", shape));
        Node(g, "Reshape", ["X", "shape"], ["Y"]);
        Output(g, "Y", OnnxDataType.Float);
    });

    [Fact]
    public void A_reshape_to_a_shape_above_the_budget_fails_before_allocating()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        // 1.5G elements: below Array.MaxLength, 12 GB of buffer: above the budget.
        var e = Assert.Throws<InvalidDataException>(() => Run(ReshapeTo(1 << 29, 3), [2, 3]));
        Assert.Contains("Reshape node", e.Message);
        Assert.Contains("MemoryBudget", e.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => Run(ReshapeTo(1L << 40, 1L << 20), [2, 3]));
        Assert.Contains("more than", e2.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated before refusing");
    }

    [Fact]
    public void A_reshape_to_a_large_shape_of_the_wrong_count_fails_before_allocating()
    {
        // 100M floats fit the budget, but not the 6 elements of X: refused before the 400 MB buffer is made.
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => Run(ReshapeTo(100_000_000), [2, 3]));
        Assert.Contains("cannot reshape [2, 3] (6 elements) to [100000000]", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated before refusing");
    }

    [Fact]
    public void A_reshape_that_fits_runs()
    {
        Assert.Equal([3L, 2], Run(ReshapeTo(3, -1), [2, 3])[0].Dims);
        Assert.Equal([2L, 3], Run(ReshapeTo(0, 3), [2, 3])[0].Dims);
    }

    [Fact]
    public void A_reshape_with_a_float_shape_is_refused()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2, 3);
            Initializer(g, Floats("shape", [2], 3));
            Node(g, "Reshape", ["X", "shape"], ["Y"]);
            Output(g, "Y", OnnxDataType.Float);
        });
        var e = Assert.Throws<InvalidDataException>(() => Run(bytes, [2, 3]));
        Assert.Contains("Reshape node", e.Message);
        Assert.Contains("shape", e.Message);
    }

    [Fact]
    public void Slice_starts_of_a_float_type_are_refused()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 4);
            Initializer(g, Floats("starts", [1], 1));
            Initializer(g, Int64s("ends", 3));
            Node(g, "Slice", ["X", "starts", "ends"], ["Y"]);
            Output(g, "Y", OnnxDataType.Float);
        });
        var e = Assert.Throws<InvalidDataException>(() => Run(bytes, [4]));
        Assert.Contains("Slice node", e.Message);
        Assert.Contains("starts", e.Message);
    }

    [Theory]
    [InlineData(long.MaxValue, 0, 4, new float[] { 10 })]
    [InlineData(long.MinValue, 3, -5, new float[] { 13 })]
    [InlineData(-2, long.MaxValue, long.MinValue, new float[] { 13, 11 })]
    [InlineData(3, 0, 4, new float[] { 10, 13 })]
    [InlineData(-1, 3, -5, new float[] { 13, 12, 11, 10 })]
    [InlineData(2, long.MinValue, long.MaxValue, new float[] { 10, 12 })]
    public void Slice_steps_and_bounds_at_the_int64_extremes_give_numpys_result(long step, long start, long end, float[] expected)
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 4);
            Initializer(g, Int64s("starts", start));
            Initializer(g, Int64s("ends", end));
            Initializer(g, Int64s("axes", 0));
            Initializer(g, Int64s("steps", step));
            Node(g, "Slice", ["X", "starts", "ends", "axes", "steps"], ["Y"]);
            Output(g, "Y", OnnxDataType.Float);
        });
        var y = OnnxModel.Load(bytes).CreateSession().Run([OnnxTensor.FromFloats("X", [10, 11, 12, 13], 4)])[0];
        Assert.Equal([expected.Length], y.Dims);
        Assert.Equal(expected, y.Floats);
    }

    [Fact]
    public void Concat_of_a_float_and_an_integer_tensor_is_refused()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Initializer(g, Int64s("i", 1, 2));
            Node(g, "Concat", ["X", "i"], ["Y"], Int("axis", 0));
            Output(g, "Y", OnnxDataType.Float);
        });
        var e = Assert.Throws<InvalidDataException>(() => Run(bytes, [2]));
        Assert.Contains("Concat node", e.Message);
    }

    [Theory]
    [InlineData("Identity", 0)]
    [InlineData("Identity", -1)]
    [InlineData("Cast", 0)]
    [InlineData("Shape", -1)]
    [InlineData("Transpose", 0)]
    [InlineData("Add", 1)]
    [InlineData("MatMul", -1)]
    [InlineData("Gather", 1)]
    [InlineData("Concat", -1)]
    [InlineData("Squeeze", 0)]
    public void A_node_missing_a_required_input_is_refused(string op, int inputs)
    {
        // inputs >= 0: that many inputs; -1: the first one given as "" (absent)
        string[] names = inputs >= 0 ? Enumerable.Repeat("X", inputs).ToArray() : ["", "X"];
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, op, names, ["Y"], op == "Cast" ? [Int("to", 1)] : op == "Concat" ? [Int("axis", 0)] : []);
            Output(g, "Y", OnnxDataType.Float);
        });
        Invalid(bytes, $"{op} node", "input");
    }

    [Theory]
    [InlineData("Identity")]
    [InlineData("Add")]
    [InlineData("Transpose")]
    public void A_node_with_too_many_inputs_is_refused(string op)
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, op, ["X", "X", "X"], ["Y"]);
            Output(g, "Y", OnnxDataType.Float);
        });
        Invalid(bytes, $"{op} node", "3 inputs");
    }

    [Theory]
    [InlineData("Identity", 0)]
    [InlineData("Identity", -1)]
    [InlineData("Identity", 2)]
    [InlineData("Constant", 0)]
    [InlineData("Constant", -1)]
    [InlineData("Constant", 2)]
    public void A_node_without_its_output_or_with_extra_outputs_is_refused(string op, int outputs)
    {
        // outputs >= 0: that many outputs; -1: one output given as "" (absent)
        string[] names = outputs >= 0 ? Enumerable.Range(0, outputs).Select(i => "Y" + i).ToArray() : [""];
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            if (op == "Identity") Node(g, op, ["X"], names);
            else Node(g, op, [], names, Tensor("value", Floats("c", [2])));
            Output(g, "X", OnnxDataType.Float);
        });
        Invalid(bytes, $"{op} node", "output");
    }

    [Fact]
    public void A_constant_tensor_attribute_without_a_tensor_is_refused()
    {
        var bytes = Model(g =>
        {
            Node(g, "Constant", [], ["Y"], a => { a.String(1, "value"); a.Int64(20, OnnxAttribute.TensorType); });
            Output(g, "Y", OnnxDataType.Float);
        });
        Invalid(bytes, "Constant node", "attribute 'value'");
    }

    [Fact]
    public void A_constant_of_a_double_tensor_is_unsupported()
    {
        var t = new OnnxTensor("d", OnnxDataType.Double, [1], null, [1.0], null);
        var bytes = Model(g =>
        {
            Node(g, "Constant", [], ["Y"], Tensor("value", t));
            Output(g, "Y", OnnxDataType.Float);
        });
        Unsupported(bytes, "double tensor");
    }

    [Fact]
    public void A_transpose_perm_of_the_wrong_length_is_refused_for_every_rank()
    {
        foreach (var (dims, perm) in new (long[], long[])[] { ([], [0]), ([2], [0, 1]), ([2, 3], [0]), ([2, 3], [1, 1]) })
        {
            var bytes = Model(g =>
            {
                Input(g, "X", OnnxDataType.Float, dims);
                Node(g, "Transpose", ["X"], ["Y"], Ints("perm", perm));
                Output(g, "Y", OnnxDataType.Float);
            });
            var e = Assert.Throws<InvalidDataException>(() => Run(bytes, dims));
            Assert.Contains("perm", e.Message);
        }
    }

    [Fact]
    public void A_cast_from_float_to_int64_can_be_read_back()
    {
        var bytes = Model(g =>
        {
            Input(g, "X", OnnxDataType.Float, 2);
            Node(g, "Cast", ["X"], ["Y"], Int("to", (long)OnnxDataType.Int64));
            Output(g, "Y", OnnxDataType.Int64);
        });
        var y = Run(bytes, [2])[0];
        Assert.Equal(OnnxDataType.Int64, y.DataType);
    }

    // ---- the fuzz corpus -------------------------------------------------------------------------------------------

    private static string FuzzCorpus => Path.Combine(Path.GetDirectoryName(OnnxBackendTests.OnnxDir)!, "..", "RnnSimd.Fuzz", "corpus-onnx");

    /// <summary>
    /// The fuzz seed with every operator runs, gives the shapes and values worked out by hand, and is the committed
    /// corpus file byte for byte (RNNSIMD_WRITE_FUZZ_SEEDS=1 writes it again).
    /// </summary>
    [Fact]
    public void The_fuzz_seed_with_every_operator_runs_and_is_committed()
    {
        byte[] bytes = OpsGraph();
        var m = OnnxModel.Load(bytes, "ops.onnx");
        var x = OnnxTensor.FromFloats("X", Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), 2, 3, 4);
        var lens = OnnxTensor.FromIntegers("lens", OnnxDataType.Int32, [2, 1, 2], 3);
        var y = m.CreateSession().Run([x, lens]);
        Assert.Equal([5L, 3], y[0].Dims);
        Assert.Equal([1L, 3, 2], y[1].Dims);
        // Y[i, j] = 0.5 * (0.25 * sum_j' M[i, j']) + 1 + 2 with M[i, :] = 0.5 * (X2^T[1 + 2i, 0] + X2^T[1 + 2i, 1]),
        // X2^T[r, c] = X2[c, r] = c * 12 + r.
        for (int i = 0; i < 5; i++)
        {
            double mij = 0.5 * ((1 + 2 * i) + (12 + 1 + 2 * i));
            Assert.Equal(0.5 * 0.25 * 3 * mij + 3, y[0].Floats![i * 3], 4);
        }
        string path = Path.Combine(FuzzCorpus, "ops.onnx");
        if (Environment.GetEnvironmentVariable("RNNSIMD_WRITE_FUZZ_SEEDS") == "1") File.WriteAllBytes(path, bytes);
        Assert.True(File.Exists(path), $"{path} is missing: run with RNNSIMD_WRITE_FUZZ_SEEDS=1");
        Assert.Equal(bytes, File.ReadAllBytes(path));
    }

    [Fact]
    public void Every_fuzz_seed_loads_and_runs()
    {
        foreach (var f in Directory.GetFiles(FuzzCorpus, "*.onnx"))
        {
            var m = OnnxModel.Load(f);
            Assert.NotEmpty(m.CreateSession().Run(m.Inputs.Select(vi =>
            {
                long[] dims = vi.Shape!.Select(d => d.Value >= 0 ? d.Value : 2).ToArray();
                int n = (int)dims.Aggregate(1L, (a, d) => a * d);
                return vi.ElementType == OnnxDataType.Float ? Floats(vi.Name, dims, 0)
                    : OnnxTensor.FromIntegers(vi.Name, OnnxDataType.Int64, Enumerable.Repeat(1L, n).ToArray(), dims);
            }).ToList()));
        }
    }

    /// <summary>
    /// Inputs the coverage-guided fuzzer (tests/RnnSimd.Fuzz, --onnx) found to crash, kept in tests/data/fuzz/onnx and
    /// run as its harness runs them: loaded from bytes, then run on inputs of their declared shapes (unknown
    /// dimensions 2), floats 0 and integers 1; only the documented outcomes may escape.
    /// </summary>
    [Theory]
    [InlineData("cast-to-uint8-graph-output.onnx")]
    public void Kept_fuzz_findings_give_only_documented_outcomes(string file)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(Path.GetDirectoryName(OnnxBackendTests.OnnxDir)!, "fuzz", "onnx", file));
        OnnxModel m;
        try { m = OnnxModel.Load(bytes, "fuzz"); }
        catch (InvalidDataException) { return; }
        catch (NotSupportedException e) { Assert.StartsWith("unsupported", e.Message); return; }
        var inputs = m.Inputs.Select(vi =>
        {
            long[] dims = vi.Shape!.Select(d => d.Value >= 0 ? d.Value : 2).ToArray();
            int n = (int)dims.Aggregate(1L, (a, d) => a * d);
            return vi.ElementType == OnnxDataType.Float ? Floats(vi.Name, dims, 0)
                : OnnxTensor.FromIntegers(vi.Name, OnnxDataType.Int64, Enumerable.Repeat(1L, n).ToArray(), dims);
        }).ToList();
        try { m.CreateSession().Run(inputs); }
        catch (InvalidDataException) { }
        catch (NotSupportedException e) { Assert.StartsWith("unsupported", e.Message); }
        catch (ArgumentOutOfRangeException e) when (e.Message.Contains("MemoryBudget")) { }
        catch (ArgumentException e) when (e.ParamName is "shape" or "index" or "inputs" or "tensor" or "name") { }
    }

    [Fact]
    public void Layout_2_to_the_32_is_unsupported_not_layout_0()
    {
        Unsupported(Lstm(null, Int("layout", 1L << 32)), "layout = 4294967296");
    }

    // ---- input_K.pb ------------------------------------------------------------------------------------------------

    [Fact]
    public void Every_prefix_of_a_test_input_parses_or_fails_as_documented()
    {
        byte[] input = File.ReadAllBytes(Path.Combine(Path.GetDirectoryName(SpecModel("lstm_forward_defaults"))!, "test_data_set_0", "input_0.pb"));
        for (int n = 0; n < input.Length; n++)
        {
            try { OnnxTensor.Parse(input.AsSpan(0, n), "input_0.pb"); }
            catch (InvalidDataException e) { Assert.Contains("input_0.pb", e.Message); }
        }
    }

}

/// <summary>
/// A session's buffers add up against RecurrentOptions.MemoryBudget, not each buffer alone. Lowers the process-wide
/// budget for its duration, so it runs alone (a non-parallel collection runs after every other test).
/// </summary>
[CollectionDefinition(nameof(OnnxSessionBudgetTests), DisableParallelization = true)]
public class OnnxSessionBudgetCollection;

[Collection(nameof(OnnxSessionBudgetTests)), Trait("Category", "Onnx")]
public class OnnxSessionBudgetTests
{
    [Fact]
    public void A_chain_of_copies_fails_when_the_session_total_passes_the_budget_before_allocating_it()
    {
        var bytes = OnnxTestModel.Model(g =>
        {
            OnnxTestModel.Input(g, "X", OnnxDataType.Float, -1);
            for (int i = 0; i < 8; i++) OnnxTestModel.Node(g, "Identity", [i == 0 ? "X" : $"y{i - 1}"], [$"y{i}"]);
            OnnxTestModel.Output(g, "y7", OnnxDataType.Float);
        });
        long saved = Layers.RecurrentOptions.MemoryBudget;
        try
        {
            Layers.RecurrentOptions.MemoryBudget = 64L << 20;
            var session = OnnxModel.Load(bytes, "chain").CreateSession();
            int n = (16 << 20) / sizeof(float);                  // 16 MiB per copy: every buffer alone is well under 64 MiB
            var x = new float[n];
            session.SetInput(0, x, [n]);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<InvalidDataException>(() => session.Run());
            Assert.Contains("in all, above RecurrentOptions.MemoryBudget", e.Message);
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before <= (64L << 20), "allocated past the budget before failing");
            Assert.True(session.BufferBytes <= 64L << 20);
        }
        finally { Layers.RecurrentOptions.MemoryBudget = saved; }
    }
}
