using System.Globalization;
using RnnSimd.Kernels;
using Xunit.Abstractions;

namespace RnnSimd.Tests.Kernels;

/// <summary>
/// Accuracy of the internal <see cref="ExpOp"/> (softmax's exp) against Math.Exp through every kernel set, which must
/// agree bitwise: every 64th bit pattern over the whole float range plus edges. Relative error &lt;= 2^-23 (two ulp)
/// where e^x is a normal float; absolute error &lt;= 2^-149 (one subnormal step) below 2^-126.
/// </summary>
[Trait("Category", "Kernels")]
public sealed class ExpOpAccuracyTests(ITestOutputHelper output)
{
    [Fact]
    public void Sweep_against_Math_Exp()
    {
        const int Chunk = 1 << 14;
        var sets = KernelSet.Supported;
        var x = new float[Chunk];
        var ys = sets.Select(_ => new float[Chunk]).ToArray();
        double maxRel = 0, maxSubAbs = 0;
        float maxRelAt = 0;
        long count = 0;
        int fill = 0;
        void Flush()
        {
            for (int s = 0; s < sets.Count; s++) sets[s].Map<ExpOp>(x.AsSpan(0, fill), ys[s].AsSpan(0, fill));
            for (int i = 0; i < fill; i++)
            {
                for (int s = 1; s < sets.Count; s++)
                    if (BitConverter.SingleToInt32Bits(ys[s][i]) != BitConverter.SingleToInt32Bits(ys[0][i]))
                        Assert.Fail($"exp({x[i]:R}): {sets[s]} gives {ys[s][i]:R}, {sets[0]} {ys[0][i]:R}");
                double e = Math.Exp(x[i]), a = ys[0][i];
                if (float.IsNaN(x[i])) { Assert.True(float.IsNaN(ys[0][i]), $"exp(NaN) = {a}"); continue; }
                if (e > float.MaxValue) { Assert.True(float.IsPositiveInfinity(ys[0][i]), $"exp({x[i]:R}) = {a}"); continue; }
                if (e >= 1.1754943508222875e-38)
                {
                    double rel = Math.Abs(a - e) / e;
                    if (rel > maxRel) { maxRel = rel; maxRelAt = x[i]; }
                }
                else
                {
                    maxSubAbs = Math.Max(maxSubAbs, Math.Abs(a - e));
                }
            }
            count += fill;
            fill = 0;
        }
        void Add(float v) { x[fill++] = v; if (fill == Chunk) Flush(); }
        for (ulong p = 0; p <= uint.MaxValue; p += 64) Add(BitConverter.UInt32BitsToSingle((uint)p));
        foreach (float edge in new[] { 0f, -0f, -104f, -103.972f, -87.3365f, 88.7228f, 88.75f, -88.75f, 1f, -1f })
        {
            float v = edge;
            for (int i = 0; i < 256; i++) v = MathF.BitDecrement(v);
            for (int i = 0; i <= 512; i++, v = MathF.BitIncrement(v)) Add(v);
        }
        foreach (float v in new[] { float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.MaxValue, float.MinValue, float.Epsilon })
            Add(v);
        Flush();

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"exp: {count:N0} inputs x {sets.Count} sets; max rel {maxRel:E3} at x = {maxRelAt:R}; max abs below 2^-126 {maxSubAbs:E3}"));
        Assert.True(maxRel <= 1.0 / (1 << 23), $"max rel {maxRel:E3} at x = {maxRelAt:R}");
        Assert.True(maxSubAbs <= 1.401298464324817e-45, $"max abs below 2^-126 {maxSubAbs:E3}");

        // Exact special values through every width (64 elements: the vector paths run).
        float[] special = Enumerable.Range(0, 64).Select(i => (i % 4) switch { 0 => 0f, 1 => float.NegativeInfinity, 2 => -104f, _ => float.PositiveInfinity }).ToArray();
        foreach (var set in sets)
        {
            var r = new float[64];
            set.Map<ExpOp>(special, r);
            for (int i = 0; i < 64; i++) Assert.Equal((i % 4) switch { 0 => 1f, 1 => 0f, 2 => 0f, _ => float.PositiveInfinity }, r[i]);
        }
    }
}
