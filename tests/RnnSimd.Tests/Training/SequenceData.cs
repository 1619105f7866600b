using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using RnnSimd.Training;

namespace RnnSimd.Tests.Training;

/// <summary>
/// Sequence datasets for the tests: safetensors files written by hand (header JSON and little-endian bytes, nothing of
/// the library's writer) and small synthetic tasks whose answers are known.
/// </summary>
internal static class SequenceData
{
    /// <summary>One tensor of a hand-written safetensors file.</summary>
    public sealed record Tensor(string Name, string DType, long[] Shape, byte[] Data);

    public static Tensor F32(string name, float[] values, params long[] shape)
    {
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), values[i]);
        return new Tensor(name, "F32", shape, b);
    }

    public static Tensor I64(string name, long[] values, params long[] shape)
    {
        var b = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(8 * i), values[i]);
        return new Tensor(name, "I64", shape, b);
    }

    public static Tensor I32(string name, int[] values, params long[] shape)
    {
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4 * i), values[i]);
        return new Tensor(name, "I32", shape, b);
    }

    public static Tensor U8(string name, byte[] values, params long[] shape) => new(name, "U8", shape, values);

    /// <summary>The bytes of a safetensors file holding <paramref name="tensors"/> in order.</summary>
    public static byte[] Build(params Tensor[] tensors)
    {
        var json = new StringBuilder("{");
        long offset = 0;
        foreach (var t in tensors)
        {
            if (json.Length > 1) json.Append(',');
            json.Append(CultureInfo.InvariantCulture,
                $"\"{t.Name}\":{{\"dtype\":\"{t.DType}\",\"shape\":[{string.Join(",", t.Shape)}],\"data_offsets\":[{offset},{offset + t.Data.Length}]}}");
            offset += t.Data.Length;
        }
        json.Append('}');
        byte[] header = Encoding.UTF8.GetBytes(json.ToString());
        var file = new byte[8 + header.Length + offset];
        BinaryPrimitives.WriteInt64LittleEndian(file, header.Length);
        header.CopyTo(file, 8);
        long at = 8 + header.Length;
        foreach (var t in tensors) { t.Data.CopyTo(file, at); at += t.Data.Length; }
        return file;
    }

    public static string Write(string dir, string name, params Tensor[] tensors)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, Build(tensors));
        return path;
    }

    /// <summary>
    /// Per-step regression, a delayed copy: x_t ~ U(-1, 1) (I = 1), target y_t = x_{t-2} (0 for t &lt; 2). Predicting the
    /// mean scores about (T-2)/T * 1/3; a recurrent network that remembers two steps scores near 0. With lengths, each
    /// sequence has 4..T valid steps, and the padding holds values (10) no valid step could see.
    /// </summary>
    public static (float[] X, float[] Y, int[] Lengths) Delay(int n, int T, int seed, bool lengths)
    {
        var rng = new Random(seed);
        float[] x = new float[n * T], y = new float[n * T];
        int[] len = lengths ? new int[n] : [];
        for (int s = 0; s < n; s++)
        {
            int valid = lengths ? 4 + rng.Next(T - 3) : T;
            if (lengths) len[s] = valid;
            for (int t = 0; t < T; t++) x[s * T + t] = t < valid ? (float)(rng.NextDouble() * 2 - 1) : 10f;
            for (int t = 2; t < T; t++) y[s * T + t] = t < valid ? x[s * T + t - 2] : -10f;
        }
        return (x, y, len);
    }

    /// <summary>
    /// Per-sequence classification with lengths: I = 2 (a signal in U(-1, 1) and a distractor), 3..T valid steps, class
    /// 1 when the signal's sum over the valid steps is positive, else 0; the padding holds a large signal (+5) that would
    /// flip most labels if it were read. The majority class is right about half the time.
    /// </summary>
    public static (float[] X, int[] Y, int[] Lengths) SignOfSum(int n, int T, int seed)
    {
        var rng = new Random(seed);
        float[] x = new float[n * T * 2];
        int[] y = new int[n], len = new int[n];
        for (int s = 0; s < n; s++)
        {
            len[s] = 3 + rng.Next(T - 2);
            double sum = 0;
            for (int t = 0; t < T; t++)
            {
                float v = t < len[s] ? (float)(rng.NextDouble() * 2 - 1) : 5f;
                x[(s * T + t) * 2] = v;
                x[(s * T + t) * 2 + 1] = (float)(rng.NextDouble() * 2 - 1);
                if (t < len[s]) sum += v;
            }
            y[s] = sum > 0 ? 1 : 0;
        }
        return (x, y, len);
    }

    /// <summary>Random data of every target form: N sequences, T steps, I inputs, O outputs or classes.</summary>
    public static SequenceDataset Random(SequenceTargetKind kind, bool perStep, bool lengths, int n, int T, int I, int O, int seed)
    {
        var rng = new Random(seed);
        float[] x = Enumerable.Range(0, n * T * I).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        int[] len = lengths ? Enumerable.Range(0, n).Select(_ => 1 + rng.Next(T)).ToArray() : [];
        int targets = perStep ? n * T : n;
        if (kind == SequenceTargetKind.Regression)
        {
            float[] y = Enumerable.Range(0, targets * O).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            return SequenceDataset.ForRegression(x, y, n, T, I, O, perStep, len);
        }
        int[] c = Enumerable.Range(0, targets).Select(i => i < O ? i : rng.Next(O)).ToArray(); // every class occurs
        return SequenceDataset.ForClassification(x, c, n, T, I, O, perStep, len);
    }
}
