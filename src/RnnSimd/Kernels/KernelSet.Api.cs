namespace RnnSimd.Kernels;

public sealed partial class KernelSet
{
    /// <summary>dst[i] = TOp(x[i]). <paramref name="dst"/> may be <paramref name="x"/> itself (same start).</summary>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    public void Map<TOp>(ReadOnlySpan<float> x, Span<float> dst) where TOp : IUnaryOp =>
        ElementWise.Map<TOp>(Isa, x, dst);

    /// <summary>dst[i] = TOp(x[i], y[i]). <paramref name="dst"/> may be an input (same start).</summary>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    public void Map<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dst) where TOp : IBinaryOp =>
        ElementWise.Map<TOp>(Isa, x, y, dst);

    /// <summary>dst[i] = TOp(x[i], y[i], z[i]). <paramref name="dst"/> may be an input (same start).</summary>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    public void Map<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> z, Span<float> dst)
        where TOp : ITernaryOp => ElementWise.Map<TOp>(Isa, x, y, z, dst);

    /// <summary>dx[i] = f'(x[i]) * dy[i] from the saved activation output y[i] = f(x[i]).</summary>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    public void ActivationBackward<TAct>(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
        where TAct : IActivation => ElementWise.Backward<TAct>(Isa, y, dy, dx);

    /// <summary>Sum of x[i]*y[i] (16-lane split, fixed lane tree: bitwise identical across sets).</summary>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    public float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y) => ElementWise.Dot(Isa, x, y);

    /// <summary>y[i] += alpha * x[i] (one FMA per element).</summary>
    /// <exception cref="ArgumentException">Lengths differ.</exception>
    public void Axpy(float alpha, ReadOnlySpan<float> x, Span<float> y) => ElementWise.Axpy(Isa, alpha, x, y);

    /// <summary>
    /// Row-major SGEMM: C = alpha * op(A) * op(B) + beta * C, with op(A) m x k and op(B) k x n. A is stored m x k
    /// (k x m when <paramref name="transposeA"/>), B k x n (n x k when <paramref name="transposeB"/>), C m x n; each with
    /// its leading dimension (row stride). When beta is 0, C is not read (NaN in C does not propagate).
    /// The shapes BPTT needs: forward X W^T (transposeB), backward-data dY W (none), weight gradient dY^T X (transposeA, beta 1).
    /// </summary>
    /// <exception cref="ArgumentException">A dimension is negative, a leading dimension is too small, or a span is too short.</exception>
    public void Gemm(bool transposeA, bool transposeB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        CheckGemm(transposeA, m, n, k, a, lda, c, ldc);
        ThrowHelper.CheckNonNegative(n, nameof(n));
        if (k > 0) Kernels.Gemm.CheckMatrix(b.Length, transposeB ? n : k, transposeB ? k : n, ldb, nameof(b), nameof(ldb), transposeB ? "n x k" : "k x n");
        Kernels.Gemm.Run(Isa, transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, null, beta, c, ldc);
    }

    /// <summary>As <see cref="Gemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/> with op(B) pre-packed (n = b.N, k = b.K).</summary>
    /// <exception cref="ArgumentException">Shapes do not match, or <paramref name="b"/> was packed for another kernel set.</exception>
    public void Gemm(bool transposeA, int m, float alpha, ReadOnlySpan<float> a, int lda, PackedGemmOperand b,
        float beta, Span<float> c, int ldc)
    {
        ArgumentNullException.ThrowIfNull(b);
        if (b.Set != this)
            ThrowHelper.Throw(nameof(b), $"b was packed for kernel set '{b.Set.Name}', not '{Name}'.");
        CheckGemm(transposeA, m, b.N, b.K, a, lda, c, ldc);
        Kernels.Gemm.Run(Isa, transposeA, false, m, b.N, b.K, alpha, a, lda, default, 0, b, beta, c, ldc);
    }

    private static void CheckGemm(bool transposeA, int m, int n, int k, ReadOnlySpan<float> a, int lda, Span<float> c, int ldc)
    {
        ThrowHelper.CheckNonNegative(m, nameof(m));
        ThrowHelper.CheckNonNegative(n, nameof(n));
        ThrowHelper.CheckNonNegative(k, nameof(k));
        if (m > 0 && k > 0)
            Kernels.Gemm.CheckMatrix(a.Length, transposeA ? k : m, transposeA ? m : k, lda, nameof(a), nameof(lda), transposeA ? "k x m" : "m x k");
        Kernels.Gemm.CheckMatrix(c.Length, m, n, ldc, nameof(c), nameof(ldc), "m x n");
    }

    /// <summary>Packs op(B) (k x n) once into this set's GEMM panel layout. <paramref name="b"/> is k x n, or n x k when <paramref name="transposeB"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="b"/> is too short, or a dimension is negative.</exception>
    public PackedGemmOperand PackGemmOperand(bool transposeB, int k, int n, ReadOnlySpan<float> b, int ldb)
    {
        var packed = new PackedGemmOperand(this, transposeB, k, n);
        packed.Repack(b, ldb);
        return packed;
    }

    /// <summary>y = W x, or y += W x when <paramref name="accumulate"/>, with W pre-packed (rows x cols).</summary>
    /// <exception cref="ArgumentException">x is not cols long or y is not rows long.</exception>
    public void Gemv(PackedGemvMatrix w, ReadOnlySpan<float> x, Span<float> y, bool accumulate = false)
    {
        ArgumentNullException.ThrowIfNull(w);
        ThrowHelper.CheckLength(x.Length, w.Cols, nameof(x), "w.Cols");
        ThrowHelper.CheckLength(y.Length, w.Rows, nameof(y), "w.Rows");
        Kernels.Gemv.Packed(Isa, w, x, y, accumulate);
    }

    /// <summary>y = W x, or y += W x when <paramref name="accumulate"/>, for a row-major W (rows x cols, leading dimension ldw).</summary>
    /// <exception cref="ArgumentException">A span is too short or lengths do not match the shape.</exception>
    public void Gemv(int rows, int cols, ReadOnlySpan<float> w, int ldw, ReadOnlySpan<float> x, Span<float> y, bool accumulate = false)
    {
        ThrowHelper.CheckNonNegative(cols, nameof(cols));
        Kernels.Gemm.CheckMatrix(w.Length, rows, cols, ldw, nameof(w), nameof(ldw), "rows x cols");
        ThrowHelper.CheckLength(x.Length, cols, nameof(x), "cols");
        ThrowHelper.CheckLength(y.Length, rows, nameof(y), "rows");
        Kernels.Gemv.RowMajor(Isa, rows, cols, w, ldw, x, y, accumulate);
    }

    /// <summary>x = W^T y, or x += W^T y when <paramref name="accumulate"/>, for a row-major W (rows x cols, leading dimension ldw).</summary>
    /// <exception cref="ArgumentException">A span is too short or lengths do not match the shape.</exception>
    public void GemvTransposed(int rows, int cols, ReadOnlySpan<float> w, int ldw, ReadOnlySpan<float> y, Span<float> x, bool accumulate = false)
    {
        ThrowHelper.CheckNonNegative(cols, nameof(cols));
        Kernels.Gemm.CheckMatrix(w.Length, rows, cols, ldw, nameof(w), nameof(ldw), "rows x cols");
        ThrowHelper.CheckLength(y.Length, rows, nameof(y), "rows");
        ThrowHelper.CheckLength(x.Length, cols, nameof(x), "cols");
        Kernels.Gemv.Transposed(Isa, rows, cols, w, ldw, y, x, accumulate);
    }
}
