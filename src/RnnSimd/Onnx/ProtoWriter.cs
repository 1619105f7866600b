using System.Buffers.Binary;
using System.Text;

namespace RnnSimd.Onnx;

/// <summary>
/// A protobuf wire-format writer into a growing buffer. Nested messages are written by <see cref="Message"/>: the body
/// goes into a child writer first, then its length and bytes into this one (export is not a hot path).
/// </summary>
internal sealed class ProtoWriter
{
    private byte[] _buffer = new byte[256];
    private int _length;

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    public byte[] ToArray() => Written.ToArray();

    public void Tag(int field, int wire) => Varint(((ulong)field << 3) | (uint)wire);

    public void Varint(ulong value)
    {
        Ensure(10);
        while (value >= 0x80)
        {
            _buffer[_length++] = (byte)(value | 0x80);
            value >>= 7;
        }
        _buffer[_length++] = (byte)value;
    }

    public void Int64(int field, long value)
    {
        Tag(field, ProtoReader.Varint);
        Varint((ulong)value);
    }

    public void Float(int field, float value)
    {
        Tag(field, ProtoReader.Fixed32);
        Ensure(4);
        BinaryPrimitives.WriteSingleLittleEndian(_buffer.AsSpan(_length), value);
        _length += 4;
    }

    public void Bytes(int field, ReadOnlySpan<byte> bytes)
    {
        Tag(field, ProtoReader.LengthDelimited);
        Varint((ulong)bytes.Length);
        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    public void String(int field, string value)
    {
        if (value.Length > 0) Bytes(field, Encoding.UTF8.GetBytes(value));
    }

    /// <summary>A string written even when empty (a repeated string such as a node input, where "" means "absent").</summary>
    public void StringAlways(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public void PackedInt64(int field, ReadOnlySpan<long> values)
    {
        if (values.IsEmpty) return;
        var inner = new ProtoWriter();
        foreach (long v in values) inner.Varint((ulong)v);
        Bytes(field, inner.Written);
    }

    public void Message(int field, Action<ProtoWriter> body)
    {
        var inner = new ProtoWriter();
        body(inner);
        Bytes(field, inner.Written);
    }

    private void Ensure(int more)
    {
        if (_length + more <= _buffer.Length) return;
        long size = Math.Max((long)_buffer.Length * 2, (long)_length + more);
        if (size > Array.MaxLength) throw new InvalidOperationException($"An ONNX model above {Array.MaxLength} bytes cannot be written (protobuf's limit is 2 GiB).");
        Array.Resize(ref _buffer, (int)size);
    }
}
