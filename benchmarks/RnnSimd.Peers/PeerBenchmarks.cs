using BenchmarkDotNet.Attributes;
using RnnSimd.Layers;
using RnnSimd.Peers.Runners;

namespace RnnSimd.Peers;

/// <summary>
/// One class per workload; each case is (Cell, Threads, Impl), and for S1 and S2 also the weights' Precision
/// (<see cref="PrecisionPeerBenchmark"/>). BenchmarkDotNet runs every case in its own process,
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

    /// <summary>The weights' precision: float32 unless the class has a Precision parameter.</summary>
    private protected virtual Precision WeightPrecision => Precision.Float32;

    [GlobalSetup]
    public void Setup() => _runner = PeerCheck.CreateChecked(Workload, Cell, Impl, Threads, WeightPrecision);

    [GlobalCleanup]
    public void Cleanup() => _runner?.Dispose();

    private protected void RunOnce() => _runner!.Run();
}

/// <summary>
/// A workload also run at reduced weight precision (issue 11): parameter Precision = float32, bf16, int8 ("float32" is
/// the float32 network itself; the others its <see cref="RecurrentNetwork.ToInference"/> conversion). Combinations no
/// implementation has (LibTorch at bf16, a 2-thread reduced case, ONNX Runtime's int8 GRU) are left out by
/// <see cref="PeerConfig"/>'s filter (<see cref="Implementations.Supports"/>), so they neither run nor show as NA.
/// </summary>
public abstract class PrecisionPeerBenchmark : PeerBenchmark
{
    [ParamsSource(nameof(PrecisionValues))]
    public string Precision { get; set; } = "float32";

    public IEnumerable<string> PrecisionValues => Implementations.PrecisionsFor(Workload).Select(p => p.Name());

    private protected override Layers.Precision WeightPrecision => PrecisionNames.Parse(Precision);
}

[Config(typeof(PeerConfig))]
public class StreamStepBenchmarks : PrecisionPeerBenchmark
{
    private protected override Workload Workload => Workload.S1;

    [Benchmark(Description = "S1 stream-step")]
    public void S1() => RunOnce();
}

[Config(typeof(PeerConfig))]
public class SeqInferBenchmarks : PrecisionPeerBenchmark
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
