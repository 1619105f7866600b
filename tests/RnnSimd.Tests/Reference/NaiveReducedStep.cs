namespace RnnSimd.Tests.Reference;

/// <summary>An int8 weight matrix as a file or a network stores it: codes q (rows x cols, row-major) and one scale per row; w = q * s.</summary>
public sealed record Int8Matrix(int Rows, int Cols, int[] Codes, float[] Scales)
{
    /// <summary>The symmetric per-row quantization of float32 weights (<see cref="NaiveQuantized.QuantizeMatrix"/>, one segment per row).</summary>
    public static Int8Matrix Quantize(int rows, int cols, float[] w)
    {
        var (q, s) = NaiveQuantized.QuantizeMatrix(rows, cols, w, [0, cols]);
        return new Int8Matrix(rows, cols, q, s);
    }

    /// <summary>The dequantized weight q * s, exactly (an 8-bit code times a 24-bit scale fits a double).</summary>
    public double W(int row, int col) => Codes[row * Cols + col] * (double)Scales[row];

    /// <summary>Rows [row0, row0 + rows): a gate block.</summary>
    public Int8Matrix RowBlock(int row0, int rows) =>
        new(rows, Cols, Codes.AsSpan(row0 * Cols, rows * Cols).ToArray(), Scales.AsSpan(row0, rows).ToArray());
}

/// <summary>A float32 vector quantized as an int8 product's input: the values, their codes and the one scale (values ~ codes * scale).</summary>
public sealed record QuantizedVector(float[] Values, int[] Codes, float Scale)
{
    /// <summary>The spec rule on float32 values (<see cref="NaiveQuantized.QuantizeVector"/>, one segment).</summary>
    public static QuantizedVector Of(float[] values)
    {
        var (q, s) = NaiveQuantized.QuantizeVector(values, [0, values.Length]);
        return new QuantizedVector(values, q, s[0]);
    }
}

/// <summary>
/// What one <see cref="NaiveReducedStep.Step"/> computed, in double: the new state, and every term and intermediate a
/// float32 evaluation rounds (a test derives its allowance from them). Gate rows as <see cref="NaiveRecurrent"/>:
/// rnn (h'), lstm (i, f, g, o), gru (r, z, n).
/// </summary>
public sealed class ReducedStepTrace
{
    /// <summary>(Hout) h'.</summary>
    public required double[] H { get; init; }
    /// <summary>(H) lstm: c'; null otherwise.</summary>
    public double[]? C { get; init; }
    /// <summary>(G*H) activated gates.</summary>
    public required double[] Gates { get; init; }
    /// <summary>(G*H) each gate's pre-activation, all terms summed, before the clip.</summary>
    public required double[] Pre { get; init; }
    /// <summary>(G*H) W_ih x: the dequantized int8 product, x quantized alone (one term per row: the whole dot).</summary>
    public required double[] Ax { get; init; }
    /// <summary>(G*H) W_hh h, h quantized alone; the original GRU's n rows: W_hn (r * h), r * h quantized alone.</summary>
    public required double[] Ah { get; init; }
    /// <summary>(G*H) the exact integer dot of each row of W_ih x (sum of q_w q_x).</summary>
    public required long[] AccX { get; init; }
    /// <summary>(G*H) the exact integer dot of each row of W_hh h (the original GRU's n rows: of W_hn (r * h)).</summary>
    public required long[] AccH { get; init; }
    /// <summary>(G*H) b_ih (zeros without biases).</summary>
    public required double[] Bih { get; init; }
    /// <summary>(G*H) b_hh.</summary>
    public required double[] Bhh { get; init; }
    /// <summary>(G*H) lstm peepholes' terms: p_i c, p_f c, 0, p_o c' (zeros without peepholes).</summary>
    public required double[] Peep { get; init; }
    /// <summary>(H) lstm: h(c'), the function of the new cell state (tanh by default).</summary>
    public double[]? HC { get; init; }
    /// <summary>(H) lstm: m = o h(c'), h' before the projection.</summary>
    public double[]? M { get; init; }
    /// <summary>(H) gru original form: r * h.</summary>
    public double[]? RH { get; init; }
    /// <summary>lstm with a projection: m as quantized for W_hr; gru original form: r * h as quantized for W_hn (each rounded to float32 first: the rule is defined on float32 vectors).</summary>
    public QuantizedVector? Second { get; init; }
    /// <summary>The step's x as quantized for W_ih.</summary>
    public required QuantizedVector X { get; init; }
    /// <summary>The step's h as quantized for W_hh.</summary>
    public required QuantizedVector HPrev { get; init; }
}

/// <summary>
/// The spec of one int8 step of one recurrent layer, in double, from a given state: written from the definition of
/// <see cref="RnnSimd.Layers.Precision.Int8"/> and nothing else. Every product's input vector is quantized by the
/// float32 rule (<see cref="NaiveQuantized"/>: s = max |v| / 127, q = clamp(round_half_even(v / s), -127, 127)), each
/// vector alone: x for W_ih, h for W_hh, the original GRU's r * h for W_hn, the LSTM's m for W_hr. A product is then the
/// exact integer dot times s_w[row] * s_v, in double (= the dequantized weights times the dequantized vector). Biases,
/// peepholes, the cell state and every gate are float32 numbers used in double; the gate equations are
/// <see cref="NaiveRecurrent"/>'s (PyTorch's, with ONNX's peepholes, coupled gates, activations and clip).
/// </summary>
public sealed class NaiveReducedStep
{
    private readonly RecurrentSpec _spec;
    private readonly int _in;
    private readonly Int8Matrix _wih, _whh;   // (G*H, in_l), (G*H, Hout)
    private readonly Int8Matrix? _whr;        // (Hout, H) with a projection
    private readonly double[] _bih, _bhh;     // (G*H) each; zeros without biases
    private readonly double[]? _peep;         // (3, H): p_i, p_f, p_o

    /// <summary>One layer (and direction) of <paramref name="spec"/>: its int8 weight matrices and float32 biases (null: none) and peepholes.</summary>
    public NaiveReducedStep(RecurrentSpec spec, int layer, Int8Matrix wih, Int8Matrix whh, Int8Matrix? whr,
        float[]? bih, float[]? bhh, float[]? peep)
    {
        _spec = spec;
        _in = spec.LayerInputSize(layer);
        int gh = spec.Gates * spec.HiddenSize;
        Expect("weight_ih", wih.Rows, wih.Cols, gh, _in);
        Expect("weight_hh", whh.Rows, whh.Cols, gh, spec.OutputSize);
        if ((spec.ProjSize > 0) != (whr is not null)) throw new ArgumentException("weight_hr is given exactly when the spec has a projection");
        if (whr is not null) Expect("weight_hr", whr.Rows, whr.Cols, spec.ProjSize, spec.HiddenSize);
        if ((spec.Peepholes) != (peep is not null) || (peep is not null && peep.Length != 3 * spec.HiddenSize))
            throw new ArgumentException("peepholes (3, H) are given exactly when the spec has them");
        _wih = wih; _whh = whh; _whr = whr;
        _bih = bih is null ? new double[gh] : bih.Select(v => (double)v).ToArray();
        _bhh = bhh is null ? new double[gh] : bhh.Select(v => (double)v).ToArray();
        if (_bih.Length != gh || _bhh.Length != gh) throw new ArgumentException($"biases have G*H = {gh} values");
        _peep = peep?.Select(v => (double)v).ToArray();
    }

    /// <summary>One step from x (in_l), h (Hout) and c (H, lstm only; else null), all float32 as a network holds them.</summary>
    public ReducedStepTrace Step(float[] x, float[] h, float[]? c)
    {
        var spec = _spec;
        int H = spec.HiddenSize, G = spec.Gates, GH = G * H, Hout = spec.OutputSize;
        if (x.Length != _in || h.Length != Hout || (spec.Cell == "lstm") != (c is not null) || (c is not null && c.Length != H))
            throw new ArgumentException($"x ({x.Length}), h ({h.Length}), c ({c?.Length}): expected {_in}, {Hout}, {(spec.Cell == "lstm" ? H : "none")}");
        var qx = QuantizedVector.Of(x);
        var qh = QuantizedVector.Of(h);
        var (ax, accX) = Product(_wih, qx);   // (G*H) W_ih x
        var (ah, accH) = Product(_whh, qh);   // (G*H) W_hh h
        var pre = new double[GH];
        var gates = new double[GH];
        var peepTerms = new double[GH];
        switch (spec.Cell)
        {
            case "rnn_tanh":
            case "rnn_relu":
            {
                var hNew = new double[H];
                for (int j = 0; j < H; j++)
                {
                    pre[j] = ax[j] + _bih[j] + ah[j] + _bhh[j];
                    hNew[j] = gates[j] = Act(spec.F, Clamp(pre[j]));
                }
                return new ReducedStepTrace
                {
                    H = hNew, Gates = gates, Pre = pre, Ax = ax, Ah = ah, AccX = accX, AccH = accH, Bih = _bih, Bhh = _bhh, Peep = peepTerms, X = qx, HPrev = qh,
                };
            }
            case "lstm":
            {
                var cNew = new double[H];
                var hc = new double[H];
                var m = new double[H];
                for (int j = 0; j < H; j++)
                {
                    double pi = 0, pf = 0, po = 0;
                    if (_peep is not null) { pi = _peep[j]; pf = _peep[H + j]; po = _peep[2 * H + j]; }
                    double cPrev = c![j];
                    peepTerms[j] = pi * cPrev;
                    pre[j] = ax[j] + _bih[j] + ah[j] + _bhh[j] + peepTerms[j];
                    double i = Act(spec.F, Clamp(pre[j]));
                    double f;
                    if (spec.CoupledInputForget)
                    {
                        f = 1 - i;
                    }
                    else
                    {
                        peepTerms[H + j] = pf * cPrev;
                        pre[H + j] = ax[H + j] + _bih[H + j] + ah[H + j] + _bhh[H + j] + peepTerms[H + j];
                        f = Act(spec.F, Clamp(pre[H + j]));
                    }
                    pre[2 * H + j] = ax[2 * H + j] + _bih[2 * H + j] + ah[2 * H + j] + _bhh[2 * H + j];
                    double g = Act(spec.G, Clamp(pre[2 * H + j]));
                    cNew[j] = f * cPrev + i * g;
                    peepTerms[3 * H + j] = po * cNew[j]; // o sees the new cell state
                    pre[3 * H + j] = ax[3 * H + j] + _bih[3 * H + j] + ah[3 * H + j] + _bhh[3 * H + j] + peepTerms[3 * H + j];
                    double o = Act(spec.F, Clamp(pre[3 * H + j]));
                    gates[j] = i; gates[H + j] = f; gates[2 * H + j] = g; gates[3 * H + j] = o;
                    hc[j] = Act(spec.H, cNew[j]); // c' is never clipped
                    m[j] = o * hc[j];
                }
                double[] hNew = m;
                QuantizedVector? qm = null;
                if (_whr is not null)
                {
                    qm = QuantizedVector.Of(m.Select(v => (float)v).ToArray()); // m alone, for W_hr
                    hNew = Product(_whr, qm).Y;
                }
                return new ReducedStepTrace
                {
                    H = hNew, C = cNew, Gates = gates, Pre = pre, Ax = ax, Ah = ah, AccX = accX, AccH = accH, Bih = _bih, Bhh = _bhh, Peep = peepTerms,
                    HC = hc, M = m, Second = qm, X = qx, HPrev = qh,
                };
            }
            case "gru":
            {
                var hNew = new double[H];
                for (int j = 0; j < 2 * H; j++)
                {
                    pre[j] = ax[j] + _bih[j] + ah[j] + _bhh[j];
                    gates[j] = Act(spec.F, Clamp(pre[j])); // r, z
                }
                double[]? rh = null;
                QuantizedVector? qrh = null;
                if (!spec.GruLinearBeforeReset)
                {
                    // W_hn (r * h) + b_hn: r * h quantized alone, the n rows' own product (replacing W_hn h).
                    rh = new double[H];
                    for (int k = 0; k < H; k++) rh[k] = gates[k] * h[k];
                    qrh = QuantizedVector.Of(rh.Select(v => (float)v).ToArray());
                    var (ahn, accN) = Product(_whh.RowBlock(2 * H, H), qrh);
                    Array.Copy(ahn, 0, ah, 2 * H, H);
                    Array.Copy(accN, 0, accH, 2 * H, H);
                }
                for (int j = 0; j < H; j++)
                {
                    double r = gates[j], z = gates[H + j];
                    double xn = ax[2 * H + j] + _bih[2 * H + j];
                    double hn = ah[2 * H + j] + _bhh[2 * H + j];
                    pre[2 * H + j] = spec.GruLinearBeforeReset ? xn + r * hn : xn + hn;
                    double n = Act(spec.G, Clamp(pre[2 * H + j]));
                    gates[2 * H + j] = n;
                    hNew[j] = (1 - z) * n + z * h[j];
                }
                return new ReducedStepTrace
                {
                    H = hNew, Gates = gates, Pre = pre, Ax = ax, Ah = ah, AccX = accX, AccH = accH, Bih = _bih, Bhh = _bhh, Peep = peepTerms, RH = rh, Second = qrh,
                    X = qx, HPrev = qh,
                };
            }
            default:
                throw new InvalidOperationException(spec.Cell);
        }
    }

    /// <summary>W v for an int8 W and a quantized v: the exact integer dots, and times s_w[row] * s_v in double.</summary>
    private static (double[] Y, long[] Acc) Product(Int8Matrix w, QuantizedVector v)
    {
        if (v.Codes.Length != w.Cols) throw new ArgumentException($"vector of {v.Codes.Length}, matrix of {w.Cols} columns");
        long[] acc = NaiveQuantized.IntegerDots(w.Rows, w.Cols, w.Codes, v.Codes, [0, w.Cols]);
        return (NaiveQuantized.Dequantized(w.Rows, 1, acc, w.Scales, [v.Scale], null, null).Y, acc);
    }

    private static double Sigmoid(double a) => 1 / (1 + Math.Exp(-a));

    private static double Act(string fn, double a) => fn switch
    {
        "sigmoid" => Sigmoid(a),
        "tanh" => Math.Tanh(a),
        "relu" => Math.Max(a, 0.0),
        _ => throw new InvalidOperationException(fn),
    };

    private double Clamp(double a) => _spec.Clip > 0 ? Math.Clamp(a, -_spec.Clip, _spec.Clip) : a;

    private static void Expect(string name, int rows, int cols, int r, int c)
    {
        if (rows != r || cols != c) throw new ArgumentException($"{name} is ({rows}, {cols}), expected ({r}, {c})");
    }
}
