namespace RnnSimd.Tests.Reference;

/// <summary>
/// What a recurrent layer is: the cell, sizes and options of PyTorch's torch.nn.RNN / LSTM / GRU (batch_first=False).
/// </summary>
/// <param name="Cell">"rnn_tanh", "rnn_relu", "lstm" or "gru".</param>
/// <param name="ProjSize">LSTM only: when &gt; 0, h = W_hr (o * tanh(c)) has this many features (PyTorch proj_size).</param>
/// <param name="GruLinearBeforeReset">
/// GRU only. true (PyTorch): n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
/// false (ONNX default, Cho et al. 2014): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
/// </param>
/// <param name="Peepholes">
/// LSTM only (ONNX's input P): i = σ(a_i + p_i c), f = σ(a_f + p_f c), o = σ(a_o + p_o c') with c the previous and c'
/// the new cell state; parameter weight_peep_l{l}[_reverse] of shape (3, H), rows p_i, p_f, p_o.
/// </param>
/// <param name="CoupledInputForget">LSTM only (ONNX's input_forget = 1): f = 1 - i; the f rows of the weights and p_f are unused.</param>
/// <param name="ActivationF">ONNX's f, "sigmoid", "tanh" or "relu"; null: the cell's own (σ for the LSTM's i, f, o and the
/// GRU's r, z; tanh or relu for rnn_tanh / rnn_relu).</param>
/// <param name="ActivationG">ONNX's g (null: tanh): the LSTM's g, the GRU's n. lstm and gru only.</param>
/// <param name="ActivationH">ONNX's h (null: tanh): m = o h(c'). lstm only.</param>
/// <param name="Clip">ONNX's clip: when &gt; 0 every gate pre-activation (all its terms summed) is clamped to [-Clip, Clip]
/// before its activation; c' is not. Its derivative is 1 where |a| &lt;= Clip, else 0.</param>
public sealed record RecurrentSpec(string Cell, int InputSize, int HiddenSize,
    int NumLayers = 1, bool Bidirectional = false, bool Bias = true, int ProjSize = 0, bool GruLinearBeforeReset = true,
    bool Peepholes = false, bool CoupledInputForget = false, string? ActivationF = null, string? ActivationG = null,
    string? ActivationH = null, double Clip = 0)
{
    /// <summary>f in force: <see cref="ActivationF"/> or the cell's default.</summary>
    public string F => ActivationF ?? Cell switch { "rnn_tanh" => "tanh", "rnn_relu" => "relu", _ => "sigmoid" };

    /// <summary>g in force.</summary>
    public string G => ActivationG ?? "tanh";

    /// <summary>h in force.</summary>
    public string H => ActivationH ?? "tanh";

    /// <summary>Number of gates stacked in the weight rows: 1 (rnn), 4 (lstm: i,f,g,o), 3 (gru: r,z,n).</summary>
    public int Gates => Cell switch
    {
        "rnn_tanh" or "rnn_relu" => 1,
        "lstm" => 4,
        "gru" => 3,
        _ => throw new ArgumentException($"unknown cell '{Cell}', expected rnn_tanh, rnn_relu, lstm or gru"),
    };

    /// <summary>D: 2 if bidirectional, else 1.</summary>
    public int Directions => Bidirectional ? 2 : 1;

    /// <summary>Hout: features of h (and of each direction's output): ProjSize if &gt; 0, else HiddenSize.</summary>
    public int OutputSize => ProjSize > 0 ? ProjSize : HiddenSize;

    /// <summary>in_l: features of layer l's input: InputSize for layer 0, D*Hout above.</summary>
    public int LayerInputSize(int layer) => layer == 0 ? InputSize : Directions * OutputSize;
}

/// <summary>Forward values, the loss and every gradient of one <see cref="NaiveRecurrent.Run"/>.</summary>
public sealed class NaiveResult
{
    /// <summary>(T, B, D*Hout); forward direction in columns [0, Hout), reverse in [Hout, 2Hout); 0 where t &gt;= len_b.</summary>
    public required double[] Output { get; init; }

    /// <summary>(L*D, B, Hout), index l*D + d: each sequence's h after its own last step.</summary>
    public required double[] HN { get; init; }

    /// <summary>(L*D, B, H), LSTM only; null otherwise.</summary>
    public required double[]? CN { get; init; }

    /// <summary>0.5 sum (Output - target)^2 [+ 0.5 sum (HN - targetHn)^2] [+ 0.5 sum (CN - targetCn)^2].</summary>
    public required double Loss { get; init; }

    /// <summary>dLoss/dparameter, same names and shapes as the parameters.</summary>
    public required Dictionary<string, double[]> ParamGrads { get; init; }

    /// <summary>(T, B, I): dLoss/dinput; 0 where t &gt;= len_b.</summary>
    public required double[] GradInput { get; init; }

    /// <summary>(L*D, B, Hout): dLoss/dh0.</summary>
    public required double[] GradH0 { get; init; }

    /// <summary>(L*D, B, H): dLoss/dc0, LSTM only; null otherwise.</summary>
    public required double[]? GradC0 { get; init; }

    /// <summary>
    /// The smallest distance of any step's pre-activation from a kink of its function: relu's 0 (for a relu gate, and c'
    /// under a relu h) and the clip's ±Clip; +infinity when there is none. A finite-difference test (or a float-vs-double
    /// comparison of gradients) needs it well above the perturbation (or the rounding error), else the two sides of the
    /// kink may be compared. Test plumbing, not part of the public API.
    /// </summary>
    internal double MinKinkDistance { get; init; } = double.PositiveInfinity;

    /// <summary>
    /// The smallest 1 - |v| over every activated gate and tanh(c) of the run: how close a tanh or sigmoid came to
    /// saturating. Its derivative (1 - v^2, or v (1 - v)) is computed from the float v in the network, so its relative
    /// error is about 2^-24 / (1 - |v|). Test plumbing, not part of the public API.
    /// </summary>
    internal double MinSaturationMargin { get; init; } = double.PositiveInfinity;
}

/// <summary>
/// The spec for recurrent layers: a naive double-precision RNN / LSTM / GRU with hand-written full BPTT, written line
/// by line from PyTorch's equations. Loops over layer, direction, sequence b, time step t and gate row; no
/// vectorisation, no batching tricks, no shared code with the library. Never optimised.
/// </summary>
/// <remarks>
/// Equations (PyTorch docs for torch.nn.RNN / LSTM / GRU), x the step input, h and c the previous state:
/// <code>
/// rnn:  h' = act(W_ih x + b_ih + W_hh h + b_hh)                     act = tanh or relu (ONNX's f)
/// lstm: i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)           a = W_ih x + b_ih + W_hh h + b_hh, rows i,f,g,o
///       c' = f c + i g;  m = o tanh(c');  h' = m, or W_hr m with a projection
///       peepholes (ONNX): i = σ(a_i + p_i c), f = σ(a_f + p_f c), o = σ(a_o + p_o c')
///       coupled input and forget gates (ONNX input_forget = 1): f = 1 - i
/// gru:  r = σ(ax_r + ah_r), z = σ(ax_z + ah_z)                      ax = W_ih x + b_ih, ah = W_hh h + b_hh, rows r,z,n
///       n = tanh(ax_n + r ah_n)                    (linear before reset, PyTorch)
///       n = tanh(ax_n + W_hn (r h) + b_hn)         (otherwise, ONNX default)
///       h' = (1 - z) n + z h
/// ONNX's activations replace the functions: lstm σ → f (i, f, o), tanh → g (g), tanh → h (of c'); gru σ → f (r, z),
/// tanh → g (n); rnn act → f. ONNX's clip clamps every pre-activation above (the argument of f or g, all terms summed)
/// to [-clip, clip]; c' is never clamped.
/// </code>
/// Sequence b takes steps t = 0 .. len_b-1 forward and t = len_b-1 .. 0 in reverse, both starting from h0 (and c0);
/// outputs at t &gt;= len_b are 0; h_n (c_n) is the state after the sequence's own last step.
/// </remarks>
public sealed class NaiveRecurrent
{
    private static readonly string[] DirectionSuffixes = ["", "_reverse"];

    private readonly RecurrentSpec _spec;
    private readonly Dictionary<string, double[]> _p;

    /// <summary>Names and shapes of the parameters in PyTorch's state_dict order.</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> ParameterShapes(RecurrentSpec spec)
    {
        ValidateSpec(spec);
        int gh = spec.Gates * spec.HiddenSize, hout = spec.OutputSize;
        var list = new List<(string, int[])>();
        for (int l = 0; l < spec.NumLayers; l++)
        {
            for (int d = 0; d < spec.Directions; d++)
            {
                string s = $"l{l}{DirectionSuffixes[d]}";
                list.Add(($"weight_ih_{s}", [gh, spec.LayerInputSize(l)]));
                list.Add(($"weight_hh_{s}", [gh, hout]));
                if (spec.Bias)
                {
                    list.Add(($"bias_ih_{s}", [gh]));
                    list.Add(($"bias_hh_{s}", [gh]));
                }
                if (spec.ProjSize > 0)
                    list.Add(($"weight_hr_{s}", [hout, spec.HiddenSize]));
                if (spec.Peepholes)
                    list.Add(($"weight_peep_{s}", [3, spec.HiddenSize]));
            }
        }
        return list;
    }

    /// <summary>Takes a copy of the parameters; every name of <see cref="ParameterShapes"/> must be present with the right length, and no other.</summary>
    public NaiveRecurrent(RecurrentSpec spec, IReadOnlyDictionary<string, double[]> parameters)
    {
        var shapes = ParameterShapes(spec);
        _spec = spec;
        _p = new Dictionary<string, double[]>();
        foreach (var (name, shape) in shapes)
        {
            if (!parameters.TryGetValue(name, out var values))
                throw new ArgumentException($"parameter '{name}' is missing");
            int n = shape.Aggregate(1, (a, x) => a * x);
            if (values.Length != n)
                throw new ArgumentException($"parameter '{name}' has {values.Length} values, expected {string.Join('*', shape)} = {n}");
            _p[name] = (double[])values.Clone();
        }
        foreach (var name in parameters.Keys)
            if (!_p.ContainsKey(name))
                throw new ArgumentException($"unexpected parameter '{name}'");
    }

    private static void ValidateSpec(RecurrentSpec spec)
    {
        _ = spec.Gates; // throws on an unknown cell
        if (spec.InputSize < 1 || spec.HiddenSize < 1 || spec.NumLayers < 1)
            throw new ArgumentException($"sizes must be >= 1: {spec}");
        if (spec.ProjSize < 0 || (spec.ProjSize > 0 && spec.Cell != "lstm"))
            throw new ArgumentException($"ProjSize must be 0, or > 0 for lstm only: {spec}");
        if (spec.ProjSize >= spec.HiddenSize && spec.ProjSize > 0)
            throw new ArgumentException($"ProjSize must be smaller than HiddenSize (as PyTorch): {spec}");
        if ((spec.Peepholes || spec.CoupledInputForget) && spec.Cell != "lstm")
            throw new ArgumentException($"Peepholes and CoupledInputForget are for lstm only: {spec}");
        foreach (var a in new[] { spec.ActivationF, spec.ActivationG, spec.ActivationH })
            if (a is not null and not ("sigmoid" or "tanh" or "relu"))
                throw new ArgumentException($"activation '{a}': expected sigmoid, tanh or relu: {spec}");
        if (spec.ActivationG is not null && spec.Cell is not ("lstm" or "gru"))
            throw new ArgumentException($"ActivationG is for lstm and gru only: {spec}");
        if (spec.ActivationH is not null && spec.Cell != "lstm")
            throw new ArgumentException($"ActivationH is for lstm only: {spec}");
        if (!(spec.Clip >= 0) || double.IsInfinity(spec.Clip))
            throw new ArgumentException($"Clip must be finite and >= 0: {spec}");
    }

    /// <summary>Everything one cell step needs again in backward.</summary>
    private sealed class Step
    {
        public required double[] X;      // (in_l) step input
        public required double[] HPrev;  // (Hout) h before the step
        public double[]? CPrev;          // (H) lstm: c before the step
        public required double[] Gates;  // (G*H) activated gates: rnn h'; lstm i,f,g,o; gru r,z,n
        public required double[] Pre;    // (G*H) each gate's pre-activation, all terms summed, before the clip (lstm coupled: f's unused)
        public double[]? C;              // (H) lstm: c'
        public double[]? HC;             // (H) lstm: h(c')
        public double[]? M;              // (H) lstm: o * tanh(c'), h' before the projection
        public double[]? AhN;            // (H) gru linear before reset: W_hn h + b_hn
        public double[]? RH;             // (H) gru otherwise: r * h
        public required double[] H;      // (Hout) h'
    }

    /// <summary>
    /// Forward, loss and full BPTT. Shapes: input (T, B, I); h0 (L*D, B, Hout); c0 (L*D, B, H), lstm only, else null;
    /// target (T, B, D*Hout); lengths (B), each in 1..T, null = all T; targetHn (L*D, B, Hout); targetCn (L*D, B, H).
    /// dropoutMasks: null, or per layer l &lt; L-1 a (T, B, D*Hout) mask multiplied into layer l's output before layer
    /// l+1 reads it (PyTorch's dropout between layers with a given mask); the last layer's output is never masked.
    /// </summary>
    public NaiveResult Run(double[] input, int seqLen, int batch, double[] h0, double[]? c0, double[] target,
        int[]? lengths = null, double[]? targetHn = null, double[]? targetCn = null, double[][]? dropoutMasks = null)
    {
        var spec = _spec;
        bool lstm = spec.Cell == "lstm";
        int T = seqLen, B = batch, L = spec.NumLayers, D = spec.Directions, H = spec.HiddenSize, Hout = spec.OutputSize;

        // ---- validation ----
        if (T < 1 || B < 1) throw new ArgumentException($"seqLen {T} and batch {B} must be >= 1");
        Expect("input", input, T * B * spec.InputSize, $"T*B*I = {T}*{B}*{spec.InputSize}");
        Expect("h0", h0, L * D * B * Hout, $"L*D*B*Hout = {L}*{D}*{B}*{Hout}");
        Expect("target", target, T * B * D * Hout, $"T*B*D*Hout = {T}*{B}*{D}*{Hout}");
        if (lstm) Expect("c0", c0 ?? throw new ArgumentException("c0 is required for lstm"), L * D * B * H, $"L*D*B*H = {L}*{D}*{B}*{H}");
        else if (c0 is not null) throw new ArgumentException($"c0 must be null for {spec.Cell}");
        if (targetHn is not null) Expect("targetHn", targetHn, L * D * B * Hout, $"L*D*B*Hout = {L}*{D}*{B}*{Hout}");
        if (targetCn is not null)
        {
            if (!lstm) throw new ArgumentException($"targetCn must be null for {spec.Cell}");
            Expect("targetCn", targetCn, L * D * B * H, $"L*D*B*H = {L}*{D}*{B}*{H}");
        }
        if (lengths is not null && lengths.Length != B) throw new ArgumentException($"lengths has {lengths.Length} entries, expected B = {B}");
        int[] len = new int[B];
        for (int b = 0; b < B; b++)
        {
            len[b] = lengths is null ? T : lengths[b];
            if (len[b] < 1 || len[b] > T) throw new ArgumentException($"lengths[{b}] = {len[b]}, expected 1..{T}");
        }

        // ---- forward ----
        // layerInput[l]: (T, B, in_l); layerInput[L] is the output (T, B, D*Hout).
        var layerInput = new double[L + 1][];
        layerInput[0] = input;
        var steps = new Step?[L, D, T, B];
        var hn = new double[L * D * B * Hout];  // (L*D, B, Hout)
        var cn = lstm ? new double[L * D * B * H] : null; // (L*D, B, H)
        for (int l = 0; l < L; l++)
        {
            int inL = spec.LayerInputSize(l);
            var x = layerInput[l];
            var y = new double[T * B * D * Hout]; // (T, B, D*Hout), 0 where t >= len_b
            for (int d = 0; d < D; d++)
            {
                int ld = l * D + d;
                for (int b = 0; b < B; b++)
                {
                    double[] h = Slice(h0, (ld * B + b) * Hout, Hout);
                    double[]? c = lstm ? Slice(c0!, (ld * B + b) * H, H) : null;
                    for (int k = 0; k < len[b]; k++)
                    {
                        int t = d == 0 ? k : len[b] - 1 - k;
                        var step = CellForward(l, d, Slice(x, (t * B + b) * inL, inL), h, c);
                        steps[l, d, t, b] = step;
                        h = step.H;
                        c = step.C;
                        for (int j = 0; j < Hout; j++) y[(t * B + b) * D * Hout + d * Hout + j] = h[j];
                    }
                    for (int j = 0; j < Hout; j++) hn[(ld * B + b) * Hout + j] = h[j];
                    if (lstm) for (int j = 0; j < H; j++) cn![(ld * B + b) * H + j] = c![j];
                }
            }
            layerInput[l + 1] = y;
            if (dropoutMasks is not null && l < L - 1)
            {
                Expect($"dropoutMasks[{l}]", dropoutMasks[l], y.Length, "T*B*D*Hout");
                var dropped = new double[y.Length];
                for (int i = 0; i < y.Length; i++) dropped[i] = y[i] * dropoutMasks[l][i];
                layerInput[l + 1] = dropped;
            }
        }
        double[] output = layerInput[L];
        double minKink = double.PositiveInfinity, minSaturation = double.PositiveInfinity;
        foreach (var step in steps)
        {
            if (step is null) continue;
            for (int r = 0; r < step.Pre.Length; r++)
            {
                if (lstm && spec.CoupledInputForget && r / H == 1) continue; // f = 1 - i has no pre-activation
                string fn = spec.Cell switch { "lstm" => r / H == 2 ? spec.G : spec.F, "gru" => r / H == 2 ? spec.G : spec.F, _ => spec.F };
                if (fn == "relu") minKink = Math.Min(minKink, Math.Abs(step.Pre[r]));
                if (spec.Clip > 0) minKink = Math.Min(minKink, Math.Abs(Math.Abs(step.Pre[r]) - spec.Clip));
            }
            if (lstm && spec.H == "relu") foreach (double c in step.C!) minKink = Math.Min(minKink, Math.Abs(c));
            foreach (double v in step.Gates) minSaturation = Math.Min(minSaturation, 1 - Math.Abs(v));
            if (step.HC is not null) foreach (double v in step.HC) minSaturation = Math.Min(minSaturation, 1 - Math.Abs(v));
        }

        // ---- loss and its gradient with respect to output, h_n, c_n ----
        double loss = 0;
        var dY = new double[output.Length]; // (T, B, D*Hout)
        for (int i = 0; i < output.Length; i++)
        {
            double e = output[i] - target[i];
            loss += 0.5 * e * e;
            dY[i] = e;
        }
        var dHn = new double[hn.Length]; // (L*D, B, Hout)
        if (targetHn is not null)
        {
            for (int i = 0; i < hn.Length; i++)
            {
                double e = hn[i] - targetHn[i];
                loss += 0.5 * e * e;
                dHn[i] = e;
            }
        }
        var dCn = lstm ? new double[cn!.Length] : null; // (L*D, B, H)
        if (targetCn is not null)
        {
            for (int i = 0; i < cn!.Length; i++)
            {
                double e = cn[i] - targetCn[i];
                loss += 0.5 * e * e;
                dCn![i] = e;
            }
        }

        // ---- backward: top layer first; within a layer each direction walks its steps in reverse order ----
        var grads = new Dictionary<string, double[]>();
        foreach (var (name, values) in _p) grads[name] = new double[values.Length];
        var dH0 = new double[h0.Length];
        var dC0 = lstm ? new double[c0!.Length] : null;
        for (int l = L - 1; l >= 0; l--)
        {
            int inL = spec.LayerInputSize(l);
            var dX = new double[T * B * inL]; // (T, B, in_l): gradient into this layer's input
            for (int d = 0; d < D; d++)
            {
                int ld = l * D + d;
                for (int b = 0; b < B; b++)
                {
                    double[] dh = Slice(dHn, (ld * B + b) * Hout, Hout);   // dLoss/dh carried backward in time
                    double[]? dc = lstm ? Slice(dCn!, (ld * B + b) * H, H) : null;
                    for (int k = len[b] - 1; k >= 0; k--)
                    {
                        int t = d == 0 ? k : len[b] - 1 - k;
                        for (int j = 0; j < Hout; j++) dh[j] += dY[(t * B + b) * D * Hout + d * Hout + j];
                        var step = steps[l, d, t, b]!;
                        var dx = new double[inL];
                        (dh, dc) = CellBackward(l, d, step, dh, dc, dx, grads);
                        for (int i = 0; i < inL; i++) dX[(t * B + b) * inL + i] += dx[i];
                    }
                    for (int j = 0; j < Hout; j++) dH0[(ld * B + b) * Hout + j] = dh[j];
                    if (lstm) for (int j = 0; j < H; j++) dC0![(ld * B + b) * H + j] = dc![j];
                }
            }
            dY = dX;
            if (dropoutMasks is not null && l > 0)
                for (int i = 0; i < dY.Length; i++) dY[i] *= dropoutMasks[l - 1][i];
        }

        return new NaiveResult
        {
            Output = output, HN = hn, CN = cn, Loss = loss,
            ParamGrads = grads, GradInput = dY, GradH0 = dH0, GradC0 = dC0,
            MinKinkDistance = minKink, MinSaturationMargin = minSaturation,
        };
    }

    // ---------------------------------------------------------------------------------------------------------
    // One cell step, forward and backward. W is (rows, cols) row-major; "gate block" q holds rows [q*H, (q+1)*H).
    // ---------------------------------------------------------------------------------------------------------

    private Step CellForward(int l, int d, double[] x, double[] h, double[]? c)
    {
        var spec = _spec;
        string s = $"l{l}{DirectionSuffixes[d]}";
        int H = spec.HiddenSize, Hout = spec.OutputSize, G = spec.Gates;
        var wih = _p[$"weight_ih_{s}"];               // (G*H, in_l)
        var whh = _p[$"weight_hh_{s}"];               // (G*H, Hout)
        var bih = spec.Bias ? _p[$"bias_ih_{s}"] : null; // (G*H)
        var bhh = spec.Bias ? _p[$"bias_hh_{s}"] : null; // (G*H)
        var ax = new double[G * H]; // W_ih x + b_ih
        var ah = new double[G * H]; // W_hh h + b_hh
        for (int r = 0; r < G * H; r++)
        {
            ax[r] = Dot(wih, r, x) + (bih is null ? 0 : bih[r]);
            ah[r] = Dot(whh, r, h) + (bhh is null ? 0 : bhh[r]);
        }

        switch (spec.Cell)
        {
            case "rnn_tanh":
            case "rnn_relu":
            {
                var a = new double[H];
                var hNew = new double[H];
                for (int j = 0; j < H; j++)
                {
                    a[j] = ax[j] + ah[j];
                    hNew[j] = Act(spec.F, Clamp(a[j]));
                }
                return new Step { X = x, HPrev = h, Gates = hNew, Pre = a, H = hNew };
            }
            case "lstm":
            {
                var gates = new double[4 * H]; // i, f, g, o
                var pre = new double[4 * H];   // their pre-activations
                var cNew = new double[H];
                var hc = new double[H];
                var m = new double[H];
                var peep = spec.Peepholes ? _p[$"weight_peep_{s}"] : null; // (3, H): p_i, p_f, p_o
                for (int j = 0; j < H; j++)
                {
                    double pi = 0, pf = 0, po = 0;
                    if (peep is not null) { pi = peep[0 * H + j]; pf = peep[1 * H + j]; po = peep[2 * H + j]; }
                    pre[0 * H + j] = ax[0 * H + j] + ah[0 * H + j] + pi * c![j];
                    double i = Act(spec.F, Clamp(pre[0 * H + j]));
                    double f;
                    if (spec.CoupledInputForget)
                    {
                        f = 1 - i;
                    }
                    else
                    {
                        pre[1 * H + j] = ax[1 * H + j] + ah[1 * H + j] + pf * c![j];
                        f = Act(spec.F, Clamp(pre[1 * H + j]));
                    }
                    pre[2 * H + j] = ax[2 * H + j] + ah[2 * H + j];
                    double g = Act(spec.G, Clamp(pre[2 * H + j]));
                    cNew[j] = f * c![j] + i * g;
                    pre[3 * H + j] = ax[3 * H + j] + ah[3 * H + j] + po * cNew[j]; // the new cell state
                    double o = Act(spec.F, Clamp(pre[3 * H + j]));
                    gates[0 * H + j] = i;
                    gates[1 * H + j] = f;
                    gates[2 * H + j] = g;
                    gates[3 * H + j] = o;
                    hc[j] = Act(spec.H, cNew[j]); // c' is not clipped
                    m[j] = o * hc[j];
                }
                double[] hNew = m;
                if (spec.ProjSize > 0)
                {
                    var whr = _p[$"weight_hr_{s}"]; // (Hout, H)
                    hNew = new double[Hout];
                    for (int p = 0; p < Hout; p++) hNew[p] = Dot(whr, p, m);
                }
                return new Step { X = x, HPrev = h, CPrev = c, Gates = gates, Pre = pre, C = cNew, HC = hc, M = m, H = hNew };
            }
            case "gru":
            {
                var gates = new double[3 * H]; // r, z, n
                var pre = new double[3 * H];   // their pre-activations
                var hNew = new double[H];
                double[]? ahN = null, rh = null;
                if (spec.GruLinearBeforeReset) ahN = new double[H];
                else rh = new double[H];
                for (int j = 0; j < H; j++)
                {
                    pre[0 * H + j] = ax[0 * H + j] + ah[0 * H + j];
                    pre[1 * H + j] = ax[1 * H + j] + ah[1 * H + j];
                    gates[0 * H + j] = Act(spec.F, Clamp(pre[0 * H + j]));
                    gates[1 * H + j] = Act(spec.F, Clamp(pre[1 * H + j]));
                }
                if (rh is not null)
                    for (int k = 0; k < H; k++) rh[k] = gates[0 * H + k] * h[k];
                for (int j = 0; j < H; j++)
                {
                    double r = gates[0 * H + j], z = gates[1 * H + j];
                    if (ahN is not null)
                    {
                        ahN[j] = ah[2 * H + j]; // W_hn h + b_hn
                        pre[2 * H + j] = ax[2 * H + j] + r * ahN[j];
                    }
                    else
                    {
                        // W_hn (r h) + b_hn: a fresh product with the reset hidden state, not ah.
                        double whnRh = Dot(whh, 2 * H + j, rh!) + (bhh is null ? 0 : bhh[2 * H + j]);
                        pre[2 * H + j] = ax[2 * H + j] + whnRh;
                    }
                    double n = Act(spec.G, Clamp(pre[2 * H + j]));
                    gates[2 * H + j] = n;
                    hNew[j] = (1 - z) * n + z * h[j];
                }
                return new Step { X = x, HPrev = h, Gates = gates, Pre = pre, AhN = ahN, RH = rh, H = hNew };
            }
            default:
                throw new InvalidOperationException(spec.Cell);
        }
    }

    /// <summary>
    /// Backward through one step. dh (Hout) and dc (H, lstm) are dLoss/dh', dLoss/dc' (all paths: output, next step,
    /// h_n). Accumulates parameter gradients into <paramref name="grads"/> and dLoss/dx into <paramref name="dx"/>;
    /// returns dLoss/dh and dLoss/dc of the previous state.
    /// </summary>
    private (double[] DhPrev, double[]? DcPrev) CellBackward(int l, int d, Step st, double[] dh, double[]? dc,
        double[] dx, Dictionary<string, double[]> grads)
    {
        var spec = _spec;
        string s = $"l{l}{DirectionSuffixes[d]}";
        int H = spec.HiddenSize, Hout = spec.OutputSize, G = spec.Gates;
        var dax = new double[G * H]; // dLoss/d(W_ih x + b_ih)
        var dah = new double[G * H]; // dLoss/d(W_hh h + b_hh), for the rows multiplied with h
        var dhPrev = new double[Hout];
        double[]? dcPrev = null;

        switch (spec.Cell)
        {
            case "rnn_tanh":
            case "rnn_relu":
            {
                for (int j = 0; j < H; j++)
                {
                    double y = st.H[j];
                    // tanh' = 1 - y^2; relu' = 1 if y > 0 else 0 (PyTorch's threshold_backward: 0 at a = 0).
                    double da = dh[j] * Slope(spec.F, y) * ClipSlope(st.Pre[j]);
                    dax[j] = da;
                    dah[j] = da;
                }
                break;
            }
            case "lstm":
            {
                var dm = new double[H]; // dLoss/dm, m = o tanh(c')
                if (spec.ProjSize > 0)
                {
                    var whr = _p[$"weight_hr_{s}"];   // (Hout, H)
                    var dwhr = grads[$"weight_hr_{s}"];
                    for (int p = 0; p < Hout; p++)
                    {
                        for (int j = 0; j < H; j++)
                        {
                            dwhr[p * H + j] += dh[p] * st.M![j];
                            dm[j] += whr[p * H + j] * dh[p];
                        }
                    }
                }
                else
                {
                    for (int j = 0; j < H; j++) dm[j] = dh[j];
                }
                dcPrev = new double[H];
                var peep = spec.Peepholes ? _p[$"weight_peep_{s}"] : null; // (3, H): p_i, p_f, p_o
                var dpeep = spec.Peepholes ? grads[$"weight_peep_{s}"] : null;
                for (int j = 0; j < H; j++)
                {
                    double i = st.Gates[0 * H + j], f = st.Gates[1 * H + j], g = st.Gates[2 * H + j], o = st.Gates[3 * H + j];
                    double pi = 0, pf = 0, po = 0;
                    if (peep is not null) { pi = peep[0 * H + j]; pf = peep[1 * H + j]; po = peep[2 * H + j]; }
                    double cPrev = st.CPrev![j], cNew = st.C![j];
                    double hc = st.HC![j];                              // h(c'), tanh(c') by default
                    double dO = dm[j] * hc;
                    double daO = dO * Slope(spec.F, o) * ClipSlope(st.Pre[3 * H + j]); // dLoss/d(a_o + p_o c')
                    // dLoss/dc': from c_n / the next step, through h' = o h(c'), and through o's peephole p_o c'
                    double dcTotal = dc![j] + dm[j] * o * Slope(spec.H, hc) + daO * po;
                    double dI = dcTotal * g;
                    double dF = dcTotal * cPrev;
                    double dG = dcTotal * i;
                    double daI, daF;
                    if (spec.CoupledInputForget)
                    {
                        daI = (dI - dF) * Slope(spec.F, i) * ClipSlope(st.Pre[0 * H + j]); // f = 1 - i: df/di = -1
                        daF = 0;                                          // a_f is unused
                    }
                    else
                    {
                        daI = dI * Slope(spec.F, i) * ClipSlope(st.Pre[0 * H + j]);
                        daF = dF * Slope(spec.F, f) * ClipSlope(st.Pre[1 * H + j]);
                    }
                    // dLoss/dc: through c' = f c + i g, and through the peepholes p_i c, p_f c of i and f
                    dcPrev[j] = dcTotal * f + daI * pi + daF * pf;
                    dax[0 * H + j] = dah[0 * H + j] = daI;
                    dax[1 * H + j] = dah[1 * H + j] = daF;
                    dax[2 * H + j] = dah[2 * H + j] = dG * Slope(spec.G, g) * ClipSlope(st.Pre[2 * H + j]);
                    dax[3 * H + j] = dah[3 * H + j] = daO;
                    if (dpeep is not null)
                    {
                        dpeep[0 * H + j] += daI * cPrev;
                        dpeep[1 * H + j] += daF * cPrev;
                        dpeep[2 * H + j] += daO * cNew;
                    }
                }
                break;
            }
            case "gru":
            {
                var dr = new double[H]; // dLoss/dr
                for (int j = 0; j < H; j++)
                {
                    double z = st.Gates[1 * H + j], n = st.Gates[2 * H + j];
                    double dn = dh[j] * (1 - z);
                    double dz = dh[j] * (st.HPrev[j] - n);
                    dhPrev[j] += dh[j] * z; // the z h term
                    double dan = dn * Slope(spec.G, n) * ClipSlope(st.Pre[2 * H + j]); // dLoss/d(pre-activation of n)
                    dax[2 * H + j] = dan;
                    dax[1 * H + j] = dah[1 * H + j] = dz * Slope(spec.F, z) * ClipSlope(st.Pre[1 * H + j]);
                    if (spec.GruLinearBeforeReset)
                    {
                        double r = st.Gates[0 * H + j];
                        dah[2 * H + j] = dan * r;       // through r * (W_hn h + b_hn)
                        dr[j] += dan * st.AhN![j];
                    }
                }
                if (!spec.GruLinearBeforeReset)
                {
                    // n-block: W_hn (r h) + b_hn. Its hidden rows multiply rh, not h, so handle them here and
                    // leave dah[2H..3H) zero for the shared loop below.
                    var whh = _p[$"weight_hh_{s}"];   // (3H, H)
                    var dwhh = grads[$"weight_hh_{s}"];
                    var dbhh = spec.Bias ? grads[$"bias_hh_{s}"] : null;
                    for (int j = 0; j < H; j++)
                    {
                        double dan = dax[2 * H + j];
                        if (dbhh is not null) dbhh[2 * H + j] += dan;
                        for (int k = 0; k < H; k++)
                        {
                            dwhh[(2 * H + j) * H + k] += dan * st.RH![k];
                            double drh = whh[(2 * H + j) * H + k] * dan; // dLoss/d(r h)[k], one term
                            dr[k] += drh * st.HPrev[k];
                            dhPrev[k] += drh * st.Gates[0 * H + k];
                        }
                    }
                }
                for (int j = 0; j < H; j++)
                {
                    double r = st.Gates[0 * H + j];
                    dax[0 * H + j] = dah[0 * H + j] = dr[j] * Slope(spec.F, r) * ClipSlope(st.Pre[0 * H + j]);
                }
                break;
            }
            default:
                throw new InvalidOperationException(spec.Cell);
        }

        // Shared by every cell: ax = W_ih x + b_ih and ah = W_hh h + b_hh.
        var wIh = _p[$"weight_ih_{s}"];   // (G*H, in_l)
        var wHh = _p[$"weight_hh_{s}"];   // (G*H, Hout)
        var dWIh = grads[$"weight_ih_{s}"];
        var dWHh = grads[$"weight_hh_{s}"];
        int inL = st.X.Length;
        for (int r = 0; r < G * H; r++)
        {
            for (int k = 0; k < inL; k++)
            {
                dWIh[r * inL + k] += dax[r] * st.X[k];
                dx[k] += wIh[r * inL + k] * dax[r];
            }
            if (spec.Bias) grads[$"bias_ih_{s}"][r] += dax[r];
        }
        bool gruReset = spec.Cell == "gru" && !spec.GruLinearBeforeReset;
        for (int r = 0; r < G * H; r++)
        {
            if (gruReset && r >= 2 * H) continue; // done above with r h
            for (int k = 0; k < Hout; k++)
            {
                dWHh[r * Hout + k] += dah[r] * st.HPrev[k];
                dhPrev[k] += wHh[r * Hout + k] * dah[r];
            }
            if (spec.Bias) grads[$"bias_hh_{s}"][r] += dah[r];
        }
        return (dhPrev, dcPrev);
    }

    private static double Sigmoid(double a) => 1 / (1 + Math.Exp(-a));

    /// <summary>An activation by name: sigmoid, tanh or relu.</summary>
    private static double Act(string fn, double a) => fn switch
    {
        "sigmoid" => Sigmoid(a),
        "tanh" => Math.Tanh(a),
        "relu" => Math.Max(a, 0.0),
        _ => throw new InvalidOperationException(fn),
    };

    /// <summary>The activation's derivative from its output y: y (1 - y), 1 - y^2, or 1 where y &gt; 0 (relu; 0 at 0, as PyTorch).</summary>
    private static double Slope(string fn, double y) => fn switch
    {
        "sigmoid" => y * (1 - y),
        "tanh" => 1 - y * y,
        "relu" => y > 0 ? 1 : 0,
        _ => throw new InvalidOperationException(fn),
    };

    /// <summary>The clip: a clamped to [-Clip, Clip], or a when there is none.</summary>
    private double Clamp(double a) => _spec.Clip > 0 ? Math.Clamp(a, -_spec.Clip, _spec.Clip) : a;

    /// <summary>The clip's derivative at the pre-activation a: 1 where |a| &lt;= Clip (or no clip), else 0.</summary>
    private double ClipSlope(double a) => _spec.Clip > 0 && Math.Abs(a) > _spec.Clip ? 0 : 1;

    /// <summary>Row <paramref name="row"/> of W (row-major, v.Length columns) dotted with v.</summary>
    private static double Dot(double[] w, int row, double[] v)
    {
        double sum = 0;
        for (int k = 0; k < v.Length; k++) sum += w[row * v.Length + k] * v[k];
        return sum;
    }

    private static double[] Slice(double[] a, int offset, int count) => a.AsSpan(offset, count).ToArray();

    private static void Expect(string name, double[] a, int n, string formula)
    {
        if (a.Length != n) throw new ArgumentException($"{name} has {a.Length} values, expected {formula} = {n}");
    }
}
