using System.Globalization;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnSimd.Kernels;
using RnnSimd.Layers;
using RnnSimd.Tests.Reference;
using Xunit.Abstractions;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Cells;

/// <summary>
/// The reduced-precision inference networks (<see cref="RecurrentNetwork.ToInference"/>, issue 11): int8 steps against
/// the double int8 oracle (<see cref="NaiveReducedStep"/>, teacher-forced, within a bound derived from float32
/// rounding), bf16 networks against the float64 oracle on their own weights, the quantization error against float32
/// (reported), the bitwise contracts (every kernel set; Step at batch 1 and B, the multi-stream tick and inference
/// Forward as one computation; FromReduced and ToInference(Float32) as copies), threads, zero allocation and errors.
/// Also run by the ISA-matrix child processes (<see cref="Kernels.IsaMatrix"/>): with AVX-512 off, with every intrinsic
/// off, and without AVX-VNNI (the int8 products then take vpmaddwd at 256 and at 512 bits).
/// </summary>
[Trait("Category", "Cells")]
public sealed class ReducedPrecisionTests(ITestOutputHelper output)
{
    private static readonly Precision[] Reduced = [Precision.Int8, Precision.BFloat16];

    private static readonly string[] AllCells = ["lstm", "lstmp", "lstm_peep", "lstmp_peep", "lstm_peep_coupled", "gru", "gru_orig",
        "rnn_tanh", "rnn_relu", "lstm_onnx", "lstmp_onnx", "gru_orig_onnx", "rnn_onnx"];

    public static TheoryData<string, Precision> CellsAndPrecisions()
    {
        var d = new TheoryData<string, Precision>();
        foreach (var cell in AllCells)
            foreach (var p in Reduced) d.Add(cell, p);
        return d;
    }

    public static TheoryData<string> Cells() => new(AllCells);

    /// <summary>One of each kind of cell code (compiled LSTM with projection and peepholes, configured LSTM, GRU of either form, RNN) for the slower thread and allocation tests.</summary>
    public static TheoryData<string, Precision> SomeCellsAndPrecisions()
    {
        var d = new TheoryData<string, Precision>();
        foreach (var cell in new[] { "lstmp_peep", "lstm_onnx", "gru", "gru_orig_onnx", "rnn_relu" })
            foreach (var p in Reduced) d.Add(cell, p);
        return d;
    }

    private static RecurrentOptions Options(string cell, int layers = 2, bool bidi = false) =>
        RecurrentContractTests.Options(cell, layers, input: 17, hidden: 33, bidi: bidi);

    private static bool HasCell(RecurrentOptions o) => o.Cell == CellType.Lstm;

    // ================================================================== 1. int8 against the double int8 oracle

    /// <summary>An int8 property case: shapes (sizes off vector multiples too), the cell and its options, and the data's kind.</summary>
    /// <param name="WeightScale">0: the network's own initialisation U(-1/sqrt(H), 1/sqrt(H)); else weights U(-s, s) (saturating gates at 2).</param>
    /// <param name="ZeroStart">The state starts at zero (h's scale is 0 at the first step: every code 0) instead of random.</param>
    /// <param name="ZeroRows">The first and last row of every weight matrix are zero (a row scale of 0).</param>
    public sealed record Int8Case(string Cell, bool Lbr, bool Peep, bool Coupled, int Proj, int Layers, int T, int B, int I, int H,
        bool Bias, float WeightScale, bool ZeroStart, bool ZeroRows, int Seed, string? F = null, string? G = null, string? Hc = null, float Clip = 0)
    {
        public RecurrentOptions Options => new(RecurrentOptions.ParseCell(Cell), I, H, Layers, false, Bias, Proj, Lbr,
            Peepholes: Peep, CoupledInputForget: Coupled, ActivationF: RecurrentProperties.Activation(F),
            ActivationG: RecurrentProperties.Activation(G), ActivationH: RecurrentProperties.Activation(Hc), Clip: Clip);

        public RecurrentSpec Spec => new(Cell, I, H, Layers, false, Bias, Proj, Lbr, Peep, Coupled, F, G, Hc, Clip);

        /// <summary>The fields only (the constructor's arguments, to paste into a regression test).</summary>
        public override string ToString() => string.Create(CultureInfo.InvariantCulture,
            $"Int8Case(\"{Cell}\", {Lbr}, {Peep}, {Coupled}, {Proj}, {Layers}, {T}, {B}, {I}, {H}, {Bias}, {WeightScale}f, {ZeroStart}, {ZeroRows}, {Seed}, {Q(F)}, {Q(G)}, {Q(Hc)}, {Clip}f)")
            .Replace("True", "true").Replace("False", "false");

        private static string Q(string? s) => s is null ? "null" : $"\"{s}\"";
    }

    private static readonly int[] InputSizes = [1, 3, 4, 7, 15, 16, 17, 31, 33, 65];
    private static readonly int[] HiddenSizes = [1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 64];

    private static readonly Gen<string?> AnyActivation = Gen.Elements<string?>(null, "sigmoid", "tanh", "relu");

    /// <summary>
    /// PyTorch's functions (3 in 4) or ONNX's activations and clip (f, g, h per slot the cell has). An LSTM or GRU with a
    /// relu slot always gets a clip: unclipped, relu gates multiply unbounded values (i g and f c, z h), which grow doubly
    /// exponentially over steps and layers and leave the float range within a few (found at 3 layers, weights U(-2, 2):
    /// c = 9e53 in the oracle, infinity in float32), where no rounding bound applies.
    /// </summary>
    private static Gen<(string?, string?, string?, float)> Functions(string cell) => Gen.Frequency(
        (3, Gen.Constant(((string?)null, (string?)null, (string?)null, 0f))),
        (1, from f in AnyActivation
            from g in cell is "lstm" or "gru" ? AnyActivation : Gen.Constant<string?>(null)
            from h in cell == "lstm" ? AnyActivation : Gen.Constant<string?>(null)
            from clip in cell is "lstm" or "gru" && (f == "relu" || g == "relu" || h == "relu") ? Gen.Elements(0.5f, 1f, 3f) : Gen.Elements(0f, 0.5f, 1f, 3f)
            select (f, g, h, clip)));

    private static Gen<Int8Case> Int8Cases(Gen<string> cells) =>
        from cell in cells
        from lbr in cell == "gru" ? Gen.Elements(true, false) : Gen.Constant(true)
        from variant in cell == "lstm" ? Gen.Elements((false, false), (true, false), (false, true), (true, true)) : Gen.Constant((false, false))
        from layers in Gen.Elements(1, 2, 3)
        from t in Gen.Elements(1, 2, 4)
        from b in Gen.Elements(1, 1, 2)
        from i in Gen.Elements(InputSizes)
        from h in Gen.Elements(HiddenSizes)
        from proj in cell == "lstm" && h > 1 ? Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(1, h - 1))) : Gen.Constant(0)
        from bias in Gen.Frequency((4, Gen.Constant(true)), (1, Gen.Constant(false)))
        from scale in Gen.Elements(0f, 0f, 0.5f, 2f)
        from zeroStart in Gen.Elements(false, true)
        from zeroRows in Gen.Frequency((4, Gen.Constant(false)), (1, Gen.Constant(true)))
        from fn in Functions(cell)
        from seed in Seed
        select new Int8Case(cell, lbr, variant.Item1, variant.Item2, proj, layers, t, b, i, h, bias, scale, zeroStart, zeroRows, seed,
            fn.Item1, fn.Item2, fn.Item3, fn.Item4);

    /// <summary>Towards one layer, one step, one row, smaller sizes, no projection, PyTorch's functions, plain data.</summary>
    private static IEnumerable<Int8Case> Shrink(Int8Case g)
    {
        if (g.Layers > 1) yield return g with { Layers = g.Layers - 1 };
        if (g.T > 1) yield return g with { T = g.T - 1 };
        if (g.B > 1) yield return g with { B = 1 };
        if (g.H > 1) { int h = g.H / 2; yield return g with { H = h, Proj = h > 1 ? Math.Min(g.Proj, h - 1) : 0 }; }
        if (g.I > 1) yield return g with { I = g.I / 2 };
        if (g.Proj > 0) yield return g with { Proj = 0 };
        if (g.F is not null || g.G is not null || g.Hc is not null || g.Clip != 0) yield return g with { F = null, G = null, Hc = null, Clip = 0 };
        if (g.WeightScale != 0) yield return g with { WeightScale = 0 };
        if (g.ZeroRows) yield return g with { ZeroRows = false };
    }

    private static Property Int8Property(Gen<string> cells) =>
        Prop.ForAll(Arb.From(Int8Cases(cells), Shrink), g => { foreach (var set in Sets) CheckInt8Case(g, set); });

    [Property(MaxTest = 30)]
    public Property Int8_lstm_steps_match_the_int8_oracle() => Int8Property(Gen.Constant("lstm"));

    [Property(MaxTest = 25)]
    public Property Int8_gru_steps_match_the_int8_oracle() => Int8Property(Gen.Constant("gru"));

    [Property(MaxTest = 20)]
    public Property Int8_rnn_steps_match_the_int8_oracle() => Int8Property(Gen.Elements("rnn_tanh", "rnn_relu"));

    /// <summary>The named variants at least once each, at every kernel set, with sizes off the vector multiples.</summary>
    [Theory]
    [InlineData("lstm", false, false, 0, true)]
    [InlineData("lstm", false, false, 5, true)]   // lstmp
    [InlineData("lstm", true, false, 0, true)]    // lstm_peep
    [InlineData("lstm", true, true, 4, true)]     // projection, peepholes, coupled gates
    [InlineData("gru", false, false, 0, true)]
    [InlineData("gru", false, false, 0, false)]   // gru_orig
    [InlineData("rnn_tanh", false, false, 0, true)]
    [InlineData("rnn_relu", false, false, 0, true)]
    public void Int8_named_variants_match_the_int8_oracle(string cell, bool peep, bool coupled, int proj, bool lbr)
    {
        foreach (var set in Sets)
            CheckInt8Case(new Int8Case(cell, lbr, peep, coupled, proj, Layers: 3, T: 4, B: 2, I: 19, H: 21, Bias: true, WeightScale: 0,
                ZeroStart: true, ZeroRows: false, Seed: 17), set);
    }

    /// <summary>
    /// Cases the properties found, kept (the test's bound was incomplete, not the library): values shrunk by relu gates
    /// into the subnormal range, where a rounding's error is absolute (2^-150), and where s_w * s_x underflows and its
    /// rounding is multiplied by the integer dot (the projection of an m near 1e-40).
    /// </summary>
    [Theory]
    [InlineData("lstm", true, true, false, 0, 3, 2, 1, 4, 15, false, 0f, true, false, 2075953172, "relu", null, "relu", 3f)]
    [InlineData("lstm", true, true, true, 2, 3, 1, 1, 1, 8, false, 0f, true, false, 2030262843, "tanh", "relu", null, 3f)]
    public void Int8_cases_found_by_the_properties(string cell, bool lbr, bool peep, bool coupled, int proj, int layers, int t, int b, int i, int h,
        bool bias, float weightScale, bool zeroStart, bool zeroRows, int seed, string? f, string? g, string? hc, float clip)
    {
        var c = new Int8Case(cell, lbr, peep, coupled, proj, layers, t, b, i, h, bias, weightScale, zeroStart, zeroRows, seed, f, g, hc, clip);
        foreach (var set in Sets) CheckInt8Case(c, set);
    }

    /// <summary>
    /// A float32 network for a case: seeded PyTorch-style parameters, the weight matrices optionally replaced by U(-s, s)
    /// and the first and last row of each zeroed.
    /// </summary>
    private static RecurrentNetwork Source(RecurrentOptions o, int seed, float weightScale, bool zeroRows, KernelSet set)
    {
        var net = new RecurrentNetwork(o, (ulong)seed, set);
        int k = 0;
        foreach (var e in net.Parameters.Entries)
        {
            if (!RecurrentNetwork.IsWeightMatrix(e.Name)) continue;
            var v = net.Parameters.View(e);
            k++;
            if (weightScale > 0) Data(seed + 7919 * k, v.Length, weightScale).CopyTo(v);
            if (zeroRows) { v[..e.Shape[1]].Clear(); v[^e.Shape[1]..].Clear(); }
        }
        net.ParametersChanged();
        return net;
    }

    /// <summary>
    /// One case at one kernel set, teacher-forced: before every step the state of each layer is read from the network (its
    /// own float32 h and c), the network steps, and each layer's new h (and c) is compared with the oracle's step from that
    /// state (layer l &gt; 0 from the network's new h of layer l - 1), within <see cref="Int8StepAllowance"/>. So every
    /// comparison is of one step, and rounding never accumulates over steps or layers.
    /// </summary>
    internal static void CheckInt8Case(Int8Case g, KernelSet set)
    {
        var spec = g.Spec;
        var o = g.Options;
        var src = Source(o, g.Seed, g.WeightScale, g.ZeroRows, set);
        var net = src.ToInference(Precision.Int8);
        Assert.Equal(Precision.Int8, net.Precision);
        Assert.Same(set, net.Kernels);
        var w = AssertStoredForm(src, net);
        int L = g.Layers, B = g.B, H = g.H, Hout = o.OutputHidden, I = g.I;
        bool lstm = g.Cell == "lstm";
        var oracles = new NaiveReducedStep[L];
        var second = new Int8Matrix?[L];  // W_hr, or the original GRU's W_hn: the product of a vector the step computes
        var peep = new float[]?[L];
        for (int l = 0; l < L; l++)
        {
            string s = $"_l{l}";
            float[]? P(string name) => src.Parameters.Contains(name + s) ? src.Parameters[name + s].ToArray() : null;
            peep[l] = P("weight_peep");
            oracles[l] = new NaiveReducedStep(spec, l, w["weight_ih" + s], w["weight_hh" + s], g.Proj > 0 ? w["weight_hr" + s] : null,
                P("bias_ih"), P("bias_hh"), peep[l]);
            second[l] = g.Proj > 0 ? w["weight_hr" + s] : g.Cell == "gru" && !g.Lbr ? w["weight_hh" + s].RowBlock(2 * H, H) : null;
        }

        var rng = new Random(g.Seed);
        float[] R(int n, float scale) { var v = new float[n]; for (int k = 0; k < n; k++) v[k] = (float)((rng.NextDouble() * 2 - 1) * scale); return v; }
        var state = net.CreateState(B);
        if (!g.ZeroStart)
            for (int l = 0; l < L; l++) { R(B * Hout, 1f).CopyTo(state.Hidden(l)); if (lstm) R(B * H, 2f).CopyTo(state.Cell(l)); }
        var y = new float[B * Hout];
        for (int t = 0; t < g.T; t++)
        {
            float[] x = R(B * I, 2f);
            float[][] hPrev = Enumerable.Range(0, L).Select(l => state.Hidden(l).ToArray()).ToArray();
            float[][] cPrev = Enumerable.Range(0, L).Select(l => state.Cell(l).ToArray()).ToArray();
            net.Step(state, x, y);
            AssertBitwiseEqual($"output = top layer's h ({set} t={t})", state.Hidden(L - 1), y);
            for (int l = 0; l < L; l++)
                for (int b = 0; b < B; b++)
                {
                    float[] xin = l == 0 ? x.AsSpan(b * I, I).ToArray() : state.Hidden(l - 1).Slice(b * Hout, Hout).ToArray();
                    float[] h = hPrev[l].AsSpan(b * Hout, Hout).ToArray();
                    float[]? c = lstm ? cPrev[l].AsSpan(b * H, H).ToArray() : null;
                    var tr = oracles[l].Step(xin, h, c);
                    var (ah, ac) = Int8StepAllowance.Of(spec, tr, h, c, peep[l], second[l]);
                    string what = $"{set} t={t} layer {l} row {b} {g}";
                    AssertClose("int8 h' " + what, state.Hidden(l).Slice(b * Hout, Hout), tr.H, i => ah[i], 0);
                    if (lstm) AssertClose("int8 c' " + what, state.Cell(l).Slice(b * H, H), tr.C!, i => ac![i], 0);
                }
        }
    }

    /// <summary>
    /// The reduced network's stored form is the spec's conversion of the float32 network, bitwise: int8 codes and scales
    /// as <see cref="NaiveQuantized.QuantizeMatrix"/> gives them (one segment per row), bf16 values as
    /// <see cref="NaiveQuantized.RoundToBf16"/> (chosen by distance); its <see cref="RecurrentNetwork.Parameters"/> hold the
    /// values they stand for (q * s, one float multiply: q * (double)s is exact, so its rounding to float is that
    /// multiply) and the float32 biases and peepholes unchanged; GetReducedWeights lists every matrix once and nothing
    /// else. Returns the spec's int8 matrices by name (the oracle's weights, independent of the code under test).
    /// </summary>
    internal static Dictionary<string, Int8Matrix> AssertStoredForm(RecurrentNetwork src, RecurrentNetwork net)
    {
        Assert.Equal(src.Options, net.Options);
        var stored = net.GetReducedWeights().ToDictionary(t => t.Name);
        var int8 = new Dictionary<string, Int8Matrix>();
        foreach (var e in src.Parameters.Entries)
        {
            float[] w = src.Parameters.View(e).ToArray(), p = net.Parameters.View(e).ToArray();
            if (!RecurrentNetwork.IsWeightMatrix(e.Name))
            {
                AssertBitwiseEqual($"{e.Name} (float32, copied)", w, p);
                Assert.False(stored.ContainsKey(e.Name), $"{e.Name} is not a weight matrix but GetReducedWeights lists it");
                continue;
            }
            Assert.True(stored.Remove(e.Name, out var t), $"GetReducedWeights has no {e.Name}");
            int rows = e.Shape[0], cols = e.Shape[1];
            Assert.Equal((net.Precision, rows, cols), (t!.Precision, t.Rows, t.Cols));
            if (net.Precision == Precision.Int8)
            {
                var m = Int8Matrix.Quantize(rows, cols, w);
                int[] codes = t.Codes.ToArray().Select(q => (int)q).ToArray();
                int bad = -1;
                for (int i = 0; i < codes.Length && bad < 0; i++) if (codes[i] != m.Codes[i]) bad = i;
                Assert.True(bad < 0, bad < 0 ? "" : $"{e.Name}[{bad / cols}, {bad % cols}]: code {codes[bad]}, spec {m.Codes[bad]} (w = {w[bad]:R}, s = {m.Scales[bad / cols]:R})");
                AssertBitwiseEqual($"{e.Name} scales", m.Scales, t.Scales);
                AssertBitwiseEqual($"{e.Name} dequantized parameters", m.Codes.Select((q, i) => (float)(q * (double)m.Scales[i / cols])).ToArray(), p);
                int8[e.Name] = m;
            }
            else
            {
                float[] r = w.Select(NaiveQuantized.RoundToBf16).ToArray();
                AssertBitwiseEqual($"{e.Name} bf16", r, t.Bf16.ToArray().Select(b => BitConverter.UInt32BitsToSingle((uint)b << 16)).ToArray());
                AssertBitwiseEqual($"{e.Name} parameters", r, p);
            }
        }
        Assert.True(stored.Count == 0, $"GetReducedWeights lists tensors that are not weight matrices: {string.Join(", ", stored.Keys)}");
        return int8;
    }

    // ================================================================== 2. bf16 against the float64 oracle

    private static readonly int[] BfHidden = [1, 3, 7, 8, 15, 16, 17, 31, 33];
    private static readonly int[] BfInput = [1, 2, 7, 16, 17];

    private static Gen<RecurrentProperties.Case> Bf16Cases(Gen<string> cells) =>
        from cell in cells
        from lbr in Gen.Elements(true, false)
        from variant in cell == "lstm" ? Gen.Elements((false, false), (true, false), (false, true), (true, true)) : Gen.Constant((false, false))
        from layers in Gen.Elements(1, 2, 3)
        from bidi in Gen.Elements(false, true)
        from bias in Gen.Frequency((3, Gen.Constant(true)), (1, Gen.Constant(false)))
        from h in Gen.Elements(BfHidden)
        from proj in cell == "lstm" && h > 1 ? Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(1, h - 1))) : Gen.Constant(0)
        from t in Gen.Elements(1, 2, 3, 5)
        from b in Gen.Elements(1, 2, 3)
        from i in Gen.Elements(BfInput)
        from lengths in Gen.Elements(false, true)
        from fn in Functions(cell)
        from seed in Seed
        select new RecurrentProperties.Case(cell, cell != "gru" || lbr, layers, bidi, bias, proj, t, b, i, h, lengths, seed,
            variant.Item1, variant.Item2, fn.Item1, fn.Item2, fn.Item3, fn.Item4);

    private static IEnumerable<RecurrentProperties.Case> Shrink(RecurrentProperties.Case g)
    {
        if (g.Layers > 1) yield return g with { Layers = g.Layers - 1 };
        if (g.Bidi) yield return g with { Bidi = false };
        if (g.T > 1) yield return g with { T = g.T - 1 };
        if (g.B > 1) yield return g with { B = 1 };
        if (g.UseLengths) yield return g with { UseLengths = false };
        if (g.Proj > 0) yield return g with { Proj = 0 };
        if (g.F is not null || g.G is not null || g.Hc is not null || g.Clip != 0) yield return g with { F = null, G = null, Hc = null, Clip = 0 };
    }

    /// <summary>
    /// RecurrentProperties' forward tolerance, |a - e| &lt;= 1e-5 max|e| + 1e-4 |e|: the bf16 weights are exact float32
    /// numbers given to the oracle as they are, and the products are float32 products of them (PackedBf16GemvMatrix's
    /// contract), so the float32 accumulation bound derived there applies unchanged.
    /// </summary>
    private static void Close(string what, ReadOnlySpan<float> actual, double[] expected)
    {
        double scale = expected.Length == 0 ? 0 : expected.Max(Math.Abs);
        AssertClose(what, actual, expected, _ => 1e-5 * scale + 1e-30, 1e-4);
    }

    private static double[] D2(float[] v) => v.Select(f => (double)f).ToArray();

    /// <summary>Inference Forward (every option: layers, both directions, lengths, h0, c0) and, unidirectional, Step of the same rows, against NaiveRecurrent on the network's own parameters.</summary>
    internal static void CheckBf16Case(RecurrentProperties.Case g, KernelSet set)
    {
        var o = g.Options;
        var src = new RecurrentNetwork(o, (ulong)g.Seed, set);
        var net = src.ToInference(Precision.BFloat16);
        AssertStoredForm(src, net);
        var rng = new Random(g.Seed);
        float[] R(int n) { var v = new float[n]; for (int k = 0; k < n; k++) v[k] = (float)(rng.NextDouble() * 2 - 1); return v; }
        int L = o.NumLayers, D = o.Directions, Hout = o.OutputHidden, H = o.HiddenSize, T = g.T, B = g.B;
        bool lstm = g.Cell == "lstm";
        float[] x = R(T * B * g.I), h0 = R(L * D * B * Hout), c0 = lstm ? R(L * D * B * H) : [];
        int[]? lengths = g.UseLengths ? Enumerable.Range(0, B).Select(_ => 1 + rng.Next(T)).ToArray() : null;
        var parameters = net.Parameters.Entries.ToDictionary(e => e.Name, e => D2(net.Parameters.View(e).ToArray()));
        var oracle = new NaiveRecurrent(g.Spec, parameters).Run(D2(x), T, B, D2(h0), lstm ? D2(c0) : null, new double[T * B * D * Hout], lengths);

        float[] y = new float[T * B * D * Hout], hN = new float[h0.Length], cN = new float[c0.Length];
        net.Forward(x, T, B, h0, c0, y, hN, cN, net.CreateInferenceWorkspace(T, B), lengths);
        string tag = $"bf16 {set} {g}";
        Close($"output {tag}", y, oracle.Output);
        Close($"h_n {tag}", hN, oracle.HN);
        if (lstm) Close($"c_n {tag}", cN, oracle.CN!);
        if (g.Bidi) return;

        var state = net.CreateState(B);
        for (int l = 0; l < L; l++)
        {
            h0.AsSpan(l * B * Hout, B * Hout).CopyTo(state.Hidden(l));
            if (lstm) c0.AsSpan(l * B * H, B * H).CopyTo(state.Cell(l));
        }
        var step = new float[B * Hout];
        double scale = oracle.Output.Max(Math.Abs);
        for (int t = 0; t < T; t++)
        {
            net.Step(state, x.AsSpan(t * B * g.I, B * g.I), step);
            for (int b = 0; b < B; b++)
            {
                if (lengths is not null && t >= lengths[b]) continue; // Step knows no lengths: the row steps on
                AssertClose($"Step t={t} row {b} {tag}", step.AsSpan(b * Hout, Hout), oracle.Output.AsSpan((t * B + b) * Hout, Hout).ToArray(),
                    _ => 1e-5 * scale + 1e-30, 1e-4);
            }
        }
    }

    private static Property Bf16Property(Gen<string> cells) =>
        Prop.ForAll(Arb.From(Bf16Cases(cells), Shrink), g => { foreach (var set in Sets) CheckBf16Case(g, set); });

    [Property(MaxTest = 25)]
    public Property Bf16_lstm_matches_the_float64_oracle_on_its_weights() => Bf16Property(Gen.Constant("lstm"));

    [Property(MaxTest = 20)]
    public Property Bf16_gru_and_rnn_match_the_float64_oracle_on_their_weights() => Bf16Property(Gen.Elements("gru", "gru", "rnn_tanh", "rnn_relu"));

    // ================================================================== 3. the quantization error, reported

    /// <summary>
    /// S2's shape (I = 64, H = 256, T = 128, B = 1; PyTorch's initialisation, inputs U(-1, 1)): the normwise error of the
    /// int8 and bf16 networks against the float32 network, over the whole output and for the last h, printed.
    /// Bounds, from a first-order estimate of one step and a margin for what the recurrence adds:
    /// bf16 rounds each weight with relative error at most 2^-9, uniform, so rms 2^-9/sqrt(3) = 1.1e-3; the errors of
    /// independent weights add in quadrature, so a product's normwise error is about 1.1e-3 too, and gates with slope
    /// at most 1 and a forget gate below 1 keep the state's error of that order: bound 5e-3.
    /// int8 rounds weights and activations to steps of max/127 (rms step/sqrt(12)): for uniform values that is
    /// 1/(2*127) = 3.9e-3 of their rms, for each of W and the vector, more for peaked h: about 6e-3 per step: bound 2e-2.
    /// Measured (Zen 5, the same at every set), output / last h: int8 lstm 5.0e-3 / 5.1e-3, gru 5.2e-3 / 5.6e-3, rnn_tanh
    /// 7.2e-3 / 7.1e-3; bf16 lstm 1.4e-3 / 1.5e-3, gru 1.4e-3 / 1.6e-3, rnn_tanh 1.7e-3 / 1.7e-3 (printed by the test).
    /// Both must also be above 1e-5 (bf16) and 1e-4 (int8): a network that did not quantize would pass unnoticed otherwise.
    /// </summary>
    [Fact]
    public void Quantization_error_against_float32_at_S2_is_reported_and_bounded()
    {
        const int I = 64, H = 256, T = 128;
        var bounds = new Dictionary<Precision, (double Min, double Max)> { [Precision.BFloat16] = (1e-5, 5e-3), [Precision.Int8] = (1e-4, 2e-2) };
        foreach (var cell in new[] { "lstm", "gru", "rnn_tanh" })
        {
            var src = new RecurrentNetwork(new RecurrentOptions(RecurrentOptions.ParseCell(cell), I, H), 1);
            float[] x = Data(2, T * I);
            float[] Run(RecurrentNetwork net)
            {
                var y = new float[T * H];
                net.Forward(x, T, 1, [], [], y, [], [], net.CreateInferenceWorkspace(T, 1));
                return y;
            }
            float[] reference = Run(src);
            foreach (var p in Reduced)
            {
                var net = src.ToInference(p);
                float[] y = Run(net);
                double whole = RelativeError(y, reference), last = RelativeError(y.AsSpan((T - 1) * H, H), reference.AsSpan((T - 1) * H, H));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{cell,-8} {p.Name(),-5} normwise error vs float32: output {whole:E2}, last h {last:E2}; step weights {net.StepWeightBytes:N0} B (float32 {src.StepWeightBytes:N0} B)"));
                var (min, max) = bounds[p];
                Assert.InRange(whole, min, max);
                Assert.InRange(last, min, max);
            }
        }
    }

    private static double RelativeError(ReadOnlySpan<float> a, ReadOnlySpan<float> e)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { num += ((double)a[i] - e[i]) * ((double)a[i] - e[i]); den += (double)e[i] * e[i]; }
        return Math.Sqrt(num / den);
    }

    /// <summary>Bytes per step: int8 about a quarter of float32 (plus a scale per row), bf16 half.</summary>
    [Fact]
    public void Step_weight_bytes_shrink_with_the_precision()
    {
        var src = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 64, 256), 1);
        long f32 = src.StepWeightBytes, bf16 = src.ToInference(Precision.BFloat16).StepWeightBytes, int8 = src.ToInference(Precision.Int8).StepWeightBytes;
        Assert.Equal(4L * 1024 * (64 + 256), f32);
        Assert.Equal(2L * 1024 * (64 + 256), bf16);                       // no padding at these sizes
        Assert.Equal(1024L * (64 + 256 + 2 * 8), int8);                    // codes, and per row and segment (x, h) a scale and a correction sum
    }

    // ================================================================== 4. bitwise contracts

    /// <summary>
    /// What a network computes on one fixed workload: 6 batch-1 steps, 6 steps of a batch-3 state and 6 ticks of 3
    /// streams (unidirectional <paramref name="uni"/>), and a bidirectional Forward with lengths, h0 and c0
    /// (<paramref name="bidi"/>), concatenated.
    /// </summary>
    private static float[] Workload(RecurrentNetwork uni, RecurrentNetwork bidi, int seed)
    {
        var o = uni.Options;
        int I = o.InputSize, Hout = o.OutputHidden;
        const int T = 6, B = 3;
        var result = new List<float>();
        var one = uni.CreateState();
        var y1 = new float[Hout];
        for (int t = 0; t < T; t++) { uni.Step(one, Data(seed + t, I), y1); result.AddRange(y1); }
        var three = uni.CreateState(B);
        var y3 = new float[B * Hout];
        for (int t = 0; t < T; t++) { uni.Step(three, Data(seed + 100 + t, B * I), y3); result.AddRange(y3); }
        var stepper = new MultiStreamStepper(uni, B);
        var streams = Enumerable.Range(0, B).Select(_ => uni.CreateState()).ToArray();
        for (int t = 0; t < T; t++) { stepper.Step(streams, Data(seed + 200 + t, B * I), y3); result.AddRange(y3); }
        var ob = bidi.Options;
        int LD = ob.NumLayers * ob.Directions, Hb = ob.OutputHidden;
        float[] h0 = Data(seed + 300, LD * B * Hb), c0 = HasCell(ob) ? Data(seed + 301, LD * B * ob.HiddenSize) : [];
        float[] y = new float[T * B * ob.Directions * Hb], hN = new float[h0.Length], cN = new float[c0.Length];
        bidi.Forward(Data(seed + 302, T * B * ob.InputSize), T, B, h0, c0, y, hN, cN, bidi.CreateInferenceWorkspace(T, B), [T, 4, 1]);
        result.AddRange(y); result.AddRange(hN); result.AddRange(cN);
        return result.ToArray();
    }

    /// <summary>
    /// Every kernel set gives bitwise the same results: each set's reduced networks are converted from a float32 network
    /// of that set (same seed). int8: exact integer dots and one stated float epilogue at every set and int8 path; bf16:
    /// the float32 GEMV contract on exactly widened weights.
    /// </summary>
    [Theory, MemberData(nameof(CellsAndPrecisions))]
    public void Every_kernel_set_gives_bitwise_identical_results(string cell, Precision precision)
    {
        float[]? first = null;
        string? firstSet = null;
        foreach (var set in Sets)
        {
            var uni = new RecurrentNetwork(Options(cell), 3, set).ToInference(precision);
            var bidi = new RecurrentNetwork(Options(cell, 2, bidi: true), 4, set).ToInference(precision);
            float[] all = Workload(uni, bidi, 50);
            Assert.DoesNotContain(all, float.IsNaN);
            if (first is null) { first = all; firstSet = set.Name; }
            else AssertBitwiseEqual($"{precision.Name()} {cell}: {set.Name} (int8 path {set.Int8Path}) vs {firstSet}", first, all);
        }
        output.WriteLine($"sets compared: {string.Join(", ", Sets.Select(s => $"{s.Name} (int8: {s.Int8Description})"))}");
    }

    /// <summary>
    /// B streams (lengths 7, 4, 1; their own h0 and c0) give bitwise the same h at every step whichever path computes
    /// them: B batch-1 states stepped one by one, one batch-B state, a multi-stream tick (streams given in another order
    /// each tick) and inference Forward (outputs zero past a row's length, h_n and c_n the state after the row's own last
    /// step; a second Forward without lengths writes h_n over h0 in place).
    /// </summary>
    [Theory, MemberData(nameof(CellsAndPrecisions))]
    public void Step_batched_step_tick_and_forward_rows_are_one_computation_bitwise(string cell, Precision precision)
    {
        var o = Options(cell);
        var net = new RecurrentNetwork(o, 5).ToInference(precision);
        const int T = 7, B = 3;
        int[] lengths = [7, 4, 1];
        int L = o.NumLayers, I = o.InputSize, Hout = o.OutputHidden, H = o.HiddenSize;
        bool lstm = HasCell(o);
        float[] x = Data(11, T * B * I), h0 = Data(12, L * B * Hout), c0 = lstm ? Data(13, L * B * H) : [];
        RecurrentState[] Streams() => Enumerable.Range(0, B).Select(b =>
        {
            var s = net.CreateState();
            for (int l = 0; l < L; l++)
            {
                h0.AsSpan((l * B + b) * Hout, Hout).CopyTo(s.Hidden(l));
                if (lstm) c0.AsSpan((l * B + b) * H, H).CopyTo(s.Cell(l));
            }
            return s;
        }).ToArray();

        // Batch-1 states, one step at a time: the reference path. hAt/cAt: each stream's state after its own last step.
        var single = Streams();
        float[] y1 = new float[T * B * Hout], hAt = new float[L * B * Hout], cAt = new float[L * B * H];
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
            {
                net.Step(single[b], x.AsSpan((t * B + b) * I, I), y1.AsSpan((t * B + b) * Hout, Hout));
                if (t == lengths[b] - 1)
                    for (int l = 0; l < L; l++)
                    {
                        single[b].Hidden(l).CopyTo(hAt.AsSpan((l * B + b) * Hout, Hout));
                        if (lstm) single[b].Cell(l).CopyTo(cAt.AsSpan((l * B + b) * H, H));
                    }
            }

        // One batch-B state.
        var batched = net.CreateState(B);
        for (int l = 0; l < L; l++)
        {
            h0.AsSpan(l * B * Hout, B * Hout).CopyTo(batched.Hidden(l));
            if (lstm) c0.AsSpan(l * B * H, B * H).CopyTo(batched.Cell(l));
        }
        var yB = new float[B * Hout];
        for (int t = 0; t < T; t++)
        {
            net.Step(batched, x.AsSpan(t * B * I, B * I), yB);
            AssertBitwiseEqual($"{precision.Name()} {cell} batch-{B} Step t={t}", y1.AsSpan(t * B * Hout, B * Hout), yB);
        }
        for (int l = 0; l < L; l++)
            for (int b = 0; b < B; b++)
            {
                AssertBitwiseEqual($"batched h{l} row {b}", single[b].Hidden(l), batched.Hidden(l).Slice(b * Hout, Hout));
                AssertBitwiseEqual($"batched c{l} row {b}", single[b].Cell(l), batched.Cell(l).Slice(b * H, H));
            }

        // Multi-stream ticks, the streams in a different order each tick.
        var ticked = Streams();
        var stepper = new MultiStreamStepper(net, 1); // grows at the first tick
        float[] inputs = new float[B * I], outputs = new float[B * Hout];
        for (int t = 0; t < T; t++)
        {
            int[] order = Enumerable.Range(0, B).Select(k => (k + t) % B).ToArray();
            for (int k = 0; k < B; k++) x.AsSpan((t * B + order[k]) * I, I).CopyTo(inputs.AsSpan(k * I, I));
            stepper.Step(order.Select(b => ticked[b]).ToArray(), inputs, outputs);
            for (int k = 0; k < B; k++)
                AssertBitwiseEqual($"{precision.Name()} {cell} tick {t} stream {order[k]}", y1.AsSpan((t * B + order[k]) * Hout, Hout), outputs.AsSpan(k * Hout, Hout));
        }
        for (int b = 0; b < B; b++)
            for (int l = 0; l < L; l++)
            {
                AssertBitwiseEqual($"ticked h{l} stream {b}", single[b].Hidden(l), ticked[b].Hidden(l));
                AssertBitwiseEqual($"ticked c{l} stream {b}", single[b].Cell(l), ticked[b].Cell(l));
            }

        // Inference Forward with lengths, h0 and c0.
        var ws = net.CreateInferenceWorkspace(T, B);
        float[] y = new float[T * B * Hout], hN = new float[h0.Length], cN = new float[c0.Length];
        net.Forward(x, T, B, h0, c0, y, hN, cN, ws, lengths);
        float[] expected = y1.ToArray();
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
                if (t >= lengths[b]) expected.AsSpan((t * B + b) * Hout, Hout).Clear();
        AssertBitwiseEqual($"{precision.Name()} {cell} Forward output", expected, y);
        AssertBitwiseEqual($"{precision.Name()} {cell} Forward h_n", hAt, hN);
        if (lstm) AssertBitwiseEqual($"{precision.Name()} {cell} Forward c_n", cAt, cN);

        // Without lengths, h_n and c_n written over h0 and c0.
        float[] h = h0.ToArray(), c = c0.ToArray();
        net.Forward(x, T, B, h, c, y, h, c, ws);
        AssertBitwiseEqual($"{precision.Name()} {cell} Forward output, no lengths", y1, y);
        for (int l = 0; l < L; l++)
            for (int b = 0; b < B; b++)
            {
                AssertBitwiseEqual($"Forward in place h{l} row {b}", single[b].Hidden(l), h.AsSpan((l * B + b) * Hout, Hout));
                if (lstm) AssertBitwiseEqual($"Forward in place c{l} row {b}", single[b].Cell(l), c.AsSpan((l * B + b) * H, H));
            }
    }

    /// <summary>
    /// A bidirectional network's, and a reverse network's, inference Forward (3 layers, lengths, h0, c0) equals, bitwise,
    /// each (layer, direction) stepped alone: a one-layer unidirectional network made by FromReduced from that
    /// direction's stored tensors, stepping each row's own steps (the reverse ones from the row's last step back to 0),
    /// the layers above fed with the concatenated directions.
    /// </summary>
    [Theory, MemberData(nameof(CellsAndPrecisions))]
    public void Bidirectional_and_reverse_forward_equal_each_direction_stepped_alone_bitwise(string cell, Precision precision)
    {
        foreach (var (bidi, reverse) in new[] { (true, false), (false, true) })
        {
            var o = Options(cell, 3, bidi) with { Reverse = reverse };
            var net = new RecurrentNetwork(o, 8).ToInference(precision);
            const int T = 6, B = 3;
            int[] lengths = [6, 3, 1];
            int LD = o.NumLayers * o.Directions, Hout = o.OutputHidden, H = o.HiddenSize;
            bool lstm = HasCell(o);
            float[] x = Data(21, T * B * o.InputSize), h0 = Data(22, LD * B * Hout), c0 = lstm ? Data(23, LD * B * H) : [];
            float[] y = new float[T * B * o.Directions * Hout], hN = new float[h0.Length], cN = new float[c0.Length];
            net.Forward(x, T, B, h0, c0, y, hN, cN, net.CreateInferenceWorkspace(T, B), lengths);
            var (ey, ehN, ecN) = ForwardByDirections(net, x, T, B, h0, c0, lengths);
            string what = $"{precision.Name()} {cell} bidi={bidi} reverse={reverse}";
            AssertBitwiseEqual(what + " output", ey, y);
            AssertBitwiseEqual(what + " h_n", ehN, hN);
            AssertBitwiseEqual(what + " c_n", ecN, cN);
        }
    }

    /// <summary>A reduced network's Forward computed direction by direction (see the test above).</summary>
    private static (float[] Y, float[] HN, float[] CN) ForwardByDirections(RecurrentNetwork net, float[] x, int T, int B, float[] h0, float[] c0, int[] lengths)
    {
        var o = net.Options;
        int L = o.NumLayers, D = o.Directions, Hout = o.OutputHidden, H = o.HiddenSize;
        bool lstm = HasCell(o);
        var weights = net.GetReducedWeights();
        float[] input = x, layerOut = [];
        int inSize = o.InputSize;
        float[] hN = new float[L * D * B * Hout], cN = lstm ? new float[L * D * B * H] : [];
        for (int l = 0; l < L; l++)
        {
            layerOut = new float[T * B * D * Hout];
            for (int d = 0; d < D; d++)
            {
                string sfx = $"_l{l}" + (d == 1 ? "_reverse" : "");
                string Renamed(string name) => name[..^sfx.Length] + "_l0";
                var one = o with { InputSize = inSize, NumLayers = 1, Bidirectional = false, Reverse = false };
                var tensors = weights.Where(t => t.Name.EndsWith(sfx, StringComparison.Ordinal)).Select(t => t.Precision == Precision.Int8
                    ? QuantizedTensor.FromInt8(Renamed(t.Name), t.Rows, t.Cols, t.Codes, t.Scales)
                    : QuantizedTensor.FromBf16(Renamed(t.Name), t.Rows, t.Cols, t.Bf16)).ToList();
                var floats = net.Parameters.Entries.Where(e => !RecurrentNetwork.IsWeightMatrix(e.Name) && e.Name.EndsWith(sfx, StringComparison.Ordinal))
                    .ToDictionary(e => Renamed(e.Name), e => net.Parameters.View(e).ToArray());
                var alone = RecurrentNetwork.FromReduced(one, net.Precision, tensors, floats, net.Kernels);
                bool backward = d == 1 || o.Reverse;
                var h = new float[Hout];
                for (int b = 0; b < B; b++)
                {
                    int ld = l * D + d, len = lengths[b];
                    var s = alone.CreateState();
                    h0.AsSpan((ld * B + b) * Hout, Hout).CopyTo(s.Hidden(0));
                    if (lstm) c0.AsSpan((ld * B + b) * H, H).CopyTo(s.Cell(0));
                    for (int k = 0; k < len; k++)
                    {
                        int t = backward ? len - 1 - k : k;
                        alone.Step(s, input.AsSpan((t * B + b) * inSize, inSize), h);
                        h.CopyTo(layerOut.AsSpan((t * B + b) * D * Hout + d * Hout, Hout));
                    }
                    s.Hidden(0).CopyTo(hN.AsSpan((ld * B + b) * Hout, Hout));
                    if (lstm) s.Cell(0).CopyTo(cN.AsSpan((ld * B + b) * H, H));
                }
            }
            input = layerOut;
            inSize = D * Hout;
        }
        return (layerOut, hN, cN);
    }

    /// <summary>
    /// FromReduced on GetReducedWeights and the other parameters (from the float32 network) rebuilds the network: the
    /// same parameters, stored form and step bytes, bitwise the same results.
    /// </summary>
    [Theory, MemberData(nameof(CellsAndPrecisions))]
    public void FromReduced_of_the_exported_tensors_rebuilds_the_network_bitwise(string cell, Precision precision)
    {
        var uniSrc = new RecurrentNetwork(Options(cell), 3);
        var bidiSrc = new RecurrentNetwork(Options(cell, 2, bidi: true), 4);
        RecurrentNetwork Rebuilt(RecurrentNetwork src)
        {
            var net = src.ToInference(precision);
            var floats = src.Parameters.Entries.Where(e => !RecurrentNetwork.IsWeightMatrix(e.Name)).ToDictionary(e => e.Name, e => src.Parameters.View(e).ToArray());
            var copy = RecurrentNetwork.FromReduced(src.Options, precision, net.GetReducedWeights(), floats, src.Kernels);
            Assert.Equal(precision, copy.Precision);
            AssertBitwiseEqual("parameters", net.Parameters.Data, copy.Parameters.Data);
            Assert.Equal(net.StepWeightBytes, copy.StepWeightBytes);
            AssertStoredForm(src, copy);
            return copy;
        }
        float[] expected = Workload(uniSrc.ToInference(precision), bidiSrc.ToInference(precision), 70);
        float[] actual = Workload(Rebuilt(uniSrc), Rebuilt(bidiSrc), 70);
        AssertBitwiseEqual($"{precision.Name()} {cell} rebuilt", expected, actual);
    }

    /// <summary>ToInference(Float32) is a plain, independent, trainable copy: bitwise the original's results, unchanged when the original changes.</summary>
    [Theory, MemberData(nameof(Cells))]
    public void ToInference_float32_is_an_independent_bitwise_copy(string cell)
    {
        foreach (var set in Sets)
        {
            var uni = new RecurrentNetwork(Options(cell), 3, set);
            var bidi = new RecurrentNetwork(Options(cell, 2, bidi: true), 4, set);
            RecurrentNetwork uc = uni.ToInference(Precision.Float32), bc = bidi.ToInference(Precision.Float32);
            Assert.Equal(Precision.Float32, uc.Precision);
            Assert.Same(set, uc.Kernels);
            AssertBitwiseEqual("parameters", uni.Parameters.Data, uc.Parameters.Data);
            float[] expected = Workload(uni, bidi, 90);
            AssertBitwiseEqual($"{set} {cell} float32 copy", expected, Workload(uc, bc, 90));
            uni.ResetParameters(99);
            bidi.ResetParameters(99);
            AssertBitwiseEqual($"{set} {cell} copy after the original changed", expected, Workload(uc, bc, 90));
            Assert.NotNull(uc.CreateWorkspace(2, 1)); // trainable
        }
    }

    /// <summary>
    /// A bf16 network's batch-1 step is bitwise the float32 network's batch-1 step on the same (bf16-valued) weights:
    /// PackedBf16GemvMatrix's contract (the float32 packed GEMV of the widened weights) carried through the cells.
    /// </summary>
    [Theory, MemberData(nameof(Cells))]
    public void Bf16_batch1_step_is_bitwise_the_float32_step_of_its_own_weights(string cell)
    {
        foreach (var set in Sets)
        {
            var o = Options(cell);
            var bf16 = new RecurrentNetwork(o, 6, set).ToInference(Precision.BFloat16);
            var f32 = new RecurrentNetwork(o, 0, set);
            bf16.Parameters.Data.CopyTo(f32.Parameters.Data, 0);
            f32.ParametersChanged();
            RecurrentState a = bf16.CreateState(), b = f32.CreateState();
            float[] ya = new float[o.OutputHidden], yb = new float[o.OutputHidden];
            for (int t = 0; t < 8; t++)
            {
                float[] x = Data(40 + t, o.InputSize, 2f);
                bf16.Step(a, x, ya);
                f32.Step(b, x, yb);
                AssertBitwiseEqual($"{set} {cell} t={t}", yb, ya);
            }
            for (int l = 0; l < o.NumLayers; l++) AssertBitwiseEqual($"{set} {cell} c{l}", b.Cell(l), a.Cell(l));
        }
    }

    /// <summary>
    /// In the ISA-matrix child without AVX-VNNI: the int8 products of every network here took vpmaddwd (the avx512 set at
    /// 512 bits with AVX-512BW, avx2 at 256), so the bitwise tests above compared those paths with the scalar one.
    /// </summary>
    [Fact]
    public void Int8_paths_of_the_kernel_sets_follow_the_instruction_sets()
    {
        output.WriteLine(string.Join("; ", Sets.Select(s => $"{s.Name}: {s.Int8Description}")));
        Assert.Equal("scalar int32 multiply-add", KernelSet.Scalar.Int8Description);
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVXVNNI") != "0") return;
        foreach (var set in Sets) Assert.NotEqual("AVX-VNNI vpdpbusd (256-bit)", set.Int8Description);
        if (KernelSet.Avx512.IsSupported && System.Runtime.Intrinsics.X86.Avx512BW.IsSupported)
            Assert.Equal("AVX-512BW vpmovsxbw + vpmaddwd (512-bit)", KernelSet.Avx512.Int8Description);
    }

    // ================================================================== 5. threads

    private const int Threads = SharedNetworkTests.Threads;

    private static void RunTogether(Action<int> body) => SharedNetworkTests.RunTogether(body);

    /// <summary>
    /// One fresh reduced network (and a fresh bidirectional one) shared by 4 threads released together, each stepping its
    /// own states (B = 1 and 3), ticking its own stepper and running Forward in its own workspace: bitwise what one thread
    /// gives on networks converted the same way.
    /// </summary>
    [Theory, MemberData(nameof(SomeCellsAndPrecisions))]
    public void Threads_sharing_a_fresh_reduced_network_match_one_thread(string cell, Precision precision)
    {
        foreach (var set in Sets)
        {
            (RecurrentNetwork Uni, RecurrentNetwork Bidi) Fresh() =>
                (new RecurrentNetwork(Options(cell), 7, set).ToInference(precision),
                 new RecurrentNetwork(Options(cell, 2, bidi: true), 8, set).ToInference(precision));
            var shared = Fresh();
            var results = new float[Threads][];
            RunTogether(i => results[i] = Workload(shared.Uni, shared.Bidi, 1000 * (i + 1)));
            var alone = Fresh();
            for (int i = 0; i < Threads; i++)
                AssertBitwiseEqual($"{precision.Name()} {set} {cell} thread {i}", Workload(alone.Uni, alone.Bidi, 1000 * (i + 1)), results[i]);
        }
    }

    // ================================================================== 6. zero allocation

    [Theory, MemberData(nameof(SomeCellsAndPrecisions))]
    public void Step_tick_and_forward_allocate_nothing_after_warm_up(string cell, Precision precision)
    {
        var failures = new List<string>();
        foreach (var set in Sets)
        {
            var uni = new RecurrentNetwork(Options(cell), 1, set).ToInference(precision);
            var bidi = new RecurrentNetwork(Options(cell, 2, bidi: true), 2, set).ToInference(precision);
            var o = uni.Options;
            int I = o.InputSize, Hout = o.OutputHidden, LD = 2 * 2;
            const int T = 5, B = 3;
            RecurrentState one = uni.CreateState(), three = uni.CreateState(B);
            var streams = Enumerable.Range(0, B).Select(_ => uni.CreateState()).ToArray();
            var stepper = new MultiStreamStepper(uni, B);
            var ws = bidi.CreateInferenceWorkspace(T, B);
            float[] x1 = Data(1, I), x3 = Data(2, B * I), y1 = new float[Hout], y3 = new float[B * Hout];
            float[] xs = Data(3, T * B * I), ys = new float[T * B * 2 * Hout], h0 = Data(4, LD * B * Hout), hN = new float[h0.Length];
            float[] c0 = HasCell(o) ? Data(5, LD * B * o.HiddenSize) : [], cN = new float[c0.Length];
            int[] lengths = [T, 2, 1];
            void Check(string what, Action call)
            {
                var bytes = SteadyStateAllocations(call, 20);
                if (bytes[^1] != 0) failures.Add($"{set} {what}: {string.Join(", ", bytes)} bytes per window");
            }
            Check("Step B=1", () => uni.Step(one, x1, y1));
            Check("Step B=3", () => uni.Step(three, x3, y3));
            Check("tick of 3", () => stepper.Step(streams, x3, y3));
            Check("Forward", () => bidi.Forward(xs, T, B, h0, c0, ys, hN, cN, ws, lengths));
        }
        Assert.True(failures.Count == 0, $"{precision.Name()} {cell}:\n" + string.Join("\n", failures));
    }

    // ================================================================== 7. errors

    [Fact]
    public void A_reduced_network_refuses_training_changes_and_a_second_conversion()
    {
        var src = new RecurrentNetwork(Options("lstm"), 1);
        foreach (var p in Reduced)
        {
            var net = src.ToInference(p);
            string name = p.Name();
            var e = Assert.Throws<InvalidOperationException>(() => net.CreateWorkspace(4, 1));
            Assert.Contains($"{name} inference network", e.Message);
            Assert.Contains("train the float32 network", e.Message);
            Assert.Contains("cannot change", Assert.Throws<InvalidOperationException>(() => net.ParametersChanged()).Message);
            Assert.Contains("cannot change", Assert.Throws<InvalidOperationException>(() => net.ResetParameters(3)).Message);
            foreach (var q in new[] { Precision.Float32, Precision.BFloat16, Precision.Int8 })
            {
                var c = Assert.Throws<InvalidOperationException>(() => net.ToInference(q));
                Assert.Contains($"{name} inference network", c.Message);
                Assert.Contains("convert the float32 network", c.Message);
            }
            Assert.Contains("convert it with ToInference", Assert.Throws<InvalidOperationException>(() => src.GetReducedWeights()).Message);
            var ws = net.CreateInferenceWorkspace(4, 1); // inference works; Backward has nothing to read
            net.Forward(new float[4 * 17], 4, 1, [], [], new float[4 * 33], [], [], ws);
            Assert.Contains("inference workspace", Assert.Throws<InvalidOperationException>(() => net.Backward(ws, new float[4 * 33], [], [], [], [], [])).Message);
        }
    }

    [Fact]
    public void FromReduced_names_a_missing_extra_misshapen_or_mistyped_tensor()
    {
        var o = Options("lstmp", 1); // weight_ih_l0 (132, 17), weight_hh_l0 (132, 7), weight_hr_l0 (7, 33)
        var src = new RecurrentNetwork(o, 1);
        var int8 = src.ToInference(Precision.Int8).GetReducedWeights();
        var bf16 = src.ToInference(Precision.BFloat16).GetReducedWeights();
        var floats = src.Parameters.Entries.Where(e => !RecurrentNetwork.IsWeightMatrix(e.Name)).ToDictionary(e => e.Name, e => src.Parameters.View(e).ToArray());
        ArgumentException Refused(IEnumerable<QuantizedTensor> weights, IReadOnlyDictionary<string, float[]>? f = null, Precision p = Precision.Int8) =>
            Assert.Throws<ArgumentException>(() => RecurrentNetwork.FromReduced(o, p, weights, f ?? floats));

        Assert.NotNull(RecurrentNetwork.FromReduced(o, Precision.Int8, int8, floats));
        var e = Refused(int8.Where(t => t.Name != "weight_hh_l0"));
        Assert.Contains("'weight_hh_l0'", e.Message);
        Assert.Contains("(132, 7)", e.Message);
        e = Refused(int8.Append(QuantizedTensor.FromInt8("weight_ih_l1", 2, 2, new sbyte[4], new float[2])));
        Assert.Contains("'weight_ih_l1'", e.Message);
        e = Refused(int8.Append(QuantizedTensor.FromInt8("bias_ih_l0", 132, 1, new sbyte[132], new float[132])));
        Assert.Contains("'bias_ih_l0'", e.Message);
        var hr = int8.Single(t => t.Name == "weight_hr_l0");
        e = Refused(int8.Where(t => t != hr).Append(QuantizedTensor.FromInt8("weight_hr_l0", 7, 32, hr.Codes[..(7 * 32)], hr.Scales)));
        Assert.Contains("'weight_hr_l0'", e.Message);
        Assert.Contains("(7, 32)", e.Message);
        Assert.Contains("(7, 33)", e.Message);
        e = Refused(int8.Where(t => t.Name != "weight_ih_l0").Append(bf16.Single(t => t.Name == "weight_ih_l0")));
        Assert.Contains("'weight_ih_l0' is bf16", e.Message);
        Assert.Contains("expected int8", e.Message);
        e = Refused(int8.Append(int8[0]));
        Assert.Contains("given twice", e.Message);
        e = Refused(int8, floats.Where(kv => kv.Key != "bias_hh_l0").ToDictionary());
        Assert.Contains("'bias_hh_l0'", e.Message);
        e = Refused(int8, floats.Append(new("weight_ih_l0", new float[132 * 17])).ToDictionary());
        Assert.Contains("'weight_ih_l0' is a weight matrix", e.Message);
        e = Refused(int8, floats.Select(kv => kv.Key == "bias_ih_l0" ? new KeyValuePair<string, float[]>(kv.Key, new float[131]) : kv).ToDictionary());
        Assert.Contains("'bias_ih_l0' has 131 values", e.Message);
        Assert.Equal("precision", Refused(int8, p: Precision.Float32).ParamName);
        Assert.Throws<ArgumentNullException>(() => RecurrentNetwork.FromReduced(o, Precision.Int8, null!, floats));
    }

    /// <summary>int8 needs finite weights: a NaN or infinite weight is refused, named by tensor, row and column; bf16 keeps it (NaN stays NaN).</summary>
    [Fact]
    public void A_non_finite_weight_is_refused_for_int8_by_tensor_row_and_column()
    {
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var src = new RecurrentNetwork(Options("gru", 2), 1);
            var w = src.Parameters["weight_hh_l1"]; // (99, 33)
            w[5 * 33 + 31] = bad;
            src.ParametersChanged();
            var e = Assert.Throws<ArgumentException>(() => src.ToInference(Precision.Int8));
            Assert.Contains("weight_hh_l1[5, 31]", e.Message);
            Assert.Contains("not finite", e.Message);
            var bf16 = src.ToInference(Precision.BFloat16);
            Assert.Equal(bad, bf16.Parameters["weight_hh_l1"][5 * 33 + 31]);
        }
    }

    /// <summary>
    /// A non-finite input poisons an int8 step instead of being clipped silently: its segment's scale is NaN, so every
    /// product row, and so every h of the layer, is NaN (as in float32). (rnn_relu is left out: relu's max maps NaN to 0
    /// in the float32 gate kernels too.)
    /// </summary>
    [Theory]
    [InlineData("lstm")]
    [InlineData("lstmp")]
    [InlineData("gru")]
    [InlineData("gru_orig")]
    [InlineData("rnn_tanh")]
    public void A_non_finite_input_gives_a_non_finite_int8_step(string cell)
    {
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity })
        {
            var net = new RecurrentNetwork(Options(cell, 1), 1).ToInference(Precision.Int8);
            var state = net.CreateState();
            float[] x = Data(1, net.Options.InputSize), y = new float[net.Options.OutputHidden];
            net.Step(state, x, y);
            x[3] = bad;
            net.Step(state, x, y);
            Assert.All(y, v => Assert.True(float.IsNaN(v), $"{cell} input {bad}: output {v}"));
        }
    }

    [Fact]
    public void QuantizedTensor_and_precision_names_validate_their_input()
    {
        Assert.Contains("x[1, 0] = -128", Assert.Throws<ArgumentException>(() => QuantizedTensor.FromInt8("x", 2, 2, [1, 2, -128, 4], [1f, 1f])).Message);
        Assert.Contains("scale of row 1", Assert.Throws<ArgumentException>(() => QuantizedTensor.FromInt8("x", 2, 1, [1, 2], [1f, -1f])).Message);
        Assert.Contains("scale of row 0", Assert.Throws<ArgumentException>(() => QuantizedTensor.FromInt8("x", 1, 1, [1], [float.NaN])).Message);
        Assert.Contains("one per row = 2", Assert.Throws<ArgumentException>(() => QuantizedTensor.FromInt8("x", 2, 1, [1, 2], [1f])).Message);
        Assert.Contains("rows x cols = 2 x 2", Assert.Throws<ArgumentException>(() => QuantizedTensor.FromBf16("x", 2, 2, [1, 2, 3])).Message);
        Assert.Throws<ArgumentException>(() => QuantizedTensor.Quantize("x", Precision.Float32, [1f], 1, 1));
        Assert.Contains("x[0, 1]", Assert.Throws<ArgumentException>(() => QuantizedTensor.Quantize("x", Precision.Int8, [1f, float.NaN], 1, 2)).Message);
        Assert.Throws<ArgumentException>(() => QuantizedTensor.FromInt8("x", 1, 2, [1, 2], [1f]).Dequantize(new float[3]));
        // A zero row gets scale 0 and codes 0; q * s reproduces the spec.
        var t = QuantizedTensor.Quantize("x", Precision.Int8, [0f, 0f, 1f, -0.5f], 2, 2);
        Assert.Equal([0f, 1f / 127f], t.Scales.ToArray());
        Assert.Equal(new sbyte[] { 0, 0, 127, -64 }, t.Codes.ToArray()); // -0.5 / (1/127) = -63.5 (in float) rounds half to even: -64
        foreach (var (text, p) in new[] { ("float32", Precision.Float32), ("FP32", Precision.Float32), ("bf16", Precision.BFloat16), ("bfloat16", Precision.BFloat16), (" int8 ", Precision.Int8), ("I8", Precision.Int8) })
            Assert.Equal(p, PrecisionNames.Parse(text));
        Assert.Equal("bits", Assert.Throws<ArgumentException>(() => PrecisionNames.Parse("fp8", "bits")).ParamName);
        Assert.Equal(new[] { "float32", "bf16", "int8" }, Enum.GetValues<Precision>().Select(p => p.Name()));
    }
}

/// <summary>
/// How far the library's float32 evaluation of one int8 step may lie from <see cref="NaiveReducedStep"/>, per element of
/// h' and c', from float32 rounding (u = 2^-24, gamma_n = n u / (1 - n u)) and the documented accuracy of the
/// activations. Derivation, for the step's input x, h, c taken as exact (teacher forcing):
/// <list type="number">
/// <item>The input vectors x and h are quantized by the same float32 rule on the same floats: the network's codes and
/// scales equal the oracle's exactly. The integer dots are exact, and (float)acc is exact (|acc| &lt;= 127^2 K &lt; 2^24 for
/// K &lt;= 1040 columns). The epilogue rounds s_w * s_x once and each fma once: a one-segment product t is off by at most
/// gamma_2 |t|, the two-segment [x | h] product by gamma_3 (|t_x| + |t_h|); and where s_w * s_x underflows (a vector
/// whose max |v| is below about 1e-33), by |acc| 2^-150 more: that product's rounding is multiplied by the integer dot,
/// so such a product keeps only its absolute accuracy (|acc| 2^-150, below 1e-41 for 1000 columns), not its relative one
/// (found by the property: a projection of an m near 1e-40, off by 0.4 %).</item>
/// <item>A fused pre-activation (every gate of rnn and lstm, r and z of gru) adds the pre-summed bias b_ih + b_hh (one
/// rounding), then adds it to the product (one), plus an lstm peephole's fma (one): gamma_6 times the sum of the terms'
/// magnitudes bounds it. o's peephole multiplies the network's c', whose own error (below) enters times |p_o|.</item>
/// <item>An activation maps an error e of its argument to L e + rho |y| (L = 1/4 for sigmoid, 1 for tanh and relu; rho =
/// 5e-7 for sigmoid and tanh, the library's documented target, measured 1.7e-7; 0 for relu, which is exact; + 2^-148
/// where results are subnormal). ONNX's clip is exact and 1-Lipschitz, so it changes no bound.</item>
/// <item>Products and sums of computed quantities propagate first-order and second-order terms exactly (|a| e_b + |b| e_a +
/// e_a e_b) plus gamma_n of the magnitude for their own roundings, and 2^-150 per rounding whose result underflows (found
/// by the property: relu gates can shrink values doubly exponentially, 8e-102 in the oracle, 0 in float32) (c' = fma(f, c, i * g): 2; m = o * h(c): 1; GRU h' =
/// fma(z, h - n, n): 1 for h - n, 1 for the fma; n's argument: fma(r, B, A + b_in) or (A + b_in) + B).</item>
/// <item>A vector the step computes and then quantizes (lstmp's m for W_hr, the original GRU's r * h for W_hn) is quantized
/// by the oracle from its double value rounded to float, by the network from its own float32 value: the two differ by a
/// bounded delta_k, so the scales differ by at most max delta / 127 (+ their roundings) and a code can differ by one when
/// the oracle's v/s lies within the (bounded) difference of the ratios of a rounding tie. Per element, the dequantized
/// values then differ by |q| ds, plus one step s where such a tie is within reach (and never by more than delta + s,
/// each side being within s/2 of its own value); the product's error is the sum over k of |w_pk| times that.</item>
/// </list>
/// No term is a fudge factor: each is a rounding or an approximation error of a stated size. A failure means the code
/// does not compute the spec (or the activations miss their documented accuracy), not that the bound is tight.
/// </summary>
internal static class Int8StepAllowance
{
    private const double U = 1.0 / (1 << 24);
    private const double Rho = 5e-7;
    private const double Subnormal = 2.802596928649634e-45; // 2^-148
    private const double Eta = 7.006492321624085e-46;       // 2^-150: a rounding's absolute error where the result underflows

    private static double Gamma(int n) => n * U / (1 - n * U);

    /// <summary>A quantity with propagated error <paramref name="err"/> and magnitude <paramref name="mag"/>, computed with <paramref name="n"/> more roundings (each off by u of its result, or by 2^-150 where that underflows).</summary>
    private static double Rounded(double err, double mag, int n) => err + Gamma(n) * (mag + err) + n * Eta;

    /// <summary>The error of an activation's output from its argument's error <paramref name="e"/> (y: the oracle's output).</summary>
    private static double Activation(string fn, double e, double y) => fn switch
    {
        "sigmoid" => 0.25 * e + Rho * (Math.Abs(y) + 0.25 * e) + Subnormal,
        "tanh" => e + Rho * (Math.Abs(y) + e) + Subnormal,
        "relu" => e,
        _ => throw new ArgumentException(fn),
    };

    /// <summary>
    /// Allowances for h' (Hout) and c' (H, lstm) of one step from h, c (the step's state) and the trace; peep: (3, H) or null;
    /// second: W_hr (lstmp) or the original GRU's W_hn rows, else null.
    /// </summary>
    public static (double[] H, double[]? C) Of(RecurrentSpec spec, ReducedStepTrace t, float[] h, float[]? c, float[]? peep, Int8Matrix? second)
    {
        int H = spec.HiddenSize;
        double Fused(int r) => Rounded(0, Math.Abs(t.Ax[r]) + Math.Abs(t.Ah[r]) + Math.Abs(t.Bih[r]) + Math.Abs(t.Bhh[r]) + Math.Abs(t.Peep[r]), 6)
            + (Math.Abs(t.AccX[r]) + Math.Abs(t.AccH[r])) * Eta;
        switch (spec.Cell)
        {
            case "rnn_tanh":
            case "rnn_relu":
                return (Enumerable.Range(0, H).Select(j => Activation(spec.F, Fused(j), t.H[j])).ToArray(), null);
            case "lstm":
            {
                var ec = new double[H];
                var em = new double[H];
                for (int j = 0; j < H; j++)
                {
                    double i = t.Gates[j], f = t.Gates[H + j], g = t.Gates[2 * H + j], o = t.Gates[3 * H + j], cPrev = c![j];
                    double ei = Activation(spec.F, Fused(j), i);
                    double ef = spec.CoupledInputForget ? Rounded(ei, Math.Abs(f), 1) : Activation(spec.F, Fused(H + j), f);
                    double eg = Activation(spec.G, Fused(2 * H + j), g);
                    ec[j] = Rounded(Math.Abs(cPrev) * ef + Math.Abs(g) * ei + Math.Abs(i) * eg + ei * eg, Math.Abs(f * cPrev) + Math.Abs(i * g), 2);
                    double po = peep is null ? 0 : peep[2 * H + j];
                    double eo = Activation(spec.F, Fused(3 * H + j) + Math.Abs(po) * ec[j], o);
                    double hc = t.HC![j];
                    double ehc = Activation(spec.H, ec[j], hc);
                    em[j] = Rounded(Math.Abs(o) * ehc + Math.Abs(hc) * eo + eo * ehc, Math.Abs(t.M![j]), 1);
                }
                if (spec.ProjSize == 0) return (em, ec);
                double[] delta = Enumerable.Range(0, H).Select(k => Rounded(em[k], Math.Abs(t.M![k]), 1)).ToArray(); // + the oracle's rounding of m to float
                return (Product(second!, t.Second!, delta, t.H, 2), ec);
            }
            case "gru":
            {
                var eh = new double[H];
                var er = Enumerable.Range(0, H).Select(j => Activation(spec.F, Fused(j), t.Gates[j])).ToArray();
                double[]? eProduct = null;
                if (!spec.GruLinearBeforeReset)
                {
                    // r * h: one float multiply of the network's r; the oracle rounds its double r * h to float.
                    double[] delta = Enumerable.Range(0, H).Select(k => Rounded(Math.Abs(h[k]) * er[k], Math.Abs(t.RH![k]), 2)).ToArray();
                    eProduct = Product(second!, t.Second!, delta, Enumerable.Range(0, H).Select(j => t.Ah[2 * H + j]).ToArray(), 2);
                }
                for (int j = 0; j < H; j++)
                {
                    double r = t.Gates[j], z = t.Gates[H + j], n = t.Gates[2 * H + j];
                    double ez = Activation(spec.F, Fused(H + j), z);
                    double xn = t.Ax[2 * H + j] + t.Bih[2 * H + j], hn = t.Ah[2 * H + j] + t.Bhh[2 * H + j];
                    double ea = Rounded(0, Math.Abs(t.Ax[2 * H + j]) + Math.Abs(t.Bih[2 * H + j]), 3) + Math.Abs(t.AccX[2 * H + j]) * Eta; // fl(fl(t_x) + b_in)
                    double epre;
                    if (spec.GruLinearBeforeReset)
                    {
                        double eb = Rounded(0, Math.Abs(t.Ah[2 * H + j]) + Math.Abs(t.Bhh[2 * H + j]), 3) + Math.Abs(t.AccH[2 * H + j]) * Eta; // fl(b_hn + fl(t_h))
                        epre = Rounded(ea + Math.Abs(r) * eb + Math.Abs(hn) * er[j] + er[j] * eb, Math.Abs(xn) + Math.Abs(r * hn), 1);
                    }
                    else
                    {
                        double eb = Rounded(eProduct![j], Math.Abs(hn), 1);                             // + b_hn
                        epre = Rounded(ea + eb, Math.Abs(xn) + Math.Abs(hn), 1);
                    }
                    double en = Activation(spec.G, epre, n);
                    double d = h[j] - n, ed = Rounded(en, Math.Abs(d), 1);
                    eh[j] = Rounded(Math.Abs(z) * ed + Math.Abs(d) * ez + ez * ed + en, Math.Abs(t.H[j]), 1);
                }
                return (eh, null);
            }
            default:
                throw new ArgumentException(spec.Cell);
        }
    }

    /// <summary>
    /// The error of w v (w int8, one segment) when the network quantizes a vector within <paramref name="delta"/> of the
    /// oracle's <paramref name="v"/>: sum over k of |w_pk| times the bound on the dequantized difference (item 5), plus the
    /// epilogue's <paramref name="roundings"/> roundings of the product (<paramref name="y"/>: the oracle's values).
    /// </summary>
    private static double[] Product(Int8Matrix w, QuantizedVector v, double[] delta, double[] y, int roundings)
    {
        double[] d = Shift(v, delta);
        var e = new double[w.Rows];
        for (int p = 0; p < w.Rows; p++)
        {
            double sum = 0, codes = 0;
            for (int k = 0; k < w.Cols; k++) { sum += Math.Abs(w.W(p, k)) * d[k]; codes += Math.Abs(w.Codes[p * w.Cols + k]); }
            e[p] = Rounded(sum, Math.Abs(y[p]), roundings) + 127 * codes * Eta; // |acc| <= 127 sum |q_w|, whatever the codes of v
        }
        return e;
    }

    /// <summary>
    /// Per element, a bound on |q_net s_net - q v.s| when the network's value is within delta_k of v's (item 5): the
    /// scales differ by at most ds = max delta / 127 (1 + u) + 3 u s; the ratios v/s by at most
    /// dr = (delta + |v| ds / s_lo) / s_lo + 2 u (|v/s| + 1) (the two divisions' roundings), s_lo = s - ds. Where no
    /// rounding tie (half-integer) lies within dr of the oracle's ratio, the codes are equal and the values differ by
    /// |q| ds; otherwise by at most one step more. Never more than delta + (s + s_hi)(1/2 + 128 u).
    /// </summary>
    private static double[] Shift(QuantizedVector v, double[] delta)
    {
        double s = v.Scale, dmax = delta.Max();
        double ds = dmax / 127 * (1 + U) + 3 * U * s + 2 * Eta, sHi = s + ds, sLo = s - ds;
        var d = new double[delta.Length];
        for (int k = 0; k < d.Length; k++)
        {
            d[k] = delta[k] + (s + sHi) * (0.5 + 128 * U);
            if (!(sLo > 0)) continue;
            double ratio = v.Values[k] / v.Scale; // the rule's float division
            double dr = (delta[k] + Math.Abs(v.Values[k]) * ds / sLo) / sLo + 2 * U * (Math.Abs(ratio) + 1);
            if (dr >= 0.5) continue;
            double tie = Math.Abs(ratio - (Math.Floor(ratio) + 0.5));
            d[k] = Math.Min(d[k], Math.Abs(v.Codes[k]) * ds + (tie <= dr ? sHi : 0));
        }
        return d;
    }
}
