using RnnSimd.Kernels;

namespace RnnSimd.Training;

/// <summary>
/// RMSprop, as <c>torch.optim.RMSprop</c>: g ← g + λθ; v ← αv + (1 - α)g²; centered: ḡ ← αḡ + (1 - α)g and
/// ṽ = v - ḡ², else ṽ = v; with momentum μ &gt; 0: b ← μb + g / (√ṽ + ε), θ ← θ - γb; else θ ← θ - γ g / (√ṽ + ε).
/// State: "square_avg", "momentum_buffer" (when μ &gt; 0), "grad_avg" (when centered).
/// </summary>
public sealed unsafe class RmsProp : Optimizer
{
    private readonly int _bufferKind, _gradAvgKind;

    /// <summary>Creates the optimizer; hyper-parameters are PyTorch's, with its defaults.</summary>
    /// <param name="groups">The parameter groups to update.</param>
    /// <param name="kernels">The kernel set to run on (null: <see cref="KernelSet.Default"/>).</param>
    /// <param name="learningRate">γ.</param>
    /// <param name="alpha">α, the smoothing constant, in [0, 1].</param>
    /// <param name="eps">ε (positive).</param>
    /// <param name="weightDecay">λ, L2 penalty added to the gradient.</param>
    /// <param name="momentum">μ.</param>
    /// <param name="centered">Normalise by an estimate of the gradient's variance instead of its second moment.</param>
    /// <exception cref="ArgumentException">Groups are invalid, or a hyper-parameter is out of range.</exception>
    public RmsProp(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels, float learningRate = 1e-2f, float alpha = 0.99f,
        float eps = 1e-8f, float weightDecay = 0f, float momentum = 0f, bool centered = false)
        : base(groups, kernels, learningRate, StateNames(momentum, centered))
    {
        Alpha = CheckRange(alpha, 0f, 1f, nameof(alpha));
        Eps = CheckPositive(eps, nameof(eps));
        WeightDecay = CheckNonNegative(weightDecay, nameof(weightDecay));
        Momentum = CheckNonNegative(momentum, nameof(momentum));
        Centered = centered;
        _bufferKind = momentum > 0f ? 1 : -1;
        _gradAvgKind = centered ? (momentum > 0f ? 2 : 1) : -1;
    }

    private static string[] StateNames(float momentum, bool centered) =>
        [ "square_avg", .. momentum > 0f ? new[] { "momentum_buffer" } : [], .. centered ? new[] { "grad_avg" } : [] ];

    /// <summary>α.</summary>
    public float Alpha { get; }

    /// <summary>ε.</summary>
    public float Eps { get; }

    /// <summary>λ (L2 penalty added to the gradient).</summary>
    public float WeightDecay { get; }

    /// <summary>μ.</summary>
    public float Momentum { get; }

    /// <summary>Whether the second moment is centered.</summary>
    public bool Centered { get; }

    private protected override void Update(int group, int step)
    {
        var k = new RmsPropKernel
        {
            P = Parameters(group), G = Gradients(group), V = State(group, 0),
            B = _bufferKind >= 0 ? State(group, _bufferKind) : null,
            GAvg = _gradAvgKind >= 0 ? State(group, _gradAvgKind) : null,
            Lr = LearningRate, WeightDecay = WeightDecay, Alpha = Alpha, OneMinusAlpha = 1f - Alpha, Eps = Eps,
            Momentum = Momentum, Centered = Centered,
        };
        Lanes.For(Kernels.Isa, Length(group), ref k);
    }
}
