using RnnSimd.Kernels;

namespace RnnSimd.Training;

/// <summary>
/// Adagrad, as <c>torch.optim.Adagrad</c> (and min-char-rnn): sum₀ = initial accumulator value;
/// γ̃ = γ / (1 + (t - 1)η); g ← g + λθ; sum ← sum + g²; θ ← θ - γ̃ g / (√sum + ε). State: "sum".
/// </summary>
public sealed unsafe class Adagrad : Optimizer
{
    /// <summary>Creates the optimizer; hyper-parameters are PyTorch's, with its defaults.</summary>
    /// <param name="groups">The parameter groups to update.</param>
    /// <param name="kernels">The kernel set to run on (null: <see cref="KernelSet.Default"/>).</param>
    /// <param name="learningRate">γ.</param>
    /// <param name="learningRateDecay">η.</param>
    /// <param name="weightDecay">λ, L2 penalty added to the gradient.</param>
    /// <param name="initialAccumulatorValue">The starting value of every element of "sum" (padding stays zero).</param>
    /// <param name="eps">ε (positive).</param>
    /// <exception cref="ArgumentException">Groups are invalid, or a hyper-parameter is out of range.</exception>
    public Adagrad(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels, float learningRate = 1e-2f,
        float learningRateDecay = 0f, float weightDecay = 0f, float initialAccumulatorValue = 0f, float eps = 1e-10f)
        : base(groups, kernels, learningRate, "sum")
    {
        LearningRateDecay = CheckNonNegative(learningRateDecay, nameof(learningRateDecay));
        WeightDecay = CheckNonNegative(weightDecay, nameof(weightDecay));
        InitialAccumulatorValue = CheckNonNegative(initialAccumulatorValue, nameof(initialAccumulatorValue));
        Eps = CheckPositive(eps, nameof(eps));
        FillAccumulators();
    }

    /// <summary>η: the step-t learning rate is γ / (1 + (t - 1)η).</summary>
    public float LearningRateDecay { get; }

    /// <summary>λ (L2 penalty added to the gradient).</summary>
    public float WeightDecay { get; }

    /// <summary>The starting value of "sum".</summary>
    public float InitialAccumulatorValue { get; }

    /// <summary>ε.</summary>
    public float Eps { get; }

    /// <inheritdoc />
    public override void ResetState()
    {
        base.ResetState();
        FillAccumulators();
    }

    // Only the tensors, not the padding: zero padding keeps padded parameters at 0 - γ̃·0/(0 + ε) = 0.
    private void FillAccumulators()
    {
        for (int g = 0; g < Groups.Count; g++)
        {
            var sum = StateArena(g, 0);
            foreach (var e in sum.Entries) sum.View(e).Fill(InitialAccumulatorValue);
        }
    }

    private protected override void Update(int group, int step)
    {
        var k = new AdagradKernel
        {
            P = Parameters(group), G = Gradients(group), Sum = State(group, 0),
            Lr = (float)(LearningRate / (1 + (step - 1) * (double)LearningRateDecay)), WeightDecay = WeightDecay, Eps = Eps,
        };
        Lanes.For(Kernels.Isa, Length(group), ref k);
    }
}
