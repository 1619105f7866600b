using RnnSimd.Layers;
using RnnSimd.Memory;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Cells;

/// <summary>
/// One network shared by threads: every call started at once on a freshly built network, each thread with its own
/// state, workspace or gradient arena, must give bitwise what one thread gives (the reference runs on a second network
/// built from the same seed, before or after, on one thread).
/// </summary>
[Trait("Category", "Cells")]
public class SharedNetworkTests
{
    internal const int Threads = 4;
    private static readonly string[] AllCells = ["lstm", "lstmp", "lstm_peep", "lstm_peep_coupled", "gru", "gru_orig", "rnn_tanh", "rnn_relu",
        "lstm_onnx", "lstm_onnx_peep_coupled", "gru_onnx", "gru_orig_onnx", "rnn_onnx"];

    public static TheoryData<string> Cells() => new(AllCells);

    private static RecurrentOptions Options(string cell, int layers = 2, bool bidi = false) =>
        RecurrentContractTests.Options(cell, layers, input: 17, hidden: 33, bidi: bidi);

    /// <summary>Runs <paramref name="body"/>(thread) on <see cref="Threads"/> threads released at the same moment; rethrows the first failure.</summary>
    internal static void RunTogether(Action<int> body)
    {
        using var start = new Barrier(Threads);
        var errors = new Exception?[Threads];
        var threads = Enumerable.Range(0, Threads).Select(i => new Thread(() =>
        {
            try { start.SignalAndWait(); body(i); }
            catch (Exception e) { errors[i] = e; }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        foreach (var e in errors) if (e is not null) throw new AggregateException(e);
    }

    [Theory, MemberData(nameof(Cells))]
    public void Threads_stepping_their_own_states_on_a_fresh_network_match_one_thread(string cell)
    {
        foreach (var set in Sets)
        foreach (int batch in new[] { 1, 3 })
        {
            var o = Options(cell);
            const int T = 12;
            float[][] xs = Enumerable.Range(0, Threads).Select(i => Data(100 + i, T * batch * o.InputSize)).ToArray();
            float[][] Run(RecurrentNetwork net, int i)
            {
                var state = net.CreateState(batch);
                var y = new float[T * batch * o.OutputHidden];
                for (int t = 0; t < T; t++)
                    net.Step(state, xs[i].AsSpan(t * batch * o.InputSize, batch * o.InputSize), y.AsSpan(t * batch * o.OutputHidden, batch * o.OutputHidden));
                return [y, state.Hidden(0).ToArray(), state.Cell(o.NumLayers - 1).ToArray()];
            }
            var shared = new RecurrentNetwork(o, 7, set);
            var results = new float[Threads][][];
            RunTogether(i => results[i] = Run(shared, i));
            var alone = new RecurrentNetwork(o, 7, set);
            for (int i = 0; i < Threads; i++)
            {
                var expected = Run(alone, i);
                for (int k = 0; k < expected.Length; k++) AssertBitwiseEqual($"{set} {cell} B={batch} thread {i} quantity {k}", expected[k], results[i][k]);
            }
        }
    }

    [Theory, MemberData(nameof(Cells))]
    public void Threads_running_forward_and_backward_with_their_own_workspaces_match_one_thread(string cell)
    {
        foreach (var set in Sets)
        foreach (bool bidi in new[] { false, true })
        foreach (int batch in new[] { 1, 3 })
        {
            var o = Options(cell, 2, bidi);
            const int T = 7;
            int D = o.Directions, Hout = o.OutputHidden, I = o.InputSize;
            float[][] xs = Enumerable.Range(0, Threads).Select(i => Data(200 + i, T * batch * I)).ToArray();
            float[][] dys = Enumerable.Range(0, Threads).Select(i => Data(300 + i, T * batch * D * Hout)).ToArray();
            // Threads 1 and 3 use lengths (all different), threads 0 and 2 the full length.
            int[][] lens = Enumerable.Range(0, Threads).Select(i => i % 2 == 0 ? Array.Empty<int>() : Enumerable.Range(0, batch).Select(b => Math.Max(1, T - i - b)).ToArray()).ToArray();
            float[][] Run(RecurrentNetwork net, int i, bool inference)
            {
                var y = new float[T * batch * D * Hout];
                var hN = new float[o.NumLayers * D * batch * Hout];
                if (inference)
                {
                    net.Forward(xs[i], T, batch, [], [], y, hN, [], net.CreateInferenceWorkspace(T, batch), lens[i]);
                    return [y, hN];
                }
                var ws = net.CreateWorkspace(T, batch);
                var grads = net.CreateGradients();
                var dx = new float[xs[i].Length];
                var dh0 = new float[hN.Length];
                net.Forward(xs[i], T, batch, [], [], y, hN, [], ws, lens[i]);
                net.Backward(ws, dys[i], [], [], dx, dh0, [], default, grads);
                return [y, hN, dx, dh0, grads.Data];
            }
            foreach (bool inference in new[] { false, true })
            {
                var shared = new RecurrentNetwork(o, 11, set);
                var results = new float[Threads][][];
                RunTogether(i => results[i] = Run(shared, i, inference));
                var alone = new RecurrentNetwork(o, 11, set);
                for (int i = 0; i < Threads; i++)
                {
                    var expected = Run(alone, i, inference);
                    for (int k = 0; k < expected.Length; k++)
                        AssertBitwiseEqual($"{set} {cell} bidi={bidi} B={batch} inference={inference} thread {i} quantity {k}", expected[k], results[i][k]);
                }
            }
        }
    }

    /// <summary>A Linear head shared by threads (as `sample` and servers use it): Forward, and Backward into per-thread arenas.</summary>
    [Fact]
    public void Threads_sharing_a_fresh_linear_layer_match_one_thread()
    {
        foreach (var set in Sets)
        {
            const int Rows = 37, In = 33, Out = 65;
            float[][] Run(Linear head, int i)
            {
                float[] x = Data(400 + i, Rows * In), dy = Data(500 + i, Rows * Out), y = new float[Rows * Out], dx = new float[Rows * In];
                var g = head.CreateGradients();
                head.Forward(x, Rows, y);
                head.Backward(x, dy, Rows, dx, g);
                return [y, dx, g.Data];
            }
            var shared = new Linear(In, Out, 3, set);
            var results = new float[Threads][][];
            RunTogether(i => results[i] = Run(shared, i));
            var alone = new Linear(In, Out, 3, set);
            for (int i = 0; i < Threads; i++)
            {
                var expected = Run(alone, i);
                for (int k = 0; k < expected.Length; k++) AssertBitwiseEqual($"{set} linear thread {i} quantity {k}", expected[k], results[i][k]);
            }
            Assert.Equal("gradients", Assert.Throws<ArgumentException>(() => shared.Backward(new float[In], new float[Out], 1, [], new Arena([("x", [3])]))).ParamName);
        }
    }

    [Fact]
    public void A_workspace_is_refused_by_another_network_of_the_same_shape_before_any_work()
    {
        var o = Options("lstm", 1);
        var a = new RecurrentNetwork(o, 1);
        var b = new RecurrentNetwork(o, 2);
        const int T = 3;
        float[] x = Data(1, T * o.InputSize), y = new float[T * o.OutputHidden];
        var ws = a.CreateWorkspace(T, 1);
        a.Forward(x, T, 1, [], [], y, [], [], ws);
        float[] before = y.ToArray();
        var e = Assert.Throws<ArgumentException>(() => b.Forward(x, T, 1, [], [], new float[y.Length], [], [], ws));
        Assert.Equal("workspace", e.ParamName);
        Assert.Equal("workspace", Assert.Throws<ArgumentException>(() => b.Backward(ws, y, [], [], [], [], [])).ParamName);
        Assert.Equal("gradients", Assert.Throws<ArgumentException>(() => a.Backward(ws, y, [], [], [], [], [], default, new Arena([("x", [3])]))).ParamName);
        // A's record is intact: its backward equals a backward after a fresh forward.
        var g1 = a.CreateGradients();
        a.Backward(ws, before, [], [], [], [], [], default, g1);
        var ws2 = a.CreateWorkspace(T, 1);
        a.Forward(x, T, 1, [], [], y, [], [], ws2);
        var g2 = a.CreateGradients();
        a.Backward(ws2, before, [], [], [], [], [], default, g2);
        AssertBitwiseEqual("gradients", g2.Data, g1.Data);
        Assert.Equal("streams", Assert.Throws<ArgumentException>(() => new MultiStreamStepper(b, 2).Step([a.CreateState()], new float[o.InputSize], new float[o.OutputHidden])).ParamName);
    }

    /// <summary>The inference path (chunked input projection, no records) computes bitwise what the training path computes.</summary>
    [Theory, MemberData(nameof(Cells))]
    public void Inference_forward_equals_training_forward_bitwise(string cell)
    {
        foreach (var set in Sets)
        foreach (var (layers, bidi, batch, T) in new[] { (1, false, 1, 300), (3, true, 3, 50), (2, false, 5, 29), (2, true, 1, 9) })
        {
            var o = Options(cell, layers, bidi);
            var net = new RecurrentNetwork(o, 3, set);
            int D = o.Directions, Hout = o.OutputHidden, LD = layers * D;
            bool lstm = o.Cell == CellType.Lstm;
            float[] x = Data(5, T * batch * o.InputSize), h0 = Data(6, LD * batch * Hout), c0 = lstm ? Data(7, LD * batch * o.HiddenSize) : [];
            int[] lengths = batch == 1 ? [] : Enumerable.Range(0, batch).Select(b => T - 2 * b).ToArray();
            float[] y1 = new float[T * batch * D * Hout], h1 = new float[h0.Length], c1 = new float[c0.Length];
            net.Forward(x, T, batch, h0, c0, y1, h1, c1, net.CreateWorkspace(T, batch), lengths);
            float[] y2 = new float[y1.Length], h2 = h0.ToArray(), c2 = c0.ToArray();
            var inf = net.CreateInferenceWorkspace(T, batch);
            net.Forward(x, T, batch, h2, c2, y2, h2, c2, inf, lengths); // hN over h0 (state carried in place)
            string what = $"{set} {cell} L={layers} bidi={bidi} B={batch} T={T}";
            AssertBitwiseEqual(what + " output", y1, y2);
            AssertBitwiseEqual(what + " h_n", h1, h2);
            AssertBitwiseEqual(what + " c_n", c1, c2);
            Assert.False(inf.RecordsForBackward);
        }
    }

    [Fact]
    public void Inference_workspace_does_not_grow_with_the_sequence_length()
    {
        foreach (var cell in AllCells)
        {
            var net = new RecurrentNetwork(Options(cell, 1, bidi: true), 1);
            long small = net.CreateInferenceWorkspace(200, 4).Bytes, large = net.CreateInferenceWorkspace(100_000, 4).Bytes;
            Assert.Equal(small, large);
            Assert.True(net.CreateWorkspace(200, 4).Bytes > 20 * small, cell); // a training workspace records every step
            // With layers, only the two buffers between layers grow with T: (T, B, D*Hout) each.
            var deep = new RecurrentNetwork(Options(cell, 3), 1);
            var o = deep.Options;
            long perStep = 2L * 4 * o.OutputHidden * sizeof(float);
            long d1 = deep.CreateInferenceWorkspace(1000, 4).Bytes, d2 = deep.CreateInferenceWorkspace(2000, 4).Bytes;
            Assert.InRange(d2 - d1, 1000 * perStep, 1000 * perStep + 2 * 64);
        }
    }

    /// <summary>
    /// The README's workspace figures for the benchmark shapes (LSTM, H = 256, G·H = 1024), from the layouts' formulas
    /// (every tensor here is a multiple of 16 floats, so there is no padding; lengths: B ints). Inference: a chunk of
    /// max(B, min(T·B, 128)) rows of G·H, h and c twice, gates and recurrent products (B, G·H), tanh c, m, r·h (B, H).
    /// Training: input and dinput (T·B, I), dX scratch (T·B, max(I, H)), output and its gradient (T·B, H), Gx and gates
    /// (T·B, G·H), recurrent scratch (B, G·H), h and c (T·B + B, H), tanh c (T·B, H), five (B, H) backward buffers.
    /// </summary>
    [Fact]
    public void Workspace_bytes_of_the_benchmark_shapes_are_as_documented()
    {
        static long Inference(int T, int B, int H, int GH) =>
            4L * (Math.Max(B, Math.Min(T * B, 128)) * GH + 4L * B * H + 2L * B * GH + 3L * B * H) + 4L * B;
        static long Training(int T, int B, int I, int H, int GH)
        {
            long tb = (long)T * B;
            return 4L * (2 * tb * I + tb * Math.Max(I, H) + 2 * tb * H + 2 * tb * GH + (long)B * GH + 2 * (tb + B) * H + tb * H + 5L * B * H) + 4L * B;
        }
        var s2 = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 64, 256), 1);
        var s3 = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 65, 256), 1);
        Assert.Equal(539_652, Inference(128, 1, 256, 1024));
        Assert.Equal(1_911_812, Training(128, 1, 64, 256, 1024));
        Assert.Equal(1_015_936, Inference(64, 32, 256, 1024));
        Assert.Equal(30_785_664, Training(64, 32, 65, 256, 1024));
        Assert.Equal(Inference(128, 1, 256, 1024), s2.CreateInferenceWorkspace(128, 1).Bytes);
        Assert.Equal(Training(128, 1, 64, 256, 1024), s2.CreateWorkspace(128, 1).Bytes);
        Assert.Equal(Inference(64, 32, 256, 1024), s3.CreateInferenceWorkspace(64, 32).Bytes);
        Assert.Equal(Training(64, 32, 65, 256, 1024), s3.CreateWorkspace(64, 32).Bytes);
    }
}
