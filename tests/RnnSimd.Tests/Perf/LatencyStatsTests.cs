using System.Diagnostics;
using RnnSimd.Benchmarks;

namespace RnnSimd.Tests.Perf;

/// <summary>
/// The percentile math and CPU short name of the benchmark project's --latency mode. The two files are compiled into
/// this project (linked in the .csproj), so the benchmark project (BenchmarkDotNet) is not referenced. No timings.
/// </summary>
[Trait("Category", "Perf")]
public class LatencyStatsTests
{
    [Theory]
    [InlineData(1, 50, 100, 1)]
    [InlineData(1, 999, 1000, 1)]
    [InlineData(2, 50, 100, 1)]
    [InlineData(3, 50, 100, 2)]
    [InlineData(4, 50, 100, 2)]
    [InlineData(1000, 50, 100, 500)]
    [InlineData(1000, 99, 100, 990)]
    [InlineData(1000, 999, 1000, 999)]
    [InlineData(1000, 1, 1, 1000)]
    [InlineData(1001, 999, 1000, 1000)]
    [InlineData(1_000_000, 999, 1000, 999_000)]   // ceil(0.999 * 1e6) in double would be 999001
    [InlineData(1_000_000, 99, 100, 990_000)]
    public void Nearest_rank_of_1_to_n(int n, long num, long den, long expected)
    {
        long[] sorted = Enumerable.Range(1, n).Select(i => (long)i).ToArray();
        Assert.Equal(expected, LatencyStats.Percentile(sorted, num, den));
    }

    /// <summary>
    /// The definition, on random samples with many ties: the result v is a sample, at least the fraction p of the
    /// samples are &lt;= v, and fewer than that are &lt; v (so v is the smallest such sample). Integer arithmetic.
    /// </summary>
    [Fact]
    public void Percentile_is_the_smallest_sample_with_at_least_p_of_the_samples_at_or_below_it()
    {
        var rng = new Random(12345);
        (long Num, long Den)[] ps = [(1, 100), (50, 100), (99, 100), (999, 1000), (9999, 10000), (1, 1), (1, 3), (2, 3)];
        for (int trial = 0; trial < 300; trial++)
        {
            int n = rng.Next(1, trial < 100 ? 20 : 3000);
            long[] v = new long[n];
            for (int i = 0; i < n; i++) v[i] = rng.Next(0, 1 + rng.Next(1, 50));
            Array.Sort(v);
            foreach (var (num, den) in ps)
            {
                long p = LatencyStats.Percentile(v, num, den);
                long atOrBelow = v.Count(x => x <= p), below = v.Count(x => x < p);
                Assert.Contains(p, v);
                Assert.True(atOrBelow * den >= num * n, $"n {n}, p {num}/{den}: {p} has only {atOrBelow} samples at or below it");
                Assert.True(below * den < num * n, $"n {n}, p {num}/{den}: {p} is not the smallest ({below} samples below it)");
            }
        }
    }

    [Fact]
    public void FromTicks_sorts_scales_to_nanoseconds_and_averages()
    {
        long[] ticks = [5, 1, 4, 2, 3, 100, 3, 2, 1, 4];         // sorted: 1 1 2 2 3 3 4 4 5 100
        var s = LatencyStats.FromTicks(ticks, ticksPerSecond: 10_000_000);   // 100 ns per tick (Windows' Stopwatch)
        Assert.Equal(10, s.Count);
        Assert.Equal(300, s.P50Ns);                                // rank 5
        Assert.Equal(10_000, s.P99Ns);                             // rank ceil(9.9) = 10
        Assert.Equal(10_000, s.P999Ns);
        Assert.Equal(10_000, s.MaxNs);
        Assert.Equal(12.5 * 100, s.MeanNs);                        // 125 / 10 ticks
        Assert.Equal([1, 1, 2, 2, 3, 3, 4, 4, 5, 100], ticks);
        Assert.Equal(3, LatencyStats.FromTicks([3], 1_000_000_000).P999Ns);
    }

    [Fact]
    public void Bad_arguments_throw()
    {
        Assert.Throws<ArgumentException>(() => LatencyStats.FromTicks([], 1_000_000_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => LatencyStats.FromTicks([1], 0));
        Assert.Throws<ArgumentException>(() => LatencyStats.Percentile([], 1, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => LatencyStats.Percentile([1], 0, 100));
        Assert.Throws<ArgumentOutOfRangeException>(() => LatencyStats.Percentile([1], 101, 100));
    }

    [Theory]
    [InlineData("AMD EPYC 9R14 96-Core Processor", "25", "17", "amd-epyc-9r14-f25m17")]
    [InlineData("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "6", "106", "intel-xeon-platinum-8375c-f6m106")]
    [InlineData("AMD Ryzen 9 7950X 16-Core Processor", "25", "97", "amd-ryzen-9-7950x-f25m97")]
    [InlineData("AMD EPYC", "26", "2", "amd-epyc-f26m2")]
    public void Cpu_short_name_as_cpu_name_sh(string model, string family, string number, string expected)
    {
        string cpuinfo = $"processor\t: 0\nvendor_id\t: X\ncpu family\t: {family}\nmodel\t\t: {number}\nmodel name\t: {model}\nstepping\t: 1\n\nprocessor\t: 1\nmodel name\t: other\n";
        Assert.Equal(expected, CpuName.FromCpuInfo(cpuinfo));
        Assert.Equal(model, CpuName.ModelName(cpuinfo));
        Assert.Null(CpuName.FromCpuInfo("processor\t: 0\nmodel name\t: X\n"));
    }

    /// <summary>On Linux x86, the C# name of this machine is what benchmarks/cpu-name.sh prints.</summary>
    [Fact]
    public void Cpu_short_name_matches_the_script_on_this_machine()
    {
        string? name = CpuName.Current();
        string script = Path.Combine(RepoRoot(), "benchmarks", "cpu-name.sh");
        if (name is null || !File.Exists("/bin/bash")) return;     // not Linux x86: the script cannot run either
        var psi = new ProcessStartInfo("/bin/bash", [script]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd().Trim();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        Assert.Equal(output, name);
    }

    internal static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "RnnSimd.sln"))) return d.FullName;
        throw new InvalidOperationException($"no RnnSimd.sln above {AppContext.BaseDirectory}.");
    }
}
