using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.Cells;

/// <summary>
/// GRU (gates r, z, n as PyTorch) in both forms: r, z = σ(x W_i^T + b_i + h W_h^T + b_h) (rows fused);
/// linear before reset (PyTorch, cuDNN): n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn));
/// original (Cho et al., ONNX's default): n = tanh(x W_in^T + b_in + (r * h) W_hn^T + b_hn); h' = n + z * (h - n).
/// Records the gates and the recurrent products h W_hh^T (+ b_hn for n), plus r * h in the original form.
/// <typeparamref name="TGates"/> configured (ONNX's activations f, g and clip): r, z = f(clamp(...)), n = g(clamp(...)),
/// the clamp after every term of n's pre-activation (r * (h W_hn^T + b_hn), or (r * h) W_hn^T + b_hn); with a clip the
/// pre-activations are recorded for Backward.
/// </summary>
internal readonly unsafe struct GruCell<TGates> : ICell where TGates : struct, IGateVariant
{
    public static string GateLayout => "r,z,n";

    public static int FusedRows(RecurrentOptions o) => 2 * o.HiddenSize;

    public static CellRecords Records(RecurrentOptions o) =>
        CellRecords.RecurrentProducts | (o.GruLinearBeforeReset ? 0 : CellRecords.ResetHidden) | (o.Clip > 0 ? CellRecords.PreActivations : 0);

    public static void Forward(LayerWeights w, ref CellStep s)
    {
        int B = s.Batch, H = w.H, GH = w.GH;
        w.Mul(s, s.HPrev, w.RecV, w.RecT, s.Gh, GH, false);                          // gh[r, z] = h W_h(r,z)^T
        for (int b = 0; b < B; b++) new ReadOnlySpan<float>(w.BiasRest, H).CopyTo(new Span<float>(s.Gh + b * GH + 2 * H, H));
        Gates(w, ref s, s.HPrev, s.Gx, s.Gh, GH);
    }

    public static bool SplitsByUnits(RecurrentOptions o) => o.GruLinearBeforeReset;

    public static void ForwardUnits(LayerWeights w, ref CellStep s, int u0, int u1)
    {
        int B = s.Batch, H = w.H, GH = w.GH;
        w.MulUnits(s, s.HPrev, w.RecV, w.RecT, s.Gh, GH, 2, u0, u1, false);            // gh[r, z] = h W_h(r,z)^T
        for (int b = 0; b < B; b++)
            new ReadOnlySpan<float>(w.BiasRest + u0, u1 - u0).CopyTo(new Span<float>(s.Gh + b * GH + 2 * H + u0, u1 - u0));
        w.MulUnits(s, s.HPrev, w.RestV!, w.RestT!, s.Gh + 2 * H, GH, 1, u0, u1, true); // gh[n] = h W_hn^T + b_hn
        var k = new GruForward<TGates>
        {
            Isa = w.K.Isa, Part = GruPhase.LinearBeforeReset, A = s.Gx + u0, Bias = w.BiasSum + u0, B = s.Gh + u0,
            HPrev = s.HPrev + u0, Gates = s.Gates + u0, H = s.HNew + u0, Hd = (nuint)H, BStride = (nuint)GH, Count = (nuint)(u1 - u0),
            Functions = w.Functions, Pre = s.Pre == null ? null : s.Pre + u0,
        };
        for (int b = 0; b < B; b++) k.Row(b);
    }

    public static void StreamProductsUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1)
    {
        int H = w.H, n = u1 - u0;
        w.GemvUnits(w.StepV, 2, xh, s.Gx, u0, u1, false);                           // [x | h] [W_i | W_h](r,z)^T
        w.GemvUnits(w.StepRestV!, 1, xh, s.Gx + 2 * H, u0, u1, false);              // x W_in^T
        new Span<float>(s.Gh + u0, n).Clear();
        new Span<float>(s.Gh + H + u0, n).Clear();
        new ReadOnlySpan<float>(w.BiasRest + u0, n).CopyTo(new Span<float>(s.Gh + 2 * H + u0, n));
        w.GemvUnits(w.RestV!, 1, xh + w.In, s.Gh + 2 * H, u0, u1, true);            // h W_hn^T + b_hn
    }

    public static void StreamGatesUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1)
    {
        var k = new GruForward<TGates>
        {
            Isa = w.K.Isa, Part = GruPhase.LinearBeforeReset, A = s.Gx + u0, Bias = w.BiasSum + u0, B = s.Gh + u0,
            HPrev = xh + w.In + u0, Gates = s.Gates + u0, H = s.HNew + u0, Hd = (nuint)w.H, BStride = (nuint)w.GH, Count = (nuint)(u1 - u0),
            Functions = w.Functions,
        };
        k.Row(0);
    }

    public static void StreamStep(LayerWeights w, float* xh, ref CellStep s)
    {
        int H = w.H, In = w.In;
        w.StreamProduct(s.Q, StreamProductKind.Step, xh, s.Gx, false);           // [x | h] [W_i | W_h](r,z)^T
        w.StreamProduct(s.Q, StreamProductKind.StepRest, xh, s.Gx + 2 * H, false); // x W_in^T
        new Span<float>(s.Gh, 2 * H).Clear();
        new ReadOnlySpan<float>(w.BiasRest, H).CopyTo(new Span<float>(s.Gh + 2 * H, H));
        Gates(w, ref s, xh + In, s.Gx, s.Gh, w.GH);
    }

    /// <summary>The n gate's recurrent product (which needs r in the original form) and the fused gate kernels.</summary>
    private static void Gates(LayerWeights w, ref CellStep s, float* hPrev, float* a, float* gh, int ghStride)
    {
        int B = s.Batch, H = w.H, GH = w.GH;
        var k = new GruForward<TGates>
        {
            Isa = w.K.Isa, A = a, Bias = w.BiasSum, B = gh, HPrev = hPrev, Gates = s.Gates, H = s.HNew, RH = s.RH, Hd = (nuint)H,
            BStride = (nuint)ghStride, Functions = w.Functions, Pre = s.Pre,
        };
        if (w.LinearBeforeReset)
        {
            w.MulRest(s, hPrev, gh + 2 * H, ghStride, true);                          // gh[n] = h W_hn^T + b_hn
            k.Part = GruPhase.LinearBeforeReset;
            Rows.Run(ref k, B, GH);
        }
        else
        {
            k.Part = GruPhase.ResetUpdate;
            Rows.Run(ref k, B, GH);
            w.MulRest(s, s.RH, gh + 2 * H, ghStride, true);                            // gh[n] = (r * h) W_hn^T + b_hn
            k.Part = GruPhase.New;
            Rows.Run(ref k, B, GH);
        }
    }

    public static void Backward(LayerWeights w, ref CellBackStep s)
    {
        int B = s.F.Batch, H = w.H, GH = w.GH, Hout = w.Hout;
        var k = new GruBackward<TGates>
        {
            Isa = w.K.Isa, DH = s.DH, Gates = s.F.Gates, HPrev = s.F.HPrev, Bn = s.F.Gh + 2 * H, DA = s.DG, DB = s.DGh, DHPrev = s.DHPrev,
            DRH = s.DRH, Hd = (nuint)H, LinearBeforeReset = w.LinearBeforeReset, Lengths = s.Lengths, T = s.T,
            Functions = w.Functions, Pre = s.F.Pre,
        };
        Rows.Run(ref k, B, GH);
        if (!w.LinearBeforeReset)
        {
            w.MulBack(B, s.DGh + 2 * H, GH, w.Whh + 2 * H * Hout, w.RestN!, s.DRH, false); // d(r*h) = dB_n W_hn
            k.ResetPhase = true;
            Rows.Run(ref k, B, GH);
            w.MulBack(B, s.DGh, GH, w.Whh, w.RecN, s.DHPrev, true);
        }
        else if (B == 1)
        {
            w.K.GemvTransposed(GH, Hout, new ReadOnlySpan<float>(w.Whh, GH * Hout), Hout, new ReadOnlySpan<float>(s.DGh, GH),
                new Span<float>(s.DHPrev, Hout), accumulate: true);                   // dh_{t-1} += dB W_hh
        }
        else
        {
            w.MulBack(B, s.DGh, GH, w.Whh, w.RecN, s.DHPrev, true);
            w.MulBack(B, s.DGh + 2 * H, GH, w.Whh + 2 * H * Hout, w.RestN!, s.DHPrev, true);
        }
    }

    public static void RecurrentGradients(LayerWeights w, in CellSequence q, float* grads)
    {
        int GH = w.GH, H = w.H, Hout = w.Hout, n = q.Rows;
        var dgh = new ReadOnlySpan<float>(q.DGh, n * GH);
        if (w.LinearBeforeReset)
        {
            w.K.Gemm(true, false, GH, Hout, n, 1f, dgh, GH, new ReadOnlySpan<float>(q.Hs, n * Hout), Hout,
                1f, new Span<float>(grads + w.OWhh, GH * Hout), Hout);                  // dW_hh += dB^T H_{t-1}
        }
        else
        {
            w.K.Gemm(true, false, 2 * H, Hout, n, 1f, dgh, GH, new ReadOnlySpan<float>(q.Hs, n * Hout), Hout,
                1f, new Span<float>(grads + w.OWhh, 2 * H * Hout), Hout);               // dW_h(r,z) += dB(r,z)^T H_{t-1}
            w.K.Gemm(true, false, H, H, n, 1f, dgh[(2 * H)..], GH, new ReadOnlySpan<float>(q.RH, n * H), H,
                1f, new Span<float>(grads + w.OWhh + 2 * H * Hout, H * Hout), Hout);    // dW_hn += dB_n^T (r * H_{t-1})
        }
    }
}

/// <summary>The phases of <see cref="GruForward{TGates}"/>.</summary>
internal enum GruPhase : byte { LinearBeforeReset, ResetUpdate, New }

/// <summary>
/// GRU forward of one row, in phases. A, Bias: input-side pre-activations and pre-summed biases (3H); B: recurrent
/// products (3H, the n block including b_hn). LinearBeforeReset: r, z = σ((A + Bias) + B); n = tanh((A_n + Bias_n) + r*B_n);
/// h = n + z*(hPrev - n). ResetUpdate: r, z only, and RH = r*hPrev (the original form's W_hn input). New: n = tanh((A_n +
/// Bias_n) + B_n) once B_n = W_hn (r*h) + b_hn is known, then h. H may alias HPrev.
/// Configured: the same with <see cref="Functions"/>' f for r, z and g for n, each pre-activation recorded (when
/// <see cref="Pre"/> is set) and clamped first.
/// </summary>
internal unsafe struct GruForward<TGates> : ILaneKernel, IRowKernel where TGates : struct, IGateVariant
{
    public KernelIsa Isa;
    public GruPhase Part;
    public float* A, Bias, B, HPrev, Gates, H, RH;
    public nuint Hd, BStride;
    public nuint Count; // units per row when not 0 (a step split by units: pointers start at the first unit), else Hd
    public GateFunctions Functions; // configured only: activations and clip
    public float* Pre;              // configured only: (3H) pre-activations recorded here when not null (a training forward with a clip)

    public readonly void Row(int b)
    {
        nuint g = 3 * Hd * (nuint)b, r = Hd * (nuint)b;
        var k = this;
        k.A += g; k.B += BStride * (nuint)b; k.HPrev += r; k.Gates += g; k.H += r; k.RH += r;
        if (TGates.Configured && k.Pre != null) k.Pre += g;
        Lanes.For(Isa, (int)(Count != 0 ? Count : Hd), ref k);
    }

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        if (TGates.Configured)
        {
            Configured<TL, TV>(j);
            return;
        }
        nuint h = Hd;
        if (Part == GruPhase.New)
        {
            TV zz = TL.Load(Gates, h + j);
            TV nn = TL.Apply<TanhOp>(TL.Add(TL.Add(TL.Load(A, 2 * h + j), TL.Load(Bias, 2 * h + j)), TL.Load(B, 2 * h + j)));
            TL.Store(nn, Gates, 2 * h + j);
            TL.Store(TL.Fma(zz, TL.Sub(TL.Load(HPrev, j), nn), nn), H, j);
            return;
        }
        TV r = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j)));
        TV z = TL.Apply<SigmoidOp>(TL.Add(TL.Add(TL.Load(A, h + j), TL.Load(Bias, h + j)), TL.Load(B, h + j)));
        TL.Store(r, Gates, j);
        TL.Store(z, Gates, h + j);
        if (Part == GruPhase.ResetUpdate)
        {
            TL.Store(TL.Mul(r, TL.Load(HPrev, j)), RH, j);
            return;
        }
        TV n = TL.Apply<TanhOp>(TL.Fma(r, TL.Load(B, 2 * h + j), TL.Add(TL.Load(A, 2 * h + j), TL.Load(Bias, 2 * h + j))));
        TL.Store(n, Gates, 2 * h + j);
        TL.Store(TL.Fma(z, TL.Sub(TL.Load(HPrev, j), n), n), H, j);
    }

    /// <summary>The configured phases: the compiled operations in their order, with Gate.Forward's record, clamp and activation.</summary>
    private readonly void Configured<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        GateFunctions fn = Functions;
        float* pre = Pre;
        if (Part == GruPhase.New)
        {
            TV zz = TL.Load(Gates, h + j);
            TV nn = Gate.Forward<TL, TV>(fn.G, TL.Add(TL.Add(TL.Load(A, 2 * h + j), TL.Load(Bias, 2 * h + j)), TL.Load(B, 2 * h + j)),
                fn.Bound, pre, 2 * h + j);
            TL.Store(nn, Gates, 2 * h + j);
            TL.Store(TL.Fma(zz, TL.Sub(TL.Load(HPrev, j), nn), nn), H, j);
            return;
        }
        TV r = Gate.Forward<TL, TV>(fn.F, TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j)), fn.Bound, pre, j);
        TV z = Gate.Forward<TL, TV>(fn.F, TL.Add(TL.Add(TL.Load(A, h + j), TL.Load(Bias, h + j)), TL.Load(B, h + j)), fn.Bound, pre, h + j);
        TL.Store(r, Gates, j);
        TL.Store(z, Gates, h + j);
        if (Part == GruPhase.ResetUpdate)
        {
            TL.Store(TL.Mul(r, TL.Load(HPrev, j)), RH, j);
            return;
        }
        TV n = Gate.Forward<TL, TV>(fn.G, TL.Fma(r, TL.Load(B, 2 * h + j), TL.Add(TL.Load(A, 2 * h + j), TL.Load(Bias, 2 * h + j))),
            fn.Bound, pre, 2 * h + j);
        TL.Store(n, Gates, 2 * h + j);
        TL.Store(TL.Fma(z, TL.Sub(TL.Load(HPrev, j), n), n), H, j);
    }
}

/// <summary>
/// GRU backward of one row. From dh: dz = dh*(hPrev - n), dn = dh*(1 - z), dhPrev(direct) = dh*z; dpre_n = tanh'·dn.
/// Linear before reset (Bn = saved W_hn h + b_hn): dB_n = dpre_n*r, dr = dpre_n*Bn, dpre_r = σ'·dr, all in one pass.
/// Original form: dB_n = dpre_n here; dr needs d(r*h) = dB_n W_hn, so the reset phase (<see cref="ResetPhase"/>)
/// finishes r: dpre_r = σ'·(dRH*hPrev); dhPrev += dRH*r. DA, DB: (3H) gradients of the input-side and recurrent-side
/// pre-activations. An inactive row gets DA = DB = 0 and dhPrev = dh.
/// Configured: f' for r and z, g' for n (from the saved gates), each zeroed where the recorded pre-activation was clipped.
/// </summary>
internal unsafe struct GruBackward<TGates> : ILaneKernel, IRowKernel where TGates : struct, IGateVariant
{
    public KernelIsa Isa;
    public bool LinearBeforeReset, ResetPhase;
    public float* DH, Gates, HPrev, Bn, DA, DB, DHPrev, DRH; // Bn: rows of stride 3H
    public nuint Hd;
    public int* Lengths;
    public int T;
    public GateFunctions Functions; // configured only: activations and clip
    public float* Pre;              // configured only: (3H) recorded pre-activations, or null (no clip)

    public readonly void Row(int b)
    {
        nuint g = 3 * Hd * (nuint)b, r = Hd * (nuint)b;
        int h = (int)Hd;
        if (Lengths != null && T >= Lengths[b])
        {
            if (ResetPhase) return;
            new Span<float>(DA + g, 3 * h).Clear();
            new Span<float>(DB + g, 3 * h).Clear();
            new ReadOnlySpan<float>(DH + r, h).CopyTo(new Span<float>(DHPrev + r, h));
            return;
        }
        var k = this;
        k.DH += r; k.Gates += g; k.HPrev += r; k.Bn += g; k.DA += g; k.DB += g; k.DHPrev += r; k.DRH += r;
        if (TGates.Configured && k.Pre != null) k.Pre += g;
        Lanes.For(Isa, h, ref k);
    }

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        if (TGates.Configured)
        {
            Configured<TL, TV>(j);
            return;
        }
        nuint h = Hd;
        TV r = TL.Load(Gates, j);
        if (ResetPhase)
        {
            TV drh = TL.Load(DRH, j);
            TV dpr0 = TL.Backward<SigmoidOp>(r, TL.Mul(drh, TL.Load(HPrev, j)));
            TL.Store(dpr0, DA, j);
            TL.Store(dpr0, DB, j);
            TL.Store(TL.Fma(drh, r, TL.Load(DHPrev, j)), DHPrev, j);
            return;
        }
        TV z = TL.Load(Gates, h + j), n = TL.Load(Gates, 2 * h + j);
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

    /// <summary>The configured backward: the compiled operations with Gate.Backward's derivatives and clip gradients.</summary>
    private readonly void Configured<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        nuint h = Hd;
        GateFunctions fn = Functions;
        float* pre = Pre;
        TV r = TL.Load(Gates, j);
        if (ResetPhase)
        {
            TV drh = TL.Load(DRH, j);
            TV dpr0 = Gate.Backward<TL, TV>(fn.F, r, TL.Mul(drh, TL.Load(HPrev, j)), fn.Bound, pre, j);
            TL.Store(dpr0, DA, j);
            TL.Store(dpr0, DB, j);
            TL.Store(TL.Fma(drh, r, TL.Load(DHPrev, j)), DHPrev, j);
            return;
        }
        TV z = TL.Load(Gates, h + j), n = TL.Load(Gates, 2 * h + j);
        TV dh = TL.Load(DH, j), hp = TL.Load(HPrev, j);
        TV dz = TL.Mul(dh, TL.Sub(hp, n));
        TV dn = TL.Mul(dh, TL.Sub(TL.Splat(1f), z));
        TV dpn = Gate.Backward<TL, TV>(fn.G, n, dn, fn.Bound, pre, 2 * h + j);
        TV dpz = Gate.Backward<TL, TV>(fn.F, z, dz, fn.Bound, pre, h + j);
        TL.Store(dpz, DA, h + j);
        TL.Store(dpz, DB, h + j);
        TL.Store(dpn, DA, 2 * h + j);
        TL.Store(TL.Mul(dh, z), DHPrev, j);
        if (LinearBeforeReset)
        {
            TV dpr = Gate.Backward<TL, TV>(fn.F, r, TL.Mul(dpn, TL.Load(Bn, j)), fn.Bound, pre, j);
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
