using System.Text.Json;

namespace RnnSimd.Report;

/// <summary>
/// One row of summary.json: the median time of one (workload, cell, threads, implementation, weight precision); for
/// RnnSimd's S1 / S2 rows also the memory of the network: packed weight bytes one step reads, managed bytes it keeps.
/// </summary>
internal sealed record Row(string Workload, string Cell, int Threads, string Impl, double MedianNs, long? AllocatedBytes,
    string Precision = Row.Float32, long? StepWeightBytes = null, long? ModelBytes = null)
{
    public const string Float32 = "float32";
}

/// <summary>One (cell, threads) of latency-s1.json; Threads is 1 in files written before the 2-thread rows existed.</summary>
internal sealed record LatencyRow(string Cell, int Threads, long Steps, double P50Ns, double P99Ns, double P999Ns, double MaxNs, double MeanNs,
    long? GcCollections, long? AllocatedBytes);

/// <summary>latency-s1.json: where and when, and one row per cell.</summary>
internal sealed record LatencyReport(string? Date, string? Cpu, string? KernelSet, string? Runtime, IReadOnlyList<LatencyRow> Rows);

/// <summary>
/// What a results folder holds: the rows of summary.json (written by `RnnSimd.Peers --summarize`), latency-s1.json
/// (written by `RnnSimd.Benchmarks --latency`) and a few "key: value" lines of peers/versions.txt (written by
/// peers.sh). Any of them may be missing; malformed rows are skipped and listed in <see cref="Warnings"/>.
/// </summary>
internal sealed class PerfData
{
    public const string SummaryFile = "summary.json", LatencyFile = "latency-s1.json", VersionsFile = "peers/versions.txt";

    /// <summary>The versions.txt keys quoted in the report, in this order.</summary>
    private static readonly string[] VersionKeys = ["date", "mode", "filter", "cpu", "commit", "TorchSharp", "LibTorch", "OnnxRuntime", "RnnSimd kernel set", ".NET runtime"];

    public bool HasSummary { get; init; }
    public IReadOnlyList<Row> Rows { get; init; } = [];
    public LatencyReport? Latency { get; init; }
    public IReadOnlyList<(string Key, string Value)> Versions { get; init; } = [];
    public List<string> Warnings { get; } = [];

    public static PerfData Load(string dir)
    {
        var warnings = new List<string>();
        string summary = Path.Combine(dir, SummaryFile), latency = Path.Combine(dir, LatencyFile), versions = Path.Combine(dir, VersionsFile);
        var data = new PerfData
        {
            HasSummary = File.Exists(summary),
            Rows = File.Exists(summary) ? ReadSummary(File.ReadAllText(summary), warnings) : [],
            Latency = File.Exists(latency) ? ReadLatency(File.ReadAllText(latency), warnings) : null,
            Versions = File.Exists(versions) ? ReadVersions(File.ReadAllLines(versions)) : [],
        };
        data.Warnings.AddRange(warnings);
        return data;
    }

    /// <summary>
    /// The rows of summary.json's array. A row needs workload, cell, impl and a positive median_ns; threads defaults
    /// to 1, precision to float32 (files written before issue 11), allocated_bytes and the memory fields to unknown.
    /// Of two rows with one key, the later is kept.
    /// </summary>
    internal static List<Row> ReadSummary(string json, List<string> warnings)
    {
        using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
        {
            warnings.Add($"{SummaryFile} is not a JSON array; ignored.");
            return [];
        }
        var rows = new Dictionary<(string, string, int, string, string), Row>();
        int index = 0;
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            index++;
            string? workload = Str(e, "workload"), cell = Str(e, "cell"), impl = Str(e, "impl");
            double? median = Num(e, "median_ns");
            if (workload is null || cell is null || impl is null || median is not > 0 || !double.IsFinite(median.Value))
            {
                warnings.Add($"{SummaryFile}: row {index} lacks workload, cell, impl or a positive median_ns; skipped.");
                continue;
            }
            int threads = Num(e, "threads") is double t ? (int)t : 1;
            long? allocated = Num(e, "allocated_bytes") is double a ? (long)a : null;
            string precision = Str(e, "precision") ?? Row.Float32;
            var key = (workload, cell, threads, impl, precision);
            if (rows.ContainsKey(key)) warnings.Add($"{SummaryFile}: {key} appears twice; the later row is kept.");
            rows[key] = new Row(workload, cell, threads, impl, median.Value, allocated, precision,
                Num(e, "step_weight_bytes") is double sw ? (long)sw : null, Num(e, "model_bytes") is double mb ? (long)mb : null);
        }
        return [.. rows.Values];
    }

    internal static LatencyReport? ReadLatency(string json, List<string> warnings)
    {
        using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("results", out var results) || results.ValueKind != JsonValueKind.Array)
        {
            warnings.Add($"{LatencyFile} has no 'results' array; ignored.");
            return null;
        }
        var rows = new List<LatencyRow>();
        foreach (var e in results.EnumerateArray())
        {
            if (Str(e, "cell") is not string cell || Num(e, "p50_ns") is not double p50 || Num(e, "p99_ns") is not double p99
                || Num(e, "p999_ns") is not double p999 || Num(e, "max_ns") is not double max || Num(e, "mean_ns") is not double mean)
            {
                warnings.Add($"{LatencyFile}: a result lacks cell or p50_ns/p99_ns/p999_ns/max_ns/mean_ns; skipped.");
                continue;
            }
            rows.Add(new(cell, (int)(Num(e, "threads") ?? 1), (long)(Num(e, "steps") ?? 0), p50, p99, p999, max, mean,
                Num(e, "gc_collections") is double gc ? (long)gc : null, Num(e, "allocated_bytes") is double b ? (long)b : null));
        }
        return new(Str(root, "date"), Str(root, "cpu"), Str(root, "kernel_set"), Str(root, "runtime"), rows);
    }

    internal static List<(string, string)> ReadVersions(IEnumerable<string> lines)
    {
        var found = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            int colon = line.IndexOf(':');
            if (colon > 0) found.TryAdd(line[..colon].Trim(), line[(colon + 1)..].Trim());
        }
        return [.. VersionKeys.Where(found.ContainsKey).Select(k => (k, found[k]))];
    }

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static double? Num(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
}
