using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace RnnSimd.IO;

/// <summary>
/// Parses and validates a safetensors header. Every check mirrors the reference implementation
/// (huggingface/safetensors, <c>SafeTensors::read_metadata</c> and <c>Metadata::validate</c>); every violation
/// throws <see cref="InvalidDataException"/> naming the rule and, where there is one, the tensor.
/// </summary>
/// <remarks>
/// Deliberate differences, all stricter: duplicate keys (tensor names, <c>__metadata__</c> keys, fields of one
/// entry) are rejected instead of the last one silently winning; a dimension above <see cref="long.MaxValue"/>
/// (possible in the reference only in a tensor with zero elements) is rejected; the data buffer must fit in one
/// .NET array.
/// </remarks>
internal static class SafeTensorsHeader
{
    /// <summary>The reference implementation's limit on the header length N.</summary>
    public const int MaxHeaderLength = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>The result of parsing: tensors sorted by data offset, and the free-form metadata.</summary>
    public readonly record struct Parsed(SafeTensorInfo[] Tensors, Dictionary<string, string> Metadata);

    /// <summary>
    /// Reads and checks the 8-byte little-endian header length N against <paramref name="fileLength"/>.
    /// </summary>
    /// <param name="prefix">The first min(8, file length) bytes of the file.</param>
    /// <param name="fileLength">The whole file's length in bytes.</param>
    /// <returns>N, at most <see cref="MaxHeaderLength"/> and with 8 + N ≤ <paramref name="fileLength"/>.</returns>
    public static int ReadHeaderLength(ReadOnlySpan<byte> prefix, long fileLength)
    {
        if (fileLength < 8 || prefix.Length < 8)
            throw Error($"file is {fileLength} bytes, too short for the 8-byte header length");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderLength)
            throw Error($"header length {n} exceeds the limit of {MaxHeaderLength} bytes");
        if (n > (ulong)(fileLength - 8))
            throw Error($"header length {n} runs past the end of the file ({fileLength} bytes, so at most {fileLength - 8} for the header)");
        return (int)n;
    }

    /// <summary>Parses and validates the header JSON (the N bytes after the length prefix).</summary>
    /// <param name="header">The header bytes.</param>
    /// <param name="dataLength">The length of the data buffer that follows the header: file length − 8 − N.</param>
    public static Parsed Parse(ReadOnlySpan<byte> header, long dataLength)
    {
        if (!Utf8.IsValid(header))
            throw Error("header is not valid UTF-8");
        if (header.IsEmpty || header[0] != (byte)'{')
            throw Error("header does not start with '{' (it must be a JSON object)");

        List<RawEntry> entries;
        Dictionary<string, string> metadata;
        try
        {
            (entries, metadata) = ParseJson(header);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Invalid safetensors file: header is not valid JSON: {e.Message}", e);
        }

        return new Parsed(Validate(entries, dataLength), metadata);
    }

    /// <summary>A header entry as written, before validation (offsets and dimensions still unsigned 64-bit).</summary>
    private sealed record RawEntry(string Name, SafeTensorsDType DType, ulong[] Shape, ulong Begin, ulong End, int Order);

    private static (List<RawEntry>, Dictionary<string, string>) ParseJson(ReadOnlySpan<byte> header)
    {
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        var entries = new List<RawEntry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        Dictionary<string, string>? metadata = null;

        Next(ref reader); // '{' was checked, so this is StartObject.
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject) break;
            string key = ReadString(ref reader, "a top-level key");
            Next(ref reader);
            if (key == MetadataKey)
            {
                if (metadata is not null) throw Error($"duplicate key \"{MetadataKey}\"");
                metadata = ParseMetadata(ref reader);
            }
            else
            {
                if (!names.Add(key)) throw Error($"duplicate tensor name '{Show(key)}'");
                entries.Add(ParseEntry(ref reader, key, entries.Count));
            }
        }
        // Only JSON whitespace may follow the object; anything else makes Read throw a JsonException.
        if (reader.Read()) throw Error("unexpected content after the header object");
        return (entries, metadata ?? new Dictionary<string, string>(StringComparer.Ordinal));
    }

    private static Dictionary<string, string> ParseMetadata(ref Utf8JsonReader reader)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (reader.TokenType == JsonTokenType.Null) return metadata; // the reference reads null as "no metadata"
        if (reader.TokenType != JsonTokenType.StartObject)
            throw Error($"\"{MetadataKey}\" is {Describe(reader.TokenType)}, expected an object of strings");
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject) return metadata;
            string key = ReadString(ref reader, $"a key in \"{MetadataKey}\"");
            Next(ref reader);
            if (reader.TokenType != JsonTokenType.String)
                throw Error($"\"{MetadataKey}\" value for key '{Show(key)}' is {Describe(reader.TokenType)}, expected a string");
            if (!metadata.TryAdd(key, ReadString(ref reader, $"the \"{MetadataKey}\" value for key", key)))
                throw Error($"duplicate key '{Show(key)}' in \"{MetadataKey}\"");
        }
    }

    private static RawEntry ParseEntry(ref Utf8JsonReader reader, string name, int order)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw Error($"tensor '{Show(name)}': entry is {Describe(reader.TokenType)}, expected an object");
        SafeTensorsDType? dtype = null;
        ulong[]? shape = null;
        ulong[]? offsets = null;
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndObject) break;
            string field = ReadString(ref reader, "a field name of tensor", name);
            Next(ref reader);
            switch (field)
            {
                case "dtype":
                    if (dtype is not null) throw Error($"tensor '{Show(name)}': duplicate field \"dtype\"");
                    if (reader.TokenType != JsonTokenType.String)
                        throw Error($"tensor '{Show(name)}': dtype is {Describe(reader.TokenType)}, expected a string");
                    string text = ReadString(ref reader, "the dtype of tensor", name);
                    if (!SafeTensorsDTypes.TryParse(text, out var parsed))
                        throw Error($"tensor '{Show(name)}': unknown dtype \"{Show(text)}\"");
                    dtype = parsed;
                    break;
                case "shape":
                    if (shape is not null) throw Error($"tensor '{Show(name)}': duplicate field \"shape\"");
                    shape = ReadUInt64Array(ref reader, name, "shape");
                    break;
                case "data_offsets":
                    if (offsets is not null) throw Error($"tensor '{Show(name)}': duplicate field \"data_offsets\"");
                    offsets = ReadUInt64Array(ref reader, name, "data_offsets");
                    if (offsets.Length != 2)
                        throw Error($"tensor '{Show(name)}': data_offsets has {offsets.Length} numbers, expected 2 ([begin, end])");
                    break;
                default:
                    reader.Skip(); // the reference ignores unknown fields
                    break;
            }
        }
        if (dtype is null) throw Error($"tensor '{Show(name)}': missing field \"dtype\"");
        if (shape is null) throw Error($"tensor '{Show(name)}': missing field \"shape\"");
        if (offsets is null) throw Error($"tensor '{Show(name)}': missing field \"data_offsets\"");
        return new RawEntry(name, dtype.Value, shape, offsets[0], offsets[1], order);
    }

    private static ulong[] ReadUInt64Array(ref Utf8JsonReader reader, string name, string field)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw Error($"tensor '{Show(name)}': {field} is {Describe(reader.TokenType)}, expected an array of non-negative integers");
        var values = new List<ulong>();
        while (true)
        {
            Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndArray) return values.ToArray();
            // TryGetUInt64 accepts only plain digits that fit 64 bits: no sign, fraction or exponent.
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetUInt64(out ulong value))
            {
                string what = reader.TokenType == JsonTokenType.Number
                    ? Show(Encoding.UTF8.GetString(reader.ValueSpan))
                    : Describe(reader.TokenType);
                throw Error($"tensor '{Show(name)}': {field} entry {what} is not a non-negative integer below 2^64");
            }
            values.Add(value);
        }
    }

    /// <summary>
    /// Sorts entries by (begin, end) as the reference does, then requires them to tile the data buffer exactly:
    /// contiguous from 0, each one's byte length equal to elements × bits / 8 (checked arithmetic), the last
    /// ending at <paramref name="dataLength"/>.
    /// </summary>
    private static SafeTensorInfo[] Validate(List<RawEntry> entries, long dataLength)
    {
        var sorted = entries.ToArray();
        Array.Sort(sorted, static (a, b) =>
            a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin)
            : a.End != b.End ? a.End.CompareTo(b.End)
            : a.Order.CompareTo(b.Order));

        var infos = new SafeTensorInfo[sorted.Length];
        ulong start = 0;
        for (int i = 0; i < sorted.Length; i++)
        {
            var e = sorted[i];
            if (e.End < e.Begin)
                throw Error($"tensor '{Show(e.Name)}': data_offsets [{e.Begin}, {e.End}] end before they begin");
            if (e.Begin > start)
                throw Error(i == 0
                    ? $"tensor '{Show(e.Name)}': data starts at {e.Begin}, but the first tensor must start at 0 (hole in the data buffer)"
                    : $"tensor '{Show(e.Name)}': data starts at {e.Begin}, but the previous tensor ends at {start} (hole in the data buffer)");
            if (e.Begin < start)
                throw Error($"tensor '{Show(e.Name)}': data_offsets [{e.Begin}, {e.End}] overlap the previous tensor, which ends at {start}");
            start = e.End;

            ulong elements = 1;
            foreach (ulong d in e.Shape)
            {
                if (!TryMultiply(elements, d, out elements))
                    throw Error($"tensor '{Show(e.Name)}': element count of shape {Format(e.Shape)} overflows 64 bits");
            }
            int bitSize = e.DType.BitSize();
            if (!TryMultiply(elements, (ulong)bitSize, out ulong bits))
                throw Error($"tensor '{Show(e.Name)}': byte size of shape {Format(e.Shape)} × {e.DType.ToFormatString()} overflows 64 bits");
            if (bits % 8 != 0)
                throw Error($"tensor '{Show(e.Name)}': {elements} elements of {bitSize}-bit {e.DType.ToFormatString()} do not fill a whole number of bytes");
            ulong bytes = bits / 8;
            if (e.End - e.Begin != bytes)
                throw Error($"tensor '{Show(e.Name)}': data_offsets [{e.Begin}, {e.End}] hold {e.End - e.Begin} bytes, " +
                      $"but {e.DType.ToFormatString()} with shape {Format(e.Shape)} needs {bytes}");

            var shape = new long[e.Shape.Length];
            for (int k = 0; k < shape.Length; k++)
            {
                if (e.Shape[k] > long.MaxValue)
                    throw Error($"tensor '{Show(e.Name)}': dimension {e.Shape[k]} exceeds {long.MaxValue} (not supported)");
                shape[k] = (long)e.Shape[k];
            }
            // Every end is checked against dataLength below, before any of these values is used.
            infos[i] = new SafeTensorInfo(e.Name, e.DType, shape, (long)Math.Min(elements, long.MaxValue),
                (long)Math.Min(e.Begin, long.MaxValue), (long)Math.Min(e.End, long.MaxValue));
        }

        if (start != (ulong)dataLength)
            throw Error(start < (ulong)dataLength
                ? $"tensors cover {start} bytes, but the data buffer has {dataLength} (unindexed trailing bytes)"
                : $"tensors need {start} bytes, but the data buffer has only {dataLength} (file truncated?)");
        return infos;
    }

    private static bool TryMultiply(ulong a, ulong b, out ulong product)
    {
        ulong high = Math.BigMul(a, b, out product);
        return high == 0;
    }

    /// <summary>Advances one token; the reader validates the JSON grammar and throws <see cref="JsonException"/>.</summary>
    private static void Next(ref Utf8JsonReader reader)
    {
        // With the whole header as the final block, running out of tokens inside the object is a grammar
        // error the reader reports itself; this guards the loops above against ever spinning on a stale token.
        if (!reader.Read()) throw Error("header JSON ends early");
    }

    /// <summary>The current string token; <paramref name="what"/> and <paramref name="owner"/> (a tensor name or
    /// metadata key) describe it in the error, built only on failure.</summary>
    private static string ReadString(ref Utf8JsonReader reader, string what, string? owner = null)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            // Thrown for escapes that decode to invalid UTF-16, e.g. a lone surrogate "\ud800".
            string where = owner is null ? what : $"{what} '{Show(owner)}'";
            throw new InvalidDataException($"Invalid safetensors file: {where} is not a valid string: {e.Message}", e);
        }
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };

    private static string Format(ulong[] shape) =>
        shape.Length <= 8 ? "[" + string.Join(", ", shape) + "]" : "[" + string.Join(", ", shape.Take(8)) + $", ... ({shape.Length} dims)]";

    /// <summary>A file's string made safe for a one-line message: control characters escaped, at most 80 chars.</summary>
    private static string Show(string s)
    {
        const int max = 80;
        int keep = s.Length <= max ? s.Length : char.IsHighSurrogate(s[max - 1]) ? max - 1 : max;
        var sb = new StringBuilder(keep + 8);
        foreach (char c in s.AsSpan(0, keep))
        {
            if (char.IsControl(c)) sb.Append($"\\u{(int)c:X4}");
            else sb.Append(c);
        }
        return keep < s.Length ? sb.Append("...").ToString() : sb.ToString();
    }

    private static InvalidDataException Error(string message) => new("Invalid safetensors file: " + message + ".");
}
