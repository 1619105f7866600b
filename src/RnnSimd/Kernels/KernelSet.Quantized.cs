namespace RnnSimd.Kernels;

public sealed partial class KernelSet
{
    /// <summary>The instructions this set's int8 products use in this process (for reports such as <c>rnnsimd info</c>).</summary>
    public string Int8Description => GemvInt8.Describe(Int8Path);

    /// <summary>The instructions this set's bf16 products use (a shift to float32, then this set's FMA).</summary>
    public string Bf16Description => Isa switch
    {
        KernelIsa.Avx512 => "bf16 widened by vpslld/vpandd, Vector512 FMA",
        KernelIsa.Avx2 => "bf16 widened by vpslld/vpand, Vector256 FMA",
        _ => "bf16 widened by a shift, scalar FMA",
    };

    internal Int8Path Int8Path => IsSupported ? GemvInt8.For(Isa) : Int8Path.Scalar;

    /// <summary>
    /// Quantizes x (length w.Cols of the matrix the workspace was made for) into <paramref name="destination"/>, one
    /// symmetric scale per segment (<see cref="Int8Activations"/> gives the rule). Bitwise identical across sets.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not destination.Cols long.</exception>
    public unsafe void QuantizeActivations(ReadOnlySpan<float> x, Int8Activations destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ThrowHelper.CheckLength(x.Length, destination.Cols, nameof(x), "destination.Cols");
        fixed (float* px = x)
            for (int g = 0; g < destination.SegmentCount; g++)
                GemvInt8.QuantizeSegment(Isa, px + destination.Layout.Start(g), g, destination);
    }

    /// <summary>
    /// Quantizes segment <paramref name="segment"/> only, from its own span (for a step's [x | h]: x and h need not be
    /// copied side by side). Each segment's result does not depend on the others.
    /// </summary>
    /// <exception cref="ArgumentException">The segment does not exist, or <paramref name="values"/> is not its width.</exception>
    public unsafe void QuantizeActivations(int segment, ReadOnlySpan<float> values, Int8Activations destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if ((uint)segment >= (uint)destination.SegmentCount)
            ThrowHelper.Throw(nameof(segment), $"segment {segment} is not in [0, {destination.SegmentCount}).");
        if (values.Length != destination.Layout.Width(segment))
            ThrowHelper.Throw(nameof(values), $"values has {values.Length} floats, expected the width of segment {segment} = {destination.Layout.Width(segment)}.");
        fixed (float* px = values)
            GemvInt8.QuantizeSegment(Isa, px, segment, destination);
    }

    /// <summary>
    /// y = W x (+ bias), or y += W x (+ bias) when <paramref name="accumulate"/>, for int8 W and x quantized by
    /// <see cref="QuantizeActivations(ReadOnlySpan{float}, Int8Activations)"/>. Per row and segment an exact int32 dot
    /// product, then v = fma((float)acc, s_w * s_x, v) over the segments in order from +0, v + bias[r], y[r] + v: bitwise
    /// identical across sets. An empty <paramref name="bias"/> means none.
    /// </summary>
    /// <exception cref="ArgumentException">x's segments differ from W's, or y (or a non-empty bias) is not w.Rows long.</exception>
    public unsafe void Gemv(PackedInt8GemvMatrix w, Int8Activations x, ReadOnlySpan<float> bias, Span<float> y, bool accumulate = false)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(x);
        if (!w.Layout.Equals(x.Layout))
            ThrowHelper.Throw(nameof(x), $"x has segments {x.Layout}, the matrix {w.Layout}.");
        if (!bias.IsEmpty) ThrowHelper.CheckLength(bias.Length, w.Rows, nameof(bias), "w.Rows");
        ThrowHelper.CheckLength(y.Length, w.Rows, nameof(y), "w.Rows");
        fixed (float* pb = bias)
        fixed (float* py = y)
            GemvInt8.PackedTiles(Int8Path, w, x, pb, 0, w.Tiles, py, accumulate);
    }

    /// <summary>y = W x, or y += W x when <paramref name="accumulate"/>, for bf16 W: bitwise the float32 packed product of the bf16 weights, identical across sets.</summary>
    /// <exception cref="ArgumentException">x is not cols long or y is not rows long.</exception>
    public unsafe void Gemv(PackedBf16GemvMatrix w, ReadOnlySpan<float> x, Span<float> y, bool accumulate = false)
    {
        ArgumentNullException.ThrowIfNull(w);
        ThrowHelper.CheckLength(x.Length, w.Cols, nameof(x), "w.Cols");
        ThrowHelper.CheckLength(y.Length, w.Rows, nameof(y), "w.Rows");
        fixed (float* px = x)
        fixed (float* py = y)
            GemvBf16.PackedTiles(Isa, w, 0, w.Tiles, px, py, accumulate);
    }
}
