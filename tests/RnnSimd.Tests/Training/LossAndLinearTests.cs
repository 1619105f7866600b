using System.Globalization;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnSimd.Kernels;
using RnnSimd.Layers;
using RnnSimd.Tests.Reference;
using RnnSimd.Training;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Training;

/// <summary>
/// The output layer (<see cref="Linear"/>) and the losses (<see cref="Losses"/>) against the naive double oracle
/// (<see cref="NaiveLosses"/>) at every supported kernel set; the oracle's own gradients against finite differences;
/// numerical stability, agreement across kernel sets, zero allocation and bad input.
/// </summary>
/// <remarks>
/// Tolerances (|a - e| &lt;= allowance, u = 2^-24), each derived from the operations performed:
/// <list type="bullet">
/// <item>Linear y, dW, dx: GEMMs, (k + 2 ceil(k/256) + 4) u sum |terms| as for the GEMM kernel (k = in, rows, out);
/// y starts the chain from b (beta 1), dW from the previous gradient.</item>
/// <item>Linear db: one float add per row, (rows + 1) u (sum_r |dy| + |db0|).</item>
/// <item>MSE loss: all terms are non-negative; per block of &lt;= 1024 elements each of 16 lanes is an FMA chain of
/// &lt;= 64 terms and a 4-level tree, d = y - t is rounded once (twice in d^2): rtol (64 + 4 + 3) u; blocks add in double.</item>
/// <item>MSE dy: fl(fl(2/n) fl(y - t)): three roundings, rtol 3.01 u.</item>
/// <item>Cross-entropy dLogits[j] = p_j s - [j = t] s: p_j = e_j c with e_j = exp(fl(x_j - m)), c = fl(s / sum).
/// Relative error of p_j: |x_j - m| u (the rounded subtraction, amplified by exp) + 2u (exp, measured 1.3u) +
/// (max_k |x_k - m| + 2) u (the terms of the sum) + (ceil(C/16) + 4) u (lane chains and tree) + 2u (c and e c);
/// allowance = (|x_j - m| + max_k |x_k - m| + ceil(C/16) + 12) u p_j s + u |e|, plus u s at the target, whose
/// gradient is one FMA p_j s - fl(s) (s = 1/count is rounded to float).</item>
/// <item>Cross-entropy loss: per row |d log(sum)| &lt;= the sum's relative error (max_k |x_k - m| + ceil(C/16) + 8) u,
/// summed over rows and scaled; m - x_t is exact in double.</item>
/// </list>
/// </remarks>
[Trait("Category", "Training")]
public class LossAndLinearTests
{
    // ------------------------------------------------------------------------------------------------------------
    // Shapes (generated separately from data) and data
    // ------------------------------------------------------------------------------------------------------------

    private static readonly int[] EdgeSizes = [1, 7, 15, 16, 17, 31, 33, 65];

    /// <summary>Mostly a size at a vector boundary, sometimes any size up to <paramref name="max"/>.</summary>
    private static Gen<int> Size(int max = 70) => Gen.Frequency((3, Gen.Elements(EdgeSizes)), (1, Dim(max)));

    /// <summary>0: no mask; 1: random 0/1 rows (about 70% kept); 2: every row masked.</summary>
    private static Gen<int> MaskKind => Gen.Frequency((2, Gen.Constant(0)), (3, Gen.Constant(1)), (1, Gen.Constant(2)));

    private static float[] Mask(int kind, int rows, int seed)
    {
        if (kind == 0) return [];
        var rng = new Random(seed);
        var m = new float[rows];
        for (int r = 0; r < rows; r++) m[r] = kind == 2 ? 0f : rng.NextDouble() < 0.7 ? 1f : 0f;
        return m;
    }

    private static double[]? D(float[] v) => v.Length == 0 ? null : v.Select(f => (double)f).ToArray();
    private static double[] Dd(ReadOnlySpan<float> v) => v.ToArray().Select(f => (double)f).ToArray();
    private static bool Kept(float[] mask, int r) => mask.Length == 0 || mask[r] != 0f;

    /// <summary>The GEMM kernel's error factor for a k-long FMA chain (see GemmProperties).</summary>
    private static double GemmFactor(int k) => (k + 2 * ((k + Gemm.KBlock - 1) / Gemm.KBlock) + 4) * U;

    // ------------------------------------------------------------------------------------------------------------
    // Linear
    // ------------------------------------------------------------------------------------------------------------

    public sealed record LinearCase(int Rows, int In, int Out, int Seed);

    private static readonly Gen<LinearCase> LinearCases =
        from rows in Gen.Frequency((6, Size()), (1, Gen.Elements(255, 257, 300)))
        from inF in Size()
        from outF in Size()
        from seed in Seed
        select new LinearCase(rows, inF, outF, seed);

    internal static void CheckLinear(LinearCase c, KernelSet set)
    {
        int N = c.Rows, I = c.In, O = c.Out;
        var lin = new Linear(I, O, (ulong)c.Seed, set);
        float[] x = Data(c.Seed, N * I, 2f), dy = Data(c.Seed + 1, N * O), dW0 = Data(c.Seed + 2, O * I), db0 = Data(c.Seed + 3, O);
        // Gradients accumulate: start from non-zero values.
        dW0.CopyTo(lin.Gradients["weight"]);
        db0.CopyTo(lin.Gradients["bias"]);
        var w = Dd(lin.Parameters["weight"]);
        var b = Dd(lin.Parameters["bias"]);

        var y = new float[N * O];
        Array.Fill(y, float.NaN);
        lin.Forward(x, N, y);
        var (ey, yAbs) = NaiveLosses.LinearForward(D(x)!, N, I, O, w, b);
        AssertClose($"{set} {c} y", y, ey, i => GemmFactor(I) * yAbs[i] + 1e-37, 0);

        var dx = new float[N * I];
        Array.Fill(dx, float.NaN); // written, never read
        lin.Backward(x, dy, N, dx);
        var g = NaiveLosses.LinearBackward(D(x)!, D(dy)!, N, I, O, w, D(dW0)!, D(db0)!);
        AssertClose($"{set} {c} dW", lin.Gradients["weight"], g.DW, i => GemmFactor(N) * g.DWAbs[i] + 1e-37, 0);
        AssertClose($"{set} {c} db", lin.Gradients["bias"], g.DB, i => (N + 1) * U * g.DBAbs[i] + 1e-37, 0);
        AssertClose($"{set} {c} dx", dx, g.DX, i => GemmFactor(O) * g.DXAbs[i] + 1e-37, 0);
    }

    [Property(MaxTest = 60)]
    public Property Linear_forward_and_backward_match_oracle() =>
        Check(LinearCases, c => { foreach (var s in Sets) CheckLinear(c, s); });

    /// <summary>After new parameter values and <see cref="Linear.ParametersChanged"/>, both packed copies of W are refreshed.</summary>
    [Fact]
    public void Linear_uses_new_parameters_after_ParametersChanged()
    {
        foreach (var set in Sets)
        {
            var lin = new Linear(17, 33, 1, set);
            float[] x = Data(1, 5 * 17), dy = Data(2, 5 * 33), y = new float[5 * 33], dx = new float[5 * 17];
            lin.Forward(x, 5, y);
            lin.Backward(x, dy, 5, dx); // packs W for both directions
            Data(3, 33 * 17).CopyTo(lin.Parameters["weight"]);
            Data(4, 33).CopyTo(lin.Parameters["bias"]);
            lin.ParametersChanged();
            lin.ZeroGradients();
            CheckAgainstOracle(lin, x, dy, 5, set.Name);
        }

        static void CheckAgainstOracle(Linear lin, float[] x, float[] dy, int n, string set)
        {
            int I = lin.InFeatures, O = lin.OutFeatures;
            var y = new float[n * O];
            var dx = new float[n * I];
            lin.Forward(x, n, y);
            lin.Backward(x, dy, n, dx);
            var w = Dd(lin.Parameters["weight"]);
            var (ey, yAbs) = NaiveLosses.LinearForward(D(x)!, n, I, O, w, Dd(lin.Parameters["bias"]));
            var g = NaiveLosses.LinearBackward(D(x)!, D(dy)!, n, I, O, w, new double[O * I], new double[O]);
            AssertClose($"{set} y", y, ey, i => GemmFactor(I) * yAbs[i] + 1e-37, 0);
            AssertClose($"{set} dx", dx, g.DX, i => GemmFactor(O) * g.DXAbs[i] + 1e-37, 0);
            AssertClose($"{set} dW", lin.Gradients["weight"], g.DW, i => GemmFactor(n) * g.DWAbs[i] + 1e-37, 0);
        }
    }

    [Fact]
    public void Linear_initialisation_is_seeded_uniform_within_one_over_sqrt_in()
    {
        var a = new Linear(25, 9, 7);
        var b = new Linear(25, 9, 7);
        var c = new Linear(25, 9, 8);
        Assert.Equal(a.Parameters.Data, b.Parameters.Data);
        Assert.NotEqual(a.Parameters.Data, c.Parameters.Data);
        Assert.Equal(["weight", "bias"], a.Parameters.Entries.Select(e => e.Name));
        Assert.Equal([9, 25], a.Parameters.Entry("weight").Shape);
        Assert.Equal([9], a.Parameters.Entry("bias").Shape);
        foreach (var e in a.Parameters.Entries)
            foreach (float v in a.Parameters.View(e)) Assert.InRange(v, -0.2f, 0.2f); // 1/sqrt(25)
        Assert.All(a.Gradients.Data, v => Assert.Equal(0f, v));
        // Backward with dx empty still accumulates, and twice gives twice.
        float[] x = Data(1, 3 * 25), dy = Data(2, 3 * 9);
        a.Backward(x, dy, 3, []);
        var once = a.Gradients.Data.ToArray();
        a.Backward(x, dy, 3, []);
        for (int i = 0; i < once.Length; i++) Assert.Equal(2 * once[i], a.Gradients.Data[i], 1e-5f);
        a.ZeroGradients();
        Assert.All(a.Gradients.Data, v => Assert.Equal(0f, v));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Mean squared error
    // ------------------------------------------------------------------------------------------------------------

    public sealed record MseCase(int Rows, int Features, int MaskKind, bool Mean, int Seed);

    private static readonly Gen<MseCase> MseCases =
        from rows in Gen.Frequency((6, Size()), (1, Gen.Elements(1100, 2100)))
        from features in Size()
        from mask in MaskKind
        from mean in Gen.Elements(true, false)
        from seed in Seed
        select new MseCase(rows, features, mask, mean, seed);

    /// <summary>Squared errors sum in float over blocks of at most this many elements (see <see cref="Losses"/>).</summary>
    private const double MseLossRtol = (Losses.SumBlock / 16 + 4 + 3) * U;

    internal static void CheckMse(MseCase c, KernelSet set)
    {
        int n = c.Rows * c.Features;
        float[] y = Data(c.Seed, n, 3f), t = Data(c.Seed + 1, n, 3f), mask = Mask(c.MaskKind, c.Rows, c.Seed + 2);
        var dy = new float[n];
        Array.Fill(dy, float.NaN); // every element is written, masked rows with 0
        double loss = Losses.MeanSquaredError(set, y, t, c.Rows, c.Features, mask, dy, c.Mean);
        var (eLoss, eDy) = NaiveLosses.MeanSquaredError(D(y)!, D(t)!, c.Rows, c.Features, D(mask), c.Mean);
        AssertLossClose($"{set} {c} loss", loss, eLoss, MseLossRtol * eLoss + 1e-300);
        AssertClose($"{set} {c} dy", dy, eDy, _ => 1e-44, 3.01 * U);
    }

    [Property(MaxTest = 80)]
    public Property MeanSquaredError_matches_oracle() =>
        Check(MseCases, c => { foreach (var s in Sets) CheckMse(c, s); });

    private static void AssertLossClose(string what, double actual, double expected, double allowance)
    {
        double err = Math.Abs(actual - expected);
        if (!(err <= allowance) && !(double.IsNaN(actual) && double.IsNaN(expected)))
            throw new Xunit.Sdk.XunitException(string.Create(CultureInfo.InvariantCulture,
                $"{what}: actual {actual:R} expected {expected:R} err {err:E3} allowed {allowance:E3}"));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Softmax cross-entropy
    // ------------------------------------------------------------------------------------------------------------

    public sealed record CeCase(int Rows, int Classes, int MaskKind, bool Mean, float Scale, int Seed);

    private static readonly Gen<CeCase> CeCases =
        from rows in Size(40)
        from classes in Gen.Frequency((6, Size()), (1, Gen.Elements(1, 2, 200)))
        from mask in MaskKind
        from mean in Gen.Elements(true, false)
        from scale in Gen.Elements(0.1f, 1f, 8f)
        from seed in Seed
        select new CeCase(rows, classes, mask, mean, scale, seed);

    /// <summary>Targets in range on kept rows; on masked rows sometimes -1 or past the end (must be ignored).</summary>
    private static int[] Targets(int rows, int classes, float[] mask, int seed)
    {
        var rng = new Random(seed);
        var t = new int[rows];
        for (int r = 0; r < rows; r++)
            t[r] = Kept(mask, r) ? rng.Next(classes) : rng.Next(3) switch { 0 => -1, 1 => classes + 5, _ => rng.Next(classes) };
        return t;
    }

    /// <summary>The allowances of the remarks above for dLogits (per element) and the loss.</summary>
    private static (Func<int, double> Grad, double Loss) CeAllowance(float[] logits, int[] targets, int classes, float[] mask,
        double[] expected, bool mean)
    {
        int rows = targets.Length;
        int kept = Enumerable.Range(0, rows).Count(r => Kept(mask, r));
        double s = mean ? (kept > 0 ? 1.0 / kept : 0) : 1;
        var m = new double[rows];
        var spread = new double[rows];
        double loss = 0;
        int lanes = (classes + 15) / 16;
        for (int r = 0; r < rows; r++)
        {
            m[r] = logits.Skip(r * classes).Take(classes).Max();
            spread[r] = logits.Skip(r * classes).Take(classes).Max(v => m[r] - v);
            if (Kept(mask, r)) loss += (spread[r] + lanes + 8) * U;
        }
        double Grad(int i)
        {
            int r = i / classes, j = i % classes;
            if (!Kept(mask, r)) return 0; // masked rows are exactly zero
            double ps = expected[i] + (j == targets[r] ? s : 0);
            return (m[r] - logits[i] + spread[r] + lanes + 12) * U * ps + U * Math.Abs(expected[i])
                + (j == targets[r] ? U * s : 0) + 1e-44;
        }
        return (Grad, loss * s);
    }

    internal static void CheckCe(CeCase c, KernelSet set)
    {
        int n = c.Rows * c.Classes;
        float[] logits = Data(c.Seed, n, c.Scale), mask = Mask(c.MaskKind, c.Rows, c.Seed + 1);
        int[] targets = Targets(c.Rows, c.Classes, mask, c.Seed + 2);
        var d = new float[n];
        Array.Fill(d, float.NaN);
        double loss = Losses.SoftmaxCrossEntropy(set, logits, targets, c.Classes, mask, d, c.Mean);
        var (eLoss, eD) = NaiveLosses.SoftmaxCrossEntropy(D(logits)!, targets, c.Classes, D(mask), c.Mean);
        var (grad, lossAllow) = CeAllowance(logits, targets, c.Classes, mask, eD, c.Mean);
        Assert.True(loss >= 0, $"{set} {c}: loss {loss} < 0");
        AssertLossClose($"{set} {c} loss", loss, eLoss, lossAllow + 1e-12 * eLoss);
        AssertClose($"{set} {c} dLogits", d, eD, grad, 0);
    }

    [Property(MaxTest = 80)]
    public Property SoftmaxCrossEntropy_matches_oracle() =>
        Check(CeCases, c => { foreach (var s in Sets) CheckCe(c, s); });

    // ------------------------------------------------------------------------------------------------------------
    // Stability
    // ------------------------------------------------------------------------------------------------------------

    /// <summary>Logits of magnitude 1e4 either way, all equal (large, small, zero): finite loss, gradient as the oracle's.</summary>
    [Theory]
    [InlineData(2)]
    [InlineData(17)]
    [InlineData(33)]
    public void Extreme_and_equal_logits_give_finite_loss_and_correct_gradient(int classes)
    {
        var rows = new List<(float[] Logits, int Target)>();
        float[] Row(Func<int, float> f) => Enumerable.Range(0, classes).Select(f).ToArray();
        rows.Add((Row(j => j == 0 ? 1e4f : j == 1 ? -1e4f : 0f), 0));      // target certain
        rows.Add((Row(j => j == 0 ? 1e4f : j == 1 ? -1e4f : 0f), 1));      // target impossible: loss 2e4
        rows.Add((Row(_ => 1e4f), classes - 1));                             // equal, large
        rows.Add((Row(_ => -1e4f), 0));                                      // equal, very negative
        rows.Add((Row(_ => 0f), classes / 2));                               // equal, zero
        rows.Add((Row(j => j % 2 == 0 ? 1e4f : -1e4f), 0));                  // half the classes share the mass
        rows.Add((Row(j => -1e4f + j), classes - 1));                        // close together, far from 0
        rows.Add((Row(j => j == classes - 1 ? -1e4f : 1e4f - j), classes - 1)); // last element (the tail) is the target
        int R = rows.Count;
        float[] logits = rows.SelectMany(r => r.Logits).ToArray();
        int[] targets = rows.Select(r => r.Target).ToArray();
        foreach (bool mean in new[] { false, true })
        {
            var (eLoss, eD) = NaiveLosses.SoftmaxCrossEntropy(D(logits)!, targets, classes, null, mean);
            var (grad, lossAllow) = CeAllowance(logits, targets, classes, [], eD, mean);
            foreach (var set in Sets)
            {
                var d = new float[R * classes];
                double loss = Losses.SoftmaxCrossEntropy(set, logits, targets, classes, [], d, mean);
                Assert.True(double.IsFinite(loss), $"{set}: loss {loss}");
                Assert.All(d, v => Assert.True(float.IsFinite(v)));
                AssertLossClose($"{set} C={classes} mean={mean} loss", loss, eLoss, lossAllow + 1e-12 * eLoss);
                AssertClose($"{set} C={classes} mean={mean} dLogits", d, eD, grad, 0);
                // Per row: a probability distribution minus one-hot sums to 0.
                for (int r = 0; r < R; r++) Assert.InRange(d.Skip(r * classes).Take(classes).Sum(v => (double)v), -1e-6, 1e-6);
            }
        }
        // The impossible target alone: exactly 2e4 (the other exps underflow to 0, so the sum is exactly 1).
        foreach (var set in Sets)
            Assert.Equal(2e4, Losses.SoftmaxCrossEntropy(set, rows[1].Logits, [1], classes, [], new float[classes], false));
        // Equal logits: loss is log(classes) per row and p = 1/classes.
        foreach (var set in Sets)
        {
            var d = new float[classes];
            double loss = Losses.SoftmaxCrossEntropy(set, Enumerable.Repeat(1e4f, classes).ToArray(), [0], classes, [], d, false);
            Assert.Equal(Math.Log(classes), loss, 6);
            Assert.Equal(1.0 / classes - 1, d[0], 6);
            for (int j = 1; j < classes; j++) Assert.Equal(1.0 / classes, d[j], 6);
        }
    }

    [Theory]
    [InlineData(17)]
    [InlineData(65)]
    public void Target_with_probability_near_one_gives_loss_near_zero(int classes)
    {
        foreach (var set in Sets)
        {
            foreach (float margin in new[] { 30f, 100f, 1e4f })
            {
                var logits = new float[2 * classes];
                logits[3] = margin;                          // row 0: target 3
                logits[classes + classes - 1] = margin;      // row 1: target in the tail
                var d = new float[logits.Length];
                double loss = Losses.SoftmaxCrossEntropy(set, logits, [3, classes - 1], classes, [], d, true);
                // exact: log(1 + (C-1) e^-margin) < 65 e^-30 = 6e-12; the float sum of the exps rounds to 1.
                Assert.InRange(loss, 0, 1e-10);
                Assert.All(d, v => Assert.InRange(v, -1e-10f, 1e-10f));
            }
        }
    }

    /// <summary>
    /// Regression (found by <see cref="SoftmaxCrossEntropy_matches_oracle"/>): the target's gradient p_t s - fl(s) also
    /// carries the rounding of s = 1/7 to float, which the first tolerance derivation left out.
    /// </summary>
    [Fact]
    public void Regression_target_gradient_allowance_includes_rounded_scale()
    {
        foreach (var set in Sets) CheckCe(new CeCase(7, 200, 0, true, 8f, 790361869), set);
    }

    /// <summary>A NaN or +Inf logit makes its row NaN; a -Inf logit has probability 0 (loss +Inf when it is the target).</summary>
    [Fact]
    public void Non_finite_logits()
    {
        const int C = 33;
        foreach (var set in Sets)
        {
            foreach (int at in new[] { 0, 20, C - 1 }) // vector body, second block, tail
            {
                foreach (float bad in new[] { float.NaN, float.PositiveInfinity })
                {
                    float[] logits = Data(1, 2 * C), d = new float[2 * C];
                    logits[C + at] = bad; // row 1 only
                    double loss = Losses.SoftmaxCrossEntropy(set, logits, [2, 3], C, [], d, false);
                    Assert.True(double.IsNaN(loss), $"{set} {bad} at {at}: loss {loss}");
                    Assert.All(d.AsSpan(0, C).ToArray(), v => Assert.True(float.IsFinite(v)));
                    Assert.All(d.AsSpan(C, C).ToArray(), v => Assert.True(float.IsNaN(v)));
                    // Masking the bad row removes it entirely.
                    loss = Losses.SoftmaxCrossEntropy(set, logits, [2, 3], C, [1, 0], d, false);
                    Assert.True(double.IsFinite(loss));
                }
                float[] x = Data(2, C), g = new float[C];
                x[at] = float.NegativeInfinity;
                int other = (at + 1) % C;
                double finite = Losses.SoftmaxCrossEntropy(set, x, [other], C, [], g, false);
                Assert.True(double.IsFinite(finite));
                Assert.Equal(0f, g[at]);
                Assert.Equal(double.PositiveInfinity, Losses.SoftmaxCrossEntropy(set, x, [at], C, [], g, false));
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // The oracle's gradients against central finite differences (double)
    // ------------------------------------------------------------------------------------------------------------

    public static TheoryData<int, int, bool, bool> FdShapes()
    {
        var d = new TheoryData<int, int, bool, bool>();
        foreach (var (rows, width) in new[] { (1, 1), (3, 7), (5, 17) })
            foreach (bool mean in new[] { false, true })
                foreach (bool masked in new[] { false, true })
                    d.Add(rows, width, mean, masked);
        return d;
    }

    private static double[] Uniform(Random rng, int n, double scale) =>
        Enumerable.Range(0, n).Select(_ => (rng.NextDouble() * 2 - 1) * scale).ToArray();

    /// <summary>Central difference of f at v[i] with step h, restoring v[i].</summary>
    private static double Central(double[] v, int i, double h, Func<double> f)
    {
        double keep = v[i];
        v[i] = keep + h;
        double plus = f();
        v[i] = keep - h;
        double minus = f();
        v[i] = keep;
        return (plus - minus) / (2 * h);
    }

    private static void AssertFd(string what, double analytic, double numeric, double tol)
    {
        if (!(Math.Abs(analytic - numeric) <= tol * (1 + Math.Abs(numeric))))
            throw new Xunit.Sdk.XunitException(string.Create(CultureInfo.InvariantCulture,
                $"{what}: analytic {analytic:R}, finite difference {numeric:R}"));
    }

    private static double[]? FdMask(int rows, bool masked) =>
        masked && rows > 1 ? Enumerable.Range(0, rows).Select(r => r % 2 == 1 ? 0.0 : 1.0).ToArray() : null;

    /// <summary>MSE is quadratic, so central differences are exact up to rounding (about 1e-16 L / h).</summary>
    [Theory, MemberData(nameof(FdShapes))]
    public void Oracle_mse_gradient_matches_finite_differences(int rows, int features, bool mean, bool masked)
    {
        var rng = new Random(rows * 100 + features);
        double[] y = Uniform(rng, rows * features, 2), t = Uniform(rng, rows * features, 2);
        double[]? mask = FdMask(rows, masked);
        var (_, dy) = NaiveLosses.MeanSquaredError(y, t, rows, features, mask, mean);
        for (int i = 0; i < y.Length; i++)
            AssertFd($"dL/dy[{i}]", dy[i], Central(y, i, 1e-6, () => NaiveLosses.MeanSquaredError(y, t, rows, features, mask, mean).Loss), 1e-7);
    }

    /// <summary>Cross-entropy: truncation error h^2 |L'''| / 6 &lt; 1e-10 at h = 1e-5, rounding about 1e-16 L / h.</summary>
    [Theory, MemberData(nameof(FdShapes))]
    public void Oracle_cross_entropy_gradient_matches_finite_differences(int rows, int classes, bool mean, bool masked)
    {
        var rng = new Random(rows * 100 + classes);
        double[] x = Uniform(rng, rows * classes, 3);
        int[] targets = Enumerable.Range(0, rows).Select(_ => rng.Next(classes)).ToArray();
        double[]? mask = FdMask(rows, masked);
        var (_, d) = NaiveLosses.SoftmaxCrossEntropy(x, targets, classes, mask, mean);
        for (int i = 0; i < x.Length; i++)
            AssertFd($"dL/dlogits[{i}]", d[i], Central(x, i, 1e-5, () => NaiveLosses.SoftmaxCrossEntropy(x, targets, classes, mask, mean).Loss), 1e-7);
    }

    /// <summary>Linear with L = sum(y * G): L is linear in each of W, b, x, so central differences are exact up to rounding.</summary>
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 7, 5)]
    [InlineData(4, 17, 16)]
    public void Oracle_linear_gradients_match_finite_differences(int rows, int inF, int outF)
    {
        var rng = new Random(rows + 10 * inF + 100 * outF);
        double[] x = Uniform(rng, rows * inF, 2), w = Uniform(rng, outF * inF, 1), b = Uniform(rng, outF, 1), G = Uniform(rng, rows * outF, 1);
        double Loss() => NaiveLosses.LinearForward(x, rows, inF, outF, w, b).Y.Select((v, i) => v * G[i]).Sum();
        var g = NaiveLosses.LinearBackward(x, G, rows, inF, outF, w, new double[outF * inF], new double[outF]);
        for (int i = 0; i < w.Length; i++) AssertFd($"dW[{i}]", g.DW[i], Central(w, i, 1e-6, Loss), 1e-7);
        for (int i = 0; i < b.Length; i++) AssertFd($"db[{i}]", g.DB[i], Central(b, i, 1e-6, Loss), 1e-7);
        for (int i = 0; i < x.Length; i++) AssertFd($"dx[{i}]", g.DX[i], Central(x, i, 1e-6, Loss), 1e-7);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Contracts: agreement across kernel sets and buffer offsets, in place, zero allocation, bad input
    // ------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Every kernel set performs the same IEEE operations in the same order (GEMM, the lane reductions, exp), so
    /// losses and gradients are bitwise identical across sets, and do not depend on where the data sits in memory.
    /// </summary>
    [Fact]
    public void Results_are_bitwise_identical_across_sets_and_offsets()
    {
        const int R = 37, F = 33, C = 65, I = 31;
        float[] mask = Mask(1, R, 5);
        int[] targets = Targets(R, C, mask, 6);
        List<(string Name, float[] Values)>? reference = null;
        foreach (var set in Sets)
        {
            foreach (int offset in new[] { 0, 1, 3, 8 })
            {
                var outputs = new List<(string, float[])>();
                float[] Placed(float[] v) { var a = new float[v.Length + offset + 5]; v.CopyTo(a, offset); return a; }
                Span<float> At(float[] a, int n) => a.AsSpan(offset, n);

                float[] y = Placed(Data(1, R * F, 3f)), t = Placed(Data(2, R * F, 3f)), dy = Placed(new float[R * F]);
                double mse = Losses.MeanSquaredError(set, At(y, R * F), At(t, R * F), R, F, mask, At(dy, R * F), true);
                outputs.Add(("mse", [(float)mse, (float)(mse - (float)mse)]));
                outputs.Add(("mse dy", At(dy, R * F).ToArray()));

                float[] logits = Placed(Data(3, R * C, 4f)), dl = Placed(new float[R * C]);
                double ce = Losses.SoftmaxCrossEntropy(set, At(logits, R * C), targets, C, mask, At(dl, R * C), true);
                outputs.Add(("ce", [(float)ce, (float)(ce - (float)ce)]));
                outputs.Add(("ce dLogits", At(dl, R * C).ToArray()));

                var lin = new Linear(I, F, 9, set);
                float[] x = Placed(Data(4, R * I)), ly = Placed(new float[R * F]), dx = Placed(new float[R * I]);
                lin.Forward(At(x, R * I), R, At(ly, R * F));
                lin.Backward(At(x, R * I), At(dy, R * F), R, At(dx, R * I));
                outputs.Add(("linear y", At(ly, R * F).ToArray()));
                outputs.Add(("linear dx", At(dx, R * I).ToArray()));
                outputs.Add(("linear grads", lin.Gradients.Data.ToArray()));

                if (reference is null) { reference = outputs; continue; }
                for (int i = 0; i < outputs.Count; i++)
                    AssertBitwiseEqual($"{set} offset {offset} {outputs[i].Item1}", reference[i].Values, outputs[i].Item2);
            }
        }
    }

    [Fact]
    public void Gradients_may_be_written_over_the_inputs()
    {
        foreach (var set in Sets)
        {
            float[] logits = Data(1, 9 * 33, 5f), d = new float[logits.Length];
            int[] targets = Targets(9, 33, [], 2);
            double separate = Losses.SoftmaxCrossEntropy(set, logits, targets, 33, [], d, true);
            double inPlace = Losses.SoftmaxCrossEntropy(set, logits, targets, 33, [], logits, true);
            Assert.Equal(separate, inPlace);
            AssertBitwiseEqual($"{set} ce in place", d, logits);

            float[] y = Data(3, 9 * 17), t = Data(4, 9 * 17), dy = new float[y.Length];
            float[] mask = [1, 0, 1, 1, 0, 1, 1, 1, 0];
            separate = Losses.MeanSquaredError(set, y, t, 9, 17, mask, dy, false);
            inPlace = Losses.MeanSquaredError(set, y, t, 9, 17, mask, y, false);
            Assert.Equal(separate, inPlace);
            AssertBitwiseEqual($"{set} mse in place", dy, y);
        }
    }

    [Fact]
    public void Hot_paths_allocate_nothing_after_warm_up()
    {
        var failures = new List<string>();
        foreach (var set in Sets)
        {
            const int N = 9, I = 33, O = 17;
            var lin = new Linear(I, O, 1, set);
            float[] x = Data(1, N * I), y = new float[N * O], dy = new float[N * O], dx = new float[N * I], t = Data(2, N * O);
            float[] mask = [1, 1, 0, 1, 1, 1, 0, 1, 1];
            int[] targets = [0, 16, 3, 5, 7, 9, 11, 13, 15];
            float[] dl = new float[N * O];
            void All()
            {
                lin.Forward(x, N, y);
                Losses.MeanSquaredError(set, y, t, N, O, mask, dy, true);
                lin.Backward(x, dy, N, dx);
                Losses.SoftmaxCrossEntropy(set, y, targets, O, mask, dl, true);
                Losses.SoftmaxCrossEntropy(set, y, targets, O, [], dl, false);
                lin.Backward(x, dl, N, []);
                lin.ParametersChanged(); // what an optimizer step does: the packed copies are refreshed in place
            }
            long[] windows = SteadyStateAllocations(All, 20);
            if (windows[^1] != 0) failures.Add($"{set}: {string.Join(", ", windows)} bytes in windows of 20 calls");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    [Fact]
    public void Bad_input_names_the_argument_and_expected_shape()
    {
        var k = KernelSet.Default;
        var lin = new Linear(10, 4);
        float[] x = new float[3 * 10], y = new float[3 * 4], dx = new float[3 * 10];
        var e = Assert.Throws<ArgumentException>(() => lin.Forward(new float[29], 3, y));
        Assert.Equal("x", e.ParamName);
        Assert.Contains("x has 29 floats, expected (N, in) = (3, 10) = 30", e.Message);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => lin.Forward(x, 3, new float[13])).ParamName);
        Assert.Equal("rows", Assert.Throws<ArgumentOutOfRangeException>(() => lin.Forward(x, -1, y)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => lin.Backward(new float[31], y, 3, dx)).ParamName);
        e = Assert.Throws<ArgumentException>(() => lin.Backward(x, new float[11], 3, dx));
        Assert.Equal("dy", e.ParamName);
        Assert.Contains("(N, out) = (3, 4) = 12", e.Message);
        // dx is validated before anything accumulates into the gradients.
        e = Assert.Throws<ArgumentException>(() => lin.Backward(x, Data(1, 12), 3, new float[29]));
        Assert.Equal("dx", e.ParamName);
        Assert.Contains("(or empty)", e.Message);
        Assert.All(lin.Gradients.Data, v => Assert.Equal(0f, v));
        Assert.Equal("inFeatures", Assert.Throws<ArgumentOutOfRangeException>(() => new Linear(0, 4)).ParamName);
        Assert.Equal("outFeatures", Assert.Throws<ArgumentOutOfRangeException>(() => new Linear(4, 0)).ParamName);

        float[] t = new float[12], g = new float[12];
        e = Assert.Throws<ArgumentException>(() => Losses.MeanSquaredError(k, new float[11], t, 3, 4, [], g, true));
        Assert.Equal("y", e.ParamName);
        Assert.Contains("y has 11 floats, expected (rows, features) = (3, 4) = 12", e.Message);
        Assert.Equal("target", Assert.Throws<ArgumentException>(() => Losses.MeanSquaredError(k, g, new float[13], 3, 4, [], g, true)).ParamName);
        Assert.Equal("dy", Assert.Throws<ArgumentException>(() => Losses.MeanSquaredError(k, t, t, 3, 4, [], new float[3], true)).ParamName);
        Assert.Equal("rows", Assert.Throws<ArgumentOutOfRangeException>(() => Losses.MeanSquaredError(k, [], [], -1, -1, [], [], true)).ParamName);
        e = Assert.Throws<ArgumentException>(() => Losses.MeanSquaredError(k, t, t, 3, 4, [1, 0], g, true));
        Assert.Equal("rowMask", e.ParamName);
        Assert.Contains("expected (rows) = 3", e.Message);
        e = Assert.Throws<ArgumentException>(() => Losses.MeanSquaredError(k, t, t, 3, 4, [1, 0.5f, 1], g, true));
        Assert.Equal("rowMask", e.ParamName);
        Assert.Contains("rowMask[1] = 0.5", e.Message);
        Assert.Equal("rowMask", Assert.Throws<ArgumentException>(() => Losses.MeanSquaredError(k, t, t, 3, 4, [1, float.NaN, 1], g, true)).ParamName);
        Assert.Equal("k", Assert.Throws<ArgumentNullException>(() => Losses.MeanSquaredError(null!, t, t, 3, 4, [], g, true)).ParamName);

        float[] logits = Data(2, 3 * 4), dl = new float[12];
        Array.Fill(dl, 7f);
        e = Assert.Throws<ArgumentException>(() => Losses.SoftmaxCrossEntropy(k, logits, [0, 4, 1], 4, [], dl, true));
        Assert.Equal("targets", e.ParamName);
        Assert.Contains("targets[1] = 4 is outside 0..classes-1 = 0..3", e.Message);
        Assert.Equal("targets", Assert.Throws<ArgumentException>(() => Losses.SoftmaxCrossEntropy(k, logits, [0, 1, -1], 4, [], dl, true)).ParamName);
        Assert.All(dl, v => Assert.Equal(7f, v)); // validated before any work
        // A masked row's target is not used, so it is not checked.
        Losses.SoftmaxCrossEntropy(k, logits, [0, 1, -1], 4, [1, 1, 0], dl, true);
        Assert.Equal("logits", Assert.Throws<ArgumentException>(() => Losses.SoftmaxCrossEntropy(k, new float[11], [0, 1, 2], 4, [], dl, true)).ParamName);
        e = Assert.Throws<ArgumentException>(() => Losses.SoftmaxCrossEntropy(k, logits, [0, 1, 2], 4, [], new float[8], true));
        Assert.Equal("dLogits", e.ParamName);
        Assert.Contains("(rows, classes) = (3, 4) = 12", e.Message);
        Assert.Equal("classes", Assert.Throws<ArgumentOutOfRangeException>(() => Losses.SoftmaxCrossEntropy(k, [], [], 0, [], [], true)).ParamName);
        Assert.Equal("rowMask", Assert.Throws<ArgumentException>(() => Losses.SoftmaxCrossEntropy(k, logits, [0, 1, 2], 4, [1, 2, 1], dl, true)).ParamName);
    }

    [Fact]
    public void Empty_and_fully_masked_inputs_give_zero()
    {
        foreach (var set in Sets)
        {
            Assert.Equal(0, Losses.MeanSquaredError(set, [], [], 0, 5, [], [], true));
            Assert.Equal(0, Losses.SoftmaxCrossEntropy(set, [], [], 3, [], [], true));
            float[] g = [9, 9, 9, 9, 9, 9];
            Assert.Equal(0, Losses.MeanSquaredError(set, Data(1, 6), Data(2, 6), 2, 3, [0, 0], g, true));
            Assert.All(g, v => Assert.Equal(0f, v));
            g = [9, 9, 9, 9, 9, 9];
            Assert.Equal(0, Losses.SoftmaxCrossEntropy(set, Data(1, 6), [-1, 99], 3, [0, 0], g, true));
            Assert.All(g, v => Assert.Equal(0f, v));
            var lin = new Linear(3, 2, 0, set);
            lin.Forward([], 0, []);
            lin.Backward([], [], 0, []);
            Assert.All(lin.Gradients.Data, v => Assert.Equal(0f, v));
        }
    }
}
