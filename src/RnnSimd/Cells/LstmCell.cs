using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.Cells;

/// <summary>
/// Which LSTM a <see cref="LstmCell{TVariant}"/> computes beyond PyTorch's: ONNX's peepholes (input P) and coupled input
/// and forget gates (input_forget = 1), compiled in; or, for <see cref="LstmConfigured"/>, everything (the activations
/// and clip too) read at run time. Constants of a struct type argument, so the JIT compiles each variant's kernels and
/// loops on their own and the plain LSTM's code is exactly what it is without the options.
/// </summary>
internal interface ILstmVariant : IGateVariant
{
    /// <summary>i and f see p_i, p_f ⊙ c_{t-1}; o sees p_o ⊙ c_t (<see cref="RecurrentOptions.Peepholes"/>).</summary>
    static abstract bool Peepholes { get; }

    /// <summary>f = 1 - i (<see cref="RecurrentOptions.CoupledInputForget"/>).</summary>
    static abstract bool Coupled { get; }
}

/// <summary>PyTorch's LSTM.</summary>
internal readonly struct LstmPlain : ILstmVariant
{
    public static bool Peepholes => false;
    public static bool Coupled => false;
    public static bool Configured => false;
}

/// <summary>LSTM with peepholes.</summary>
internal readonly struct LstmPeepholes : ILstmVariant
{
    public static bool Peepholes => true;
    public static bool Coupled => false;
    public static bool Configured => false;
}

/// <summary>LSTM with coupled input and forget gates.</summary>
internal readonly struct LstmCoupled : ILstmVariant
{
    public static bool Peepholes => false;
    public static bool Coupled => true;
    public static bool Configured => false;
}

/// <summary>LSTM with peepholes and coupled input and forget gates (p_f unused).</summary>
internal readonly struct LstmPeepholesCoupled : ILstmVariant
{
    public static bool Peepholes => true;
    public static bool Coupled => true;
    public static bool Configured => false;
}

/// <summary>
/// ONNX's LSTM with anything beyond the compiled variants (activations other than σ, tanh, tanh, or a clip): peepholes
/// (<see cref="LayerWeights.Peep"/> not null), coupled gates, activations and clip all read at run time
/// (<see cref="LayerWeights.Functions"/>). Its static flags are unused.
/// </summary>
internal readonly struct LstmConfigured : ILstmVariant
{
    public static bool Peepholes => false;
    public static bool Coupled => false;
    public static bool Configured => true;
}

/// <summary>
/// LSTM (gates i, f, g, o as PyTorch), optionally with a projection (LSTMP: h = W_hr (o * tanh c)), and ONNX's
/// peepholes and coupled gates as chosen by <typeparamref name="TVariant"/>.
/// Forward: (a_i, a_f, a_g, a_o) = x W_ih^T + b_ih + h W_hh^T + b_hh; i = σ(a_i [+ p_i*c]); f = σ(a_f [+ p_f*c]), or
/// 1 - i when coupled; g = tanh(a_g); c' = f*c + i*g; o = σ(a_o [+ p_o*c']); m = o*tanh(c'); h' = m, or W_hr m with a
/// projection. Records gates, c, tanh c (and m, dL/dh for the projection); the peepholes' gradients come from the
/// recorded pre-activation gradients and c after the time loop (<see cref="RecurrentGradients"/>).
/// Configured (ONNX's activations f, g, h and clip): i, f, o = f(clamp(...)), g = g(clamp(...)), m = o*h(c'), c' never
/// clamped; TanhC records h(c'), and with a clip the pre-activations are recorded for Backward.
/// </summary>
internal readonly unsafe struct LstmCell<TVariant> : ICell where TVariant : struct, ILstmVariant
{
    public static string GateLayout => "i,f,g,o";

    public static int FusedRows(RecurrentOptions o) => 4 * o.HiddenSize;

    public static CellRecords Records(RecurrentOptions o) => CellRecords.CellState | (o.ProjSize > 0 ? CellRecords.Projection : 0)
        | (o.Clip > 0 ? CellRecords.PreActivations : 0);

    public static void Forward(LayerWeights w, ref CellStep s)
    {
        w.Mul(s, s.HPrev, w.RecV, w.RecT, s.Gh, w.GH, false);                  // gh = h W_hh^T  (B, 4H)
        var k = new LstmForward<TVariant>
        {
            Isa = w.K.Isa, A = s.Gx, Bias = w.BiasSum, B = s.Gh, CPrev = s.CPrev, Gates = s.Gates, C = s.CNew, TanhC = s.TanhC,
            H = w.P > 0 ? s.M : s.HNew, Peep = w.Peep, Hd = (nuint)w.H, BStride = (nuint)w.GH, Functions = w.Functions, Pre = s.Pre,
        };
        Rows.Run(ref k, s.Batch, w.GH);
        if (w.P > 0) w.Mul(s, s.M, w.WhrV!, w.WhrT!, s.HNew, w.Hout, false); // h = m W_hr^T  (B, P)
    }

    public static bool SplitsByUnits(RecurrentOptions o) => o.ProjSize == 0;

    public static void ForwardUnits(LayerWeights w, ref CellStep s, int u0, int u1)
    {
        w.MulUnits(s, s.HPrev, w.RecV, w.RecT, s.Gh, w.GH, 4, u0, u1, false);    // gh = h W_hh^T, rows of units [u0, u1)
        var k = new LstmForward<TVariant>
        {
            Isa = w.K.Isa, A = s.Gx + u0, Bias = w.BiasSum + u0, B = s.Gh + u0, CPrev = s.CPrev + u0, Gates = s.Gates + u0, C = s.CNew + u0,
            TanhC = s.TanhC + u0, H = s.HNew + u0, Peep = w.Peep == null ? null : w.Peep + u0, Hd = (nuint)w.H, BStride = (nuint)w.GH, Count = (nuint)(u1 - u0),
            Functions = w.Functions, Pre = s.Pre == null ? null : s.Pre + u0,
        };
        for (int b = 0; b < s.Batch; b++) k.Row(b);
    }

    public static void StreamProductsUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1) =>
        w.GemvUnits(w.StepV, 4, xh, s.Gx, u0, u1, false);                           // [x | h] [W_ih | W_hh]^T, units' rows

    public static void StreamGatesUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1)
    {
        var k = new LstmForward<TVariant>
        {
            Isa = w.K.Isa, A = s.Gx + u0, Bias = w.BiasSum + u0, B = w.Zeros + u0, CPrev = s.CPrev + u0, Gates = s.Gates + u0, C = s.CNew + u0,
            TanhC = s.TanhC + u0, H = s.HNew + u0, Peep = w.Peep == null ? null : w.Peep + u0, Hd = (nuint)w.H, Count = (nuint)(u1 - u0), Functions = w.Functions,
        };
        k.Row(0);
    }

    public static void StreamStep(LayerWeights w, float* xh, ref CellStep s)
    {
        w.StreamProduct(s.Q, StreamProductKind.Step, xh, s.Gx, false);           // [x | h] [W_ih | W_hh]^T
        var k = new LstmForward<TVariant>
        {
            Isa = w.K.Isa, A = s.Gx, Bias = w.BiasSum, B = w.Zeros, CPrev = s.CPrev, Gates = s.Gates, C = s.CNew, TanhC = s.TanhC,
            H = w.P > 0 ? s.M : s.HNew, Peep = w.Peep, Hd = (nuint)w.H, Functions = w.Functions,
        };
        k.Row(0);
        if (w.P > 0) w.StreamProduct(s.Q, StreamProductKind.Whr, s.M, s.HNew, false);
    }

    public static void Backward(LayerWeights w, ref CellBackStep s)
    {
        int B = s.F.Batch, H = w.H, P = w.P, GH = w.GH;
        float* dm = s.DH;                                                           // dL/dm = dL/dh without a projection
        if (P > 0)
        {
            new ReadOnlySpan<float>(s.DH, B * P).CopyTo(new Span<float>(s.DHs, B * P));
            for (int b = 0; b < B; b++) // a padded step's m is not part of the model: no dW_hr from it
                if (!s.Active(b)) new Span<float>(s.DHs + b * P, P).Clear();
            w.MulBack(B, s.DH, P, w.Whr, w.WhrN!, s.DM, false);                    // dm = dh W_hr  (B, H)
            dm = s.DM;
        }
        var k = new LstmBackward<TVariant>
        {
            Isa = w.K.Isa, DM = dm, DCNext = s.DC, Gates = s.F.Gates, CPrev = s.F.CPrev, TanhC = s.F.TanhC, DG = s.DG, DCPrev = s.DC,
            Peep = w.Peep, Hd = (nuint)H, Lengths = s.Lengths, T = s.T, Functions = w.Functions, Pre = s.F.Pre,
        };
        Rows.Run(ref k, B, GH);
        w.MulBack(B, s.DG, GH, w.Whh, w.RecN, s.DHPrev, false);                     // dh_{t-1} = dG W_hh  (B, Hout)
    }

    public static void RecurrentGradients(LayerWeights w, in CellSequence q, float* grads)
    {
        int GH = w.GH, Hout = w.Hout, H = w.H, P = w.P, n = q.Rows;
        w.K.Gemm(true, false, GH, Hout, n, 1f, new ReadOnlySpan<float>(q.DGh, n * GH), GH, new ReadOnlySpan<float>(q.Hs, n * Hout), Hout,
            1f, new Span<float>(grads + w.OWhh, GH * Hout), Hout);                  // dW_hh += dG^T H_{t-1}
        if (P > 0)
            w.K.Gemm(true, false, P, H, n, 1f, new ReadOnlySpan<float>(q.DHs, n * P), P, new ReadOnlySpan<float>(q.M, n * H), H,
                1f, new Span<float>(grads + w.OWhr, P * H), H);                     // dW_hr += dH^T M
        if (TVariant.Configured ? w.Peep != null : TVariant.Peepholes)
        {
            // dp_i += Σ dpre_i ⊙ c_{t-1}, dp_f += Σ dpre_f ⊙ c_{t-1}, dp_o += Σ dpre_o ⊙ c_t over the rows in processing
            // order (a padded row's dpre is 0). Cs: (T + 1, B, H), row r's c_{t-1} at r, its c_t at r + B.
            var k = new LstmPeepholeGradients<TVariant> { Isa = w.K.Isa, DPeep = grads + w.OPeep, Hd = (nuint)H, Coupled = w.Functions.Coupled };
            for (int r = 0; r < n; r++)
            {
                k.DG = q.DGh + (long)r * GH;
                k.CPrev = q.Cs + (long)r * H;
                k.C = k.CPrev + (long)q.Batch * H;
                Lanes.For(w.K.Isa, H, ref k);
            }
        }
    }
}

/// <summary>
/// LSTM forward of one row: gates = (σ, σ, tanh, σ)((A + Bias) + B), the peepholes added last (p_i*cPrev, p_f*cPrev,
/// p_o*c, each with one FMA) and f = 1 - i when coupled; c = f*cPrev + i*g; h = o*tanh(c). C may alias CPrev.
/// Configured: the same with the activations and clip of <see cref="Functions"/> (<see cref="Configured{TL, TV}"/>).
/// </summary>
internal unsafe struct LstmForward<TVariant> : ILaneKernel, IRowKernel where TVariant : struct, ILstmVariant
{
    public KernelIsa Isa;
    public float* A, Bias, B, CPrev, Gates, C, TanhC, H; // A, B, Gates: (4H) per row, stride BStride for B; Bias (4H) shared; others (H)
    public nuint Hd, BStride;
    public nuint Count; // units per row when not 0 (a step split by units: pointers start at the first unit), else Hd
    public float* Peep; // peepholes: (3H) p_i, p_f, p_o, shared by every row (last: the plain LSTM's field offsets stay as they were)
    public GateFunctions Functions; // configured only: activations, clip, coupled gates
    public float* Pre;              // configured only: (4H) pre-activations recorded here when not null (a training forward with a clip)

    public readonly void Row(int b)
    {
        nuint g = 4 * Hd * (nuint)b, r = Hd * (nuint)b;
        var k = this;
        k.A += g; k.B += BStride * (nuint)b; k.Gates += g; k.CPrev += r; k.C += r; k.TanhC += r; k.H += r;
        if (TVariant.Configured && k.Pre != null) k.Pre += g;
        Lanes.For(Isa, (int)(Count != 0 ? Count : Hd), ref k);
    }

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        if (TVariant.Configured)
        {
            Configured<TL, TV>(j);
            return;
        }
        // The plain LSTM's operations in their original order (the JIT drops every variant branch), so its code is unchanged.
        nuint h = Hd;
        TV i = TL.Apply<SigmoidOp>(TVariant.Peepholes
            ? TL.Fma(TL.Load(Peep, j), TL.Load(CPrev, j), TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j)))
            : TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j)));
        TV f = TVariant.Coupled ? TL.Sub(TL.Splat(1f), i) : TL.Apply<SigmoidOp>(TVariant.Peepholes
            ? TL.Fma(TL.Load(Peep, h + j), TL.Load(CPrev, j), TL.Add(TL.Add(TL.Load(A, h + j), TL.Load(Bias, h + j)), TL.Load(B, h + j)))
            : TL.Add(TL.Add(TL.Load(A, h + j), TL.Load(Bias, h + j)), TL.Load(B, h + j)));
        TV g = TL.Apply<TanhOp>(TL.Add(TL.Add(TL.Load(A, 2 * h + j), TL.Load(Bias, 2 * h + j)), TL.Load(B, 2 * h + j)));
        TV o, c;
        if (TVariant.Peepholes)
        {
            c = TL.Fma(f, TL.Load(CPrev, j), TL.Mul(i, g));
            o = TL.Apply<SigmoidOp>(TL.Fma(TL.Load(Peep, 2 * h + j), c, // o sees the new cell state
                TL.Add(TL.Add(TL.Load(A, 3 * h + j), TL.Load(Bias, 3 * h + j)), TL.Load(B, 3 * h + j))));
        }
        else
        {
            o = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, 3 * h + j), TL.Load(Bias, 3 * h + j)), TL.Load(B, 3 * h + j)));
            c = TL.Fma(f, TL.Load(CPrev, j), TL.Mul(i, g));
        }
        TV tc = TL.Apply<TanhOp>(c);
        TL.Store(i, Gates, j);
        TL.Store(f, Gates, h + j);
        TL.Store(g, Gates, 2 * h + j);
        TL.Store(o, Gates, 3 * h + j);
        TL.Store(c, C, j);
        TL.Store(tc, TanhC, j);
        TL.Store(TL.Mul(o, tc), H, j);
    }

    /// <summary>
    /// The configured LSTM: the compiled variants' operations in their order, with the peepholes and coupled gates decided
    /// at run time, each pre-activation recorded (when <see cref="Pre"/> is set) and clamped before its activation, and
    /// i, f, o = F(.), g = G(.), m = o*H(c); c itself is never clamped. With σ, tanh, tanh and no clip (bound +Inf, where
    /// the clamp is the identity) this is bitwise the compiled variant.
    /// </summary>
    private readonly void Configured<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        GateFunctions fn = Functions;
        float* pre = Pre;
        bool peep = Peep != null;
        TV cPrev = TL.Load(CPrev, j); // before C is written: C may alias CPrev
        TV ai = TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j));
        if (peep) ai = TL.Fma(TL.Load(Peep, j), cPrev, ai);
        TV i = Gate.Forward<TL, TV>(fn.F, ai, fn.Bound, pre, j);
        TV f;
        if (fn.Coupled)
        {
            f = TL.Sub(TL.Splat(1f), i);
        }
        else
        {
            TV af = TL.Add(TL.Add(TL.Load(A, h + j), TL.Load(Bias, h + j)), TL.Load(B, h + j));
            if (peep) af = TL.Fma(TL.Load(Peep, h + j), cPrev, af);
            f = Gate.Forward<TL, TV>(fn.F, af, fn.Bound, pre, h + j);
        }
        TV g = Gate.Forward<TL, TV>(fn.G, TL.Add(TL.Add(TL.Load(A, 2 * h + j), TL.Load(Bias, 2 * h + j)), TL.Load(B, 2 * h + j)),
            fn.Bound, pre, 2 * h + j);
        TV c = TL.Fma(f, cPrev, TL.Mul(i, g));
        TV ao = TL.Add(TL.Add(TL.Load(A, 3 * h + j), TL.Load(Bias, 3 * h + j)), TL.Load(B, 3 * h + j));
        if (peep) ao = TL.Fma(TL.Load(Peep, 2 * h + j), c, ao); // o sees the new cell state
        TV o = Gate.Forward<TL, TV>(fn.F, ao, fn.Bound, pre, 3 * h + j);
        TV hc = Gate.Activate<TL, TV>(fn.H, c);
        TL.Store(i, Gates, j);
        TL.Store(f, Gates, h + j);
        TL.Store(g, Gates, 2 * h + j);
        TL.Store(o, Gates, 3 * h + j);
        TL.Store(c, C, j);
        TL.Store(hc, TanhC, j);
        TL.Store(TL.Mul(o, hc), H, j);
    }
}

/// <summary>
/// LSTM backward of one row from the saved gates: with dm = dL/d(o*tanh c) and the carried dc:
/// dpre_o = σ'·(dm*tanh c); dc = dcNext + dm*o*(1 - tanh(c)^2) [+ dpre_o*p_o, as o saw p_o*c];
/// dG = (σ'·(dc*g), σ'·(dc*cPrev), tanh'·(dc*i), dpre_o); dcPrev = dc*f [+ dpre_i*p_i + dpre_f*p_f].
/// Coupled (f = 1 - i): dL/di = dc*g - dc*cPrev, so dpre_i = σ'·(dc*(g - cPrev)), and the f rows get dG = 0.
/// DCPrev may alias DCNext. An inactive row (past its sequence's end) gets dG = 0 and keeps its dc.
/// Configured: the derivatives of <see cref="Functions"/>' activations (h' from the recorded h(c)), each pre-activation's
/// gradient zeroed where the recorded pre-activation lay beyond the clip.
/// </summary>
internal unsafe struct LstmBackward<TVariant> : ILaneKernel, IRowKernel where TVariant : struct, ILstmVariant
{
    public KernelIsa Isa;
    public float* DM, DCNext, Gates, CPrev, TanhC, DG, DCPrev; // Gates, DG: (4H)
    public nuint Hd;
    public int* Lengths;
    public int T;
    public float* Peep; // peepholes: (3H) p_i, p_f, p_o, shared by every row
    public GateFunctions Functions; // configured only: activations, clip, coupled gates
    public float* Pre;              // configured only: (4H) recorded pre-activations, or null (no clip)

    public readonly void Row(int b)
    {
        nuint g = 4 * Hd * (nuint)b, r = Hd * (nuint)b;
        if (Lengths != null && T >= Lengths[b]) { new Span<float>(DG + g, 4 * (int)Hd).Clear(); return; }
        var k = this;
        k.DM += r; k.DCNext += r; k.Gates += g; k.CPrev += r; k.TanhC += r; k.DG += g; k.DCPrev += r;
        if (TVariant.Configured && k.Pre != null) k.Pre += g;
        Lanes.For(Isa, (int)Hd, ref k);
    }

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        if (TVariant.Configured)
        {
            Configured<TL, TV>(j);
            return;
        }
        nuint h = Hd;
        TV i = TL.Load(Gates, j), f = TL.Load(Gates, h + j), g = TL.Load(Gates, 2 * h + j), o = TL.Load(Gates, 3 * h + j);
        TV dm = TL.Load(DM, j), tc = TL.Load(TanhC, j);
        TV one = TL.Splat(1f);
        TV dc = TL.Fma(TL.Mul(dm, o), TL.Fma(TL.Sub(TL.Splat(0f), tc), tc, one), TL.Load(DCNext, j));
        if (TVariant.Peepholes) dc = TL.Fma(TL.Backward<SigmoidOp>(o, TL.Mul(dm, tc)), TL.Load(Peep, 2 * h + j), dc); // dpre_o * p_o
        TV dpi = TVariant.Coupled
            ? TL.Backward<SigmoidOp>(i, TL.Mul(dc, TL.Sub(g, TL.Load(CPrev, j))))
            : TL.Backward<SigmoidOp>(i, TL.Mul(dc, g));
        TL.Store(dpi, DG, j);
        TV dpf = TVariant.Coupled ? TL.Splat(0f) : TL.Backward<SigmoidOp>(f, TL.Mul(dc, TL.Load(CPrev, j)));
        TL.Store(dpf, DG, h + j);
        TL.Store(TL.Backward<TanhOp>(g, TL.Mul(dc, i)), DG, 2 * h + j);
        TL.Store(TL.Backward<SigmoidOp>(o, TL.Mul(dm, tc)), DG, 3 * h + j);
        if (!TVariant.Peepholes)
            TL.Store(TL.Mul(dc, f), DCPrev, j);
        else if (TVariant.Coupled) // p_f unused
            TL.Store(TL.Fma(dpi, TL.Load(Peep, j), TL.Mul(dc, f)), DCPrev, j);
        else
            TL.Store(TL.Fma(dpf, TL.Load(Peep, h + j), TL.Fma(dpi, TL.Load(Peep, j), TL.Mul(dc, f))), DCPrev, j);
    }

    /// <summary>
    /// The configured LSTM's backward: the compiled variants' operations with F', G' of the saved gates and H' of the
    /// saved h(c) (dc = dcNext + dm*o*H'(c)), each dpre zeroed where its pre-activation was clipped.
    /// </summary>
    private readonly void Configured<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        GateFunctions fn = Functions;
        float* pre = Pre;
        bool peep = Peep != null;
        TV i = TL.Load(Gates, j), f = TL.Load(Gates, h + j), g = TL.Load(Gates, 2 * h + j), o = TL.Load(Gates, 3 * h + j);
        TV dm = TL.Load(DM, j), hc = TL.Load(TanhC, j), cPrev = TL.Load(CPrev, j);
        TV dpo = Gate.Backward<TL, TV>(fn.F, o, TL.Mul(dm, hc), fn.Bound, pre, 3 * h + j);
        TV dc = TL.Fma(TL.Mul(dm, o), Gate.Slope<TL, TV>(fn.H, hc), TL.Load(DCNext, j));
        if (peep) dc = TL.Fma(dpo, TL.Load(Peep, 2 * h + j), dc); // dpre_o * p_o
        TV dpi = Gate.Backward<TL, TV>(fn.F, i, fn.Coupled ? TL.Mul(dc, TL.Sub(g, cPrev)) : TL.Mul(dc, g), fn.Bound, pre, j);
        TV dpf = fn.Coupled ? TL.Splat(0f) : Gate.Backward<TL, TV>(fn.F, f, TL.Mul(dc, cPrev), fn.Bound, pre, h + j);
        TL.Store(dpi, DG, j);
        TL.Store(dpf, DG, h + j);
        TL.Store(Gate.Backward<TL, TV>(fn.G, g, TL.Mul(dc, i), fn.Bound, pre, 2 * h + j), DG, 2 * h + j);
        TL.Store(dpo, DG, 3 * h + j);
        TV dcPrev = TL.Mul(dc, f);
        if (peep)
        {
            dcPrev = TL.Fma(dpi, TL.Load(Peep, j), dcPrev);
            if (!fn.Coupled) dcPrev = TL.Fma(dpf, TL.Load(Peep, h + j), dcPrev); // p_f is unused when coupled
        }
        TL.Store(dcPrev, DCPrev, j);
    }
}

/// <summary>
/// One row's share of the peephole gradients: dp_i += dpre_i*cPrev, dp_f += dpre_f*cPrev (not when coupled: p_f is
/// unused), dp_o += dpre_o*c, one FMA each, so the sum over rows is the same at every width.
/// </summary>
internal unsafe struct LstmPeepholeGradients<TVariant> : ILaneKernel where TVariant : struct, ILstmVariant
{
    public KernelIsa Isa;
    public float* DG, CPrev, C, DPeep; // DG (4H) pre-activation gradients i, f, g, o; CPrev, C (H); DPeep (3H) dp_i, dp_f, dp_o
    public nuint Hd;
    public bool Coupled; // configured only: the coupled gates, read at run time

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        TV cPrev = TL.Load(CPrev, j);
        TL.Store(TL.Fma(TL.Load(DG, j), cPrev, TL.Load(DPeep, j)), DPeep, j);
        if (!TVariant.Coupled && !(TVariant.Configured && Coupled)) TL.Store(TL.Fma(TL.Load(DG, h + j), cPrev, TL.Load(DPeep, h + j)), DPeep, h + j);
        TL.Store(TL.Fma(TL.Load(DG, 3 * h + j), TL.Load(C, j), TL.Load(DPeep, 2 * h + j)), DPeep, 2 * h + j);
    }
}
