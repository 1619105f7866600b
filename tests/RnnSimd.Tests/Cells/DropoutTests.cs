using RnnSimd.Layers;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Cells;

/// <summary>
/// Dropout between layers (<see cref="SequenceWorkspace.SetDropout"/>): the masks' values and rate, reproducibility, no
/// allocation, and refusals. The gradients through a mask are checked against the oracle in
/// <see cref="RecurrentProperties.Dropout_between_layers_matches_oracle_with_the_drawn_masks"/>.
/// </summary>
[Trait("Category", "Cells")]
public class DropoutTests
{
    private static readonly RecurrentOptions Lstm3 = new(CellType.Lstm, 8, 64, NumLayers: 3);

    private static (float[] Y, float[][] Masks) Run(RecurrentNetwork net, SequenceWorkspace ws, float[] x, int T, int B)
    {
        var o = net.Options;
        var y = new float[T * B * o.OutputHidden];
        net.Forward(x, T, B, default, default, y, default, default, ws);
        var masks = ws.Dropout > 0 ? Enumerable.Range(0, o.NumLayers - 1).Select(l => ws.DropoutMask(l).ToArray()).ToArray() : [];
        return (y, masks);
    }

    [Fact]
    public void Masks_hold_zero_or_the_inverse_keep_rate_at_the_asked_rate()
    {
        const int T = 20, B = 16; // 20 * 16 * 64 = 20,480 elements per mask
        foreach (float p in new[] { 0.1f, 0.5f, 0.8f })
        {
            var net = new RecurrentNetwork(Lstm3, 1);
            var ws = net.CreateWorkspace(T, B);
            ws.SetDropout(p, 42);
            var (_, masks) = Run(net, ws, Data(1, T * B * 8), T, B);
            Assert.Equal(2, masks.Length);
            float scale = 1f / (1f - p);
            foreach (var m in masks)
            {
                Assert.All(m, v => Assert.True(v == 0f || v == scale, $"mask value {v}, expected 0 or {scale}"));
                double dropped = m.Count(v => v == 0f) / (double)m.Length;
                // Binomial(n = 20480, p): standard deviation <= 0.0035; 6 sigma = 0.021.
                Assert.InRange(dropped, p - 0.021, p + 0.021);
            }
            Assert.NotEqual(masks[0], masks[1]);
        }
    }

    [Fact]
    public void Same_seed_gives_the_same_masks_and_outputs_and_each_forward_draws_new_masks()
    {
        const int T = 5, B = 3;
        var x = Data(2, T * B * 8);
        var a = new RecurrentNetwork(Lstm3, 3);
        var wa = a.CreateWorkspace(T, B);
        wa.SetDropout(0.3f, 7);
        var first = Run(a, wa, x, T, B);
        var second = Run(a, wa, x, T, B);
        Assert.NotEqual(first.Masks[0], second.Masks[0]);
        var b = new RecurrentNetwork(Lstm3, 3);
        var wb = b.CreateWorkspace(T, B);
        wb.SetDropout(0.3f, 7);
        var again = Run(b, wb, x, T, B);
        AssertBitwiseEqual("output, same seed", first.Y, again.Y);
        AssertBitwiseEqual("mask 1, same seed", first.Masks[1], again.Masks[1]);
        // p = 0 turns it off: the output is the plain network's, bitwise.
        wb.SetDropout(0f, 7);
        var plain = new float[T * B * 64];
        b.Forward(x, T, B, default, default, plain, default, default, b.CreateInferenceWorkspace(T, B));
        AssertBitwiseEqual("p = 0", plain, Run(b, wb, x, T, B).Y);
    }

    [Fact]
    public void Forward_and_backward_with_dropout_allocate_nothing_after_warm_up()
    {
        const int T = 6, B = 4;
        var net = new RecurrentNetwork(Lstm3, 5);
        var ws = net.CreateWorkspace(T, B);
        ws.SetDropout(0.25f, 1);
        var x = Data(3, T * B * 8);
        var y = new float[T * B * 64];
        var dy = Data(4, y.Length);
        int generation = ws.Generation;
        long[] windows = SteadyStateAllocations(() =>
        {
            ws.SetDropout(0f, 3);  // evaluation between steps turns it off...
            net.Forward(x, T, B, default, default, y, default, default, ws);
            ws.SetDropout(0.25f, 4); // ...and on again: the buffers stay
            net.Forward(x, T, B, default, default, y, default, default, ws);
            net.Backward(ws, dy, default, default, default, default, default);
        }, 5);
        Assert.True(windows[^1] == 0, $"{string.Join(", ", windows)} bytes in windows of 5 steps");
        Assert.Equal(generation, ws.Generation);
    }

    [Fact]
    public void Bad_dropout_settings_are_refused_by_name()
    {
        var net = new RecurrentNetwork(Lstm3, 1);
        var ws = net.CreateWorkspace(2, 1);
        Assert.Equal("p", Assert.Throws<ArgumentOutOfRangeException>(() => ws.SetDropout(1f, 0)).ParamName);
        Assert.Equal("p", Assert.Throws<ArgumentOutOfRangeException>(() => ws.SetDropout(-0.1f, 0)).ParamName);
        Assert.Equal("p", Assert.Throws<ArgumentOutOfRangeException>(() => ws.SetDropout(float.NaN, 0)).ParamName);
        var e = Assert.Throws<InvalidOperationException>(() => net.CreateInferenceWorkspace(2, 1).SetDropout(0.5f, 0));
        Assert.Contains("inference", e.Message);
        ws.SetDropout(0.5f, 0);
        Assert.Throws<InvalidOperationException>(() => ws.DropoutMask(0)); // nothing recorded yet
        net.Forward(new float[2 * 8], 2, 1, default, default, new float[2 * 64], default, default, ws);
        Assert.Equal("layer", Assert.Throws<ArgumentOutOfRangeException>(() => ws.DropoutMask(2)).ParamName);
    }
}
