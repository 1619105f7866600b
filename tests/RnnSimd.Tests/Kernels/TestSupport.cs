using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using RnnSimd.Kernels;

namespace RnnSimd.Tests.Kernels;

/// <summary>Shared generators, data and the tolerance checker for kernel tests.</summary>
public static class TestSupport
{
    /// <summary>Unit roundoff of float: 2^-24.</summary>
    public const double U = 1.0 / (1 << 24);

    /// <summary>Sizes around vector boundaries (1, 7, 15, 16, 17, 31, 33, 63, 65, ...).</summary>
    public static readonly int[] BoundarySizes = [1, 2, 3, 7, 8, 9, 12, 13, 15, 16, 17, 23, 24, 31, 32, 33, 47, 48, 49, 63, 64, 65, 96, 127, 128, 129];

    /// <summary>A dimension: mostly a vector-boundary size, sometimes any size up to <paramref name="max"/>.</summary>
    public static Gen<int> Dim(int max = 130) => Gen.Frequency(
        (3, Gen.Elements(BoundarySizes.Where(s => s <= max).ToArray())),
        (1, Gen.Choose(1, max)));

    /// <summary>A data seed, generated separately from shapes.</summary>
    public static Gen<int> Seed => Gen.Choose(0, int.MaxValue);

    /// <summary>Uniform data in [-scale, scale] from a seed; <paramref name="pad"/> extra NaN floats before the data catch over-reads.</summary>
    public static float[] Data(int seed, int n, float scale = 1f)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return v;
    }

    /// <summary>The kernel sets this process can run (each property checks all of them).</summary>
    public static IReadOnlyList<KernelSet> Sets => KernelSet.Supported;

    /// <summary>
    /// Checks |actual - expected| &lt;= atol[i] + rtol*|expected| element by element; on failure throws with the worst
    /// index (by ratio of error to allowance), both values and the first few mismatches.
    /// </summary>
    public static void AssertClose(string what, ReadOnlySpan<float> actual, ReadOnlySpan<double> expected,
        Func<int, double> atol, double rtol)
    {
        if (actual.Length != expected.Length)
            throw new Xunit.Sdk.XunitException($"{what}: length {actual.Length}, expected {expected.Length}");
        int worst = -1, bad = 0;
        double worstRatio = 0;
        var first = new StringBuilder();
        for (int i = 0; i < actual.Length; i++)
        {
            double e = expected[i], a = actual[i];
            double allow = atol(i) + rtol * Math.Abs(e);
            double err = Math.Abs(a - e);
            bool ok = err <= allow || (double.IsNaN(a) && double.IsNaN(e)) || a == e;
            if (!ok)
            {
                if (bad < 5) first.Append(CultureInfo.InvariantCulture, $"  [{i}] actual {a:R} expected {e:R} err {err:E3} allowed {allow:E3}\n");
                bad++;
            }
            double ratio = allow > 0 ? err / allow : (err > 0 ? double.PositiveInfinity : 0);
            if (double.IsNaN(ratio) || ratio > worstRatio) { worstRatio = double.IsNaN(ratio) ? double.PositiveInfinity : ratio; worst = i; }
        }
        if (bad > 0)
            throw new Xunit.Sdk.XunitException(
                $"{what}: {bad} of {actual.Length} elements out of tolerance; worst index {worst}: actual {actual[worst]:R}, " +
                $"expected {expected[worst]:R} (error/allowance {worstRatio:F2})\nfirst mismatches:\n{first}");
    }

    /// <summary>Asserts two float spans are bitwise identical, naming the first difference.</summary>
    public static void AssertBitwiseEqual(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        if (expected.Length != actual.Length)
            throw new Xunit.Sdk.XunitException($"{what}: length {actual.Length}, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                throw new Xunit.Sdk.XunitException($"{what}: first difference at [{i}]: {actual[i]:R} vs {expected[i]:R}");
    }

    /// <summary>Runs a property check body, turning it into a FsCheck property with a readable label.</summary>
    public static Property Check<T>(Gen<T> gen, Action<T> body) =>
        Prop.ForAll(gen.ToArbitrary(), (T value) => body(value));

    /// <summary>
    /// Asserts that <paramref name="call"/> allocates nothing in steady state: after warm-up, a window of
    /// <paramref name="calls"/> calls must allocate exactly 0 bytes on this thread. The runtime itself can allocate
    /// on the calling thread once while it promotes freshly warmed-up methods to optimised code (tiered compilation,
    /// seen only when other tests load the machine), so up to three windows are measured and the first one at 0
    /// passes; an allocation of our own would show in every window. Returns the bytes of every window measured.
    /// </summary>
    /// <summary>
    /// As <see cref="SteadyStateAllocations"/>, but counting the library's worker threads too, for calls whose work runs
    /// on them (each worker records its own GC.GetAllocatedBytesForCurrentThread after every job part; counting the
    /// whole process instead, GC.GetTotalAllocatedBytes, also saw the test host's own threads allocate a few hundred
    /// bytes per window on a loaded machine). Up to 5 windows are tried: a call that allocates does so in every window.
    /// </summary>
    public static long[] SteadyStateAllocationsAllThreads(Action call, int calls)
    {
        // The calling thread's bytes plus the library's worker threads' (each records its own count after every job
        // part it runs): exact for what the call does, whatever else the test host's threads allocate meanwhile.
        static long Bytes() => GC.GetAllocatedBytesForCurrentThread() + RnnSimd.Kernels.Parallelism.WorkerAllocatedBytes;
        for (int i = 0; i < Math.Max(calls, 50); i++) call();
        var windows = new List<long>();
        for (int w = 0; w < 5; w++)
        {
            long before = Bytes();
            for (int i = 0; i < calls; i++) call();
            windows.Add(Bytes() - before);
            if (windows[^1] == 0) break;
        }
        return windows.ToArray();
    }

    public static long[] SteadyStateAllocations(Action call, int calls)
    {
        for (int i = 0; i < Math.Max(calls, 50); i++) call();
        var windows = new List<long>();
        for (int w = 0; w < 3; w++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < calls; i++) call();
            windows.Add(GC.GetAllocatedBytesForCurrentThread() - before);
            if (windows[^1] == 0) break;
        }
        return windows.ToArray();
    }
}
