using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace RnnSimd.IO;

/// <summary>Writes F32 tensors as a safetensors file.</summary>
/// <remarks>
/// Tensors are written in the order given, contiguously from offset 0; <c>__metadata__</c> (when given) comes first
/// in the header; the header is padded with spaces to a multiple of 8 bytes, so the data buffer starts 8-aligned
/// and every F32 tensor is 4-aligned in the file. All input is validated, and the header built, before any byte is
/// written.
/// </remarks>
public static class SafeTensorsWriter
{
    private const string MetadataKey = "__metadata__";

    private readonly record struct Entry(string Name, int[] Shape, ReadOnlyMemory<float> Data);

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
        IReadOnlyDictionary<string, string>? metadata = null)
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
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var (entries, header) = Prepare(tensors, metadata);
        WriteBody(destination, header, entries);
    }

    /// <summary>Validates the input and builds length prefix + padded header JSON.</summary>
    private static (List<Entry>, byte[]) Prepare(IEnumerable<(string Name, int[] Shape, ReadOnlyMemory<float> Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var entries = new List<Entry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, shape, data) in tensors)
        {
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
            if (count != data.Length)
                throw new ArgumentException(
                    $"Tensor '{name}' has {data.Length} floats, expected shape [{string.Join(", ", shape)}]" +
                    (count > int.MaxValue ? $", over {int.MaxValue}." : $" = {count}."), nameof(tensors));
            entries.Add(new Entry(name, (int[])shape.Clone(), data));
        }
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
                long end = offset + 4L * e.Data.Length;
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", "F32");
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

    private static void WriteBody(Stream stream, byte[] header, List<Entry> entries)
    {
        stream.Write(header);
        if (s_testPauseMs > 0 && stream is FileStream)
        {
            stream.Flush();
            Thread.Sleep(s_testPauseMs);
        }
        if (BitConverter.IsLittleEndian)
        {
            foreach (var e in entries) stream.Write(MemoryMarshal.AsBytes(e.Data.Span));
            return;
        }
        Span<byte> chunk = stackalloc byte[4096];
        foreach (var e in entries)
        {
            var src = e.Data.Span;
            for (int start = 0; start < src.Length; start += chunk.Length / 4)
            {
                int n = Math.Min(chunk.Length / 4, src.Length - start);
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteSingleLittleEndian(chunk.Slice(4 * i, 4), src[start + i]);
                stream.Write(chunk[..(4 * n)]);
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
