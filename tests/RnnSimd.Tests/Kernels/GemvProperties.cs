using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnSimd.Kernels;
using RnnSimd.Tests.Reference;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Kernels;

/// <summary>Batch-1 matrix-vector kernels against the naive double oracle, at every supported kernel set.</summary>
[Trait("Category", "Kernels")]
public class GemvProperties
{
    public sealed record GemvCase(int Rows, int Cols, int Pad, bool Accumulate, int Seed)
    {
        public int Ld => Cols + Pad;
    }

    private static readonly Gen<GemvCase> Cases =
        from r in Dim(300)
        from c in Dim(300)
        from pad in Gen.Elements(0, 0, 3)
        from acc in ArbMap.Default.GeneratorFor<bool>()
        from seed in Seed
        select new GemvCase(r, c, pad, acc, seed);

    // Error bound: four FMA chains of about cols/4 terms, two adds, one more when accumulating:
    // |y - e| <= (cols + 4) u sum_c |w_rc x_c| (+|y0|). Dot-based row-major GEMV: 16 lanes of cols/16 terms plus a
    // 4-level tree: the same bound holds.
    private static double Factor(int terms) => (terms + 5) * U;

    [Property(MaxTest = 80)]
    public Property Packed_matches_oracle() => Check(Cases, g =>
    {
        float[] w = Data(g.Seed, g.Rows * g.Ld), x = Data(g.Seed + 1, g.Cols), y0 = Data(g.Seed + 2, g.Rows);
        var (e, abs) = NaiveKernels.Gemv(g.Rows, g.Cols, w, g.Ld, x, g.Accumulate ? y0 : null);
        var packed = new PackedGemvMatrix(g.Rows, g.Cols, w, g.Ld);
        foreach (var set in Sets)
        {
            float[] y = (float[])y0.Clone();
            set.Gemv(packed, x, y, g.Accumulate);
            AssertClose($"{set} {g}", y, e, i => Factor(g.Cols) * abs[i] + 1e-37, 0);
        }
    });

    [Property(MaxTest = 80)]
    public Property RowMajor_matches_oracle() => Check(Cases, g =>
    {
        float[] w = Data(g.Seed, g.Rows * g.Ld), x = Data(g.Seed + 1, g.Cols), y0 = Data(g.Seed + 2, g.Rows);
        var (e, abs) = NaiveKernels.Gemv(g.Rows, g.Cols, w, g.Ld, x, g.Accumulate ? y0 : null);
        foreach (var set in Sets)
        {
            float[] y = (float[])y0.Clone();
            set.Gemv(g.Rows, g.Cols, w, g.Ld, x, y, g.Accumulate);
            AssertClose($"{set} {g}", y, e, i => Factor(g.Cols) * abs[i] + 1e-37, 0);
        }
    });

    [Property(MaxTest = 80)]
    public Property Transposed_matches_oracle() => Check(Cases, g =>
    {
        float[] w = Data(g.Seed, g.Rows * g.Ld), y = Data(g.Seed + 1, g.Rows), x0 = Data(g.Seed + 2, g.Cols);
        var (e, abs) = NaiveKernels.GemvTransposed(g.Rows, g.Cols, w, g.Ld, y, g.Accumulate ? x0 : null);
        foreach (var set in Sets)
        {
            float[] x = (float[])x0.Clone();
            set.GemvTransposed(g.Rows, g.Cols, w, g.Ld, y, x, g.Accumulate);
            AssertClose($"{set} {g}", x, e, i => Factor(g.Rows) * abs[i] + 1e-37, 0);
        }
    });

    /// <summary>Packed and transposed GEMV follow one arithmetic contract, so every set agrees bitwise.</summary>
    [Property(MaxTest = 40)]
    public Property Every_kernel_set_gives_bitwise_identical_results() => Check(Cases, g =>
    {
        float[] w = Data(g.Seed, g.Rows * g.Ld), x = Data(g.Seed + 1, g.Cols), yv = Data(g.Seed + 2, g.Rows);
        var packed = new PackedGemvMatrix(g.Rows, g.Cols, w, g.Ld);
        float[]? firstY = null, firstX = null, firstDot = null, firstRow = null;
        foreach (var set in Sets)
        {
            float[] y = (float[])yv.Clone(), xt = (float[])x.Clone(), yr = (float[])yv.Clone();
            set.Gemv(packed, x, y, g.Accumulate);
            set.Gemv(g.Rows, g.Cols, w, g.Ld, x, yr, g.Accumulate);
            set.GemvTransposed(g.Rows, g.Cols, w, g.Ld, yv, xt, g.Accumulate);
            float[] dot = [set.Dot(w.AsSpan(0, g.Cols), x)];
            if (firstY is null) { firstY = y; firstX = xt; firstDot = dot; firstRow = yr; continue; }
            AssertBitwiseEqual($"row-major {set} {g}", firstRow!, yr);
            AssertBitwiseEqual($"packed {set} {g}", firstY, y);
            AssertBitwiseEqual($"transposed {set} {g}", firstX!, xt);
            AssertBitwiseEqual($"dot {set} {g}", firstDot!, dot);
        }
    });
}
