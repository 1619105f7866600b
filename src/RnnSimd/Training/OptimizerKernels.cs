using RnnSimd.Kernels;

namespace RnnSimd.Training;

// Fused per-element updates, one pass over parameters, gradients and state, written once for every width
// (ILaneKernel) and driven by Lanes.For over a group's whole arena. Each follows the torch.optim pseudo-code;
// per-step scalars (learning rate, bias corrections) arrive precomputed. Every kernel maps p = g = state = 0 to
// zeros (with eps > 0), so arena padding stays zero. All pointers address (n) floats of one arena layout.

/// <summary>
/// SGD: g += λθ; with momentum μ: b = g on the first step, else b = μb + (1-τ)g, and g = g + μb (Nesterov) or b;
/// θ -= γg.
/// </summary>
internal unsafe struct SgdKernel : ILaneKernel
{
    public float* P, G, B; // B: momentum buffer (unused when Momentum is 0)
    public float Lr, WeightDecay, Momentum, OneMinusDampening;
    public bool First, Nesterov;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        TV p = TL.Load(P, j);
        TV g = TL.Load(G, j);
        if (WeightDecay != 0f) g = TL.Fma(TL.Splat(WeightDecay), p, g);
        if (Momentum != 0f)
        {
            TV b = First ? g : TL.Fma(TL.Splat(Momentum), TL.Load(B, j), TL.Mul(TL.Splat(OneMinusDampening), g));
            TL.Store(b, B, j);
            g = Nesterov ? TL.Fma(TL.Splat(Momentum), b, g) : b;
        }
        TL.Store(TL.Fma(TL.Splat(-Lr), g, p), P, j);
    }
}

/// <summary>Adagrad: g += λθ; sum += g²; θ -= γ̃ g / (√sum + ε), with γ̃ the decayed learning rate.</summary>
internal unsafe struct AdagradKernel : ILaneKernel
{
    public float* P, G, Sum;
    public float Lr, WeightDecay, Eps;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        TV p = TL.Load(P, j);
        TV g = TL.Load(G, j);
        if (WeightDecay != 0f) g = TL.Fma(TL.Splat(WeightDecay), p, g);
        TV sum = TL.Fma(g, g, TL.Load(Sum, j));
        TL.Store(sum, Sum, j);
        TV std = TL.Add(TL.Sqrt(sum), TL.Splat(Eps));
        TL.Store(TL.Fma(TL.Splat(-Lr), TL.Div(g, std), p), P, j);
    }
}

/// <summary>
/// RMSprop: g += λθ; v = αv + (1-α)g²; centered: ḡ = αḡ + (1-α)g and ṽ = v - ḡ², else ṽ = v; d = g / (√ṽ + ε);
/// with momentum μ &gt; 0: b = μb + d, θ -= γb; else θ -= γd.
/// </summary>
internal unsafe struct RmsPropKernel : ILaneKernel
{
    public float* P, G, V, GAvg, B; // GAvg only when Centered, B only when Momentum > 0
    public float Lr, WeightDecay, Alpha, OneMinusAlpha, Eps, Momentum;
    public bool Centered;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        TV p = TL.Load(P, j);
        TV g = TL.Load(G, j);
        if (WeightDecay != 0f) g = TL.Fma(TL.Splat(WeightDecay), p, g);
        TV v = TL.Fma(TL.Splat(OneMinusAlpha), TL.Mul(g, g), TL.Mul(TL.Splat(Alpha), TL.Load(V, j)));
        TL.Store(v, V, j);
        if (Centered)
        {
            TV ga = TL.Fma(TL.Splat(OneMinusAlpha), g, TL.Mul(TL.Splat(Alpha), TL.Load(GAvg, j)));
            TL.Store(ga, GAvg, j);
            v = TL.Fma(TL.Sub(TL.Splat(0f), ga), ga, v);
        }
        TV d = TL.Div(g, TL.Add(TL.Sqrt(v), TL.Splat(Eps)));
        if (Momentum != 0f)
        {
            d = TL.Fma(TL.Splat(Momentum), TL.Load(B, j), d);
            TL.Store(d, B, j);
        }
        TL.Store(TL.Fma(TL.Splat(-Lr), d, p), P, j);
    }
}

/// <summary>
/// Adam / AdamW: g += λθ (Adam) or θ *= 1 - γλ (AdamW); m = β1 m + (1-β1)g; v = β2 v + (1-β2)g²;
/// AMSGrad: vmax = max(vmax, v) replaces v; θ -= (γ / (1-β1^t)) m / (√v / √(1-β2^t) + ε), as PyTorch computes it.
/// </summary>
internal unsafe struct AdamKernel : ILaneKernel
{
    public float* P, G, M, V, VMax; // VMax only with AmsGrad
    public float Beta1, OneMinusBeta1, Beta2, OneMinusBeta2, Eps;
    public float WeightDecay;   // L2 added to the gradient (Adam); 0 for AdamW
    public float Decay;         // decoupled decay factor 1 - γλ (AdamW); 1 for Adam
    public float StepSize;      // γ / (1 - β1^t)
    public float InvSqrtBc2;    // 1 / √(1 - β2^t)
    public bool AmsGrad;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct
    {
        TV p = TL.Load(P, j);
        TV g = TL.Load(G, j);
        if (WeightDecay != 0f) g = TL.Fma(TL.Splat(WeightDecay), p, g);
        if (Decay != 1f) p = TL.Mul(p, TL.Splat(Decay));
        TV m = TL.Fma(TL.Splat(OneMinusBeta1), g, TL.Mul(TL.Splat(Beta1), TL.Load(M, j)));
        TV v = TL.Fma(TL.Splat(OneMinusBeta2), TL.Mul(g, g), TL.Mul(TL.Splat(Beta2), TL.Load(V, j)));
        TL.Store(m, M, j);
        TL.Store(v, V, j);
        if (AmsGrad)
        {
            v = TL.Max(TL.Load(VMax, j), v);
            TL.Store(v, VMax, j);
        }
        TV denom = TL.Fma(TL.Sqrt(v), TL.Splat(InvSqrtBc2), TL.Splat(Eps));
        TL.Store(TL.Fma(TL.Splat(-StepSize), TL.Div(m, denom), p), P, j);
    }
}

/// <summary>x = min(max(x, lo), hi); NaN stays NaN.</summary>
internal unsafe struct ClampKernel : ILaneKernel
{
    public float* X;
    public float Lo, Hi;

    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct =>
        TL.Store(TL.Min(TL.Max(TL.Load(X, j), TL.Splat(Lo)), TL.Splat(Hi)), X, j);
}
