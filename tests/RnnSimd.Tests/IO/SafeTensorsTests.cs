using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnSimd.Cli;
using RnnSimd.IO;

namespace RnnSimd.Tests.IO;

/// <summary>
/// The safetensors reader and writer: round trips, hand-made files with independently computed values, the
/// reference implementation's own test vectors, one test per validation rule, fuzzing, alignment and atomicity.
/// </summary>
[Trait("Category", "IO")]
public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-io-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ---- helpers -------------------------------------------------------------------------------------------

    /// <summary>8-byte little-endian length of <paramref name="header"/>, the header's UTF-8, then <paramref name="data"/>.</summary>
    private static byte[] Build(string header, byte[]? data = null) => Build(Encoding.UTF8.GetBytes(header), data ?? []);

    private static byte[] Build(byte[] header, byte[] data)
    {
        var file = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        data.CopyTo(file, 8 + header.Length);
        return file;
    }

    /// <summary>A file whose single tensor "t" has the given dtype, shape and data, covering the whole buffer.</summary>
    private static byte[] Single(string dtype, string shape, byte[] data) =>
        Build($$$"""{"t":{"dtype":"{{{dtype}}}","shape":{{{shape}}},"data_offsets":[0,{{{data.Length}}}]}}""", data);

    private static byte[] Le16(params ushort[] values)
    {
        var b = new byte[2 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2 * i), values[i]);
        return b;
    }

    private static byte[] Le64(params ulong[] values)
    {
        var b = new byte[8 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8 * i), values[i]);
        return b;
    }

    private static InvalidDataException Invalid(byte[] file, string expectedFragment)
    {
        var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(file));
        Assert.Contains(expectedFragment, e.Message, StringComparison.Ordinal);
        return e;
    }

    private static (string, int[], ReadOnlyMemory<float>) T(string name, int[] shape, float[] data) => (name, shape, data);

    private static void AssertBitwise(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"index {i}: expected {expected[i]} (0x{BitConverter.SingleToInt32Bits(expected[i]):X8}), got {actual[i]} (0x{BitConverter.SingleToInt32Bits(actual[i]):X8})");
    }

    // ---- round trips ---------------------------------------------------------------------------------------

    [Fact]
    public void Write_then_read_round_trips_F32_bitwise()
    {
        float[] w = [1f, -0f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, 3.4028235e38f, -1.17549435e-38f];
        float[] b = [0.1f, 0.2f, 0.3f];
        float[] scalar = [42f];
        string path = Path.Combine(_dir, "m.safetensors");
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ü \"quoted\" <tag>" };

        SafeTensorsWriter.Write(path, [T("lstm.weight", [2, 4], w), T("lstm.bias", [3], b), T("step", [], scalar), T("empty", [0, 5], [])], meta);

        var f = SafeTensorsFile.Read(path);
        Assert.Equal(0, f.HeaderLength % 8);
        Assert.Equal(new FileInfo(path).Length, f.DataStart + f.DataLength);
        Assert.Equal(meta, f.Metadata);
        Assert.Equal(["lstm.weight", "lstm.bias", "step", "empty"], f.Tensors.Select(t => t.Name)); // given order = data order
        Assert.Equal([2L, 4L], f.GetTensor("lstm.weight").Shape);
        Assert.Empty(f.GetTensor("step").Shape);
        Assert.Equal(1, f.GetTensor("step").ElementCount);
        Assert.Equal([0L, 5L], f.GetTensor("empty").Shape);
        Assert.All(f.Tensors, t => Assert.Equal(SafeTensorsDType.F32, t.DType));
        Assert.Equal(32, f.GetTensor("lstm.weight").ByteLength);
        AssertBitwise(w, f.ReadFloats("lstm.weight"));
        AssertBitwise(b, f.ReadFloats("lstm.bias"));
        AssertBitwise(scalar, f.ReadFloats("step"));
        Assert.Empty(f.ReadFloats("empty"));

        var dest = new float[3];
        f.ReadFloats("lstm.bias", dest);
        AssertBitwise(b, dest);
        Assert.Throws<ArgumentException>(() => f.ReadFloats("lstm.bias", new float[4]));
        Assert.Throws<ArgumentException>(() => f.ReadFloats("lstm.bias", new float[2]));
        Assert.Throws<KeyNotFoundException>(() => f.ReadFloats("missing"));
        Assert.False(f.TryGetTensor("missing", out _));
        Assert.Equal([path], Directory.GetFiles(_dir)); // no temporary file left
    }

    [Fact]
    public void Stream_and_memory_round_trip_non_ascii_names()
    {
        using var ms = new MemoryStream();
        SafeTensorsWriter.Write(ms, [T("gewicht.ü.日本", [2], [1f, 2f]), T("a\"b\\c\u0001", [1], [3f])]);
        var f = SafeTensorsFile.Read(ms.ToArray());
        Assert.Equal([1f, 2f], f.ReadFloats("gewicht.ü.日本"));
        Assert.Equal([3f], f.ReadFloats("a\"b\\c\u0001"));
        Assert.Empty(f.Metadata);
    }

    // ---- the reference implementation's own test vectors (huggingface/safetensors, tensor.rs tests) ---------

    [Fact]
    public void Writer_output_is_byte_identical_to_reference_serialization()
    {
        // test_serialization: "attn.0", F32 [1,2,3] = 0..5; a 64-byte header needs no padding.
        byte[] expected =
        [
            64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
            116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
            58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
            101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
            0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
        ];
        using var ms = new MemoryStream();
        SafeTensorsWriter.Write(ms, [T("attn.0", [1, 2, 3], [0f, 1f, 2f, 3f, 4f, 5f])]);
        Assert.Equal(expected, ms.ToArray());
        Assert.Equal([0f, 1f, 2f, 3f, 4f, 5f], SafeTensorsFile.Read(expected).ReadFloats("attn.0"));

        // test_serialization_forced_alignement: "attn0", [1,1,2,3]: 65 bytes of JSON padded with 7 spaces to 72.
        byte[] aligned =
        [
            72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
            121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
            91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
            115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
            32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
            160, 64,
        ];
        ms.SetLength(0);
        SafeTensorsWriter.Write(ms, [T("attn0", [1, 1, 2, 3], [0f, 1f, 2f, 3f, 4f, 5f])]);
        Assert.Equal(aligned, ms.ToArray());
    }

    [Fact]
    public void Writer_output_matches_reference_for_empty_files()
    {
        // test_empty: no tensors -> "{}" padded to 8; with metadata {"framework": "pt"} -> 35 bytes padded to 40.
        using var ms = new MemoryStream();
        SafeTensorsWriter.Write(ms, []);
        Assert.Equal([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32], ms.ToArray());
        Assert.Empty(SafeTensorsFile.Read(ms.ToArray()).Tensors);

        ms.SetLength(0);
        SafeTensorsWriter.Write(ms, [], new Dictionary<string, string> { ["framework"] = "pt" });
        byte[] expected =
        [
            40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
            95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
            116, 34, 125, 125, 32, 32, 32, 32, 32,
        ];
        Assert.Equal(expected, ms.ToArray());
        Assert.Equal("pt", SafeTensorsFile.Read(expected).Metadata["framework"]);
    }

    [Fact]
    public void Reads_reference_I32_example_with_metadata()
    {
        // test_deserialization's header ('<' = 60 bytes) and the same with "__metadata__" added.
        foreach (string header in new[]
        {
            """{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}""",
            """{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"foo":"bar"}}""",
        })
        {
            byte[] data = new byte[16];
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(12), -7);
            var f = SafeTensorsFile.Read(Build(header, data));
            var t = Assert.Single(f.Tensors);
            Assert.Equal("test", t.Name);
            Assert.Equal(SafeTensorsDType.I32, t.DType);
            Assert.Equal([2L, 2L], t.Shape);
            Assert.Equal(4, t.ElementCount);
            Assert.Equal((0L, 16L), (t.Begin, t.End));
            Assert.Equal(-7, BinaryPrimitives.ReadInt32LittleEndian(f.GetBytes("test").Span[12..]));
            var e = Assert.Throws<NotSupportedException>(() => f.ReadFloats("test"));
            Assert.Contains("I32", e.Message);
            if (header.Contains("foo")) Assert.Equal("bar", f.Metadata["foo"]);
            else Assert.Empty(f.Metadata);
        }
        Assert.Equal(60, Encoding.UTF8.GetByteCount("""{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}"""));
    }

    [Fact]
    public void Accepts_reference_edge_cases()
    {
        // test_whitespace_padded_header: any JSON whitespace may pad the header.
        Assert.Empty(SafeTensorsFile.Read(Build("{}\r \t\n")).Tensors);
        // test_empty_shapes_allowed: a scalar.
        Assert.Equal(1, SafeTensorsFile.Read(Single("I32", "[]", new byte[4])).Tensors[0].ElementCount);
        // test_zero_sized_tensor: [2, 0] with offsets [0, 0].
        var z = SafeTensorsFile.Read(Build("""{"test":{"dtype":"I32","shape":[2,0],"data_offsets":[0, 0]}}""")).Tensors[0];
        Assert.Equal((0L, 0L), (z.ElementCount, z.ByteLength));
        // "__metadata__": null means no metadata; unknown fields in an entry are ignored.
        Assert.Empty(SafeTensorsFile.Read(Build("""{"__metadata__":null}""")).Metadata);
        Assert.Single(SafeTensorsFile.Read(Build("""{"t":{"x":{"y":[1,{}]},"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", [7])).Tensors);
        // Header order need not be data order: tensors come back sorted by offset.
        var f = SafeTensorsFile.Read(Build(
            """{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", [1, 2]));
        Assert.Equal(["a", "b"], f.Tensors.Select(t => t.Name));
        // Sub-byte dtypes: 4 F4 elements fill 2 bytes; 4 F6 elements fill 3.
        Assert.Equal(2, SafeTensorsFile.Read(Single("F4", "[4]", new byte[2])).Tensors[0].ByteLength);
        Assert.Equal(3, SafeTensorsFile.Read(Single("F6_E2M3", "[2,2]", new byte[3])).Tensors[0].ByteLength);
    }

    // ---- hand-made files for each float dtype, values computed independently ------------------------------

    [Fact]
    public void Reads_F64_hand_made()
    {
        // IEEE binary64 bit patterns: 1.5 = 0x3FF8..., -2.25 = 0xC002..., 2^-1074 (smallest subnormal) = 1, 0.1 rounds.
        var f = SafeTensorsFile.Read(Single("F64", "[2,2]", Le64(0x3FF8000000000000, 0xC002000000000000, 0x0000000000000001, 0x3FB999999999999A)));
        Assert.Equal([1.5f, -2.25f, 0f, 0.1f], f.ReadFloats("t"));
    }

    [Fact]
    public void Reads_F16_hand_made()
    {
        // binary16: 1.5 = 0x3E00, -2 = 0xC000, 65504 (max) = 0x7BFF, 2^-24 (smallest subnormal) = 0x0001, +inf = 0x7C00, -0 = 0x8000.
        var f = SafeTensorsFile.Read(Single("F16", "[6]", Le16(0x3E00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x8000)));
        AssertBitwise([1.5f, -2f, 65504f, MathF.Pow(2, -24), float.PositiveInfinity, -0f], f.ReadFloats("t"));
    }

    [Fact]
    public void Reads_BF16_hand_made()
    {
        // bfloat16 = top 16 bits of binary32: 1.5 = 0x3FC0, 1 = 0x3F80, -2 = 0xC000, 3.140625 = 0x4049, NaN = 0x7FC0.
        var f = SafeTensorsFile.Read(Single("BF16", "[5]", Le16(0x3FC0, 0x3F80, 0xC000, 0x4049, 0x7FC0)));
        AssertBitwise([1.5f, 1f, -2f, 3.140625f, BitConverter.Int32BitsToSingle(0x7FC00000)], f.ReadFloats("t"));
    }

    [Fact]
    public void Unaligned_tensors_are_copied_correctly()
    {
        // A 61-byte header puts the data buffer at file offset 69 (odd), and a 3-byte U8 tensor first puts the
        // F64 tensor at data offset 3; the whole file also sits at an odd offset inside a larger array.
        string header = """{"u":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"d":{"dtype":"F64","shape":[2],"data_offsets":[3,19]},"f":{"dtype":"F32","shape":[1],"data_offsets":[19,23]},"h":{"dtype":"BF16","shape":[1],"data_offsets":[23,25]}}""";
        string padded = header.PadRight(header.Length % 2 == 0 ? header.Length + 1 : header.Length);
        byte[] data = [1, 2, 3, .. Le64(0x3FF8000000000000, 0xC002000000000000), 0x00, 0x00, 0xC0, 0x3F, .. Le16(0x4049)];
        byte[] file = Build(padded, data);
        Assert.Equal(1, (8 + Encoding.UTF8.GetByteCount(padded)) % 2);

        var backing = new byte[file.Length + 3];
        file.CopyTo(backing, 1);
        var f = SafeTensorsFile.Read(backing.AsMemory(1, file.Length));
        Assert.Equal([1.5f, -2.25f], f.ReadFloats("d"));
        Assert.Equal([1.5f], f.ReadFloats("f"));
        Assert.Equal([3.140625f], f.ReadFloats("h"));
        Assert.Equal([1, 2, 3], f.GetBytes("u").ToArray());

        string path = Path.Combine(_dir, "odd.safetensors");
        File.WriteAllBytes(path, file);
        Assert.Equal([1.5f, -2.25f], SafeTensorsFile.Read(path).ReadFloats("d"));
    }

    // ---- one test per validation rule ----------------------------------------------------------------------

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void Rejects_truncated_length_prefix(int length) =>
        Invalid(new byte[length], "too short for the 8-byte header length");

    [Fact]
    public void Rejects_header_too_large()
    {
        Invalid(Le64(100_000_001), "exceeds the limit");
        // test_header_too_large: the length's high bytes set.
        Invalid([.. Le64(0xFFFFFF000000003C), .. new byte[76]], "exceeds the limit");
        Invalid(Le64(ulong.MaxValue), "exceeds the limit");
    }

    [Fact]
    public void Rejects_header_length_beyond_file()
    {
        Invalid(Le64(60), "runs past the end of the file"); // test_invalid_header_length
        byte[] ok = Build("{}");
        ok[0]++;
        Invalid(ok, "runs past the end of the file");
    }

    [Fact]
    public void Rejects_invalid_utf8()
    {
        Invalid(Build([0xFF], []), "not valid UTF-8"); // test_invalid_header_non_utf8
        Invalid(Build([.. "{\"a"u8, 0xC3, 0x28, .. "\":null}"u8], []), "not valid UTF-8");
        Invalid(Build([.. "{\"a"u8, 0xED, 0xA0, 0x80, .. "\":null}"u8], []), "not valid UTF-8"); // encoded surrogate
    }

    [Theory]
    [InlineData("{")]                 // test_invalid_header_not_json
    [InlineData("{\"a\":}")]
    [InlineData("{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0],}}")] // trailing comma
    [InlineData("{}x")]
    [InlineData("{}{}")]
    [InlineData("{/*c*/}")]
    [InlineData("{} \0")]
    public void Rejects_invalid_json(string header) => Invalid(Build(header), "not valid JSON");

    [Theory]
    [InlineData("[]")]
    [InlineData("\"x\"")]
    [InlineData(" {}")]
    [InlineData("")]
    public void Rejects_header_not_starting_with_object(string header) => Invalid(Build(header), "does not start with '{'");

    [Fact]
    public void Rejects_duplicate_tensor_names() =>
        Invalid(Build("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", [1, 2]),
            "duplicate tensor name 'a'");

    [Fact]
    public void Rejects_hole_between_tensors() =>
        Invalid(Build("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}""", [1, 2, 3]),
            "tensor 'b': data starts at 2, but the previous tensor ends at 1");

    [Fact]
    public void Rejects_overlapping_tensors() =>
        Invalid(Build("""{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}""", [1, 2, 3]),
            "tensor 'b': data_offsets [1, 3] overlap");

    [Fact]
    public void Rejects_tensors_sharing_bytes() => // test_json_attack: every tensor at [0, 16]
        Invalid(Build("""{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}""", new byte[16]),
            "overlap");

    [Fact]
    public void Rejects_data_not_starting_at_zero() =>
        Invalid(Build("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", [1, 2]), "the first tensor must start at 0");

    [Fact]
    public void Rejects_end_before_begin() =>
        Invalid(Build("""{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"c":{"dtype":"U8","shape":[1],"data_offsets":[2,1]}}""", [1, 2]),
            "tensor 'c': data_offsets [2, 1] end before they begin");

    [Fact]
    public void Rejects_trailing_unindexed_bytes()
    {
        string header = """{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}""";
        Invalid(Build(header, [.. new byte[16], .. "extra_bogus_data_for_polyglot_file"u8]), "unindexed trailing bytes"); // test_metadata_incomplete_buffer
        Invalid(Build("{}", [0]), "unindexed trailing bytes");
    }

    [Fact]
    public void Rejects_missing_data_bytes() =>
        Invalid(Build("""{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}""", new byte[14]), "the data buffer has only 14");

    [Fact]
    public void Rejects_byte_length_not_matching_dtype_and_shape()
    {
        Invalid(Single("I32", "[2,2]", new byte[4]), "tensor 't': data_offsets [0, 4] hold 4 bytes, but I32 with shape [2, 2] needs 16"); // test_invalid_info
        Invalid(Single("F64", "[3]", new byte[12]), "needs 24");
        Invalid(Single("F4", "[3]", new byte[2]), "do not fill a whole number of bytes");
    }

    [Theory]
    [InlineData("[4294967296,4294967296,4]", "element count")]
    [InlineData("[2,18446744073709551614]", "element count")]      // test_validation_overflow, elements
    [InlineData("[2,9223372036854775807]", "byte size")]           // test_validation_overflow, bytes
    [InlineData("[4611686018427387904]", "byte size")]             // 2^62 elements × 32 bits
    [InlineData("[9223372036854775808,4,0]", "element count")]     // overflow is checked before a later zero
    public void Rejects_shape_overflow(string shape, string what) =>
        Invalid(Build($$$"""{"test":{"dtype":"I32","shape":{{{shape}}},"data_offsets":[0,16]}}""", new byte[16]), $"tensor 'test': {what} of shape");

    [Theory]
    [InlineData("[-1,2]")]
    [InlineData("[2.0]")]
    [InlineData("[1e2]")]
    [InlineData("[18446744073709551616]")]
    [InlineData("[\"2\"]")]
    [InlineData("[null]")]
    [InlineData("[[2]]")]
    public void Rejects_shape_entries_that_are_not_non_negative_integers(string shape) =>
        Invalid(Build($$$"""{"t":{"dtype":"U8","shape":{{{shape}}},"data_offsets":[0,2]}}""", [1, 2]), "tensor 't': shape entry");

    [Fact]
    public void Rejects_unsupported_huge_dimension_of_empty_tensor() =>
        Invalid(Build("""{"t":{"dtype":"U8","shape":[18446744073709551615,0],"data_offsets":[0,0]}}"""), "not supported");

    [Theory]
    [InlineData("\"F33\"", "unknown dtype \"F33\"")]
    [InlineData("\"f32\"", "unknown dtype \"f32\"")]
    [InlineData("\"\"", "unknown dtype")]
    [InlineData("32", "dtype is a number")]
    public void Rejects_unknown_dtype(string dtype, string message) =>
        Invalid(Build($$$"""{"t":{"dtype":{{{dtype}}},"shape":[1],"data_offsets":[0,4]}}""", new byte[4]), message);

    [Theory]
    [InlineData("""{"foo":1}""", "value for key 'foo' is a number")]
    [InlineData("""{"foo":null}""", "value for key 'foo' is null")]
    [InlineData("""{"foo":["bar"]}""", "value for key 'foo' is an array")]
    [InlineData("""{"foo":"a","foo":"b"}""", "duplicate key 'foo'")]
    [InlineData("""["foo"]""", "\"__metadata__\" is an array")]
    [InlineData("\"foo\"", "\"__metadata__\" is a string")]
    public void Rejects_invalid_metadata(string metadata, string message) =>
        Invalid(Build($$$"""{"__metadata__":{{{metadata}}}}"""), message);

    [Fact]
    public void Rejects_duplicate_metadata_object() =>
        Invalid(Build("""{"__metadata__":{},"__metadata__":{}}"""), "duplicate key \"__metadata__\"");

    [Theory]
    [InlineData("""{"t":5}""", "tensor 't': entry is a number")]
    [InlineData("""{"t":{"shape":[1],"data_offsets":[0,1]}}""", "missing field \"dtype\"")]
    [InlineData("""{"t":{"dtype":"U8","data_offsets":[0,1]}}""", "missing field \"shape\"")]
    [InlineData("""{"t":{"dtype":"U8","shape":[1]}}""", "missing field \"data_offsets\"")]
    [InlineData("""{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", "duplicate field \"dtype\"")]
    [InlineData("""{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,1]}}""", "data_offsets has 3 numbers")]
    [InlineData("""{"t":{"dtype":"U8","shape":[1],"data_offsets":[0]}}""", "data_offsets has 1 numbers")]
    [InlineData("""{"t":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}""", "shape is a number")]
    [InlineData("""{"\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}""", "is not a valid string")]
    public void Rejects_malformed_entries(string header, string message) => Invalid(Build(header, [1]), message);

    // ---- fuzzing: mutations and truncations either parse or throw InvalidDataException ----------------------

    private static readonly byte[][] Seeds = MakeSeeds();

    private static byte[][] MakeSeeds()
    {
        using var ms = new MemoryStream();
        SafeTensorsWriter.Write(ms, [T("w", [2, 3], [1, 2, 3, 4, 5, 6]), T("b", [3], [7, 8, 9]), T("s", [], [10])],
            new Dictionary<string, string> { ["format"] = "pt" });
        string mixed = """{"u":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"d":{"dtype":"F64","shape":[1],"data_offsets":[3,11]},"h":{"dtype":"F16","shape":[2],"data_offsets":[11,15]},"bf":{"dtype":"BF16","shape":[1,1],"data_offsets":[15,17]},"q":{"dtype":"F4","shape":[2],"data_offsets":[17,18]},"__metadata__":{"k":"v"}}""";
        return [ms.ToArray(), Build(mixed, new byte[18])];
    }

    /// <summary>Reads, and on success reads every tensor, so the decode paths run on whatever validation let through.</summary>
    private static void ReadFully(byte[] file)
    {
        SafeTensorsFile f;
        try
        {
            f = SafeTensorsFile.Read(file);
        }
        catch (InvalidDataException)
        {
            return;
        }
        long total = 0;
        foreach (var t in f.Tensors)
        {
            Assert.Equal(t.ByteLength, f.GetBytes(t.Name).Length);
            total += t.ByteLength;
            if (t.DType.IsReadableAsFloat()) Assert.Equal(t.ElementCount, f.ReadFloats(t.Name).Length);
        }
        Assert.Equal(f.DataLength, total);
    }

    public sealed record Mutation(int Seed, (int Position, byte Value)[] Edits, int? TruncateTo);

    /// <summary>0–3 byte edits (anywhere, or in the header only) and, one time in two, a truncation, biased
    /// towards the data buffer so that files with a valid header but missing data come up often.</summary>
    private static Gen<Mutation> Mutations(bool headerOnly, byte[] alphabet) =>
        from seed in Gen.Choose(0, Seeds.Length - 1)
        let length = Seeds[seed].Length
        let dataStart = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(Seeds[seed])
        from count in Gen.Choose(headerOnly ? 1 : 0, 3)
        from edits in Gen.ArrayOf(
            from pos in Gen.Choose(headerOnly ? 8 : 0, (headerOnly ? dataStart : length) - 1)
            from value in alphabet.Length > 0 ? Gen.Elements(alphabet) : Gen.Choose(0, 255).Select(v => (byte)v)
            select (pos, value), count)
        from truncate in Gen.Frequency(
            (2, Gen.Constant<int?>(null)),
            (1, Gen.Choose(dataStart, length).Select(n => (int?)n)),
            (1, Gen.Choose(0, length).Select(n => (int?)n)))
        select new Mutation(seed, edits, truncate);

    private static void Apply(Mutation m)
    {
        byte[] file = (byte[])Seeds[m.Seed].Clone();
        foreach (var (pos, value) in m.Edits) file[pos] = value;
        ReadFully(m.TruncateTo is int n ? file[..n] : file);
    }

    [Property(MaxTest = 500)]
    public Property Random_byte_mutations_parse_or_throw_InvalidDataException() =>
        Prop.ForAll(Mutations(headerOnly: false, []).ToArbitrary(), (Mutation m) => Apply(m));

    [Property(MaxTest = 500)]
    public Property Header_mutations_with_json_characters_parse_or_throw_InvalidDataException() =>
        Prop.ForAll(Mutations(headerOnly: true, "0123456789[]{},:\"-.e \\u"u8.ToArray()).ToArbitrary(), (Mutation m) => Apply(m));

    [Fact]
    public void Every_truncation_and_every_single_byte_flip_parses_or_throws_InvalidDataException()
    {
        foreach (byte[] seed in Seeds)
        {
            for (int n = 0; n <= seed.Length; n++) ReadFully(seed[..n]);
            for (int i = 0; i < seed.Length; i++)
                foreach (byte v in new byte[] { 0, 0xFF, (byte)(seed[i] ^ 1), (byte)'9' })
                {
                    byte[] file = (byte[])seed.Clone();
                    file[i] = v;
                    ReadFully(file);
                }
        }
    }

    [Fact]
    public void Deeply_nested_unknown_field_is_rejected_cleanly()
    {
        string deep = new string('[', 10_000) + new string(']', 10_000);
        Invalid(Build($$$"""{"t":{"x":{{{deep}}},"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"""), "not valid JSON");
    }

    // ---- writer --------------------------------------------------------------------------------------------

    [Fact]
    public void Writer_validates_input_before_touching_the_file()
    {
        string path = Path.Combine(_dir, "v.safetensors");
        void Bad(string fragment, IEnumerable<(string, int[], ReadOnlyMemory<float>)> tensors, Dictionary<string, string>? meta = null)
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => SafeTensorsWriter.Write(path, tensors, meta));
            Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
            Assert.Empty(Directory.GetFiles(_dir));
        }
        Bad("expected shape [2, 3] = 6", [T("a", [2, 3], new float[5])]);
        Bad("expected shape [2, 0] = 0", [T("a", [2, 0], new float[1])]);
        Bad("expected shape [65536, 65536, 65536], over 2147483647", [T("a", [65536, 65536, 65536], new float[1])]);
        Bad("negative dimension", [T("a", [-1, -1], new float[1])]);
        Bad("Duplicate tensor name 'a'", [T("a", [1], [1f]), T("a", [1], [1f])]);
        Bad("empty name", [T("", [1], [1f])]);
        Bad("reserved", [T("__metadata__", [1], [1f])]);
        Bad("", [T("bad\ud800", [1], [1f])]);                                   // lone surrogate: not encodable
        Bad("", [T("a", [1], [1f])], new Dictionary<string, string> { ["k"] = "\udc00" });
    }

    [Fact]
    public void Shape_with_zero_and_huge_dimensions_is_accepted()
    {
        using var ms = new MemoryStream();
        SafeTensorsWriter.Write(ms, [T("z", [int.MaxValue, int.MaxValue, 0], [])]);
        var t = SafeTensorsFile.Read(ms.ToArray()).Tensors[0];
        Assert.Equal([(long)int.MaxValue, int.MaxValue, 0], t.Shape);
        Assert.Equal(0, t.ByteLength);
    }

    private sealed class Boom : Exception
    {
        public Boom() : base("boom") { }
    }

    private static IEnumerable<(string, int[], ReadOnlyMemory<float>)> ThrowsAfterFirst()
    {
        yield return T("a", [1], [1f]);
        throw new Boom();
    }

    /// <summary>Memory whose length is known but whose contents throw when read, to fail in the middle of writing.</summary>
    private sealed class ThrowingMemory(int length) : MemoryManager<float>
    {
        public Memory<float> Create() => CreateMemory(length);
        public override Span<float> GetSpan() => throw new Boom();
        public override MemoryHandle Pin(int elementIndex = 0) => throw new Boom();
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
    }

    [Fact]
    public void Failed_write_leaves_existing_file_untouched_and_no_temp_file()
    {
        string path = Path.Combine(_dir, "model.safetensors");
        SafeTensorsWriter.Write(path, [T("old", [2], [1f, 2f])]);
        byte[] before = File.ReadAllBytes(path);

        // Fails while enumerating the tensors, before any file is created.
        Assert.Throws<Boom>(() => SafeTensorsWriter.Write(path, ThrowsAfterFirst()));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_dir));

        // Fails after the temporary file holds the header and the first tensor.
        var late = new ThrowingMemory(1000).Create();
        Assert.Throws<Boom>(() => SafeTensorsWriter.Write(path, [T("first", [3], [1f, 2f, 3f]), ("late", [1000], late)]));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_dir));

        // Fails because the destination is a directory: the rename throws, the temp file is removed.
        string dirPath = Path.Combine(_dir, "sub");
        Directory.CreateDirectory(dirPath);
        Assert.ThrowsAny<IOException>(() => SafeTensorsWriter.Write(dirPath, [T("x", [1], [1f])]));
        Assert.Equal([path], Directory.GetFiles(_dir));
        Assert.Empty(Directory.GetFiles(dirPath));

        // A successful write replaces the file.
        SafeTensorsWriter.Write(path, [T("new", [1], [5f])]);
        Assert.Equal([5f], SafeTensorsFile.Read(path).ReadFloats("new"));
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    // ---- CLI -----------------------------------------------------------------------------------------------

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Commands.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void Inspect_prints_metadata_and_one_line_per_tensor()
    {
        string path = Path.Combine(_dir, "m.safetensors");
        SafeTensorsWriter.Write(path, [T("rnn.weight_ih", [2, 3], [1, -2, 3, 4, 5, 6]), T("rnn.bias", [2], [float.NaN, 0.5f])],
            new Dictionary<string, string> { ["format"] = "pt" });
        var (code, output, err) = Cli("inspect", path);
        Assert.Equal(0, code);
        Assert.Equal("", err);
        Assert.Contains("format: pt", output);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string w = Assert.Single(lines, l => l.Contains("rnn.weight_ih"));
        Assert.Contains("F32", w);
        Assert.Contains("[2, 3]", w);
        Assert.Contains("24 B", w);
        Assert.Contains("min=-2 max=6 mean=2.83333", w);
        string b = Assert.Single(lines, l => l.Contains("rnn.bias"));
        Assert.Contains("min=0.5 max=0.5 mean=0.5 nan=1", b);
    }

    [Fact]
    public void Inspect_reports_non_float_dtypes_without_summary()
    {
        string path = Path.Combine(_dir, "i.safetensors");
        File.WriteAllBytes(path, Build("""{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"foo":"bar"}}""", new byte[16]));
        var (code, output, _) = Cli("inspect", path);
        Assert.Equal(0, code);
        Assert.Contains("foo: bar", output);
        string line = Assert.Single(output.Split('\n'), l => l.Contains("test"));
        Assert.Contains("I32", line);
        Assert.Contains("[2, 2]", line);
        Assert.DoesNotContain("min=", line);
    }

    [Fact]
    public void Inspect_escapes_control_characters_from_the_file()
    {
        string path = Path.Combine(_dir, "ctl.safetensors");
        SafeTensorsWriter.Write(path, [T("a\nb\u001b[31m", [1], [1f])], new Dictionary<string, string> { ["k\r"] = "v\nw" });
        var (code, output, _) = Cli("inspect", path);
        Assert.Equal(0, code);
        Assert.DoesNotContain('\u001b', output);
        Assert.DoesNotContain('\r', output);
        Assert.Contains("a\\u000Ab\\u001B[31m", output);
        Assert.Contains("k\\u000D: v\\u000Aw", output);

        // Error messages quote names the same way, so they stay on one line.
        File.WriteAllBytes(path, Build("""{"x\ny":{"dtype":"U8","shape":[2],"data_offsets":[0,1]}}""", [1]));
        var (bad, _, err) = Cli("inspect", path);
        Assert.Equal(1, bad);
        Assert.Contains("tensor 'x\\u000Ay'", err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Inspect_fails_with_one_line_for_bad_or_missing_files()
    {
        string bad = Path.Combine(_dir, "bad.safetensors");
        File.WriteAllBytes(bad, Build("""{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,4]}}""", new byte[4]));
        var (code, output, err) = Cli("inspect", bad);
        Assert.NotEqual(0, code);
        Assert.Equal("", output);
        Assert.StartsWith("rnnsimd: Invalid safetensors file: tensor 'test'", err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        (code, _, err) = Cli("inspect", Path.Combine(_dir, "missing.safetensors"));
        Assert.NotEqual(0, code);
        Assert.StartsWith("rnnsimd: ", err);

        (code, _, err) = Cli("inspect");
        Assert.Equal(2, code);
        Assert.Contains("usage: rnnsimd inspect", err);
    }
}
