using System.Text.Json;
using RnnSimd.Compare;

namespace RnnSimd.Tests.Compare;

/// <summary>
/// The regression gate's decisions (benchmarks/RnnSimd.Compare): the statistics on made-up samples, and the exit
/// codes of the command on small reports written in BenchmarkDotNet's full-JSON shape.
/// </summary>
[Trait("Category", "Compare")]
public class ComparerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-compare-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>n times around <paramref name="center"/> with a fixed +-1% spread (a seeded generator: the same
    /// samples every run), like the iterations of one benchmark.</summary>
    private static double[] Times(double center, int n = 15, int seed = 1)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => center * (1 + 0.02 * (random.NextDouble() - 0.5))).ToArray();
    }

    private static double[] Scale(double[] values, double factor) => values.Select(v => v * factor).ToArray();

    [Fact]
    public void Identical_samples_are_the_same()
    {
        var t = Times(1000);
        Assert.Equal(Conclusion.Same, Judge.Decide(t, t, threshold: 0.05, noiseNs: 2));
    }

    [Fact]
    public void Independent_samples_of_one_distribution_are_the_same() =>
        Assert.Equal(Conclusion.Same, Judge.Decide(Times(1000, seed: 1), Times(1000, seed: 2), 0.05, 2));

    [Fact]
    public void A_20_percent_shift_is_slower_or_faster()
    {
        var t = Times(1000);
        Assert.Equal(Conclusion.Slower, Judge.Decide(t, Scale(Times(1000, seed: 2), 1.2), 0.05, 2));
        Assert.Equal(Conclusion.Faster, Judge.Decide(t, Scale(Times(1000, seed: 2), 0.8), 0.05, 2));
    }

    [Fact]
    public void A_shift_under_the_threshold_is_the_same()
    {
        var t = Times(1000);
        Assert.Equal(Conclusion.Same, Judge.Decide(t, Scale(Times(1000, seed: 2), 1.03), 0.05, 2));
        // ... and the same shift counts once the threshold is below it.
        Assert.Equal(Conclusion.Slower, Judge.Decide(t, Scale(Times(1000, seed: 2), 1.03), 0.01, 2));
    }

    [Fact]
    public void Differences_under_the_noise_floor_are_the_same()
    {
        // 10 ns -> 11 ns is +10%, over the 5% threshold, but only 1 ns: under a 2 ns noise floor.
        var t = Times(10);
        Assert.Equal(Conclusion.Same, Judge.Decide(t, Scale(Times(10, seed: 2), 1.1), 0.05, noiseNs: 2));
        Assert.Equal(Conclusion.Same, Judge.Decide(t, Scale(Times(10, seed: 2), 0.9), 0.05, noiseNs: 2));
        Assert.Equal(Conclusion.Slower, Judge.Decide(t, Scale(Times(10, seed: 2), 1.1), 0.05, noiseNs: 0.5));
    }

    [Fact]
    public void Too_few_iterations_or_a_failed_run_is_unknown()
    {
        // 3 against 3 (the gate's iteration count): the exact test cannot go below p = 1/20, even for a 2x shift.
        Assert.Equal(0.05, Judge.MinimumPValue(3, 3), 12);
        Assert.Equal(Conclusion.Unknown, Judge.Decide(Times(1000, 3), Times(2000, 3), 0.05, 2));
        Assert.Equal(Conclusion.Unknown, Judge.Decide(null, Times(1000), 0.05, 2));
        Assert.Equal(Conclusion.Unknown, Judge.Decide([], Times(1000), 0.05, 2));
    }

    [Fact]
    public void The_job_id_is_read_from_the_display_info()
    {
        Assert.Equal("avx512", BdnReport.JobId(
            "InferenceBenchmarks.'S1 stream-step': avx512(IterationCount=3, LaunchCount=1) [Cell=gru]", "InferenceBenchmarks", "'S1 stream-step'"));
        Assert.Equal("avx2", BdnReport.JobId(
            "GemmBenchmarks.Gemm: avx2(EnvironmentVariables=RNNSIMD_KERNELS=avx2) [Shape=inproj 2047x1021x67]", "GemmBenchmarks", "Gemm"));
        Assert.Equal("DefaultJob", BdnReport.JobId("Foo.Bar: DefaultJob", "Foo", "Bar"));
    }

    // ---- the command, on reports written to disk ----

    private sealed record Case(string Type, string Method, string Parameters, double[]? Times, long? Bytes, string Job = "avx512");

    /// <summary>Writes <paramref name="cases"/> as dir/results/NAME-report-full.json, with the fields (and the
    /// FullName / DisplayInfo formats) of BenchmarkDotNet 0.15's JsonExporter.Full.</summary>
    private string Report(string name, params Case[] cases)
    {
        string dir = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.Combine(dir, "results"));
        var benchmarks = cases.Select(c => new Dictionary<string, object?>
        {
            ["DisplayInfo"] = $"{c.Type}.{c.Method}: {c.Job}(IterationCount=15) [{c.Parameters}]",
            ["Namespace"] = "RnnSimd.Benchmarks",
            ["Type"] = c.Type,
            ["Method"] = c.Method,
            ["MethodTitle"] = c.Method,
            ["Parameters"] = c.Parameters,
            ["FullName"] = $"RnnSimd.Benchmarks.{c.Type}.{c.Method}({c.Parameters.Replace("=", ": ")})",
            ["Statistics"] = c.Times is null ? null : new { OriginalValues = c.Times, Median = Judge.Median(c.Times) },
            ["Memory"] = new { Gen0Collections = 0, TotalOperations = 1024, BytesAllocatedPerOperation = c.Bytes },
        });
        File.WriteAllText(Path.Combine(dir, "results", $"{name}-report-full.json"),
            JsonSerializer.Serialize(new { Title = name, Benchmarks = benchmarks }));
        return dir;
    }

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Comparer.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Same_results_pass()
    {
        var t = Times(5000);
        string dir = Report("base", new Case("GemvBenchmarks", "Packed", "Rows=256", t, 0));
        var (code, output, _) = Run(dir, dir);
        Assert.Equal(Comparer.Pass, code);
        Assert.Contains("summary: 1 compared, 0 slower, 0 faster, 1 same", output);
    }

    [Fact]
    public void A_slower_benchmark_fails_and_is_in_the_slower_table()
    {
        string b = Report("base", new Case("GemvBenchmarks", "Packed", "Rows=256", Times(5000), 0),
            new Case("GemvBenchmarks", "Packed", "Rows=512", Times(9000), 0));
        string n = Report("new", new Case("GemvBenchmarks", "Packed", "Rows=256", Times(6000, seed: 2), 0),
            new Case("GemvBenchmarks", "Packed", "Rows=512", Times(9000, seed: 2), 0));
        var (code, output, _) = Run(b, n, "--threshold", "5%", "--noise", "2ns");
        Assert.Equal(Comparer.Fail, code);
        Assert.Contains("| RnnSimd.Benchmarks.GemvBenchmarks.Packed(Rows: 256) [avx512] |", output);
        Assert.Contains("| Slower |", output);
        Assert.Contains("1 slower", output);
        // With a 25% threshold the same +20% passes.
        Assert.Equal(Comparer.Pass, Run(b, n, "--threshold=25%").Code);
    }

    [Fact]
    public void Benchmarks_are_matched_by_job_too()
    {
        string b = Report("base", new Case("GemmBenchmarks", "Gemm", "Shape=a", Times(5000), 0, Job: "scalar"),
            new Case("GemmBenchmarks", "Gemm", "Shape=a", Times(1000), 0, Job: "avx512"));
        string n = Report("new", new Case("GemmBenchmarks", "Gemm", "Shape=a", Times(5000, seed: 2), 0, Job: "scalar"),
            new Case("GemmBenchmarks", "Gemm", "Shape=a", Times(1000, seed: 2), 0, Job: "avx512"));
        var (code, output, _) = Run(b, n);
        Assert.Equal(Comparer.Pass, code);
        Assert.Contains("summary: 2 compared, 0 slower, 0 faster, 2 same", output);
    }

    [Fact]
    public void An_allocation_regression_fails()
    {
        // Same times, but a hot-path workload now allocates: exit 1, whatever the times say.
        var t = Times(8000);
        string b = Report("base", new Case("InferenceBenchmarks", "S1", "Cell=lstm", t, 0));
        string n = Report("new", new Case("InferenceBenchmarks", "S1", "Cell=lstm", t, 48));
        var (code, output, _) = Run(b, n);
        Assert.Equal(Comparer.Fail, code);
        Assert.Contains("1 allocating on the hot path", output);

        // Any benchmark that allocated nothing in base must go on allocating nothing.
        b = Report("base2", new Case("GemvBenchmarks", "Packed", "Rows=256", t, 0));
        n = Report("new2", new Case("GemvBenchmarks", "Packed", "Rows=256", t, 24));
        Assert.Equal(Comparer.Fail, Run(b, n).Code);

        // One that already allocated, off the hot path, is not an allocation regression.
        b = Report("base3", new Case("GemvBenchmarks", "Packed", "Rows=256", t, 24));
        n = Report("new3", new Case("GemvBenchmarks", "Packed", "Rows=256", t, 32));
        Assert.Equal(Comparer.Pass, Run(b, n).Code);
    }

    [Fact]
    public void The_allocation_gate_needs_every_hot_path_benchmark_to_run_and_allocate_nothing()
    {
        var t = Times(8000, 3);
        string clean = Report("clean", new Case("InferenceBenchmarks", "S1", "Cell=lstm", t, 0),
            new Case("TrainingBenchmarks", "T1", "Cell=gru", t, 0),
            new Case("GemvBenchmarks", "Packed", "Rows=256", t, 100));   // not hot path: not checked
        Assert.Equal(Comparer.Pass, Run("--allocations-only", clean).Code);

        string allocating = Report("allocating", new Case("InferenceBenchmarks", "S1", "Cell=lstm", t, 0),
            new Case("TrainingBenchmarks", "T1", "Cell=gru", t, 64));
        var (code, output, _) = Run("--allocations-only", allocating);
        Assert.Equal(Comparer.Fail, code);
        Assert.Contains("ALLOCATES", output);

        string failed = Report("failed", new Case("InferenceBenchmarks", "S2", "Cell=lstm", null, null));
        Assert.Equal(Comparer.Fail, Run("--allocations-only", failed).Code);

        string none = Report("none", new Case("GemvBenchmarks", "Packed", "Rows=256", t, 0));
        Assert.Equal(Comparer.Fail, Run("--allocations-only", none).Code);

        // A peer library's row named by a workload is its allocation, not ours; RnnSimd's own row is checked.
        string peers = Report("peers", new Case("StreamStepBenchmarks", "S1", "Cell=lstm&Threads=1&Impl=LibTorch", t, 200),
            new Case("StreamStepBenchmarks", "S1", "Cell=lstm&Threads=1&Impl=RnnSimd", t, 0));
        Assert.Equal(Comparer.Pass, Run("--allocations-only", peers).Code);
    }

    [Fact]
    public void Malformed_json_is_exit_2_with_one_line()
    {
        string good = Report("good", new Case("GemvBenchmarks", "Packed", "Rows=256", Times(5000), 0));
        string bad = Path.Combine(_dir, "bad");
        Directory.CreateDirectory(bad);
        File.WriteAllText(Path.Combine(bad, "x-report-full.json"), "{ \"Benchmarks\": [ { \"FullName\": ");
        var (code, output, error) = Run(good, bad);
        Assert.Equal(Comparer.Error, code);
        Assert.Equal("", output);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Contains("not valid JSON", error);

        File.WriteAllText(Path.Combine(bad, "x-report-full.json"), "{ \"Title\": \"not a report\" }");
        Assert.Equal(Comparer.Error, Run(good, bad).Code);
        Assert.Equal(Comparer.Error, Run("--allocations-only", bad).Code);
    }

    [Fact]
    public void Usage_errors_are_exit_2()
    {
        string good = Report("good", new Case("GemvBenchmarks", "Packed", "Rows=256", Times(5000), 0));
        Assert.Equal(Comparer.Error, Run(good).Code);
        Assert.Equal(Comparer.Error, Run(good, Path.Combine(_dir, "missing")).Code);
        Assert.Equal(Comparer.Error, Run(good, good, "--threshold", "5").Code);
        Assert.Equal(Comparer.Error, Run(good, good, "--noise", "fast").Code);
        Assert.Equal(Comparer.Error, Run(good, good, "--frobnicate").Code);
        Assert.Equal(Comparer.Error, Run("--allocations-only", good, good).Code);
        var empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        Assert.Equal(Comparer.Error, Run(good, empty).Code);
    }
}
