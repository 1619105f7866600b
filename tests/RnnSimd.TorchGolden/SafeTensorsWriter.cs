using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace RnnSimd.TorchGolden;

/// <summary>
/// Minimal safetensors writer (own code, independent of the library under test).
/// Layout: u64 LE header length N, N bytes of UTF-8 JSON padded with spaces so that N % 8 == 0,
/// then the tensors' raw little-endian bytes back to back with no holes.
/// Tensors are laid out like the reference implementation does: wider dtypes first (so every F64
/// starts 8-byte aligned), then by name (ordinal); metadata keys are sorted too, so the same
/// content always gives the same bytes.
/// </summary>
internal sealed class SafeTensorsWriter
{
    private readonly List<(string Name, string Dtype, int ElemSize, long[] Shape, byte[] Bytes)> _tensors = [];
    private readonly SortedDictionary<string, string> _metadata = new(StringComparer.Ordinal);

    public void Metadata(string key, string value) => _metadata[key] = value;

    public void AddF32(string name, long[] shape, ReadOnlySpan<float> data)
    {
        CheckCount(name, shape, data.Length);
        var bytes = new byte[data.Length * 4];
        for (int i = 0; i < data.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), data[i]);
        Add(name, "F32", 4, shape, bytes);
    }

    public void AddF64(string name, long[] shape, ReadOnlySpan<double> data)
    {
        CheckCount(name, shape, data.Length);
        var bytes = new byte[data.Length * 8];
        for (int i = 0; i < data.Length; i++)
            BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(i * 8), data[i]);
        Add(name, "F64", 8, shape, bytes);
    }

    private void Add(string name, string dtype, int elemSize, long[] shape, byte[] bytes)
    {
        if (name == "__metadata__" || _tensors.Exists(t => t.Name == name))
            throw new ArgumentException($"duplicate or reserved tensor name '{name}'", nameof(name));
        _tensors.Add((name, dtype, elemSize, (long[])shape.Clone(), bytes));
    }

    private static void CheckCount(string name, long[] shape, int count)
    {
        long n = 1;
        foreach (long d in shape) n *= d;
        if (n != count)
            throw new ArgumentException($"tensor '{name}' has {count} elements, shape [{string.Join(",", shape)}] needs {n}");
    }

    public byte[] ToBytes()
    {
        var ordered = _tensors
            .OrderByDescending(t => t.ElemSize)
            .ThenBy(t => t.Name, StringComparer.Ordinal)
            .ToList();

        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (_metadata.Count > 0)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in _metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in ordered)
            {
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.Dtype);
                w.WriteStartArray("shape");
                foreach (long d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.Bytes.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Bytes.Length;
            }
            w.WriteEndObject();
        }

        int headerLen = (int)json.Length;
        int padded = (headerLen + 7) / 8 * 8;
        long dataLen = ordered.Sum(t => (long)t.Bytes.Length);
        var file = new byte[8 + padded + dataLen];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
        json.GetBuffer().AsSpan(0, headerLen).CopyTo(file.AsSpan(8));
        file.AsSpan(8 + headerLen, padded - headerLen).Fill((byte)' ');
        long pos = 8 + padded;
        foreach (var t in ordered)
        {
            t.Bytes.CopyTo(file, pos);
            pos += t.Bytes.Length;
        }
        return file;
    }

    /// <summary>Parses the header back and checks the invariants a strict reader enforces.</summary>
    public static void Validate(byte[] file)
    {
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(file);
        if (n % 8 != 0 || 8 + (long)n > file.Length) throw new InvalidDataException("bad header length");
        using var doc = JsonDocument.Parse(Encoding.UTF8.GetString(file, 8, (int)n));
        var spans = new List<(long B, long E)>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                foreach (var m in p.Value.EnumerateObject())
                    if (m.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"metadata {m.Name} is not a string");
                continue;
            }
            var off = p.Value.GetProperty("data_offsets");
            long b = off[0].GetInt64(), e = off[1].GetInt64();
            int size = p.Value.GetProperty("dtype").GetString() switch
            {
                "F32" => 4,
                "F64" => 8,
                var d => throw new InvalidDataException($"unexpected dtype {d}"),
            };
            long count = 1;
            foreach (var d in p.Value.GetProperty("shape").EnumerateArray()) count *= d.GetInt64();
            if (e - b != count * size) throw new InvalidDataException($"{p.Name}: offsets do not match shape");
            spans.Add((b, e));
        }
        spans.Sort();
        long expect = 0;
        foreach (var (b, e) in spans)
        {
            if (b != expect) throw new InvalidDataException("tensor data has a hole or an overlap");
            expect = e;
        }
        if (8 + (long)n + expect != file.Length) throw new InvalidDataException("data section length mismatch");
    }
}
