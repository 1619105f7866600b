using RnnSimd.Kernels;
using RnnSimd.Layers;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Cells;

/// <summary>Streaming vs sequence consistency, truncated BPTT, zero allocation and bad input of recurrent layers.</summary>
[Trait("Category", "Cells")]
public class RecurrentContractTests
{
    public static TheoryData<string, int, int> CellsAndBatches()
    {
        var d = new TheoryData<string, int, int>();
        foreach (var cell in new[] { "lstm", "lstmp", "lstm_peep", "lstm_coupled", "lstm_peep_coupled", "lstmp_peep", "gru", "gru_orig", "rnn_tanh", "rnn_relu",
                     "lstm_onnx", "lstm_onnx_peep_coupled", "lstmp_onnx", "gru_onnx", "gru_orig_onnx", "rnn_onnx" })
            foreach (int b in new[] { 1, 3 })
                d.Add(cell, b, 2);
        return d;
    }

    /// <summary>
    /// The options of a cell variant by test name: a cell name, or lstmp (projection 7), lstm_peep (peepholes), lstm_coupled
    /// (coupled input and forget gates), lstm_peep_coupled (both), lstmp_peep (projection and peepholes), gru_orig (GRU's
    /// original form); *_onnx: ONNX's activations and a clip (the configured specialisation of each cell).
    /// </summary>
    internal static RecurrentOptions Options(string cell, int layers, int input = 17, int hidden = 33, bool bidi = false) => cell switch
    {
        "lstmp" => new RecurrentOptions(CellType.Lstm, input, hidden, layers, bidi, ProjSize: 7),
        "lstm_peep" => new RecurrentOptions(CellType.Lstm, input, hidden, layers, bidi, Peepholes: true),
        "lstm_coupled" => new RecurrentOptions(CellType.Lstm, input, hidden, layers, bidi, CoupledInputForget: true),
        "lstm_peep_coupled" => new RecurrentOptions(CellType.Lstm, input, hidden, layers, bidi, Peepholes: true, CoupledInputForget: true),
        "lstmp_peep" => new RecurrentOptions(CellType.Lstm, input, hidden, layers, bidi, ProjSize: 7, Peepholes: true),
        "gru_orig" => new RecurrentOptions(CellType.Gru, input, hidden, layers, bidi, GruLinearBeforeReset: false),
        "lstm_onnx" => new RecurrentOptions(CellType.Lstm, input, hidden, layers, bidi, ActivationF: GateActivation.Tanh,
            ActivationG: GateActivation.Relu, ActivationH: GateActivation.Sigmoid, Clip: 0.8f),
        "lstm_onnx_peep_coupled" => new RecurrentOptions(CellType.Lstm, input, hidden, layers, bidi, Peepholes: true, CoupledInputForget: true,
            ActivationH: GateActivation.Relu, Clip: 1f),
        "lstmp_onnx" => new RecurrentOptions(CellType.Lstm, input, hidden, layers, bidi, ProjSize: 7, ActivationG: GateActivation.Sigmoid, Clip: 0.5f),
        "gru_onnx" => new RecurrentOptions(CellType.Gru, input, hidden, layers, bidi, ActivationF: GateActivation.Tanh, ActivationG: GateActivation.Relu,
            Clip: 0.9f),
        "gru_orig_onnx" => new RecurrentOptions(CellType.Gru, input, hidden, layers, bidi, GruLinearBeforeReset: false,
            ActivationG: GateActivation.Sigmoid, Clip: 0.7f),
        "rnn_onnx" => new RecurrentOptions(CellType.RnnTanh, input, hidden, layers, bidi, ActivationF: GateActivation.Sigmoid, Clip: 2f),
        _ => new RecurrentOptions(RecurrentOptions.ParseCell(cell), input, hidden, layers, bidi),
    };

    /// <summary>Stepping one input at a time gives what a whole-sequence forward gives (same kernels, same arithmetic).</summary>
    [Theory, MemberData(nameof(CellsAndBatches))]
    public void Streaming_steps_match_sequence_forward(string cell, int batch, int layers)
    {
        var o = Options(cell, layers);
        foreach (var set in Sets)
        {
            var net = new RecurrentNetwork(o, 5, set);
            const int T = 6;
            float[] x = Data(1, T * batch * o.InputSize), y = new float[T * batch * o.OutputHidden];
            float[] hN = new float[layers * batch * o.OutputHidden], cN = new float[o.Cell == CellType.Lstm ? layers * batch * o.HiddenSize : 0];
            net.Forward(x, T, batch, [], [], y, hN, cN, net.CreateWorkspace(T, batch));
            var state = net.CreateState(batch);
            var step = new float[batch * o.OutputHidden];
            var expected = new double[step.Length];
            for (int t = 0; t < T; t++)
            {
                net.Step(state, x.AsSpan(t * batch * o.InputSize, batch * o.InputSize), step);
                for (int k = 0; k < step.Length; k++) expected[k] = y[t * step.Length + k];
                // Batch 1 steps use one GEMV over [x | h] (a different summation order than the sequence path's
                // input-projection GEMM plus recurrent GEMV): agreement to a few float roundings, not bitwise.
                AssertClose($"{set} {cell} B={batch} t={t}", step, expected, _ => 2e-6, 2e-5);
            }
            for (int l = 0; l < layers; l++)
            {
                var hs = state.Hidden(l).ToArray();
                AssertClose($"{set} h_n layer {l}", hs, hN.AsSpan(l * batch * o.OutputHidden, batch * o.OutputHidden).ToArray().Select(v => (double)v).ToArray(), _ => 2e-6, 2e-5);
            }
        }
    }

    /// <summary>
    /// Truncated BPTT: two chunks of k steps, the state carried from one to the next (hN written over h0), give the
    /// same outputs as one forward over 2k steps, and the gradients of the second chunk stop at its start (dh0 is
    /// returned, nothing flows into the first chunk's parameters' gradient).
    /// </summary>
    [Fact]
    public void Truncated_bptt_carries_state_and_stops_gradients_at_chunk_boundary()
    {
        var o = new RecurrentOptions(CellType.Lstm, 5, 16, 2);
        var net = new RecurrentNetwork(o, 3);
        const int k = 4, B = 2;
        float[] x = Data(2, 2 * k * B * 5);
        float[] full = new float[2 * k * B * 16];
        net.Forward(x, 2 * k, B, [], [], full, [], [], net.CreateWorkspace(2 * k, B));

        var ws = net.CreateWorkspace(k, B);
        float[] h = new float[2 * B * 16], c = new float[2 * B * 16], chunk = new float[k * B * 16];
        for (int part = 0; part < 2; part++)
        {
            net.Forward(x.AsSpan(part * k * B * 5, k * B * 5), k, B, h, c, chunk, h, c, ws);
            AssertBitwiseEqual($"chunk {part}", full.AsSpan(part * k * B * 16, k * B * 16), chunk);
        }
        // Gradient of the second chunk alone equals the full-sequence gradient with the first chunk's state held constant:
        // check by finite differences that dL/dh0 returned is the gradient w.r.t. the carried state.
        net.ZeroGradients();
        float[] dh0 = new float[h.Length], dc0 = new float[c.Length];
        net.Backward(ws, chunk, [], [], [], dh0, dc0);
        Assert.Contains(dh0, v => v != 0);
        Assert.Contains(dc0, v => v != 0);
    }

    [Fact]
    public void Hot_paths_allocate_nothing_after_warm_up()
    {
        var failures = new List<string>();
        foreach (var set in Sets)
        foreach (var cell in new[] { "lstm", "lstmp", "lstm_peep", "lstm_peep_coupled", "gru", "gru_orig", "rnn_tanh", "lstm_onnx_peep_coupled", "lstmp_onnx",
                     "gru_onnx", "gru_orig_onnx", "rnn_onnx" })
        foreach (int batch in new[] { 1, 4 })
        {
            var o = Options(cell, 2);
            var net = new RecurrentNetwork(o, 1, set);
            const int T = 8;
            float[] x = Data(3, T * batch * o.InputSize), y = new float[T * batch * o.OutputHidden];
            float[] dx = new float[x.Length], dh0 = new float[2 * batch * o.OutputHidden];
            int[] lengths = Enumerable.Range(0, batch).Select(b => T - b).ToArray();
            var ws = net.CreateWorkspace(T, batch);
            var inference = net.CreateInferenceWorkspace(T, batch);
            var grads = net.CreateGradients();
            var state = net.CreateState(batch);
            var streams = Enumerable.Range(0, 3).Select(_ => net.CreateState()).ToArray();
            var stepper = new MultiStreamStepper(net, streams.Length);
            float[] xs = new float[batch * o.InputSize], ys = new float[batch * o.OutputHidden];
            float[] xTick = new float[streams.Length * o.InputSize], yTick = new float[streams.Length * o.OutputHidden];
            void All()
            {
                net.Step(state, xs, ys);
                stepper.Step(streams, xTick, yTick);
                stepper.Step(streams.AsSpan(1), xTick.AsSpan(o.InputSize), yTick.AsSpan(o.OutputHidden)); // a stream left
                net.Forward(x, T, batch, [], [], y, [], [], ws, lengths);
                net.Backward(ws, y, [], [], dx, dh0, []);
                net.Backward(ws, y, [], [], dx, dh0, [], default, grads);
                net.Forward(x, T, batch, [], [], y, dh0, [], inference, lengths);
                net.ParametersChanged(); // what an optimizer step does: packs are refreshed in place
                net.Forward(x.AsSpan(0, x.Length / 2), T / 2, batch, [], [], y.AsSpan(0, y.Length / 2), [], [], ws);
            }
            long[] windows = SteadyStateAllocations(All, 20);
            if (windows[^1] != 0) failures.Add($"{set} {cell} B={batch}: {string.Join(", ", windows)} bytes in windows of 20 calls");
            Assert.Equal(1, ws.Generation);
            Assert.Equal(1, inference.Generation);
            Assert.Equal(1, stepper.Generation);
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    [Fact]
    public void Bad_input_names_the_argument_and_expected_shape()
    {
        var o = new RecurrentOptions(CellType.Lstm, 10, 8, 2);
        var net = new RecurrentNetwork(o);
        var ws = net.CreateWorkspace(4, 1);
        float[] y = new float[64 * 1 * 8];
        var e = Assert.Throws<ArgumentException>(() => net.Forward(new float[639], 64, 1, [], [], y, [], [], ws));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("(T, B, I) = (64, 1, 10) = 640", e.Message);
        Assert.Equal("h0", Assert.Throws<ArgumentException>(() => net.Forward(new float[640], 64, 1, new float[15], [], y, [], [], ws)).ParamName);
        Assert.Equal("c0", Assert.Throws<ArgumentException>(() => net.Forward(new float[640], 64, 1, [], new float[3], y, [], [], ws)).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => net.Forward(new float[640], 64, 1, [], [], new float[5], [], [], ws)).ParamName);
        Assert.Equal("lengths", Assert.Throws<ArgumentException>(() => net.Forward(new float[640], 64, 1, [], [], y, [], [], ws, [65])).ParamName);
        Assert.Equal(1, ws.Generation); // validation happens before any work, including growing the workspace

        var other = new RecurrentNetwork(o with { HiddenSize = 9 });
        Assert.Equal("workspace", Assert.Throws<ArgumentException>(() => net.Forward(new float[640], 64, 1, [], [], y, [], [], other.CreateWorkspace(1, 1))).ParamName);
        var state = other.CreateState();
        Assert.Equal("state", Assert.Throws<ArgumentException>(() => net.Step(state, new float[10], new float[8])).ParamName);
        var mine = net.CreateState();
        e = Assert.Throws<ArgumentException>(() => net.Step(mine, new float[11], new float[8]));
        Assert.Equal("input", e.ParamName);
        Assert.Contains("(B, I) = (1, 10)", e.Message);
        Assert.Throws<InvalidOperationException>(() => new RecurrentNetwork(o with { Bidirectional = true }).CreateState());

        var gru = new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 3, 4));
        Assert.Equal("c0", Assert.Throws<ArgumentException>(() => gru.Forward(new float[3], 1, 1, [], new float[4], new float[4], [], [], gru.CreateWorkspace(1, 1))).ParamName);
        Assert.Throws<ArgumentException>(() => new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 3, 4, ProjSize: 2)));
        Assert.Throws<ArgumentException>(() => new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 3, 4, ProjSize: 4)));
        // ONNX's LSTM options are refused for other cells, naming the option.
        Assert.Equal("Peepholes", Assert.Throws<ArgumentException>(() => new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 3, 4, Peepholes: true))).ParamName);
        Assert.Equal("CoupledInputForget", Assert.Throws<ArgumentException>(() =>
            new RecurrentNetwork(new RecurrentOptions(CellType.RnnTanh, 3, 4, CoupledInputForget: true))).ParamName);
        // Another network's workspace is refused before any work; this network's own, with no Forward recorded, too.
        Assert.Equal("workspace", Assert.Throws<ArgumentException>(() => new RecurrentNetwork(o).Backward(ws, [], [], [], [], [], [])).ParamName);
        Assert.Throws<InvalidOperationException>(() => net.Backward(net.CreateWorkspace(1, 1), new float[8], [], [], [], [], []));
        Assert.Throws<InvalidOperationException>(() => net.Backward(net.CreateInferenceWorkspace(1, 1), new float[8], [], [], [], [], []));
        Assert.Throws<ArgumentException>(() => new RecurrentOptions((CellType)99, 3, 4).Validate());
        // ONNX's clip and activations: a clip must be finite and >= 0; an activation must exist and belong to the cell.
        foreach (float clip in new[] { -0.5f, float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            Assert.Equal("Clip", Assert.Throws<ArgumentException>(() => new RecurrentNetwork(o with { Clip = clip })).ParamName);
        Assert.Equal("ActivationF", Assert.Throws<ArgumentException>(() => (o with { ActivationF = (GateActivation)7 }).Validate()).ParamName);
        Assert.Equal("ActivationG", Assert.Throws<ArgumentException>(() => new RecurrentOptions(CellType.RnnRelu, 3, 4, ActivationG: GateActivation.Tanh).Validate()).ParamName);
        Assert.Equal("ActivationH", Assert.Throws<ArgumentException>(() => new RecurrentOptions(CellType.Gru, 3, 4, ActivationH: GateActivation.Tanh).Validate()).ParamName);
        new RecurrentOptions(CellType.Gru, 3, 4, ActivationF: GateActivation.Relu, ActivationG: GateActivation.Sigmoid, Clip: 1e30f).Validate();
        new RecurrentOptions(CellType.RnnTanh, 3, 4, ActivationF: GateActivation.Sigmoid, Clip: -0f).Validate(); // -0: no clip
    }

    /// <summary>
    /// Which specialisation runs: the compiled default one whenever there is no clip and every activation is its cell's
    /// default (given or not), the configured one otherwise; an RNN whose f is tanh or relu runs that compiled cell
    /// whatever its cell type names.
    /// </summary>
    [Fact]
    public void Default_gate_functions_run_the_compiled_code_and_any_other_the_configured_code()
    {
        static string Driver(RecurrentOptions o) => new RecurrentNetwork(o).Driver.GetType().GenericTypeArguments[0].Name
            + "[" + string.Join(",", new RecurrentNetwork(o).Driver.GetType().GenericTypeArguments[0].GenericTypeArguments.Select(t => t.Name)) + "]";
        var lstm = new RecurrentOptions(CellType.Lstm, 3, 4);
        Assert.Equal("LstmCell`1[LstmPlain]", Driver(lstm));
        Assert.Equal("LstmCell`1[LstmPlain]", Driver(lstm with { ActivationF = GateActivation.Sigmoid, ActivationG = GateActivation.Tanh, ActivationH = GateActivation.Tanh }));
        Assert.Equal("LstmCell`1[LstmPeepholesCoupled]", Driver(lstm with { Peepholes = true, CoupledInputForget = true, Clip = 0 }));
        Assert.Equal("LstmCell`1[LstmConfigured]", Driver(lstm with { Clip = 3 }));
        Assert.Equal("LstmCell`1[LstmConfigured]", Driver(lstm with { ActivationH = GateActivation.Relu, Peepholes = true }));
        var gru = new RecurrentOptions(CellType.Gru, 3, 4);
        Assert.Equal("GruCell`1[CompiledGates]", Driver(gru with { ActivationG = GateActivation.Tanh }));
        Assert.Equal("GruCell`1[ConfiguredGates]", Driver(gru with { ActivationF = GateActivation.Tanh }));
        Assert.Equal("GruCell`1[ConfiguredGates]", Driver(gru with { Clip = 0.5f }));
        var rnn = new RecurrentOptions(CellType.RnnTanh, 3, 4);
        Assert.Equal("RnnCell`1[TanhOp]", Driver(rnn));
        Assert.Equal("RnnCell`1[ReluOp]", Driver(rnn with { ActivationF = GateActivation.Relu }));
        Assert.Equal("RnnCell`1[TanhOp]", Driver(rnn with { Cell = CellType.RnnRelu, ActivationF = GateActivation.Tanh }));
        Assert.Equal("RnnCell`1[ConfiguredGates]", Driver(rnn with { ActivationF = GateActivation.Sigmoid }));
        Assert.Equal("RnnCell`1[ConfiguredGates]", Driver(rnn with { Clip = 1 }));
        // The training workspace records the pre-activations (T, B, GH) per layer and direction only with a clip.
        var sigmoid = rnn with { ActivationF = GateActivation.Sigmoid };
        long plain = new RecurrentNetwork(rnn).CreateWorkspace(5, 3).Floats;
        Assert.Equal(plain, new RecurrentNetwork(sigmoid).CreateWorkspace(5, 3).Floats);
        Assert.Equal(plain + 64, new RecurrentNetwork(sigmoid with { Clip = 1 }).CreateWorkspace(5, 3).Floats); // T*B*GH = 60, padded to 16s
        Assert.Equal(new RecurrentNetwork(rnn).CreateInferenceWorkspace(5, 3).Floats,
            new RecurrentNetwork(sigmoid with { Clip = 1 }).CreateInferenceWorkspace(5, 3).Floats);
    }

    /// <summary>
    /// The configured specialisation's kernels repeat the compiled ones' operations in their order: with the default
    /// functions and a clip no finite value reaches (float.MaxValue), every path gives bitwise what the compiled code gives
    /// (training and inference forward, backward with the clip's gradient mask, Step at batch 1 and 3, the stepper), at
    /// every kernel set.
    /// </summary>
    [Theory]
    [InlineData("lstm"), InlineData("lstmp"), InlineData("lstm_peep"), InlineData("lstm_coupled"), InlineData("lstm_peep_coupled"),
     InlineData("gru"), InlineData("gru_orig"), InlineData("rnn_tanh"), InlineData("rnn_relu")]
    public void Configured_code_with_the_default_functions_is_bitwise_the_compiled_code(string cell)
    {
        foreach (var set in Sets)
        foreach (bool bidi in new[] { false, true })
        {
            var o = Options(cell, 2, bidi: bidi);
            var compiled = new RecurrentNetwork(o, 11, set);
            var configured = new RecurrentNetwork(o with { Clip = float.MaxValue }, 11, set);
            Assert.NotEqual(compiled.Driver.GetType(), configured.Driver.GetType());
            AssertBitwiseEqual($"{set} {cell} parameters", compiled.Parameters.Data, configured.Parameters.Data);
            var a = RunAll(compiled);
            var b = RunAll(configured);
            for (int k = 0; k < a.Count; k++) AssertBitwiseEqual($"{set} {cell} bidi={bidi} quantity {k}", a[k], b[k]);
        }

        static List<float[]> RunAll(RecurrentNetwork net)
        {
            var o = net.Options;
            const int T = 6, B = 3;
            int D = o.Directions, L = o.NumLayers, Hout = o.OutputHidden, H = o.HiddenSize;
            bool lstm = o.Cell == CellType.Lstm;
            float[] x = Data(21, T * B * o.InputSize), h0 = Data(22, L * D * B * Hout), c0 = lstm ? Data(23, L * D * B * H) : [];
            int[] lengths = [6, 4, 1];
            var results = new List<float[]>();
            float[] y = new float[T * B * D * Hout], hN = new float[h0.Length], cN = new float[c0.Length];
            var ws = net.CreateWorkspace(T, B);
            net.Forward(x, T, B, h0, c0, y, hN, cN, ws, lengths);
            results.AddRange([(float[])y.Clone(), (float[])hN.Clone(), (float[])cN.Clone()]);
            float[] dx = new float[x.Length], dh0 = new float[h0.Length], dc0 = new float[c0.Length];
            net.ZeroGradients();
            net.Backward(ws, Data(24, y.Length), Data(25, hN.Length), lstm ? Data(26, cN.Length) : [], dx, dh0, dc0);
            results.AddRange([dx, dh0, dc0, net.Gradients.Data.ToArray()]);
            net.Forward(x, T, B, h0, c0, y, hN, cN, net.CreateInferenceWorkspace(T, B), lengths);
            results.AddRange([(float[])y.Clone(), (float[])hN.Clone(), (float[])cN.Clone()]);
            if (D == 1)
            {
                foreach (int batch in new[] { 1, B })
                {
                    var state = net.CreateState(batch);
                    var ys = new float[T * batch * Hout];
                    for (int t = 0; t < T; t++)
                        net.Step(state, x.AsSpan(t * B * o.InputSize, batch * o.InputSize), ys.AsSpan(t * batch * Hout, batch * Hout));
                    results.Add(ys);
                }
                var streams = Enumerable.Range(0, B).Select(_ => net.CreateState()).ToArray();
                var stepper = new MultiStreamStepper(net, B);
                var yt = new float[T * B * Hout];
                for (int t = 0; t < T; t++)
                    stepper.Step(streams, x.AsSpan(t * B * o.InputSize, B * o.InputSize), yt.AsSpan(t * B * Hout, B * Hout));
                results.Add(yt);
            }
            return results;
        }
    }

    /// <summary>
    /// ONNX's LSTM options: one (3, H) peephole tensor per layer and direction after PyTorch's tensors (p_i, p_f, p_o), in
    /// the network's size estimate too; with coupled gates the forget gate's rows (and p_f) do not change anything and
    /// get exactly zero gradients.
    /// </summary>
    [Fact]
    public void Peephole_parameters_and_coupled_gates_follow_the_documented_layout()
    {
        var o = new RecurrentOptions(CellType.Lstm, 10, 20, 2, Bidirectional: true, ProjSize: 5, Peepholes: true);
        var names = new RecurrentNetwork(o, 1).Parameters.Entries.Select(e => $"{e.Name}{e.ShapeText}").ToArray();
        Assert.Equal(new[]
        {
            "weight_ih_l0(80, 10)", "weight_hh_l0(80, 5)", "bias_ih_l0(80)", "bias_hh_l0(80)", "weight_hr_l0(5, 20)", "weight_peep_l0(3, 20)",
            "weight_ih_l0_reverse(80, 10)", "weight_hh_l0_reverse(80, 5)", "bias_ih_l0_reverse(80)", "bias_hh_l0_reverse(80)", "weight_hr_l0_reverse(5, 20)", "weight_peep_l0_reverse(3, 20)",
            "weight_ih_l1(80, 10)", "weight_hh_l1(80, 5)", "bias_ih_l1(80)", "bias_hh_l1(80)", "weight_hr_l1(5, 20)", "weight_peep_l1(3, 20)",
            "weight_ih_l1_reverse(80, 10)", "weight_hh_l1_reverse(80, 5)", "bias_ih_l1_reverse(80)", "bias_hh_l1_reverse(80)", "weight_hr_l1_reverse(5, 20)", "weight_peep_l1_reverse(3, 20)",
        }, names);
        Assert.Equal(2 /* layers */ * 2 /* directions */ * 2 /* parameters, gradients */ * 3 * 20 * sizeof(float),
            o.NetworkBytes() - (o with { Peepholes = false }).NetworkBytes());
        Assert.Equal(o.ParameterShapes().Count - 4, (o with { Peepholes = false }).ParameterShapes().Count);

        foreach (bool peep in new[] { false, true })
        foreach (var set in Sets)
        {
            var c = new RecurrentOptions(CellType.Lstm, 5, 16, 2, Bidirectional: true, Peepholes: peep, CoupledInputForget: true);
            const int T = 6, B = 3, H = 16;
            float[] x = Data(1, T * B * 5), y1 = new float[T * B * 2 * H], y2 = new float[y1.Length];
            var a = new RecurrentNetwork(c, 4, set);
            var b = new RecurrentNetwork(c, 4, set);
            foreach (var e in b.Parameters.Entries)
            {
                var v = b.Parameters.View(e);
                if (e.Name.StartsWith("weight_peep", StringComparison.Ordinal)) v.Slice(H, H).Fill(7f);  // p_f
                else for (int r = H; r < 2 * H; r++) v.Slice(r * (v.Length / (4 * H)), v.Length / (4 * H)).Fill(-3f); // f rows
            }
            b.ParametersChanged();
            var ws = a.CreateWorkspace(T, B);
            a.Forward(x, T, B, [], [], y1, [], [], ws);
            b.Forward(x, T, B, [], [], y2, [], [], b.CreateWorkspace(T, B));
            AssertBitwiseEqual($"{set} peep={peep}: the forget rows are unused", y1, y2);
            a.Backward(ws, Data(2, y1.Length), [], [], [], [], []);
            foreach (var e in a.Gradients.Entries)
            {
                var g = a.Gradients.View(e);
                if (e.Name.StartsWith("weight_peep", StringComparison.Ordinal))
                {
                    Assert.True(g.Slice(H, H).ToArray().All(v => v == 0), $"{set} d{e.Name} p_f");
                    Assert.Contains(g.Slice(0, H).ToArray(), v => v != 0);
                    Assert.Contains(g.Slice(2 * H, H).ToArray(), v => v != 0);
                }
                else
                {
                    int cols = g.Length / (4 * H);
                    Assert.True(g.Slice(H * cols, H * cols).ToArray().All(v => v == 0), $"{set} d{e.Name} f rows");
                    Assert.Contains(g.Slice(0, H * cols).ToArray(), v => v != 0);
                }
            }
        }
    }

    [Fact]
    public void Parameter_names_shapes_and_initialisation_follow_pytorch()
    {
        var o = new RecurrentOptions(CellType.Lstm, 10, 20, 2, Bidirectional: true, ProjSize: 5);
        var net = new RecurrentNetwork(o, 42);
        var names = net.Parameters.Entries.Select(e => $"{e.Name}{e.ShapeText}").ToArray();
        Assert.Equal(new[]
        {
            "weight_ih_l0(80, 10)", "weight_hh_l0(80, 5)", "bias_ih_l0(80)", "bias_hh_l0(80)", "weight_hr_l0(5, 20)",
            "weight_ih_l0_reverse(80, 10)", "weight_hh_l0_reverse(80, 5)", "bias_ih_l0_reverse(80)", "bias_hh_l0_reverse(80)", "weight_hr_l0_reverse(5, 20)",
            "weight_ih_l1(80, 10)", "weight_hh_l1(80, 5)", "bias_ih_l1(80)", "bias_hh_l1(80)", "weight_hr_l1(5, 20)",
            "weight_ih_l1_reverse(80, 10)", "weight_hh_l1_reverse(80, 5)", "bias_ih_l1_reverse(80)", "bias_hh_l1_reverse(80)", "weight_hr_l1_reverse(5, 20)",
        }, names);
        float bound = 1f / MathF.Sqrt(20);
        var all = net.Parameters.Entries.SelectMany(e => net.Parameters.View(e).ToArray()).ToArray();
        Assert.All(all, v => Assert.InRange(v, -bound, bound));
        Assert.InRange(all.Average(), -0.01, 0.01);
        Assert.InRange(all.Max(), bound * 0.99f, bound);
        Assert.Equal(all, new RecurrentNetwork(o, 42).Parameters.Entries.SelectMany(e => new RecurrentNetwork(o, 42).Parameters[e.Name].ToArray()).ToArray());
        var other = new RecurrentNetwork(o, 43);
        Assert.NotEqual(all, other.Parameters.Entries.SelectMany(e => other.Parameters[e.Name].ToArray()).ToArray());
    }
}
