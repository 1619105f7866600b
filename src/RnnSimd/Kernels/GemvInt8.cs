using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using X86 = System.Runtime.Intrinsics.X86;

namespace RnnSimd.Kernels;

/// <summary>
/// The instruction sequences that compute an int8 product's int32 dot products. All give the exact integer, so every
/// path (and every kernel set) gives bitwise the same y.
/// </summary>
internal enum Int8Path
{
    /// <summary>Scalar int32 multiply-adds.</summary>
    Scalar = 0,
    /// <summary>AVX2: int8 sign-extended to int16 (vpmovsxbw), vpmaddwd into int32.</summary>
    Avx2Madd = 1,
    /// <summary>AVX-512BW: the same widening at 512 bits.</summary>
    Avx512BwMadd = 2,
    /// <summary>AVX-VNNI vpdpbusd at 256 bits (u8 activations q + 128, the 128 * sum q_w correction subtracted).</summary>
    AvxVnni = 3,
}

/// <summary>The scalar quantization rule shared by weights (at packing) and activations (the scalar twin of every quantizer).</summary>
internal static class Int8Quantizer
{
    /// <summary>s = max / 127 for a finite max |v| &gt;= 0 (0 when the max is 0 or the division underflows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ScaleFor(float maxAbs) => maxAbs / 127f;

    /// <summary>q = clamp(round_half_even(v / s), -127, 127); 0 when s is 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Quantize(float v, float s) => s == 0f ? 0 : (int)Math.Clamp(MathF.Round(v / s), -127f, 127f);
}

/// <summary>
/// Batch-1 int8 products y (+)= W x for <see cref="PackedInt8GemvMatrix"/> W and a quantized x (<see cref="Int8Activations"/>),
/// and the activation quantizer.
/// </summary>
/// <remarks>
/// Arithmetic contract, identical for every path and kernel set (so results are bitwise identical across them):
/// acc[r, g] = sum over the columns c of segment g of q_w[r, c] * q_x[c], exact in int32 (the vpdpbusd paths compute
/// sum (q_x + 128) q_w and subtract 128 * sum q_w, also exact: see <see cref="PackedInt8GemvMatrix.MaxSegmentColumns"/>);
/// then per row, in float32: v = +0; for g = 0, 1, ...: v = fma((float)acc[r, g], s_w[r, g] * s_x[g], v) (the int32 to
/// float conversion rounds to nearest even; s_w * s_x is one float multiply); with a bias v = v + b[r]; finally
/// y[r] = y[r] + v when accumulating, else y[r] = v.
/// </remarks>
internal static unsafe class GemvInt8
{
    /// <summary>The path a kernel set uses: the widest integer dot product the process supports within the set's width.</summary>
    public static Int8Path For(KernelIsa isa) => isa switch
    {
        // .NET 10 exposes vpdpbusd only through AvxVnni (VEX, 256 bits): AVX512_VNNI's 512-bit form has no API
        // (only Avx10v1 / AvxVnniInt8.V512, which Zen 4/5 lack). 256-bit vpdpbusd still beats 512-bit widening
        // (one instruction per 32 products against three): on Zen 5 at S1 3.1-3.8 us against 3.9-7.1 us
        // (QuantizedInt8PathBenchmarks, perf-results/amd-epyc-f26m2).
        KernelIsa.Avx512 => X86.AvxVnni.IsSupported ? Int8Path.AvxVnni : Avx512BW.IsSupported ? Int8Path.Avx512BwMadd : Int8Path.Avx2Madd,
        KernelIsa.Avx2 => X86.AvxVnni.IsSupported ? Int8Path.AvxVnni : Int8Path.Avx2Madd,
        _ => Int8Path.Scalar,
    };

    /// <summary>Whether this process can run a path.</summary>
    public static bool IsSupported(Int8Path path) => path switch
    {
        Int8Path.Avx2Madd => Vector256.IsHardwareAccelerated && X86.Avx2.IsSupported,
        Int8Path.Avx512BwMadd => Vector512.IsHardwareAccelerated && Avx512BW.IsSupported,
        Int8Path.AvxVnni => Vector256.IsHardwareAccelerated && X86.AvxVnni.IsSupported,
        _ => true,
    };

    /// <summary>Every path this process can run (tests run them all, whatever the kernel sets choose).</summary>
    public static IReadOnlyList<Int8Path> Supported { get; } =
        Enum.GetValues<Int8Path>().Where(IsSupported).ToArray();

    public static string Describe(Int8Path path) => path switch
    {
        Int8Path.AvxVnni => "AVX-VNNI vpdpbusd (256-bit)",
        Int8Path.Avx512BwMadd => "AVX-512BW vpmovsxbw + vpmaddwd (512-bit)",
        Int8Path.Avx2Madd => "AVX2 vpmovsxbw + vpmaddwd (256-bit)",
        _ => "scalar int32 multiply-add",
    };

    // ---------------------------------------------------------------- activation quantizer

    /// <summary>Quantizes the floats at <paramref name="x"/> (as many as segment <paramref name="g"/> is wide) into that segment of <paramref name="dst"/> (see <see cref="Int8Activations"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeSegment(KernelIsa isa, float* x, int g, Int8Activations dst)
    {
        var layout = dst.Layout;
        int n = layout.Width(g);
        byte* u8 = dst.U8 + layout.PaddedStart(g);
        short* q16 = dst.Q16 + layout.PaddedStart(g);
        int maxBits = MaxAbsBits(isa, x, n);
        float s;
        if (maxBits >= 0x7F80_0000) s = float.NaN; // NaN or infinity somewhere in the segment
        else s = Int8Quantizer.ScaleFor(BitConverter.Int32BitsToSingle(maxBits));
        if (!(s > 0f))
        {
            new Span<byte>(u8, n).Fill(128);
            new Span<short>(q16, n).Clear();
            dst.Scales[g] = s;
            return;
        }
        dst.Scales[g] = s;
        int i = 0;
        if (isa == KernelIsa.Avx512)
        {
            var sv = Vector512.Create(s);
            for (; i + 16 <= n; i += 16)
            {
                var r = Vector512.Round(Vector512.Load(x + i) / sv);
                var q = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(r, Vector512.Create(-127f)), Vector512.Create(127f)));
                StoreQuantized(Vector256.Narrow(q.GetLower(), q.GetUpper()), u8 + i, q16 + i);
            }
        }
        if (isa >= KernelIsa.Avx2)
        {
            var sv = Vector256.Create(s);
            for (; i + 16 <= n; i += 16)
            {
                var lo = Vector256.Round(Vector256.Load(x + i) / sv);
                var hi = Vector256.Round(Vector256.Load(x + i + 8) / sv);
                var ql = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(lo, Vector256.Create(-127f)), Vector256.Create(127f)));
                var qh = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(hi, Vector256.Create(-127f)), Vector256.Create(127f)));
                StoreQuantized(Vector256.Narrow(ql, qh), u8 + i, q16 + i);
            }
        }
        for (; i < n; i++)
        {
            int q = Int8Quantizer.Quantize(x[i], s);
            q16[i] = (short)q;
            u8[i] = (byte)(q + 128);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreQuantized(Vector256<short> q, byte* u8, short* q16)
    {
        q.Store(q16);
        (Vector128.Narrow(q.GetLower(), q.GetUpper()).AsByte() ^ Vector128.Create((byte)0x80)).Store(u8); // q + 128 for q in [-127, 127]
    }

    /// <summary>max |x_i| as the bit pattern of a non-negative float: integer order is float order there, NaN above infinity, so any order of evaluation gives the same answer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int MaxAbsBits(KernelIsa isa, float* x, int n)
    {
        int i = 0, m = 0;
        int* bits = (int*)x;
        if (isa == KernelIsa.Avx512 && n >= 16)
        {
            var acc = Vector512<int>.Zero;
            for (; i + 16 <= n; i += 16) acc = Vector512.Max(acc, Vector512.Load(bits + i) & Vector512.Create(0x7FFF_FFFF));
            var h = Vector256.Max(acc.GetLower(), acc.GetUpper());
            m = Math.Max(m, MaxLanes(Vector128.Max(h.GetLower(), h.GetUpper())));
        }
        if (isa >= KernelIsa.Avx2 && n - i >= 8)
        {
            var acc = Vector256<int>.Zero;
            for (; i + 8 <= n; i += 8) acc = Vector256.Max(acc, Vector256.Load(bits + i) & Vector256.Create(0x7FFF_FFFF));
            m = Math.Max(m, MaxLanes(Vector128.Max(acc.GetLower(), acc.GetUpper())));
        }
        for (; i < n; i++) m = Math.Max(m, bits[i] & 0x7FFF_FFFF);
        return m;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int MaxLanes(Vector128<int> v) =>
        Math.Max(Math.Max(v.GetElement(0), v.GetElement(1)), Math.Max(v.GetElement(2), v.GetElement(3)));

    // ---------------------------------------------------------------- products

    /// <summary>
    /// Rows [16 * <paramref name="tile0"/>, 16 * (tile0 + tiles)) of y (+)= W x (+ bias); y and bias (null: none) are the
    /// whole vectors. Each row is computed exactly as in a whole product, so a product split into tile ranges across
    /// threads is bitwise the whole product.
    /// </summary>
    public static void PackedTiles(Int8Path path, PackedInt8GemvMatrix w, Int8Activations x, float* bias, int tile0, int tiles,
        float* y, bool accumulate)
    {
        tiles = Math.Min(tiles, w.Tiles - tile0);
        int rows = Math.Min(w.Rows - tile0 * 16, tiles * 16);
        if (rows <= 0) return;
        y += tile0 * 16;
        if (bias != null) bias += tile0 * 16;
        switch (path)
        {
            case Int8Path.AvxVnni: Vnni256(w, x, tile0, tiles, rows, bias, y, accumulate); break;
            case Int8Path.Avx512BwMadd: Madd512(w, x, tile0, tiles, rows, bias, y, accumulate); break;
            case Int8Path.Avx2Madd: Madd256(w, x, tile0, tiles, rows, bias, y, accumulate); break;
            default: Scalar(w, x, tile0, rows, bias, y, accumulate); break;
        }
    }

    /// <summary>
    /// vpdpbusd: each int32 lane (one row) += four u8 * s8 products (4 consecutive k). Two tiles at a time and the
    /// k-groups split by parity: 8 independent accumulators, enough to cover the instruction's latency at two per cycle.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Vnni256(PackedInt8GemvMatrix w, Int8Activations x, int tile0, int tiles, int rows, float* bias, float* y, bool accumulate)
    {
        var layout = w.Layout;
        nint tileStride = (nint)16 * layout.PaddedCols;
        byte* u8 = x.U8;
        int t = 0;
        for (; t + 2 <= tiles; t += 2)
        {
            sbyte* a = w.Pointer + (tile0 + t) * tileStride, b = a + tileStride;
            Vector256<float> fa0 = default, fa1 = default, fb0 = default, fb1 = default;
            for (int g = 0; g < layout.Count; g++)
            {
                int k = layout.PaddedStart(g), end = k + layout.PaddedWidth(g);
                Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
                for (; k + 8 <= end; k += 8)
                {
                    var x0 = Vector256.Create(*(int*)(u8 + k)).AsByte();
                    var x1 = Vector256.Create(*(int*)(u8 + k + 4)).AsByte();
                    sbyte* pa = a + (nint)k * 16, pb = b + (nint)k * 16; // the 64-byte block of group k / 4
                    a0 = X86.AvxVnni.MultiplyWideningAndAdd(a0, x0, Vector256.Load(pa));
                    a1 = X86.AvxVnni.MultiplyWideningAndAdd(a1, x0, Vector256.Load(pa + 32));
                    b0 = X86.AvxVnni.MultiplyWideningAndAdd(b0, x0, Vector256.Load(pb));
                    b1 = X86.AvxVnni.MultiplyWideningAndAdd(b1, x0, Vector256.Load(pb + 32));
                    a2 = X86.AvxVnni.MultiplyWideningAndAdd(a2, x1, Vector256.Load(pa + 64));
                    a3 = X86.AvxVnni.MultiplyWideningAndAdd(a3, x1, Vector256.Load(pa + 96));
                    b2 = X86.AvxVnni.MultiplyWideningAndAdd(b2, x1, Vector256.Load(pb + 64));
                    b3 = X86.AvxVnni.MultiplyWideningAndAdd(b3, x1, Vector256.Load(pb + 96));
                }
                if (k < end)
                {
                    var x0 = Vector256.Create(*(int*)(u8 + k)).AsByte();
                    sbyte* pa = a + (nint)k * 16, pb = b + (nint)k * 16;
                    a0 = X86.AvxVnni.MultiplyWideningAndAdd(a0, x0, Vector256.Load(pa));
                    a1 = X86.AvxVnni.MultiplyWideningAndAdd(a1, x0, Vector256.Load(pa + 32));
                    b0 = X86.AvxVnni.MultiplyWideningAndAdd(b0, x0, Vector256.Load(pb));
                    b1 = X86.AvxVnni.MultiplyWideningAndAdd(b1, x0, Vector256.Load(pb + 32));
                }
                int* corr = w.Corrections + (nint)g * w.PaddedRows + (tile0 + t) * 16;
                float* sw = w.Scales + (nint)g * w.PaddedRows + (tile0 + t) * 16;
                var sx = Vector256.Create(x.Scales[g]);
                Fold256(a0 + a2 - Vector256.Load(corr), sw, sx, ref fa0);
                Fold256(a1 + a3 - Vector256.Load(corr + 8), sw + 8, sx, ref fa1);
                Fold256(b0 + b2 - Vector256.Load(corr + 16), sw + 16, sx, ref fb0);
                Fold256(b1 + b3 - Vector256.Load(corr + 24), sw + 24, sx, ref fb1);
            }
            Store256(fa0, fa1, bias, y, t * 16, rows, accumulate);
            Store256(fb0, fb1, bias, y, t * 16 + 16, rows, accumulate);
        }
        if (t < tiles)
        {
            sbyte* a = w.Pointer + (tile0 + t) * tileStride;
            Vector256<float> fa0 = default, fa1 = default;
            for (int g = 0; g < layout.Count; g++)
            {
                int k = layout.PaddedStart(g), end = k + layout.PaddedWidth(g);
                Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
                for (; k + 8 <= end; k += 8)
                {
                    var x0 = Vector256.Create(*(int*)(u8 + k)).AsByte();
                    var x1 = Vector256.Create(*(int*)(u8 + k + 4)).AsByte();
                    sbyte* pa = a + (nint)k * 16;
                    a0 = X86.AvxVnni.MultiplyWideningAndAdd(a0, x0, Vector256.Load(pa));
                    a1 = X86.AvxVnni.MultiplyWideningAndAdd(a1, x0, Vector256.Load(pa + 32));
                    a2 = X86.AvxVnni.MultiplyWideningAndAdd(a2, x1, Vector256.Load(pa + 64));
                    a3 = X86.AvxVnni.MultiplyWideningAndAdd(a3, x1, Vector256.Load(pa + 96));
                }
                if (k < end)
                {
                    var x0 = Vector256.Create(*(int*)(u8 + k)).AsByte();
                    sbyte* pa = a + (nint)k * 16;
                    a0 = X86.AvxVnni.MultiplyWideningAndAdd(a0, x0, Vector256.Load(pa));
                    a1 = X86.AvxVnni.MultiplyWideningAndAdd(a1, x0, Vector256.Load(pa + 32));
                }
                int* corr = w.Corrections + (nint)g * w.PaddedRows + (tile0 + t) * 16;
                float* sw = w.Scales + (nint)g * w.PaddedRows + (tile0 + t) * 16;
                var sx = Vector256.Create(x.Scales[g]);
                Fold256(a0 + a2 - Vector256.Load(corr), sw, sx, ref fa0);
                Fold256(a1 + a3 - Vector256.Load(corr + 8), sw + 8, sx, ref fa1);
            }
            Store256(fa0, fa1, bias, y, t * 16, rows, accumulate);
        }
    }

    /// <summary>
    /// AVX2 without VNNI: 4 rows x 4 k of int8 sign-extended to 16 int16 (vpmovsxbw), times the 4 activations as int16
    /// (vpmaddwd): each int32 lane is one row's pair sum q_w[k] q_x[k] + q_w[k+1] q_x[k+1], at most 2 * 127 * 127 in size,
    /// so it is exact and never saturates (vpmaddubsw, u8 x s8 into int16, would saturate at 2 * 255 * 127 > 32767).
    /// The two pair sums of a row are added by vphaddd once per segment.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Madd256(PackedInt8GemvMatrix w, Int8Activations x, int tile0, int tiles, int rows, float* bias, float* y, bool accumulate)
    {
        var layout = w.Layout;
        nint tileStride = (nint)16 * layout.PaddedCols;
        short* q16 = x.Q16;
        for (int t = 0; t < tiles; t++)
        {
            sbyte* a = w.Pointer + (tile0 + t) * tileStride;
            Vector256<float> f0 = default, f1 = default;
            for (int g = 0; g < layout.Count; g++)
            {
                int k = layout.PaddedStart(g), end = k + layout.PaddedWidth(g);
                Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default; // rows 0-3, 4-7, 8-11, 12-15; lanes (row, pair)
                for (; k < end; k += 4)
                {
                    var xv = Vector256.Create(*(long*)(q16 + k)).AsInt16(); // q_x[k..k+3], repeated for 4 rows
                    sbyte* p = a + (nint)k * 16;
                    a0 += X86.Avx2.MultiplyAddAdjacent(X86.Avx2.ConvertToVector256Int16(p), xv);
                    a1 += X86.Avx2.MultiplyAddAdjacent(X86.Avx2.ConvertToVector256Int16(p + 16), xv);
                    a2 += X86.Avx2.MultiplyAddAdjacent(X86.Avx2.ConvertToVector256Int16(p + 32), xv);
                    a3 += X86.Avx2.MultiplyAddAdjacent(X86.Avx2.ConvertToVector256Int16(p + 48), xv);
                }
                float* sw = w.Scales + (nint)g * w.PaddedRows + (tile0 + t) * 16;
                var sx = Vector256.Create(x.Scales[g]);
                Fold256(PairSums(a0, a1), sw, sx, ref f0);
                Fold256(PairSums(a2, a3), sw + 8, sx, ref f1);
            }
            Store256(f0, f1, bias, y, t * 16, rows, accumulate);
        }
    }

    /// <summary>Rows r..r+7 from lanes (row, pair) of rows r..r+3 and r+4..r+7: vphaddd gives rows 0 1 4 5 | 2 3 6 7, vpermq puts them in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> PairSums(Vector256<int> lo, Vector256<int> hi) =>
        X86.Avx2.Permute4x64(X86.Avx2.HorizontalAdd(lo, hi).AsInt64(), 0b11_01_10_00).AsInt32();

    /// <summary>The widening path at 512 bits: 8 rows x 4 k per vpmovsxbw + vpmaddwd; the pair sums added by two vpermt2d.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Madd512(PackedInt8GemvMatrix w, Int8Activations x, int tile0, int tiles, int rows, float* bias, float* y, bool accumulate)
    {
        var layout = w.Layout;
        nint tileStride = (nint)16 * layout.PaddedCols;
        short* q16 = x.Q16;
        float* tmp = stackalloc float[16];
        var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var odd = even + Vector512<int>.One;
        for (int t = 0; t < tiles; t++)
        {
            sbyte* a = w.Pointer + (tile0 + t) * tileStride;
            var f = Vector512<float>.Zero;
            for (int g = 0; g < layout.Count; g++)
            {
                int k = layout.PaddedStart(g), end = k + layout.PaddedWidth(g);
                Vector512<int> a0 = default, a1 = default; // rows 0-7, 8-15; lanes (row, pair)
                for (; k < end; k += 4)
                {
                    var xv = Vector512.Create(*(long*)(q16 + k)).AsInt16();
                    sbyte* p = a + (nint)k * 16;
                    a0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(p)), xv);
                    a1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load(p + 32)), xv);
                }
                var acc = Avx512F.PermuteVar16x32x2(a0, even, a1) + Avx512F.PermuteVar16x32x2(a0, odd, a1);
                float* sw = w.Scales + (nint)g * w.PaddedRows + (tile0 + t) * 16;
                f = Vector512.FusedMultiplyAdd(Vector512.ConvertToSingle(acc), Vector512.Load(sw) * Vector512.Create(x.Scales[g]), f);
            }
            int valid = rows - t * 16;
            if (valid >= 16)
            {
                if (bias != null) f += Vector512.Load(bias + t * 16);
                if (accumulate) f = Vector512.Load(y + t * 16) + f;
                f.Store(y + t * 16);
            }
            else
            {
                f.Store(tmp);
                Finish(tmp, bias, y, t * 16, valid, accumulate);
            }
        }
    }

    /// <summary>The scalar twin: the same integers, the same float operations in the same order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scalar(PackedInt8GemvMatrix w, Int8Activations x, int tile0, int rows, float* bias, float* y, bool accumulate)
    {
        var layout = w.Layout;
        nint tileStride = (nint)16 * layout.PaddedCols;
        short* q16 = x.Q16;
        for (int r = 0; r < rows; r++)
        {
            int row = tile0 * 16 + r;
            sbyte* p = w.Pointer + (nint)(row / 16) * tileStride + (row % 16) * 4;
            float v = 0f;
            for (int g = 0; g < layout.Count; g++)
            {
                int acc = 0;
                for (int k = layout.PaddedStart(g), end = k + layout.PaddedWidth(g); k < end; k += 4)
                {
                    sbyte* blk = p + (nint)k * 16;
                    acc += blk[0] * q16[k] + blk[1] * q16[k + 1] + blk[2] * q16[k + 2] + blk[3] * q16[k + 3];
                }
                v = MathF.FusedMultiplyAdd(acc, w.Scales[(nint)g * w.PaddedRows + row] * x.Scales[g], v);
            }
            if (bias != null) v += bias[r];
            y[r] = accumulate ? y[r] + v : v;
        }
    }

    /// <summary>f = fma((float)acc, s_w * s_x, f) for 8 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fold256(Vector256<int> acc, float* sw, Vector256<float> sx, ref Vector256<float> f) =>
        f = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(acc), Vector256.Load(sw) * sx, f);

    /// <summary>Rows [r0, r0 + 16) of y from the two halves of a tile: v (+ bias), then y + v or v.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(Vector256<float> lo, Vector256<float> hi, float* bias, float* y, int r0, int rows, bool accumulate)
    {
        int valid = rows - r0;
        if (valid >= 16)
        {
            if (bias != null) { lo += Vector256.Load(bias + r0); hi += Vector256.Load(bias + r0 + 8); }
            if (accumulate) { lo = Vector256.Load(y + r0) + lo; hi = Vector256.Load(y + r0 + 8) + hi; }
            lo.Store(y + r0);
            hi.Store(y + r0 + 8);
        }
        else
        {
            StorePartial(lo, hi, bias, y, r0, valid, accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void StorePartial(Vector256<float> lo, Vector256<float> hi, float* bias, float* y, int r0, int valid, bool accumulate)
    {
        float* tmp = stackalloc float[16];
        lo.Store(tmp);
        hi.Store(tmp + 8);
        Finish(tmp, bias, y, r0, valid, accumulate);
    }

    /// <summary>The last, partial tile: the same additions element by element (reads only the valid rows of y and bias).</summary>
    private static void Finish(float* v, float* bias, float* y, int r0, int valid, bool accumulate)
    {
        for (int i = 0; i < valid; i++)
        {
            float s = v[i];
            if (bias != null) s += bias[r0 + i];
            y[r0 + i] = accumulate ? y[r0 + i] + s : s;
        }
    }
}
