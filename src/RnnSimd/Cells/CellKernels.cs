using RnnSimd.Kernels;

namespace RnnSimd.Cells;

// Fused per-row cell kernels: every gate activation and the state update in one pass over the gate rows, written
// once for every width (ILaneKernel) and driven by Lanes.For. Gate orders follow PyTorch: LSTM i,f,g,o; GRU r,z,n.
// Pre-activations are (A + Bias) + B: A the input projection x W_ih^T (or, streaming at batch 1, the whole [x h] product),
// Bias the pre-summed biases (one vector for every row), B the recurrent product h W_hh^T (with b_hn for GRU's n gate).
// Adding the bias here, not through the GEMM's C, saves writing and re-reading a (T*B, G*H) bias matrix.
// Pointers address one batch row; Hd is H.

/// <summary>LSTM forward: gates = (σ, σ, tanh, σ)((A + Bias) + B); c = f*cPrev + i*g; h = o*tanh(c). C may alias CPrev.</summary>
internal unsafe struct LstmForward : ILaneKernel
{
    public float* A, Bias, B, CPrev, Gates, C, TanhC, H; // A, Bias, B, Gates: (4H); others (H)
    public nuint Hd;

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
/// LSTM backward from the saved gates: with dm = dL/d(o*tanh c) and the carried dc:
/// dc = dcNext + dm*o*(1 - tanh(c)^2); dG = (σ', σ', tanh', σ')·(dc*g, dc*cPrev, dc*i, dm*tanh c); dcPrev = dc*f.
/// DCPrev may alias DCNext.
/// </summary>
internal unsafe struct LstmBackward : ILaneKernel
{
    public float* DM, DCNext, Gates, CPrev, TanhC, DG, DCPrev; // Gates, DG: (4H)
    public nuint Hd;

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

/// <summary>GRU forward, linear before reset: r, z = σ((A + Bias) + B); n = tanh((A_n + Bias_n) + r*B_n); h = n + z*(hPrev - n). B_n holds W_hn h + b_hn.</summary>
internal unsafe struct GruForwardLinearBeforeReset : ILaneKernel
{
    public float* A, Bias, B, HPrev, Gates, H; // A, Bias, B, Gates: (3H)
    public nuint Hd;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        TV r = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j)));
        TV z = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, h + j), TL.Load(Bias, h + j)), TL.Load(B, h + j)));
        TV n = TL.Apply<TanhOp>(TL.Fma(r, TL.Load(B, 2 * h + j), TL.Add(TL.Load(A, 2 * h + j), TL.Load(Bias, 2 * h + j))));
        TL.Store(r, Gates, j);
        TL.Store(z, Gates, h + j);
        TL.Store(n, Gates, 2 * h + j);
        TL.Store(TL.Fma(z, TL.Sub(TL.Load(HPrev, j), n), n), H, j);
    }
}

/// <summary>GRU (either form), first half: r, z = σ((A + Bias) + B) into Gates; RH = r*hPrev (for the original form's W_hn (r*h)).</summary>
internal unsafe struct GruForwardResetUpdate : ILaneKernel
{
    public float* A, Bias, B, HPrev, Gates, RH;
    public nuint Hd;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        TV r = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j)));
        TV z = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, h + j), TL.Load(Bias, h + j)), TL.Load(B, h + j)));
        TL.Store(r, Gates, j);
        TL.Store(z, Gates, h + j);
        TL.Store(TL.Mul(r, TL.Load(HPrev, j)), RH, j);
    }
}

/// <summary>GRU original form, second half: n = tanh((A_n + Bias_n) + B_n) with B_n = W_hn (r*h) + b_hn; h = n + z*(hPrev - n).</summary>
internal unsafe struct GruForwardNew : ILaneKernel
{
    public float* A, Bias, B, HPrev, Gates, H;
    public nuint Hd;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        TV z = TL.Load(Gates, h + j);
        TV n = TL.Apply<TanhOp>(TL.Add(TL.Add(TL.Load(A, 2 * h + j), TL.Load(Bias, 2 * h + j)), TL.Load(B, 2 * h + j)));
        TL.Store(n, Gates, 2 * h + j);
        TL.Store(TL.Fma(z, TL.Sub(TL.Load(HPrev, j), n), n), H, j);
    }
}

/// <summary>
/// GRU backward. From dh: dz = dh*(hPrev - n), dn = dh*(1 - z), dhPrev(direct) = dh*z; dpre_n = tanh'·dn.
/// Linear before reset (Bn = saved W_hn h + b_hn): dB_n = dpre_n*r, dr = dpre_n*Bn, dpre_r = σ'·dr, all in one pass.
/// Original form: dB_n = dpre_n here; dr needs d(r*h) = dB_n W_hn, so <see cref="GruBackwardReset"/> finishes r.
/// DA, DB: (3H) gradients of the input-side and recurrent-side pre-activations.
/// </summary>
internal unsafe struct GruBackward : ILaneKernel
{
    public float* DH, Gates, HPrev, Bn, DA, DB, DHPrev;
    public nuint Hd;
    public bool LinearBeforeReset;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        TV r = TL.Load(Gates, j), z = TL.Load(Gates, h + j), n = TL.Load(Gates, 2 * h + j);
        TV dh = TL.Load(DH, j), hp = TL.Load(HPrev, j);
        TV dz = TL.Mul(dh, TL.Sub(hp, n));
        TV dn = TL.Mul(dh, TL.Sub(TL.Splat(1f), z));
        TV dpn = TL.Backward<TanhOp>(n, dn);
        TV dpz = TL.Backward<SigmoidOp>(z, dz);
        TL.Store(dpz, DA, h + j);
        TL.Store(dpz, DB, h + j);
        TL.Store(dpn, DA, 2 * h + j);
        TL.Store(TL.Mul(dh, z), DHPrev, j);
        if (LinearBeforeReset)
        {
            TV dpr = TL.Backward<SigmoidOp>(r, TL.Mul(dpn, TL.Load(Bn, j)));
            TL.Store(TL.Mul(dpn, r), DB, 2 * h + j);
            TL.Store(dpr, DA, j);
            TL.Store(dpr, DB, j);
        }
        else
        {
            TL.Store(dpn, DB, 2 * h + j);
        }
    }
}

/// <summary>GRU original form, reset gate: dr = dRH*hPrev, dpre_r = σ'·dr into DA and DB; dhPrev += dRH*r.</summary>
internal unsafe struct GruBackwardReset : ILaneKernel
{
    public float* DRH, Gates, HPrev, DA, DB, DHPrev;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        TV r = TL.Load(Gates, j), drh = TL.Load(DRH, j);
        TV dpr = TL.Backward<SigmoidOp>(r, TL.Mul(drh, TL.Load(HPrev, j)));
        TL.Store(dpr, DA, j);
        TL.Store(dpr, DB, j);
        TL.Store(TL.Fma(drh, r, TL.Load(DHPrev, j)), DHPrev, j);
    }
}

/// <summary>Elman RNN forward: h = act((A + Bias) + B).</summary>
internal unsafe struct RnnForward<TAct> : ILaneKernel where TAct : IActivation
{
    public float* A, Bias, B, H;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct =>
        TL.Store(TL.Apply<TAct>(TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j))), H, j);
}

/// <summary>Elman RNN backward: dG = act'(from h) * dh.</summary>
internal unsafe struct RnnBackward<TAct> : ILaneKernel where TAct : IActivation
{
    public float* DH, H, DG;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct =>
        TL.Store(TL.Backward<TAct>(TL.Load(H, j), TL.Load(DH, j)), DG, j);
}
