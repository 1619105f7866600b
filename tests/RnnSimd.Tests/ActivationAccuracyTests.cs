using System.Diagnostics;
using System.Globalization;
using System.Text;
using RnnSimd.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace RnnSimd.Tests;

/// <summary>
/// Accuracy of <see cref="TanhOp"/> and <see cref="SigmoidOp"/> against double precision (Math.Tanh and the double
/// logistic 1 / (1 + Math.Exp(-x))), through every supported kernel set, which must agree bitwise.
/// Tolerances: relative error &lt;= 5e-7 (about 4 ulp) where the expected value is a normal float; where it is below
/// 2^-126 (sigmoid for x &lt; -87.34, tanh of subnormal x) absolute error &lt;= 2^-148 (two subnormal steps: the
/// relative error of a result just above 2^-126 carries on just below it).
/// Measured results are recorded at the top of src/RnnSimd/Kernels/Transcendentals.cs.
/// </summary>
public sealed class ActivationAccuracyTests(ITestOutputHelper output)
{
    private const double MaxRelativeError = 5e-7;
    private const double MaxSubnormalAbsoluteError = 2.802596928649634e-45; // 2^-148, two subnormal steps

    private static double TanhReference(float x) => Math.Tanh(x);

    private static double SigmoidReference(float x) => 1.0 / (1.0 + Math.Exp(-(double)x));

    /// <summary>Inputs near each op's branch points: poly/exp switch, saturation, where results round to 1 or to 0.</summary>
    private static readonly float[] Thresholds =
    [
        0.75f, 9.1f, 9.0109f, 0.3466f, 0.6931f,                       // tanh: poly limit, clamp, rounds-to-1, n changes
        -18f, 17.33f, 104f, -104f, -103.972f, -87.3365f, -88.7228f, 88.7228f, -69.3147f, -69.6f, // sigmoid
    ];

    [Fact]
    public void DenseSweep_Tanh() => DenseSweep<TanhOp>("tanh", TanhReference);

    [Fact]
    public void DenseSweep_Sigmoid() => DenseSweep<SigmoidOp>("sigmoid", SigmoidReference);

    [ExhaustiveFact]
    public void Exhaustive_Tanh() => Exhaustive<TanhOp>("tanh", TanhReference);

    [ExhaustiveFact]
    public void Exhaustive_Sigmoid() => Exhaustive<SigmoidOp>("sigmoid", SigmoidReference);

    [Fact]
    public void SpecialValues_Tanh()
    {
        (float X, float Expected)[] cases =
        [
            (0f, 0f), (-0f, -0f), (float.PositiveInfinity, 1f), (float.NegativeInfinity, -1f),
            (float.MaxValue, 1f), (-float.MaxValue, -1f), (9.1f, 1f), (-9.1f, -1f), (20f, 1f), (-1e30f, -1f),
            (float.Epsilon, float.Epsilon), (-float.Epsilon, -float.Epsilon), (1e-20f, 1e-20f), (-1e-20f, -1e-20f),
            (float.NaN, float.NaN), (BitConverter.Int32BitsToSingle(unchecked((int)0xFFC00001)), float.NaN),
            (BitConverter.Int32BitsToSingle(0x7F800001), float.NaN),
        ];
        CheckSpecial<TanhOp>(cases);
    }

    [Fact]
    public void SpecialValues_Sigmoid()
    {
        (float X, float Expected)[] cases =
        [
            (0f, 0.5f), (-0f, 0.5f), (float.PositiveInfinity, 1f), (float.NegativeInfinity, 0f),
            (float.MaxValue, 1f), (-float.MaxValue, 0f), (18f, 1f), (1e30f, 1f), (-104f, 0f), (-1e30f, 0f),
            (float.Epsilon, 0.5f), (-float.Epsilon, 0.5f),
            (float.NaN, float.NaN), (BitConverter.Int32BitsToSingle(unchecked((int)0xFFC00001)), float.NaN),
            (BitConverter.Int32BitsToSingle(0x7F800001), float.NaN),
        ];
        CheckSpecial<SigmoidOp>(cases);
    }

    [Fact]
    public void Tanh_IsOddBitwise()
    {
        var x = new float[4096];
        for (int i = 0; i < x.Length; i++) x[i] = MathF.ScaleB(1f + i / 4096f, i % 40 - 30);
        var neg = x.Select(v => -v).ToArray();
        foreach (var set in KernelSet.Supported)
        {
            var yp = new float[x.Length];
            var yn = new float[x.Length];
            set.Map<TanhOp>(x, yp);
            set.Map<TanhOp>(neg, yn);
            for (int i = 0; i < x.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(yn[i]) == BitConverter.SingleToInt32Bits(-yp[i]),
                    $"{set.Name}: tanh({-x[i]:R}) = {yn[i]:R} but -tanh({x[i]:R}) = {-yp[i]:R}");
        }
    }

    /// <summary>
    /// Every 64th bit pattern over all 2^32 (all finite floats, the infinities and some NaNs), every 8th pattern in
    /// [-1, 1], and the edge values with 256 neighbours either side of each threshold.
    /// </summary>
    private void DenseSweep<TOp>(string name, Func<float, double> reference) where TOp : IActivation
    {
        var sw = Stopwatch.StartNew();
        var stats = new ErrorStats();
        var sweep = new Sweep<TOp>(reference);
        sweep.Run(Patterns(0, uint.MaxValue, 64), stats);
        sweep.Run(Patterns(0, 0x3F800000, 8), stats);                  // [+0, 1]
        sweep.Run(Patterns(0x80000000, 0xBF800000, 8), stats);         // [-0, -1]
        sweep.Run(EdgeValues(), stats);
        Report(name, "dense sweep", stats, sw.Elapsed);
    }

    /// <summary>All 2^32 bit patterns, in parallel chunks.</summary>
    private void Exhaustive<TOp>(string name, Func<float, double> reference) where TOp : IActivation
    {
        var sw = Stopwatch.StartNew();
        var total = new ErrorStats();
        const int chunks = 1 << 12;                                   // 2^20 patterns each
        Parallel.For(0, chunks, () => (new Sweep<TOp>(reference), new ErrorStats()),
            (c, _, local) =>
            {
                uint first = (uint)c << 20;
                local.Item1.Run(Patterns(first, first + ((1u << 20) - 1), 1), local.Item2);
                return local;
            },
            local => { lock (total) total.Merge(local.Item2); });
        Report(name, "exhaustive", total, sw.Elapsed);
    }

    private void Report(string name, string what, ErrorStats s, TimeSpan elapsed)
    {
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{name} {what}: {s.Count:N0} inputs x {KernelSet.Supported.Count} sets in {elapsed.TotalSeconds:F1} s; " +
            $"max rel {s.MaxRel:E3} at x = {s.MaxRelAt:R} (got {s.MaxRelGot:R}, expected {s.MaxRelExpected:R}); " +
            $"max abs {s.MaxAbs:E3} at x = {s.MaxAbsAt:R}; max abs where expected < 2^-126: {s.MaxSubAbs:E3} at x = {s.MaxSubAt:R}; " +
            $"set mismatches {s.Mismatches}, NaN failures {s.NaNFailures}");
        output.WriteLine(line);
        Assert.True(s.Mismatches == 0, $"kernel sets disagree: {line}\n{s.Details}");
        Assert.True(s.NaNFailures == 0, $"NaN handling: {line}\n{s.Details}");
        Assert.True(s.MaxRel <= MaxRelativeError, line);
        Assert.True(s.MaxSubAbs <= MaxSubnormalAbsoluteError, line);
    }

    private static void CheckSpecial<TOp>((float X, float Expected)[] cases) where TOp : IActivation
    {
        // Pad to 64 so every width's vector path runs (lengths below one vector fall back to narrower code).
        var x = new float[64];
        for (int i = 0; i < x.Length; i++) x[i] = cases[i % cases.Length].X;
        foreach (var set in KernelSet.Supported)
        {
            var y = new float[x.Length];
            set.Map<TOp>(x, y);
            for (int i = 0; i < x.Length; i++)
            {
                float e = cases[i % cases.Length].Expected;
                bool ok = float.IsNaN(e) ? float.IsNaN(y[i])
                    : BitConverter.SingleToInt32Bits(y[i]) == BitConverter.SingleToInt32Bits(e);
                Assert.True(ok, string.Create(CultureInfo.InvariantCulture,
                    $"{set.Name}: {typeof(TOp).Name}({x[i]:R}) = {y[i]:R} (0x{BitConverter.SingleToInt32Bits(y[i]):X8}), expected {e:R}"));
            }
        }
    }

    /// <summary>Bit patterns first, first + step, ... up to last (inclusive).</summary>
    private static IEnumerable<float> Patterns(uint first, uint last, uint step)
    {
        for (ulong p = first; p <= last; p += step) yield return BitConverter.UInt32BitsToSingle((uint)p);
    }

    private static IEnumerable<float> EdgeValues()
    {
        float[] singles =
        [
            0f, -0f, float.Epsilon, -float.Epsilon, 2 * float.Epsilon, -2 * float.Epsilon, float.MinValue, float.MaxValue,
            BitConverter.Int32BitsToSingle(0x00800000), BitConverter.Int32BitsToSingle(unchecked((int)0x80800000)),
            BitConverter.Int32BitsToSingle(0x007FFFFF), float.PositiveInfinity, float.NegativeInfinity, float.NaN, -float.NaN,
        ];
        foreach (float v in singles) yield return v;
        foreach (float t in Thresholds)
        {
            foreach (float c in new[] { t, -t })
            {
                float v = c;
                for (int i = 0; i < 256; i++) v = MathF.BitDecrement(v);
                for (int i = 0; i <= 512; i++, v = MathF.BitIncrement(v)) yield return v;
            }
        }
    }

    /// <summary>Runs chunks of inputs through every supported set, compares the sets bitwise and accumulates errors.</summary>
    private sealed class Sweep<TOp>(Func<float, double> reference) where TOp : IActivation
    {
        private const int Chunk = 1 << 14;
        private readonly float[] _x = new float[Chunk];
        private readonly float[][] _y = KernelSet.Supported.Select(_ => new float[Chunk]).ToArray();

        public void Run(IEnumerable<float> inputs, ErrorStats stats)
        {
            int n = 0;
            foreach (float v in inputs)
            {
                _x[n++] = v;
                if (n == Chunk) { Flush(n, stats); n = 0; }
            }
            if (n > 0) Flush(n, stats);
        }

        private void Flush(int n, ErrorStats stats)
        {
            var sets = KernelSet.Supported;
            for (int s = 0; s < sets.Count; s++) sets[s].Map<TOp>(_x.AsSpan(0, n), _y[s].AsSpan(0, n));
            float[] y0 = _y[0];
            for (int i = 0; i < n; i++)
            {
                float x = _x[i], y = y0[i];
                int bits = BitConverter.SingleToInt32Bits(y);
                for (int s = 1; s < sets.Count; s++)
                {
                    if (BitConverter.SingleToInt32Bits(_y[s][i]) != bits)
                        stats.Mismatch($"{sets[s].Name}({x:R}) = {_y[s][i]:R} (0x{BitConverter.SingleToInt32Bits(_y[s][i]):X8}) but {sets[0].Name} = {y:R} (0x{bits:X8})");
                }
                stats.Add(x, y, reference(x));
            }
        }
    }

    private sealed class ErrorStats
    {
        private const double MinNormal = 1.1754943508222875e-38; // 2^-126
        private readonly StringBuilder _details = new();
        private int _detailLines;

        public long Count;
        public double MaxRel;
        public float MaxRelAt, MaxRelGot;
        public double MaxRelExpected;
        public double MaxAbs;
        public float MaxAbsAt;
        public double MaxSubAbs;
        public float MaxSubAt;
        public long Mismatches;
        public long NaNFailures;

        public string Details => _details.ToString();

        public void Add(float x, float y, double e)
        {
            Count++;
            if (double.IsNaN(e))
            {
                if (!float.IsNaN(y)) { NaNFailures++; Note($"f({x:R}) = {y:R}, expected NaN"); }
                return;
            }
            if (float.IsNaN(y)) { NaNFailures++; Note($"f({x:R}) = NaN, expected {e:R}"); return; }
            double abs = Math.Abs(y - e);
            if (abs > MaxAbs) { MaxAbs = abs; MaxAbsAt = x; }
            if (Math.Abs(e) >= MinNormal)
            {
                double rel = abs / Math.Abs(e);
                if (rel > MaxRel) { MaxRel = rel; MaxRelAt = x; MaxRelGot = y; MaxRelExpected = e; }
            }
            else if (abs > MaxSubAbs) { MaxSubAbs = abs; MaxSubAt = x; }
        }

        public void Mismatch(string what)
        {
            Mismatches++;
            Note(what);
        }

        private void Note(string what)
        {
            if (_detailLines++ < 10) _details.AppendLine(what);
        }

        public void Merge(ErrorStats o)
        {
            Count += o.Count;
            if (o.MaxRel > MaxRel) (MaxRel, MaxRelAt, MaxRelGot, MaxRelExpected) = (o.MaxRel, o.MaxRelAt, o.MaxRelGot, o.MaxRelExpected);
            if (o.MaxAbs > MaxAbs) (MaxAbs, MaxAbsAt) = (o.MaxAbs, o.MaxAbsAt);
            if (o.MaxSubAbs > MaxSubAbs) (MaxSubAbs, MaxSubAt) = (o.MaxSubAbs, o.MaxSubAt);
            Mismatches += o.Mismatches;
            NaNFailures += o.NaNFailures;
            if (_detailLines < 10) { _details.Append(o.Details); _detailLines += o._detailLines; }
        }
    }
}

/// <summary>A fact that runs only when <c>RNNSIMD_EXHAUSTIVE=1</c> (it takes minutes).</summary>
public sealed class ExhaustiveFactAttribute : FactAttribute
{
    /// <summary>The environment variable that enables exhaustive tests.</summary>
    public const string Variable = "RNNSIMD_EXHAUSTIVE";

    /// <summary>Skips unless the environment variable is set to 1.</summary>
    public ExhaustiveFactAttribute()
    {
        if (Environment.GetEnvironmentVariable(Variable) != "1")
            Skip = "exhaustive 2^32 sweep: set RNNSIMD_EXHAUSTIVE=1 to run";
    }
}
