using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnSimd.Kernels;
using RnnSimd.Tests.Reference;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Kernels;

/// <summary>GEMM against the naive double oracle, at every supported kernel set.</summary>
[Trait("Category", "Kernels")]
public class GemmProperties
{
    public sealed record GemmCase(bool TransA, bool TransB, int M, int N, int K, float Alpha, float Beta, int Pad, int Seed)
    {
        public int RowsA => TransA ? K : M;
        public int ColsA => TransA ? M : K;
        public int RowsB => TransB ? N : K;
        public int ColsB => TransB ? K : N;
        public int Lda => ColsA + Pad;
        public int Ldb => ColsB + Pad;
        public int Ldc => N + Pad;
    }

    private static Gen<GemmCase> Cases(Gen<bool> transA, Gen<bool> transB, Gen<float> alpha, Gen<float> beta, int maxDim = 130) =>
        from ta in transA
        from tb in transB
        from m in Dim(maxDim)
        from n in Dim(maxDim)
        from k in Gen.Frequency((4, Dim(maxDim)), (1, Gen.Elements(255, 256, 257, 300, 513)))
        from a in alpha
        from b in beta
        from pad in Gen.Elements(0, 0, 1, 5)
        from seed in Seed
        select new GemmCase(ta, tb, m, n, k, a, b, pad, seed);

    private static readonly Gen<float> One = Gen.Constant(1f);
    private static readonly Gen<float> Zero = Gen.Constant(0f);
    private static readonly Gen<float> AnyScale = Gen.Elements(-1.5f, -1f, 0f, 0.5f, 1f, 2f);

    /// <summary>
    /// Checks one case. Error bound: each element is per k-block one float FMA chain, written out with at most two more
    /// roundings per block, so |c - e| &lt;= (k + 2*blocks + 4) * u * (|alpha| sum_p |a_ip b_pj| + |beta c0|)
    /// (Higham, Accuracy and Stability, eq. 3.5: gamma_n bound for inner products), with u = 2^-24.
    /// </summary>
    internal static void CheckCase(GemmCase g, KernelSet set)
    {
        float[] a = Data(g.Seed, g.RowsA * g.Lda);
        float[] b = Data(g.Seed + 1, g.RowsB * g.Ldb);
        float[] c0 = Data(g.Seed + 2, g.M * g.Ldc);
        var (e, abs) = NaiveKernels.Gemm(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, 0, g.Lda, b, 0, g.Ldb, g.Beta, c0, 0, g.Ldc);
        float[] c = (float[])c0.Clone();
        if (g.Beta == 0) Array.Fill(c, float.NaN); // beta = 0 must not read C
        set.Gemm(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, g.Lda, b, g.Ldb, g.Beta, c, g.Ldc);
        var got = new float[g.M * g.N];
        for (int i = 0; i < g.M; i++)
        {
            c.AsSpan(i * g.Ldc, g.N).CopyTo(got.AsSpan(i * g.N));
            for (int j = g.N; j < g.Ldc; j++)
                if (BitConverter.SingleToInt32Bits(c[i * g.Ldc + j]) != BitConverter.SingleToInt32Bits(g.Beta == 0 ? float.NaN : c0[i * g.Ldc + j]))
                    throw new Xunit.Sdk.XunitException($"{set}: {g}: wrote into the padding of row {i} at column {j}");
        }
        int blocks = (g.K + Gemm.KBlock - 1) / Gemm.KBlock;
        double factor = (g.K + 2 * blocks + 4) * U;
        AssertClose($"{set} {g}", got, e, i => factor * abs[i] + 1e-37, 0);
    }

    [Property(MaxTest = 60)]
    public Property Forward_X_times_W_transposed() =>
        Check(Cases(Gen.Constant(false), Gen.Constant(true), One, Zero), g => { foreach (var s in Sets) CheckCase(g, s); });

    [Property(MaxTest = 60)]
    public Property BackwardData_dY_times_W() =>
        Check(Cases(Gen.Constant(false), Gen.Constant(false), One, Gen.Elements(0f, 1f)), g => { foreach (var s in Sets) CheckCase(g, s); });

    [Property(MaxTest = 60)]
    public Property WeightGradient_dY_transposed_times_X_accumulates() =>
        Check(Cases(Gen.Constant(true), Gen.Constant(false), One, One), g => { foreach (var s in Sets) CheckCase(g, s); });

    [Property(MaxTest = 60)]
    public Property Any_transposes_alpha_beta_and_leading_dimensions() =>
        Check(Cases(ArbMap.Default.GeneratorFor<bool>(), ArbMap.Default.GeneratorFor<bool>(), AnyScale, AnyScale),
            g => { foreach (var s in Sets) CheckCase(g, s); });

    /// <summary>Pre-packed B gives bitwise the same result as per-call packing (the same arithmetic, only the packing moves).</summary>
    [Property(MaxTest = 40)]
    public Property PrePacked_operand_matches_per_call_packing_bitwise() =>
        Check(Cases(ArbMap.Default.GeneratorFor<bool>(), ArbMap.Default.GeneratorFor<bool>(), AnyScale, AnyScale), g =>
        {
            float[] a = Data(g.Seed, g.RowsA * g.Lda), b = Data(g.Seed + 1, g.RowsB * g.Ldb), c0 = Data(g.Seed + 2, g.M * g.Ldc);
            foreach (var set in Sets)
            {
                float[] c1 = (float[])c0.Clone(), c2 = (float[])c0.Clone();
                set.Gemm(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, g.Lda, b, g.Ldb, g.Beta, c1, g.Ldc);
                var packed = set.PackGemmOperand(g.TransB, g.K, g.N, b, g.Ldb);
                set.Gemm(g.TransA, g.M, g.Alpha, a, g.Lda, packed, g.Beta, c2, g.Ldc);
                AssertBitwiseEqual($"{set} {g}", c1, c2);
            }
        });

    /// <summary>The arithmetic contract makes GEMM bitwise identical across kernel sets.</summary>
    [Property(MaxTest = 40)]
    public Property Every_kernel_set_gives_bitwise_identical_results() =>
        Check(Cases(ArbMap.Default.GeneratorFor<bool>(), ArbMap.Default.GeneratorFor<bool>(), AnyScale, AnyScale), g =>
        {
            float[] a = Data(g.Seed, g.RowsA * g.Lda), b = Data(g.Seed + 1, g.RowsB * g.Ldb), c0 = Data(g.Seed + 2, g.M * g.Ldc);
            float[]? first = null;
            foreach (var set in Sets)
            {
                float[] c = (float[])c0.Clone();
                set.Gemm(g.TransA, g.TransB, g.M, g.N, g.K, g.Alpha, a, g.Lda, b, g.Ldb, g.Beta, c, g.Ldc);
                if (first is null) first = c;
                else AssertBitwiseEqual($"{set} vs {Sets[0]} {g}", first, c);
            }
        });
}
