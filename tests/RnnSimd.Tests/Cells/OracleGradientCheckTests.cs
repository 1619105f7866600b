using System.Globalization;
using System.Text;
using RnnSimd.Tests.Reference;

namespace RnnSimd.Tests.Cells;

/// <summary>
/// Checks the naive recurrent oracle itself: its hand-written BPTT against central finite differences of its own
/// loss, for every parameter, input, h0 and c0 element; its forward pass against values worked out by hand; and its
/// structure (lengths, reverse direction, stacking) against simpler runs of itself.
/// </summary>
[Trait("Category", "Oracle")]
public class OracleGradientCheckTests
{
    // ------------------------------------------------------------------------------------------------------------
    // Problems
    // ------------------------------------------------------------------------------------------------------------

    /// <summary>One layer configuration with its data, all in double, from a seed.</summary>
    private sealed class Problem
    {
        public required RecurrentSpec Spec;
        public required int T, B;
        public required Dictionary<string, double[]> Params;
        public required double[] Input;   // (T, B, I)
        public required double[] H0;      // (L*D, B, Hout)
        public double[]? C0;              // (L*D, B, H), lstm
        public required double[] Target; // (T, B, D*Hout)
        public int[]? Lengths;            // (B)
        public double[]? TargetHn;        // (L*D, B, Hout)
        public double[]? TargetCn;        // (L*D, B, H)

        public NaiveResult Run() =>
            new NaiveRecurrent(Spec, Params).Run(Input, T, B, H0, C0, Target, Lengths, TargetHn, TargetCn);

        public static Problem Create(RecurrentSpec spec, int T, int B, int seed, int[]? lengths = null, bool stateTargets = false)
        {
            var rng = new Random(seed);
            int ld = spec.NumLayers * spec.Directions;
            bool lstm = spec.Cell == "lstm";
            var p = new Dictionary<string, double[]>();
            // PyTorch initialises with U(-1/sqrt(H), 1/sqrt(H)) = U(-0.5, 0.5) at H = 4; a little wider exercises more curvature.
            foreach (var (name, shape) in NaiveRecurrent.ParameterShapes(spec))
                p[name] = Uniform(rng, shape.Aggregate(1, (a, x) => a * x), 0.7);
            return new Problem
            {
                Spec = spec, T = T, B = B, Params = p, Lengths = lengths,
                Input = Uniform(rng, T * B * spec.InputSize, 1.0),
                H0 = Uniform(rng, ld * B * spec.OutputSize, 0.5),
                C0 = lstm ? Uniform(rng, ld * B * spec.HiddenSize, 0.5) : null,
                Target = Uniform(rng, T * B * spec.Directions * spec.OutputSize, 0.5),
                TargetHn = stateTargets ? Uniform(rng, ld * B * spec.OutputSize, 0.5) : null,
                TargetCn = stateTargets && lstm ? Uniform(rng, ld * B * spec.HiddenSize, 0.5) : null,
            };
        }
    }

    private static double[] Uniform(Random rng, int n, double scale)
    {
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = (rng.NextDouble() * 2 - 1) * scale;
        return v;
    }

    private const int T = 3, B = 2, I = 3, H = 4;

    /// <summary>Configurations for the gradient check: name, spec, lengths, whether h_n / c_n carry loss terms.</summary>
    private static readonly Dictionary<string, (RecurrentSpec Spec, int[]? Lengths, bool StateTargets)> Configs = new()
    {
        ["rnn_tanh"] = (new("rnn_tanh", I, H), null, false),
        ["rnn_relu"] = (new("rnn_relu", I, H), null, false),
        ["lstm"] = (new("lstm", I, H), null, false),
        ["lstm_proj2"] = (new("lstm", I, H, ProjSize: 2), null, false),
        ["gru"] = (new("gru", I, H), null, false),
        ["gru_reset_before_linear"] = (new("gru", I, H, GruLinearBeforeReset: false), null, false),
        ["rnn_tanh_2layers"] = (new("rnn_tanh", I, H, NumLayers: 2), null, false),
        ["lstm_2layers"] = (new("lstm", I, H, NumLayers: 2), null, false),
        ["gru_2layers"] = (new("gru", I, H, NumLayers: 2), null, false),
        ["rnn_tanh_bidirectional"] = (new("rnn_tanh", I, H, Bidirectional: true), null, false),
        ["lstm_bidirectional"] = (new("lstm", I, H, Bidirectional: true), null, false),
        ["gru_bidirectional"] = (new("gru", I, H, Bidirectional: true), null, false),
        ["gru_reset_before_linear_bidirectional"] = (new("gru", I, H, Bidirectional: true, GruLinearBeforeReset: false), null, false),
        ["rnn_relu_nobias"] = (new("rnn_relu", I, H, Bias: false), null, false),
        ["lstm_nobias"] = (new("lstm", I, H, Bias: false), null, false),
        ["gru_nobias"] = (new("gru", I, H, Bias: false), null, false),
        ["gru_reset_before_linear_nobias"] = (new("gru", I, H, Bias: false, GruLinearBeforeReset: false), null, false),
        ["rnn_tanh_lengths"] = (new("rnn_tanh", I, H), [3, 1], false),
        ["lstm_lengths"] = (new("lstm", I, H), [3, 1], false),
        ["gru_bidirectional_lengths"] = (new("gru", I, H, Bidirectional: true), [1, 3], false),
        ["rnn_tanh_state_targets"] = (new("rnn_tanh", I, H), null, true),
        ["lstm_state_targets"] = (new("lstm", I, H), null, true),
        ["lstm_proj2_state_targets"] = (new("lstm", I, H, ProjSize: 2), null, true),
        ["gru_state_targets"] = (new("gru", I, H), null, true),
        ["rnn_relu_2layers_bidirectional_lengths_state_targets"] = (new("rnn_relu", I, H, NumLayers: 2, Bidirectional: true), [2, 3], true),
        ["lstm_proj2_2layers_bidirectional_lengths_state_targets"] = (new("lstm", I, H, NumLayers: 2, Bidirectional: true, ProjSize: 2), [3, 1], true),
        ["gru_reset_before_linear_2layers_bidirectional_lengths_state_targets"] =
            (new("gru", I, H, NumLayers: 2, Bidirectional: true, GruLinearBeforeReset: false), [2, 3], true),
        // ONNX's LSTM variants: peepholes (the extra dc terms and dL/dp) and coupled input and forget gates (f = 1 - i).
        ["lstm_peepholes"] = (new("lstm", I, H, Peepholes: true), null, false),
        ["lstm_peepholes_state_targets"] = (new("lstm", I, H, Peepholes: true), null, true),
        ["lstm_coupled"] = (new("lstm", I, H, CoupledInputForget: true), null, false),
        ["lstm_peepholes_coupled_state_targets"] = (new("lstm", I, H, Peepholes: true, CoupledInputForget: true), null, true),
        ["lstm_peepholes_coupled_nobias_lengths"] = (new("lstm", I, H, Bias: false, Peepholes: true, CoupledInputForget: true), [3, 1], false),
        ["lstm_peepholes_proj2_2layers_bidirectional_lengths_state_targets"] =
            (new("lstm", I, H, NumLayers: 2, Bidirectional: true, ProjSize: 2, Peepholes: true), [3, 1], true),
        ["lstm_coupled_2layers_bidirectional_lengths_state_targets"] =
            (new("lstm", I, H, NumLayers: 2, Bidirectional: true, CoupledInputForget: true), [2, 3], true),
        // ONNX's activations (derivatives from the saved outputs, h' from the saved h(c')) and clip (no gradient where
        // a pre-activation was clamped; 0.5 clamps about a third of them here).
        ["lstm_activations_tanh_sigmoid_relu"] = (new("lstm", I, H, ActivationF: "tanh", ActivationG: "sigmoid", ActivationH: "relu"), null, true),
        ["lstm_activations_sigmoid_relu_tanh"] = (new("lstm", I, H, ActivationG: "relu"), null, false),
        ["lstm_activations_relu_relu_sigmoid"] = (new("lstm", I, H, ActivationF: "relu", ActivationG: "relu", ActivationH: "sigmoid"), null, true),
        ["lstm_clip"] = (new("lstm", I, H, Clip: 0.5), null, true),
        ["lstm_proj2_clip_relu"] = (new("lstm", I, H, ProjSize: 2, ActivationG: "relu", Clip: 0.4), null, true),
        ["lstm_peepholes_coupled_clip_activations_2layers_bidirectional_lengths_state_targets"] =
            (new("lstm", I, H, NumLayers: 2, Bidirectional: true, Peepholes: true, CoupledInputForget: true, ActivationF: "tanh",
                ActivationH: "relu", Clip: 0.6), [3, 1], true),
        ["gru_activations_relu_tanh"] = (new("gru", I, H, ActivationF: "relu"), null, true),
        ["gru_reset_before_linear_activations_tanh_sigmoid"] =
            (new("gru", I, H, GruLinearBeforeReset: false, ActivationF: "tanh", ActivationG: "sigmoid"), null, true),
        ["gru_clip"] = (new("gru", I, H, Clip: 0.5), null, true),
        ["gru_reset_before_linear_clip"] = (new("gru", I, H, GruLinearBeforeReset: false, Clip: 0.5), null, true),
        ["gru_clip_activations_2layers_bidirectional_lengths_state_targets"] =
            (new("gru", I, H, NumLayers: 2, Bidirectional: true, ActivationF: "tanh", ActivationG: "relu", Clip: 0.7), [2, 3], true),
        ["gru_reset_before_linear_clip_relu_2layers_bidirectional_lengths_state_targets"] =
            (new("gru", I, H, NumLayers: 2, Bidirectional: true, GruLinearBeforeReset: false, ActivationG: "relu", Clip: 0.7), [3, 1], true),
        ["rnn_sigmoid"] = (new("rnn_tanh", I, H, ActivationF: "sigmoid"), null, true),
        ["rnn_tanh_clip"] = (new("rnn_tanh", I, H, Clip: 0.5), null, true),
        ["rnn_relu_clip_2layers_bidirectional_lengths_state_targets"] =
            (new("rnn_relu", I, H, NumLayers: 2, Bidirectional: true, Clip: 0.5), [2, 3], true),
    };

    public static TheoryData<string> ConfigNames => new(Configs.Keys);

    // ------------------------------------------------------------------------------------------------------------
    // Gradient check
    // ------------------------------------------------------------------------------------------------------------

    /// <summary>Central-difference step. Truncation error is about Step^2 |L'''| / 6 ~ 1e-13.</summary>
    private const double Step = 1e-6;

    /// <summary>
    /// |analytic - numeric| &lt;= Atol * max(1, |L|) + Rtol * |numeric|. The loss is a sum of a few dozen O(1) terms
    /// computed in double, so each L(θ ± Step) carries a rounding error of some tens of ulps of |L|, ~1e-15 |L|;
    /// dividing by 2*Step turns that into ~1e-9 |L| in the numeric derivative, hence the absolute floor of
    /// 1e-8 per unit of loss. Truncation (~1e-13) is far below both. Measured: the worst error is ~2e-9, 3.6x the
    /// allowance at tolerances 100x tighter, i.e. a ~28x margin here. Rtol 1e-6 then catches any real
    /// error in a gradient of ordinary size: a wrong term (a missing factor, a wrong gate, a wrong time step) is
    /// O(1) off, and each such bug planted by hand (f' using c' for c, a dropped r path in the GRU, relu' = 1, a
    /// misplaced r) failed this test.
    /// </summary>
    private const double Atol = 1e-8, Rtol = 1e-6;

    [Theory]
    [MemberData(nameof(ConfigNames))]
    public void Oracle_gradients_match_central_differences(string config)
    {
        var (spec, lengths, stateTargets) = Configs[config];
        Problem pb = Problem.Create(spec, T, B, seed: 1234, lengths, stateTargets);
        // The kinks (relu's 0, the clip's ±clip): pick the first seed whose every pre-activation is at least 1e-3 away from
        // one. A perturbation of 1e-6 moves a pre-activation by 1e-6 times its derivative, which here is of the order of
        // the |x|, |h| and |w| it multiplies (a few at most, through at most 3 steps and 2 layers), so far less than 1e-3:
        // no evaluation crosses a kink and the loss is smooth on [θ - Step, θ + Step]. Smooth configurations: the first seed.
        int seed = 1234;
        while (pb.Run().MinKinkDistance < 1e-3)
            pb = Problem.Create(spec, T, B, ++seed, lengths, stateTargets);

        NaiveResult r = pb.Run();
        double atol = Atol * Math.Max(1, Math.Abs(r.Loss));
        var failures = new StringBuilder();
        int checkedCount = 0;

        void CheckArray(string what, double[] values, double[] analytic, Func<NaiveResult> run)
        {
            Assert.Equal(values.Length, analytic.Length);
            var numeric = new double[values.Length];
            for (int i = 0; i < values.Length; i++)
            {
                double saved = values[i];
                values[i] = saved + Step;
                double lp = run().Loss;
                values[i] = saved - Step;
                double lm = run().Loss;
                values[i] = saved;
                numeric[i] = (lp - lm) / (2 * Step);
            }
            checkedCount += values.Length;
            string? msg = Compare($"{config} d{what}", analytic, numeric, atol, Rtol);
            if (msg is not null) failures.AppendLine(msg);
        }

        foreach (var (name, _) in NaiveRecurrent.ParameterShapes(spec))
            CheckArray(name, pb.Params[name], r.ParamGrads[name], pb.Run); // Run builds a fresh NaiveRecurrent, which copies Params
        CheckArray("input", pb.Input, r.GradInput, pb.Run);
        CheckArray("h0", pb.H0, r.GradH0, pb.Run);
        if (spec.Cell == "lstm") CheckArray("c0", pb.C0!, r.GradC0!, pb.Run);
        else Assert.Null(r.GradC0);

        Assert.True(failures.Length == 0, failures.ToString());
        Assert.True(checkedCount > 0);
    }

    /// <summary>
    /// Null if |a - e| &lt;= atol + rtol |e| everywhere; otherwise a message with the count, the worst index (by error over
    /// allowance), both values there and the first few mismatches.
    /// </summary>
    private static string? Compare(string what, double[] actual, double[] expected, double atol, double rtol)
    {
        int bad = 0, worst = -1;
        double worstRatio = 0;
        var first = new StringBuilder();
        for (int i = 0; i < actual.Length; i++)
        {
            double a = actual[i], e = expected[i];
            double allow = atol + rtol * Math.Abs(e), err = Math.Abs(a - e);
            double ratio = err / allow;
            if (!(err <= allow))
            {
                if (bad < 5) first.Append(CultureInfo.InvariantCulture, $"  [{i}] actual {a:R} expected {e:R} err {err:E3} allowed {allow:E3}\n");
                bad++;
            }
            if (!(ratio <= worstRatio)) { worstRatio = double.IsNaN(ratio) ? double.PositiveInfinity : ratio; worst = i; }
        }
        if (bad == 0) return null;
        return string.Create(CultureInfo.InvariantCulture,
            $"{what}: {bad} of {actual.Length} out of tolerance; worst [{worst}] actual {actual[worst]:R} expected {expected[worst]:R} " +
            $"(error/allowance {worstRatio:F2})\n{first}");
    }

    private static void AssertClose(string what, double[] actual, double[] expected, double atol = 0, double rtol = 0)
    {
        Assert.Equal(expected.Length, actual.Length);
        string? msg = Compare(what, actual, expected, atol, rtol);
        Assert.True(msg is null, msg);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Forward values worked out by hand (numbers evaluated with Python's math module, double precision)
    // ------------------------------------------------------------------------------------------------------------

    /// <summary>
    /// The hand values are sums of 2-4 products followed by exp/tanh; the oracle may associate the sums differently
    /// from the hand evaluation, which moves the results by a few ulps. 1e-14 relative is ~50 ulps.
    /// </summary>
    private const double HandRtol = 1e-14, HandAtol = 1e-16;

    private static NaiveResult RunSingle(RecurrentSpec spec, Dictionary<string, double[]> p, double[] x, int t,
        double[] h0, double[]? c0)
    {
        var target = new double[t * spec.Directions * spec.OutputSize];
        return new NaiveRecurrent(spec, p).Run(x, t, 1, h0, c0, target);
    }

    [Fact]
    public void Oracle_lstm_one_step_matches_hand_computation()
    {
        // I = H = 1, gate rows i, f, g, o. x = 0.7, h0 = 0.5, c0 = -0.6.
        // a = W_ih x + b_ih + W_hh h0 + b_hh:
        //   a_i =  0.5*0.7 + 0.1  + (-0.4)*0.5 + 0.2  =  0.45
        //   a_f = -1.0*0.7 + 0.2  +   0.3*0.5  - 0.1  = -0.45
        //   a_g =  0.8*0.7 - 0.3  +   0.6*0.5  + 0.1  =  0.66
        //   a_o =  1.5*0.7 + 0.05 + (-0.2)*0.5 + 0.25 =  1.25
        // i = σ(0.45) = 0.610639233949222, f = σ(-0.45) = 1 - i = 0.389360766050778,
        // g = tanh(0.66) = 0.5783634130445057, o = σ(1.25) = 0.7772998611746911
        // c' = f*(-0.6) + i*g = 0.11955493185528765;  h' = o * tanh(c') = 0.09248978732280133
        var spec = new RecurrentSpec("lstm", 1, 1);
        var p = new Dictionary<string, double[]>
        {
            ["weight_ih_l0"] = [0.5, -1.0, 0.8, 1.5],
            ["weight_hh_l0"] = [-0.4, 0.3, 0.6, -0.2],
            ["bias_ih_l0"] = [0.1, 0.2, -0.3, 0.05],
            ["bias_hh_l0"] = [0.2, -0.1, 0.1, 0.25],
        };
        var r = RunSingle(spec, p, [0.7], 1, [0.5], [-0.6]);
        AssertClose("output", r.Output, [0.09248978732280133], HandAtol, HandRtol);
        AssertClose("h_n", r.HN, [0.09248978732280133], HandAtol, HandRtol);
        AssertClose("c_n", r.CN!, [0.11955493185528765], HandAtol, HandRtol);
        // Loss with target 0: 0.5 h'^2.
        Assert.Equal(0.5 * 0.09248978732280133 * 0.09248978732280133, r.Loss, 1e-16);
    }

    [Fact]
    public void Oracle_lstm_projection_one_step_matches_hand_computation()
    {
        // I = 1, H = 2, proj 1, no bias; W_ih, W_hh rows i0 i1 f0 f1 g0 g1 o0 o1; W_hh is (8, Hout = 1).
        // x = 0.8, h0 = 0.5, c0 = (0.3, -0.2); a_r = W_ih[r]*0.8 + W_hh[r]*0.5:
        //   unit 0: a_i = 0.21, a_f = 0.27, a_g = -0.30, a_o = 0.49
        //   unit 1: a_i = -0.14, a_f = 0.23, a_g = 0.28, a_o = -0.11
        // c'_j = σ(a_f) c0_j + σ(a_i) tanh(a_g):  c' = (0.009233611473862563, 0.015466862098339557)
        // m_j = σ(a_o) tanh(c'_j):                m  = (0.005725659147191046, 0.007307937971354881)
        // h' = W_hr m = 0.7 m0 - 1.1 m1 = -0.004030770365456637
        var spec = new RecurrentSpec("lstm", 1, 2, Bias: false, ProjSize: 1);
        var p = new Dictionary<string, double[]>
        {
            ["weight_ih_l0"] = [0.2, -0.3, 0.4, 0.1, -0.5, 0.6, 0.3, -0.2],
            ["weight_hh_l0"] = [0.1, 0.2, -0.1, 0.3, 0.2, -0.4, 0.5, 0.1],
            ["weight_hr_l0"] = [0.7, -1.1],
        };
        var r = RunSingle(spec, p, [0.8], 1, [0.5], [0.3, -0.2]);
        // h' is a difference of two close products (0.0040 from 0.0040 and 0.0080), so allow ~1e-13 relative.
        AssertClose("output", r.Output, [-0.004030770365456637], HandAtol, 1e-13);
        AssertClose("c_n", r.CN!, [0.009233611473862563, 0.015466862098339557], HandAtol, HandRtol);
    }

    [Fact]
    public void Oracle_lstm_peepholes_and_coupled_gates_one_step_match_hand_computation()
    {
        // The one-step LSTM above with peepholes p = (p_i, p_f, p_o) = (0.3, -0.5, 0.8), c0 = -0.6:
        //   i = σ(0.45 + 0.3*(-0.6)) = σ(0.27) = 0.5670929049654543
        //   f = σ(-0.45 + (-0.5)*(-0.6)) = σ(-0.15) = 0.46257015465625045, or with coupled gates 1 - i = 0.4329070950345457
        //   g = tanh(0.66) = 0.5783634130445059;  c' = f*(-0.6) + i*g = 0.05044369523539349 (coupled 0.06824153100841635)
        //   o = σ(1.25 + 0.8*c') (the NEW cell state) = 0.7842072631353081 (coupled 0.7866070003138459)
        //   h' = o * tanh(c') = 0.039524793381696746 (coupled 0.05359609448681696)
        var p = new Dictionary<string, double[]>
        {
            ["weight_ih_l0"] = [0.5, -1.0, 0.8, 1.5],
            ["weight_hh_l0"] = [-0.4, 0.3, 0.6, -0.2],
            ["bias_ih_l0"] = [0.1, 0.2, -0.3, 0.05],
            ["bias_hh_l0"] = [0.2, -0.1, 0.1, 0.25],
            ["weight_peep_l0"] = [0.3, -0.5, 0.8],
        };
        var peep = RunSingle(new RecurrentSpec("lstm", 1, 1, Peepholes: true), p, [0.7], 1, [0.5], [-0.6]);
        AssertClose("peepholes h'", peep.Output, [0.039524793381696746], HandAtol, HandRtol);
        AssertClose("peepholes c'", peep.CN!, [0.05044369523539349], HandAtol, HandRtol);
        var both = RunSingle(new RecurrentSpec("lstm", 1, 1, Peepholes: true, CoupledInputForget: true), p, [0.7], 1, [0.5], [-0.6]);
        AssertClose("coupled h'", both.Output, [0.05359609448681696], HandAtol, HandRtol);
        AssertClose("coupled c'", both.CN!, [0.06824153100841635], HandAtol, HandRtol);
        // Coupled without peepholes: the forget gate's rows are unused, whatever they hold.
        p.Remove("weight_peep_l0");
        var coupled = RunSingle(new RecurrentSpec("lstm", 1, 1, CoupledInputForget: true), p, [0.7], 1, [0.5], [-0.6]);
        p["weight_ih_l0"][1] = 9; p["bias_hh_l0"][1] = -9;
        var changed = RunSingle(new RecurrentSpec("lstm", 1, 1, CoupledInputForget: true), p, [0.7], 1, [0.5], [-0.6]);
        AssertClose("coupled, f rows changed", changed.Output, coupled.Output);
        Assert.All(coupled.ParamGrads["weight_ih_l0"].Where((_, r) => r == 1), g => Assert.Equal(0.0, g));
    }

    [Fact]
    public void Oracle_activations_and_clip_one_step_match_hand_computation()
    {
        // The one-step LSTM above (a = 0.45, -0.45, 0.66, 1.25; c0 = -0.6) with f = tanh, g = sigmoid, h = relu, clip 0.5:
        //   i = tanh(0.45) = 0.4218990052500079, f = tanh(-0.45) = -0.4218990052500079,
        //   g = σ(clamp(0.66)) = σ(0.5) = 0.6224593312018546, o = tanh(clamp(1.25)) = tanh(0.5) = 0.46211715726000974
        //   c' = f*(-0.6) + i*g = 0.5157543757926524 (not clamped);  h' = o * relu(c') = 0.2383389459857113
        var lstm = RunSingle(new RecurrentSpec("lstm", 1, 1, ActivationF: "tanh", ActivationG: "sigmoid", ActivationH: "relu", Clip: 0.5),
            new Dictionary<string, double[]>
            {
                ["weight_ih_l0"] = [0.5, -1.0, 0.8, 1.5],
                ["weight_hh_l0"] = [-0.4, 0.3, 0.6, -0.2],
                ["bias_ih_l0"] = [0.1, 0.2, -0.3, 0.05],
                ["bias_hh_l0"] = [0.2, -0.1, 0.1, 0.25],
            }, [0.7], 1, [0.5], [-0.6]);
        AssertClose("lstm h'", lstm.Output, [0.2383389459857113], HandAtol, HandRtol);
        AssertClose("lstm c'", lstm.CN!, [0.5157543757926524], HandAtol, HandRtol);
        // The one-step GRU (a_r = 0.2, a_z = -0.38, x = 1.2, h0 = -0.4) with f = tanh, g = sigmoid, clip 1.2:
        //   r = tanh(0.2), z = tanh(-0.38) (negative: h' = (1 - z) n + z h0 still)
        //   linear before reset: n pre-activation 0.88 + r*0.78 = 1.0339527497754253 (inside), h' = 1.150327076950911
        //   reset before linear: 0.88 + (-0.7)(r*(-0.4)) + 0.5 = 1.4352650896629733, clamped to 1.2: h' = 1.1923574485241366
        var gp = new Dictionary<string, double[]>
        {
            ["weight_ih_l0"] = [0.3, -0.5, 0.9], ["weight_hh_l0"] = [0.4, 0.2, -0.7],
            ["bias_ih_l0"] = [0.1, 0, -0.2], ["bias_hh_l0"] = [-0.1, 0.3, 0.5],
        };
        var lbr = RunSingle(new RecurrentSpec("gru", 1, 1, ActivationF: "tanh", ActivationG: "sigmoid", Clip: 1.2), gp, [1.2], 1, [-0.4], null);
        AssertClose("gru linear-before-reset h'", lbr.Output, [1.150327076950911], HandAtol, HandRtol);
        var orig = RunSingle(new RecurrentSpec("gru", 1, 1, GruLinearBeforeReset: false, ActivationF: "tanh", ActivationG: "sigmoid", Clip: 1.2),
            gp, [1.2], 1, [-0.4], null);
        AssertClose("gru reset-before-linear h'", orig.Output, [1.1923574485241366], HandAtol, HandRtol);
        // The two-step RNN below with f = sigmoid, clip 0.1: a_0 = 0.13 -> σ(0.1) = 0.52497918747894;
        // a_1 = -0.9 + 0.1 - 0.6 h_0 - 0.3 = -1.414987512487364 -> σ(-0.1) = 0.47502081252106.
        var rnn = RunSingle(new RecurrentSpec("rnn_tanh", 1, 1, ActivationF: "sigmoid", Clip: 0.1),
            new Dictionary<string, double[]> { ["weight_ih_l0"] = [0.9], ["weight_hh_l0"] = [-0.6], ["bias_ih_l0"] = [0.1], ["bias_hh_l0"] = [-0.3] },
            [0.5, -1.0], 2, [0.2], null);
        AssertClose("rnn output", rnn.Output, [0.52497918747894, 0.47502081252106], HandAtol, HandRtol);
        // A clamped pre-activation passes no gradient: both were clamped, so nothing reaches the input, h0 or the weights.
        Assert.All(rnn.GradInput.Concat(rnn.GradH0).Concat(rnn.ParamGrads.Values.SelectMany(g => g)), g => Assert.Equal(0.0, g));
        var unclamped = RunSingle(new RecurrentSpec("rnn_tanh", 1, 1, ActivationF: "sigmoid", Clip: 0.2),
            new Dictionary<string, double[]> { ["weight_ih_l0"] = [0.9], ["weight_hh_l0"] = [-0.6], ["bias_ih_l0"] = [0.1], ["bias_hh_l0"] = [-0.3] },
            [0.5, -1.0], 2, [0.2], null);
        Assert.NotEqual(0.0, unclamped.GradInput[0]); // a_0 = 0.13 is inside 0.2: the first step passes its gradient
        Assert.Equal(0.0, unclamped.GradInput[1]);
    }

    [Fact]
    public void Oracle_rnn_two_steps_match_hand_computation()
    {
        // I = H = 1, W_ih = 0.9, W_hh = -0.6, b_ih = 0.1, b_hh = -0.3, x = (0.5, -1.0), h0 = 0.2.
        // tanh: a_0 = 0.45 + 0.1 - 0.12 - 0.3 = 0.13,            h_0 = tanh(0.13) = 0.1292725836060584
        //       a_1 = -0.9 + 0.1 - 0.6 h_0 - 0.3 = -1.177563550163635, h_1 = -0.8266817898403355
        // relu: a_0 = 0.13, h_0 = 0.13; a_1 = -0.9 + 0.1 - 0.078 - 0.3 = -1.178, h_1 = 0
        var p = new Dictionary<string, double[]>
        {
            ["weight_ih_l0"] = [0.9], ["weight_hh_l0"] = [-0.6], ["bias_ih_l0"] = [0.1], ["bias_hh_l0"] = [-0.3],
        };
        var tanh = RunSingle(new RecurrentSpec("rnn_tanh", 1, 1), p, [0.5, -1.0], 2, [0.2], null);
        AssertClose("tanh output", tanh.Output, [0.1292725836060584, -0.8266817898403355], HandAtol, HandRtol);
        AssertClose("tanh h_n", tanh.HN, [-0.8266817898403355], HandAtol, HandRtol);
        Assert.Null(tanh.CN);
        var relu = RunSingle(new RecurrentSpec("rnn_relu", 1, 1), p, [0.5, -1.0], 2, [0.2], null);
        AssertClose("relu output", relu.Output, [0.13, 0.0], HandAtol, HandRtol);
        AssertClose("relu h_n", relu.HN, [0.0], HandAtol, HandRtol);
    }

    [Fact]
    public void Oracle_gru_one_step_matches_hand_computation_in_both_forms()
    {
        // I = H = 1, rows r, z, n. W_ih = (0.3, -0.5, 0.9), W_hh = (0.4, 0.2, -0.7), b_ih = (0.1, 0, -0.2),
        // b_hh = (-0.1, 0.3, 0.5), x = 1.2, h0 = -0.4.
        // a_r = 0.36 + 0.1 - 0.16 - 0.1 = 0.2,  r = σ(0.2)   = 0.5498339973124778
        // a_z = -0.6 + 0 - 0.08 + 0.3 = -0.38,  z = σ(-0.38) = 0.4061268970658573
        // linear before reset: n = tanh(1.08 - 0.2 + r*(0.28 + 0.5)) = 0.8639893431030712
        // reset before linear: n = tanh(1.08 - 0.2 + (-0.7)(r*(-0.4)) + 0.5) = 0.9110987180791241
        // h' = (1 - z) n + z h0 = 0.3506492732643095 and 0.3786262639586261
        var p = new Dictionary<string, double[]>
        {
            ["weight_ih_l0"] = [0.3, -0.5, 0.9], ["weight_hh_l0"] = [0.4, 0.2, -0.7],
            ["bias_ih_l0"] = [0.1, 0, -0.2], ["bias_hh_l0"] = [-0.1, 0.3, 0.5],
        };
        var lbr = RunSingle(new RecurrentSpec("gru", 1, 1), p, [1.2], 1, [-0.4], null);
        AssertClose("linear-before-reset h'", lbr.Output, [0.3506492732643095], HandAtol, HandRtol);
        var onnx = RunSingle(new RecurrentSpec("gru", 1, 1, GruLinearBeforeReset: false), p, [1.2], 1, [-0.4], null);
        AssertClose("reset-before-linear h'", onnx.Output, [0.3786262639586261], HandAtol, HandRtol);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Structure: lengths, reverse direction, stacking, names
    // ------------------------------------------------------------------------------------------------------------

    public static TheoryData<string> Cells => new("rnn_tanh", "rnn_relu", "lstm", "gru", "lstm_peepholes_coupled", "lstm_onnx_functions",
        "gru_onnx_functions", "rnn_onnx_functions");

    /// <summary>A cell by name; *_onnx_functions: ONNX's activations and a clip.</summary>
    private static RecurrentSpec SpecFor(string cell, int numLayers = 1, bool bidirectional = false) => cell switch
    {
        "lstm_peepholes_coupled" => new("lstm", I, H, numLayers, bidirectional, Peepholes: true, CoupledInputForget: true),
        "lstm_onnx_functions" => new("lstm", I, H, numLayers, bidirectional, ProjSize: 2, ActivationF: "tanh", ActivationG: "relu",
            ActivationH: "sigmoid", Clip: 0.5),
        "gru_onnx_functions" => new("gru", I, H, numLayers, bidirectional, GruLinearBeforeReset: false, ActivationF: "relu", Clip: 0.5),
        "rnn_onnx_functions" => new("rnn_tanh", I, H, numLayers, bidirectional, ActivationF: "sigmoid", Clip: 0.5),
        _ => new(cell, I, H, numLayers, bidirectional, ProjSize: cell == "lstm" ? 2 : 0),
    };

    [Theory]
    [MemberData(nameof(Cells))]
    public void Oracle_lengths_all_T_equal_no_lengths(string cell)
    {
        var pb = Problem.Create(SpecFor(cell, 2, true), 4, 3, seed: 7, stateTargets: true);
        NaiveResult plain = pb.Run();
        pb.Lengths = [4, 4, 4];
        NaiveResult withLengths = pb.Run();
        // Same steps in the same order: bitwise equal.
        AssertClose("output", withLengths.Output, plain.Output);
        AssertClose("h_n", withLengths.HN, plain.HN);
        Assert.Equal(plain.Loss, withLengths.Loss);
        AssertClose("d input", withLengths.GradInput, plain.GradInput);
        AssertClose("d h0", withLengths.GradH0, plain.GradH0);
        foreach (var (name, g) in plain.ParamGrads) AssertClose("d " + name, withLengths.ParamGrads[name], g);
        if (pb.Spec.Cell == "lstm")
        {
            AssertClose("c_n", withLengths.CN!, plain.CN!);
            AssertClose("d c0", withLengths.GradC0!, plain.GradC0!);
        }
    }

    /// <summary>
    /// A batch with lengths is its sequences run one at a time, each with T = its own length: outputs, h_n, input and
    /// state gradients per sequence; the loss and the parameter gradients summed (plus the constant loss of the padded
    /// positions, whose output is 0).
    /// </summary>
    [Theory]
    [MemberData(nameof(Cells))]
    public void Oracle_lengths_equal_sequences_run_alone(string cell)
    {
        var spec = SpecFor(cell, 2, true);
        int t = 4, b = 3, hout = spec.OutputSize, d = spec.Directions, ld = spec.NumLayers * d, hs = spec.HiddenSize;
        int[] lengths = [4, 1, 2];
        var pb = Problem.Create(spec, t, b, seed: 11, lengths, stateTargets: true);
        NaiveResult all = pb.Run();

        double loss = 0;
        var grads = pb.Params.ToDictionary(kv => kv.Key, kv => new double[kv.Value.Length]);
        for (int s = 0; s < b; s++)
        {
            int n = lengths[s];
            double[] Rows(double[] a, int steps, int rows, int width) // (steps, rows, width)[:, s, :]
            {
                var o = new double[steps * width];
                for (int k = 0; k < steps; k++) Array.Copy(a, (k * rows + s) * width, o, k * width, width);
                return o;
            }
            var alone = new NaiveRecurrent(spec, pb.Params).Run(Rows(pb.Input, n, b, I), n, 1, Rows(pb.H0, ld, b, hout),
                pb.C0 is null ? null : Rows(pb.C0, ld, b, hs), Rows(pb.Target, n, b, d * hout), null,
                Rows(pb.TargetHn!, ld, b, hout), pb.TargetCn is null ? null : Rows(pb.TargetCn, ld, b, hs));
            var outAll = Rows(all.Output, t, b, d * hout);
            AssertClose($"output of sequence {s}", outAll[..(n * d * hout)], alone.Output);
            Assert.All(outAll[(n * d * hout)..], v => Assert.Equal(0.0, v));
            AssertClose($"h_n of sequence {s}", Rows(all.HN, ld, b, hout), alone.HN);
            var gxAll = Rows(all.GradInput, t, b, I);
            AssertClose($"d input of sequence {s}", gxAll[..(n * I)], alone.GradInput);
            Assert.All(gxAll[(n * I)..], v => Assert.Equal(0.0, v));
            AssertClose($"d h0 of sequence {s}", Rows(all.GradH0, ld, b, hout), alone.GradH0);
            if (pb.Spec.Cell == "lstm")
            {
                AssertClose($"c_n of sequence {s}", Rows(all.CN!, ld, b, hs), alone.CN!);
                AssertClose($"d c0 of sequence {s}", Rows(all.GradC0!, ld, b, hs), alone.GradC0!);
            }
            loss += alone.Loss;
            foreach (var (name, g) in alone.ParamGrads)
                for (int i = 0; i < g.Length; i++) grads[name][i] += g[i];
            // The padded positions contribute 0.5 target^2 each.
            var tgt = Rows(pb.Target, t, b, d * hout);
            for (int i = n * d * hout; i < tgt.Length; i++) loss += 0.5 * tgt[i] * tgt[i];
        }
        // Sums of the same terms in a different order: a few ulps.
        Assert.True(Math.Abs(loss - all.Loss) <= 1e-14 * Math.Abs(all.Loss), $"loss {all.Loss:R} vs {loss:R}");
        foreach (var (name, g) in all.ParamGrads) AssertClose("d " + name, g, grads[name], 1e-15, 1e-13);
    }

    /// <summary>
    /// The reverse half of a bidirectional layer is a forward layer with the _reverse weights run on each sequence
    /// reversed within its own length; its output comes out reversed the same way.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cells))]
    public void Oracle_reverse_direction_equals_forward_on_reversed_input(string cell)
    {
        var bi = SpecFor(cell, 1, true);
        var uni = bi with { Bidirectional = false };
        int t = 4, b = 3, hout = bi.OutputSize, hs = bi.HiddenSize;
        int[] lengths = [4, 2, 3];
        var pb = Problem.Create(bi, t, b, seed: 5, lengths);
        NaiveResult both = pb.Run();

        var revParams = pb.Params.Where(kv => kv.Key.EndsWith("_reverse", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[..^"_reverse".Length], kv => kv.Value);
        var xRev = new double[pb.Input.Length]; // (T, B, I), sequence s reversed over its first len_s steps
        for (int s = 0; s < b; s++)
            for (int k = 0; k < lengths[s]; k++)
                Array.Copy(pb.Input, ((lengths[s] - 1 - k) * b + s) * I, xRev, (k * b + s) * I, I);
        double[] Direction1(double[] a, int width) => a[(b * width)..]; // (2, B, width)[1]
        var fwd = new NaiveRecurrent(uni, revParams).Run(xRev, t, b, Direction1(pb.H0, hout),
            pb.C0 is null ? null : Direction1(pb.C0, hs), new double[t * b * hout], lengths);

        for (int s = 0; s < b; s++)
        {
            for (int k = 0; k < t; k++)
            {
                int tb = k < lengths[s] ? lengths[s] - 1 - k : k; // padded positions stay where they are (both 0)
                for (int j = 0; j < hout; j++)
                    Assert.Equal(fwd.Output[(k * b + s) * hout + j], both.Output[(tb * b + s) * 2 * hout + hout + j]);
            }
        }
        AssertClose("h_n", Direction1(both.HN, hout), fwd.HN);
        if (pb.Spec.Cell == "lstm") AssertClose("c_n", Direction1(both.CN!, hs), fwd.CN!);
    }

    /// <summary>Layer 1 of a two-layer stack is a one-layer run on layer 0's (both-direction) output.</summary>
    [Theory]
    [MemberData(nameof(Cells))]
    public void Oracle_two_layers_equal_two_chained_single_layers(string cell)
    {
        var spec = SpecFor(cell, 2, true);
        int t = 3, b = 2, d = 2, hout = spec.OutputSize, hs = spec.HiddenSize;
        int[] lengths = [2, 3];
        var pb = Problem.Create(spec, t, b, seed: 9, lengths);
        NaiveResult stack = pb.Run();

        Dictionary<string, double[]> Layer(int l) => pb.Params.Where(kv => kv.Key.Contains($"_l{l}", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key.Replace($"_l{l}", "_l0", StringComparison.Ordinal), kv => kv.Value);
        double[] States(double[] a, int l, int width) => a[(l * d * b * width)..((l + 1) * d * b * width)];
        var first = new NaiveRecurrent(spec with { NumLayers = 1 }, Layer(0)).Run(pb.Input, t, b, States(pb.H0, 0, hout),
            pb.C0 is null ? null : States(pb.C0, 0, hs), new double[t * b * d * hout], lengths);
        var second = new NaiveRecurrent(spec with { NumLayers = 1, InputSize = d * hout }, Layer(1)).Run(first.Output, t, b,
            States(pb.H0, 1, hout), pb.C0 is null ? null : States(pb.C0, 1, hs), new double[t * b * d * hout], lengths);

        AssertClose("output", stack.Output, second.Output);
        AssertClose("h_n layer 0", States(stack.HN, 0, hout), first.HN);
        AssertClose("h_n layer 1", States(stack.HN, 1, hout), second.HN);
        if (pb.Spec.Cell == "lstm")
        {
            AssertClose("c_n layer 0", States(stack.CN!, 0, hs), first.CN!);
            AssertClose("c_n layer 1", States(stack.CN!, 1, hs), second.CN!);
        }
    }

    [Fact]
    public void Oracle_parameter_names_and_shapes_follow_pytorch_state_dict()
    {
        var names = NaiveRecurrent.ParameterShapes(new RecurrentSpec("lstm", 7, 20, NumLayers: 2, Bidirectional: true, ProjSize: 5))
            .Select(p => $"{p.Name}:{string.Join('x', p.Shape)}");
        // As printed by [f"{k}:{'x'.join(map(str, v.shape))}" for k, v in
        //   torch.nn.LSTM(7, 20, num_layers=2, bidirectional=True, proj_size=5).state_dict().items()]
        string[] expected =
        [
            "weight_ih_l0:80x7", "weight_hh_l0:80x5", "bias_ih_l0:80", "bias_hh_l0:80", "weight_hr_l0:5x20",
            "weight_ih_l0_reverse:80x7", "weight_hh_l0_reverse:80x5", "bias_ih_l0_reverse:80", "bias_hh_l0_reverse:80", "weight_hr_l0_reverse:5x20",
            "weight_ih_l1:80x10", "weight_hh_l1:80x5", "bias_ih_l1:80", "bias_hh_l1:80", "weight_hr_l1:5x20",
            "weight_ih_l1_reverse:80x10", "weight_hh_l1_reverse:80x5", "bias_ih_l1_reverse:80", "bias_hh_l1_reverse:80", "weight_hr_l1_reverse:5x20",
        ];
        Assert.Equal(expected, names);

        var gru = NaiveRecurrent.ParameterShapes(new RecurrentSpec("gru", 3, 4, Bias: false)).Select(p => $"{p.Name}:{string.Join('x', p.Shape)}");
        Assert.Equal(["weight_ih_l0:12x3", "weight_hh_l0:12x4"], gru);
    }

    [Fact]
    public void Oracle_rejects_bad_parameters_and_shapes()
    {
        var spec = new RecurrentSpec("rnn_tanh", 2, 3);
        var p = NaiveRecurrent.ParameterShapes(spec).ToDictionary(s => s.Name, s => new double[s.Shape.Aggregate(1, (a, x) => a * x)]);
        var missing = new Dictionary<string, double[]>(p);
        missing.Remove("bias_hh_l0");
        Assert.Contains("bias_hh_l0", Assert.Throws<ArgumentException>(() => new NaiveRecurrent(spec, missing)).Message);
        var extra = new Dictionary<string, double[]>(p) { ["weight_hr_l0"] = [1] };
        Assert.Contains("weight_hr_l0", Assert.Throws<ArgumentException>(() => new NaiveRecurrent(spec, extra)).Message);
        var wrong = new Dictionary<string, double[]>(p) { ["weight_ih_l0"] = new double[5] };
        Assert.Contains("expected 3*2 = 6", Assert.Throws<ArgumentException>(() => new NaiveRecurrent(spec, wrong)).Message);

        var net = new NaiveRecurrent(spec, p);
        Assert.Contains("T*B*I", Assert.Throws<ArgumentException>(() => net.Run(new double[5], 2, 1, new double[3], null, new double[6])).Message);
        Assert.Contains("lengths[0]", Assert.Throws<ArgumentException>(() =>
            net.Run(new double[4], 2, 1, new double[3], null, new double[6], lengths: [3])).Message);
        Assert.Throws<ArgumentException>(() => net.Run(new double[4], 2, 1, new double[3], new double[3], new double[6]));
    }
}
