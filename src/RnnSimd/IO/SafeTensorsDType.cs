namespace RnnSimd.IO;

/// <summary>
/// The element types a safetensors file may declare, the same set as the reference implementation
/// (huggingface/safetensors, <c>safetensors/src/tensor.rs</c>, <c>enum Dtype</c>). The name each has in a
/// file is given by <see cref="SafeTensorsDTypes.ToFormatString"/>; every one is little-endian.
/// </summary>
public enum SafeTensorsDType
{
    /// <summary><c>BOOL</c>: one byte per element.</summary>
    Bool,
    /// <summary><c>F4</c>: 4-bit float (E2M1), two elements per byte.</summary>
    F4,
    /// <summary><c>F6_E2M3</c>: 6-bit float, four elements per three bytes.</summary>
    F6E2M3,
    /// <summary><c>F6_E3M2</c>: 6-bit float, four elements per three bytes.</summary>
    F6E3M2,
    /// <summary><c>U8</c>: unsigned 8-bit integer.</summary>
    U8,
    /// <summary><c>I8</c>: signed 8-bit integer.</summary>
    I8,
    /// <summary><c>F8_E5M2</c>: 8-bit float.</summary>
    F8E5M2,
    /// <summary><c>F8_E4M3</c>: 8-bit float.</summary>
    F8E4M3,
    /// <summary><c>F8_E8M0</c>: 8-bit exponent-only scale.</summary>
    F8E8M0,
    /// <summary><c>I16</c>: signed 16-bit integer.</summary>
    I16,
    /// <summary><c>U16</c>: unsigned 16-bit integer.</summary>
    U16,
    /// <summary><c>F16</c>: IEEE 754 binary16 (<see cref="Half"/>).</summary>
    F16,
    /// <summary><c>BF16</c>: bfloat16, the upper 16 bits of a binary32.</summary>
    BF16,
    /// <summary><c>I32</c>: signed 32-bit integer.</summary>
    I32,
    /// <summary><c>U32</c>: unsigned 32-bit integer.</summary>
    U32,
    /// <summary><c>F32</c>: IEEE 754 binary32 (<see cref="float"/>).</summary>
    F32,
    /// <summary><c>C64</c>: complex number of two binary32.</summary>
    C64,
    /// <summary><c>F64</c>: IEEE 754 binary64 (<see cref="double"/>).</summary>
    F64,
    /// <summary><c>I64</c>: signed 64-bit integer.</summary>
    I64,
    /// <summary><c>U64</c>: unsigned 64-bit integer.</summary>
    U64,
}

/// <summary>Names and sizes of <see cref="SafeTensorsDType"/> values.</summary>
public static class SafeTensorsDTypes
{
    /// <summary>The dtype's name as written in a safetensors header, e.g. <c>"F32"</c>, <c>"F8_E4M3"</c>.</summary>
    public static string ToFormatString(this SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.Bool => "BOOL",
        SafeTensorsDType.F4 => "F4",
        SafeTensorsDType.F6E2M3 => "F6_E2M3",
        SafeTensorsDType.F6E3M2 => "F6_E3M2",
        SafeTensorsDType.U8 => "U8",
        SafeTensorsDType.I8 => "I8",
        SafeTensorsDType.F8E5M2 => "F8_E5M2",
        SafeTensorsDType.F8E4M3 => "F8_E4M3",
        SafeTensorsDType.F8E8M0 => "F8_E8M0",
        SafeTensorsDType.I16 => "I16",
        SafeTensorsDType.U16 => "U16",
        SafeTensorsDType.F16 => "F16",
        SafeTensorsDType.BF16 => "BF16",
        SafeTensorsDType.I32 => "I32",
        SafeTensorsDType.U32 => "U32",
        SafeTensorsDType.F32 => "F32",
        SafeTensorsDType.C64 => "C64",
        SafeTensorsDType.F64 => "F64",
        SafeTensorsDType.I64 => "I64",
        SafeTensorsDType.U64 => "U64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>
    /// Bits per element: 4 for <c>F4</c>, 6 for the <c>F6</c> types, otherwise 8 × the byte size.
    /// A tensor's byte length is <c>elements × bits / 8</c>, which must be a whole number.
    /// </summary>
    public static int BitSize(this SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F4 => 4,
        SafeTensorsDType.F6E2M3 or SafeTensorsDType.F6E3M2 => 6,
        SafeTensorsDType.Bool or SafeTensorsDType.U8 or SafeTensorsDType.I8
            or SafeTensorsDType.F8E5M2 or SafeTensorsDType.F8E4M3 or SafeTensorsDType.F8E8M0 => 8,
        SafeTensorsDType.I16 or SafeTensorsDType.U16 or SafeTensorsDType.F16 or SafeTensorsDType.BF16 => 16,
        SafeTensorsDType.I32 or SafeTensorsDType.U32 or SafeTensorsDType.F32 => 32,
        SafeTensorsDType.C64 or SafeTensorsDType.F64 or SafeTensorsDType.I64 or SafeTensorsDType.U64 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Not a safetensors dtype."),
    };

    /// <summary>
    /// Whether <see cref="SafeTensorsFile.ReadFloats(string)"/> can convert the dtype to <see cref="float"/>:
    /// <c>F32</c>, <c>F64</c>, <c>F16</c> and <c>BF16</c>.
    /// </summary>
    public static bool IsReadableAsFloat(this SafeTensorsDType dtype) =>
        dtype is SafeTensorsDType.F32 or SafeTensorsDType.F64 or SafeTensorsDType.F16 or SafeTensorsDType.BF16;

    /// <summary>Parses a dtype name exactly as written in a header (case-sensitive, e.g. <c>"BF16"</c>).</summary>
    /// <returns><see langword="true"/> if <paramref name="name"/> is one of the names the format defines.</returns>
    public static bool TryParse(string name, out SafeTensorsDType dtype)
    {
        SafeTensorsDType? found = name switch
        {
            "BOOL" => SafeTensorsDType.Bool,
            "F4" => SafeTensorsDType.F4,
            "F6_E2M3" => SafeTensorsDType.F6E2M3,
            "F6_E3M2" => SafeTensorsDType.F6E3M2,
            "U8" => SafeTensorsDType.U8,
            "I8" => SafeTensorsDType.I8,
            "F8_E5M2" => SafeTensorsDType.F8E5M2,
            "F8_E4M3" => SafeTensorsDType.F8E4M3,
            "F8_E8M0" => SafeTensorsDType.F8E8M0,
            "I16" => SafeTensorsDType.I16,
            "U16" => SafeTensorsDType.U16,
            "F16" => SafeTensorsDType.F16,
            "BF16" => SafeTensorsDType.BF16,
            "I32" => SafeTensorsDType.I32,
            "U32" => SafeTensorsDType.U32,
            "F32" => SafeTensorsDType.F32,
            "C64" => SafeTensorsDType.C64,
            "F64" => SafeTensorsDType.F64,
            "I64" => SafeTensorsDType.I64,
            "U64" => SafeTensorsDType.U64,
            _ => null,
        };
        dtype = found.GetValueOrDefault();
        return found.HasValue;
    }
}
