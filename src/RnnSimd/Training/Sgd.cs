using RnnSimd.Kernels;

namespace RnnSimd.Training;

/// <summary>
/// Stochastic gradient descent with optional momentum, as <c>torch.optim.SGD</c>:
/// g ← g + λθ; with momentum μ ≠ 0: b ← g on the first step, else b ← μb + (1 - τ)g, and g ← g + μb (Nesterov)
/// or g ← b; θ ← θ - γg. State: "momentum_buffer" (only when μ ≠ 0).
/// </summary>
public sealed unsafe class Sgd : Optimizer
{
    /// <summary>Creates the optimizer; hyper-parameters are PyTorch's, with its defaults.</summary>
    /// <param name="groups">The parameter groups to update.</param>
    /// <param name="kernels">The kernel set to run on (null: <see cref="KernelSet.Default"/>).</param>
    /// <param name="learningRate">γ.</param>
    /// <param name="momentum">μ (0: plain SGD, no state).</param>
    /// <param name="dampening">τ, applied to the gradient after the first step.</param>
    /// <param name="weightDecay">λ, L2 penalty added to the gradient.</param>
    /// <param name="nesterov">Nesterov momentum (needs μ &gt; 0 and τ = 0).</param>
    /// <exception cref="ArgumentException">Groups are invalid, or a hyper-parameter is out of range.</exception>
    public Sgd(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels, float learningRate = 1e-3f, float momentum = 0f,
        float dampening = 0f, float weightDecay = 0f, bool nesterov = false)
        : base(groups, kernels, learningRate, momentum != 0f ? ["momentum_buffer"] : [])
    {
        Momentum = CheckNonNegative(momentum, nameof(momentum));
        Dampening = CheckRange(dampening, 0f, 1f, nameof(dampening));
        WeightDecay = CheckNonNegative(weightDecay, nameof(weightDecay));
        if (nesterov && (momentum <= 0f || dampening != 0f))
            throw new ArgumentException("Nesterov momentum requires a momentum and zero dampening.", nameof(nesterov));
        Nesterov = nesterov;
    }

    /// <summary>μ.</summary>
    public float Momentum { get; }

    /// <summary>τ.</summary>
    public float Dampening { get; }

    /// <summary>λ (L2 penalty added to the gradient).</summary>
    public float WeightDecay { get; }

    /// <summary>Whether momentum is Nesterov's.</summary>
    public bool Nesterov { get; }

    private protected override void Update(int group, int step)
    {
        var k = new SgdKernel
        {
            P = Parameters(group), G = Gradients(group), B = Momentum != 0f ? State(group, 0) : null,
            Lr = LearningRate, WeightDecay = WeightDecay, Momentum = Momentum, OneMinusDampening = 1f - Dampening,
            First = step == 1, Nesterov = Nesterov,
        };
        Lanes.For(Kernels.Isa, Length(group), ref k);
    }
}
