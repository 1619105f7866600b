using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RnnSimd.Kernels;

/// <summary>A register-blocked micro-kernel: C[MR x NR] = alpha * Apanel * Bpanel + beta * C (beta 0: C not read).</summary>
internal interface IGemmMicroKernel
{
    static abstract int MR { get; }
    static abstract int NR { get; }
    static abstract unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta);
}

/// <summary>The scalar twin of the vector micro-kernels: same packing, same FMA chain per element.</summary>
internal readonly struct ScalarMicroKernel : IGemmMicroKernel
{
    public static int MR => 4;
    public static int NR => 8;

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        float* acc = stackalloc float[4 * 8];
        new Span<float>(acc, 32).Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int i = 0; i < 4; i++)
            {
                float ai = a[i];
                for (int j = 0; j < 8; j++) acc[i * 8 + j] = MathF.FusedMultiplyAdd(ai, b[j], acc[i * 8 + j]);
            }
            a += 4;
            b += 8;
        }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++)
                Gemm.WriteOut(ref c[i * ldc + j], acc[i * 8 + j], alpha, beta);
    }
}

/// <summary>
/// Row-major SGEMM, C = alpha * op(A) * op(B) + beta * C, in the GotoBLAS/BLIS structure: op(B) is packed in
/// KC x NC panels (L3), op(A) in MC x KC blocks (L2), and a register-blocked micro-kernel computes MR x NR tiles
/// from an A micro-panel and a B micro-panel (L1). Ragged edges are zero-padded in the packed panels; partial
/// tiles are computed into a small buffer and then written out with the same arithmetic.
/// Arithmetic contract (identical in every kernel set): each C element is, per k-block of <see cref="KBlock"/>,
/// one sequential FMA chain over k starting from 0, written out as beta == 0 ? alpha*acc : fma(alpha, acc, beta*C),
/// with beta = 1 after the first k-block.
/// </summary>
internal static class Gemm
{
    /// <summary>k-block size: part of the arithmetic contract, the same for every kernel set.</summary>
    public const int KBlock = 256;
    private const int MBlockTarget = 192;
    private const int NBlockTarget = 4096;

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteOut(ref float c, float acc, float alpha, float beta) =>
        c = beta == 0f ? alpha * acc : MathF.FusedMultiplyAdd(alpha, acc, beta * c);

    public static int MR(KernelIsa isa) => isa switch
    {
        KernelIsa.Avx512 => Avx512MicroKernel.MR,
        KernelIsa.Avx2 => Avx2MicroKernel.MR,
        _ => ScalarMicroKernel.MR,
    };

    public static int NR(KernelIsa isa) => isa switch
    {
        KernelIsa.Avx512 => Avx512MicroKernel.NR,
        KernelIsa.Avx2 => Avx2MicroKernel.NR,
        _ => ScalarMicroKernel.NR,
    };

    /// <summary>Validates a row-major operand of <paramref name="rows"/> x <paramref name="cols"/> with leading dimension ld.</summary>
    public static void CheckMatrix(int length, int rows, int cols, int ld, string name, string ldName, string shape)
    {
        ThrowHelper.CheckNonNegative(rows, name);
        if (rows == 0 || cols == 0) return;
        if (ld < cols) ThrowLeadingDimension(ld, cols, name, ldName, shape);
        long required = (long)(rows - 1) * ld + cols;
        if (length < required) ThrowTooShort(length, rows, cols, ld, required, name, shape);
    }

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowLeadingDimension(int ld, int cols, string name, string ldName, string shape) =>
        throw new ArgumentException($"{ldName} = {ld} is smaller than the row length of {name} ({shape}: {cols}).", ldName);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTooShort(int length, int rows, int cols, int ld, long required, string name, string shape) =>
        throw new ArgumentException(
            $"{name} has {length} floats, expected at least (rows - 1) * ld + cols = ({rows} - 1) * {ld} + {cols} = {required} for {shape} = {rows} x {cols}.", name);

    public static unsafe void Run(KernelIsa isa, bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, PackedGemmOperand? packedB,
        float beta, Span<float> c, int ldc)
    {
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            var job = new Job
            {
                Isa = isa, TransA = transA, TransB = transB, M = m, N = n, K = k, Alpha = alpha, Beta = beta,
                A = pa, Lda = lda, B = pb, Ldb = ldb, Packed = packedB is null ? null : packedB.Pointer,
                PaddedCols = packedB?.PaddedCols ?? 0, C = pc, Ldc = ldc,
            };
            // Split large products across threads: by columns when N is the larger side (in tiles), else by rows.
            // Each C element is computed exactly as on one thread, so the result does not depend on the split.
            if (Parallelism.MaxThreads > 1 && (long)m * n * k >= ParallelThreshold)
            {
                job.SplitN = n / NR(isa) >= m / MR(isa);
                int tiles = job.SplitN ? (n + NR(isa) - 1) / NR(isa) : (m + MR(isa) - 1) / MR(isa);
                if (tiles >= 2 && Parallelism.TryRun(&Part, &job, Math.Min(tiles, Parallelism.MaxThreads))) return;
            }
            Part(&job, 0, 1);
        }
    }

    /// <summary>m*n*k below which a GEMM stays on one thread (about 13 µs of work at full speed).</summary>
    private const long ParallelThreshold = 1L << 20;

    private unsafe struct Job
    {
        public KernelIsa Isa;
        public bool TransA, TransB, SplitN;
        public int M, N, K, Lda, Ldb, Ldc, PaddedCols;
        public float Alpha, Beta;
        public float* A, B, Packed, C;
    }

    /// <summary>Computes part <paramref name="part"/> of <paramref name="parts"/> of a GEMM job: a range of whole column (or row) tiles.</summary>
    private static unsafe void Part(void* arg, int part, int parts)
    {
        ref Job j = ref *(Job*)arg;
        int m = j.M, n = j.N, colOffset = 0;
        float* a = j.A, b = j.B, c = j.C;
        if (parts > 1)
        {
            int unit = j.SplitN ? NR(j.Isa) : MR(j.Isa), total = j.SplitN ? n : m;
            int tiles = (total + unit - 1) / unit, per = (tiles + parts - 1) / parts;
            int start = Math.Min(total, part * per * unit), end = Math.Min(total, (part + 1) * per * unit);
            if (start >= end) return;
            if (j.SplitN)
            {
                n = end - start;
                colOffset = start;
                if (j.Packed is null) b += j.TransB ? (nint)start * j.Ldb : start;
                c += start;
            }
            else
            {
                m = end - start;
                a += j.TransA ? start : (nint)start * j.Lda;
                c += (nint)start * j.Ldc;
            }
        }
        switch (j.Isa)
        {
            case KernelIsa.Avx512 when Narrow(m, Avx512MicroKernel.MR, Avx512MicroKernel8.MR):
                Run<Avx512MicroKernel8>(j.TransA, j.TransB, m, n, j.K, j.Alpha, a, j.Lda, b, j.Ldb, j.Packed, j.PaddedCols, colOffset, j.Beta, c, j.Ldc);
                break;
            case KernelIsa.Avx512:
                Run<Avx512MicroKernel>(j.TransA, j.TransB, m, n, j.K, j.Alpha, a, j.Lda, b, j.Ldb, j.Packed, j.PaddedCols, colOffset, j.Beta, c, j.Ldc);
                break;
            case KernelIsa.Avx2:
                Run<Avx2MicroKernel>(j.TransA, j.TransB, m, n, j.K, j.Alpha, a, j.Lda, b, j.Ldb, j.Packed, j.PaddedCols, colOffset, j.Beta, c, j.Ldc);
                break;
            default:
                Run<ScalarMicroKernel>(j.TransA, j.TransB, m, n, j.K, j.Alpha, a, j.Lda, b, j.Ldb, j.Packed, j.PaddedCols, colOffset, j.Beta, c, j.Ldc);
                break;
        }
    }

    /// <summary>
    /// Whether the narrower micro-kernel (fewer rows, same NR and B panels) computes fewer padded rows for m rows:
    /// a batch of 32 is 36 rows for 12x32 and exactly 32 for 8x32 (GemmBenchmarks "step 32x1024x321", pre-packed, Zen 5:
    /// 110 µs = 191 GFLOP/s, against 133 µs with 12x32 in the previous committed run). Either kernel computes each C
    /// element by the same FMA chain, so the choice never changes a result. AVX2 keeps 6x16 for every m: a 4x16 kernel
    /// (8 accumulators) gained only 4-10 % on Zen 5 in a Stopwatch A/B, and Zen 3 was measured at 48 of 86 GFLOP/s
    /// with 8 FMA chains (shared notes), where padding costs 11 %.
    /// </summary>
    private static bool Narrow(int m, int wide, int narrow) =>
        (m + narrow - 1) / narrow * narrow < (m + wide - 1) / wide * wide;

    private static int NBlock<TK>() where TK : IGemmMicroKernel => (NBlockTarget + TK.NR - 1) / TK.NR * TK.NR;
    private static int MBlock<TK>() where TK : IGemmMicroKernel => (MBlockTarget + TK.MR - 1) / TK.MR * TK.MR;

    /// <summary>
    /// The blocked loops. With a pre-packed B (<paramref name="packed"/>), <paramref name="colOffset"/> (a multiple of
    /// NR) selects the first packed column this call computes.
    /// </summary>
    private static unsafe void Run<TK>(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, float* b, int ldb, float* packed, int paddedCols, int colOffset, float beta, float* c, int ldc)
        where TK : IGemmMicroKernel
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) c[(nint)i * ldc + j] = beta == 0f ? 0f : beta * c[(nint)i * ldc + j];
            return;
        }
        int mr = TK.MR, nr = TK.NR, mcMax = MBlock<TK>(), ncMax = NBlock<TK>();
        float* bufA = PackBuffer(ref t_packA, mcMax * KBlock);
        float* bufB = packed is null ? PackBuffer(ref t_packB, ncMax * KBlock) : null;
        float* tile = stackalloc float[TK.MR * TK.NR];
        for (int jc = 0; jc < n; jc += ncMax)
        {
            int nc = Math.Min(ncMax, n - jc);
            for (int pc = 0; pc < k; pc += KBlock)
            {
                int kc = Math.Min(KBlock, k - pc);
                float betaBlock = pc == 0 ? beta : 1f;
                float* pb;
                if (packed is null)
                {
                    PackB(transB, b, ldb, pc, jc, kc, nc, nr, bufB);
                    pb = bufB;
                }
                else
                {
                    pb = packed + (nint)pc * paddedCols + (nint)(colOffset + jc) * kc;
                }
                for (int ic = 0; ic < m; ic += mcMax)
                {
                    int mc = Math.Min(mcMax, m - ic);
                    PackA(transA, a, lda, ic, pc, mc, kc, mr, bufA);
                    for (int jr = 0; jr < nc; jr += nr)
                    {
                        int nrEff = Math.Min(nr, nc - jr);
                        float* bp = pb + (nint)jr * kc;
                        for (int ir = 0; ir < mc; ir += mr)
                        {
                            int mrEff = Math.Min(mr, mc - ir);
                            float* ap = bufA + (nint)ir * kc;
                            float* cp = c + (nint)(ic + ir) * ldc + jc + jr;
                            Tile<TK>(kc, ap, bp, cp, ldc, mrEff, nrEff, alpha, betaBlock, tile);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// C (+)= A B on a subset of B's columns, on the calling thread: A is m x k row-major (leading dimension lda), B a
    /// pre-packed operand (k x N), and the columns are g * blockStride + [c0, c0 + cn) for g = 0 .. blocks-1 (the rows of
    /// some units in every gate block); blockStride and c0 multiples of <see cref="NR"/>. A is packed once per k-block for
    /// all the blocks. Each C element is computed exactly as by <see cref="Run"/>, so products split this way across
    /// threads are bitwise the whole product.
    /// </summary>
    internal static unsafe void RunColumnBlocks(KernelIsa isa, int m, float* a, int lda, PackedGemmOperand b, int blocks, int blockStride,
        int c0, int cn, float beta, float* c, int ldc)
    {
        switch (isa)
        {
            case KernelIsa.Avx512 when Narrow(m, Avx512MicroKernel.MR, Avx512MicroKernel8.MR):
                ColumnBlocks<Avx512MicroKernel8>(m, a, lda, b, blocks, blockStride, c0, cn, beta, c, ldc); break;
            case KernelIsa.Avx512: ColumnBlocks<Avx512MicroKernel>(m, a, lda, b, blocks, blockStride, c0, cn, beta, c, ldc); break;
            case KernelIsa.Avx2: ColumnBlocks<Avx2MicroKernel>(m, a, lda, b, blocks, blockStride, c0, cn, beta, c, ldc); break;
            default: ColumnBlocks<ScalarMicroKernel>(m, a, lda, b, blocks, blockStride, c0, cn, beta, c, ldc); break;
        }
    }

    private static unsafe void ColumnBlocks<TK>(int m, float* a, int lda, PackedGemmOperand b, int blocks, int blockStride,
        int c0, int cn, float beta, float* c, int ldc) where TK : IGemmMicroKernel
    {
        int k = b.K, n = b.N, mr = TK.MR, nr = TK.NR, mcMax = MBlock<TK>();
        if (m == 0 || cn == 0) return;
        if (k == 0)
        {
            for (int g = 0; g < blocks; g++)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < cn; j++)
                    {
                        ref float e = ref c[(nint)i * ldc + g * blockStride + c0 + j];
                        e = beta == 0f ? 0f : beta * e;
                    }
            return;
        }
        float* bufA = PackBuffer(ref t_packA, mcMax * KBlock);
        float* tile = stackalloc float[TK.MR * TK.NR];
        for (int pc = 0; pc < k; pc += KBlock)
        {
            int kc = Math.Min(KBlock, k - pc);
            float betaBlock = pc == 0 ? beta : 1f;
            float* pb = b.Pointer + (nint)pc * b.PaddedCols;
            for (int ic = 0; ic < m; ic += mcMax)
            {
                int mc = Math.Min(mcMax, m - ic);
                PackA(false, a, lda, ic, pc, mc, kc, mr, bufA);
                for (int g = 0; g < blocks; g++)
                {
                    for (int jr = 0; jr < cn; jr += nr)
                    {
                        int col = g * blockStride + c0 + jr;
                        int nrEff = Math.Min(nr, Math.Min(cn - jr, n - col));
                        float* bp = pb + (nint)col * kc;
                        for (int ir = 0; ir < mc; ir += mr)
                        {
                            int mrEff = Math.Min(mr, mc - ir);
                            float* ap = bufA + (nint)ir * kc;
                            float* cp = c + (nint)(ic + ir) * ldc + col;
                            Tile<TK>(kc, ap, bp, cp, ldc, mrEff, nrEff, 1f, betaBlock, tile);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// One micro-tile: straight into C when whole, else computed into <paramref name="tile"/> (MR x NR) and written out
    /// element by element with the same arithmetic (ragged edges).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Tile<TK>(int kc, float* ap, float* bp, float* cp, int ldc, int mrEff, int nrEff, float alpha, float beta,
        float* tile) where TK : IGemmMicroKernel
    {
        if (mrEff == TK.MR && nrEff == TK.NR)
        {
            TK.Run(kc, ap, bp, cp, ldc, alpha, beta);
            return;
        }
        TK.Run(kc, ap, bp, tile, TK.NR, 1f, 0f);
        for (int i = 0; i < mrEff; i++)
            for (int j = 0; j < nrEff; j++)
                WriteOut(ref cp[(nint)i * ldc + j], tile[i * TK.NR + j], alpha, beta);
    }

    /// <summary>A 64-byte-aligned pinned per-thread buffer of at least <paramref name="floats"/> floats, grown on first use.</summary>
    private static unsafe float* PackBuffer(ref float[]? buffer, int floats)
    {
        if (buffer is null || buffer.Length < floats + 16)
            buffer = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
        float* p = (float*)Unsafe.AsPointer(ref buffer[0]);
        return (float*)(((nint)p + 63) & ~(nint)63);
    }

    /// <summary>Packs op(A)[ic.., pc..] (mc x kc) into MR-row micro-panels: element (i, p) at p*MR + i; zero-padded.</summary>
    private static unsafe void PackA(bool transA, float* a, int lda, int ic, int pc, int mc, int kc, int mr, float* dst)
    {
        if (transA && (lda & 1023) == 0)
        {
            // op(A) = A^T with a leading dimension that is a multiple of 4 KiB: row p of A holds column p of op(A). Read
            // each source row once, whole (mc contiguous floats), and scatter it over the panels. The loop below (one
            // panel at a time: mr floats from each of kc rows) walks such an lda through one L1 set and refetches every
            // line once per panel (the weight gradient 1024x321x2048 ran at half its ragged neighbour's speed on Zen 3);
            // for other strides it is 5-12 % faster than this one (measured on Zen 5, avx2 and avx512), so it stays.
            for (int p = 0; p < kc; p++)
            {
                float* src = a + (nint)(pc + p) * lda + ic;
                float* d = dst + p * mr;
                for (int ir = 0; ir < mc; ir += mr, d += (nint)mr * kc)
                {
                    int rows = Math.Min(mr, mc - ir);
                    for (int i = 0; i < rows; i++) d[i] = src[ir + i];
                    for (int i = rows; i < mr; i++) d[i] = 0f;
                }
            }
            return;
        }
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* d = dst + (nint)ir * kc;
            if (!transA)
            {
                for (int i = 0; i < rows; i++)
                {
                    float* src = a + (nint)(ic + ir + i) * lda + pc;
                    for (int p = 0; p < kc; p++) d[p * mr + i] = src[p];
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (nint)(pc + p) * lda + ic + ir;
                    for (int i = 0; i < rows; i++) d[p * mr + i] = src[i];
                }
            }
            for (int i = rows; i < mr; i++)
                for (int p = 0; p < kc; p++) d[p * mr + i] = 0f;
        }
    }

    /// <summary>Packs op(B)[pc.., jc..] (kc x nc) into NR-column micro-panels: element (p, j) at p*NR + j; zero-padded.</summary>
    internal static unsafe void PackB(bool transB, float* b, int ldb, int pc, int jc, int kc, int nc, int nr, float* dst)
    {
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr);
            float* d = dst + (nint)jr * kc;
            if (!transB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (nint)(pc + p) * ldb + jc + jr;
                    float* dp = d + p * nr;
                    int j = 0;
                    if (Vector256.IsHardwareAccelerated)
                        for (; j <= cols - 8; j += 8) Vector256.Store(Vector256.Load(src + j), dp + j);
                    for (; j < cols; j++) dp[j] = src[j];
                    for (; j < nr; j++) dp[j] = 0f;
                }
            }
            else
            {
                for (int j = 0; j < cols; j++)
                {
                    float* src = b + (nint)(jc + jr + j) * ldb + pc;
                    for (int p = 0; p < kc; p++) d[p * nr + j] = src[p];
                }
                for (int j = cols; j < nr; j++)
                    for (int p = 0; p < kc; p++) d[p * nr + j] = 0f;
            }
        }
    }
}
