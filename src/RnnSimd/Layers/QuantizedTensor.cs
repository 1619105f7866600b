using RnnSimd.Kernels;

namespace RnnSimd.Layers;

/// <summary>
/// One weight matrix (rows x cols, row-major) in a reduced precision: the form a quantized network is built from and
/// the form files hold. <see cref="Precision.Int8"/>: codes q in [-127, 127] and one scale per row (w ~ q * scale);
/// <see cref="Precision.BFloat16"/>: the bf16 bit patterns. Immutable once made (the arrays are copies).
/// </summary>
public sealed class QuantizedTensor
{
    private readonly sbyte[]? _codes;
    private readonly float[]? _scales;
    private readonly ushort[]? _bf16;

    private QuantizedTensor(string name, Precision precision, int rows, int cols, sbyte[]? codes, float[]? scales, ushort[]? bf16)
    {
        Name = name; Precision = precision; Rows = rows; Cols = cols;
        _codes = codes; _scales = scales; _bf16 = bf16;
    }

    /// <summary>The parameter's name (PyTorch's state_dict name, e.g. "weight_ih_l0").</summary>
    public string Name { get; }
    /// <summary><see cref="Precision.Int8"/> or <see cref="Precision.BFloat16"/>.</summary>
    public Precision Precision { get; }
    /// <summary>Rows (output features).</summary>
    public int Rows { get; }
    /// <summary>Columns (input features).</summary>
    public int Cols { get; }
    /// <summary>int8 codes (rows x cols), empty for bf16.</summary>
    public ReadOnlySpan<sbyte> Codes => _codes;
    /// <summary>int8 scales, one per row, empty for bf16.</summary>
    public ReadOnlySpan<float> Scales => _scales;
    /// <summary>bf16 bit patterns (rows x cols), empty for int8.</summary>
    public ReadOnlySpan<ushort> Bf16 => _bf16;
    /// <summary>Bytes of the stored form (codes and scales, or bf16 values).</summary>
    public long Bytes => Precision == Precision.Int8 ? (long)Rows * Cols + 4L * Rows : 2L * Rows * Cols;

    /// <summary>
    /// Converts float32 weights: int8 with s = max |w_row| / 127 per row and q = clamp(round_half_even(w / s), -127, 127)
    /// (a row of zeros gets s = 0); bf16 rounded to nearest even.
    /// </summary>
    /// <exception cref="ArgumentException">Float32 asked for, a shape that does not match the values, or (int8) a NaN or infinite weight, named by row and column.</exception>
    public static QuantizedTensor Quantize(string name, Precision precision, ReadOnlySpan<float> values, int rows, int cols)
    {
        ArgumentNullException.ThrowIfNull(name);
        CheckShape(name, rows, cols, values.Length, "values");
        switch (precision)
        {
            case Precision.Int8:
            {
                var q = new sbyte[values.Length];
                var s = new float[rows];
                for (int r = 0; r < rows; r++)
                {
                    var row = values.Slice(r * cols, cols);
                    float max = 0f;
                    for (int c = 0; c < cols; c++)
                    {
                        if (!float.IsFinite(row[c]))
                            throw new ArgumentException($"{name}[{r}, {c}] = {row[c]} is not finite; int8 quantization needs finite weights.", nameof(values));
                        max = Math.Max(max, Math.Abs(row[c]));
                    }
                    float scale = Int8Quantizer.ScaleFor(max);
                    s[r] = scale;
                    for (int c = 0; c < cols; c++) q[r * cols + c] = (sbyte)Int8Quantizer.Quantize(row[c], scale);
                }
                return new QuantizedTensor(name, precision, rows, cols, q, s, null);
            }
            case Precision.BFloat16:
            {
                var b = new ushort[values.Length];
                for (int i = 0; i < b.Length; i++) b[i] = PackedBf16GemvMatrix.RoundToBf16(values[i]);
                return new QuantizedTensor(name, precision, rows, cols, null, null, b);
            }
            default:
                throw new ArgumentException($"precision {precision} is not a reduced precision; expected Int8 or BFloat16.", nameof(precision));
        }
    }

    /// <summary>An int8 tensor from codes and per-row scales (e.g. read from a file); both are copied and checked.</summary>
    /// <exception cref="ArgumentException">A length does not match rows x cols / rows, a code is -128, or a scale is negative, NaN or infinite (named by index).</exception>
    public static QuantizedTensor FromInt8(string name, int rows, int cols, ReadOnlySpan<sbyte> codes, ReadOnlySpan<float> scales)
    {
        ArgumentNullException.ThrowIfNull(name);
        CheckShape(name, rows, cols, codes.Length, "codes");
        if (scales.Length != rows)
            throw new ArgumentException($"{name}: scales has {scales.Length} values, expected one per row = {rows}.", nameof(scales));
        for (int i = 0; i < codes.Length; i++)
            if (codes[i] == sbyte.MinValue)
                throw new ArgumentException($"{name}[{i / cols}, {i % cols}] = -128; symmetric int8 codes are in [-127, 127].", nameof(codes));
        for (int r = 0; r < rows; r++)
            if (!float.IsFinite(scales[r]) || scales[r] < 0)
                throw new ArgumentException($"{name}: scale of row {r} = {scales[r]}; scales must be finite and non-negative.", nameof(scales));
        return new QuantizedTensor(name, Precision.Int8, rows, cols, codes.ToArray(), scales.ToArray(), null);
    }

    /// <summary>A bf16 tensor from bit patterns (e.g. read from a file); copied.</summary>
    /// <exception cref="ArgumentException">The length does not match rows x cols.</exception>
    public static QuantizedTensor FromBf16(string name, int rows, int cols, ReadOnlySpan<ushort> bits)
    {
        ArgumentNullException.ThrowIfNull(name);
        CheckShape(name, rows, cols, bits.Length, "bits");
        return new QuantizedTensor(name, Precision.BFloat16, rows, cols, null, null, bits.ToArray());
    }

    /// <summary>Writes the float32 values this tensor stands for: q * scale (one float multiply) or the widened bf16.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is not rows x cols long.</exception>
    public void Dequantize(Span<float> destination)
    {
        if (destination.Length != Rows * Cols)
            throw new ArgumentException($"{Name}: destination has {destination.Length} floats, expected rows x cols = {Rows} x {Cols}.", nameof(destination));
        if (Precision == Precision.Int8)
        {
            for (int r = 0; r < Rows; r++)
                for (int c = 0; c < Cols; c++)
                    destination[r * Cols + c] = _codes![r * Cols + c] * _scales![r];
        }
        else
        {
            for (int i = 0; i < destination.Length; i++) destination[i] = PackedBf16GemvMatrix.ToSingle(_bf16![i]);
        }
    }

    private static void CheckShape(string name, int rows, int cols, int length, string what)
    {
        if (rows < 0 || cols < 0 || (long)rows * cols != length)
            throw new ArgumentException($"{name}: {what} has {length} values, expected rows x cols = {rows} x {cols}.", what);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} {Precision.Name()} ({Rows}, {Cols})";
}
