using RnnSimd.Layers;
using RnnSimd.Onnx;
using RnnSimd.Tests.Cells;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Onnx;

/// <summary>
/// Export then import: the exported graph (torch.onnx.export's form) run by <see cref="OnnxModel"/> gives bitwise what
/// the network's own inference Forward gives (the same weights through the same kernels; the ops between layers only
/// move data). ONNX Runtime on the same files is tested in tests/RnnSimd.OnnxRuntimeTests.
/// </summary>
[Trait("Category", "Onnx")]
public class OnnxExportTests
{
    public static TheoryData<string, int, bool, bool> Networks()
    {
        var d = new TheoryData<string, int, bool, bool>();
        foreach (var cell in new[] { "lstm", "lstm_peep", "lstm_peep_coupled", "lstm_onnx", "lstm_onnx_peep_coupled", "gru", "gru_orig", "gru_onnx",
                     "gru_orig_onnx", "rnn_tanh", "rnn_relu", "rnn_onnx" })
        {
            d.Add(cell, 1, false, false);
            d.Add(cell, 2, true, false);
            d.Add(cell, 1, false, true);
        }
        return d;
    }

    [Theory, MemberData(nameof(Networks))]
    public void Export_then_import_is_bitwise_the_network(string cell, int layers, bool bidi, bool reverse)
    {
        var o = RecurrentContractTests.Options(cell, layers, input: 6, hidden: 9, bidi: bidi) with { Reverse = reverse };
        var net = new RecurrentNetwork(o, 21);
        var model = OnnxModel.Load(OnnxExport.ToBytes(net), "exported");
        Assert.Equal(OnnxExport.Opset, model.Opset);
        Assert.Equal(["input", "h0", .. o.Cell == CellType.Lstm ? new[] { "c0" } : []], model.Inputs.Select(i => i.Name));
        const int T = 5, B = 3;
        int LD = layers * o.Directions, H = o.HiddenSize;
        bool lstm = o.Cell == CellType.Lstm;
        float[] x = Data(1, T * B * o.InputSize), h0 = Data(2, LD * B * H), c0 = lstm ? Data(3, LD * B * H) : [];
        float[] y = new float[T * B * o.Directions * H], hN = new float[h0.Length], cN = new float[c0.Length];
        net.Forward(x, T, B, h0, c0, y, hN, cN, net.CreateInferenceWorkspace(T, B));

        var session = model.CreateSession();
        session.SetInput(0, x, [T, B, o.InputSize]);
        session.SetInput(1, h0, [LD, B, H]);
        if (lstm) session.SetInput(2, c0, [LD, B, H]);
        session.Run();
        Assert.Equal([T, B, o.Directions * H], session.OutputShape(0).ToArray());
        Assert.True(session.OutputFloats(0).SequenceEqual(y), "output");
        Assert.True(session.OutputFloats(1).SequenceEqual(hN), "hn");
        if (lstm) Assert.True(session.OutputFloats(2).SequenceEqual(cN), "cn");

        // Import of the exported file into one network (the torch-style stack): the same options and parameters.
        var back = model.ToNetwork();
        Assert.Equal(o with { Bias = true }, back.Options with { Bias = true });
        Assert.Equal(net.Parameters.Data, back.Parameters.Data);
    }

    [Fact]
    public void A_projection_is_refused_by_name()
    {
        var net = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 3, 8, ProjSize: 4));
        Assert.Contains("proj", Assert.Throws<NotSupportedException>(() => OnnxExport.ToBytes(net)).Message);
    }

    [Fact]
    public void Session_runs_allocate_nothing_after_the_first()
    {
        var o = new RecurrentOptions(CellType.Lstm, 8, 16, 2, Bidirectional: true);
        var model = OnnxModel.Load(OnnxExport.ToBytes(new RecurrentNetwork(o, 3)));
        var session = model.CreateSession();
        const int T = 6, B = 2;
        float[] x = Data(1, T * B * 8), h0 = Data(2, 4 * B * 16), c0 = Data(3, 4 * B * 16);
        long[] xs = [T, B, 8], hs = [4, B, 16];
        void RunOnce()
        {
            session.SetInput(0, x, xs);
            session.SetInput(1, h0, hs);
            session.SetInput(2, c0, hs);
            session.Run();
        }
        RunOnce();
        RunOnce();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++) RunOnce();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}

/// <summary>Stacked layers fused into one network give bitwise what the nodes give one by one.</summary>
[Trait("Category", "Onnx")]
public class OnnxStackFusionTests
{
    [Theory]
    [InlineData("spec/graph_torch_lstm_2layer_bidirectional", 2)]
    [InlineData("spec/graph_torch_lstm_2layer_forward", 2)]
    [InlineData("spec/graph_torch_gru_2layer_bidirectional", 2)]
    [InlineData("spec/graph_torch_lstm_2layer_bidirectional_head", 2)]
    [InlineData("exported", 3)]
    public void Fused_stack_is_bitwise_the_nodes_one_by_one(string name, int layers)
    {
        byte[] bytes = name == "exported"
            ? OnnxExport.ToBytes(new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 4, 8, 3, Bidirectional: true), 2))
            : File.ReadAllBytes(Path.Combine(OnnxBackendTests.OnnxDir, name, "model.onnx"));
        var fused = OnnxModel.Load(bytes, name, null, fuse: true);
        var plain = OnnxModel.Load(bytes, name, null, fuse: false);
        var stack = Assert.Single(fused.Ops.OfType<StackOp>());
        Assert.Equal(layers, stack.Network.Options.NumLayers);
        Assert.Empty(fused.Ops.OfType<RecurrentOp>());
        Assert.Equal(layers, plain.Ops.OfType<RecurrentOp>().Count());
        Assert.Contains("fused", fused.Describe());
        // The model keeps one copy of the weights: the stack's network, not the nodes' too.
        Assert.Equal(layers, Assert.Single(fused.Networks).Options.NumLayers);
        Assert.Equal(layers, plain.Networks.Count);
        Assert.All(plain.Ops.OfType<RecurrentOp>(), r => Assert.False(r.Fused));
        Assert.Equal(plain.ToNetwork().Parameters.Data, fused.ToNetwork().Parameters.Data);
        var inputs = fused.Inputs.Select((info, k) =>
        {
            var dims = info.Shape!.Select((d, i) => d.Value >= 0 ? d.Value : i == 0 ? 6 : 2).ToArray();
            return OnnxTensor.FromFloats(info.Name, Data(k + 1, (int)dims.Aggregate(1L, (p, d) => p * d)), dims);
        }).ToList();
        var a = fused.CreateSession().Run(inputs);
        var b = plain.CreateSession().Run(inputs);
        for (int k = 0; k < a.Length; k++)
        {
            Assert.Equal(b[k].Dims, a[k].Dims);
            Assert.True(a[k].Floats!.AsSpan().SequenceEqual(b[k].Floats), $"output {k}");
        }
    }
}
