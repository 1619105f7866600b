using System.Globalization;
using System.Text;
using RnnSimd.IO;

namespace RnnSimd.Cli;

/// <summary><c>rnnsimd inspect FILE.safetensors</c>: metadata, then one line per tensor; <c>FILE.onnx</c>: <see cref="RnnSimd.Onnx.OnnxModel.Inspect"/>.</summary>
internal static class InspectCommand
{
    public const string Usage = "usage: rnnsimd inspect FILE.safetensors|FILE.onnx";

    public static int Run(ReadOnlySpan<string> args, TextWriter o, TextWriter error)
    {
        if (args.Length != 1)
        {
            error.WriteLine($"rnnsimd: {Usage}");
            return 2;
        }
        string path = args[0];
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            foreach (var line in RnnSimd.Onnx.OnnxModel.Inspect(path).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                o.WriteLine(Printable(line.TrimEnd('\r')));
            return 0;
        }
        var file = SafeTensorsFile.Read(path); // InvalidDataException / IOException are reported by Commands.Run

        o.WriteLine($"{path}: {file.DataStart + file.DataLength} bytes (header {file.HeaderLength}, data {file.DataLength}), {file.Tensors.Count} tensors");
        if (file.Metadata.Count > 0)
        {
            o.WriteLine("metadata:");
            foreach (var (key, value) in file.Metadata) o.WriteLine($"  {Printable(key)}: {Printable(value)}");
        }
        if (file.Metadata.TryGetValue(StateDict.PrecisionKey, out var precision))
            o.WriteLine($"precision: {Printable(precision)}" + precision switch
            {
                "int8" => $" (weight matrices I8 (rows, cols) in [-127, 127], each with per-row F32 scales '<name>{StateDict.ScaleSuffix}' (rows): w = q * scale; the rest F32)",
                "bf16" => " (weight matrices BF16 (rows, cols); the rest F32)",
                _ => "",
            });
        if (file.Tensors.Count == 0) return 0;

        // Columns line up for names and shapes up to 60 characters; longer ones just push their line wider.
        int nameWidth = Math.Min(60, file.Tensors.Max(t => Printable(t.Name).Length));
        int shapeWidth = Math.Min(60, file.Tensors.Max(t => t.ShapeString.Length));
        o.WriteLine("tensors:");
        foreach (var t in file.Tensors)
        {
            string line = $"  {Printable(t.Name).PadRight(nameWidth)}  {t.DType.ToFormatString(),-7}  {t.ShapeString.PadRight(shapeWidth)}  {t.ByteLength,10} B";
            if (t.DType.IsReadableAsFloat() && t.ElementCount > 0)
                line += "  " + Summary(file.ReadFloats(t.Name));
            else if (t.DType == SafeTensorsDType.I8 && t.ElementCount > 0)
                line += "  " + CodeSummary(file.GetBytes(t.Name).Span);
            o.WriteLine(line.TrimEnd());
        }
        o.WriteLine("bytes by dtype: " + string.Join(", ", file.Tensors.GroupBy(t => t.DType).OrderBy(g => g.Key)
            .Select(g => string.Create(CultureInfo.InvariantCulture, $"{g.Key.ToFormatString()} {g.Sum(t => t.ByteLength):N0} in {g.Count()} tensor(s)"))));
        var scales = file.Tensors.Where(t => t.Name.EndsWith(StateDict.ScaleSuffix, StringComparison.Ordinal) && t.DType.IsReadableAsFloat()
            && file.TryGetTensor(t.Name[..^StateDict.ScaleSuffix.Length], out var m) && m.DType == SafeTensorsDType.I8).ToList();
        if (scales.Count > 0)
            o.WriteLine($"int8 scales: {scales.Sum(t => t.ElementCount)} rows in {scales.Count} matrices, "
                + Summary(scales.SelectMany(t => file.ReadFloats(t.Name)).ToArray()));
        return 0;
    }

    /// <summary>min / max of int8 codes and how many are -128 (outside the symmetric range RnnSimd writes).</summary>
    private static string CodeSummary(ReadOnlySpan<byte> bytes)
    {
        var codes = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(bytes);
        int min = sbyte.MaxValue, max = sbyte.MinValue, outside = 0;
        foreach (sbyte c in codes)
        {
            min = Math.Min(min, c);
            max = Math.Max(max, c);
            if (c == sbyte.MinValue) outside++;
        }
        return $"codes min={min} max={max}" + (outside > 0 ? $" (-128: {outside})" : "");
    }

    /// <summary>Names and metadata come from the file: escape control characters so that a hostile file cannot
    /// break lines or send terminal escape sequences.</summary>
    private static string Printable(string s)
    {
        if (!s.Any(char.IsControl)) return s;
        var sb = new StringBuilder(s.Length + 16);
        foreach (char c in s)
        {
            if (char.IsControl(c)) sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>min / max / mean over the non-NaN values (mean accumulated in double), and the NaN count if any.</summary>
    private static string Summary(float[] values)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        double sum = 0;
        int nan = 0;
        foreach (float v in values)
        {
            if (float.IsNaN(v)) { nan++; continue; }
            min = Math.Min(min, v);
            max = Math.Max(max, v);
            sum += v;
        }
        if (nan == values.Length) return $"all {nan} values NaN";
        string s = string.Create(CultureInfo.InvariantCulture,
            $"min={min:G6} max={max:G6} mean={sum / (values.Length - nan):G6}");
        return nan > 0 ? s + $" nan={nan}" : s;
    }
}
