using System.Text.Json;

namespace RnnSimd.Compare;

/// <summary>One benchmark case of a BenchmarkDotNet full-JSON report, reduced to what the comparer reads.</summary>
/// <param name="Key">FullName (namespace, class, method, parameters) and the job id in brackets: base and new are
/// matched by it. The job's id only, not its characteristics, so a quick run still matches a full one.</param>
/// <param name="Values">Statistics.OriginalValues: the time per operation (ns) of each measured iteration; null
/// when the case produced no statistics (it failed).</param>
/// <param name="BytesAllocatedPerOperation">Memory.BytesAllocatedPerOperation; null without MemoryDiagnoser.</param>
public sealed record BenchmarkResult(
    string Key, string Type, string Method, string MethodTitle, string Parameters,
    double[]? Values, long? BytesAllocatedPerOperation, string File)
{
    /// <summary>The value of parameter <paramref name="name"/> ("Cell=lstm&amp;Impl=LibTorch"), or null.</summary>
    public string? Parameter(string name) => Parameters.Split('&')
        .Select(p => p.Split('=', 2))
        .Where(kv => kv.Length == 2 && kv[0] == name)
        .Select(kv => kv[1])
        .FirstOrDefault();
}

/// <summary>A report that is missing, unreadable or not in BenchmarkDotNet's full-JSON shape (exit code 2).</summary>
public sealed class ReportException(string message) : Exception(message);

/// <summary>Reads BenchmarkDotNet full-JSON reports (<c>*-report-full.json</c>, as JsonExporter.Full writes them).</summary>
public static class BdnReport
{
    public const string FilePattern = "*-report-full.json";

    /// <summary>Every benchmark of every report under <paramref name="dir"/> (searched recursively); a key seen
    /// twice is an error, since the comparison would depend on which file came first.</summary>
    public static IReadOnlyList<BenchmarkResult> ReadDirectory(string dir)
    {
        if (!Directory.Exists(dir)) throw new ReportException($"{dir}: no such directory");
        var files = Directory.GetFiles(dir, FilePattern, SearchOption.AllDirectories);
        Array.Sort(files, StringComparer.Ordinal);
        if (files.Length == 0) throw new ReportException($"{dir}: no {FilePattern} file in it or below it");
        var results = new List<BenchmarkResult>();
        var seen = new Dictionary<string, string>();
        foreach (var file in files)
        {
            foreach (var result in ReadFile(file))
            {
                if (!seen.TryAdd(result.Key, file))
                    throw new ReportException($"{result.Key} is in both {seen[result.Key]} and {file}");
                results.Add(result);
            }
        }
        return results;
    }

    public static IReadOnlyList<BenchmarkResult> ReadFile(string path)
    {
        JsonDocument doc;
        try
        {
            using var stream = File.OpenRead(path);
            doc = JsonDocument.Parse(stream);
        }
        catch (JsonException e) { throw new ReportException($"{path}: not valid JSON ({e.Message})"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ReportException($"{path}: cannot read it ({e.Message})");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("Benchmarks", out var benchmarks)
                || benchmarks.ValueKind != JsonValueKind.Array)
                throw new ReportException($"{path}: no \"Benchmarks\" array, not a BenchmarkDotNet full-JSON report");
            var results = new List<BenchmarkResult>();
            int i = 0;
            foreach (var b in benchmarks.EnumerateArray())
            {
                string where = $"{path}: Benchmarks[{i++}]";
                if (b.ValueKind != JsonValueKind.Object) throw new ReportException($"{where} is not an object");
                string fullName = String(b, "FullName") is { Length: > 0 } n ? n
                    : throw new ReportException($"{where} has no FullName");
                string type = String(b, "Type") ?? "", methodTitle = String(b, "MethodTitle") ?? "";
                string job = JobId(String(b, "DisplayInfo") ?? "", type, methodTitle);
                results.Add(new BenchmarkResult(
                    Key: job.Length > 0 ? $"{fullName} [{job}]" : fullName,
                    Type: type,
                    Method: String(b, "Method") ?? "",
                    MethodTitle: methodTitle,
                    Parameters: String(b, "Parameters") ?? "",
                    Values: OriginalValues(b, where),
                    BytesAllocatedPerOperation: BytesAllocated(b, where),
                    File: path));
            }
            return results;
        }
    }

    /// <summary>The job id from DisplayInfo, "Type.MethodTitle: jobId(characteristics) [parameters]".</summary>
    public static string JobId(string displayInfo, string type, string methodTitle)
    {
        string prefix = $"{type}.{methodTitle}: ";
        int start = displayInfo.StartsWith(prefix, StringComparison.Ordinal) ? prefix.Length
            : displayInfo.IndexOf(": ", StringComparison.Ordinal) is >= 0 and var colon ? colon + 2 : -1;
        if (start < 0) return "";
        int end = displayInfo.IndexOfAny(['(', ' '], start);
        return (end < 0 ? displayInfo[start..] : displayInfo[start..end]).Trim();
    }

    private static string? String(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static double[]? OriginalValues(JsonElement b, string where)
    {
        if (!b.TryGetProperty("Statistics", out var stats) || stats.ValueKind != JsonValueKind.Object) return null;
        if (!stats.TryGetProperty("OriginalValues", out var values) || values.ValueKind != JsonValueKind.Array)
            throw new ReportException($"{where}: Statistics has no OriginalValues array");
        return values.EnumerateArray()
            .Select(v => v.ValueKind == JsonValueKind.Number ? v.GetDouble()
                : throw new ReportException($"{where}: Statistics.OriginalValues holds a non-number"))
            .ToArray();
    }

    private static long? BytesAllocated(JsonElement b, string where)
    {
        if (!b.TryGetProperty("Memory", out var memory) || memory.ValueKind != JsonValueKind.Object) return null;
        if (!memory.TryGetProperty("BytesAllocatedPerOperation", out var bytes) || bytes.ValueKind == JsonValueKind.Null)
            return null;
        return bytes.ValueKind == JsonValueKind.Number && bytes.TryGetInt64(out long n) ? n
            : throw new ReportException($"{where}: Memory.BytesAllocatedPerOperation is not an integer");
    }
}
