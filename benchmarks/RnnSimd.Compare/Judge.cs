using Perfolizer.Mathematics.SignificanceTesting.Base;
using Perfolizer.Mathematics.SignificanceTesting.MannWhitney;
using Perfolizer.Metrology;
using Pragmastat;

namespace RnnSimd.Compare;

public enum Conclusion { Same, Faster, Slower, Unknown }

/// <summary>
/// Judges one benchmark's times, base against new, the way dotnet/performance's ResultsComparer does: a difference
/// counts only when a statistical test finds the new times shifted beyond both a relative threshold and an absolute
/// noise floor. The test is the one-sided Mann-Whitney U test (on ranks: no normality assumed, and a few outlying
/// iterations cannot carry it) on the measured times per operation, with the other side moved by
/// <c>shift = max(threshold * median(base), noise)</c>:
/// <list type="bullet">
/// <item>Slower: new is stochastically greater than base + shift (p &lt; alpha);</item>
/// <item>Faster: base is stochastically greater than new + shift;</item>
/// <item>Same: neither, which includes every difference under the noise floor or the threshold;</item>
/// <item>Unknown: a side has no (finite) values, or too few for the test ever to reach alpha: the exact one-sided
/// test on n and m distinct values cannot give p below 1 / C(n+m, n), which is 0.05 for 3 against 3.</item>
/// </list>
/// ResultsComparer runs the test once at the threshold and once at the noise floor and needs both to say "not the
/// same"; testing once at the larger shift is equivalent, as a larger shift can only make the test harder to pass.
/// </summary>
public static class Judge
{
    /// <summary>The significance level: with dozens of benchmarks compared at once, 0.05 would flag about one in
    /// twenty of those that sit right at the threshold.</summary>
    public const double DefaultAlpha = 0.01;

    public static Conclusion Decide(IReadOnlyList<double>? baseNs, IReadOnlyList<double>? newNs,
        double threshold, double noiseNs, double alpha = DefaultAlpha)
    {
        if (baseNs is null || newNs is null || baseNs.Count == 0 || newNs.Count == 0) return Conclusion.Unknown;
        if (!baseNs.All(double.IsFinite) || !newNs.All(double.IsFinite)) return Conclusion.Unknown;
        if (MinimumPValue(baseNs.Count, newNs.Count) >= alpha) return Conclusion.Unknown;
        double shift = Math.Max(threshold * Median(baseNs), noiseNs);
        if (PValueGreater(newNs, baseNs, shift) < alpha) return Conclusion.Slower;
        if (PValueGreater(baseNs, newNs, shift) < alpha) return Conclusion.Faster;
        return Conclusion.Same;
    }

    /// <summary>The smallest p-value the exact one-sided test can give for samples of n and m values,
    /// 1 / C(n+m, n) = prod_{i=1..k} i / (N - k + i), k = min(n, m), N = n + m.</summary>
    public static double MinimumPValue(int n, int m)
    {
        int k = Math.Min(n, m), rest = Math.Max(n, m);
        double p = 1;
        for (int i = 1; i <= k; i++) p *= (double)i / (rest + i);
        return p;
    }

    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>p-value of "x is stochastically greater than y + shift".</summary>
    private static double PValueGreater(IReadOnlyList<double> x, IReadOnlyList<double> y, double shift) =>
        MannWhitneyTest.Instance.GetPValue(
            new Sample(x.ToArray()), new Sample(y.Select(v => v + shift).ToArray()),
            AlternativeHypothesis.Greater, Threshold.Zero).Value;
}
