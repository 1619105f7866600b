using System.Globalization;
using System.Text.Json;
using RnnSimd.Layers;
using RnnSimd.Peers.Runners;

namespace RnnSimd.Peers;

/// <summary>
/// The --summarize DIR mode: reads the BenchmarkDotNet full-JSON reports (*-report-full.json) in DIR and in DIR/peers
/// (where benchmarks/run.sh and benchmarks/peers.sh put them) and writes DIR/summary.json, an array with one row per
/// (workload, cell, threads, impl, precision):
/// {"workload":"S1","cell":"lstm","threads":1,"impl":"RnnSimd","precision":"int8","median_ns":…,"allocated_bytes":…,
///  "step_weight_bytes":…,"model_bytes":…,"source":"file name"}.
/// A benchmark gives a row when its workload id (S1, S2, S3, T1, T2: the first word of its description, else its
/// method name) and a Cell parameter can be read; Threads, Impl and Precision come from its parameters, else 1,
/// "RnnSimd" and "float32" (the main project's InferenceBenchmarks). Benchmarks without statistics (failed) are skipped
/// and reported. RnnSimd's S1 and S2 rows also get the memory of the network they ran (<see cref="ModelMemory"/>,
/// measured here with the code that was benchmarked).
/// When two reports give the same key, the peers project's row wins over the main project's (it was measured in
/// the same session as the peers it is compared with); between two reports of one project, the newer file wins.
/// Everything skipped or overridden is reported; the return value is 0, or 1 when no row was found.
/// </summary>
internal static class Summary
{
    internal sealed record Row(string Workload, string Cell, int Threads, string Impl, string Precision, double MedianNs, long? AllocatedBytes,
        string Source, bool FromPeers);

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
        var rows = new Dictionary<(string, string, int, string, string), Row>();
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
                var key = (row.Workload, row.Cell, row.Threads, row.Impl, row.Precision);
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
            .ThenBy(r => PrecisionNames.Parse(r.Precision))
            .ToList();
        var memory = new Dictionary<(string, Precision), ModelMemory.Figures>();
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
                w.WriteString("precision", r.Precision);
                w.WriteNumber("median_ns", r.MedianNs);
                if (r.AllocatedBytes is long bytes) w.WriteNumber("allocated_bytes", bytes); else w.WriteNull("allocated_bytes");
                if (r.Impl == Implementations.RnnSimd && r.Workload is "S1" or "S2")
                {
                    var precision = PrecisionNames.Parse(r.Precision);
                    if (!memory.TryGetValue((r.Cell, precision), out var m))
                        memory[(r.Cell, precision)] = m = ModelMemory.Measure(Workload.ById(r.Workload), r.Cell, precision);
                    w.WriteNumber("step_weight_bytes", m.StepWeightBytes);
                    w.WriteNumber("model_bytes", m.ModelBytes);
                }
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
            string precision = parameters.TryGetValue("Precision", out var p) ? PrecisionNames.Parse(p).Name() : Precision.Float32.Name();
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
            rows.Add(new(workload, cell, threads, impl, precision, median.GetDouble(), allocated, source, fromPeers));
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

    /// <summary>BenchmarkDotNet's "Cell=lstm&amp;Threads=2&amp;Impl=LibTorch&amp;Precision=int8" → a dictionary.</summary>
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

/// <summary>
/// The memory of one model form, for the report: the packed weight bytes one batch-1 step reads
/// (<see cref="RecurrentNetwork.StepWeightBytes"/>) and every managed byte the network object keeps (parameters,
/// packed forms, biases: the heap's growth from building it, after a full collection, with one step and one inference
/// Forward run so that anything made on first use is counted). The float32 network keeps its packed GEMM panels and GEMV
/// tiles; a reduced one keeps its packed codes plus its parameters as float32 (the dequantized weights it computes with).
/// </summary>
internal static class ModelMemory
{
    internal readonly record struct Figures(long StepWeightBytes, long ModelBytes);

    public static Figures Measure(Workload w, string cell, Precision precision)
    {
        var source = w.CreateNetwork(cell);                       // the float32 network, before the measure
        long before = GC.GetTotalMemory(forceFullCollection: true);
        var net = precision == Precision.Float32 ? w.CreateNetwork(cell) : source.ToInference(precision);
        Warm(net, w);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(source);
        var figures = new Figures(net.StepWeightBytes, after - before);
        GC.KeepAlive(net);
        return figures;
    }

    /// <summary>One step and one short inference Forward, their buffers dropped before the measure.</summary>
    private static void Warm(RecurrentNetwork net, Workload w)
    {
        var state = net.CreateState(1);
        net.Step(state, new float[w.Input], new float[w.Hidden]);
        var ws = net.CreateInferenceWorkspace(2, 1);
        net.Forward(new float[2 * w.Input], 2, 1, [], [], new float[2 * w.Hidden], [], [], ws);
    }
}
