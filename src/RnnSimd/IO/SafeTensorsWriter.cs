using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace RnnSimd.IO;

/// <summary>Writes F32, BF16 and I8 tensors as a safetensors file.</summary>
/// <remarks>
/// Tensors are written contiguously from offset 0, largest element first and otherwise in the order given (F32, then
/// BF16, then I8: a file of one dtype keeps the given order), and listed in the header in that data order;
/// <c>__metadata__</c> (when given) comes first in the header; the header is padded with spaces to a multiple of 8
/// bytes, so the data buffer starts 8-aligned and every tensor is aligned to its element size in the file. All input
/// is validated, and the header built, before any byte is written.
/// </remarks>
public static class SafeTensorsWriter
{
    private const string MetadataKey = "__metadata__";

    /// <summary>
    /// Writes a safetensors file atomically: to a temporary file in the same directory, flushed to disk, then
    /// renamed over <paramref name="path"/>. If anything fails, the temporary file is deleted and an existing file
    /// at <paramref name="path"/> is left as it was.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="tensors">(name, shape, data) per tensor; data holds the product of shape floats, row-major.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> string pairs.</param>
    /// <exception cref="ArgumentException">A name is empty, repeated or <c>"__metadata__"</c>; a shape has a negative
    /// dimension or does not match its data's length; a string is not valid UTF-16.</exception>
    public static void Write(string path, IEnumerable<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null) =>
        WriteTensors(path, AsF32(tensors), metadata);

    /// <summary>
    /// Writes a safetensors file of F32, BF16 and I8 tensors atomically, as the F32 overload does: nothing is written
    /// until all input is checked, and a failure leaves an existing file at <paramref name="path"/> as it was.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="tensors">The tensors; each one's data holds the product of its shape elements, row-major.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> string pairs.</param>
    /// <exception cref="ArgumentException">As for the F32 overload.</exception>
    /// <remarks>Named apart from <c>Write</c> so that <c>Write(path, [])</c> stays unambiguous.</remarks>
    public static void WriteTensors(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var (entries, header) = Prepare(tensors, metadata);

        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' has no directory.", nameof(path));
        string temp = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                WriteBody(stream, header, entries);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
            DirectorySync.Flush(directory);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes a safetensors file to a stream (not atomic; see the <see cref="Write(string, IEnumerable{ValueTuple{string, int[], ReadOnlyMemory{float}}}, IReadOnlyDictionary{string, string}?)"/> overload for files).</summary>
    /// <param name="destination">The stream to write to, from its current position.</param>
    /// <param name="tensors">(name, shape, data) per tensor; data holds the product of shape floats, row-major.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> string pairs.</param>
    /// <exception cref="ArgumentException">Invalid input, as for the file overload; nothing has been written.</exception>
    public static void Write(Stream destination, IEnumerable<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null) =>
        WriteTensors(destination, AsF32(tensors), metadata);

    /// <summary>Writes a safetensors file of F32, BF16 and I8 tensors to a stream (not atomic).</summary>
    /// <param name="destination">The stream to write to, from its current position.</param>
    /// <param name="tensors">The tensors; each one's data holds the product of its shape elements, row-major.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> string pairs.</param>
    /// <exception cref="ArgumentException">Invalid input, as for the file overload; nothing has been written.</exception>
    public static void WriteTensors(Stream destination, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var (entries, header) = Prepare(tensors, metadata);
        WriteBody(destination, header, entries);
    }

    private static IEnumerable<SafeTensor> AsF32(IEnumerable<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        return tensors.Select(t => SafeTensor.F32(t.Name, t.Shape, t.Data));
    }

    /// <summary>Validates the input, orders the data (largest element first, stable) and builds length prefix + padded header JSON.</summary>
    private static (List<SafeTensor>, byte[]) Prepare(IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var entries = new List<SafeTensor>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            var (name, shape, length) = (tensor.Name, tensor.Shape, tensor.Length);
            if (tensor.DType is not (SafeTensorsDType.F32 or SafeTensorsDType.BF16 or SafeTensorsDType.I8))
                throw new ArgumentException($"Tensor #{entries.Count} has no data (a default SafeTensor).", nameof(tensors));
            if (string.IsNullOrEmpty(name))
                throw new ArgumentException($"Tensor #{entries.Count} has an empty name.", nameof(tensors));
            if (name == MetadataKey)
                throw new ArgumentException($"\"{MetadataKey}\" is reserved and cannot be a tensor name.", nameof(tensors));
            CheckUtf16(name, "Tensor name", nameof(tensors));
            if (!names.Add(name))
                throw new ArgumentException($"Duplicate tensor name '{name}'.", nameof(tensors));
            if (shape is null)
                throw new ArgumentException($"Tensor '{name}' has a null shape.", nameof(tensors));
            foreach (int d in shape)
            {
                if (d < 0)
                    throw new ArgumentException($"Tensor '{name}' has a negative dimension in shape [{string.Join(", ", shape)}].", nameof(tensors));
            }
            // The product saturates at 2^31, past any span's length: count ≤ 2^31 and d < 2^31 keep count * d < 2^62.
            long count = Array.IndexOf(shape, 0) >= 0 ? 0 : 1;
            foreach (int d in shape) count = Math.Min(count * d, 1L << 31);
            if (count != length)
                throw new ArgumentException(
                    $"Tensor '{name}' has {length} {tensor.DType.ToFormatString()} values, expected shape [{string.Join(", ", shape)}]" +
                    (count > int.MaxValue ? $", over {int.MaxValue}." : $" = {count}."), nameof(tensors));
            entries.Add(tensor.DType switch
            {
                SafeTensorsDType.F32 => SafeTensor.F32(name, (int[])shape.Clone(), tensor.F32Data),
                SafeTensorsDType.BF16 => SafeTensor.BF16(name, (int[])shape.Clone(), tensor.BF16Data),
                _ => SafeTensor.I8(name, (int[])shape.Clone(), tensor.I8Data),
            });
        }
        // Largest element first keeps every tensor aligned to its element size (the offsets must tile the buffer with
        // no padding between tensors); a stable sort keeps the given order within a dtype.
        entries = entries.Select((e, i) => (e, i)).OrderByDescending(p => p.e.ElementSize).ThenBy(p => p.i).Select(p => p.e).ToList();
        if (metadata is not null)
        {
            foreach (var (key, value) in metadata)
            {
                if (key is null || value is null)
                    throw new ArgumentException("Metadata keys and values must not be null.", nameof(metadata));
                CheckUtf16(key, "Metadata key", nameof(metadata));
                CheckUtf16(value, $"Metadata value for key '{key}'", nameof(metadata));
            }
        }

        var json = new ArrayBufferWriter<byte>();
        // Relaxed escaping writes non-ASCII names as UTF-8 rather than \u escapes; both are valid JSON.
        using (var w = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (metadata is not null)
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata) w.WriteString(key, value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in entries)
            {
                long end = offset + (long)e.ElementSize * e.Length;
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", e.DType.ToFormatString());
                w.WriteStartArray("shape");
                foreach (int d in e.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(end);
                w.WriteEndArray();
                w.WriteEndObject();
                offset = end;
            }
            w.WriteEndObject();
        }

        int padded = (json.WrittenCount + 7) / 8 * 8;
        if (padded > SafeTensorsHeader.MaxHeaderLength)
            throw new ArgumentException($"The header would be {padded} bytes, over the format's limit of {SafeTensorsHeader.MaxHeaderLength}.", nameof(tensors));
        var header = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)padded);
        json.WrittenSpan.CopyTo(header.AsSpan(8));
        header.AsSpan(8 + json.WrittenCount).Fill((byte)' ');
        return (entries, header);
    }

    /// <summary>Rejects lone surrogates, which have no UTF-8 encoding (the reader rejects their escapes too).</summary>
    private static void CheckUtf16(string s, string what, string paramName)
    {
        for (int i = 0; i < s.Length;)
        {
            if (Rune.DecodeFromUtf16(s.AsSpan(i), out _, out int used) != OperationStatus.Done)
                throw new ArgumentException($"{what} '{s}' contains a lone surrogate at index {i}, which cannot be encoded.", paramName);
            i += used;
        }
    }

    /// <summary>
    /// Test hook (crash-safety tests only): RNNSIMD_TEST_SLOW_WRITE_MS pauses every file write after its header for that
    /// many milliseconds, widening the window in which a killed process leaves a half-written temporary file.
    /// </summary>
    private static readonly int s_testPauseMs =
        int.TryParse(Environment.GetEnvironmentVariable("RNNSIMD_TEST_SLOW_WRITE_MS"), out int ms) && ms is > 0 and <= 10_000 ? ms : 0;

    private static void WriteBody(Stream stream, byte[] header, List<SafeTensor> entries)
    {
        stream.Write(header);
        if (s_testPauseMs > 0 && stream is FileStream)
        {
            stream.Flush();
            Thread.Sleep(s_testPauseMs);
        }
        Span<byte> chunk = stackalloc byte[4096];
        foreach (var e in entries)
        {
            if (e.DType == SafeTensorsDType.I8)
            {
                stream.Write(MemoryMarshal.AsBytes(e.I8Data.Span));
                continue;
            }
            if (BitConverter.IsLittleEndian)
            {
                stream.Write(e.DType == SafeTensorsDType.F32 ? MemoryMarshal.AsBytes(e.F32Data.Span) : MemoryMarshal.AsBytes(e.BF16Data.Span));
                continue;
            }
            int size = e.ElementSize, perChunk = chunk.Length / size;
            for (int start = 0; start < e.Length; start += perChunk)
            {
                int n = Math.Min(perChunk, e.Length - start);
                for (int i = 0; i < n; i++)
                {
                    if (size == 4) BinaryPrimitives.WriteSingleLittleEndian(chunk.Slice(4 * i, 4), e.F32Data.Span[start + i]);
                    else BinaryPrimitives.WriteUInt16LittleEndian(chunk.Slice(2 * i, 2), e.BF16Data.Span[start + i]);
                }
                stream.Write(chunk[..(size * n)]);
            }
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the original exception is the one worth reporting.
        }
    }
}
