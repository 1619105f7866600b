namespace RnnSimd.Training;

/// <summary>
/// A learning rate as a function of the number of steps already taken (0 for the first update), as PyTorch's
/// schedulers after that many <c>scheduler.step()</c> calls. Use with <see cref="Optimizer.Step(ILearningRateSchedule)"/>,
/// or set <c>optimizer.LearningRate = schedule.LearningRate(optimizer.StepCount)</c> before each step.
/// </summary>
public interface ILearningRateSchedule
{
    /// <summary>The learning rate of the update that follows <paramref name="step"/> completed steps (step ≥ 0).</summary>
    float LearningRate(int step);
}

/// <summary>The same learning rate at every step.</summary>
public sealed class ConstantSchedule : ILearningRateSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="learningRate">The learning rate (finite, non-negative).</param>
    /// <exception cref="ArgumentOutOfRangeException">The learning rate is negative or not finite.</exception>
    public ConstantSchedule(float learningRate) => Initial = Schedules.CheckRate(learningRate, nameof(learningRate));

    /// <summary>The learning rate.</summary>
    public float Initial { get; }

    /// <inheritdoc />
    public float LearningRate(int step) => Initial;
}

/// <summary>Step decay, as <c>StepLR</c>: γ₀ · gamma^⌊step / stepSize⌋.</summary>
public sealed class StepSchedule : ILearningRateSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="initial">γ₀.</param>
    /// <param name="stepSize">Steps between decays (positive).</param>
    /// <param name="gamma">The factor applied every <paramref name="stepSize"/> steps (finite, non-negative).</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public StepSchedule(float initial, int stepSize, float gamma)
    {
        Initial = Schedules.CheckRate(initial, nameof(initial));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(stepSize);
        StepSize = stepSize;
        Gamma = Schedules.CheckRate(gamma, nameof(gamma));
    }

    /// <summary>γ₀.</summary>
    public float Initial { get; }

    /// <summary>Steps between decays.</summary>
    public int StepSize { get; }

    /// <summary>The decay factor.</summary>
    public float Gamma { get; }

    /// <inheritdoc />
    public float LearningRate(int step) => (float)(Initial * Math.Pow(Gamma, Schedules.CheckStep(step) / StepSize));
}

/// <summary>
/// Cosine annealing, as <c>CosineAnnealingLR</c>'s closed form: min + (γ₀ - min)(1 + cos(π step / totalSteps)) / 2
/// for step ≤ totalSteps; afterwards it stays at min (PyTorch's closed form would rise again).
/// </summary>
public sealed class CosineSchedule : ILearningRateSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="initial">γ₀, the rate at step 0.</param>
    /// <param name="totalSteps">T_max: the step at which the rate reaches <paramref name="minimum"/> (positive).</param>
    /// <param name="minimum">η_min.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range.</exception>
    public CosineSchedule(float initial, int totalSteps, float minimum = 0f)
    {
        Initial = Schedules.CheckRate(initial, nameof(initial));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(totalSteps);
        TotalSteps = totalSteps;
        Minimum = Schedules.CheckRate(minimum, nameof(minimum));
    }

    /// <summary>γ₀.</summary>
    public float Initial { get; }

    /// <summary>T_max.</summary>
    public int TotalSteps { get; }

    /// <summary>η_min.</summary>
    public float Minimum { get; }

    /// <inheritdoc />
    public float LearningRate(int step)
    {
        if (Schedules.CheckStep(step) >= TotalSteps) return Minimum;
        return (float)(Minimum + ((double)Initial - Minimum) * (1 + Math.Cos(Math.PI * step / TotalSteps)) / 2);
    }
}

/// <summary>
/// Linear warm-up in front of another schedule: for step &lt; W the rate is inner(0) · (step + 1) / W (so no step
/// has rate 0 and step W - 1 reaches inner(0)); from step W on it is inner(step - W), i.e. the inner schedule
/// starts after the warm-up (give a cosine schedule total - W steps).
/// </summary>
public sealed class WarmupSchedule : ILearningRateSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="warmupSteps">W (non-negative; 0 means no warm-up).</param>
    /// <param name="inner">The schedule that follows the warm-up.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="warmupSteps"/> is negative.</exception>
    public WarmupSchedule(int warmupSteps, ILearningRateSchedule inner)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentNullException.ThrowIfNull(inner);
        WarmupSteps = warmupSteps;
        Inner = inner;
    }

    /// <summary>W.</summary>
    public int WarmupSteps { get; }

    /// <summary>The schedule after the warm-up.</summary>
    public ILearningRateSchedule Inner { get; }

    /// <inheritdoc />
    public float LearningRate(int step) => Schedules.CheckStep(step) < WarmupSteps
        ? (float)((double)Inner.LearningRate(0) * (step + 1) / WarmupSteps)
        : Inner.LearningRate(step - WarmupSteps);
}

internal static class Schedules
{
    public static float CheckRate(float value, string name) =>
        value >= 0f && float.IsFinite(value) ? value
            : throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite and non-negative.");

    public static int CheckStep(int step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        return step;
    }
}
