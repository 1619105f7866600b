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
            o.WriteLine(line.TrimEnd());
        }
        return 0;
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
