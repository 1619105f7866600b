using RnnSimd.Kernels;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Kernels;

/// <summary>Determinism, zero allocation and input validation of every kernel.</summary>
[Trait("Category", "Kernels")]
public class KernelContractTests
{
    public static TheoryData<string> SetNames() => SmallSizeSweep.SetNames();

    /// <summary>
    /// Within one set, results are bitwise identical run to run and whatever the buffers' offsets (alignment): the
    /// same inputs copied to every float offset 0..15 of larger arrays give the same bits.
    /// </summary>
    [Theory, MemberData(nameof(SetNames))]
    public void Results_do_not_depend_on_alignment_or_run(string setName)
    {
        var set = KernelSet.Get(setName);
        const int m = 37, n = 70, k = 300, len = 1000;
        float[] a = Data(1, m * k), b = Data(2, n * k), x = Data(3, len, 5f), v = Data(4, k);
        float[]? refC = null, refT = null, refG = null, refD = null;
        for (int run = 0; run < 2; run++)
        for (int off = 0; off < 16; off++)
        {
            float[] A = new float[m * k + off], B = new float[n * k + off], C = new float[m * n + off];
            float[] X = new float[len + off], T = new float[len + off], V = new float[k + off], Y = new float[n + off];
            a.CopyTo(A, off); b.CopyTo(B, off); x.CopyTo(X, off); v.CopyTo(V, off);
            set.Gemm(false, true, m, n, k, 1f, A.AsSpan(off), k, B.AsSpan(off), k, 0f, C.AsSpan(off), n);
            set.Map<TanhOp>(X.AsSpan(off), T.AsSpan(off));
            set.Gemv(n, k, B.AsSpan(off), k, V.AsSpan(off), Y.AsSpan(off));
            float[] d = [set.Dot(X.AsSpan(off, k), V.AsSpan(off))];
            float[] c = C[off..], t = T[off..], y = Y[off..];
            if (refC is null) { refC = c; refT = t; refG = y; refD = d; continue; }
            AssertBitwiseEqual($"gemm off={off} run={run}", refC, c);
            AssertBitwiseEqual($"tanh off={off} run={run}", refT!, t);
            AssertBitwiseEqual($"gemv off={off} run={run}", refG!, y);
            AssertBitwiseEqual($"dot off={off} run={run}", refD!, d);
        }
    }

    /// <summary>After warm-up, 1,000 calls of each kernel allocate exactly 0 bytes on this thread.</summary>
    [Theory, MemberData(nameof(SetNames))]
    public void Kernels_allocate_nothing_after_warm_up(string setName)
    {
        var set = KernelSet.Get(setName);
        const int m = 33, n = 65, k = 300;
        float[] a = Data(1, m * k), b = Data(2, n * k), c = new float[m * n], w = Data(3, 1024 * 320);
        float[] x = Data(4, 320), y = new float[1024], e1 = Data(5, 1000), e2 = Data(6, 1000), e3 = new float[1000];
        var packedB = set.PackGemmOperand(true, k, n, b, k);
        var packedW = new PackedGemvMatrix(1024, 320, w, 320);
        float sink = 0;
        var calls = new (string Name, Action Call)[]
        {
            ("gemm NT", () => set.Gemm(false, true, m, n, k, 1f, a, k, b, k, 0f, c, n)),
            ("gemm TN", () => set.Gemm(true, false, k, n, m, 1f, a, k, c, n, 1f, b, n)),
            ("gemm packed", () => set.Gemm(false, m, 1f, a, k, packedB, 0f, c, n)),
            ("gemv packed", () => set.Gemv(packedW, x, y)),
            ("gemv row-major", () => set.Gemv(1024, 320, w, 320, x, y, accumulate: true)),
            ("gemv transposed", () => set.GemvTransposed(1024, 320, w, 320, y, x)),
            ("tanh", () => set.Map<TanhOp>(e1, e3)),
            ("sigmoid", () => set.Map<SigmoidOp>(e1, e3)),
            ("relu", () => set.Map<ReluOp>(e1, e3)),
            ("add", () => set.Map<AddOp>(e1, e2, e3)),
            ("fma", () => set.Map<MultiplyAddOp>(e1, e2, e3, e3)),
            ("tanh backward", () => set.ActivationBackward<TanhOp>(e1, e2, e3)),
            ("axpy", () => set.Axpy(1e-3f, e1, e3)),
            ("dot", () => sink += set.Dot(e1, e2)),
            ("repack gemm", () => packedB.Repack(b, k)),
            ("repack gemv", () => packedW.Repack(w, 320)),
        };
        var failures = new List<string>();
        foreach (var (name, call) in calls)
        {
            long[] windows = SteadyStateAllocations(call, 1000);
            if (windows[^1] != 0) failures.Add($"{name}: {string.Join(", ", windows)} bytes in windows of 1000 calls");
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
        GC.KeepAlive(sink);
    }

    [Fact]
    public void Bad_input_throws_naming_argument_and_expected_size_before_any_work()
    {
        var set = KernelSet.Default;
        float[] a = new float[6], b = new float[6], c = new float[4];
        float[] cBefore = (float[])c.Clone();
        var ex = Assert.Throws<ArgumentException>(() => set.Gemm(false, false, 2, 2, 3, 1f, a.AsSpan(0, 5), 3, b, 2, 0f, c, 2));
        Assert.Equal("a", ex.ParamName);
        Assert.Contains("expected at least", ex.Message);
        Assert.Contains("6", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => set.Gemm(false, false, 2, 2, 3, 1f, a, 3, b.AsSpan(0, 5), 2, 0f, c, 2));
        Assert.Equal("b", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => set.Gemm(false, false, 2, 2, 3, 1f, a, 3, b, 2, 0f, c.AsSpan(0, 3), 2));
        Assert.Equal("c", ex.ParamName);
        ex = Assert.Throws<ArgumentException>(() => set.Gemm(false, false, 2, 2, 3, 1f, a, 2, b, 2, 0f, c, 2));
        Assert.Equal("lda", ex.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => set.Gemm(false, false, -1, 2, 3, 1f, a, 3, b, 2, 0f, c, 2));
        Assert.Equal(cBefore, c);

        var packed = KernelSet.Scalar.PackGemmOperand(false, 3, 2, b, 2);
        if (set != KernelSet.Scalar)
            Assert.Equal("b", Assert.Throws<ArgumentException>(() => set.Gemm(false, 2, 1f, a, 3, packed, 0f, c, 2)).ParamName);

        var w = new PackedGemvMatrix(4, 3, new float[12], 3);
        ex = Assert.Throws<ArgumentException>(() => set.Gemv(w, new float[2], new float[4]));
        Assert.Equal("x", ex.ParamName);
        Assert.Contains("expected w.Cols = 3", ex.Message);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => set.Gemv(w, new float[3], new float[5])).ParamName);
        Assert.Equal("w", Assert.Throws<ArgumentException>(() => new PackedGemvMatrix(4, 3, new float[11], 3)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => set.Gemv(4, 3, new float[12], 3, new float[4], new float[4])).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => set.GemvTransposed(4, 3, new float[12], 3, new float[3], new float[3])).ParamName);

        ex = Assert.Throws<ArgumentException>(() => set.Map<TanhOp>(new float[5], new float[4]));
        Assert.Equal("dst", ex.ParamName);
        Assert.Contains("expected x.Length = 5", ex.Message);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => set.Map<AddOp>(new float[5], new float[4], new float[5])).ParamName);
        Assert.Equal("z", Assert.Throws<ArgumentException>(() => set.Map<MultiplyAddOp>(new float[5], new float[5], new float[4], new float[5])).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => set.Dot(new float[5], new float[4])).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => set.Axpy(1f, new float[5], new float[4])).ParamName);
    }

    [Fact]
    public void Gemm_with_zero_k_scales_c_by_beta_and_zero_m_or_n_does_nothing()
    {
        foreach (var set in Sets)
        {
            float[] c = [1, 2, 3, 4];
            set.Gemm(false, false, 2, 2, 0, 1f, [], 1, [], 2, 0.5f, c, 2);
            Assert.Equal([0.5f, 1, 1.5f, 2], c);
            c = [float.NaN, 1, 1, 1];
            set.Gemm(false, false, 2, 2, 0, 1f, [], 1, [], 2, 0f, c, 2);
            Assert.Equal([0f, 0, 0, 0], c);
            set.Gemm(false, false, 0, 2, 3, 1f, [], 3, new float[6], 2, 0f, [], 2);
        }
    }
}
