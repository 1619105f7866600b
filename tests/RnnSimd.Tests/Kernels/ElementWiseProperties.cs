using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnSimd.Kernels;
using RnnSimd.Tests.Reference;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Kernels;

/// <summary>Element-wise kernels and activations against the naive double oracle, at every supported kernel set.</summary>
[Trait("Category", "Kernels")]
public class ElementWiseProperties
{
    public sealed record MapCase(int Length, float Scale, bool InPlace, int Seed);

    private static readonly Gen<MapCase> Cases =
        from n in Gen.Frequency((3, Dim(300)), (1, Gen.Choose(0, 2000)))
        from scale in Gen.Elements(0.5f, 3f, 12f, 100f)
        from inPlace in ArbMap.Default.GeneratorFor<bool>()
        from seed in Seed
        select new MapCase(n, scale, inPlace, seed);

    /// <summary>Target of the vectorised approximations: 5e-7 relative (about 4 ulps), as .NET's TensorPrimitives tests.</summary>
    private const double ActivationRtol = 5e-7;

    private static void CheckUnary<TOp>(MapCase g, Func<double, double> oracle, double rtol) where TOp : IUnaryOp
    {
        float[] x = Data(g.Seed, g.Length, g.Scale);
        var e = x.Select(v => oracle(v)).ToArray();
        foreach (var set in Sets)
        {
            float[] y = g.InPlace ? (float[])x.Clone() : new float[g.Length];
            set.Map<TOp>(g.InPlace ? y : x, y);
            AssertClose($"{typeof(TOp).Name} {set} {g}", y, e, _ => 1e-38, rtol);
        }
    }

    [Property(MaxTest = 60)]
    public Property Tanh_matches_oracle() => Check(Cases, g => CheckUnary<TanhOp>(g, NaiveKernels.Tanh, ActivationRtol));

    [Property(MaxTest = 60)]
    public Property Sigmoid_matches_oracle() => Check(Cases, g => CheckUnary<SigmoidOp>(g, NaiveKernels.Sigmoid, ActivationRtol));

    [Property(MaxTest = 40)]
    public Property Relu_and_identity_are_exact() => Check(Cases, g =>
    {
        CheckUnary<ReluOp>(g, NaiveKernels.Relu, 0);
        CheckUnary<IdentityOp>(g, v => v, 0);
    });

    // Backward from the output: tanh (1 - y^2) dy is fma(-y, y, 1) * dy, two roundings; sigmoid y (1 - y) dy has three.
    [Property(MaxTest = 60)]
    public Property Activation_backward_matches_oracle() => Check(Cases, g =>
    {
        float[] pre = Data(g.Seed, g.Length, g.Scale), dy = Data(g.Seed + 1, g.Length);
        foreach (var set in Sets)
        {
            float[] yT = new float[g.Length], yS = new float[g.Length], yR = new float[g.Length], dx = new float[g.Length];
            set.Map<TanhOp>(pre, yT);
            set.Map<SigmoidOp>(pre, yS);
            set.Map<ReluOp>(pre, yR);
            set.ActivationBackward<TanhOp>(yT, dy, dx);
            AssertClose($"tanh' {set} {g}", dx, yT.Select((y, i) => NaiveKernels.TanhBackward(y, dy[i])).ToArray(), _ => 1e-38, 2.01 * U);
            set.ActivationBackward<SigmoidOp>(yS, dy, dx);
            AssertClose($"sigmoid' {set} {g}", dx, yS.Select((y, i) => NaiveKernels.SigmoidBackward(y, dy[i])).ToArray(), _ => 1e-38, 3.01 * U);
            set.ActivationBackward<ReluOp>(yR, dy, dx);
            AssertClose($"relu' {set} {g}", dx, yR.Select((y, i) => NaiveKernels.ReluBackward(y, dy[i])).ToArray(), _ => 0, 0);
        }
    });

    // Add, subtract and multiply of floats rounded once are exactly the double result rounded to float (53 >= 2*24 + 2);
    // a fused multiply-add is one rounding of the exact x*y + z, which the double oracle knows to within 2^-53 relative.
    [Property(MaxTest = 60)]
    public Property Binary_and_ternary_maps_match_oracle() => Check(Cases, g =>
    {
        float[] x = Data(g.Seed, g.Length), y = Data(g.Seed + 1, g.Length), z = Data(g.Seed + 2, g.Length);
        foreach (var set in Sets)
        {
            float[] d = new float[g.Length];
            set.Map<AddOp>(x, y, d);
            AssertClose($"add {set}", d, x.Select((v, i) => (double)(float)((double)v + y[i])).ToArray(), _ => 0, 0);
            set.Map<SubtractOp>(x, y, d);
            AssertClose($"sub {set}", d, x.Select((v, i) => (double)(float)((double)v - y[i])).ToArray(), _ => 0, 0);
            set.Map<MultiplyOp>(x, y, d);
            AssertClose($"mul {set}", d, x.Select((v, i) => (double)(float)((double)v * y[i])).ToArray(), _ => 0, 0);
            set.Map<MultiplyAddOp>(x, y, z, d);
            AssertClose($"fma {set}", d, x.Select((v, i) => (double)v * y[i] + z[i]).ToArray(), _ => 1e-38, U * 1.0001);
        }
    });

    [Property(MaxTest = 60)]
    public Property Dot_and_axpy_match_oracle() => Check(Cases, g =>
    {
        float[] x = Data(g.Seed, g.Length), y0 = Data(g.Seed + 1, g.Length);
        double e = 0, abs = 0;
        for (int i = 0; i < g.Length; i++) { e += (double)x[i] * y0[i]; abs += Math.Abs((double)x[i] * y0[i]); }
        foreach (var set in Sets)
        {
            AssertClose($"dot {set} {g}", [set.Dot(x, y0)], [e], _ => (g.Length + 5) * U * abs + 1e-38, 0);
            float[] y = (float[])y0.Clone();
            set.Axpy(g.Scale, x, y);
            AssertClose($"axpy {set} {g}", y, y0.Select((v, i) => v + (double)g.Scale * x[i]).ToArray(), _ => 1e-38, U * 1.0001);
        }
    });

    /// <summary>Element-wise ops are written once with the same IEEE operations at every width: bitwise identical across sets.</summary>
    [Property(MaxTest = 40)]
    public Property Every_kernel_set_gives_bitwise_identical_results() => Check(Cases, g =>
    {
        float[] x = Data(g.Seed, g.Length, g.Scale);
        float[]? t0 = null, s0 = null;
        foreach (var set in Sets)
        {
            float[] t = new float[g.Length], s = new float[g.Length];
            set.Map<TanhOp>(x, t);
            set.Map<SigmoidOp>(x, s);
            if (t0 is null) { t0 = t; s0 = s; continue; }
            AssertBitwiseEqual($"tanh {set}", t0, t);
            AssertBitwiseEqual($"sigmoid {set}", s0!, s);
        }
    });
}
