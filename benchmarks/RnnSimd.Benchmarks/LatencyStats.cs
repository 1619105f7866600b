namespace RnnSimd.Benchmarks;

/// <summary>
/// Order statistics of measured durations, in nanoseconds. Percentiles use the nearest-rank definition: the p-th
/// percentile of n sorted samples is the sample at rank ceil(p n) (1-based), so it is always a measured value and
/// at least a fraction p of the samples are at or below it. p is a fraction num/den evaluated in integers, so
/// p99.9 of 10^6 samples is rank 999000 exactly (in double, 0.999 * 10^6 rounds above 999000 and ceil gives 999001).
/// BCL only: tests/RnnSimd.Tests compiles this file too (linked), so the math is tested without referencing the
/// benchmark project.
/// </summary>
internal readonly record struct LatencyStats(int Count, double P50Ns, double P99Ns, double P999Ns, double MaxNs, double MeanNs)
{
    /// <summary>
    /// The statistics of <paramref name="ticks"/> (durations in Stopwatch ticks, <paramref name="ticksPerSecond"/> of
    /// them per second; sorted in place).
    /// </summary>
    public static LatencyStats FromTicks(long[] ticks, long ticksPerSecond)
    {
        if (ticks.Length == 0) throw new ArgumentException("no samples.", nameof(ticks));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ticksPerSecond);
        Array.Sort(ticks);
        double ns = 1e9 / ticksPerSecond;
        long sum = 0;
        foreach (long t in ticks) sum = checked(sum + t);
        return new(ticks.Length,
            Percentile(ticks, 50, 100) * ns,
            Percentile(ticks, 99, 100) * ns,
            Percentile(ticks, 999, 1000) * ns,
            ticks[^1] * ns,
            (double)sum / ticks.Length * ns);
    }

    /// <summary>The nearest-rank percentile num/den (0 &lt; num/den &lt;= 1) of ascending <paramref name="sorted"/>.</summary>
    public static long Percentile(ReadOnlySpan<long> sorted, long num, long den)
    {
        if (sorted.IsEmpty) throw new ArgumentException("no samples.", nameof(sorted));
        if (num <= 0 || den <= 0 || num > den) throw new ArgumentOutOfRangeException(nameof(num), $"percentile {num}/{den} is not in (0, 1].");
        long rank = (sorted.Length * num + den - 1) / den;                 // ceil(n num / den), in 1..n
        return sorted[(int)rank - 1];
    }
}
