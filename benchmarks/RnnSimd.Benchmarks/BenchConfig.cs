using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using RnnSimd.Kernels;

namespace RnnSimd.Benchmarks;

/// <summary>
/// One job per kernel set, chosen through the library's own override (RNNSIMD_KERNELS), the scalar set as baseline.
/// MemoryDiagnoser always on; GitHub markdown and full JSON exported. RNNSIMD_BENCH_MODE=quick shortens the runs
/// (for smoke checks); the default is BenchmarkDotNet's own adaptive iteration counts.
/// </summary>
public class KernelSetConfig : ManualConfig
{
    public KernelSetConfig()
    {
        bool quick = Environment.GetEnvironmentVariable("RNNSIMD_BENCH_MODE") == "quick";
        foreach (var set in KernelSet.All.Where(s => s.IsSupported).Reverse())
        {
            var job = Job.Default
                .WithEnvironmentVariables(new EnvironmentVariable(KernelSet.EnvironmentVariable, set.Name))
                .WithId(set.Name);
            if (quick) job = job.WithWarmupCount(3).WithIterationCount(8).WithLaunchCount(1);
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
/// RNNSIMD_BENCH_MODE=quick shortens the runs.
/// </summary>
public class WorkloadConfig : ManualConfig
{
    public WorkloadConfig()
    {
        bool quick = Environment.GetEnvironmentVariable("RNNSIMD_BENCH_MODE") == "quick";
        var job = Job.Default.WithId(KernelSet.Default.Name);
        if (quick) job = job.WithWarmupCount(3).WithIterationCount(8).WithLaunchCount(1);
        AddJob(job);
        AddDiagnoser(MemoryDiagnoser.Default);
        AddExporter(MarkdownExporter.GitHub, JsonExporter.Full);
        AddColumn(StatisticColumn.Median, StatisticColumn.P95);
        WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
    }
}
