using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace RnnSimd.Onnx;

/// <summary>ONNX's TensorProto.DataType values.</summary>
public enum OnnxDataType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>float32.</summary>
    Float = 1,
    /// <summary>uint8.</summary>
    UInt8 = 2,
    /// <summary>int8.</summary>
    Int8 = 3,
    /// <summary>uint16.</summary>
    UInt16 = 4,
    /// <summary>int16.</summary>
    Int16 = 5,
    /// <summary>int32.</summary>
    Int32 = 6,
    /// <summary>int64.</summary>
    Int64 = 7,
    /// <summary>string (not supported in tensors here).</summary>
    String = 8,
    /// <summary>bool.</summary>
    Bool = 9,
    /// <summary>float16 (not supported here).</summary>
    Float16 = 10,
    /// <summary>float64.</summary>
    Double = 11,
    /// <summary>uint32.</summary>
    UInt32 = 12,
    /// <summary>uint64 (not supported here).</summary>
    UInt64 = 13,
    /// <summary>complex64 (not supported here).</summary>
    Complex64 = 14,
    /// <summary>complex128 (not supported here).</summary>
    Complex128 = 15,
    /// <summary>bfloat16 (not supported here).</summary>
    BFloat16 = 16,
}

/// <summary>
/// A dense ONNX tensor (TensorProto) with its data decoded: <see cref="Floats"/> for float32 and float64 (float64
/// rounded to float32 only where an operator needs float32), <see cref="Integers"/> for every integer type and bool.
/// Read with <see cref="Parse(ReadOnlySpan{byte}, string)"/> (an input_K.pb / output_K.pb file) or as part of a model.
/// </summary>
public sealed class OnnxTensor
{
    /// <summary>The most dimensions accepted.</summary>
    public const int MaxRank = 32;

    internal OnnxTensor(string name, OnnxDataType type, long[] dims, float[]? floats, double[]? doubles, long[]? integers)
    {
        Name = name; DataType = type; Dims = dims; Floats = floats; Doubles = doubles; Integers = integers;
    }

    /// <summary>Creates a float32 tensor (the data is not copied).</summary>
    /// <exception cref="ArgumentException">The data's length is not the product of the dimensions.</exception>
    public static OnnxTensor FromFloats(string name, float[] data, params long[] dims)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(data);
        long count = CheckedCount(dims, name);
        if (count != data.Length) throw new ArgumentException($"tensor '{name}' has {data.Length} floats, expected {count} for shape [{string.Join(", ", dims)}].", nameof(data));
        return new OnnxTensor(name, OnnxDataType.Float, (long[])dims.Clone(), data, null, null);
    }

    /// <summary>Creates an integer tensor of <paramref name="type"/> (Int32 or Int64; the data is not copied).</summary>
    /// <exception cref="ArgumentException">The data's length is not the product of the dimensions, or the type is not an integer type.</exception>
    public static OnnxTensor FromIntegers(string name, OnnxDataType type, long[] data, params long[] dims)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(data);
        if (!IsInteger(type)) throw new ArgumentException($"{type} is not an integer type.", nameof(type));
        long count = CheckedCount(dims, name);
        if (count != data.Length) throw new ArgumentException($"tensor '{name}' has {data.Length} values, expected {count} for shape [{string.Join(", ", dims)}].", nameof(data));
        return new OnnxTensor(name, type, (long[])dims.Clone(), null, null, data);
    }

    /// <summary>The tensor's name (may be empty).</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public OnnxDataType DataType { get; }

    /// <summary>The dimensions (empty for a scalar).</summary>
    public long[] Dims { get; }

    /// <summary>The element count: the product of <see cref="Dims"/>.</summary>
    public long ElementCount => Floats?.LongLength ?? Doubles?.LongLength ?? Integers!.LongLength;

    /// <summary>The data of a float32 tensor; null otherwise.</summary>
    public float[]? Floats { get; }

    /// <summary>The data of a float64 tensor; null otherwise.</summary>
    public double[]? Doubles { get; }

    /// <summary>The data of an integer or bool tensor, widened to int64; null otherwise.</summary>
    public long[]? Integers { get; }

    /// <summary>The shape as text: "[2, 3]".</summary>
    public string ShapeText => "[" + string.Join(", ", Dims) + "]";

    internal static bool IsInteger(OnnxDataType t) => t is OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Int16 or OnnxDataType.UInt16
        or OnnxDataType.Int32 or OnnxDataType.UInt32 or OnnxDataType.Int64 or OnnxDataType.Bool;

    internal static int ElementSize(OnnxDataType t) => t switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 4,
        OnnxDataType.Double or OnnxDataType.Int64 => 8,
        OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Bool => 1,
        OnnxDataType.Int16 or OnnxDataType.UInt16 => 2,
        _ => 0,
    };

    /// <summary>The product of the dimensions, each non-negative, with overflow checked and at most <see cref="Array.MaxLength"/>.</summary>
    internal static long CheckedCount(ReadOnlySpan<long> dims, string name)
    {
        if (dims.Length > MaxRank) throw new ArgumentException($"tensor '{name}' has {dims.Length} dimensions; at most {MaxRank} are supported.");
        long count = 1;
        foreach (long d in dims)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}' has a negative dimension {d}.");
            if (d != 0 && count > Array.MaxLength / d) throw new ArgumentException($"tensor '{name}' of shape [{string.Join(", ", dims.ToArray())}] has more than {Array.MaxLength} elements.");
            count *= d;
        }
        return count;
    }

    /// <summary>
    /// <see cref="CheckedCount"/> for a shape a model computes while planning: too large a tensor, or one above
    /// <see cref="Layers.RecurrentOptions.MemoryBudget"/>, is an <see cref="InvalidDataException"/> naming the node.
    /// </summary>
    internal static long CheckedCountOrThrow(ReadOnlySpan<long> dims, string name, string owner)
    {
        long count;
        try { count = CheckedCount(dims, name); }
        catch (ArgumentException e) { throw new InvalidDataException($"{owner}: {e.Message}"); }
        if (count * 8 > Layers.RecurrentOptions.MemoryBudget)
            throw new InvalidDataException($"{owner}: tensor '{name}' of shape [{string.Join(", ", dims.ToArray())}] needs {count * 8:N0} bytes, above RecurrentOptions.MemoryBudget = {Layers.RecurrentOptions.MemoryBudget:N0}.");
        return count;
    }

    /// <summary>Reads a serialized TensorProto (an ONNX backend test's input_K.pb / output_K.pb).</summary>
    /// <param name="bytes">The file's bytes.</param>
    /// <param name="source">The file's name, for errors.</param>
    /// <exception cref="InvalidDataException">The bytes are not a valid dense tensor of a supported type; the message says why.</exception>
    public static OnnxTensor Parse(ReadOnlySpan<byte> bytes, string source)
    {
        var r = new ProtoReader(bytes, 0, source);
        return OnnxParser.ReadTensor(ref r, externalDirectory: null);
    }

    /// <summary>Serializes this tensor as a TensorProto (data as raw little-endian bytes).</summary>
    public byte[] ToBytes()
    {
        var w = new ProtoWriter();
        Write(w);
        return w.ToArray();
    }

    internal void Write(ProtoWriter w)
    {
        foreach (long d in Dims) w.Int64(1, d);
        w.Int64(2, (long)DataType);
        w.String(8, Name);
        w.Bytes(9, RawBytes());
    }

    private byte[] RawBytes()
    {
        if (Floats is not null)
        {
            var b = new byte[Floats.Length * 4];
            for (int i = 0; i < Floats.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), Floats[i]);
            return b;
        }
        if (Doubles is not null)
        {
            var b = new byte[Doubles.Length * 8];
            for (int i = 0; i < Doubles.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(8 * i), Doubles[i]);
            return b;
        }
        int size = ElementSize(DataType);
        var raw = new byte[Integers!.Length * size];
        for (int i = 0; i < Integers.Length; i++)
        {
            var dst = raw.AsSpan(size * i);
            long v = Integers[i];
            switch (size)
            {
                case 1: dst[0] = (byte)v; break;
                case 2: BinaryPrimitives.WriteInt16LittleEndian(dst, (short)v); break;
                case 4: BinaryPrimitives.WriteInt32LittleEndian(dst, (int)v); break;
                default: BinaryPrimitives.WriteInt64LittleEndian(dst, v); break;
            }
        }
        return raw;
    }

    /// <summary>Decodes little-endian raw bytes of <paramref name="type"/> (count already checked).</summary>
    internal static OnnxTensor FromRaw(string name, OnnxDataType type, long[] dims, ReadOnlySpan<byte> raw)
    {
        int count = raw.Length / ElementSize(type);
        switch (type)
        {
            case OnnxDataType.Float:
            {
                var f = new float[count];
                if (BitConverter.IsLittleEndian) raw.CopyTo(MemoryMarshal.AsBytes(f.AsSpan()));
                else for (int i = 0; i < count; i++) f[i] = BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..]);
                return new OnnxTensor(name, type, dims, f, null, null);
            }
            case OnnxDataType.Double:
            {
                var d = new double[count];
                for (int i = 0; i < count; i++) d[i] = BinaryPrimitives.ReadDoubleLittleEndian(raw[(8 * i)..]);
                return new OnnxTensor(name, type, dims, null, d, null);
            }
            default:
            {
                var v = new long[count];
                for (int i = 0; i < count; i++)
                {
                    var s = raw[(ElementSize(type) * i)..];
                    v[i] = type switch
                    {
                        OnnxDataType.Int8 => (sbyte)s[0],
                        OnnxDataType.UInt8 => s[0],
                        OnnxDataType.Bool => s[0] != 0 ? 1 : 0,
                        OnnxDataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(s),
                        OnnxDataType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(s),
                        OnnxDataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(s),
                        OnnxDataType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(s),
                        _ => BinaryPrimitives.ReadInt64LittleEndian(s),
                    };
                }
                return new OnnxTensor(name, type, dims, null, null, v);
            }
        }
    }
}
