using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.Cells;

/// <summary>
/// LSTM (gates i, f, g, o as PyTorch), optionally with a projection (LSTMP: h = W_hr (o * tanh c)).
/// Forward: (i, f, g, o) = (σ, σ, tanh, σ)(x W_ih^T + b_ih + h W_hh^T + b_hh); c' = f*c + i*g; m = o*tanh(c');
/// h' = m, or W_hr m with a projection. Records gates, c, tanh c (and m, dL/dh for the projection).
/// </summary>
internal readonly unsafe struct LstmCell : ICell
{
    public static string GateLayout => "i,f,g,o";

    public static int FusedRows(RecurrentOptions o) => 4 * o.HiddenSize;

    public static CellRecords Records(RecurrentOptions o) => CellRecords.CellState | (o.ProjSize > 0 ? CellRecords.Projection : 0);

    public static void Forward(LayerWeights w, ref CellStep s)
    {
        w.Mul(s, s.HPrev, w.RecV, w.RecT, s.Gh, w.GH, false);                  // gh = h W_hh^T  (B, 4H)
        var k = new LstmForward
        {
            Isa = w.K.Isa, A = s.Gx, Bias = w.BiasSum, B = s.Gh, CPrev = s.CPrev, Gates = s.Gates, C = s.CNew, TanhC = s.TanhC,
            H = w.P > 0 ? s.M : s.HNew, Hd = (nuint)w.H, BStride = (nuint)w.GH,
        };
        Rows.Run(ref k, s.Batch, w.GH);
        if (w.P > 0) w.Mul(s, s.M, w.WhrV!, w.WhrT!, s.HNew, w.Hout, false); // h = m W_hr^T  (B, P)
    }

    public static bool SplitsByUnits(RecurrentOptions o) => o.ProjSize == 0;

    public static void ForwardUnits(LayerWeights w, ref CellStep s, int u0, int u1)
    {
        w.MulUnits(s, s.HPrev, w.RecV, w.RecT, s.Gh, w.GH, 4, u0, u1, false);    // gh = h W_hh^T, rows of units [u0, u1)
        var k = new LstmForward
        {
            Isa = w.K.Isa, A = s.Gx + u0, Bias = w.BiasSum + u0, B = s.Gh + u0, CPrev = s.CPrev + u0, Gates = s.Gates + u0, C = s.CNew + u0,
            TanhC = s.TanhC + u0, H = s.HNew + u0, Hd = (nuint)w.H, BStride = (nuint)w.GH, Count = (nuint)(u1 - u0),
        };
        for (int b = 0; b < s.Batch; b++) k.Row(b);
    }

    public static void StreamProductsUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1) =>
        w.GemvUnits(w.StepV, 4, xh, s.Gx, u0, u1, false);                           // [x | h] [W_ih | W_hh]^T, units' rows

    public static void StreamGatesUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1)
    {
        var k = new LstmForward
        {
            Isa = w.K.Isa, A = s.Gx + u0, Bias = w.BiasSum + u0, B = w.Zeros + u0, CPrev = s.CPrev + u0, Gates = s.Gates + u0, C = s.CNew + u0,
            TanhC = s.TanhC + u0, H = s.HNew + u0, Hd = (nuint)w.H, Count = (nuint)(u1 - u0),
        };
        k.Row(0);
    }

    public static void StreamStep(LayerWeights w, float* xh, ref CellStep s)
    {
        w.K.Gemv(w.StepV, new ReadOnlySpan<float>(xh, w.In + w.Hout), new Span<float>(s.Gx, w.GH)); // [x | h] [W_ih | W_hh]^T
        var k = new LstmForward
        {
            Isa = w.K.Isa, A = s.Gx, Bias = w.BiasSum, B = w.Zeros, CPrev = s.CPrev, Gates = s.Gates, C = s.CNew, TanhC = s.TanhC,
            H = w.P > 0 ? s.M : s.HNew, Hd = (nuint)w.H,
        };
        k.Row(0);
        if (w.P > 0) w.K.Gemv(w.WhrV!, new ReadOnlySpan<float>(s.M, w.H), new Span<float>(s.HNew, w.P));
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
        var k = new LstmBackward
        {
            Isa = w.K.Isa, DM = dm, DCNext = s.DC, Gates = s.F.Gates, CPrev = s.F.CPrev, TanhC = s.F.TanhC, DG = s.DG, DCPrev = s.DC,
            Hd = (nuint)H, Lengths = s.Lengths, T = s.T,
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
    }
}

/// <summary>LSTM forward of one row: gates = (σ, σ, tanh, σ)((A + Bias) + B); c = f*cPrev + i*g; h = o*tanh(c). C may alias CPrev.</summary>
internal unsafe struct LstmForward : ILaneKernel, IRowKernel
{
    public KernelIsa Isa;
    public float* A, Bias, B, CPrev, Gates, C, TanhC, H; // A, B, Gates: (4H) per row, stride BStride for B; Bias (4H) shared; others (H)
    public nuint Hd, BStride;
    public nuint Count; // units per row when not 0 (a step split by units: pointers start at the first unit), else Hd

    public readonly void Row(int b)
    {
        nuint g = 4 * Hd * (nuint)b, r = Hd * (nuint)b;
        var k = this;
        k.A += g; k.B += BStride * (nuint)b; k.Gates += g; k.CPrev += r; k.C += r; k.TanhC += r; k.H += r;
        Lanes.For(Isa, (int)(Count != 0 ? Count : Hd), ref k);
    }

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        TV i = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j)));
        TV f = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, h + j), TL.Load(Bias, h + j)), TL.Load(B, h + j)));
        TV g = TL.Apply<TanhOp>(TL.Add(TL.Add(TL.Load(A, 2 * h + j), TL.Load(Bias, 2 * h + j)), TL.Load(B, 2 * h + j)));
        TV o = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, 3 * h + j), TL.Load(Bias, 3 * h + j)), TL.Load(B, 3 * h + j)));
        TV c = TL.Fma(f, TL.Load(CPrev, j), TL.Mul(i, g));
        TV tc = TL.Apply<TanhOp>(c);
        TL.Store(i, Gates, j);
        TL.Store(f, Gates, h + j);
        TL.Store(g, Gates, 2 * h + j);
        TL.Store(o, Gates, 3 * h + j);
        TL.Store(c, C, j);
        TL.Store(tc, TanhC, j);
        TL.Store(TL.Mul(o, tc), H, j);
    }
}

/// <summary>
/// LSTM backward of one row from the saved gates: with dm = dL/d(o*tanh c) and the carried dc:
/// dc = dcNext + dm*o*(1 - tanh(c)^2); dG = (σ', σ', tanh', σ')·(dc*g, dc*cPrev, dc*i, dm*tanh c); dcPrev = dc*f.
/// DCPrev may alias DCNext. An inactive row (past its sequence's end) gets dG = 0 and keeps its dc.
/// </summary>
internal unsafe struct LstmBackward : ILaneKernel, IRowKernel
{
    public KernelIsa Isa;
    public float* DM, DCNext, Gates, CPrev, TanhC, DG, DCPrev; // Gates, DG: (4H)
    public nuint Hd;
    public int* Lengths;
    public int T;

    public readonly void Row(int b)
    {
        nuint g = 4 * Hd * (nuint)b, r = Hd * (nuint)b;
        if (Lengths != null && T >= Lengths[b]) { new Span<float>(DG + g, 4 * (int)Hd).Clear(); return; }
        var k = this;
        k.DM += r; k.DCNext += r; k.Gates += g; k.CPrev += r; k.TanhC += r; k.DG += g; k.DCPrev += r;
        Lanes.For(Isa, (int)Hd, ref k);
    }

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        TV i = TL.Load(Gates, j), f = TL.Load(Gates, h + j), g = TL.Load(Gates, 2 * h + j), o = TL.Load(Gates, 3 * h + j);
        TV dm = TL.Load(DM, j), tc = TL.Load(TanhC, j);
        TV one = TL.Splat(1f);
        TV dc = TL.Fma(TL.Mul(dm, o), TL.Fma(TL.Sub(TL.Splat(0f), tc), tc, one), TL.Load(DCNext, j));
        TL.Store(TL.Backward<SigmoidOp>(i, TL.Mul(dc, g)), DG, j);
        TL.Store(TL.Backward<SigmoidOp>(f, TL.Mul(dc, TL.Load(CPrev, j))), DG, h + j);
        TL.Store(TL.Backward<TanhOp>(g, TL.Mul(dc, i)), DG, 2 * h + j);
        TL.Store(TL.Backward<SigmoidOp>(o, TL.Mul(dm, tc)), DG, 3 * h + j);
        TL.Store(TL.Mul(dc, f), DCPrev, j);
    }
}
