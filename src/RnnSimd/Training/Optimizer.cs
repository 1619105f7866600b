using RnnSimd.Kernels;
using RnnSimd.Memory;

namespace RnnSimd.Training;

/// <summary>
/// An optimizer over parameter groups, matching the update rule documented for its torch.optim namesake.
/// <see cref="Step()"/> applies one update from the current gradients (it does not zero them) in one fused pass
/// over each group's memory; per-step scalars (bias corrections, decayed learning rates) are computed once per step.
/// State (momentum buffers, moment estimates, sums of squares) is float32 in arenas of the parameters' layout,
/// exposed by <see cref="StateArenas"/> for checkpoints together with <see cref="StepCount"/>.
/// Allocation-free after construction.
/// </summary>
/// <remarks>
/// Updates run over the whole <see cref="Arena.Data"/> of each group, padding included: padding is zero in
/// parameters, gradients and state, and every rule maps zero gradient, zero parameter and zero state to zeros
/// (this is why every <c>eps</c> must be positive: 0 / (0 + eps) = 0).
/// </remarks>
public abstract unsafe class Optimizer
{
    private readonly ParameterGroup[] _groups;
    private readonly (string Name, Arena Arena)[] _state; // group-major: [group * _kinds + kind]
    private readonly int _kinds;
    private float _learningRate;
    private int _stepCount;

    /// <summary>Validates the groups and allocates one zeroed state arena per group and state name.</summary>
    private protected Optimizer(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels, float learningRate,
        params string[] stateNames)
    {
        _groups = ParameterGroup.Validate(groups, nameof(groups));
        Kernels = kernels ?? KernelSet.Default;
        if (!Kernels.IsSupported) throw new ArgumentException($"kernel set '{Kernels.Name}' is not supported here.", nameof(kernels));
        LearningRate = learningRate;
        _kinds = stateNames.Length;
        _state = new (string, Arena)[_groups.Length * _kinds];
        for (int g = 0; g < _groups.Length; g++)
            for (int k = 0; k < _kinds; k++)
                _state[g * _kinds + k] = (stateNames[k] + "." + _groups[g].Prefix, _groups[g].Parameters.CloneLayout());
    }

    /// <summary>The kernel set the updates run on.</summary>
    public KernelSet Kernels { get; }

    /// <summary>The parameter groups, in the order given.</summary>
    public IReadOnlyList<ParameterGroup> Groups => _groups;

    /// <summary>The learning rate of the next <see cref="Step()"/> (set it from a schedule before each step).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative or not finite.</exception>
    public float LearningRate
    {
        get => _learningRate;
        set
        {
            if (!(value >= 0f) || !float.IsFinite(value))
                throw new ArgumentOutOfRangeException(nameof(value), value, "the learning rate must be finite and non-negative.");
            _learningRate = value;
        }
    }

    /// <summary>
    /// The number of steps taken (PyTorch's per-parameter <c>step</c>); the next step is number StepCount + 1.
    /// Restore it together with <see cref="StateArenas"/> when resuming from a checkpoint.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative.</exception>
    public int StepCount
    {
        get => _stepCount;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _stepCount = value;
        }
    }

    /// <summary>
    /// Every state arena, for checkpoints: per group, one arena per state tensor kind, each of the parameters' layout.
    /// Name is the state kind (PyTorch's state key, e.g. "exp_avg") followed by "." and the group's prefix; the full
    /// name of a tensor is Name + the parameter's name, e.g. "exp_avg.rnn.weight_ih_l0". Empty when the optimizer
    /// keeps no state (plain SGD).
    /// </summary>
    public IReadOnlyList<(string Name, Arena Arena)> StateArenas => _state;

    /// <summary>Applies one update to every group from the current gradients, then increments <see cref="StepCount"/>.</summary>
    public void Step()
    {
        int step = _stepCount + 1;
        for (int g = 0; g < _groups.Length; g++) Update(g, step);
        _stepCount = step;
    }

    /// <summary>Sets <see cref="LearningRate"/> to <c>schedule.LearningRate(StepCount)</c>, then takes one <see cref="Step()"/>.</summary>
    public void Step(ILearningRateSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        LearningRate = schedule.LearningRate(_stepCount);
        Step();
    }

    /// <summary>Forgets all state (as a fresh optimizer): zeroes the state arenas (or sets initial values) and <see cref="StepCount"/>.</summary>
    public virtual void ResetState()
    {
        foreach (var (_, arena) in _state) arena.Clear();
        _stepCount = 0;
    }

    /// <summary>Updates group <paramref name="group"/> for step number <paramref name="step"/> (1 on the first step).</summary>
    private protected abstract void Update(int group, int step);

    /// <summary>Floats in group <paramref name="group"/> (the whole arena, padding included; a multiple of 16).</summary>
    private protected int Length(int group) => _groups[group].Parameters.Data.Length;

    /// <summary>The parameters of a group.</summary>
    private protected float* Parameters(int group) => ParameterGroup.Pointer(_groups[group].Parameters);

    /// <summary>The gradients of a group.</summary>
    private protected float* Gradients(int group) => ParameterGroup.Pointer(_groups[group].Gradients);

    /// <summary>State kind <paramref name="kind"/> (index into the constructor's state names) of a group.</summary>
    private protected float* State(int group, int kind) => ParameterGroup.Pointer(StateArena(group, kind));

    /// <summary>The arena of state kind <paramref name="kind"/> of a group.</summary>
    private protected Arena StateArena(int group, int kind) => _state[group * _kinds + kind].Arena;

    /// <summary>Throws unless <paramref name="value"/> lies in [min, max] (NaN fails).</summary>
    private protected static float CheckRange(float value, float min, float max, string name)
    {
        if (!(value >= min && value <= max))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [{min}, {max}].");
        return value;
    }

    /// <summary>Throws unless <paramref name="value"/> is finite and positive.</summary>
    private protected static float CheckPositive(float value, string name)
    {
        if (!(value > 0f) || !float.IsFinite(value))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be finite and positive (zero padding needs 0 / eps = 0).");
        return value;
    }

    /// <summary>Throws unless <paramref name="value"/> is finite and non-negative.</summary>
    private protected static float CheckNonNegative(float value, string name) => CheckRange(value, 0f, float.MaxValue, name);
}
