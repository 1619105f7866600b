using System.Globalization;
using System.Text.RegularExpressions;

namespace RnnSimd.Compare;

/// <summary>
/// The command behind benchmarks/compare.sh. Two modes:
/// <list type="bullet">
/// <item><c>BASE_DIR NEW_DIR [--threshold 5%] [--noise 2ns]</c>: matches the benchmarks of the two result folders by
/// key (<see cref="BenchmarkResult.Key"/>), judges each pair (<see cref="Judge"/>), prints markdown tables of the
/// slower and the faster ones and a summary line; exit 1 when any is slower, or when a hot-path benchmark
/// (<see cref="HotPath"/>) or one whose base allocated nothing allocates in NEW.</item>
/// <item><c>--allocations-only NEW_DIR</c>: no timing, only that every hot-path benchmark there ran and allocated
/// 0 bytes per operation (the CI gate: times from a shared CI machine are not worth comparing).</item>
/// </list>
/// Exit 2, with one line on stderr, on bad arguments and on missing, unreadable or malformed reports.
/// </summary>
public static class Comparer
{
    public const int Pass = 0, Fail = 1, Error = 2;

    private const string Usage =
        "usage: compare.sh BASE_DIR NEW_DIR [--threshold 5%] [--noise 2ns] | compare.sh --allocations-only NEW_DIR";

    public sealed record Options(string? BaseDir, string NewDir, double Threshold, double NoiseNs, bool AllocationsOnly);

    private sealed class UsageException(string message) : Exception(message);

    public static int Run(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Any(a => a is "-h" or "--help"))
        {
            stdout.WriteLine(Usage);
            return Pass;
        }
        try
        {
            var options = Parse(args);
            return options.AllocationsOnly ? CheckAllocations(options.NewDir, stdout) : Compare(options, stdout);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"compare: {e.Message} ({Usage})");
            return Error;
        }
        catch (ReportException e)
        {
            stderr.WriteLine($"compare: {e.Message}");
            return Error;
        }
    }

    public static Options Parse(IReadOnlyList<string> args)
    {
        var dirs = new List<string>();
        double threshold = 0.05, noiseNs = 2;
        bool allocationsOnly = false, timingOptions = false;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string? Value()
            {
                int eq = arg.IndexOf('=');
                if (eq >= 0) return arg[(eq + 1)..];
                return ++i < args.Count ? args[i] : throw new UsageException($"{arg} needs a value");
            }
            string name = arg.Split('=', 2)[0];
            switch (name)
            {
                case "--threshold": threshold = ParseThreshold(Value()!); timingOptions = true; break;
                case "--noise": noiseNs = ParseNoise(Value()!); timingOptions = true; break;
                case "--allocations-only": allocationsOnly = true; break;
                default:
                    if (arg.StartsWith('-')) throw new UsageException($"unknown option {arg}");
                    dirs.Add(arg);
                    break;
            }
        }
        if (allocationsOnly)
        {
            if (timingOptions) throw new UsageException("--allocations-only compares no times: drop --threshold/--noise");
            if (dirs.Count != 1) throw new UsageException("--allocations-only takes one directory");
            return new Options(null, dirs[0], threshold, noiseNs, true);
        }
        if (dirs.Count != 2) throw new UsageException($"expected BASE_DIR and NEW_DIR, got {dirs.Count} directories");
        return new Options(dirs[0], dirs[1], threshold, noiseNs, false);
    }

    /// <summary>"5%" → 0.05.</summary>
    private static double ParseThreshold(string text)
    {
        string t = text.Trim();
        if (t.EndsWith('%')
            && double.TryParse(t[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double percent)
            && percent >= 0 && double.IsFinite(percent))
            return percent / 100;
        throw new UsageException($"--threshold wants a percentage such as 5%, got '{text}'");
    }

    /// <summary>"2ns", "0.5us", "1ms" (a bare number is in ns) → nanoseconds.</summary>
    private static double ParseNoise(string text)
    {
        var m = Regex.Match(text.Trim(), @"^([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ns|us|μs|ms|s)?$");
        if (m.Success && double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
        {
            return v * (m.Groups[2].Value switch { "us" or "μs" => 1e3, "ms" => 1e6, "s" => 1e9, _ => 1 });
        }
        throw new UsageException($"--noise wants a time such as 2ns or 0.5us, got '{text}'");
    }

    private sealed record Pair(BenchmarkResult Base, BenchmarkResult New, Conclusion Conclusion)
    {
        public double BaseMedian => Judge.Median(Base.Values!);
        public double NewMedian => Judge.Median(New.Values!);
        public double Ratio => NewMedian / BaseMedian;
    }

    private static int Compare(Options o, TextWriter w)
    {
        var baseResults = BdnReport.ReadDirectory(o.BaseDir!);
        var newResults = BdnReport.ReadDirectory(o.NewDir);
        var baseByKey = baseResults.ToDictionary(b => b.Key);
        var newKeys = newResults.Select(n => n.Key).ToHashSet();

        var pairs = newResults
            .Where(n => baseByKey.ContainsKey(n.Key))
            .Select(n => new Pair(baseByKey[n.Key], n, Judge.Decide(baseByKey[n.Key].Values, n.Values, o.Threshold, o.NoiseNs)))
            .ToList();
        var allocating = newResults
            .Where(n => n.BytesAllocatedPerOperation > 0)
            .Select(n => (New: n, Base: baseByKey.GetValueOrDefault(n.Key)))
            .Where(x => HotPath.ByName(x.New) || x.Base?.BytesAllocatedPerOperation == 0)
            .ToList();
        var onlyBase = baseResults.Where(b => !newKeys.Contains(b.Key)).Select(b => b.Key).ToList();
        var onlyNew = newResults.Where(n => !baseByKey.ContainsKey(n.Key)).Select(n => n.Key).ToList();

        w.WriteLine("# Benchmark comparison");
        w.WriteLine();
        w.WriteLine($"base: {o.BaseDir} ({baseResults.Count} benchmarks); new: {o.NewDir} ({newResults.Count} benchmarks)");
        w.WriteLine($"threshold {Percent(o.Threshold)}, noise floor {FormatTime(o.NoiseNs)}: a benchmark is Slower or Faster " +
            $"only when a one-sided Mann-Whitney U test (alpha {Judge.DefaultAlpha.ToString(CultureInfo.InvariantCulture)}) " +
            "finds its times shifted by more than both");
        w.WriteLine();

        var slower = pairs.Where(p => p.Conclusion == Conclusion.Slower).OrderByDescending(p => p.Ratio).ToList();
        var faster = pairs.Where(p => p.Conclusion == Conclusion.Faster).OrderBy(p => p.Ratio).ToList();
        var unknown = pairs.Where(p => p.Conclusion == Conclusion.Unknown).ToList();
        PrintTimes(w, "Slower", slower, o);
        PrintTimes(w, "Faster", faster, o);

        if (allocating.Count > 0)
        {
            w.WriteLine("## Allocating (hot path, or allocated nothing in base)");
            w.WriteLine();
            w.WriteLine("| benchmark | base B/op | new B/op |");
            w.WriteLine("|---|--:|--:|");
            foreach (var (n, b) in allocating)
                w.WriteLine($"| {Cell(n.Key)} | {Bytes(b?.BytesAllocatedPerOperation)} | {Bytes(n.BytesAllocatedPerOperation)} |");
            w.WriteLine();
        }
        if (unknown.Count > 0)
        {
            w.WriteLine("## Unknown (a failed run, or too few iterations to test)");
            w.WriteLine();
            w.WriteLine("| benchmark | base | new |");
            w.WriteLine("|---|--:|--:|");
            foreach (var p in unknown)
                w.WriteLine($"| {Cell(p.New.Key)} | {Iterations(p.Base.Values)} | {Iterations(p.New.Values)} |");
            w.WriteLine();
        }
        PrintUnmatched(w, "Only in base", onlyBase);
        PrintUnmatched(w, "Only in new", onlyNew);

        bool fail = slower.Count > 0 || allocating.Count > 0;
        w.WriteLine($"summary: {pairs.Count} compared, {slower.Count} slower{GeoMean(slower)}, {faster.Count} faster{GeoMean(faster)}, " +
            $"{pairs.Count(p => p.Conclusion == Conclusion.Same)} same, {unknown.Count} unknown; " +
            $"{allocating.Count} allocating on the hot path; {onlyBase.Count} only in base, {onlyNew.Count} only in new " +
            $"-> {(fail ? "FAIL" : "PASS")}");
        return fail ? Fail : Pass;
    }

    private static void PrintTimes(TextWriter w, string title, List<Pair> rows, Options o)
    {
        w.WriteLine($"## {title}");
        w.WriteLine();
        if (rows.Count == 0)
        {
            w.WriteLine($"No benchmark is {title.ToLowerInvariant()} by more than {Percent(o.Threshold)} and {FormatTime(o.NoiseNs)}.");
            w.WriteLine();
            return;
        }
        w.WriteLine("| benchmark | base median | new median | new/base | conclusion |");
        w.WriteLine("|---|--:|--:|--:|---|");
        foreach (var p in rows)
            w.WriteLine($"| {Cell(p.New.Key)} | {FormatTime(p.BaseMedian)} | {FormatTime(p.NewMedian)} | " +
                $"{p.Ratio.ToString("F3", CultureInfo.InvariantCulture)} | {p.Conclusion} |");
        w.WriteLine();
    }

    private static void PrintUnmatched(TextWriter w, string title, List<string> keys)
    {
        if (keys.Count == 0) return;
        const int shown = 10;
        w.WriteLine($"## {title} (not compared)");
        w.WriteLine();
        foreach (var key in keys.Take(shown)) w.WriteLine($"- {key}");
        if (keys.Count > shown) w.WriteLine($"- ... and {keys.Count - shown} more");
        w.WriteLine();
    }

    private static int CheckAllocations(string dir, TextWriter w)
    {
        var results = BdnReport.ReadDirectory(dir);
        var hot = results.Where(HotPath.ByName).ToList();
        w.WriteLine($"# Allocation gate: {dir}");
        w.WriteLine();
        w.WriteLine($"Hot-path benchmarks (classes {string.Join(", ", HotPath.Classes)}; workloads " +
            $"{string.Join(" ", HotPath.Workloads)}) must run and allocate 0 bytes per operation.");
        w.WriteLine();
        if (hot.Count == 0)
        {
            w.WriteLine($"summary: no hot-path benchmark among the {results.Count} in {dir} -> FAIL");
            return Fail;
        }
        int clean = 0, allocating = 0, missing = 0;
        w.WriteLine("| benchmark | B/op | verdict |");
        w.WriteLine("|---|--:|---|");
        foreach (var b in hot)
        {
            // A case that failed has no statistics; one run without MemoryDiagnoser has no byte count: either way
            // nothing shows it allocates nothing, so the gate does not pass it.
            string verdict;
            if (b.Values is null || b.BytesAllocatedPerOperation is null) { verdict = "NO RESULT"; missing++; }
            else if (b.BytesAllocatedPerOperation > 0) { verdict = "ALLOCATES"; allocating++; }
            else { verdict = "ok"; clean++; }
            w.WriteLine($"| {Cell(b.Key)} | {Bytes(b.BytesAllocatedPerOperation)} | {verdict} |");
        }
        w.WriteLine();
        bool fail = allocating > 0 || missing > 0;
        w.WriteLine($"summary: {hot.Count} hot-path benchmarks: {clean} allocate 0 B/op, {allocating} allocate, " +
            $"{missing} without a result ({results.Count - hot.Count} others not checked) -> {(fail ? "FAIL" : "PASS")}");
        return fail ? Fail : Pass;
    }

    private static string GeoMean(List<Pair> rows) => rows.Count == 0 ? ""
        : $" (geomean new/base {Math.Exp(rows.Average(p => Math.Log(p.Ratio))).ToString("F3", CultureInfo.InvariantCulture)})";

    private static string Percent(double ratio) => (ratio * 100).ToString("0.###", CultureInfo.InvariantCulture) + "%";

    private static string Bytes(long? bytes) => bytes?.ToString(CultureInfo.InvariantCulture) ?? "-";

    private static string Iterations(double[]? values) => values is null ? "no result" : $"{values.Length} iterations";

    private static string Cell(string text) => text.Replace("|", "\\|");

    public static string FormatTime(double ns)
    {
        var (value, unit) = Math.Abs(ns) switch
        {
            < 1e3 => (ns, "ns"),
            < 1e6 => (ns / 1e3, "μs"),
            < 1e9 => (ns / 1e6, "ms"),
            _ => (ns / 1e9, "s"),
        };
        return value.ToString("0.###", CultureInfo.InvariantCulture) + " " + unit;
    }
}
