using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace RnnSimd.IO;

/// <summary>
/// A validated safetensors file: metadata, tensor list and the data buffer.
/// </summary>
/// <remarks>
/// <para>Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (<c>{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}</c>,
/// possibly padded with trailing whitespace), then the data buffer, which the tensors' offsets index.</para>
/// <para>The whole header is validated before anything is returned, with the reference implementation's rules
/// (huggingface/safetensors <c>SafeTensors::read_metadata</c>): N ≤ 100,000,000 and within the file; valid UTF-8;
/// a JSON object; unique names; known dtypes; offsets that, sorted, tile the data buffer exactly from 0 to its end;
/// each byte length equal to dtype size × product of shape, computed with overflow checks. Any violation throws
/// <see cref="InvalidDataException"/>. After that every tensor lies inside the buffer, so reads need no further
/// checks. Elements are decoded from bytes with explicit little-endian reads, so tensors at any alignment are
/// copied correctly.</para>
/// </remarks>
public sealed class SafeTensorsFile
{
    /// <summary>The largest header length N accepted, as in the reference implementation.</summary>
    public const int MaxHeaderLength = SafeTensorsHeader.MaxHeaderLength;

    private readonly ReadOnlyMemory<byte> _data; // the data buffer only, after the header
    private readonly SafeTensorInfo[] _tensors;   // sorted by offset
    private readonly Dictionary<string, SafeTensorInfo> _byName;

    private SafeTensorsFile(ReadOnlyMemory<byte> data, int headerLength, SafeTensorsHeader.Parsed parsed)
    {
        _data = data;
        HeaderLength = headerLength;
        _tensors = parsed.Tensors;
        _byName = new Dictionary<string, SafeTensorInfo>(_tensors.Length, StringComparer.Ordinal);
        foreach (var t in _tensors) _byName.Add(t.Name, t);
        Tensors = Array.AsReadOnly(_tensors);
        Metadata = parsed.Metadata.AsReadOnly();
    }

    /// <summary>The <c>__metadata__</c> string pairs (empty if the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensors, in the order of their data in the file.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; }

    /// <summary>The header length N in bytes (JSON plus padding).</summary>
    public int HeaderLength { get; }

    /// <summary>Where the data buffer starts in the file: 8 + N.</summary>
    public long DataStart => 8L + HeaderLength;

    /// <summary>The data buffer's length in bytes.</summary>
    public long DataLength => _data.Length;

    /// <summary>Reads and validates a safetensors file.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="InvalidDataException">The file is not a valid safetensors file; the message says why.</exception>
    /// <exception cref="IOException">The file cannot be read (including <see cref="FileNotFoundException"/>).</exception>
    /// <remarks>The header is validated before the data is read, so a malformed file costs only its header.
    /// The data buffer must fit in one array (at most <see cref="Array.MaxLength"/> bytes).</remarks>
    public static SafeTensorsFile Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        long fileLength = stream.Length;

        Span<byte> prefix = stackalloc byte[8];
        int got = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        int n = SafeTensorsHeader.ReadHeaderLength(prefix[..got], fileLength);

        byte[] header = GC.AllocateUninitializedArray<byte>(n);
        stream.ReadExactly(header);
        long dataLength = fileLength - 8 - n;
        var parsed = SafeTensorsHeader.Parse(header, dataLength);

        if (dataLength > Array.MaxLength)
            throw new InvalidDataException(
                $"'{path}' has a {dataLength}-byte data buffer; at most {Array.MaxLength} bytes are supported.");
        byte[] data = GC.AllocateUninitializedArray<byte>((int)dataLength);
        stream.ReadExactly(data);
        return new SafeTensorsFile(data, n, parsed);
    }

    /// <summary>Validates a safetensors file held in memory. The returned object reads from
    /// <paramref name="file"/> without copying it.</summary>
    /// <param name="file">The whole file's bytes.</param>
    /// <exception cref="InvalidDataException">The bytes are not a valid safetensors file; the message says why.</exception>
    public static SafeTensorsFile Read(ReadOnlyMemory<byte> file)
    {
        var span = file.Span;
        int n = SafeTensorsHeader.ReadHeaderLength(span[..Math.Min(8, span.Length)], span.Length);
        var parsed = SafeTensorsHeader.Parse(span.Slice(8, n), span.Length - 8L - n);
        return new SafeTensorsFile(file[(8 + n)..], n, parsed);
    }

    /// <summary>Looks a tensor up by name.</summary>
    /// <returns><see langword="true"/> if the file has a tensor named <paramref name="name"/>.</returns>
    public bool TryGetTensor(string name, [MaybeNullWhen(false)] out SafeTensorInfo tensor) =>
        _byName.TryGetValue(name, out tensor);

    /// <summary>The tensor named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    public SafeTensorInfo GetTensor(string name) =>
        _byName.TryGetValue(name, out var tensor)
            ? tensor
            : throw new KeyNotFoundException($"The safetensors file has no tensor named '{name}'.");

    /// <summary>The raw little-endian bytes of a tensor (any dtype), without copying.</summary>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    public ReadOnlyMemory<byte> GetBytes(string name)
    {
        var t = GetTensor(name);
        return _data.Slice((int)t.Begin, (int)t.ByteLength); // validated: inside the buffer
    }

    /// <summary>Reads a tensor converted to <see cref="float"/> (from F32, F64, F16 or BF16) into a new array.</summary>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    /// <exception cref="NotSupportedException">The tensor's dtype is not a float type this reader converts.</exception>
    public float[] ReadFloats(string name)
    {
        var t = GetTensor(name);
        CheckFloat(t);
        var result = new float[t.ElementCount];
        Decode(t, result);
        return result;
    }

    /// <summary>Reads a tensor converted to <see cref="float"/> (from F32, F64, F16 or BF16) into
    /// <paramref name="destination"/>, which must hold exactly <see cref="SafeTensorInfo.ElementCount"/> floats.</summary>
    /// <exception cref="KeyNotFoundException">There is no such tensor.</exception>
    /// <exception cref="NotSupportedException">The tensor's dtype is not a float type this reader converts.</exception>
    /// <exception cref="ArgumentException">The destination's length is not the tensor's element count.</exception>
    public void ReadFloats(string name, Span<float> destination)
    {
        var t = GetTensor(name);
        CheckFloat(t);
        if (destination.Length != t.ElementCount)
            throw new ArgumentException(
                $"destination has {destination.Length} floats, expected tensor '{name}' {t.ShapeString} = {t.ElementCount}.",
                nameof(destination));
        Decode(t, destination);
    }

    private static void CheckFloat(SafeTensorInfo t)
    {
        if (!t.DType.IsReadableAsFloat())
            throw new NotSupportedException(
                $"Tensor '{t.Name}' has dtype {t.DType.ToFormatString()}; only F32, F64, F16 and BF16 can be read as floats.");
    }

    // Decoding reads every element through BinaryPrimitives on a byte span, so neither the host's byte order nor
    // the tensor's alignment in the buffer matters. dst.Length == t.ElementCount has been checked.
    private void Decode(SafeTensorInfo t, Span<float> dst) // (ElementCount)
    {
        ReadOnlySpan<byte> src = _data.Span.Slice((int)t.Begin, (int)t.ByteLength); // (ElementCount × size)
        switch (t.DType)
        {
            case SafeTensorsDType.F32:
                if (BitConverter.IsLittleEndian)
                {
                    src.CopyTo(MemoryMarshal.AsBytes(dst)); // a byte copy: no alignment assumed
                }
                else
                {
                    for (int i = 0; i < dst.Length; i++)
                        dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src.Slice(4 * i, 4));
                }
                break;
            case SafeTensorsDType.F64:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src.Slice(8 * i, 8));
                break;
            case SafeTensorsDType.F16:
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src.Slice(2 * i, 2));
                break;
            case SafeTensorsDType.BF16:
                // bfloat16 is the top half of a binary32: widening by a 16-bit shift is exact.
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src.Slice(2 * i, 2)) << 16);
                break;
            default:
                throw new NotSupportedException($"dtype {t.DType.ToFormatString()} cannot be read as floats.");
        }
    }
}
