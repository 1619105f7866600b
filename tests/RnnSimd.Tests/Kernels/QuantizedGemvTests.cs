using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnSimd.Kernels;
using RnnSimd.Tests.Reference;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Kernels;

/// <summary>
/// int8 and bf16 batch-1 products against the naive oracle (<see cref="NaiveQuantized"/>) on the dequantized operands, at
/// every supported kernel set and int8 instruction path. The quantization error itself is not tested here (it is the
/// model's, not the kernel's); its bound |w - q s| &lt;= s / 2 is.
/// </summary>
[Trait("Category", "Kernels")]
public class QuantizedGemvTests
{
    /// <summary>The sizes the issue asks for: one and around every tile and vector boundary.</summary>
    private static readonly int[] Sizes = [1, 15, 16, 17, 31, 33, 63, 64, 65, 255, 256, 257];

    private static Gen<int> Size => Gen.Frequency((3, Gen.Elements(Sizes)), (1, Gen.Choose(1, 300)));

    public sealed record Case(int Rows, int Cols, int[] Bounds, bool Bias, bool Accumulate, int Seed)
    {
        public int Segments => Bounds.Length - 1;
        public override string ToString() =>
            $"Case {{ Rows = {Rows}, Cols = {Cols}, Bounds = [{string.Join(", ", Bounds)}], Bias = {Bias}, Accumulate = {Accumulate}, Seed = {Seed} }}";
    }

    /// <summary>One to three segments; inner bounds anywhere in [0, cols], sometimes empty segments, often a size from the list (as I and H would be).</summary>
    private static Gen<int[]> BoundsFor(int cols) =>
        from n in Gen.Elements(1, 2, 2, 3)
        from inner in Gen.Frequency((2, Gen.Elements(Sizes.Where(s => s <= cols).DefaultIfEmpty(cols).ToArray())), (1, Gen.Choose(0, cols))).ArrayOf(n - 1)
        select new[] { 0 }.Concat(inner.OrderBy(v => v)).Append(cols).ToArray();

    private static readonly Gen<Case> Cases =
        from r in Size
        from c in Size
        from bounds in BoundsFor(c)
        from bias in ArbMap.Default.GeneratorFor<bool>()
        from acc in ArbMap.Default.GeneratorFor<bool>()
        from seed in Seed
        select new Case(r, c, bounds, bias, acc, seed);

    /// <summary>Weights with row magnitudes over four decades, a few all-zero rows and a few rows zero in one segment only.</summary>
    private static float[] Weights(int seed, int rows, int cols, int[] bounds)
    {
        var w = Data(seed, rows * cols);
        var rng = new Random(seed ^ 0x5EED);
        for (int r = 0; r < rows; r++)
        {
            int kind = rng.Next(20);
            float scale = (float)Math.Pow(10, rng.NextDouble() * 4 - 3);
            for (int c = 0; c < cols; c++) w[r * cols + c] = kind == 0 ? 0f : w[r * cols + c] * scale;
            if (kind == 1 && bounds.Length > 2) w.AsSpan(r * cols + bounds[1], bounds[2] - bounds[1]).Clear();
        }
        return w;
    }

    /// <summary>An activation vector whose segments have different ranges (x up to 3, h in (-1, 1)).</summary>
    private static float[] Activations(int seed, int cols, int[] bounds)
    {
        var x = Data(seed, cols);
        for (int g = 0; g + 1 < bounds.Length; g++)
            for (int c = bounds[g]; c < bounds[g + 1]; c++) x[c] *= g == 0 ? 3f : 1f;
        return x;
    }

    private static IEnumerable<(string Name, Action<PackedInt8GemvMatrix, Int8Activations, float[], float[]?, bool> Run)> Int8Runners()
    {
        foreach (var set in Sets)
            yield return ($"set {set}", (w, q, y, b, acc) => set.Gemv(w, q, b, y, acc));
        foreach (var path in GemvInt8.Supported)
            yield return ($"path {path}", (w, q, y, b, acc) => RunPath(path, w, q, b, y, acc, 0, (w.Rows + 15) / 16));
    }

    private static unsafe void RunPath(Int8Path path, PackedInt8GemvMatrix w, Int8Activations q, float[]? bias, float[] y, bool accumulate, int tile0, int tiles)
    {
        fixed (float* pb = bias)
        fixed (float* py = y)
            GemvInt8.PackedTiles(path, w, q, pb, tile0, tiles, py, accumulate);
    }

    // ------------------------------------------------------------------ int8 quantization

    [Property(MaxTest = 60)]
    public Property Int8_weights_are_quantized_per_row_and_segment_as_specified() => Check(Cases, g =>
    {
        float[] w = Weights(g.Seed, g.Rows, g.Cols, g.Bounds);
        var m = new PackedInt8GemvMatrix(g.Rows, g.Cols, w, g.Cols, g.Bounds);
        var (q, s) = NaiveQuantized.QuantizeMatrix(g.Rows, g.Cols, w, g.Bounds);
        Assert.Equal(g.Segments, m.SegmentCount);
        for (int r = 0; r < g.Rows; r++)
        {
            for (int seg = 0; seg < g.Segments; seg++)
            {
                float sc = s[r * g.Segments + seg];
                Assert.Equal(BitConverter.SingleToInt32Bits(sc), BitConverter.SingleToInt32Bits(m.Scale(r, seg)));
                for (int c = g.Bounds[seg]; c < g.Bounds[seg + 1]; c++)
                {
                    float wv = w[r * g.Cols + c];
                    int qv = m.Quantized(r, c);
                    if (qv != q[r * g.Cols + c])
                        Assert.Fail($"{g}: q[{r}, {c}] = {qv}, expected {q[r * g.Cols + c]} (w = {wv:R}, s = {sc:R})");
                    // round to nearest: half a step, plus the float division's rounding (|w / s| <= 128, so at most 128 u steps)
                    Assert.True(Math.Abs(wv - qv * (double)sc) <= sc * (0.5 + 128 * U), $"{g}: |w - q s| = {Math.Abs(wv - qv * (double)sc) / sc:R} s at [{r}, {c}]");
                }
            }
        }
    });

    [Fact]
    public void Int8_rounding_is_half_to_even_and_zero_rows_give_zero()
    {
        // max |w| = 127, so s = 1 exactly and w / s is w: the ties are visible.
        float[] w = [0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -127f, 3.49999976f, 0f];
        var m = new PackedInt8GemvMatrix(2, w.Length, [.. w, .. new float[w.Length]], w.Length);
        int[] expected = [0, 2, 2, 0, -2, -2, 126, -127, 3, 0];
        Assert.Equal(1f, m.Scale(0, 0));
        for (int c = 0; c < w.Length; c++) Assert.Equal(expected[c], (int)m.Quantized(0, c));
        Assert.Equal(0f, m.Scale(1, 0));
        for (int c = 0; c < w.Length; c++) Assert.Equal(0, (int)m.Quantized(1, c));

        foreach (var set in Sets)
        {
            // the same ties through the activation quantizer, in vector lanes (first 16) and in the scalar tail
            float[] x = [.. w, .. w, .. w];
            var a = new Int8Activations(x.Length);
            set.QuantizeActivations(x, a);
            Assert.Equal(1f, a.Scale(0));
            for (int c = 0; c < x.Length; c++) Assert.Equal(expected[c % w.Length], (int)a.Quantized(c));

            // a zero row times anything, and a zero x segment: +0 (then the bias)
            var y = new float[2];
            set.Gemv(m, Quantize(set, m, x.AsSpan(0, w.Length)), [0f, 2f], y);
            Assert.Equal(2f, y[1]);
        }
    }

    private static Int8Activations Quantize(KernelSet set, PackedInt8GemvMatrix m, ReadOnlySpan<float> x)
    {
        var a = new Int8Activations(m);
        set.QuantizeActivations(x, a);
        return a;
    }

    [Fact]
    public void Int8_subnormal_scales_underflow_to_zero_or_clamp()
    {
        float e = float.Epsilon;
        // 3 eps / 127 underflows to 0: the row quantizes to 0. 190 eps / 127 rounds to 1 eps: 190 eps / s = 190 clamps to 127.
        float[] w = [3 * e, -2 * e, e, 0, 190 * e, -190 * e, 64 * e, 0];
        var m = new PackedInt8GemvMatrix(2, 4, w, 4);
        Assert.Equal(0f, m.Scale(0, 0));
        for (int c = 0; c < 4; c++) Assert.Equal(0, (int)m.Quantized(0, c));
        Assert.Equal(e, m.Scale(1, 0));
        Assert.Equal(new[] { 127, -127, 64, 0 }, Enumerable.Range(0, 4).Select(c => (int)m.Quantized(1, c)));
        foreach (var set in Sets)
        {
            float[] x = [.. Enumerable.Repeat(w.AsSpan(4, 4).ToArray(), 5).SelectMany(v => v)];
            var a = new Int8Activations(x.Length);
            set.QuantizeActivations(x, a);
            Assert.Equal(e, a.Scale(0));
            for (int c = 0; c < x.Length; c++) Assert.Equal(new[] { 127, -127, 64, 0 }[c % 4], (int)a.Quantized(c));
        }
    }

    [Fact]
    public void Int8_non_finite_weights_are_refused_with_row_and_column_before_allocating()
    {
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            const int rows = 2048, cols = 2048; // 4 MiB of int8 if it were packed
            var w = new float[rows * cols];
            w[(rows - 1) * cols + 1234] = bad;
            long before = GC.GetAllocatedBytesForCurrentThread();
            var ex = Assert.Throws<ArgumentException>(() => new PackedInt8GemvMatrix(rows, cols, w, cols, [0, 1000, cols]));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Contains($"row {rows - 1}", ex.Message);
            Assert.Contains("column 1234", ex.Message);
            Assert.Equal("w", ex.ParamName);
            Assert.True(allocated < 64 * 1024, $"allocated {allocated} bytes before refusing");

            // the two-matrix form names the matrix and the column in the whole [A | B]
            var a = new float[3 * 5];
            var b = new float[3 * 7];
            b[2 * 7 + 6] = bad;
            ex = Assert.Throws<ArgumentException>(() => new PackedInt8GemvMatrix(3, a, 5, 5, b, 7, 7));
            Assert.Equal("b", ex.ParamName);
            Assert.Contains("row 2, column 11", ex.Message);
        }
    }

    [Fact]
    public void Int8_non_finite_activations_make_every_output_NaN()
    {
        var w = Data(3, 20 * 40);
        var m = new PackedInt8GemvMatrix(20, 40, w, 40, [0, 8, 40]);
        foreach (var set in Sets)
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        foreach (int at in new[] { 3, 20, 39 })
        {
            var x = Data(4, 40);
            x[at] = bad;
            var a = Quantize(set, m, x);
            Assert.True(float.IsNaN(a.Scale(at < 8 ? 0 : 1)));
            Assert.False(float.IsNaN(a.Scale(at < 8 ? 1 : 0)));
            var y = new float[20];
            set.Gemv(m, a, [], y);
            Assert.All(y, v => Assert.True(float.IsNaN(v), $"{set}: {v} is not NaN"));
        }
    }

    // ------------------------------------------------------------------ int8 products

    /// <summary>
    /// Every set and path returns bitwise the stated epilogue applied to the exact integer dot products (computed here in
    /// long from the independently quantized operands), and that is within (segments + 4) u sum |terms| of the double
    /// product of the dequantized operands: one rounding each for (float)acc, s_w s_x, each fma, the bias and y additions.
    /// </summary>
    [Property(MaxTest = 80)]
    public Property Int8_product_is_the_exact_integer_math_then_the_stated_epilogue() => Check(Cases, g =>
    {
        float[] w = Weights(g.Seed, g.Rows, g.Cols, g.Bounds), x = Activations(g.Seed + 1, g.Cols, g.Bounds);
        float[] y0 = Data(g.Seed + 2, g.Rows), bias = Data(g.Seed + 3, g.Rows, 0.5f);
        var m = new PackedInt8GemvMatrix(g.Rows, g.Cols, w, g.Cols, g.Bounds);
        var (qw, sw) = NaiveQuantized.QuantizeMatrix(g.Rows, g.Cols, w, g.Bounds);
        var (qx, sx) = NaiveQuantized.QuantizeVector(x, g.Bounds);
        long[] acc = NaiveQuantized.IntegerDots(g.Rows, g.Cols, qw, qx, g.Bounds);
        float[]? b = g.Bias ? bias : null, yIn = g.Accumulate ? y0 : null;
        float[] contract = NaiveQuantized.Epilogue(g.Rows, g.Segments, acc, sw, sx, b, yIn);
        var (e, abs) = NaiveQuantized.Dequantized(g.Rows, g.Segments, acc, sw, sx, b, yIn);
        AssertClose($"contract {g}", contract, e, i => (g.Segments + 4) * U * abs[i] + 1e-37, 0);

        foreach (var set in Sets)
        {
            var a = Quantize(set, m, x);
            for (int c = 0; c < g.Cols; c++)
                if (a.Quantized(c) != qx[c]) Assert.Fail($"{set} {g}: q_x[{c}] = {a.Quantized(c)}, expected {qx[c]}");
            for (int seg = 0; seg < g.Segments; seg++) Assert.Equal(sx[seg], a.Scale(seg));
            foreach (var (name, run) in Int8Runners())
            {
                float[] y = (float[])y0.Clone();
                run(m, a, y, b, g.Accumulate);
                AssertBitwiseEqual($"{name} (x quantized by {set}) {g}", contract, y);
            }
        }
    });

    /// <summary>The two-matrix constructor ([W_ih | W_hh]) and per-segment quantization equal the one-matrix forms bitwise.</summary>
    [Property(MaxTest = 40)]
    public Property Int8_two_matrix_form_and_per_segment_quantization_match() => Check(
        from r in Size from i in Size from h in Size from seed in Seed select (r, i, h, seed), t =>
    {
        var (rows, inputs, hidden, seed) = t;
        int cols = inputs + hidden;
        float[] wih = Data(seed, rows * inputs), whh = Data(seed + 1, rows * hidden, 0.2f), x = Data(seed + 2, inputs, 3f), h = Data(seed + 3, hidden);
        var whole = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            wih.AsSpan(r * inputs, inputs).CopyTo(whole.AsSpan(r * cols));
            whh.AsSpan(r * hidden, hidden).CopyTo(whole.AsSpan(r * cols + inputs));
        }
        var one = new PackedInt8GemvMatrix(rows, cols, whole, cols, [0, inputs, cols]);
        var two = new PackedInt8GemvMatrix(rows, wih, inputs, inputs, whh, hidden, hidden);
        foreach (var set in Sets)
        {
            var a1 = Quantize(set, one, [.. x, .. h]);
            var a2 = new Int8Activations(two);
            set.QuantizeActivations(1, h, a2);
            set.QuantizeActivations(0, x, a2);
            float[] y1 = new float[rows], y2 = new float[rows];
            set.Gemv(one, a1, [], y1);
            set.Gemv(two, a2, [], y2);
            AssertBitwiseEqual($"{set} rows={rows} I={inputs} H={hidden}", y1, y2);
        }
    });

    /// <summary>Rows split into tile ranges (as threads split a step) give bitwise the whole product, for every path.</summary>
    [Property(MaxTest = 30)]
    public Property Int8_tile_ranges_give_the_whole_product() => Check(Cases, g =>
    {
        float[] w = Weights(g.Seed, g.Rows, g.Cols, g.Bounds), x = Activations(g.Seed + 1, g.Cols, g.Bounds);
        float[] y0 = Data(g.Seed + 2, g.Rows), bias = Data(g.Seed + 3, g.Rows);
        var m = new PackedInt8GemvMatrix(g.Rows, g.Cols, w, g.Cols, g.Bounds);
        var a = Quantize(Sets[0], m, x);
        int tiles = (g.Rows + 15) / 16;
        var rng = new Random(g.Seed);
        foreach (var path in GemvInt8.Supported)
        {
            float[] whole = (float[])y0.Clone(), split = (float[])y0.Clone();
            RunPath(path, m, a, g.Bias ? bias : null, whole, g.Accumulate, 0, tiles);
            for (int t0 = 0; t0 < tiles;)
            {
                int n = Math.Min(tiles - t0, rng.Next(1, 4));
                RunPath(path, m, a, g.Bias ? bias : null, split, g.Accumulate, t0, n);
                t0 += n;
            }
            AssertBitwiseEqual($"{path} {g}", whole, split);
        }
    });

    [Fact]
    public void Int8_arguments_are_checked()
    {
        var m = new PackedInt8GemvMatrix(4, 10, Data(1, 40), 10, [0, 3, 10]);
        var other = new Int8Activations(10, [0, 4, 10]);
        var set = Sets[0];
        Assert.Contains("segments", Assert.Throws<ArgumentException>(() => set.Gemv(m, other, [], new float[4])).Message);
        var a = new Int8Activations(m);
        Assert.Throws<ArgumentException>(() => set.Gemv(m, a, [], new float[5]));
        Assert.Throws<ArgumentException>(() => set.Gemv(m, a, new float[3], new float[4]));
        Assert.Throws<ArgumentException>(() => set.QuantizeActivations(new float[9], a));
        Assert.Throws<ArgumentException>(() => set.QuantizeActivations(1, new float[3], a));
        Assert.Throws<ArgumentException>(() => set.QuantizeActivations(2, new float[3], a));
        Assert.Throws<ArgumentException>(() => new PackedInt8GemvMatrix(4, 10, Data(1, 40), 10, [0, 11, 10]));
        Assert.Throws<ArgumentException>(() => new PackedInt8GemvMatrix(4, 10, Data(1, 40), 10, [1, 10]));
        Assert.Throws<ArgumentException>(() => new PackedInt8GemvMatrix(4, 10, Data(1, 39), 10));
        Assert.Throws<ArgumentException>(() => new PackedInt8GemvMatrix(1, 70_000, new float[70_000], 70_000));
        // empty shapes
        var empty = new PackedInt8GemvMatrix(0, 5, [], 5);
        set.Gemv(empty, new Int8Activations(empty), [], []);
        var noCols = new PackedInt8GemvMatrix(3, 0, [], 0);
        var y = new float[] { 7, 7, 7 };
        set.Gemv(noCols, new Int8Activations(noCols), [1f, 2f, 3f], y);
        Assert.Equal(new[] { 1f, 2f, 3f }, y);
    }

    /// <summary>Exported values (what a file stores) load back to a matrix whose products are bitwise the original's.</summary>
    [Property(MaxTest = 30)]
    public Property Exported_values_reload_to_bitwise_the_same_products() => Check(Cases, g =>
    {
        float[] w = Weights(g.Seed, g.Rows, g.Cols, g.Bounds), x = Activations(g.Seed + 1, g.Cols, g.Bounds), bias = Data(g.Seed + 2, g.Rows);
        var m = new PackedInt8GemvMatrix(g.Rows, g.Cols, w, g.Cols, g.Bounds);
        var q = new sbyte[g.Rows * g.Cols];
        var scales = new float[g.Rows * g.Segments];
        for (int r = 0; r < g.Rows; r++)
        {
            for (int c = 0; c < g.Cols; c++) q[r * g.Cols + c] = m.Quantized(r, c);
            for (int seg = 0; seg < g.Segments; seg++) scales[r * g.Segments + seg] = m.Scale(r, seg);
        }
        var back = PackedInt8GemvMatrix.FromQuantized(g.Rows, g.Cols, q, g.Cols, scales, g.Bounds);
        var p = new PackedBf16GemvMatrix(g.Rows, g.Cols, w, g.Cols);
        var bits = new ushort[g.Rows * g.Cols];
        for (int r = 0; r < g.Rows; r++)
            for (int c = 0; c < g.Cols; c++) bits[r * g.Cols + c] = p.Bf16(r, c);
        var pBack = PackedBf16GemvMatrix.FromBf16(g.Rows, g.Cols, bits, g.Cols);
        foreach (var set in Sets)
        {
            var a = Quantize(set, m, x);
            float[] y1 = new float[g.Rows], y2 = new float[g.Rows];
            set.Gemv(m, a, bias, y1);
            set.Gemv(back, a, bias, y2);
            AssertBitwiseEqual($"int8 {set} {g}", y1, y2);
            set.Gemv(p, x, y1);
            set.Gemv(pBack, x, y2);
            AssertBitwiseEqual($"bf16 {set} {g}", y1, y2);
        }
    });

    [Fact]
    public void FromQuantized_refuses_values_a_symmetric_quantizer_cannot_produce()
    {
        sbyte[] q = [1, 2, 3, 4, 5, 6];
        float[] s = [0.5f, 0.25f];
        Assert.Equal(2, PackedInt8GemvMatrix.FromQuantized(2, 3, q, 3, s).Rows);
        q[5] = -128;
        Assert.Contains("q[1, 2] = -128", Assert.Throws<ArgumentException>(() => PackedInt8GemvMatrix.FromQuantized(2, 3, q, 3, s)).Message);
        q[5] = 6;
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, -1f })
        {
            s[1] = bad;
            Assert.Contains("row 1, segment 0", Assert.Throws<ArgumentException>(() => PackedInt8GemvMatrix.FromQuantized(2, 3, q, 3, s)).Message);
        }
        s[1] = 1f;
        Assert.Throws<ArgumentException>(() => PackedInt8GemvMatrix.FromQuantized(2, 3, q, 3, s, [0, 1, 3])); // 2 scales, 4 needed
        Assert.Throws<ArgumentException>(() => PackedInt8GemvMatrix.FromQuantized(2, 3, q.AsSpan(0, 5), 3, s));
        Assert.Throws<ArgumentException>(() => PackedBf16GemvMatrix.FromBf16(2, 3, new ushort[5], 3));
    }

    // ------------------------------------------------------------------ bf16

    [Fact]
    public void Bf16_rounding_is_nearest_even_and_keeps_NaN()
    {
        (uint In, ushort Out)[] cases =
        [
            (0x3F80_0000, 0x3F80), (0x3F80_8000, 0x3F80), (0x3F81_8000, 0x3F82), (0x3F80_8001, 0x3F81), (0x3F80_7FFF, 0x3F80),
            (0xBF80_8000, 0xBF80), (0xBF81_8000, 0xBF82), (0x7F7F_FFFF, 0x7F80), (0x7F7F_7FFF, 0x7F7F), (0xFF7F_FFFF, 0xFF80),
            (0x7F80_0000, 0x7F80), (0xFF80_0000, 0xFF80), (0x0000_0001, 0x0000), (0x0000_8000, 0x0000), (0x0001_8000, 0x0002),
            (0x8000_0000, 0x8000),
        ];
        foreach (var (input, output) in cases)
            Assert.True(PackedBf16GemvMatrix.RoundToBf16(BitConverter.UInt32BitsToSingle(input)) == output, $"{input:X8} -> {PackedBf16GemvMatrix.RoundToBf16(BitConverter.UInt32BitsToSingle(input)):X4}, expected {output:X4}");
        foreach (uint nan in new[] { 0x7F80_0001u, 0x7FC0_0000u, 0xFF80_0001u, 0x7FFF_FFFFu })
            Assert.True(float.IsNaN(PackedBf16GemvMatrix.ToSingle(PackedBf16GemvMatrix.RoundToBf16(BitConverter.UInt32BitsToSingle(nan)))));
        // against the oracle that picks the nearer neighbour by distance, over random bit patterns
        var rng = new Random(11);
        for (int i = 0; i < 200_000; i++)
        {
            float f = BitConverter.Int32BitsToSingle(rng.Next() ^ (rng.Next(2) << 31));
            float mine = PackedBf16GemvMatrix.ToSingle(PackedBf16GemvMatrix.RoundToBf16(f)), spec = NaiveQuantized.RoundToBf16(f);
            if (!(float.IsNaN(mine) && float.IsNaN(spec)) && BitConverter.SingleToInt32Bits(mine) != BitConverter.SingleToInt32Bits(spec))
                Assert.Fail($"{f:R} ({BitConverter.SingleToInt32Bits(f):X8}): {mine:R}, expected {spec:R}");
        }
    }

    /// <summary>
    /// The bf16 product is bitwise the float32 packed product of the bf16-rounded weights (the stated contract), and
    /// within that product's bound of the double oracle on the rounded weights: four chains of about cols / 4 FMAs plus
    /// two adds, one more when accumulating: (cols + 5) u sum |w x| (+ |y0|), as for float32 weights.
    /// </summary>
    [Property(MaxTest = 80)]
    public Property Bf16_product_is_the_float32_product_of_the_rounded_weights() => Check(Cases, g =>
    {
        float[] w = Data(g.Seed, g.Rows * g.Cols), x = Data(g.Seed + 1, g.Cols), y0 = Data(g.Seed + 2, g.Rows);
        float[] rounded = w.Select(NaiveQuantized.RoundToBf16).ToArray();
        var (e, abs) = NaiveKernels.Gemv(g.Rows, g.Cols, rounded, g.Cols, x, g.Accumulate ? y0 : null);
        var packed = new PackedBf16GemvMatrix(g.Rows, g.Cols, w, g.Cols);
        var reference = new PackedGemvMatrix(g.Rows, g.Cols, rounded, g.Cols);
        float[]? first = null;
        foreach (var set in Sets)
        {
            float[] y = (float[])y0.Clone(), yf = (float[])y0.Clone();
            set.Gemv(packed, x, y, g.Accumulate);
            set.Gemv(reference, x, yf, g.Accumulate);
            AssertClose($"{set} {g}", y, e, i => (g.Cols + 5) * U * abs[i] + 1e-37, 0);
            AssertBitwiseEqual($"{set} vs float32 packed {g}", yf, y);
            if (first is null) first = y;
            else AssertBitwiseEqual($"{set} vs {Sets[0]} {g}", first, y);
        }
    });

    [Property(MaxTest = 30)]
    public Property Bf16_two_matrix_form_and_tile_ranges_match() => Check(Cases, g =>
    {
        int ia = g.Bounds.Length > 2 ? g.Bounds[1] : g.Cols / 2, ib = g.Cols - ia;
        float[] a = Data(g.Seed, g.Rows * ia), b = Data(g.Seed + 1, g.Rows * ib), x = Data(g.Seed + 2, g.Cols), y0 = Data(g.Seed + 3, g.Rows);
        var whole = new float[g.Rows * g.Cols];
        for (int r = 0; r < g.Rows; r++)
        {
            a.AsSpan(r * ia, ia).CopyTo(whole.AsSpan(r * g.Cols));
            b.AsSpan(r * ib, ib).CopyTo(whole.AsSpan(r * g.Cols + ia));
        }
        var one = new PackedBf16GemvMatrix(g.Rows, g.Cols, whole, g.Cols);
        var two = new PackedBf16GemvMatrix(g.Rows, a, ia, ia, b, ib, ib);
        int tiles = (g.Rows + 15) / 16;
        var rng = new Random(g.Seed);
        foreach (var set in Sets)
        {
            float[] y1 = (float[])y0.Clone(), y2 = (float[])y0.Clone();
            set.Gemv(one, x, y1, g.Accumulate);
            unsafe
            {
                fixed (float* px = x)
                fixed (float* py = y2)
                    for (int t0 = 0; t0 < tiles;)
                    {
                        int n = Math.Min(tiles - t0, rng.Next(1, 4));
                        GemvBf16.PackedTiles(set.Isa, two, t0, n, px, py, g.Accumulate);
                        t0 += n;
                    }
            }
            AssertBitwiseEqual($"{set} {g}", y1, y2);
        }
    });

    /// <summary>In the ISA-matrix child processes: the int8 paths the wide instructions need are gone with them, and every set's choice is runnable.</summary>
    [Fact]
    public void Int8_paths_follow_the_instruction_sets_the_runtime_allows()
    {
        var paths = GemvInt8.Supported;
        Assert.Contains(Int8Path.Scalar, paths);
        foreach (var set in KernelSet.Supported) Assert.Contains(set.Int8Path, paths);
        string? expected = Environment.GetEnvironmentVariable(IsaMatrix.ExpectVariable);
        if (expected is null) return;
        if (!expected.Contains("avx512")) Assert.DoesNotContain(Int8Path.Avx512BwMadd, paths);
        if (!expected.Contains("avx2")) Assert.Equal([Int8Path.Scalar], paths);
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVXVNNI") == "0")
        {
            Assert.DoesNotContain(Int8Path.AvxVnni, paths);
            Assert.Equal(Int8Path.Avx2Madd, KernelSet.Avx2.Int8Path);
        }
    }

    // ------------------------------------------------------------------ sweeps, allocation

    /// <summary>Every shape 1..40 x 1..40 at every set, operands at the end of a guarded buffer (over-reads fault).</summary>
    [Theory, MemberData(nameof(SmallSizeSweep.SetNames), MemberType = typeof(SmallSizeSweep))]
    public void Every_shape_1_to_40_with_guard_pages(string setName)
    {
        var set = KernelSet.Get(setName);
        using GuardedBuffer gx = new(64), gy = new(64), gb = new(64);
        for (int rows = 1; rows <= 40; rows++)
        for (int cols = 1; cols <= 40; cols++)
        {
            int[] bounds = [0, cols / 3, cols];
            float[] w = Data(rows * 41 + cols, rows * cols), x = Data(cols, cols), y0 = Data(rows + 1000, rows), bias = Data(rows + 2000, rows);
            Span<float> sx = gx.End(cols), sy = gy.End(rows), sb = gb.End(rows);
            x.CopyTo(sx); y0.CopyTo(sy); bias.CopyTo(sb);

            var m = new PackedInt8GemvMatrix(rows, cols, w, cols, bounds);
            var a = new Int8Activations(m);
            set.QuantizeActivations(sx, a);
            set.Gemv(m, a, sb, sy, accumulate: true);
            var (qw, sw) = NaiveQuantized.QuantizeMatrix(rows, cols, w, bounds);
            var (qx, sxs) = NaiveQuantized.QuantizeVector(x, bounds);
            var expected = NaiveQuantized.Epilogue(rows, 2, NaiveQuantized.IntegerDots(rows, cols, qw, qx, bounds), sw, sxs, bias, y0);
            AssertBitwiseEqual($"int8 {set} {rows}x{cols}", expected, sy);

            var p = new PackedBf16GemvMatrix(rows, cols, w, cols);
            y0.CopyTo(sy);
            set.Gemv(p, sx, sy, accumulate: true);
            var (e, abs) = NaiveKernels.Gemv(rows, cols, w.Select(NaiveQuantized.RoundToBf16).ToArray(), cols, x, y0);
            AssertClose($"bf16 {set} {rows}x{cols}", sy, e, i => (cols + 5) * U * abs[i] + 1e-38, 0);
            gx.AssertSentinelBefore(cols); gy.AssertSentinelBefore(rows); gb.AssertSentinelBefore(rows);
        }
    }

    [Fact]
    public void Products_and_quantization_allocate_nothing()
    {
        const int rows = 1024, inputs = 64, hidden = 256;
        float[] wih = Data(1, rows * inputs), whh = Data(2, rows * hidden), x = Data(3, inputs + hidden), b = Data(4, rows), y = new float[rows];
        var m8 = new PackedInt8GemvMatrix(rows, wih, inputs, inputs, whh, hidden, hidden);
        var a = new Int8Activations(m8);
        var m16 = new PackedBf16GemvMatrix(rows, wih, inputs, inputs, whh, hidden, hidden);
        foreach (var set in Sets)
        {
            var bytes = SteadyStateAllocations(() =>
            {
                set.QuantizeActivations(0, x.AsSpan(0, inputs), a);
                set.QuantizeActivations(1, x.AsSpan(inputs), a);
                set.Gemv(m8, a, b, y);
                set.Gemv(m16, x, y, accumulate: true);
            }, 100);
            Assert.True(bytes[^1] == 0, $"{set}: {string.Join(", ", bytes)} bytes per window");
        }
    }
}
