using RnnSimd.Kernels;

namespace RnnSimd.Training;

/// <summary>
/// Adam, as <c>torch.optim.Adam</c>: g ← g + λθ; m ← β1 m + (1 - β1)g; v ← β2 v + (1 - β2)g²;
/// m̂ = m / (1 - β1^t); AMSGrad: vmax ← max(vmax, v) and v̂ = vmax / (1 - β2^t), else v̂ = v / (1 - β2^t);
/// θ ← θ - γ m̂ / (√v̂ + ε). State: "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (AMSGrad only).
/// </summary>
public unsafe class Adam : Optimizer
{
    private readonly bool _decoupled;

    /// <summary>Creates the optimizer; hyper-parameters are PyTorch's, with its defaults.</summary>
    /// <param name="groups">The parameter groups to update.</param>
    /// <param name="kernels">The kernel set to run on (null: <see cref="KernelSet.Default"/>).</param>
    /// <param name="learningRate">γ.</param>
    /// <param name="beta1">β1, in [0, 1).</param>
    /// <param name="beta2">β2, in [0, 1).</param>
    /// <param name="eps">ε (positive).</param>
    /// <param name="weightDecay">λ, L2 penalty added to the gradient.</param>
    /// <param name="amsGrad">Use the maximum of past second moments (AMSGrad).</param>
    /// <exception cref="ArgumentException">Groups are invalid, or a hyper-parameter is out of range.</exception>
    public Adam(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels, float learningRate = 1e-3f, float beta1 = 0.9f,
        float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0f, bool amsGrad = false)
        : this(groups, kernels, learningRate, beta1, beta2, eps, weightDecay, amsGrad, decoupled: false)
    {
    }

    /// <summary>Adam or, with <paramref name="decoupled"/>, AdamW.</summary>
    private protected Adam(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels, float learningRate, float beta1,
        float beta2, float eps, float weightDecay, bool amsGrad, bool decoupled)
        : base(groups, kernels, learningRate, amsGrad ? ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] : ["exp_avg", "exp_avg_sq"])
    {
        Beta1 = CheckRange(beta1, 0f, MathF.BitDecrement(1f), nameof(beta1));
        Beta2 = CheckRange(beta2, 0f, MathF.BitDecrement(1f), nameof(beta2));
        Eps = CheckPositive(eps, nameof(eps));
        WeightDecay = CheckNonNegative(weightDecay, nameof(weightDecay));
        AmsGrad = amsGrad;
        _decoupled = decoupled;
    }

    /// <summary>β1.</summary>
    public float Beta1 { get; }

    /// <summary>β2.</summary>
    public float Beta2 { get; }

    /// <summary>ε.</summary>
    public float Eps { get; }

    /// <summary>λ: added to the gradient as an L2 penalty (Adam) or decoupled, θ ← θ(1 - γλ) (AdamW).</summary>
    public float WeightDecay { get; }

    /// <summary>Whether AMSGrad's running maximum of the second moment is used.</summary>
    public bool AmsGrad { get; }

    private protected override void Update(int group, int step)
    {
        // Per-step scalars in double, rounded once.
        double bc1 = 1 - Math.Pow(Beta1, step), bc2 = 1 - Math.Pow(Beta2, step);
        var k = new AdamKernel
        {
            P = Parameters(group), G = Gradients(group), M = State(group, 0), V = State(group, 1),
            VMax = AmsGrad ? State(group, 2) : null,
            Beta1 = Beta1, OneMinusBeta1 = 1f - Beta1, Beta2 = Beta2, OneMinusBeta2 = 1f - Beta2, Eps = Eps,
            WeightDecay = _decoupled ? 0f : WeightDecay,
            Decay = _decoupled ? (float)(1 - (double)LearningRate * WeightDecay) : 1f,
            StepSize = (float)(LearningRate / bc1), InvSqrtBc2 = (float)(1 / Math.Sqrt(bc2)), AmsGrad = AmsGrad,
        };
        Lanes.For(Kernels.Isa, Length(group), ref k);
    }
}

/// <summary>
/// AdamW, as <c>torch.optim.AdamW</c>: Adam with decoupled weight decay, θ ← θ - γλθ applied before the Adam step
/// (the gradient is not changed). State as <see cref="Adam"/>.
/// </summary>
public sealed class AdamW : Adam
{
    /// <summary>Creates the optimizer; hyper-parameters are PyTorch's, with its defaults (λ = 0.01).</summary>
    /// <param name="groups">The parameter groups to update.</param>
    /// <param name="kernels">The kernel set to run on (null: <see cref="KernelSet.Default"/>).</param>
    /// <param name="learningRate">γ.</param>
    /// <param name="beta1">β1, in [0, 1).</param>
    /// <param name="beta2">β2, in [0, 1).</param>
    /// <param name="eps">ε (positive).</param>
    /// <param name="weightDecay">λ, decoupled.</param>
    /// <param name="amsGrad">Use the maximum of past second moments (AMSGrad).</param>
    /// <exception cref="ArgumentException">Groups are invalid, or a hyper-parameter is out of range.</exception>
    public AdamW(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels, float learningRate = 1e-3f, float beta1 = 0.9f,
        float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 1e-2f, bool amsGrad = false)
        : base(groups, kernels, learningRate, beta1, beta2, eps, weightDecay, amsGrad, decoupled: true)
    {
    }
}
