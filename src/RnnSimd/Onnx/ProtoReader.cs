using System.Buffers.Binary;
using System.Text;

namespace RnnSimd.Onnx;

/// <summary>
/// A protobuf wire-format reader over one message's bytes, treating every byte as hostile: a varint longer than 10
/// bytes, a length running past the message, a group or unknown wire type, or a field of the wrong wire type throws
/// <see cref="InvalidDataException"/> with the message path (e.g. "graph.node[3].attribute[0]") and the byte offset.
/// A nested message is read by a new reader over its slice, so nesting depth is the caller's code depth (the ONNX
/// reader never follows a recursive field: subgraphs and nested types are skipped unread).
/// </summary>
internal ref struct ProtoReader
{
    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    private static readonly UTF8Encoding Utf8Strict = new(false, true);

    private readonly ReadOnlySpan<byte> _data;
    private readonly int _base;   // offset of _data in the file, for messages
    private int _pos;

    public ProtoReader(ReadOnlySpan<byte> data, int fileOffset, string path)
    {
        _data = data;
        _base = fileOffset;
        Path = path;
    }

    /// <summary>Where this message sits, for errors: "model.graph.node[3]".</summary>
    public string Path { get; }

    /// <summary>The file offset of the next byte.</summary>
    public readonly int Offset => _base + _pos;

    public readonly bool End => _pos >= _data.Length;

    /// <summary>Reads the next field's tag: its number and wire type.</summary>
    public (int Field, int Wire) ReadTag()
    {
        int at = Offset;
        ulong tag = ReadVarint();
        int wire = (int)(tag & 7);
        ulong field = tag >> 3;
        if (field == 0 || field > 536_870_911) throw Error($"field number {field} is not valid", at);
        if (wire is 3 or 4) throw Error($"field {field} uses a protobuf group (wire type {wire}), which ONNX never writes", at);
        if (wire is 6 or 7) throw Error($"field {field} has wire type {wire}, which does not exist", at);
        return ((int)field, wire);
    }

    public ulong ReadVarint()
    {
        int at = Offset;
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _data.Length) throw Error("a varint runs past the end of its message", at);
            byte b = _data[_pos++];
            if (shift == 63 && b > 1) throw Error("a varint overflows 64 bits", at);
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw Error("a varint is longer than 10 bytes", at);
    }

    /// <summary>An int64 field (two's complement varint, as protobuf writes negative int64 values).</summary>
    public long ReadInt64(int wire, string field)
    {
        Expect(wire, Varint, field);
        return (long)ReadVarint();
    }

    /// <summary>An int32 field: a varint whose value must fit in 32 bits (negative int32 values are written sign-extended).</summary>
    public int ReadInt32(int wire, string field)
    {
        int at = Offset;
        long v = ReadInt64(wire, field);
        if (v is < int.MinValue or > int.MaxValue) throw Error($"{field} = {v} does not fit in int32", at);
        return (int)v;
    }

    public float ReadFloat(int wire, string field)
    {
        Expect(wire, Fixed32, field);
        return BinaryPrimitives.ReadSingleLittleEndian(Take(4, field));
    }

    /// <summary>A length-delimited field's bytes (the length checked against the rest of the message).</summary>
    public ReadOnlySpan<byte> ReadBytes(int wire, string field) => ReadBytes(wire, field, out _);

    public ReadOnlySpan<byte> ReadBytes(int wire, string field, out int fileOffset)
    {
        Expect(wire, LengthDelimited, field);
        int at = Offset;
        ulong n = ReadVarint();
        if (n > (ulong)(_data.Length - _pos))
            throw Error($"{field} declares {n} bytes but only {_data.Length - _pos} remain in its message", at);
        fileOffset = Offset;
        return Take((int)n, field);
    }

    /// <summary>A string field, which must be valid UTF-8 and at most <paramref name="maxBytes"/> long.</summary>
    public string ReadString(int wire, string field, int maxBytes = 1 << 16)
    {
        int at = Offset;
        var bytes = ReadBytes(wire, field);
        if (bytes.Length > maxBytes) throw Error($"{field} is {bytes.Length} bytes long, more than the {maxBytes} accepted", at);
        try { return Utf8Strict.GetString(bytes); }
        catch (DecoderFallbackException) { throw Error($"{field} is not valid UTF-8", at); }
    }

    /// <summary>A nested message: a reader over its bytes, with its path.</summary>
    public ProtoReader ReadMessage(int wire, string field, string path)
    {
        var bytes = ReadBytes(wire, field, out int at);
        return new ProtoReader(bytes, at, path);
    }

    /// <summary>
    /// A repeated varint field, packed (one length-delimited run) or not (one value per tag), appended to
    /// <paramref name="into"/>. <paramref name="count"/> is the running total, checked against <paramref name="max"/>.
    /// </summary>
    public void ReadRepeatedVarint(int wire, string field, ref int count, int max, List<long> into)
    {
        if (wire == LengthDelimited)
        {
            var inner = ReadMessage(wire, field, Path);
            // One value ends at each byte below 0x80: refuse too many before reading any, and size the list once
            // (growing it by doubling would allocate up to 16-24 bytes per byte of a run of 1-byte varints).
            int values = 0;
            foreach (byte b in inner._data) if (b < 0x80) values++;
            if (values > max - count) throw Error($"{field} has more than {max} values", inner.Offset);
            into.EnsureCapacity(into.Count + values);
            while (!inner.End)
            {
                if (++count > max) throw Error($"{field} has more than {max} values", inner.Offset);
                into.Add((long)inner.ReadVarint());
            }
            return;
        }
        if (++count > max) throw Error($"{field} has more than {max} values", Offset);
        into.Add(ReadInt64(wire, field));
    }

    public void ReadRepeatedFloat(int wire, string field, ref int count, int max, List<float> into)
    {
        if (wire == LengthDelimited)
        {
            int at = Offset;
            var bytes = ReadBytes(wire, field);
            if (bytes.Length % 4 != 0) throw Error($"packed {field} is {bytes.Length} bytes, not a multiple of 4", at);
            if ((count += bytes.Length / 4) > max) throw Error($"{field} has more than {max} values", at);
            into.EnsureCapacity(into.Count + bytes.Length / 4);
            for (int i = 0; i < bytes.Length; i += 4) into.Add(BinaryPrimitives.ReadSingleLittleEndian(bytes[i..]));
            return;
        }
        if (++count > max) throw Error($"{field} has more than {max} values", Offset);
        into.Add(ReadFloat(wire, field));
    }

    public void ReadRepeatedDouble(int wire, string field, ref int count, int max, List<double> into)
    {
        int at = Offset;
        if (wire == LengthDelimited)
        {
            var bytes = ReadBytes(wire, field);
            if (bytes.Length % 8 != 0) throw Error($"packed {field} is {bytes.Length} bytes, not a multiple of 8", at);
            if ((count += bytes.Length / 8) > max) throw Error($"{field} has more than {max} values", at);
            into.EnsureCapacity(into.Count + bytes.Length / 8);
            for (int i = 0; i < bytes.Length; i += 8) into.Add(BinaryPrimitives.ReadDoubleLittleEndian(bytes[i..]));
            return;
        }
        Expect(wire, Fixed64, field);
        if (++count > max) throw Error($"{field} has more than {max} values", at);
        into.Add(BinaryPrimitives.ReadDoubleLittleEndian(Take(8, field)));
    }

    /// <summary>Skips a field of any valid wire type (never recursing: a length-delimited field is skipped whole).</summary>
    public void Skip(int wire, string field)
    {
        switch (wire)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Take(8, field); break;
            case Fixed32: Take(4, field); break;
            default: ReadBytes(wire, field); break;
        }
    }

    private ReadOnlySpan<byte> Take(int n, string field)
    {
        if (n > _data.Length - _pos) throw Error($"{field} runs past the end of its message", Offset);
        var s = _data.Slice(_pos, n);
        _pos += n;
        return s;
    }

    private readonly void Expect(int wire, int expected, string field)
    {
        if (wire != expected)
            throw Error($"{field} has wire type {wire}, expected {expected} ({WireName(expected)})", Offset);
    }

    private static string WireName(int wire) => wire switch
    {
        Varint => "varint", Fixed64 => "64-bit", LengthDelimited => "length-delimited", Fixed32 => "32-bit", _ => "?",
    };

    public readonly InvalidDataException Error(string what, int at) => new($"Invalid ONNX file: {Path}: {what} (at byte {at}).");

    public readonly InvalidDataException Error(string what) => Error(what, Offset);
}
