using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using RnnSimd.Layers;
using RnnSimd.Peers.Runners;

namespace RnnSimd.Peers;

/// <summary>
/// One job (RnnSimd's default kernel set), MemoryDiagnoser on, GitHub markdown + full JSON exported.
/// RNNSIMD_BENCH_MODE=quick: 3 warm-up + 8 measured iterations, 1 launch; otherwise BenchmarkDotNet's defaults.
/// The job passes CustomAfterMicrosoftCommonTargets=Weaken.targets to the build of BenchmarkDotNet's generated
/// project: that project gets its native libraries from the NuGet cache, not from our patched output, so the
/// GLIBCXX patch (see the .csproj) must run on its output too. A filter keeps only the (Cell, Threads, Impl, Precision)
/// combinations an implementation has (<see cref="Implementations.Supports"/>): BenchmarkDotNet's parameters form a
/// full cross product, and ONNX Runtime's int8 exists for the LSTM alone.
/// </summary>
public class PeerConfig : ManualConfig
{
    public PeerConfig()
    {
        bool quick = Environment.GetEnvironmentVariable("RNNSIMD_BENCH_MODE") == "quick";
        var job = Job.Default.WithId("peers");
        if (quick) job = job.WithWarmupCount(3).WithIterationCount(8).WithLaunchCount(1);
        string targets = Path.Combine(AppContext.BaseDirectory, "Weaken.targets");
        if (File.Exists(targets)) job = job.WithArguments([new MsBuildArgument($"/p:CustomAfterMicrosoftCommonTargets={targets}")]);
        AddJob(job);
        AddFilter(new SimpleFilter(Runs));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddExporter(MarkdownExporter.GitHub, JsonExporter.Full);
        AddColumn(StatisticColumn.Median, StatisticColumn.P95);
        HideColumns(Column.Arguments);  // the MSBuild argument above is plumbing, not a benchmark setting
        WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
    }

    /// <summary>Whether a case is one the implementations have (a workload benchmark's method is named by its workload id).</summary>
    internal static bool Runs(BenchmarkCase b)
    {
        object? Param(string name) => b.Parameters.Items.FirstOrDefault(p => p.Name == name)?.Value;
        if (Param("Cell") is not string cell || Param("Impl") is not string impl) return true;
        var workload = Workload.ById(b.Descriptor.WorkloadMethod.Name);
        int threads = Param("Threads") is int t ? t : 1;
        var precision = Param("Precision") is string p ? PrecisionNames.Parse(p) : Precision.Float32;
        return Implementations.Supports(workload, cell, impl, threads, precision);
    }
}
