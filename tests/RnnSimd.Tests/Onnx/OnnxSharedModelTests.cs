using RnnSimd.Layers;
using RnnSimd.Onnx;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Onnx;

/// <summary>
/// One <see cref="OnnxModel"/> shared by threads, each with its own session, started at once on a freshly loaded model
/// (first runs plan concurrently), different input shapes per thread: bitwise what one thread gives on a second model
/// loaded from the same bytes.
/// </summary>
[Trait("Category", "Onnx")]
public class OnnxSharedModelTests
{
    private const int Threads = 4;

    [Theory]
    [InlineData("spec/graph_torch_lstm_2layer_bidirectional_head")]
    [InlineData("spec/gru_layout1_bidirectional_seqlens_initial_states")]
    [InlineData("exported")]
    public void Threads_running_their_own_sessions_match_one_thread(string name)
    {
        byte[] bytes = name == "exported"
            ? OnnxExport.ToBytes(new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 5, 64, 2, Bidirectional: true), 4))
            : File.ReadAllBytes(Path.Combine(OnnxBackendTests.OnnxDir, name, "model.onnx"));
        var shared = OnnxModel.Load(bytes, name);
        // Per thread: its own T and B, so the threads plan different shapes at the same time.
        List<OnnxTensor> Inputs(OnnxModel m, int thread)
        {
            int t = 2 + thread, b = 1 + thread % 3;
            return m.Inputs.Select((info, k) =>
            {
                var dims = info.Shape!.Select((d, i) => d.Value >= 0 ? d.Value : i == 0 ? t : b).ToArray();
                if (info.ElementType != OnnxDataType.Float)
                    return OnnxTensor.FromIntegers(info.Name, info.ElementType, Enumerable.Range(0, (int)dims[0]).Select(j => (long)(1 + j % t)).ToArray(), dims);
                return OnnxTensor.FromFloats(info.Name, Data(10 * thread + k, (int)dims.Aggregate(1L, (p, d) => p * d)), dims);
            }).ToList();
        }
        var results = new OnnxTensor[Threads][];
        using var start = new Barrier(Threads);
        var errors = new Exception?[Threads];
        var threads = Enumerable.Range(0, Threads).Select(i => new Thread(() =>
        {
            try
            {
                var session = shared.CreateSession();
                var inputs = Inputs(shared, i);
                start.SignalAndWait();
                session.Run(inputs);
                results[i] = session.Run(inputs); // the second run reuses the plan
            }
            catch (Exception e) { errors[i] = e; }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        foreach (var e in errors) if (e is not null) throw new AggregateException(e);

        var alone = OnnxModel.Load(bytes, name);
        var session1 = alone.CreateSession();
        for (int i = 0; i < Threads; i++)
        {
            var expected = session1.Run(Inputs(alone, i));
            for (int k = 0; k < expected.Length; k++)
            {
                Assert.Equal(expected[k].Dims, results[i][k].Dims);
                Assert.True(expected[k].Floats!.AsSpan().SequenceEqual(results[i][k].Floats), $"thread {i} output {k}");
            }
        }
    }
}
