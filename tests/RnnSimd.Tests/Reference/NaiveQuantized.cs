namespace RnnSimd.Tests.Reference;

/// <summary>
/// The spec of the quantized precisions, written from their definitions: symmetric int8 quantization, bf16 rounding
/// (chosen by distance, not by bit tricks), and products in exact integers (long) or double. Never optimised.
/// </summary>
public static class NaiveQuantized
{
    /// <summary>s = max |v| / 127 (float32 division, as the library specifies).</summary>
    public static float Scale(ReadOnlySpan<float> v)
    {
        float max = 0;
        foreach (float a in v) max = Math.Max(max, Math.Abs(a));
        return max / 127f;
    }

    /// <summary>q = clamp(round_half_even(v / s), -127, 127) with the division in float32; 0 when s = 0.</summary>
    public static int Quantize(float v, float s)
    {
        if (s == 0) return 0;
        float ratio = v / s;
        double r = Math.Round((double)ratio, MidpointRounding.ToEven);
        return (int)Math.Clamp(r, -127, 127);
    }

    /// <summary>Quantizes each (row, segment) of W (rows x cols, row-major): q (rows x cols) and s (rows x segments).</summary>
    public static (int[] Q, float[] S) QuantizeMatrix(int rows, int cols, float[] w, int[] bounds)
    {
        int segs = bounds.Length - 1;
        var q = new int[rows * cols];
        var s = new float[rows * segs];
        for (int r = 0; r < rows; r++)
        for (int g = 0; g < segs; g++)
        {
            var seg = w.AsSpan(r * cols + bounds[g], bounds[g + 1] - bounds[g]);
            float sc = Scale(seg);
            s[r * segs + g] = sc;
            for (int c = bounds[g]; c < bounds[g + 1]; c++) q[r * cols + c] = Quantize(w[r * cols + c], sc);
        }
        return (q, s);
    }

    /// <summary>Quantizes each segment of x: q and one scale per segment (NaN, with q = 0, for a segment holding NaN or infinity).</summary>
    public static (int[] Q, float[] S) QuantizeVector(float[] x, int[] bounds)
    {
        int segs = bounds.Length - 1;
        var q = new int[x.Length];
        var s = new float[segs];
        for (int g = 0; g < segs; g++)
        {
            var seg = x.AsSpan(bounds[g], bounds[g + 1] - bounds[g]);
            bool finite = true;
            foreach (float a in seg) finite &= float.IsFinite(a);
            float sc = finite ? Scale(seg) : float.NaN;
            s[g] = sc;
            for (int c = bounds[g]; c < bounds[g + 1]; c++) q[c] = finite ? Quantize(x[c], sc) : 0;
        }
        return (q, s);
    }

    /// <summary>acc[r, g] = sum over segment g of q_w[r, c] q_x[c], exactly (long).</summary>
    public static long[] IntegerDots(int rows, int cols, int[] qw, int[] qx, int[] bounds)
    {
        int segs = bounds.Length - 1;
        var acc = new long[rows * segs];
        for (int r = 0; r < rows; r++)
        for (int g = 0; g < segs; g++)
        {
            long sum = 0;
            for (int c = bounds[g]; c < bounds[g + 1]; c++) sum += (long)qw[r * cols + c] * qx[c];
            acc[r * segs + g] = sum;
        }
        return acc;
    }

    /// <summary>
    /// y = sum_g acc[r, g] s_w[r, g] s_x[g] (+ b) (+ y0) in double, i.e. W_deq x_deq with the dequantized operands; and the
    /// magnitude sum |terms| that bounds the float epilogue's rounding error.
    /// </summary>
    public static (double[] Y, double[] Abs) Dequantized(int rows, int segs, long[] acc, float[] sw, float[] sx, float[]? bias, float[]? y0)
    {
        var y = new double[rows];
        var abs = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double v = 0, a = 0;
            for (int g = 0; g < segs; g++)
            {
                double t = acc[r * segs + g] * (double)sw[r * segs + g] * sx[g];
                v += t;
                a += Math.Abs(t);
            }
            if (bias is not null) { v += bias[r]; a += Math.Abs(bias[r]); }
            if (y0 is not null) { v += y0[r]; a += Math.Abs(y0[r]); }
            y[r] = v;
            abs[r] = a;
        }
        return (y, abs);
    }

    /// <summary>The library's stated float epilogue applied to the exact integers: what every kernel set must return bitwise.</summary>
    public static float[] Epilogue(int rows, int segs, long[] acc, float[] sw, float[] sx, float[]? bias, float[]? y0)
    {
        var y = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            float v = 0f;
            for (int g = 0; g < segs; g++) v = MathF.FusedMultiplyAdd((float)acc[r * segs + g], sw[r * segs + g] * sx[g], v);
            if (bias is not null) v += bias[r];
            y[r] = y0 is null ? v : y0[r] + v;
        }
        return y;
    }

    /// <summary>bf16 of a float by round to nearest, ties to even, chosen by distance between the two bf16 neighbours; NaN stays NaN.</summary>
    public static float RoundToBf16(float f)
    {
        if (float.IsNaN(f)) return float.NaN;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        uint down = bits & 0xFFFF_0000u;
        float lo = BitConverter.UInt32BitsToSingle(down);
        if (lo == f) return lo;
        // the next bf16 away from zero (down + 0x10000 may be infinity: that is the correct neighbour then)
        float hi = BitConverter.UInt32BitsToSingle(down + 0x1_0000u);
        double dl = Math.Abs((double)f - lo), dh = float.IsInfinity(hi) ? Math.Abs((double)f - Math.CopySign(Math.Pow(2, 128), f)) : Math.Abs((double)f - hi);
        if (dl < dh) return lo;
        if (dh < dl) return hi;
        return ((down >> 16) & 1) == 0 ? lo : hi;
    }
}
