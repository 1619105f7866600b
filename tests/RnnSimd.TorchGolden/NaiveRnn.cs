namespace RnnSimd.TorchGolden;

/// <summary>
/// Independent double-precision forward pass of torch.nn.RNN / LSTM / GRU, written line by line
/// from the equations in PyTorch's documentation, used only to check that what LibTorch wrote is
/// what the case claims to be. Gate orders: LSTM i,f,g,o; GRU r,z,n with the reset gate applied
/// to (W_hn h + b_hn) ("linear before reset").
/// </summary>
internal static class NaiveRnn
{
    public static (double[] Output, double[] HN, double[]? CN) Forward(
        GoldenCase c, IReadOnlyDictionary<string, double[]> p, double[] input, double[] h0, double[]? c0)
    {
        int T = c.SeqLen, B = c.Batch, H = c.HiddenSize, D = c.Directions, G = c.Gates;
        var hN = new double[c.NumLayers * D * B * H];
        var cN = c.IsLstm ? new double[hN.Length] : null;
        double[] x = input;                       // (T, B, inSize)
        for (int l = 0; l < c.NumLayers; l++)
        {
            int inSize = l == 0 ? c.InputSize : D * H;
            var y = new double[T * B * D * H];    // (T, B, D*H)
            for (int d = 0; d < D; d++)
            {
                string sfx = $"_l{l}" + (d == 1 ? "_reverse" : "");
                double[] wIh = p["weight_ih" + sfx];   // (G*H, inSize)
                double[] wHh = p["weight_hh" + sfx];   // (G*H, H)
                double[]? bIh = c.Bias ? p["bias_ih" + sfx] : null; // (G*H)
                double[]? bHh = c.Bias ? p["bias_hh" + sfx] : null; // (G*H)
                int s0 = (l * D + d) * B * H;
                var h = h0.AsSpan(s0, B * H).ToArray();                      // (B, H)
                var cc = c0 is null ? null : c0.AsSpan(s0, B * H).ToArray(); // (B, H)
                var gi = new double[G * H];
                var gh = new double[G * H];
                for (int step = 0; step < T; step++)
                {
                    int t = d == 0 ? step : T - 1 - step;
                    for (int b = 0; b < B; b++)
                    {
                        for (int g = 0; g < G * H; g++)
                        {
                            double si = bIh?[g] ?? 0.0, sh = bHh?[g] ?? 0.0;
                            for (int k = 0; k < inSize; k++) si += wIh[g * inSize + k] * x[(t * B + b) * inSize + k];
                            for (int k = 0; k < H; k++) sh += wHh[g * H + k] * h[b * H + k];
                            gi[g] = si;
                            gh[g] = sh;
                        }
                        for (int j = 0; j < H; j++)
                        {
                            ref double hj = ref h[b * H + j];
                            switch (c.Cell)
                            {
                                case "rnn_tanh":
                                    hj = Math.Tanh(gi[j] + gh[j]);
                                    break;
                                case "rnn_relu":
                                    hj = Math.Max(0.0, gi[j] + gh[j]);
                                    break;
                                case "lstm":
                                {
                                    double i = Sigmoid(gi[j] + gh[j]);
                                    double f = Sigmoid(gi[H + j] + gh[H + j]);
                                    double gg = Math.Tanh(gi[2 * H + j] + gh[2 * H + j]);
                                    double o = Sigmoid(gi[3 * H + j] + gh[3 * H + j]);
                                    ref double cj = ref cc![b * H + j];
                                    cj = f * cj + i * gg;
                                    hj = o * Math.Tanh(cj);
                                    break;
                                }
                                case "gru":
                                {
                                    double r = Sigmoid(gi[j] + gh[j]);
                                    double z = Sigmoid(gi[H + j] + gh[H + j]);
                                    double n = Math.Tanh(gi[2 * H + j] + r * gh[2 * H + j]);
                                    hj = (1 - z) * n + z * hj;
                                    break;
                                }
                                default:
                                    throw new ArgumentException(c.Cell);
                            }
                            y[(t * B + b) * D * H + d * H + j] = hj;
                        }
                    }
                }
                h.CopyTo(hN, s0);
                cc?.CopyTo(cN!, s0);
            }
            x = y;
        }
        return (x, hN, cN);
    }

    public static double Loss(double[] output, double[] target)
    {
        double s = 0;
        for (int i = 0; i < output.Length; i++) s += (output[i] - target[i]) * (output[i] - target[i]);
        return 0.5 * s;
    }

    private static double Sigmoid(double v) => 1.0 / (1.0 + Math.Exp(-v));
}
