namespace RnnSimd.Layers;

/// <summary>How an inference network stores its weight matrices (<see cref="RecurrentNetwork.ToInference"/>).</summary>
/// <remarks>
/// Only the matrices W_ih, W_hh (and W_hr) change form. Biases, peepholes, the cell state, the activations and every
/// gate stay float32 in every precision.
/// </remarks>
public enum Precision
{
    /// <summary>float32 weights: the training form, and the reference the other two are measured against.</summary>
    Float32 = 0,

    /// <summary>
    /// bfloat16 weights (round to nearest even at conversion; 2 bytes each), widened exactly to float32 and multiplied
    /// with float32 inputs and float32 FMA accumulation: every product is bitwise the float32 product of the rounded
    /// weights, at every kernel set.
    /// </summary>
    BFloat16 = 1,

    /// <summary>
    /// int8 weights (1 byte each), symmetric, one float32 scale per output row of W_ih and one of W_hh (of W_hr); the
    /// step's x and h are quantized to int8 at every step, each with its own scale (max |v| / 127, round half even);
    /// products accumulate exactly in int32 and are dequantized in float32. Bitwise identical at every kernel set.
    /// </summary>
    Int8 = 2,
}

/// <summary>Names of <see cref="Precision"/> as files and the command line write them.</summary>
public static class PrecisionNames
{
    /// <summary>"float32", "bf16" or "int8".</summary>
    public static string Name(this Precision precision) => precision switch
    {
        Precision.Float32 => "float32",
        Precision.BFloat16 => "bf16",
        Precision.Int8 => "int8",
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "unknown precision."),
    };

    /// <summary>Parses "float32" (or "f32", "fp32"), "bf16" (or "bfloat16"), "int8" (or "i8"), any case.</summary>
    /// <exception cref="ArgumentException">Another word.</exception>
    public static Precision Parse(string text, string argumentName = "precision") => text?.Trim().ToLowerInvariant() switch
    {
        "float32" or "f32" or "fp32" => Precision.Float32,
        "bf16" or "bfloat16" => Precision.BFloat16,
        "int8" or "i8" => Precision.Int8,
        _ => throw new ArgumentException($"{argumentName} '{text}' is not a precision; expected float32, bf16 or int8.", argumentName),
    };
}
