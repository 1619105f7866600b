using RnnSimd.Layers;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Cells;

/// <summary>
/// A <see cref="RecurrentOptions.Reverse"/> network (ONNX direction = "reverse") against the reverse direction of a
/// bidirectional network with the same weights, which the oracle and PyTorch parity tests already cover: the same
/// driver code runs both, so outputs and final states must agree bitwise, and gradients to float rounding.
/// </summary>
[Trait("Category", "Cells")]
public class ReverseNetworkTests
{
    [Theory]
    [InlineData("lstm"), InlineData("gru"), InlineData("gru_orig"), InlineData("rnn_tanh"), InlineData("rnn_relu"), InlineData("lstmp"),
     InlineData("lstm_peep"), InlineData("lstm_peep_coupled"), InlineData("lstm_onnx"), InlineData("lstm_onnx_peep_coupled"), InlineData("lstmp_onnx"),
     InlineData("gru_onnx"), InlineData("gru_orig_onnx"), InlineData("rnn_onnx")]
    public void Reverse_network_is_the_reverse_half_of_a_bidirectional_one(string cell)
    {
        var bo = RecurrentContractTests.Options(cell, 1, bidi: true);
        var ro = bo with { Bidirectional = false, Reverse = true };
        const int T = 7, B = 3;
        int I = bo.InputSize, H = bo.HiddenSize, Hout = bo.OutputHidden;
        bool lstm = bo.Cell == CellType.Lstm;
        int[] lengths = [7, 1, 4];
        foreach (var set in Sets)
        {
            var bi = new RecurrentNetwork(bo, 11, set);
            var rev = new RecurrentNetwork(ro, 0, set);
            foreach (var e in rev.Parameters.Entries)
                bi.Parameters[e.Name.Replace("_l0", "_l0_reverse")].CopyTo(rev.Parameters[e.Name]);
            rev.ParametersChanged();

            float[] x = Data(3, T * B * I), h0 = Data(4, 2 * B * Hout), c0 = lstm ? Data(5, 2 * B * H) : [];
            float[] yBi = new float[T * B * 2 * Hout], hBi = new float[2 * B * Hout], cBi = new float[lstm ? 2 * B * H : 0];
            float[] yRev = new float[T * B * Hout], hRev = new float[B * Hout], cRev = new float[lstm ? B * H : 0];
            foreach (bool record in new[] { false, true })
            {
                var wsBi = record ? bi.CreateWorkspace(T, B) : bi.CreateInferenceWorkspace(T, B);
                var wsRev = record ? rev.CreateWorkspace(T, B) : rev.CreateInferenceWorkspace(T, B);
                bi.Forward(x, T, B, h0, c0, yBi, hBi, cBi, wsBi, lengths);
                rev.Forward(x, T, B, h0.AsSpan(B * Hout), lstm ? c0.AsSpan(B * H) : [], yRev, hRev, cRev, wsRev, lengths);
                for (int r = 0; r < T * B; r++)
                    Assert.True(yRev.AsSpan(r * Hout, Hout).SequenceEqual(yBi.AsSpan(r * 2 * Hout + Hout, Hout)), $"{set} {cell} record={record}: output row {r}");
                Assert.True(hRev.AsSpan().SequenceEqual(hBi.AsSpan(B * Hout)), $"{set} {cell}: hN");
                Assert.True(cRev.AsSpan().SequenceEqual(cBi.AsSpan(lstm ? B * H : 0)), $"{set} {cell}: cN");
                if (!record) continue;

                // Backward with dL/dy only on the reverse half: the forward half's gradients are then exactly zero, and the
                // reverse half's must be the reverse network's.
                float[] dyRev = Data(6, yRev.Length), dyBi = new float[yBi.Length];
                for (int r = 0; r < T * B; r++) dyRev.AsSpan(r * Hout, Hout).CopyTo(dyBi.AsSpan(r * 2 * Hout + Hout));
                float[] dxBi = new float[x.Length], dxRev = new float[x.Length];
                bi.ZeroGradients(); rev.ZeroGradients();
                bi.Backward(wsBi, dyBi, [], [], dxBi, [], []);
                rev.Backward(wsRev, dyRev, [], [], dxRev, [], []);
                AssertClose($"{set} {cell} dx", dxRev, dxBi.Select(v => (double)v).ToArray(), _ => 1e-6, 1e-5);
                foreach (var e in rev.Gradients.Entries)
                {
                    var expected = bi.Gradients[e.Name.Replace("_l0", "_l0_reverse")].ToArray().Select(v => (double)v).ToArray();
                    AssertClose($"{set} {cell} d{e.Name}", rev.Gradients[e.Name].ToArray(), expected, _ => 1e-6, 1e-5);
                }
            }
        }
    }

    [Fact]
    public void Reverse_network_refuses_streaming_and_bidirectional()
    {
        var o = new RecurrentOptions(CellType.Lstm, 3, 4, Reverse: true);
        var net = new RecurrentNetwork(o);
        Assert.Contains("reverse", Assert.Throws<InvalidOperationException>(() => net.CreateState()).Message);
        Assert.Throws<ArgumentException>(() => new MultiStreamStepper(net, 2));
        var bad = Assert.Throws<ArgumentException>(() => new RecurrentNetwork(o with { Bidirectional = true }));
        Assert.Equal("Reverse", bad.ParamName);
    }
}
