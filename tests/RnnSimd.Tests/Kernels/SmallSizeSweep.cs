using RnnSimd.Kernels;
using RnnSimd.Tests.Reference;
using Xunit;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Kernels;

/// <summary>
/// Exhaustive small sizes at every supported kernel set, every operand at the very end of a buffer followed by a
/// no-access page (<see cref="GuardedBuffer"/>): an over-read or over-write faults, an under-write breaks a sentinel.
/// </summary>
[Trait("Category", "Kernels")]
public class SmallSizeSweep
{
    public static TheoryData<string> SetNames()
    {
        var data = new TheoryData<string>();
        foreach (var s in KernelSet.Supported) data.Add(s.Name);
        return data;
    }

    [Theory, MemberData(nameof(SetNames))]
    public void ElementWise_every_length_0_to_49(string setName)
    {
        var set = KernelSet.Get(setName);
        using GuardedBuffer gx = new(64), gy = new(64), gz = new(64), gd = new(64);
        for (int n = 0; n <= 49; n++)
        {
            float[] xs = Data(n, n, 4f), ys = Data(n + 100, n), zs = Data(n + 200, n);
            Span<float> x = gx.End(n), y = gy.End(n), z = gz.End(n), d = gd.End(n);
            xs.CopyTo(x); ys.CopyTo(y); zs.CopyTo(z);

            set.Map<TanhOp>(x, d);
            AssertClose($"tanh n={n}", d, xs.Select(v => Math.Tanh(v)).ToArray(), _ => 1e-38, 5e-7);
            set.Map<SigmoidOp>(x, d);
            AssertClose($"sigmoid n={n}", d, xs.Select(v => NaiveKernels.Sigmoid(v)).ToArray(), _ => 1e-38, 5e-7);
            set.Map<ReluOp>(x, d);
            AssertClose($"relu n={n}", d, xs.Select(v => NaiveKernels.Relu(v)).ToArray(), _ => 0, 0);
            set.Map<AddOp>(x, y, d);
            AssertClose($"add n={n}", d, xs.Select((v, i) => (double)(v + ys[i])).ToArray(), _ => 0, 0);
            set.Map<MultiplyAddOp>(x, y, z, d);
            AssertClose($"fma n={n}", d, xs.Select((v, i) => (double)MathF.FusedMultiplyAdd(v, ys[i], zs[i])).ToArray(), _ => 0, 0);
            set.ActivationBackward<TanhOp>(y, z, d);
            AssertClose($"tanh' n={n}", d, ys.Select((v, i) => NaiveKernels.TanhBackward(v, zs[i])).ToArray(), _ => 1e-38, 2.01 * U);

            // in place, same start
            Span<float> inPlace = gd.End(n);
            xs.CopyTo(inPlace);
            set.Map<TanhOp>(inPlace, inPlace);
            AssertClose($"tanh in place n={n}", inPlace, xs.Select(v => Math.Tanh(v)).ToArray(), _ => 1e-38, 5e-7);

            double e = 0, abs = 0;
            for (int i = 0; i < n; i++) { e += (double)xs[i] * ys[i]; abs += Math.Abs((double)xs[i] * ys[i]); }
            AssertClose($"dot n={n}", [set.Dot(x, y)], [e], _ => (n + 5) * U * abs + 1e-38, 0);
            xs.CopyTo(d);
            set.Axpy(0.5f, y, d);
            AssertClose($"axpy n={n}", d, xs.Select((v, i) => (double)MathF.FusedMultiplyAdd(0.5f, ys[i], v)).ToArray(), _ => 0, 0);
            foreach (var g in new[] { gx, gy, gz, gd }) g.AssertSentinelBefore(n);
        }
    }

    [Theory, MemberData(nameof(SetNames))]
    public void Gemm_every_m_n_k_1_to_20(string setName)
    {
        var set = KernelSet.Get(setName);
        using GuardedBuffer ga = new(400), gb = new(400), gc = new(400);
        var rng = new Random(7);
        for (int m = 1; m <= 20; m++)
        for (int n = 1; n <= 20; n++)
        for (int k = 1; k <= 20; k++)
        {
            bool ta = rng.Next(2) == 1, tb = rng.Next(2) == 1;
            float beta = rng.Next(2);
            float[] a = Data(m * 400 + n * 20 + k, m * k), b = Data(k * 7 + n, k * n), c0 = Data(m + n, m * n);
            Span<float> sa = ga.End(m * k), sb = gb.End(k * n), sc = gc.End(m * n);
            a.CopyTo(sa); b.CopyTo(sb); c0.CopyTo(sc);
            set.Gemm(ta, tb, m, n, k, 1f, sa, ta ? m : k, sb, tb ? k : n, beta, sc, n);
            var (e, absSum) = NaiveKernels.Gemm(ta, tb, m, n, k, 1, a, 0, ta ? m : k, b, 0, tb ? k : n, beta, c0, 0, n);
            AssertClose($"{set} m={m} n={n} k={k} ta={ta} tb={tb} beta={beta}", sc, e, i => (k + 6) * U * absSum[i] + 1e-38, 0);
            ga.AssertSentinelBefore(m * k); gb.AssertSentinelBefore(k * n); gc.AssertSentinelBefore(m * n);
        }
    }

    [Theory, MemberData(nameof(SetNames))]
    public void Gemv_every_shape_1_to_40(string setName)
    {
        var set = KernelSet.Get(setName);
        using GuardedBuffer gw = new(1600), gx = new(64), gy = new(64);
        for (int rows = 1; rows <= 40; rows++)
        for (int cols = 1; cols <= 40; cols++)
        {
            float[] w = Data(rows * 41 + cols, rows * cols), x = Data(cols, cols), y0 = Data(rows + 1000, rows);
            Span<float> sw = gw.End(rows * cols), sx = gx.End(cols), sy = gy.End(rows);
            w.CopyTo(sw); x.CopyTo(sx); y0.CopyTo(sy);
            var packed = new PackedGemvMatrix(rows, cols, sw, cols);
            set.Gemv(packed, sx, sy, accumulate: true);
            var (e, abs) = NaiveKernels.Gemv(rows, cols, w, cols, x, y0);
            AssertClose($"packed {rows}x{cols}", sy, e, i => (cols + 5) * U * abs[i] + 1e-38, 0);

            set.Gemv(rows, cols, sw, cols, sx, sy);
            (e, abs) = NaiveKernels.Gemv(rows, cols, w, cols, x, null);
            AssertClose($"row-major {rows}x{cols}", sy, e, i => (cols + 5) * U * abs[i] + 1e-38, 0);

            y0.CopyTo(sy);
            set.GemvTransposed(rows, cols, sw, cols, sy, sx, accumulate: true);
            (e, abs) = NaiveKernels.GemvTransposed(rows, cols, w, cols, y0, x);
            AssertClose($"transposed {rows}x{cols}", sx, e, i => (rows + 5) * U * abs[i] + 1e-38, 0);
            gw.AssertSentinelBefore(rows * cols); gx.AssertSentinelBefore(cols); gy.AssertSentinelBefore(rows);
        }
    }
}
