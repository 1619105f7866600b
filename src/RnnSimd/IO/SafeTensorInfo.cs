namespace RnnSimd.IO;

/// <summary>One tensor's header entry in a validated safetensors file.</summary>
public sealed class SafeTensorInfo
{
    private readonly long[] _shape;

    internal SafeTensorInfo(string name, SafeTensorsDType dtype, long[] shape, long elementCount, long begin, long end)
    {
        Name = name;
        DType = dtype;
        _shape = shape;
        Shape = Array.AsReadOnly(shape);
        ElementCount = elementCount;
        Begin = begin;
        End = end;
    }

    /// <summary>The tensor's name (the key in the header).</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public SafeTensorsDType DType { get; }

    /// <summary>The dimensions, outermost first (row-major); empty for a scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>The number of elements: the product of <see cref="Shape"/> (1 for a scalar).</summary>
    public long ElementCount { get; }

    /// <summary>Start of the tensor's bytes, relative to the start of the data buffer (<c>data_offsets[0]</c>).</summary>
    public long Begin { get; }

    /// <summary>End (exclusive) of the tensor's bytes, relative to the start of the data buffer (<c>data_offsets[1]</c>).</summary>
    public long End { get; }

    /// <summary>The tensor's size in bytes, <see cref="End"/> − <see cref="Begin"/>.</summary>
    public long ByteLength => End - Begin;

    /// <summary>The shape as text, e.g. <c>[2, 3]</c>.</summary>
    public string ShapeString => "[" + string.Join(", ", _shape) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType.ToFormatString()} {ShapeString} [{Begin}, {End})";
}
