using System.Text.RegularExpressions;

namespace RnnSimd.Benchmarks;

/// <summary>
/// This machine's CPU short name, the perf-results/ folder results are kept in: benchmarks/cpu-name.sh in C#
/// (tests/RnnSimd.Tests compiles this file too and checks the two agree). The model name lower-cased, without
/// (R)/(TM)/"cpu"/"processor"/"N-core"/clock, non-alphanumerics as '-', then -f&lt;family&gt;m&lt;model&gt;;
/// e.g. "AMD EPYC 9R14 96-Core Processor" (family 25, model 17) → amd-epyc-9r14-f25m17.
/// </summary>
internal static partial class CpuName
{
    /// <summary>The short name from /proc/cpuinfo, or null where there is none (not Linux, no x86 model fields).</summary>
    public static string? Current() =>
        File.Exists("/proc/cpuinfo") ? FromCpuInfo(File.ReadAllText("/proc/cpuinfo")) : null;

    /// <summary>The "model name" line of /proc/cpuinfo, or null.</summary>
    public static string? ModelName(string cpuinfo) => Field(cpuinfo, "model name");

    /// <summary>The short name from the text of /proc/cpuinfo (its first processor's fields), or null if a field is missing.</summary>
    public static string? FromCpuInfo(string cpuinfo)
    {
        string? model = Field(cpuinfo, "model name"), family = Field(cpuinfo, "cpu family"), number = Field(cpuinfo, "model");
        if (model is null || family is null || number is null) return null;
        string name = model.ToLowerInvariant();
        name = Marks().Replace(name, "");
        name = Words().Replace(name, "");
        int at = name.IndexOf('@');
        if (at >= 0) name = name[..at];
        name = NonAlphanumeric().Replace(name, "-").Trim('-');
        return $"{name}-f{family.Replace(" ", "")}m{number.Replace(" ", "")}";
    }

    /// <summary>The value of the first line "key : value" (the key followed only by blanks before the colon).</summary>
    private static string? Field(string cpuinfo, string key)
    {
        foreach (var line in cpuinfo.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon < 0 || !line.StartsWith(key, StringComparison.Ordinal) || line.AsSpan(key.Length, colon - key.Length).Trim().Length != 0)
                continue;
            return line[(colon + 1)..].TrimStart(' ', '\t').TrimEnd('\r');
        }
        return null;
    }

    [GeneratedRegex(@"\((r|tm)\)")]
    private static partial Regex Marks();

    [GeneratedRegex("cpu|processor|[0-9]+-core")]
    private static partial Regex Words();

    [GeneratedRegex("[^a-z0-9]+")]
    private static partial Regex NonAlphanumeric();
}
