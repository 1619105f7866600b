namespace RnnSimd.TorchGolden;

/// <summary>Assembles one case's safetensors file (the CASE format described in tests/data/torch/README.md).</summary>
internal static class CaseFile
{
    public static byte[] Build(GoldenCase c, CaseData data, RunResult r32, RunResult r64, string generator)
    {
        var w = new SafeTensorsWriter();
        w.Metadata("cell", c.Cell);
        w.Metadata("input_size", c.InputSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.Metadata("hidden_size", c.HiddenSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.Metadata("num_layers", c.NumLayers.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.Metadata("bidirectional", c.Bidirectional ? "true" : "false");
        w.Metadata("bias", c.Bias ? "true" : "false");
        w.Metadata("seq_len", c.SeqLen.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.Metadata("batch", c.Batch.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.Metadata("batch_first", "false");
        w.Metadata("loss", "0.5 * sum((output - target)^2)");
        w.Metadata("generator", generator);

        // state_dict, under PyTorch's names, float32 (the values both runs used)
        foreach (var (name, shape, values) in data.Parameters) w.AddF32(name, shape, values);
        w.AddF32("input", c.InputShape, data.Input);
        w.AddF32("h0", c.StateShape, data.H0);
        if (data.C0 is not null) w.AddF32("c0", c.StateShape, data.C0);
        w.AddF32("target", c.OutputShape, data.Target);

        // expected.*: float64 run; torch32.*: float32 run (exactly representable in float32).
        foreach (var (prefix, r, f32) in new[] { ("expected", r64, false), ("torch32", r32, true) })
        {
            void Put(string name, long[] shape, double[] v)
            {
                if (f32) w.AddF32($"{prefix}.{name}", shape, Narrow(v));
                else w.AddF64($"{prefix}.{name}", shape, v);
            }
            Put("output", c.OutputShape, r.Output);
            Put("h_n", c.StateShape, r.HN);
            if (r.CN is not null) Put("c_n", c.StateShape, r.CN);
            Put("loss", [1], [r.Loss]);
            foreach (var (name, shape, grad) in r.Grads) Put("grad." + name, shape, grad);
        }
        return w.ToBytes();
    }

    private static float[] Narrow(double[] v)
    {
        var f = new float[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            f[i] = (float)v[i];
            if (f[i] != v[i]) throw new InvalidOperationException("a float32 result was not exactly representable in float32");
        }
        return f;
    }
}
