using RnnSimd.Layers;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Cells;

/// <summary>The multi-stream stepper against per-stream steps, and data-parallel gradients against one arena.</summary>
[Trait("Category", "Cells")]
public class MultiStreamTests
{
    public static TheoryData<string> Cells() => new(["lstm", "lstmp", "lstm_peep", "lstm_peep_coupled", "gru", "gru_orig", "rnn_tanh", "rnn_relu",
        "lstm_onnx", "lstmp_onnx", "lstm_onnx_peep_coupled", "gru_onnx", "gru_orig_onnx", "rnn_onnx"]);

    private static RecurrentOptions Options(string cell) => RecurrentContractTests.Options(cell, 2, input: 17, hidden: 33);

    /// <summary>N batch-1 states at different positions: stream n has taken n + 1 single steps of its own inputs.</summary>
    private static RecurrentState[] Streams(RecurrentNetwork net, int count, int seed)
    {
        var o = net.Options;
        var y = new float[o.OutputHidden];
        return Enumerable.Range(0, count).Select(n =>
        {
            var s = net.CreateState();
            for (int k = 0; k <= n; k++) net.Step(s, Data(seed + 31 * n + k, o.InputSize), y);
            return s;
        }).ToArray();
    }

    private static float[] Snapshot(RecurrentState s)
    {
        int L = s.Owner.Options.NumLayers;
        return Enumerable.Range(0, L).SelectMany(l => s.Hidden(l).ToArray().Concat(s.Cell(l).ToArray())).ToArray();
    }

    [Theory, MemberData(nameof(Cells))]
    public void A_tick_equals_a_batched_step_bitwise_and_each_stream_step_within_float_roundings(string cell)
    {
        foreach (var set in Sets)
        {
            var o = Options(cell);
            var net = new RecurrentNetwork(o, 9, set);
            const int N = 5, Ticks = 6;
            int I = o.InputSize, Hout = o.OutputHidden, H = o.HiddenSize, L = o.NumLayers;
            var ticked = Streams(net, N, 1);
            var single = Streams(net, N, 1);
            // The same N streams as the rows of one batch-N state.
            var batched = net.CreateState(N);
            for (int n = 0; n < N; n++)
                for (int l = 0; l < L; l++)
                {
                    single[n].Hidden(l).CopyTo(batched.Hidden(l).Slice(n * Hout, Hout));
                    single[n].Cell(l).CopyTo(batched.Cell(l).Slice(n * H, H));
                }
            var stepper = new MultiStreamStepper(net, N);
            float[] y = new float[N * Hout], yBatched = new float[N * Hout], yOne = new float[Hout];
            for (int t = 0; t < Ticks; t++)
            {
                float[] x = Data(1000 + t, N * I);
                stepper.Step(ticked, x, y);
                net.Step(batched, x, yBatched);
                AssertBitwiseEqual($"{set} {cell} tick {t} vs batched Step", yBatched, y);
                for (int n = 0; n < N; n++)
                {
                    net.Step(single[n], x.AsSpan(n * I, I), yOne);
                    // Step at batch 1 sums [x | h] [W_ih | W_hh]^T in one GEMV; a tick sums x W_ih^T and h W_hh^T in two
                    // GEMMs: the same products in another order, a few float roundings apart per step (the bound of
                    // RecurrentContractTests' streaming-vs-sequence test, over as many steps).
                    AssertClose($"{set} {cell} tick {t} stream {n}", y.AsSpan(n * Hout, Hout), yOne.Select(v => (double)v).ToArray(), _ => 2e-6, 2e-5);
                }
            }
            for (int n = 0; n < N; n++)
                for (int l = 0; l < L; l++)
                {
                    AssertBitwiseEqual($"{set} {cell} stream {n} h{l}", batched.Hidden(l).Slice(n * Hout, Hout), ticked[n].Hidden(l));
                    AssertBitwiseEqual($"{set} {cell} stream {n} c{l}", batched.Cell(l).Slice(n * H, H), ticked[n].Cell(l));
                }
        }
    }

    /// <summary>
    /// Streams join, leave, are reset and reordered between ticks: each stream's result depends only on its own state and
    /// input, bitwise, whatever else is in the tick (checked against the same stream ticked alone).
    /// </summary>
    [Theory, MemberData(nameof(Cells))]
    public void Streams_join_leave_and_reset_between_ticks(string cell)
    {
        foreach (var set in Sets)
        {
            var o = Options(cell);
            var net = new RecurrentNetwork(o, 4, set);
            int I = o.InputSize, Hout = o.OutputHidden;
            var streams = Streams(net, 6, 2);
            var twins = Streams(net, 6, 2);    // the same streams, each ticked on its own
            var stepper = new MultiStreamStepper(net, 2);  // grows, once per larger tick (3, 4, 6 streams)
            var alone = new MultiStreamStepper(net, 1);
            int[][] ticks = [[0, 1, 2], [2, 3], [5, 0, 3, 2], [4], [1, 2, 3, 4, 5, 0]];
            for (int t = 0; t < ticks.Length; t++)
            {
                if (t == 3) { streams[2].Reset(); twins[2].Reset(); }
                int[] ids = ticks[t];
                var members = ids.Select(i => streams[i]).ToArray();
                float[] x = Data(500 + t, ids.Length * I), y = new float[ids.Length * Hout], yOne = new float[Hout];
                stepper.Step(members, x, y);
                for (int k = 0; k < ids.Length; k++)
                {
                    alone.Step([twins[ids[k]]], x.AsSpan(k * I, I), yOne);
                    AssertBitwiseEqual($"{set} {cell} tick {t} stream {ids[k]} output", yOne, y.AsSpan(k * Hout, Hout));
                }
            }
            for (int i = 0; i < 6; i++) AssertBitwiseEqual($"{set} {cell} stream {i} state", Snapshot(twins[i]), Snapshot(streams[i]));
            Assert.Equal(4, stepper.Generation);
            Assert.Equal(6, stepper.Capacity);
            // A stream moves back to single steps with no copying: its state object is the stream.
            net.Step(streams[0], Data(9, I), new float[Hout]);
        }
    }

    [Fact]
    public void Bad_ticks_are_refused_before_any_stream_is_stepped()
    {
        var o = Options("lstm");
        var net = new RecurrentNetwork(o, 1);
        var other = new RecurrentNetwork(o, 1);
        var stepper = new MultiStreamStepper(net, 4);
        var a = net.CreateState();
        var b = net.CreateState();
        net.Step(a, Data(1, o.InputSize), new float[o.OutputHidden]);
        float[] before = Snapshot(a);
        float[] x = Data(2, 2 * o.InputSize), y = new float[2 * o.OutputHidden];
        Assert.Contains("appears twice", Assert.Throws<ArgumentException>(() => stepper.Step([a, a], x, y)).Message);
        Assert.Contains("another network", Assert.Throws<ArgumentException>(() => stepper.Step([a, other.CreateState()], x, y)).Message);
        Assert.Contains("batch 3", Assert.Throws<ArgumentException>(() => stepper.Step([a, net.CreateState(3)], x, y)).Message);
        Assert.Contains("null", Assert.Throws<ArgumentException>(() => stepper.Step([a, null!], x, y)).Message);
        Assert.Equal("inputs", Assert.Throws<ArgumentException>(() => stepper.Step([a, b], x.AsSpan(1), y)).ParamName);
        Assert.Equal("outputs", Assert.Throws<ArgumentException>(() => stepper.Step([a, b], x, y.AsSpan(1))).ParamName);
        AssertBitwiseEqual("a untouched", before, Snapshot(a));
        Assert.Throws<ArgumentException>(() => new MultiStreamStepper(new RecurrentNetwork(o with { Bidirectional = true }), 1));
        stepper.Step([], [], []); // an empty tick is fine
    }

    /// <summary>
    /// Data-parallel gradients: shards of a batch run Forward/Backward on their own threads into their own arenas, summed
    /// in a fixed order afterwards. The sum is bitwise the same as the shards run one after another on one thread, and
    /// close to the full batch's gradients (the same products summed in another order: dW = sum over rows of dG^T x, the
    /// rows split in two partial sums, so a few float roundings of the sum of |terms| apart; compared normwise).
    /// </summary>
    [Theory, MemberData(nameof(Cells))]
    public void Data_parallel_gradients_are_deterministic_and_match_the_full_batch(string cell)
    {
        foreach (var set in Sets)
        {
            var o = Options(cell);
            var net = new RecurrentNetwork(o, 12, set);
            const int T = 9, B = 6, Shards = 2, Bs = B / Shards;
            int I = o.InputSize, Hout = o.OutputHidden;
            float[] x = Data(1, T * B * I), dy = Data(2, T * B * Hout);
            float[] Shard(float[] full, int width, int k)
            {
                var part = new float[T * Bs * width];
                for (int t = 0; t < T; t++) full.AsSpan((t * B + k * Bs) * width, Bs * width).CopyTo(part.AsSpan(t * Bs * width));
                return part;
            }
            Memory.Arena ShardGradients(int k)
            {
                var g = net.CreateGradients();
                var ws = net.CreateWorkspace(T, Bs);
                net.Forward(Shard(x, I, k), T, Bs, [], [], new float[T * Bs * Hout], [], [], ws);
                net.Backward(ws, Shard(dy, Hout, k), [], [], [], [], [], default, g);
                return g;
            }
            Memory.Arena SumOf(Memory.Arena[] parts)
            {
                var sum = net.CreateGradients();
                foreach (var p in parts) sum.Add(p);
                return sum;
            }
            var sequential = SumOf(Enumerable.Range(0, Shards).Select(ShardGradients).ToArray());
            for (int run = 0; run < 3; run++)
            {
                var parts = new Memory.Arena[Shards];
                var threads = Enumerable.Range(0, Shards).Select(k => new Thread(() => parts[k] = ShardGradients(k))).ToArray();
                foreach (var th in threads) th.Start();
                foreach (var th in threads) th.Join();
                AssertBitwiseEqual($"{set} {cell} run {run}", sequential.Data, SumOf(parts).Data);
            }
            net.ZeroGradients();
            var wsFull = net.CreateWorkspace(T, B);
            net.Forward(x, T, B, [], [], new float[T * B * Hout], [], [], wsFull);
            net.Backward(wsFull, dy, [], [], [], [], []);
            double diff = 0, norm = 0;
            for (int i = 0; i < sequential.Data.Length; i++)
            {
                double e = net.Gradients.Data[i];
                diff += (sequential.Data[i] - e) * (sequential.Data[i] - e);
                norm += e * e;
            }
            Assert.True(Math.Sqrt(diff / norm) < 1e-6, $"{set} {cell}: normwise difference {Math.Sqrt(diff / norm):E3}");
        }
    }
}
