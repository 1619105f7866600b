using System.Globalization;
using System.Text.Json;
using RnnSimd.Peers.Runners;

namespace RnnSimd.Peers;

/// <summary>
/// The --summarize DIR mode: reads the BenchmarkDotNet full-JSON reports (*-report-full.json) in DIR and in DIR/peers
/// (where benchmarks/run.sh and benchmarks/peers.sh put them) and writes DIR/summary.json, an array with one row per
/// (workload, cell, threads, impl):
/// {"workload":"S1","cell":"lstm","threads":1,"impl":"RnnSimd","median_ns":…,"allocated_bytes":…,"source":"file name"}.
/// A benchmark gives a row when its workload id (S1, S2, S3, T1, T2: the first word of its description, else its
/// method name) and a Cell parameter can be read; Threads and Impl come from its parameters, else 1 and "RnnSimd"
/// (the main project's InferenceBenchmarks). Benchmarks without statistics (failed) are skipped and reported.
/// When two reports give the same key, the peers project's row wins over the main project's (it was measured in
/// the same session as the peers it is compared with); between two reports of one project, the newer file wins.
/// Everything skipped or overridden is reported; the return value is 0, or 1 when no row was found.
/// </summary>
internal static class Summary
{
    internal sealed record Row(string Workload, string Cell, int Threads, string Impl, double MedianNs, long? AllocatedBytes, string Source, bool FromPeers);

    private static readonly string[] CellOrder = Workload.Cells;
    private static readonly string[] ImplOrder = [Implementations.RnnSimd, Implementations.RnnSimdOnnx, Implementations.LibTorch, Implementations.LibTorchCell, Implementations.OnnxRuntime];

    public static int Run(string dir, TextWriter log)
    {
        if (!Directory.Exists(dir))
        {
            log.WriteLine($"summarize: no directory '{dir}'.");
            return 2;
        }
        var files = new[] { dir, Path.Combine(dir, "peers") }
            .Where(Directory.Exists)
            .SelectMany(d => Directory.GetFiles(d, "*-report-full.json"))
            .OrderBy(File.GetLastWriteTimeUtc).ThenBy(f => f, StringComparer.Ordinal)
            .ToList();
        var rows = new Dictionary<(string, string, int, string), Row>();
        foreach (var file in files)
        {
            List<Row> found;
            try
            {
                found = Read(file, Path.GetRelativePath(dir, file), log);
            }
            catch (Exception ex) when (ex is JsonException or IOException or InvalidOperationException or FormatException)
            {
                log.WriteLine($"summarize: skipped {file}: {ex.Message}");
                continue;
            }
            foreach (var row in found)
            {
                var key = (row.Workload, row.Cell, row.Threads, row.Impl);
                if (rows.TryGetValue(key, out var old))
                {
                    bool replace = row.FromPeers || !old.FromPeers;               // files come oldest first
                    log.WriteLine($"summarize: {key} in both {old.Source} and {row.Source}; keeping {(replace ? row.Source : old.Source)}.");
                    if (!replace) continue;
                }
                rows[key] = row;
            }
        }

        var ordered = rows.Values
            .OrderBy(r => r.Workload, StringComparer.Ordinal)
            .ThenBy(r => Rank(CellOrder, r.Cell)).ThenBy(r => r.Cell, StringComparer.Ordinal)
            .ThenBy(r => r.Threads)
            .ThenBy(r => Rank(ImplOrder, r.Impl)).ThenBy(r => r.Impl, StringComparer.Ordinal)
            .ToList();
        string output = Path.Combine(dir, "summary.json");
        using (var stream = File.Create(output))
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var r in ordered)
            {
                w.WriteStartObject();
                w.WriteString("workload", r.Workload);
                w.WriteString("cell", r.Cell);
                w.WriteNumber("threads", r.Threads);
                w.WriteString("impl", r.Impl);
                w.WriteNumber("median_ns", r.MedianNs);
                if (r.AllocatedBytes is long bytes) w.WriteNumber("allocated_bytes", bytes); else w.WriteNull("allocated_bytes");
                w.WriteString("source", r.Source);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        log.WriteLine($"summarize: {ordered.Count} rows from {files.Count} reports → {output}");
        return ordered.Count > 0 ? 0 : 1;
    }

    private static int Rank(string[] order, string value)
    {
        int i = Array.IndexOf(order, value);
        return i < 0 ? order.Length : i;
    }

    /// <summary>The rows of one full-JSON report.</summary>
    internal static List<Row> Read(string path, string source, TextWriter log)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        var rows = new List<Row>();
        if (!doc.RootElement.TryGetProperty("Benchmarks", out var benchmarks) || benchmarks.ValueKind != JsonValueKind.Array)
            throw new InvalidOperationException("no 'Benchmarks' array.");
        foreach (var b in benchmarks.EnumerateArray())
        {
            string name = Str(b, "FullName") ?? Str(b, "DisplayInfo") ?? "?";
            string? workload = WorkloadId(Str(b, "MethodTitle")) ?? WorkloadId(Str(b, "Method"));
            var parameters = Parameters(Str(b, "Parameters"));
            if (workload is null || !parameters.TryGetValue("Cell", out var cell)) continue;   // not a workload benchmark (e.g. GEMM)

            int threads = parameters.TryGetValue("Threads", out var t) ? int.Parse(t, CultureInfo.InvariantCulture) : 1;
            string impl = parameters.TryGetValue("Impl", out var i) ? i : Implementations.RnnSimd;
            if (!b.TryGetProperty("Statistics", out var stats) || stats.ValueKind != JsonValueKind.Object
                || !stats.TryGetProperty("Median", out var median) || median.ValueKind != JsonValueKind.Number)
            {
                log.WriteLine($"summarize: {source}: {name} has no statistics (did it fail?); skipped.");
                continue;
            }
            long? allocated = b.TryGetProperty("Memory", out var mem) && mem.ValueKind == JsonValueKind.Object
                && mem.TryGetProperty("BytesAllocatedPerOperation", out var a) && a.ValueKind == JsonValueKind.Number
                ? a.GetInt64() : null;
            bool fromPeers = Str(b, "Namespace") == typeof(Summary).Namespace;
            rows.Add(new(workload, cell, threads, impl, median.GetDouble(), allocated, source, fromPeers));
        }
        return rows;
    }

    /// <summary>"'S1 stream-step'" or "S1" → "S1"; null unless the first word is S or T and digits.</summary>
    internal static string? WorkloadId(string? title)
    {
        if (string.IsNullOrWhiteSpace(title)) return null;
        string first = title.Trim().Trim('\'', '"').Split(' ', 2)[0];
        return first.Length >= 2 && first[0] is 'S' or 'T' && first.AsSpan(1).IndexOfAnyExceptInRange('0', '9') < 0 ? first : null;
    }

    /// <summary>BenchmarkDotNet's "Cell=lstm&amp;Threads=2&amp;Impl=LibTorch" → a dictionary.</summary>
    internal static Dictionary<string, string> Parameters(string? text)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(text)) return d;
        foreach (var part in text.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.IndexOf('=');
            if (eq > 0) d[part[..eq].Trim()] = part[(eq + 1)..].Trim().Trim('"');
        }
        return d;
    }

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
