using BenchmarkDotNet.Attributes;
using RnnSimd.Peers.Runners;

namespace RnnSimd.Peers;

/// <summary>
/// One class per workload; each case is (Cell, Threads, Impl). BenchmarkDotNet runs every case in its own process,
/// so torch.set_num_threads (process-wide) applies to that case alone. [GlobalSetup] builds the implementation with
/// RnnSimd's weights and checks it against RnnSimd's reference (<see cref="PeerCheck"/>), throwing on a mismatch,
/// so nothing is timed that computes another function. The benchmark method is named by the workload id and
/// described by its title, as in the main project's InferenceBenchmarks.
/// </summary>
public abstract class PeerBenchmark
{
    private IRunner? _runner;

    [ParamsSource(nameof(CellValues))]
    public string Cell { get; set; } = "";

    [ParamsSource(nameof(ThreadValues))]
    public int Threads { get; set; }

    [ParamsSource(nameof(ImplValues))]
    public string Impl { get; set; } = "";

    public static IEnumerable<string> CellValues => Workload.Cells;
    public static IEnumerable<int> ThreadValues => Workload.ThreadCounts;
    public IEnumerable<string> ImplValues => Implementations.ImplsFor(Workload);

    private protected abstract Workload Workload { get; }

    [GlobalSetup]
    public void Setup() => _runner = PeerCheck.CreateChecked(Workload, Cell, Impl, Threads);

    [GlobalCleanup]
    public void Cleanup() => _runner?.Dispose();

    private protected void RunOnce() => _runner!.Run();
}

[Config(typeof(PeerConfig))]
public class StreamStepBenchmarks : PeerBenchmark
{
    private protected override Workload Workload => Workload.S1;

    [Benchmark(Description = "S1 stream-step")]
    public void S1() => RunOnce();
}

[Config(typeof(PeerConfig))]
public class SeqInferBenchmarks : PeerBenchmark
{
    private protected override Workload Workload => Workload.S2;

    [Benchmark(Description = "S2 seq-infer")]
    public void S2() => RunOnce();
}

[Config(typeof(PeerConfig))]
public class BatchInferBenchmarks : PeerBenchmark
{
    private protected override Workload Workload => Workload.S3;

    [Benchmark(Description = "S3 batch-infer")]
    public void S3() => RunOnce();
}

[Config(typeof(PeerConfig))]
public class TrainStepBenchmarks : PeerBenchmark
{
    private protected override Workload Workload => Workload.T1;

    [Benchmark(Description = "T1 train-step")]
    public void T1() => RunOnce();
}

[Config(typeof(PeerConfig))]
public class TrainStepLargeBenchmarks : PeerBenchmark
{
    private protected override Workload Workload => Workload.T2;

    [Benchmark(Description = "T2 train-step-large")]
    public void T2() => RunOnce();
}

[Config(typeof(PeerConfig))]
public class ServeBenchmarks : PeerBenchmark
{
    private protected override Workload Workload => Workload.S4;

    /// <summary>One tick: each of the 64 streams steps once (per stream-step: divide by 64).</summary>
    [Benchmark(Description = "S4 serve")]
    public void S4() => RunOnce();
}
