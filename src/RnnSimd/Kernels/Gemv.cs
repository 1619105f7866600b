using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RnnSimd.Kernels;

/// <summary>
/// Batch-1 matrix-vector kernels.
/// Packed y (+)= W x: arithmetic contract for every set: row r is four FMA chains s_j over the columns c = j (mod 4),
/// in increasing c, combined as (s0 + s1) + (s2 + s3), then added to y when accumulating.
/// Transposed x (+)= W^T y: each x[c] is one FMA chain over rows r = 0..rows-1 in order.
/// Both are bitwise identical across kernel sets.
/// </summary>
internal static unsafe class Gemv
{
    public static void Packed(KernelIsa isa, PackedGemvMatrix w, ReadOnlySpan<float> x, Span<float> y, bool accumulate)
    {
        fixed (float* px = x)
        fixed (float* py = y)
            PackedTiles(isa, w, 0, w.Tiles, px, py, accumulate);
    }

    /// <summary>
    /// Rows [16 * <paramref name="tile0"/>, 16 * (tile0 + tiles)) of y (+)= W x (y is the whole output vector). Each row is
    /// computed exactly as by <see cref="Packed"/>, so a product split into tile ranges is bitwise the whole product.
    /// </summary>
    public static void PackedTiles(KernelIsa isa, PackedGemvMatrix w, int tile0, int tiles, float* x, float* y, bool accumulate)
    {
        float* p = w.Pointer + (nint)tile0 * 16 * w.Cols;
        int rows = Math.Min(w.Rows - tile0 * 16, tiles * 16);
        y += tile0 * 16;
        switch (isa)
        {
            case KernelIsa.Avx512: Packed512(p, w.Cols, tiles, rows, x, y, accumulate); break;
            case KernelIsa.Avx2: Packed256(p, w.Cols, tiles, rows, x, y, accumulate); break;
            default: PackedScalar(p, w.Cols, rows, x, y, accumulate); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Packed512(float* pointer, int cols, int tiles, int rows, float* x, float* y, bool accumulate)
    {
        int c4 = cols & ~3;
        nint tileStride = (nint)cols * 16;
        float* tile = pointer;
        int t = 0;
        for (; t + 2 <= tiles; t += 2, tile += 2 * tileStride)
        {
            float* u = tile + tileStride;
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            Vector512<float> v0 = default, v1 = default, v2 = default, v3 = default;
            int c = 0;
            for (; c < c4; c += 4)
            {
                var x0 = Vector512.Create(x[c]);
                var x1 = Vector512.Create(x[c + 1]);
                var x2 = Vector512.Create(x[c + 2]);
                var x3 = Vector512.Create(x[c + 3]);
                float* p = tile + (nint)c * 16;
                float* q = u + (nint)c * 16;
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(p), x0, s0);
                v0 = Vector512.FusedMultiplyAdd(Vector512.Load(q), x0, v0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), x1, s1);
                v1 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 16), x1, v1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 32), x2, s2);
                v2 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 32), x2, v2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 48), x3, s3);
                v3 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 48), x3, v3);
            }
            if (c < cols)
            {
                var xc = Vector512.Create(x[c]);
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(tile + (nint)c * 16), xc, s0);
                v0 = Vector512.FusedMultiplyAdd(Vector512.Load(u + (nint)c * 16), xc, v0);
                if (++c < cols)
                {
                    xc = Vector512.Create(x[c]);
                    s1 = Vector512.FusedMultiplyAdd(Vector512.Load(tile + (nint)c * 16), xc, s1);
                    v1 = Vector512.FusedMultiplyAdd(Vector512.Load(u + (nint)c * 16), xc, v1);
                    if (++c < cols)
                    {
                        xc = Vector512.Create(x[c]);
                        s2 = Vector512.FusedMultiplyAdd(Vector512.Load(tile + (nint)c * 16), xc, s2);
                        v2 = Vector512.FusedMultiplyAdd(Vector512.Load(u + (nint)c * 16), xc, v2);
                    }
                }
            }
            Store512((s0 + s1) + (s2 + s3), y + t * 16, rows - t * 16, accumulate);
            Store512((v0 + v1) + (v2 + v3), y + (t + 1) * 16, rows - (t + 1) * 16, accumulate);
        }
        if (t < tiles)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            int c = 0;
            for (; c < c4; c += 4)
            {
                float* p = tile + (nint)c * 16;
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(p), Vector512.Create(x[c]), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), Vector512.Create(x[c + 1]), s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 32), Vector512.Create(x[c + 2]), s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 48), Vector512.Create(x[c + 3]), s3);
            }
            if (c < cols) s0 = Vector512.FusedMultiplyAdd(Vector512.Load(tile + (nint)c * 16), Vector512.Create(x[c]), s0);
            if (++c < cols) s1 = Vector512.FusedMultiplyAdd(Vector512.Load(tile + (nint)c * 16), Vector512.Create(x[c]), s1);
            if (++c < cols) s2 = Vector512.FusedMultiplyAdd(Vector512.Load(tile + (nint)c * 16), Vector512.Create(x[c]), s2);
            Store512((s0 + s1) + (s2 + s3), y + t * 16, rows - t * 16, accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store512(Vector512<float> v, float* y, int valid, bool accumulate)
    {
        if (valid >= 16)
        {
            if (accumulate) v += Vector512.Load(y);
            v.Store(y);
        }
        else
        {
            StorePartial(v, y, valid, accumulate);
        }
    }

    /// <summary>The last tile's valid rows (apart, so the stackalloc does not keep <see cref="Store512"/> from inlining).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StorePartial(Vector512<float> v, float* y, int valid, bool accumulate)
    {
        float* tmp = stackalloc float[16];
        v.Store(tmp);
        for (int i = 0; i < valid; i++) y[i] = accumulate ? y[i] + tmp[i] : tmp[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Packed256(float* pointer, int cols, int tiles, int rows, float* x, float* y, bool accumulate)
    {
        nint tileStride = (nint)cols * 16;
        float* tmp = stackalloc float[16];
        for (int t = 0; t < tiles; t++)
        {
            float* tile = pointer + t * tileStride;
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            Vector256<float> h0 = default, h1 = default, h2 = default, h3 = default;
            int c = 0;
            for (; c + 4 <= cols; c += 4)
            {
                float* p = tile + (nint)c * 16;
                var x0 = Vector256.Create(x[c]);
                var x1 = Vector256.Create(x[c + 1]);
                var x2 = Vector256.Create(x[c + 2]);
                var x3 = Vector256.Create(x[c + 3]);
                s0 = Vector256.FusedMultiplyAdd(Vector256.Load(p), x0, s0);
                h0 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 8), x0, h0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 16), x1, s1);
                h1 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 24), x1, h1);
                s2 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 32), x2, s2);
                h2 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 40), x2, h2);
                s3 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 48), x3, s3);
                h3 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 56), x3, h3);
            }
            for (int j = 0; c < cols; c++, j++)
            {
                float* p = tile + (nint)c * 16;
                var xc = Vector256.Create(x[c]);
                if (j == 0) { s0 = Vector256.FusedMultiplyAdd(Vector256.Load(p), xc, s0); h0 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 8), xc, h0); }
                else if (j == 1) { s1 = Vector256.FusedMultiplyAdd(Vector256.Load(p), xc, s1); h1 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 8), xc, h1); }
                else { s2 = Vector256.FusedMultiplyAdd(Vector256.Load(p), xc, s2); h2 = Vector256.FusedMultiplyAdd(Vector256.Load(p + 8), xc, h2); }
            }
            ((s0 + s1) + (s2 + s3)).Store(tmp);
            ((h0 + h1) + (h2 + h3)).Store(tmp + 8);
            int valid = Math.Min(16, rows - t * 16);
            float* yt = y + t * 16;
            for (int i = 0; i < valid; i++) yt[i] = accumulate ? yt[i] + tmp[i] : tmp[i];
        }
    }

    private static void PackedScalar(float* pointer, int cols, int rows, float* x, float* y, bool accumulate)
    {
        for (int r = 0; r < rows; r++)
        {
            float* p = pointer + (nint)(r / 16) * cols * 16 + (r % 16);
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int c = 0;
            for (; c + 4 <= cols; c += 4)
            {
                s0 = MathF.FusedMultiplyAdd(p[(nint)c * 16], x[c], s0);
                s1 = MathF.FusedMultiplyAdd(p[(nint)(c + 1) * 16], x[c + 1], s1);
                s2 = MathF.FusedMultiplyAdd(p[(nint)(c + 2) * 16], x[c + 2], s2);
                s3 = MathF.FusedMultiplyAdd(p[(nint)(c + 3) * 16], x[c + 3], s3);
            }
            if (c < cols) s0 = MathF.FusedMultiplyAdd(p[(nint)c * 16], x[c], s0);
            if (++c < cols) s1 = MathF.FusedMultiplyAdd(p[(nint)c * 16], x[c], s1);
            if (++c < cols) s2 = MathF.FusedMultiplyAdd(p[(nint)c * 16], x[c], s2);
            float v = (s0 + s1) + (s2 + s3);
            y[r] = accumulate ? y[r] + v : v;
        }
    }

    /// <summary>
    /// y (+)= W x for a row-major W (rows x cols, leading dimension ldw), each row under the <see cref="ElementWise.Dot"/>
    /// contract (16 lanes, zero-padded last block, fixed pairwise lane tree), four rows at a time in the vector sets so
    /// that each x block is loaded once; bitwise identical across sets.
    /// </summary>
    public static void RowMajor(KernelIsa isa, int rows, int cols, ReadOnlySpan<float> w, int ldw, ReadOnlySpan<float> x,
        Span<float> y, bool accumulate)
    {
        int r = 0;
        if (isa != KernelIsa.Scalar && cols > 0)
        {
            fixed (float* pw = w)
            fixed (float* px = x)
            fixed (float* py = y)
            {
                float* tail = stackalloc float[16];
                int full = cols & ~15;
                new Span<float>(tail, 16).Clear();
                for (int c = full; c < cols; c++) tail[c - full] = px[c];
                for (; r + 4 <= rows; r += 4)
                {
                    if (isa == KernelIsa.Avx512) Rows4x512(pw + (nint)r * ldw, ldw, px, tail, cols, py + r, accumulate);
                    else Rows4x256(pw + (nint)r * ldw, ldw, px, tail, cols, py + r, accumulate);
                }
            }
        }
        for (; r < rows; r++)
        {
            float v = ElementWise.Dot(isa, w.Slice(r * ldw, cols), x);
            y[r] = accumulate ? y[r] + v : v;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4x512(float* w, int ldw, float* x, float* xTail, int cols, float* y, bool accumulate)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float* w1 = w + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
        int full = cols & ~15, c = 0;
        for (; c < full; c += 16)
        {
            var xv = Vector512.Load(x + c);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + c), xv, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + c), xv, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + c), xv, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + c), xv, a3);
        }
        if (c < cols)
        {
            var xv = Vector512.Load(xTail);
            a0 = Vector512.FusedMultiplyAdd(TailRow512(w + c, cols - c), xv, a0);
            a1 = Vector512.FusedMultiplyAdd(TailRow512(w1 + c, cols - c), xv, a1);
            a2 = Vector512.FusedMultiplyAdd(TailRow512(w2 + c, cols - c), xv, a2);
            a3 = Vector512.FusedMultiplyAdd(TailRow512(w3 + c, cols - c), xv, a3);
        }
        Finish(Reduce(a0.GetLower() + a0.GetUpper()), y, accumulate);
        Finish(Reduce(a1.GetLower() + a1.GetUpper()), y + 1, accumulate);
        Finish(Reduce(a2.GetLower() + a2.GetUpper()), y + 2, accumulate);
        Finish(Reduce(a3.GetLower() + a3.GetUpper()), y + 3, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4x256(float* w, int ldw, float* x, float* xTail, int cols, float* y, bool accumulate)
    {
        Vector256<float> l0 = default, l1 = default, l2 = default, l3 = default, h0 = default, h1 = default, h2 = default, h3 = default;
        float* w1 = w + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
        int full = cols & ~15, c = 0;
        for (; c < full; c += 16)
        {
            var xl = Vector256.Load(x + c);
            var xh = Vector256.Load(x + c + 8);
            l0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + c), xl, l0); h0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + c + 8), xh, h0);
            l1 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + c), xl, l1); h1 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + c + 8), xh, h1);
            l2 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + c), xl, l2); h2 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + c + 8), xh, h2);
            l3 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + c), xl, l3); h3 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + c + 8), xh, h3);
        }
        if (c < cols)
        {
            int n = cols - c;
            var xl = Vector256.Load(xTail);
            var xh = Vector256.Load(xTail + 8);
            var t = TailRow512(w + c, n); l0 = Vector256.FusedMultiplyAdd(t.GetLower(), xl, l0); h0 = Vector256.FusedMultiplyAdd(t.GetUpper(), xh, h0);
            t = TailRow512(w1 + c, n); l1 = Vector256.FusedMultiplyAdd(t.GetLower(), xl, l1); h1 = Vector256.FusedMultiplyAdd(t.GetUpper(), xh, h1);
            t = TailRow512(w2 + c, n); l2 = Vector256.FusedMultiplyAdd(t.GetLower(), xl, l2); h2 = Vector256.FusedMultiplyAdd(t.GetUpper(), xh, h2);
            t = TailRow512(w3 + c, n); l3 = Vector256.FusedMultiplyAdd(t.GetLower(), xl, l3); h3 = Vector256.FusedMultiplyAdd(t.GetUpper(), xh, h3);
        }
        Finish(Reduce(l0 + h0), y, accumulate);
        Finish(Reduce(l1 + h1), y + 1, accumulate);
        Finish(Reduce(l2 + h2), y + 2, accumulate);
        Finish(Reduce(l3 + h3), y + 3, accumulate);
    }

    /// <summary>The last, partial 16-float block of a row, zero-padded (reads only the n valid floats).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> TailRow512(float* p, int n)
    {
        float* t = stackalloc float[16];
        for (int i = 0; i < 16; i++) t[i] = i < n ? p[i] : 0f;
        return Vector512.Load(t);
    }

    /// <summary>The Dot lane tree from 8 lanes: (l + l+4), then (l + l+2), then (l + l+1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce(Vector256<float> v)
    {
        var q = v.GetLower() + v.GetUpper();
        float a = q.GetElement(0) + q.GetElement(2), b = q.GetElement(1) + q.GetElement(3);
        return a + b;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(float v, float* y, bool accumulate) => *y = accumulate ? *y + v : v;

    /// <summary>x (+)= W^T y for a row-major W (rows x cols): x[c] is one FMA chain over rows in order.</summary>
    public static void Transposed(KernelIsa isa, int rows, int cols, ReadOnlySpan<float> w, int ldw, ReadOnlySpan<float> y,
        Span<float> x, bool accumulate)
    {
        fixed (float* pw = w)
        fixed (float* py = y)
        fixed (float* px = x)
        {
            int c = 0;
            if (isa == KernelIsa.Avx512)
            {
                for (; c + 128 <= cols; c += 128) TransposedBlock512(rows, pw + c, ldw, py, px + c, accumulate);
                for (; c + 16 <= cols; c += 16)
                {
                    var acc = accumulate ? Vector512.Load(px + c) : Vector512<float>.Zero;
                    for (int r = 0; r < rows; r++)
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(pw + (nint)r * ldw + c), Vector512.Create(py[r]), acc);
                    acc.Store(px + c);
                }
            }
            if (isa >= KernelIsa.Avx2)
            {
                for (; c + 32 <= cols; c += 32)
                {
                    Vector256<float> a0, a1, a2, a3;
                    if (accumulate) { a0 = Vector256.Load(px + c); a1 = Vector256.Load(px + c + 8); a2 = Vector256.Load(px + c + 16); a3 = Vector256.Load(px + c + 24); }
                    else { a0 = a1 = a2 = a3 = Vector256<float>.Zero; }
                    for (int r = 0; r < rows; r++)
                    {
                        float* row = pw + (nint)r * ldw + c;
                        var yr = Vector256.Create(py[r]);
                        a0 = Vector256.FusedMultiplyAdd(Vector256.Load(row), yr, a0);
                        a1 = Vector256.FusedMultiplyAdd(Vector256.Load(row + 8), yr, a1);
                        a2 = Vector256.FusedMultiplyAdd(Vector256.Load(row + 16), yr, a2);
                        a3 = Vector256.FusedMultiplyAdd(Vector256.Load(row + 24), yr, a3);
                    }
                    a0.Store(px + c); a1.Store(px + c + 8); a2.Store(px + c + 16); a3.Store(px + c + 24);
                }
                for (; c + 8 <= cols; c += 8)
                {
                    var acc = accumulate ? Vector256.Load(px + c) : Vector256<float>.Zero;
                    for (int r = 0; r < rows; r++)
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(pw + (nint)r * ldw + c), Vector256.Create(py[r]), acc);
                    acc.Store(px + c);
                }
            }
            for (; c < cols; c++)
            {
                float acc = accumulate ? px[c] : 0f;
                for (int r = 0; r < rows; r++) acc = MathF.FusedMultiplyAdd(pw[(nint)r * ldw + c], py[r], acc);
                px[c] = acc;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposedBlock512(int rows, float* w, int ldw, float* y, float* x, bool accumulate)
    {
        Vector512<float> a0, a1, a2, a3, a4, a5, a6, a7;
        if (accumulate)
        {
            a0 = Vector512.Load(x); a1 = Vector512.Load(x + 16); a2 = Vector512.Load(x + 32); a3 = Vector512.Load(x + 48);
            a4 = Vector512.Load(x + 64); a5 = Vector512.Load(x + 80); a6 = Vector512.Load(x + 96); a7 = Vector512.Load(x + 112);
        }
        else
        {
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = Vector512<float>.Zero;
        }
        for (int r = 0; r < rows; r++)
        {
            float* row = w + (nint)r * ldw;
            var yr = Vector512.Create(y[r]);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(row), yr, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(row + 16), yr, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(row + 32), yr, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(row + 48), yr, a3);
            a4 = Vector512.FusedMultiplyAdd(Vector512.Load(row + 64), yr, a4);
            a5 = Vector512.FusedMultiplyAdd(Vector512.Load(row + 80), yr, a5);
            a6 = Vector512.FusedMultiplyAdd(Vector512.Load(row + 96), yr, a6);
            a7 = Vector512.FusedMultiplyAdd(Vector512.Load(row + 112), yr, a7);
        }
        a0.Store(x); a1.Store(x + 16); a2.Store(x + 32); a3.Store(x + 48);
        a4.Store(x + 64); a5.Store(x + 80); a6.Store(x + 96); a7.Store(x + 112);
    }
}
