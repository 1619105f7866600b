using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using Perfolizer.Horology;
using RnnSimd.Kernels;

namespace RnnSimd.Benchmarks;

/// <summary>
/// RNNSIMD_BENCH_MODE: "quick" (3 warm-up + 8 measured iterations, 1 launch: smoke and trend checks), "gate"
/// (1 warm-up + 3 iterations of about 100 ms, 1 launch, tiered JIT off: enough for MemoryDiagnoser's bytes per
/// operation, which is all the CI allocation gate reads; its times mean nothing), anything else: BenchmarkDotNet's
/// adaptive defaults. Tiered JIT is off in the gate because a method promoted to tier 1 while the diagnoser counts
/// can put a few hundred bytes of the runtime's own on the measured thread (BenchmarkDotNet issue 1542): seen here
/// as 10 B/op on S2 lstm in one run of three, which would make a 0-byte gate flaky. The forced full GC before each
/// iteration is off in the gate too: after it, re-registering finalizers (the shared ArrayPool's Gen2GcCallback, which
/// trims and enumerates a ConditionalWeakTable) run on the finalizer thread while the iteration is being counted, and
/// MemoryDiagnoser counts every thread (GC.GetTotalAllocatedBytes): 672 bytes after every forced GC in a process
/// that has used ArrayPool.Shared, measured here; seen by the gate as 1 B/op on S2 rnn_tanh (about 270 operations
/// per iteration). The hot paths allocate nothing, so without the forced GC no collection happens while counting.
/// </summary>
internal static class BenchMode
{
    public static string Name => Environment.GetEnvironmentVariable("RNNSIMD_BENCH_MODE") ?? "full";

    public static Job Apply(Job job) => Name switch
    {
        "quick" => job.WithWarmupCount(3).WithIterationCount(8).WithLaunchCount(1),
        "gate" => job.WithWarmupCount(1).WithIterationCount(3).WithLaunchCount(1)
            .WithIterationTime(TimeInterval.FromMilliseconds(100))
            .WithEnvironmentVariable("DOTNET_TieredCompilation", "0").WithGcForce(false),
        _ => job,
    };
}

/// <summary>
/// One job per kernel set, chosen through the library's own override (RNNSIMD_KERNELS), the scalar set as baseline.
/// MemoryDiagnoser always on; GitHub markdown and full JSON exported. RNNSIMD_BENCH_MODE shortens the runs
/// (<see cref="BenchMode"/>); the default is BenchmarkDotNet's own adaptive iteration counts.
/// </summary>
public class KernelSetConfig : ManualConfig
{
    public KernelSetConfig()
    {
        foreach (var set in KernelSet.All.Where(s => s.IsSupported).Reverse())
        {
            var job = BenchMode.Apply(Job.Default
                .WithEnvironmentVariables(new EnvironmentVariable(KernelSet.EnvironmentVariable, set.Name))
                .WithId(set.Name));
            if (set == KernelSet.Scalar) job = job.AsBaseline();
            AddJob(job);
        }
        AddDiagnoser(MemoryDiagnoser.Default);
        AddExporter(MarkdownExporter.GitHub, JsonExporter.Full);
        AddColumn(StatisticColumn.Median, StatisticColumn.P95);
        WithSummaryStyle(SummaryStyle.Default.WithRatioStyle(RatioStyle.Trend));
        WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
    }
}

/// <summary>
/// The workload benchmarks: the default (widest) kernel set only, MemoryDiagnoser on, GitHub markdown + full JSON.
/// RNNSIMD_BENCH_MODE shortens the runs (<see cref="BenchMode"/>; "gate" is what benchmarks/alloc-gate.sh uses).
/// </summary>
public class WorkloadConfig : ManualConfig
{
    public WorkloadConfig()
    {
        var job = BenchMode.Apply(Job.Default.WithId(KernelSet.Default.Name));
        AddJob(job);
        AddDiagnoser(MemoryDiagnoser.Default);
        AddExporter(MarkdownExporter.GitHub, JsonExporter.Full);
        AddColumn(StatisticColumn.Median, StatisticColumn.P95);
        WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
    }
}
