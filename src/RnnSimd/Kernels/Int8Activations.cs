using System.Runtime.CompilerServices;

namespace RnnSimd.Kernels;

/// <summary>
/// A float vector quantized to int8 for an int8 product: the workspace one call writes with
/// <see cref="KernelSet.QuantizeActivations(ReadOnlySpan{float}, Int8Activations)"/> and then reads in
/// <see cref="KernelSet.Gemv(PackedInt8GemvMatrix, Int8Activations, ReadOnlySpan{float}, Span{float}, bool)"/>.
/// Sized once (from a matrix, <see cref="PackedInt8GemvMatrix"/>'s segments); reused without allocating. Belongs to
/// one caller at a time (a workspace, not part of a model).
/// </summary>
/// <remarks>
/// Per segment g: s_x[g] = max |x_c| / 127 over the segment, q_c = clamp(round_half_even(x_c / s_x[g]), -127, 127)
/// (float32 division, then rounding), the same rule as the weights. A segment whose maximum is 0 (or whose scale
/// underflows to 0) gets s = 0 and q = 0. A segment holding NaN or infinity gets s = NaN and q = 0, so every output of
/// the product is NaN: a non-finite input poisons the step, as it would in float32, instead of being clipped silently.
/// Stored twice, padded like the matrix: as bytes q + 128 (the unsigned operand of vpdpbusd) and as int16 q (the
/// operand of vpmaddwd and of the scalar kernel); padding holds q = 0.
/// </remarks>
public sealed unsafe class Int8Activations
{
    private readonly byte[] _bytes;
    private readonly short[] _shorts;
    private readonly float[] _scales;

    /// <summary>A workspace for vectors split into the given column segments (see <see cref="PackedInt8GemvMatrix"/>; empty: one segment of <paramref name="cols"/>).</summary>
    /// <exception cref="ArgumentException">The bounds are not 0 = b_0 &lt;= ... &lt;= b_n = cols.</exception>
    public Int8Activations(int cols, ReadOnlySpan<int> segmentBounds = default) : this(Int8Segments.Create(cols, segmentBounds))
    {
    }

    /// <summary>A workspace matching a matrix's segments.</summary>
    public Int8Activations(PackedInt8GemvMatrix matrix) : this((matrix ?? throw new ArgumentNullException(nameof(matrix))).Layout)
    {
    }

    internal Int8Activations(Int8Segments layout)
    {
        Layout = layout;
        // + 64: the kernels read whole 4-column groups; a spare cache line keeps any vector read in bounds too.
        _bytes = GC.AllocateArray<byte>(layout.PaddedCols + 128, pinned: true);
        _shorts = GC.AllocateArray<short>(layout.PaddedCols + 64, pinned: true);
        _scales = GC.AllocateArray<float>(layout.Count + 16, pinned: true);
        U8 = (byte*)(((nint)Unsafe.AsPointer(ref _bytes[0]) + 63) & ~(nint)63);
        Q16 = (short*)(((nint)Unsafe.AsPointer(ref _shorts[0]) + 63) & ~(nint)63);
        Scales = (float*)Unsafe.AsPointer(ref _scales[0]);
        new Span<byte>(U8, layout.PaddedCols).Fill(128);
    }

    /// <summary>Length of the float vector.</summary>
    public int Cols => Layout.Cols;
    /// <summary>Number of segments.</summary>
    public int SegmentCount => Layout.Count;

    /// <summary>The scale of segment <paramref name="segment"/> from the last quantization (x_c ~ q_c * scale).</summary>
    public float Scale(int segment)
    {
        if ((uint)segment >= (uint)SegmentCount) ThrowHelper.Throw(nameof(segment), $"segment {segment} is not in [0, {SegmentCount}).");
        return Scales[segment];
    }

    /// <summary>The quantized value q_c of column <paramref name="col"/> from the last quantization.</summary>
    public sbyte Quantized(int col)
    {
        if ((uint)col >= (uint)Cols) ThrowHelper.Throw(nameof(col), $"column {col} is not in [0, {Cols}).");
        return (sbyte)Q16[Layout.PaddedColumn(col)];
    }

    internal Int8Segments Layout { get; }
    /// <summary>q + 128 at padded columns.</summary>
    internal byte* U8 { get; }
    /// <summary>q at padded columns.</summary>
    internal short* Q16 { get; }
    /// <summary>One scale per segment.</summary>
    internal float* Scales { get; }
}
