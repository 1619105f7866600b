using BenchmarkDotNet.Attributes;
using RnnSimd.Layers;

namespace RnnSimd.Benchmarks;

/// <summary>
/// Inference workloads, float32, single thread, named as in the issue tracker:
/// S1 stream-step: one step, batch 1, input 64, hidden 256, state carried from step to step.
/// S2 seq-infer: batch 1, T = 128, input 64, hidden 256, one call.
/// S3 batch-infer: T = 64, B = 32, input 65, hidden 256, one call.
/// S2 and S3 run in inference mode (a workspace that records nothing, as LibTorch's no_grad and ONNX Runtime).
/// S4 serve: 64 independent batch-1 streams (input 64, hidden 256), each one step per tick, by one multi-stream stepper tick.
/// </summary>
[Config(typeof(WorkloadConfig))]
public class InferenceBenchmarks
{
    [Params("lstm", "gru", "rnn_tanh")]
    public string Cell { get; set; } = "";

    private RecurrentNetwork _s1 = null!, _s2 = null!, _s3 = null!;
    private RecurrentState _state = null!;
    private RecurrentState[] _streams = [];
    private MultiStreamStepper _stepper = null!;
    private float[] _x4 = [], _y4 = [];
    private SequenceWorkspace _ws2 = null!, _ws3 = null!;
    private float[] _x1 = [], _y1 = [], _x2 = [], _y2 = [], _x3 = [], _y3 = [], _h2 = [], _h3 = [];

    [GlobalSetup]
    public void Setup()
    {
        var cell = RecurrentOptions.ParseCell(Cell);
        _s1 = new RecurrentNetwork(new RecurrentOptions(cell, 64, 256), 1);
        _state = _s1.CreateState(1);
        _x1 = BenchData.Uniform(64, 2);
        _y1 = new float[256];
        _s2 = _s1;
        _ws2 = _s2.CreateInferenceWorkspace(128, 1);
        _x2 = BenchData.Uniform(128 * 64, 3);
        _y2 = new float[128 * 256];
        _h2 = new float[256];
        _s3 = new RecurrentNetwork(new RecurrentOptions(cell, 65, 256), 4);
        _ws3 = _s3.CreateInferenceWorkspace(64, 32);
        _x3 = BenchData.Uniform(64 * 32 * 65, 5);
        _y3 = new float[64 * 32 * 256];
        _h3 = new float[32 * 256];
        _streams = Enumerable.Range(0, 64).Select(_ => _s1.CreateState(1)).ToArray();
        _stepper = new MultiStreamStepper(_s1, 64);
        _x4 = BenchData.Uniform(64 * 64, 8);
        _y4 = new float[64 * 256];
    }

    /// <summary>S1 stream-step.</summary>
    [Benchmark(Description = "S1 stream-step")]
    public void S1() => _s1.Step(_state, _x1, _y1);

    /// <summary>S2 seq-infer.</summary>
    [Benchmark(Description = "S2 seq-infer")]
    public void S2() => _s2.Forward(_x2, 128, 1, [], [], _y2, _h2, [], _ws2);

    /// <summary>S3 batch-infer.</summary>
    [Benchmark(Description = "S3 batch-infer")]
    public void S3() => _s3.Forward(_x3, 64, 32, [], [], _y3, _h3, [], _ws3);

    /// <summary>S4 serve: one tick of 64 streams.</summary>
    [Benchmark(Description = "S4 serve")]
    public void S4() => _stepper.Step(_streams, _x4, _y4);
}

/// <summary>
/// S1 and S2 of <see cref="InferenceBenchmarks"/> (same shapes, seeds and data) on the float32 network converted by
/// <see cref="RecurrentNetwork.ToInference"/> to bf16 or int8 weights (issue 11). Hot path like the float32 ones: the
/// CI allocation gate (benchmarks/alloc-gate.sh, filter '*InferenceBenchmarks*') runs them and requires 0 bytes per
/// operation. The figures compared with the peers come from benchmarks/peers.sh (RnnSimd.Peers, parameter Precision).
/// </summary>
[Config(typeof(WorkloadConfig))]
public class ReducedInferenceBenchmarks
{
    [Params("lstm", "gru", "rnn_tanh")]
    public string Cell { get; set; } = "";

    [Params("bf16", "int8")]
    public string Precision { get; set; } = "";

    private RecurrentNetwork _net = null!;
    private RecurrentState _state = null!;
    private SequenceWorkspace _ws = null!;
    private float[] _x1 = [], _y1 = [], _x2 = [], _y2 = [], _h2 = [];

    [GlobalSetup]
    public void Setup()
    {
        var float32 = new RecurrentNetwork(new RecurrentOptions(RecurrentOptions.ParseCell(Cell), 64, 256), 1);
        _net = float32.ToInference(PrecisionNames.Parse(Precision));
        _state = _net.CreateState(1);
        _x1 = BenchData.Uniform(64, 2);
        _y1 = new float[256];
        _ws = _net.CreateInferenceWorkspace(128, 1);
        _x2 = BenchData.Uniform(128 * 64, 3);
        _y2 = new float[128 * 256];
        _h2 = new float[256];
    }

    /// <summary>S1 stream-step.</summary>
    [Benchmark(Description = "S1 stream-step")]
    public void S1() => _net.Step(_state, _x1, _y1);

    /// <summary>S2 seq-infer.</summary>
    [Benchmark(Description = "S2 seq-infer")]
    public void S2() => _net.Forward(_x2, 128, 1, [], [], _y2, _h2, [], _ws);
}
