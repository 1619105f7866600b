using BenchmarkDotNet.Attributes;
using RnnSimd.Layers;

namespace RnnSimd.Benchmarks;

/// <summary>
/// Training workloads, float32, named as in the issue tracker:
/// T1 train-step: char-LM, one-hot 65 in, 1 layer hidden 256, Linear(256, 65), softmax cross-entropy over T = 64 x B = 32,
/// full BPTT, Adam step. T2 train-step-large: hidden 512, B = 64, T = 32.
/// </summary>
[Config(typeof(WorkloadConfig))]
public class TrainingBenchmarks
{
    [Params("lstm", "gru", "rnn_tanh")]
    public string Cell { get; set; } = "";

    private CharLmTrainStep _t1 = null!, _t2 = null!;

    [GlobalSetup]
    public void Setup()
    {
        var cell = RecurrentOptions.ParseCell(Cell);
        _t1 = new CharLmTrainStep(cell, 256, 64, 32);
        _t2 = new CharLmTrainStep(cell, 512, 32, 64);
    }

    /// <summary>T1 train-step.</summary>
    [Benchmark(Description = "T1 train-step")]
    public double T1() => _t1.Step();

    /// <summary>T2 train-step-large.</summary>
    [Benchmark(Description = "T2 train-step-large")]
    public double T2() => _t2.Step();
}

/// <summary>
/// The two 2-thread schemes of T1 / T2 side by side (issue 8, item 4): "gemm" splits each large GEMM and batched step
/// across 2 threads (what CharLmTrainStep does by default), "data" runs two shards of B/2 sequences on one thread each
/// and sums their gradient arenas (<see cref="CharLmTrainStep.UseDataParallel"/>). Both at Parallelism.MaxThreads = 2.
/// </summary>
[Config(typeof(WorkloadConfig))]
public class TrainingSchemeBenchmarks
{
    [Params("lstm", "gru", "rnn_tanh")]
    public string Cell { get; set; } = "";

    [Params("gemm", "data")]
    public string Scheme { get; set; } = "";

    private CharLmTrainStep _t1 = null!, _t2 = null!;

    [GlobalSetup]
    public void Setup()
    {
        RnnSimd.Kernels.Parallelism.MaxThreads = 2;
        var cell = RecurrentOptions.ParseCell(Cell);
        _t1 = new CharLmTrainStep(cell, 256, 64, 32);
        _t2 = new CharLmTrainStep(cell, 512, 32, 64);
        if (Scheme == "data") { _t1.UseDataParallel(); _t2.UseDataParallel(); }
    }

    [Benchmark(Description = "T1 train-step, 2 threads")]
    public double T1() => _t1.Step();

    [Benchmark(Description = "T2 train-step-large, 2 threads")]
    public double T2() => _t2.Step();
}
