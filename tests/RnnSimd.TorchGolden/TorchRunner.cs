using TorchSharp;
using static TorchSharp.torch;

namespace RnnSimd.TorchGolden;

/// <summary>Everything one forward + backward produced, widened to double (exact for float32).</summary>
internal sealed class RunResult
{
    public required double[] Output { get; init; }  // (T, B, D*H)
    public required double[] HN { get; init; }      // (L*D, B, H)
    public double[]? CN { get; init; }              // (L*D, B, H), LSTM only
    public required double Loss { get; init; }
    /// <summary>"input", "h0", "c0" (LSTM) and every parameter name, in that order.</summary>
    public required List<(string Name, long[] Shape, double[] Grad)> Grads { get; init; }
}

/// <summary>Runs one case through LibTorch's own torch.nn.RNN / LSTM / GRU.</summary>
internal static class TorchRunner
{
    /// <summary>
    /// Builds the module in float32, loads the case's parameters, converts the module with
    /// <c>module.to(dtype)</c>, then runs forward on input/h0/c0 of that dtype,
    /// loss = 0.5 * sum((output - target)^2) and loss.backward().
    /// </summary>
    public static RunResult Run(GoldenCase c, CaseData data, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var module = Build(c);

        var named = module.named_parameters().ToList();
        var expectedNames = c.Parameters().Select(p => p.Name).ToList();
        if (!named.Select(p => p.name).SequenceEqual(expectedNames))
            throw new InvalidOperationException(
                $"{c.Name}: LibTorch parameter names [{string.Join(", ", named.Select(p => p.name))}] " +
                $"differ from the expected PyTorch names [{string.Join(", ", expectedNames)}]");

        using (no_grad())
        {
            foreach (var ((name, param), (_, shape, values)) in named.Zip(data.Parameters))
            {
                if (!param.shape.SequenceEqual(shape))
                    throw new InvalidOperationException($"{c.Name}: {name} has shape [{string.Join(",", param.shape)}], expected [{string.Join(",", shape)}]");
                param.copy_(tensor(values, shape));
            }
        }

        module.to(dtype);

        // The conversion must keep every parameter's value exactly (float32 -> float64 is exact).
        foreach (var ((name, param), (_, _, values)) in module.named_parameters().Zip(data.Parameters))
        {
            if (param.dtype != dtype) throw new InvalidOperationException($"{c.Name}: {name} is {param.dtype} after to({dtype})");
            var back = ToDoubles(param);
            for (int i = 0; i < back.Length; i++)
                if (back[i] != values[i]) throw new InvalidOperationException($"{c.Name}: {name}[{i}] changed in to({dtype})");
        }

        var input = Leaf(data.Input, c.InputShape, dtype);
        var h0 = Leaf(data.H0, c.StateShape, dtype);
        var c0 = data.C0 is null ? null : Leaf(data.C0, c.StateShape, dtype);
        var target = tensor(data.Target, c.OutputShape).to_type(dtype);

        Tensor output, hN;
        Tensor? cN = null;
        switch (module)
        {
            case TorchSharp.Modules.LSTM lstm:
                (output, hN, cN) = lstm.call(input, (h0, c0!));
                break;
            case TorchSharp.Modules.GRU gru:
                (output, hN) = gru.call(input, h0);
                break;
            case TorchSharp.Modules.RNN rnn:
                (output, hN) = rnn.call(input, h0);
                break;
            default:
                throw new InvalidOperationException("unreachable");
        }

        var diff = output - target;
        var loss = (diff * diff).sum() * 0.5;
        loss.backward();

        var grads = new List<(string, long[], double[])>
        {
            ("input", c.InputShape, GradOf(input, "input")),
            ("h0", c.StateShape, GradOf(h0, "h0")),
        };
        if (c0 is not null) grads.Add(("c0", c.StateShape, GradOf(c0, "c0")));
        foreach (var (name, param) in module.named_parameters())
            grads.Add((name, param.shape, GradOf(param, name)));

        return new RunResult
        {
            Output = ToDoubles(output),
            HN = ToDoubles(hN),
            CN = cN is null ? null : ToDoubles(cN),
            Loss = ToDoubles(loss)[0],
            Grads = grads,
        };
    }

    private static nn.Module Build(GoldenCase c) => c.Cell switch
    {
        "rnn_tanh" => nn.RNN(c.InputSize, c.HiddenSize, c.NumLayers, nn.NonLinearities.Tanh, c.Bias, batchFirst: false, dropout: 0, bidirectional: c.Bidirectional),
        "rnn_relu" => nn.RNN(c.InputSize, c.HiddenSize, c.NumLayers, nn.NonLinearities.ReLU, c.Bias, batchFirst: false, dropout: 0, bidirectional: c.Bidirectional),
        "lstm" => nn.LSTM(c.InputSize, c.HiddenSize, c.NumLayers, c.Bias, batchFirst: false, dropout: 0, bidirectional: c.Bidirectional),
        "gru" => nn.GRU(c.InputSize, c.HiddenSize, c.NumLayers, c.Bias, batchFirst: false, dropout: 0, bidirectional: c.Bidirectional),
        _ => throw new ArgumentException($"unknown cell '{c.Cell}'"),
    };

    private static Tensor Leaf(float[] values, long[] shape, ScalarType dtype)
    {
        var t = tensor(values, shape).to_type(dtype).detach();
        t.requires_grad = true;
        return t;
    }

    private static double[] GradOf(Tensor t, string name) =>
        ToDoubles(t.grad ?? throw new InvalidOperationException($"no gradient reached {name}"));

    private static double[] ToDoubles(Tensor t) =>
        t.detach().to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
}
