using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RnnSimd.Kernels;

/// <summary>
/// Batch-1 y (+)= W x for bf16 weights (<see cref="PackedBf16GemvMatrix"/>) and float32 x, y. Weights are widened
/// exactly (column 2p: dword &lt;&lt; 16; column 2p + 1: dword &amp; 0xFFFF0000), then <see cref="Gemv"/>'s packed contract:
/// four FMA chains over c mod 4 in increasing c, (s0 + s1) + (s2 + s3), + y when accumulating. Bitwise identical across
/// sets, and bitwise the float32 packed product of the widened matrix.
/// </summary>
internal static unsafe class GemvBf16
{
    /// <summary>
    /// Rows [16 * <paramref name="tile0"/>, 16 * (tile0 + tiles)) of y (+)= W x (y is the whole output vector). Each row is
    /// computed exactly as in a whole product, so a product split into tile ranges is bitwise the whole product.
    /// </summary>
    public static void PackedTiles(KernelIsa isa, PackedBf16GemvMatrix w, int tile0, int tiles, float* x, float* y, bool accumulate)
    {
        tiles = Math.Min(tiles, w.Tiles - tile0);
        int rows = Math.Min(w.Rows - tile0 * 16, tiles * 16);
        if (rows <= 0) return;
        ushort* p = w.Pointer + (nint)tile0 * 16 * w.PaddedCols;
        y += tile0 * 16;
        switch (isa)
        {
            case KernelIsa.Avx512: Packed512(p, w.Cols, w.PaddedCols, tiles, rows, x, y, accumulate); break;
            case KernelIsa.Avx2: Packed256(p, w.Cols, w.PaddedCols, tiles, rows, x, y, accumulate); break;
            default: PackedScalar(p, w.Cols, w.PaddedCols, rows, x, y, accumulate); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Even(Vector512<uint> d) => (d << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Odd(Vector512<uint> d) => (d & Vector512.Create(0xFFFF_0000u)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Even(Vector256<uint> d) => (d << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Odd(Vector256<uint> d) => (d & Vector256.Create(0xFFFF_0000u)).AsSingle();

    /// <summary>Two tiles at a time (8 FMA chains), as <see cref="Gemv"/>'s 512-bit kernel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Packed512(ushort* pointer, int cols, int paddedCols, int tiles, int rows, float* x, float* y, bool accumulate)
    {
        int c4 = cols & ~3;
        nint tileStride = (nint)paddedCols * 16;
        int t = 0;
        for (; t + 2 <= tiles; t += 2)
        {
            uint* a = (uint*)(pointer + t * tileStride), b = (uint*)(pointer + (t + 1) * tileStride);
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            Vector512<float> v0 = default, v1 = default, v2 = default, v3 = default;
            int c = 0;
            for (; c < c4; c += 4)
            {
                var x0 = Vector512.Create(x[c]);
                var x1 = Vector512.Create(x[c + 1]);
                var x2 = Vector512.Create(x[c + 2]);
                var x3 = Vector512.Create(x[c + 3]);
                uint* p = a + (nint)c * 8, q = b + (nint)c * 8; // the blocks of pairs c / 2 and c / 2 + 1
                var pa = Vector512.Load(p);
                var qa = Vector512.Load(q);
                var pb = Vector512.Load(p + 16);
                var qb = Vector512.Load(q + 16);
                s0 = Vector512.FusedMultiplyAdd(Even(pa), x0, s0);
                v0 = Vector512.FusedMultiplyAdd(Even(qa), x0, v0);
                s1 = Vector512.FusedMultiplyAdd(Odd(pa), x1, s1);
                v1 = Vector512.FusedMultiplyAdd(Odd(qa), x1, v1);
                s2 = Vector512.FusedMultiplyAdd(Even(pb), x2, s2);
                v2 = Vector512.FusedMultiplyAdd(Even(qb), x2, v2);
                s3 = Vector512.FusedMultiplyAdd(Odd(pb), x3, s3);
                v3 = Vector512.FusedMultiplyAdd(Odd(qb), x3, v3);
            }
            if (c < cols)
            {
                var pa = Vector512.Load(a + (nint)c * 8);
                var qa = Vector512.Load(b + (nint)c * 8);
                var xc = Vector512.Create(x[c]);
                s0 = Vector512.FusedMultiplyAdd(Even(pa), xc, s0);
                v0 = Vector512.FusedMultiplyAdd(Even(qa), xc, v0);
                if (c + 1 < cols)
                {
                    xc = Vector512.Create(x[c + 1]);
                    s1 = Vector512.FusedMultiplyAdd(Odd(pa), xc, s1);
                    v1 = Vector512.FusedMultiplyAdd(Odd(qa), xc, v1);
                    if (c + 2 < cols)
                    {
                        xc = Vector512.Create(x[c + 2]);
                        s2 = Vector512.FusedMultiplyAdd(Even(Vector512.Load(a + (nint)c * 8 + 16)), xc, s2);
                        v2 = Vector512.FusedMultiplyAdd(Even(Vector512.Load(b + (nint)c * 8 + 16)), xc, v2);
                    }
                }
            }
            // both sums before any store: nothing the FMA chains hold is live across the (cold) partial-tile call, so the
            // JIT keeps all eight accumulators in registers (with the call between them it spilled one inside the loop)
            var first = (s0 + s1) + (s2 + s3);
            var second = (v0 + v1) + (v2 + v3);
            Gemv.Store512(first, y + t * 16, rows - t * 16, accumulate);
            Gemv.Store512(second, y + (t + 1) * 16, rows - (t + 1) * 16, accumulate);
        }
        if (t < tiles)
        {
            uint* a = (uint*)(pointer + t * tileStride);
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            int c = 0;
            for (; c < c4; c += 4)
            {
                uint* p = a + (nint)c * 8;
                var pa = Vector512.Load(p);
                var pb = Vector512.Load(p + 16);
                s0 = Vector512.FusedMultiplyAdd(Even(pa), Vector512.Create(x[c]), s0);
                s1 = Vector512.FusedMultiplyAdd(Odd(pa), Vector512.Create(x[c + 1]), s1);
                s2 = Vector512.FusedMultiplyAdd(Even(pb), Vector512.Create(x[c + 2]), s2);
                s3 = Vector512.FusedMultiplyAdd(Odd(pb), Vector512.Create(x[c + 3]), s3);
            }
            if (c < cols)
            {
                var pa = Vector512.Load(a + (nint)c * 8);
                s0 = Vector512.FusedMultiplyAdd(Even(pa), Vector512.Create(x[c]), s0);
                if (c + 1 < cols) s1 = Vector512.FusedMultiplyAdd(Odd(pa), Vector512.Create(x[c + 1]), s1);
                if (c + 2 < cols) s2 = Vector512.FusedMultiplyAdd(Even(Vector512.Load(a + (nint)c * 8 + 16)), Vector512.Create(x[c + 2]), s2);
            }
            Gemv.Store512((s0 + s1) + (s2 + s3), y + t * 16, rows - t * 16, accumulate);
        }
    }


    /// <summary>One tile at a time: rows 0-7 (s) and 8-15 (h), four chains each, as <see cref="Gemv"/>'s 256-bit kernel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Packed256(ushort* pointer, int cols, int paddedCols, int tiles, int rows, float* x, float* y, bool accumulate)
    {
        nint tileStride = (nint)paddedCols * 16;
        float* tmp = stackalloc float[16];
        for (int t = 0; t < tiles; t++)
        {
            uint* a = (uint*)(pointer + t * tileStride);
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            Vector256<float> h0 = default, h1 = default, h2 = default, h3 = default;
            int c = 0;
            for (; c + 4 <= cols; c += 4)
            {
                uint* p = a + (nint)c * 8;
                var x0 = Vector256.Create(x[c]);
                var x1 = Vector256.Create(x[c + 1]);
                var x2 = Vector256.Create(x[c + 2]);
                var x3 = Vector256.Create(x[c + 3]);
                var lo = Vector256.Load(p);
                var hi = Vector256.Load(p + 8);
                s0 = Vector256.FusedMultiplyAdd(Even(lo), x0, s0);
                h0 = Vector256.FusedMultiplyAdd(Even(hi), x0, h0);
                s1 = Vector256.FusedMultiplyAdd(Odd(lo), x1, s1);
                h1 = Vector256.FusedMultiplyAdd(Odd(hi), x1, h1);
                lo = Vector256.Load(p + 16);
                hi = Vector256.Load(p + 24);
                s2 = Vector256.FusedMultiplyAdd(Even(lo), x2, s2);
                h2 = Vector256.FusedMultiplyAdd(Even(hi), x2, h2);
                s3 = Vector256.FusedMultiplyAdd(Odd(lo), x3, s3);
                h3 = Vector256.FusedMultiplyAdd(Odd(hi), x3, h3);
            }
            if (c < cols)
            {
                uint* p = a + (nint)c * 8;
                var lo = Vector256.Load(p);
                var hi = Vector256.Load(p + 8);
                var xc = Vector256.Create(x[c]);
                s0 = Vector256.FusedMultiplyAdd(Even(lo), xc, s0);
                h0 = Vector256.FusedMultiplyAdd(Even(hi), xc, h0);
                if (c + 1 < cols)
                {
                    xc = Vector256.Create(x[c + 1]);
                    s1 = Vector256.FusedMultiplyAdd(Odd(lo), xc, s1);
                    h1 = Vector256.FusedMultiplyAdd(Odd(hi), xc, h1);
                    if (c + 2 < cols)
                    {
                        xc = Vector256.Create(x[c + 2]);
                        s2 = Vector256.FusedMultiplyAdd(Even(Vector256.Load(p + 16)), xc, s2);
                        h2 = Vector256.FusedMultiplyAdd(Even(Vector256.Load(p + 24)), xc, h2);
                    }
                }
            }
            ((s0 + s1) + (s2 + s3)).Store(tmp);
            ((h0 + h1) + (h2 + h3)).Store(tmp + 8);
            int valid = Math.Min(16, rows - t * 16);
            float* yt = y + t * 16;
            for (int i = 0; i < valid; i++) yt[i] = accumulate ? yt[i] + tmp[i] : tmp[i];
        }
    }

    /// <summary>The scalar twin, row by row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackedScalar(ushort* pointer, int cols, int paddedCols, int rows, float* x, float* y, bool accumulate)
    {
        for (int r = 0; r < rows; r++)
        {
            ushort* p = pointer + (nint)(r / 16) * paddedCols * 16 + (r % 16) * 2; // column c at p[(c / 2) * 32 + (c & 1)]
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int c = 0;
            for (; c + 4 <= cols; c += 4)
            {
                ushort* b = p + (nint)c * 16;
                s0 = MathF.FusedMultiplyAdd(PackedBf16GemvMatrix.ToSingle(b[0]), x[c], s0);
                s1 = MathF.FusedMultiplyAdd(PackedBf16GemvMatrix.ToSingle(b[1]), x[c + 1], s1);
                s2 = MathF.FusedMultiplyAdd(PackedBf16GemvMatrix.ToSingle(b[32]), x[c + 2], s2);
                s3 = MathF.FusedMultiplyAdd(PackedBf16GemvMatrix.ToSingle(b[33]), x[c + 3], s3);
            }
            ushort* e = p + (nint)c * 16;
            if (c < cols) s0 = MathF.FusedMultiplyAdd(PackedBf16GemvMatrix.ToSingle(e[0]), x[c], s0);
            if (c + 1 < cols) s1 = MathF.FusedMultiplyAdd(PackedBf16GemvMatrix.ToSingle(e[1]), x[c + 1], s1);
            if (c + 2 < cols) s2 = MathF.FusedMultiplyAdd(PackedBf16GemvMatrix.ToSingle(e[32]), x[c + 2], s2);
            float v = (s0 + s1) + (s2 + s3);
            y[r] = accumulate ? y[r] + v : v;
        }
    }
}
