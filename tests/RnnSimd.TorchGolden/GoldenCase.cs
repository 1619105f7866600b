namespace RnnSimd.TorchGolden;

/// <summary>One golden case: a torch.nn recurrent module's configuration and the data shapes.</summary>
/// <param name="Cell">rnn_tanh | rnn_relu | lstm | gru (PyTorch's mode names).</param>
internal sealed record GoldenCase(string Cell, int NumLayers, bool Bidirectional, bool Bias, int SeqLen, int Batch, int InputSize, int HiddenSize)
{
    public int Directions => Bidirectional ? 2 : 1;

    /// <summary>Rows per gate block in weight_ih/weight_hh: PyTorch stacks the gates (LSTM i,f,g,o; GRU r,z,n).</summary>
    public int Gates => Cell switch
    {
        "rnn_tanh" or "rnn_relu" => 1,
        "lstm" => 4,
        "gru" => 3,
        _ => throw new ArgumentException($"unknown cell '{Cell}'"),
    };

    public bool IsLstm => Cell == "lstm";

    public string Name =>
        $"{Cell}_L{NumLayers}_{(Bidirectional ? "bi" : "uni")}_{(Bias ? "bias" : "nobias")}_T{SeqLen}_B{Batch}_I{InputSize}_H{HiddenSize}";

    public long[] InputShape => [SeqLen, Batch, InputSize];             // (T, B, I)
    public long[] StateShape => [NumLayers * Directions, Batch, HiddenSize]; // (L*D, B, H)
    public long[] OutputShape => [SeqLen, Batch, Directions * HiddenSize];   // (T, B, D*H)

    /// <summary>The state_dict in PyTorch's order and names: per layer, per direction, w_ih, w_hh, b_ih, b_hh.</summary>
    public IReadOnlyList<(string Name, long[] Shape)> Parameters()
    {
        var list = new List<(string, long[])>();
        for (int l = 0; l < NumLayers; l++)
        {
            long inSize = l == 0 ? InputSize : Directions * HiddenSize;
            for (int d = 0; d < Directions; d++)
            {
                string sfx = $"_l{l}" + (d == 1 ? "_reverse" : "");
                list.Add(("weight_ih" + sfx, [Gates * HiddenSize, inSize]));
                list.Add(("weight_hh" + sfx, [Gates * HiddenSize, HiddenSize]));
                if (Bias)
                {
                    list.Add(("bias_ih" + sfx, [Gates * HiddenSize]));
                    list.Add(("bias_hh" + sfx, [Gates * HiddenSize]));
                }
            }
        }
        return list;
    }

    public static long Count(long[] shape)
    {
        long n = 1;
        foreach (long d in shape) n *= d;
        return n;
    }
}

/// <summary>The float32 values every run of a case starts from (the float64 run uses them widened exactly).</summary>
internal sealed class CaseData
{
    public required List<(string Name, long[] Shape, float[] Values)> Parameters { get; init; }
    public required float[] Input { get; init; }   // (T, B, I)
    public required float[] H0 { get; init; }      // (L*D, B, H)
    public float[]? C0 { get; init; }              // (L*D, B, H), LSTM only
    public required float[] Target { get; init; }  // (T, B, D*H)

    /// <summary>
    /// Seeded from the case name. Parameters ~ U(-1/sqrt(H), 1/sqrt(H)) like PyTorch's default init;
    /// input, h0, c0 and target ~ U(-1, 1), so that every term of every equation is exercised.
    /// </summary>
    public static CaseData Make(GoldenCase c)
    {
        var rng = new SplitMix64(SplitMix64.SeedOf(c.Name));
        float k = (float)(1.0 / Math.Sqrt(c.HiddenSize));
        var ps = c.Parameters().Select(p => (p.Name, p.Shape, rng.Uniform((int)GoldenCase.Count(p.Shape), k))).ToList();
        return new CaseData
        {
            Parameters = ps,
            Input = rng.Uniform((int)GoldenCase.Count(c.InputShape), 1f),
            H0 = rng.Uniform((int)GoldenCase.Count(c.StateShape), 1f),
            C0 = c.IsLstm ? rng.Uniform((int)GoldenCase.Count(c.StateShape), 1f) : null,
            Target = rng.Uniform((int)GoldenCase.Count(c.OutputShape), 1f),
        };
    }
}
