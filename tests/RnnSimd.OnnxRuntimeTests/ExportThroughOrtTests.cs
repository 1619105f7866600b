using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using RnnSimd.Layers;
using RnnSimd.Onnx;

namespace RnnSimd.OnnxRuntimeTests;

/// <summary>
/// Networks exported by <see cref="OnnxExport"/> run by ONNX Runtime (an independent implementation of the ONNX
/// operators) give RnnSimd's outputs: output, hn (and cn) within 1e-5 normwise (||a - e|| / ||e||; both sides compute
/// in float32 with different summation orders, so agreement is to a few float roundings, not bitwise).
/// </summary>
public class ExportThroughOrtTests
{
    public static TheoryData<string, int, bool, bool, bool> Networks()
    {
        var d = new TheoryData<string, int, bool, bool, bool>();
        foreach (var cell in new[] { "lstm", "lstm_peep", "lstm_coupled", "lstm_acts_clip", "gru", "gru_orig", "gru_acts_clip", "rnn_tanh", "rnn_relu", "rnn_sigmoid_clip" })
        {
            d.Add(cell, 1, false, false, true);
            d.Add(cell, 2, true, false, true);
            d.Add(cell, 1, false, true, true);
            d.Add(cell, 2, false, false, false);
        }
        return d;
    }

    private static RecurrentOptions Options(string cell, int layers, bool bidi, bool reverse, bool bias) => cell switch
    {
        "gru_orig" => new RecurrentOptions(CellType.Gru, 7, 12, layers, bidi, bias, GruLinearBeforeReset: false, Reverse: reverse),
        "lstm_peep" => new RecurrentOptions(CellType.Lstm, 7, 12, layers, bidi, bias, Reverse: reverse, Peepholes: true),
        "lstm_coupled" => new RecurrentOptions(CellType.Lstm, 7, 12, layers, bidi, bias, Reverse: reverse, CoupledInputForget: true),
        "lstm_acts_clip" => new RecurrentOptions(CellType.Lstm, 7, 12, layers, bidi, bias, Reverse: reverse, ActivationF: GateActivation.Tanh,
            ActivationG: GateActivation.Relu, ActivationH: GateActivation.Sigmoid, Clip: 0.6f),
        "gru_acts_clip" => new RecurrentOptions(CellType.Gru, 7, 12, layers, bidi, bias, Reverse: reverse, ActivationG: GateActivation.Relu, Clip: 0.6f),
        "rnn_sigmoid_clip" => new RecurrentOptions(CellType.RnnTanh, 7, 12, layers, bidi, bias, Reverse: reverse, ActivationF: GateActivation.Sigmoid, Clip: 0.6f),
        _ => new RecurrentOptions(RecurrentOptions.ParseCell(cell), 7, 12, layers, bidi, bias, Reverse: reverse),
    };

    private static float[] Data(int seed, int n)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    [Theory, MemberData(nameof(Networks))]
    public void Ort_runs_the_export_as_RnnSimd_does(string cell, int layers, bool bidi, bool reverse, bool bias)
    {
        var o = Options(cell, layers, bidi, reverse, bias);
        var net = new RecurrentNetwork(o, 5);
        const int T = 9, B = 3;
        int LD = layers * o.Directions, H = o.HiddenSize, I = o.InputSize;
        bool lstm = o.Cell == CellType.Lstm;
        float[] x = Data(1, T * B * I), h0 = Data(2, LD * B * H), c0 = lstm ? Data(3, LD * B * H) : [];
        float[] y = new float[T * B * o.Directions * H], hN = new float[h0.Length], cN = new float[c0.Length];
        net.Forward(x, T, B, h0, c0, y, hN, cN, net.CreateInferenceWorkspace(T, B));

        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(OnnxExport.ToBytes(net), options);
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(x, [T, B, I])),
            NamedOnnxValue.CreateFromTensor("h0", new DenseTensor<float>(h0, [LD, B, H])),
        };
        if (lstm) inputs.Add(NamedOnnxValue.CreateFromTensor("c0", new DenseTensor<float>(c0, [LD, B, H])));
        using var results = session.Run(inputs);
        var byName = results.ToDictionary(r => r.Name, r => r.AsTensor<float>());
        AssertNormwise("output", byName["output"], [T, B, o.Directions * H], y);
        AssertNormwise("hn", byName["hn"], [LD, B, H], hN);
        if (lstm) AssertNormwise("cn", byName["cn"], [LD, B, H], cN);
    }

    private static void AssertNormwise(string what, Tensor<float> ort, int[] shape, float[] expected)
    {
        Assert.Equal(shape, ort.Dimensions.ToArray());
        var a = ort.ToArray();
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { num += (a[i] - (double)expected[i]) * (a[i] - (double)expected[i]); den += (double)expected[i] * expected[i]; }
        double rel = Math.Sqrt(num / den);
        Assert.True(rel <= 1e-5, $"{what}: normwise difference {rel:E2} between ONNX Runtime and RnnSimd");
    }
}
