using System.Buffers.Binary;
using RnnSimd.IO;
using RnnSimd.Layers;
using RnnSimd.Tests.Cells;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.IO;

/// <summary>
/// Reduced-precision state_dicts (issue 11, item 4): what <see cref="StateDict.Save"/> writes for a bf16 or int8 network
/// (dtypes, shapes, names, metadata), and that <see cref="StateDict.Read(string, RnnSimd.Kernels.KernelSet?)"/> gives back
/// a network computing bitwise what the saved one computes; float32 files still load and convert; saving is atomic.
/// </summary>
[Trait("Category", "IO")]
public sealed class ReducedStateDictTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-reduced-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, Precision> Cases()
    {
        var d = new TheoryData<string, Precision>();
        foreach (var cell in new[] { "lstmp", "lstm_peep", "gru", "gru_orig", "rnn_tanh", "rnn_relu" })
            foreach (var p in new[] { Precision.Int8, Precision.BFloat16 }) d.Add(cell, p);
        return d;
    }

    private static RecurrentNetwork Reduced(RecurrentOptions o, Precision p, ulong seed = 7) => new RecurrentNetwork(o, seed).ToInference(p);

    /// <summary>Outputs then every layer's h (and c) after each of <paramref name="steps"/> batch-1 steps, for bitwise comparison.</summary>
    internal static float[] StepTrace(RecurrentNetwork net, int steps = 6, int seed = 11)
    {
        var o = net.Options;
        var state = net.CreateState();
        var y = new float[o.OutputHidden];
        var trace = new List<float>();
        for (int t = 0; t < steps; t++)
        {
            net.Step(state, Data(seed + t, o.InputSize, 2f), y);
            trace.AddRange(y);
            for (int l = 0; l < o.NumLayers; l++)
            {
                trace.AddRange(state.Hidden(l).ToArray());
                if (o.Cell == CellType.Lstm) trace.AddRange(state.Cell(l).ToArray());
            }
        }
        return trace.ToArray();
    }

    private static void AssertSameStoredWeights(RecurrentNetwork expected, RecurrentNetwork actual)
    {
        var e = expected.GetReducedWeights().OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var a = actual.GetReducedWeights().OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        Assert.Equal(e.Select(t => t.ToString()), a.Select(t => t.ToString()));
        for (int i = 0; i < e.Count; i++)
        {
            Assert.True(e[i].Codes.SequenceEqual(a[i].Codes), e[i].Name);
            AssertBitwiseEqual(e[i].Name + " scales", e[i].Scales, a[i].Scales);
            Assert.True(e[i].Bf16.SequenceEqual(a[i].Bf16), e[i].Name);
        }
    }

    [Theory, MemberData(nameof(Cases))]
    public void Save_then_read_gives_a_network_stepping_bitwise_as_the_saved_one(string cell, Precision p)
    {
        var o = RecurrentContractTests.Options(cell, layers: 2, input: 17, hidden: 33);
        var q = Reduced(o, p);
        string path = Path.Combine(_dir, $"{cell}-{p.Name()}.safetensors");
        StateDict.Save(q, path);
        var r = StateDict.Read(path);

        Assert.Equal(p, r.Precision);
        Assert.Equal(o, r.Options);
        Assert.Equal(q.StepWeightBytes, r.StepWeightBytes);
        AssertSameStoredWeights(q, r);
        AssertBitwiseEqual("parameters (dequantized)", q.Parameters.Data, r.Parameters.Data);
        AssertBitwiseEqual("Step outputs and states", StepTrace(q), StepTrace(r));
    }

    /// <summary>A bidirectional network cannot Step; its file round-trips bitwise and inference Forward agrees bitwise.</summary>
    [Theory]
    [InlineData(Precision.Int8)]
    [InlineData(Precision.BFloat16)]
    public void A_bidirectional_network_round_trips_its_file_bitwise(Precision p)
    {
        var o = RecurrentContractTests.Options("lstmp", layers: 2, input: 9, hidden: 20, bidi: true);
        var q = Reduced(o, p);
        string path = Path.Combine(_dir, "bidi.safetensors");
        StateDict.Save(q, path);
        var r = StateDict.Read(path);
        Assert.Equal(o, r.Options);
        AssertSameStoredWeights(q, r);
        Assert.Contains(SafeTensorsFile.Read(path).Tensors, t => t.Name == "weight_hr_l1_reverse");

        const int T = 5;
        float[] x = Data(3, T * o.InputSize);
        float[] Run(RecurrentNetwork net)
        {
            var y = new float[T * o.Directions * o.OutputHidden];
            net.Forward(x, T, 1, [], [], y, [], [], net.CreateInferenceWorkspace(T, 1));
            return y;
        }
        AssertBitwiseEqual("inference Forward output", Run(q), Run(r));
    }

    [Theory]
    [InlineData(Precision.Int8)]
    [InlineData(Precision.BFloat16)]
    public void The_file_holds_each_matrix_in_its_stored_dtype_and_everything_else_in_F32(Precision p)
    {
        var o = new RecurrentOptions(CellType.Lstm, 5, 6, 2, ProjSize: 3, Peepholes: true);
        var q = Reduced(o, p);
        string path = Path.Combine(_dir, "m.safetensors");
        StateDict.Save(q, path);
        var f = SafeTensorsFile.Read(path);

        Assert.Equal(p.Name(), f.Metadata[StateDict.PrecisionKey]);
        Assert.Equal(o, StateDict.ReadOptions(f.Metadata));
        var expected = new List<string>();
        foreach (var e in q.Parameters.Entries)
        {
            var t = f.GetTensor(e.Name);
            Assert.Equal(e.Shape.Select(d => (long)d), t.Shape);
            bool matrix = RecurrentNetwork.IsWeightMatrix(e.Name);
            Assert.Equal(!matrix ? SafeTensorsDType.F32 : p == Precision.Int8 ? SafeTensorsDType.I8 : SafeTensorsDType.BF16, t.DType);
            expected.Add(e.Name);
            if (matrix && p == Precision.Int8)
            {
                var s = f.GetTensor(e.Name + StateDict.ScaleSuffix);
                Assert.Equal(SafeTensorsDType.F32, s.DType);
                Assert.Equal([(long)e.Shape[0]], s.Shape);
                expected.Add(s.Name);
            }
        }
        Assert.Equal(expected.Order(StringComparer.Ordinal), f.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        // Data largest element first: every tensor aligned to its element size.
        Assert.All(f.Tensors, t => Assert.Equal(0, (f.DataStart + t.Begin) % (t.DType.BitSize() / 8)));

        // The stored values are those the network computes with: w = q * scale, or the bf16 widened.
        foreach (var w in q.GetReducedWeights())
        {
            var bytes = f.GetBytes(w.Name).Span;
            float[] dequantized = new float[w.Rows * w.Cols];
            w.Dequantize(dequantized);
            AssertBitwiseEqual(w.Name, dequantized, q.Parameters[w.Name]);
            if (p == Precision.Int8)
            {
                Assert.True(bytes.SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.Codes)), w.Name);
                AssertBitwiseEqual(w.Name + StateDict.ScaleSuffix, w.Scales, f.ReadFloats(w.Name + StateDict.ScaleSuffix));
            }
            else
            {
                for (int i = 0; i < w.Bf16.Length; i++) Assert.Equal(w.Bf16[i], BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]));
            }
        }
    }

    [Fact]
    public void A_float32_state_dict_still_loads_and_converts()
    {
        var o = RecurrentContractTests.Options("lstmp", layers: 2, input: 8, hidden: 12);
        var net = new RecurrentNetwork(o, 3);
        string path = Path.Combine(_dir, "f32.safetensors");
        StateDict.Save(net, path);
        var f = SafeTensorsFile.Read(path);
        Assert.False(f.Metadata.ContainsKey(StateDict.PrecisionKey)); // float32 files are as before
        Assert.All(f.Tensors, t => Assert.Equal(SafeTensorsDType.F32, t.DType));

        var r = StateDict.Read(path);
        Assert.Equal(Precision.Float32, r.Precision);
        AssertBitwiseEqual("parameters", net.Parameters.Data, r.Parameters.Data);
        foreach (var p in new[] { Precision.Int8, Precision.BFloat16 })
            AssertBitwiseEqual($"{p.Name()} conversion", StepTrace(net.ToInference(p)), StepTrace(r.ToInference(p)));

        // "precision": "float32" said explicitly reads the same.
        var meta = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        meta[StateDict.PrecisionKey] = "float32";
        string explicitPath = Path.Combine(_dir, "f32-explicit.safetensors");
        SafeTensorsWriter.Write(explicitPath, StateDict.Tensors(net), meta);
        AssertBitwiseEqual("parameters", net.Parameters.Data, StateDict.Read(explicitPath).Parameters.Data);
    }

    [Fact]
    public void A_failed_save_leaves_the_existing_file_as_it_was()
    {
        var q = Reduced(new RecurrentOptions(CellType.Gru, 4, 5), Precision.Int8);
        string path = Path.Combine(_dir, "keep.safetensors");
        StateDict.Save(q, path);
        byte[] before = File.ReadAllBytes(path);
        var bad = new Dictionary<string, string> { ["note"] = "\ud800" }; // a lone surrogate cannot be written
        Assert.Throws<ArgumentException>(() => StateDict.Save(Reduced(q.Options, Precision.BFloat16, 9), path, bad));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    [Fact]
    public void The_writer_places_the_data_largest_element_first_and_keeps_each_dtype_in_order()
    {
        using var ms = new MemoryStream();
        SafeTensorsWriter.WriteTensors(ms,
        [
            SafeTensor.I8("a", [3], new sbyte[] { -127, 0, 127 }),
            SafeTensor.F32("b", [2], new[] { 1.5f, -2f }),
            SafeTensor.BF16("c", [1], new ushort[] { 0x3F80 }),
            SafeTensor.F32("d", [1], new[] { 3f }),
            SafeTensor.I8("e", [1], new sbyte[] { 5 }),
        ]);
        var f = SafeTensorsFile.Read(ms.ToArray());
        Assert.Equal(["b", "d", "c", "a", "e"], f.Tensors.Select(t => t.Name));
        Assert.Equal([1.5f, -2f], f.ReadFloats("b"));
        Assert.Equal([1f], f.ReadFloats("c"));
        Assert.Equal(new byte[] { 0x81, 0, 127 }, f.GetBytes("a").ToArray());
        Assert.Equal(SafeTensorsDType.I8, f.GetTensor("e").DType);
        Assert.Contains("has 2 I8 values, expected shape [3] = 3", Assert.Throws<ArgumentException>(() =>
            SafeTensorsWriter.WriteTensors(new MemoryStream(), [SafeTensor.I8("x", [3], new sbyte[2])])).Message);
        Assert.Contains("default SafeTensor", Assert.Throws<ArgumentException>(() =>
            SafeTensorsWriter.WriteTensors(new MemoryStream(), [default(SafeTensor)])).Message);
    }
}
