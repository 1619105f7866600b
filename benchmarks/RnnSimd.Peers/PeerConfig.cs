using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;

namespace RnnSimd.Peers;

/// <summary>
/// One job (RnnSimd's default kernel set), MemoryDiagnoser on, GitHub markdown + full JSON exported.
/// RNNSIMD_BENCH_MODE=quick: 3 warm-up + 8 measured iterations, 1 launch; otherwise BenchmarkDotNet's defaults.
/// The job passes CustomAfterMicrosoftCommonTargets=Weaken.targets to the build of BenchmarkDotNet's generated
/// project: that project gets its native libraries from the NuGet cache, not from our patched output, so the
/// GLIBCXX patch (see the .csproj) must run on its output too.
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
        AddDiagnoser(MemoryDiagnoser.Default);
        AddExporter(MarkdownExporter.GitHub, JsonExporter.Full);
        AddColumn(StatisticColumn.Median, StatisticColumn.P95);
        HideColumns(Column.Arguments);  // the MSBuild argument above is plumbing, not a benchmark setting
        WithOrderer(new BenchmarkDotNet.Order.DefaultOrderer(BenchmarkDotNet.Order.SummaryOrderPolicy.Declared));
    }
}
