namespace RnnSimd.Onnx;

/// <summary>
/// One tensor of a session: its shape and a buffer sized once per planned shape (float data for float tensors, int64
/// for every integer and bool type). Static values (initializers, constants, and everything computed only from them
/// and from input shapes) are filled while planning and not recomputed per run.
/// </summary>
internal sealed class OnnxValue
{
    public OnnxValue(string name, bool isFloat, OnnxDataType type)
    {
        Name = name; IsFloat = isFloat; Type = type;
    }

    public string Name { get; }
    public bool IsFloat { get; }
    /// <summary>The declared element type (Int32 and Int64 both live in <see cref="I"/>).</summary>
    public OnnxDataType Type { get; }
    public long[] Shape = [];
    public float[] F = [];
    public long[] I = [];
    public bool Static;
    /// <summary>The session whose memory budget this value's buffer counts against (null for shared constants).</summary>
    public OnnxSession? Session;

    public int Rank => Shape.Length;

    public long Count
    {
        get
        {
            long n = 1;
            foreach (long d in Shape) n *= d;
            return n;
        }
    }

    public Span<float> Floats => F.AsSpan(0, (int)Count);
    public Span<long> Ints => I.AsSpan(0, (int)Count);

    /// <summary>Sets the shape (a new array only when it changes) and grows the buffer to hold it.</summary>
    public void Resize(ReadOnlySpan<long> shape, string owner)
    {
        long count = OnnxTensor.CheckedCountOrThrow(shape, Name, owner);
        if (!shape.SequenceEqual(Shape)) Shape = shape.ToArray();
        if (IsFloat) { if (F.Length < count) { Session?.Charge(((long)count - F.Length) * sizeof(float), owner); F = new float[count]; } }
        else if (I.Length < count) { Session?.Charge(((long)count - I.Length) * sizeof(long), owner); I = new long[count]; }
    }

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    public static OnnxValue FromTensor(OnnxTensor t)
    {
        if (t.Doubles is not null) throw new NotSupportedException($"unsupported: double tensor '{t.Name}' (float32 and integer tensors are supported)");
        var v = new OnnxValue(t.Name, t.Floats is not null, t.DataType) { Shape = (long[])t.Dims.Clone(), Static = true };
        if (t.Floats is not null) v.F = t.Floats; else v.I = t.Integers!;
        return v;
    }

    public OnnxTensor ToTensor() => IsFloat
        ? OnnxTensor.FromFloats(Name, Floats.ToArray(), Shape)
        : OnnxTensor.FromIntegers(Name, Type == OnnxDataType.Undefined ? OnnxDataType.Int64 : Type, Ints.ToArray(), Shape);
}
