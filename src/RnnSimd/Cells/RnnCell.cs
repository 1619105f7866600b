using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.Cells;

/// <summary>
/// Elman RNN: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh) with act = tanh (<see cref="TanhOp"/>) or relu
/// (<see cref="ReluOp"/>). Records h only; act' is taken from the saved output.
/// <see cref="ConfiguredGates"/> as the activation: ONNX's f and clip read at run time, h' = f(clamp(...)); with a clip
/// the pre-activations are recorded for Backward.
/// </summary>
internal readonly unsafe struct RnnCell<TAct> : ICell where TAct : struct, IActivation
{
    public static string GateLayout => "h";

    public static int FusedRows(RecurrentOptions o) => o.HiddenSize;

    public static CellRecords Records(RecurrentOptions o) => o.Clip > 0 ? CellRecords.PreActivations : CellRecords.None;

    public static void Forward(LayerWeights w, ref CellStep s)
    {
        w.Mul(s, s.HPrev, w.RecV, w.RecT, s.Gh, w.GH, false);                  // gh = h W_hh^T  (B, H)
        var k = new RnnForward<TAct>
        {
            Isa = w.K.Isa, A = s.Gx, Bias = w.BiasSum, B = s.Gh, H = s.HNew, Hd = (nuint)w.H, BStride = (nuint)w.H, Functions = w.Functions, Pre = s.Pre,
        };
        Rows.Run(ref k, s.Batch, w.GH);
    }

    public static bool SplitsByUnits(RecurrentOptions o) => true;

    public static void ForwardUnits(LayerWeights w, ref CellStep s, int u0, int u1)
    {
        w.MulUnits(s, s.HPrev, w.RecV, w.RecT, s.Gh, w.GH, 1, u0, u1, false);
        var k = new RnnForward<TAct>
        {
            Isa = w.K.Isa, A = s.Gx + u0, Bias = w.BiasSum + u0, B = s.Gh + u0, H = s.HNew + u0, Hd = (nuint)w.H, BStride = (nuint)w.H,
            Count = (nuint)(u1 - u0), Functions = w.Functions, Pre = s.Pre == null ? null : s.Pre + u0,
        };
        for (int b = 0; b < s.Batch; b++) k.Row(b);
    }

    public static void StreamProductsUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1) =>
        w.GemvUnits(w.StepV, 1, xh, s.Gx, u0, u1, false);

    public static void StreamGatesUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1)
    {
        var k = new RnnForward<TAct>
        {
            Isa = w.K.Isa, A = s.Gx + u0, Bias = w.BiasSum + u0, B = w.Zeros + u0, H = s.HNew + u0, Hd = (nuint)w.H, Count = (nuint)(u1 - u0),
            Functions = w.Functions,
        };
        k.Row(0);
    }

    public static void StreamStep(LayerWeights w, float* xh, ref CellStep s)
    {
        w.StreamProduct(s.Q, StreamProductKind.Step, xh, s.Gx, false);           // [x | h] [W_ih | W_hh]^T
        var k = new RnnForward<TAct> { Isa = w.K.Isa, A = s.Gx, Bias = w.BiasSum, B = w.Zeros, H = s.HNew, Hd = (nuint)w.H, Functions = w.Functions };
        k.Row(0);
    }

    public static void Backward(LayerWeights w, ref CellBackStep s)
    {
        var k = new RnnBackward<TAct>
        {
            Isa = w.K.Isa, DH = s.DH, H = s.F.HNew, DG = s.DG, Hd = (nuint)w.H, Lengths = s.Lengths, T = s.T, Functions = w.Functions, Pre = s.F.Pre,
        };
        Rows.Run(ref k, s.F.Batch, w.GH);
        w.MulBack(s.F.Batch, s.DG, w.GH, w.Whh, w.RecN, s.DHPrev, false);           // dh_{t-1} = dG W_hh
    }

    public static void RecurrentGradients(LayerWeights w, in CellSequence q, float* grads)
    {
        int GH = w.GH, Hout = w.Hout, n = q.Rows;
        w.K.Gemm(true, false, GH, Hout, n, 1f, new ReadOnlySpan<float>(q.DGh, n * GH), GH, new ReadOnlySpan<float>(q.Hs, n * Hout), Hout,
            1f, new Span<float>(grads + w.OWhh, GH * Hout), Hout);                  // dW_hh += dG^T H_{t-1}
    }
}

/// <summary>
/// Elman RNN forward of one row: h = act((A + Bias) + B); configured (<typeparamref name="TAct"/> = <see cref="ConfiguredGates"/>):
/// h = f(clamp((A + Bias) + B)), the pre-activation recorded first when <see cref="Pre"/> is set.
/// </summary>
internal unsafe struct RnnForward<TAct> : ILaneKernel, IRowKernel where TAct : struct, IActivation
{
    public KernelIsa Isa;
    public float* A, Bias, B, H;
    public nuint Hd, BStride;
    public nuint Count; // units per row when not 0 (a step split by units: pointers start at the first unit), else Hd
    public GateFunctions Functions; // configured only: activation and clip
    public float* Pre;              // configured only: (H) pre-activations recorded here when not null (a training forward with a clip)

    public readonly void Row(int b)
    {
        nuint r = Hd * (nuint)b;
        var k = this;
        k.A += r; k.B += BStride * (nuint)b; k.H += r;
        if (typeof(TAct) == typeof(ConfiguredGates) && k.Pre != null) k.Pre += r;
        Lanes.For(Isa, (int)(Count != 0 ? Count : Hd), ref k);
    }

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        TV a = TL.Add(TL.Add(TL.Load(A, j), TL.Load(Bias, j)), TL.Load(B, j));
        TL.Store(typeof(TAct) == typeof(ConfiguredGates) ? Gate.Forward<TL, TV>(Functions.F, a, Functions.Bound, Pre, j) : TL.Apply<TAct>(a), H, j);
    }
}

/// <summary>
/// Elman RNN backward of one row: dG = act'(from h) * dh; configured: f'(from h) * dh, zeroed where the recorded
/// pre-activation was clipped. An inactive row gets dG = 0.
/// </summary>
internal unsafe struct RnnBackward<TAct> : ILaneKernel, IRowKernel where TAct : struct, IActivation
{
    public KernelIsa Isa;
    public float* DH, H, DG;
    public nuint Hd;
    public int* Lengths;
    public int T;
    public GateFunctions Functions; // configured only: activation and clip
    public float* Pre;              // configured only: (H) recorded pre-activations, or null (no clip)

    public readonly void Row(int b)
    {
        nuint r = Hd * (nuint)b;
        if (Lengths != null && T >= Lengths[b]) { new Span<float>(DG + r, (int)Hd).Clear(); return; }
        var k = this;
        k.DH += r; k.H += r; k.DG += r;
        if (typeof(TAct) == typeof(ConfiguredGates) && k.Pre != null) k.Pre += r;
        Lanes.For(Isa, (int)Hd, ref k);
    }

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct =>
        TL.Store(typeof(TAct) == typeof(ConfiguredGates)
            ? Gate.Backward<TL, TV>(Functions.F, TL.Load(H, j), TL.Load(DH, j), Functions.Bound, Pre, j)
            : TL.Backward<TAct>(TL.Load(H, j), TL.Load(DH, j)), DG, j);
}
