namespace RnnSimd.IO;

/// <summary>
/// One tensor for <see cref="SafeTensorsWriter"/>: its name, dtype, shape (row-major, outermost first) and elements as
/// the dtype stores them: <c>F32</c> floats, <c>BF16</c> bit patterns (the upper 16 bits of a binary32) or <c>I8</c>
/// codes. The data is referenced, not copied, until the writer runs.
/// </summary>
public readonly struct SafeTensor
{
    private readonly ReadOnlyMemory<float> _f32;
    private readonly ReadOnlyMemory<ushort> _bf16;
    private readonly ReadOnlyMemory<sbyte> _i8;

    private SafeTensor(string name, SafeTensorsDType dtype, int[] shape, ReadOnlyMemory<float> f32, ReadOnlyMemory<ushort> bf16, ReadOnlyMemory<sbyte> i8)
    {
        Name = name; DType = dtype; Shape = shape; _f32 = f32; _bf16 = bf16; _i8 = i8;
    }

    /// <summary>The tensor's name (its key in the header).</summary>
    public string Name { get; }

    /// <summary><see cref="SafeTensorsDType.F32"/>, <see cref="SafeTensorsDType.BF16"/> or <see cref="SafeTensorsDType.I8"/>.</summary>
    public SafeTensorsDType DType { get; }

    /// <summary>The dimensions, outermost first; empty for a scalar.</summary>
    public int[] Shape { get; }

    /// <summary>The number of elements the data holds.</summary>
    public int Length => DType switch
    {
        SafeTensorsDType.F32 => _f32.Length,
        SafeTensorsDType.BF16 => _bf16.Length,
        _ => _i8.Length,
    };

    /// <summary>Bytes per element: 4, 2 or 1.</summary>
    public int ElementSize => DType.BitSize() / 8;

    /// <summary>The F32 elements (empty for another dtype).</summary>
    public ReadOnlyMemory<float> F32Data => _f32;

    /// <summary>The BF16 bit patterns (empty for another dtype).</summary>
    public ReadOnlyMemory<ushort> BF16Data => _bf16;

    /// <summary>The I8 codes (empty for another dtype).</summary>
    public ReadOnlyMemory<sbyte> I8Data => _i8;

    /// <summary>An <c>F32</c> tensor.</summary>
    public static SafeTensor F32(string name, int[] shape, ReadOnlyMemory<float> data) => new(name, SafeTensorsDType.F32, shape, data, default, default);

    /// <summary>A <c>BF16</c> tensor from bit patterns.</summary>
    public static SafeTensor BF16(string name, int[] shape, ReadOnlyMemory<ushort> bits) => new(name, SafeTensorsDType.BF16, shape, default, bits, default);

    /// <summary>An <c>I8</c> tensor.</summary>
    public static SafeTensor I8(string name, int[] shape, ReadOnlyMemory<sbyte> codes) => new(name, SafeTensorsDType.I8, shape, default, default, codes);

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType.ToFormatString()} [{string.Join(", ", Shape ?? [])}]";
}
