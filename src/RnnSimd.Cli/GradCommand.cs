using RnnSimd.IO;
using RnnSimd.Layers;

namespace RnnSimd.Cli;

/// <summary>
/// rnnsimd grad --case CASE.safetensors --out RESULT.safetensors: the PyTorch parity tool. Runs forward and full BPTT
/// of loss = 0.5 * sum (output - target)^2 and writes output, h_n, c_n, loss, grad.input, grad.h0, grad.c0 and
/// grad.&lt;parameter&gt; as F32.
/// </summary>
internal static class GradCommand
{
    public static int Run(ReadOnlySpan<string> args, TextWriter output, TextWriter error)
    {
        string? casePath = null, outPath = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--case" when i + 1 < args.Length: casePath = args[++i]; break;
                case "--out" when i + 1 < args.Length: outPath = args[++i]; break;
                default:
                    error.WriteLine($"rnnsimd grad: unexpected argument '{args[i]}'. usage: rnnsimd grad --case CASE.safetensors --out RESULT.safetensors");
                    return 2;
            }
        }
        if (casePath is null || outPath is null)
        {
            error.WriteLine("rnnsimd grad: usage: rnnsimd grad --case CASE.safetensors --out RESULT.safetensors");
            return 2;
        }
        List<(string Name, int[] Shape, float[] Data)> result;
        try { result = Compute(SafeTensorsFile.Read(casePath)); }
        catch (InvalidDataException e) when (!e.Message.Contains(casePath, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{casePath}: {e.Message}", e);   // every message names the file
        }
        SafeTensorsWriter.Write(outPath, result.Select(r => (r.Name, r.Shape, (ReadOnlyMemory<float>)r.Data)));
        output.WriteLine($"wrote {result.Count} tensors to {outPath} (loss {result.First(r => r.Name == "loss").Data[0]:R})");
        return 0;
    }

    /// <summary>Runs a CASE file: returns (name, shape, data) of every result tensor.</summary>
    /// <exception cref="InvalidDataException">The case lacks a tensor or metadata, or a shape is inconsistent.</exception>
    public static List<(string Name, int[] Shape, float[] Data)> Compute(SafeTensorsFile file, Kernels.KernelSet? kernels = null)
    {
        var o = StateDict.ReadOptions(file.Metadata);
        StateDict.CheckHolds(file, o);
        var net = new RecurrentNetwork(o, 0, kernels);
        StateDict.Load(net, file);
        int L = o.NumLayers, D = o.Directions, H = o.HiddenSize, Hout = o.OutputHidden;
        var input = file.TryGetTensor("input", out var it) ? it : throw new InvalidDataException("the case has no 'input' tensor (T, B, I).");
        if (input.Shape.Count != 3 || input.Shape[2] != o.InputSize || input.Shape[0] is < 1 or > int.MaxValue || input.Shape[1] is < 1 or > int.MaxValue
            || (decimal)input.Shape[0] * input.Shape[1] * Math.Max(o.InputSize, o.Directions * o.OutputHidden) > int.MaxValue)
            throw new InvalidDataException($"'input' has shape {input.ShapeString}, expected (T, B, {o.InputSize}) with T >= 1, B >= 1 and T*B*max(I, D*Hout) below 2^31.");
        int T = (int)input.Shape[0], B = (int)input.Shape[1];
        float[] Need(string name, params int[] shape)
        {
            if (!file.TryGetTensor(name, out var t)) throw new InvalidDataException($"the case has no '{name}' tensor, expected shape ({string.Join(", ", shape)}).");
            if (!t.Shape.SequenceEqual(shape.Select(d => (long)d)))
                throw new InvalidDataException($"'{name}' has shape {t.ShapeString}, expected ({string.Join(", ", shape)}).");
            return file.ReadFloats(name);
        }
        float[] x = Need("input", T, B, o.InputSize);
        float[] h0 = Need("h0", L * D, B, Hout);
        float[] c0 = o.Cell == CellType.Lstm ? Need("c0", L * D, B, H) : [];
        float[] target = Need("target", T, B, D * Hout);

        var ws = net.CreateWorkspace(T, B);
        float[] y = new float[T * B * D * Hout], hN = new float[L * D * B * Hout], cN = new float[c0.Length];
        net.Forward(x, T, B, h0, c0, y, hN, cN, ws);
        double loss = 0;
        var dy = new float[y.Length];
        for (int i = 0; i < y.Length; i++)
        {
            double diff = (double)y[i] - target[i];
            loss += 0.5 * diff * diff;
            dy[i] = (float)diff;
        }
        float[] dx = new float[x.Length], dh0 = new float[h0.Length], dc0 = new float[c0.Length];
        net.ZeroGradients();
        net.Backward(ws, dy, [], [], dx, dh0, dc0);

        var result = new List<(string, int[], float[])>
        {
            ("output", [T, B, D * Hout], y),
            ("h_n", [L * D, B, Hout], hN),
        };
        if (o.Cell == CellType.Lstm) result.Add(("c_n", [L * D, B, H], cN));
        result.Add(("loss", [1], [(float)loss]));
        result.Add(("grad.input", [T, B, o.InputSize], dx));
        result.Add(("grad.h0", [L * D, B, Hout], dh0));
        if (o.Cell == CellType.Lstm) result.Add(("grad.c0", [L * D, B, H], dc0));
        foreach (var e in net.Gradients.Entries) result.Add(("grad." + e.Name, e.Shape, net.Gradients.View(e).ToArray()));
        return result;
    }
}
