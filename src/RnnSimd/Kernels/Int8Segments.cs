namespace RnnSimd.Kernels;

/// <summary>
/// The column segments of an int8 product (each with its own scales) and where each one starts once padded to a multiple
/// of <see cref="PackedInt8GemvMatrix.KGroup"/> columns. Immutable; a matrix and the activations it multiplies must have
/// equal segments.
/// </summary>
internal sealed class Int8Segments : IEquatable<Int8Segments>
{
    private readonly int[] _bounds;
    private readonly int[] _padded;

    private Int8Segments(int[] bounds)
    {
        _bounds = bounds;
        _padded = new int[bounds.Length];
        for (int g = 0; g + 1 < bounds.Length; g++)
            _padded[g + 1] = _padded[g] + (bounds[g + 1] - bounds[g] + PackedInt8GemvMatrix.KGroup - 1) / PackedInt8GemvMatrix.KGroup * PackedInt8GemvMatrix.KGroup;
    }

    /// <summary>Segments from bounds 0 = b_0 &lt;= ... &lt;= b_n = cols (an empty span: one segment [0, cols)).</summary>
    public static Int8Segments Create(int cols, ReadOnlySpan<int> bounds)
    {
        ThrowHelper.CheckNonNegative(cols, nameof(cols));
        if (bounds.IsEmpty) return Checked([0, cols]);
        if (bounds.Length < 2 || bounds[0] != 0 || bounds[^1] != cols)
            ThrowHelper.Throw("segmentBounds", $"segment bounds [{string.Join(", ", bounds.ToArray())}] must start at 0 and end at cols = {cols}.");
        for (int g = 0; g + 1 < bounds.Length; g++)
            if (bounds[g + 1] < bounds[g])
                ThrowHelper.Throw("segmentBounds", $"segment bounds [{string.Join(", ", bounds.ToArray())}] decrease at {g + 1}.");
        return Checked(bounds.ToArray());
    }

    /// <summary>Two segments [0, a) and [a, a + b).</summary>
    public static Int8Segments Create(int a, int b)
    {
        ThrowHelper.CheckNonNegative(a, nameof(a));
        ThrowHelper.CheckNonNegative(b, nameof(b));
        return Checked([0, a, a + b]);
    }

    private static Int8Segments Checked(int[] bounds)
    {
        for (int g = 0; g + 1 < bounds.Length; g++)
            if (bounds[g + 1] - bounds[g] > PackedInt8GemvMatrix.MaxSegmentColumns)
                ThrowHelper.Throw("segmentBounds", $"segment {g} has {bounds[g + 1] - bounds[g]} columns; at most {PackedInt8GemvMatrix.MaxSegmentColumns} keep the int32 sums exact.");
        return new Int8Segments(bounds);
    }

    public int Count => _bounds.Length - 1;
    public int Cols => _bounds[^1];
    public int PaddedCols => _padded[^1];
    /// <summary>The first column of segment g (g = Count: Cols).</summary>
    public int Start(int g) => _bounds[g];
    public int Width(int g) => _bounds[g + 1] - _bounds[g];
    public int PaddedStart(int g) => _padded[g];
    public int PaddedWidth(int g) => _padded[g + 1] - _padded[g];

    /// <summary>Where column <paramref name="col"/> of the unpadded vector lies in the padded one.</summary>
    public int PaddedColumn(int col)
    {
        int g = 0;
        while (col >= _bounds[g + 1]) g++; // empty segments are skipped: their end is not above col
        return _padded[g] + col - _bounds[g];
    }

    public bool Equals(Int8Segments? other) =>
        other is not null && (ReferenceEquals(this, other) || _bounds.AsSpan().SequenceEqual(other._bounds));

    public override bool Equals(object? obj) => Equals(obj as Int8Segments);

    public override int GetHashCode() => HashCode.Combine(Count, Cols);

    public override string ToString() => $"[{string.Join(", ", _bounds)}]";
}
