using System.Globalization;

namespace RnnSimd.Report;

/// <summary>How numbers are written in the report: three significant digits, the unit chosen so the number is below 1000.</summary>
internal static class Units
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>1234.5 → "1.23 µs"; 999.7 → "1.00 µs" (the unit is chosen after rounding).</summary>
    public static string Time(double ns) => ns switch
    {
        < 999.5 => $"{Sig(ns)} ns",
        < 999_500 => $"{Sig(ns / 1e3)} µs",
        < 999_500_000 => $"{Sig(ns / 1e6)} ms",
        _ => $"{Sig(ns / 1e9)} s",
    };

    /// <summary>Bytes as BenchmarkDotNet writes them (1 KB = 1024 B).</summary>
    public static string Bytes(long bytes) => bytes switch
    {
        < 1024 => string.Create(Inv, $"{bytes} B"),
        < 1024 * 1024 => $"{Sig(bytes / 1024.0)} KB",
        _ => $"{Sig(bytes / (1024.0 * 1024))} MB",
    };

    /// <summary>
    /// RnnSimd against a peer from their times: ratio = peer / RnnSimd; "RnnSimd 4.20x faster" when the peer takes 4.2
    /// times as long, "RnnSimd 2.00x slower" when it takes half.
    /// </summary>
    public static string Ratio(double peerNs, double rnnSimdNs) => "RnnSimd " + Speedup(peerNs, rnnSimdNs);

    /// <summary>A's speed against B's from their times: "3.55x faster" when B takes 3.55 times as long, "1.20x slower" when A takes longer.</summary>
    public static string Speedup(double baseNs, double ns)
    {
        double r = baseNs / ns;
        return r >= 1 ? $"{Sig(r)}x faster" : $"{Sig(1 / r)}x slower";
    }

    /// <summary>A ratio of sizes: "0.25x", "1.50x".</summary>
    public static string Fraction(double ratio) => $"{Sig(ratio)}x";

    public static string Count(long n) => n.ToString("N0", Inv);

    /// <summary>Three significant digits for 0 &lt;= v &lt; 999.5.</summary>
    private static string Sig(double v) => v.ToString(v >= 99.95 ? "F0" : v >= 9.995 ? "F1" : "F2", Inv);
}
