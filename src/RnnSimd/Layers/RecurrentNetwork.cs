using RnnSimd.Kernels;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// A stacked, optionally bidirectional RNN / LSTM / GRU with PyTorch's semantics, parameter names and layout
/// (input (T, B, I), output (T, B, D*Hout), states (L*D, B, H)). Parameters and gradients live in two arenas of one
/// layout (<see cref="Parameters"/>, <see cref="Gradients"/>), named as PyTorch's state_dict.
/// <para>
/// Ways to run it, all allocation-free after warm-up: <see cref="Step"/> (streaming, one step per call, a
/// <see cref="RecurrentState"/> per stream), <see cref="MultiStreamStepper"/> (many batch-1 streams stepped as one batch),
/// <see cref="Forward"/> (a whole sequence, with an inference workspace or a training workspace that records what
/// <see cref="Backward"/> needs), and <see cref="Backward"/> (BPTT from T-1 to 0, accumulating gradients).
/// </para>
/// <para>
/// <b>Threads.</b> The network holds only weights, their packed copies and options; every call writes only the state,
/// workspace or gradient arena the caller passes. So any number of threads may call <see cref="Step"/>,
/// <see cref="Forward"/> and <see cref="Backward"/> on one network at once, each with its own state or workspace (and,
/// for Backward, its own gradient arena from <see cref="CreateGradients"/>: the default <see cref="Gradients"/> is one
/// arena), and get bitwise the results one thread would. A state or workspace is used by one call at a time and belongs
/// to the network that created it. Changing parameters (<see cref="ParametersChanged"/>, <see cref="ResetParameters"/>,
/// an optimizer step, loading a state_dict) is not safe while calls run: training owns the model while it updates it.
/// </para>
/// </summary>
public sealed unsafe partial class RecurrentNetwork
{
    private readonly LayerWeights[] _layers;   // (L*D): layer l, direction d at l*D + d
    private readonly CellDriver _driver;

    /// <summary>Creates a network with PyTorch's default initialisation U(-1/sqrt(H), 1/sqrt(H)) from <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException">Invalid options, or a kernel set the CPU lacks.</exception>
    public RecurrentNetwork(RecurrentOptions options, ulong seed = 0, KernelSet? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        RecurrentOptions.CheckBudget(options.NetworkBytes(), nameof(options),
            $"a {options.CellName} network of {options.NumLayers} layer(s) x {options.Directions}, input {options.InputSize}, hidden {options.HiddenSize}");
        Options = options;
        Kernels = kernels ?? KernelSet.Default;
        if (!Kernels.IsSupported) throw new ArgumentException($"kernel set '{Kernels.Name}' is not supported here.", nameof(kernels));
        Parameters = new Arena(options.ParameterShapes());
        Fill(seed);
        _driver = CellRegistry.Get(options.Cell).Driver(options);
        _layers = new LayerWeights[options.NumLayers * options.Directions];
        for (int l = 0; l < options.NumLayers; l++)
            for (int d = 0; d < options.Directions; d++)
                _layers[l * options.Directions + d] = _driver.Pack(options, l, d, Parameters, Kernels);
    }

    /// <summary>The network's shape.</summary>
    public RecurrentOptions Options { get; }
    /// <summary>The kernel set every call uses.</summary>
    public KernelSet Kernels { get; }
    /// <summary>Parameters under PyTorch's state_dict names. After writing them, call <see cref="ParametersChanged"/>.</summary>
    public Arena Parameters { get; }
    /// <summary>
    /// The default gradient arena (same layout as <see cref="Parameters"/>): <see cref="Backward"/> accumulates into it
    /// unless given another. Made at first use (a network used only for inference never holds one).
    /// </summary>
    public Arena Gradients
    {
        get
        {
            if (_gradients is { } g) return g;
            Interlocked.CompareExchange(ref _gradients, Parameters.CloneLayout(), null);
            return _gradients;
        }
    }

    private Arena? _gradients;

    /// <summary>Re-initialises every parameter from U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default), seeded. Not thread-safe with running calls.</summary>
    public void ResetParameters(ulong seed)
    {
        ThrowIfReduced("its parameters cannot change (convert the changed float32 network again)");
        Fill(seed);
        ParametersChanged();
    }

    private void Fill(ulong seed)
    {
        var rng = new Xoshiro(seed);
        float k = 1f / MathF.Sqrt(Options.HiddenSize);
        foreach (var e in Parameters.Entries)
        {
            var v = Parameters.View(e);
            for (int i = 0; i < v.Length; i++) v[i] = rng.NextFloat(-k, k);
        }
    }

    /// <summary>
    /// Call after writing parameter values (an optimizer step does): rebuilds every packed copy of the weights and the
    /// pre-summed biases now. Not thread-safe with concurrent calls on this network (the packed copies are rewritten).
    /// </summary>
    public void ParametersChanged()
    {
        ThrowIfReduced("its parameters cannot change (convert the changed float32 network again)");
        foreach (var w in _layers) w.Repack();
    }

    /// <summary>Sets every gradient of <see cref="Gradients"/> to zero (gradients accumulate across <see cref="Backward"/> calls).</summary>
    public void ZeroGradients() => Gradients.Clear();

    /// <summary>A new zeroed gradient arena of this network's layout, e.g. one per thread for data-parallel <see cref="Backward"/>.</summary>
    public Arena CreateGradients() => Parameters.CloneLayout();

    /// <summary>Creates a training workspace for sequences of up to <paramref name="maxSteps"/> steps and <paramref name="maxBatch"/> sequences: <see cref="Forward"/> records what <see cref="Backward"/> needs.</summary>
    /// <exception cref="InvalidOperationException">The network is a reduced-precision inference network (<see cref="Precision"/>).</exception>
    public SequenceWorkspace CreateWorkspace(int maxSteps, int maxBatch)
    {
        ThrowIfReduced("it cannot record for Backward; train the float32 network and convert it again");
        return new(this, _driver.Records, maxSteps, maxBatch, record: true);
    }

    /// <summary>
    /// Creates an inference workspace: <see cref="Forward"/> records nothing, and its scratch does not grow with the
    /// sequence length (O(max(B, 128)·G·H), plus two (T, B, D·Hout) buffers between layers when there is more than one).
    /// </summary>
    public SequenceWorkspace CreateInferenceWorkspace(int maxSteps, int maxBatch) => new(this, _driver.Records, maxSteps, maxBatch, record: false);

    internal CellDriver Driver => _driver;

    /// <summary>The weights of (layer, direction) (benchmarks of single phases use them).</summary>
    internal LayerWeights LayerAt(int layer, int direction = 0) => _layers[layer * Options.Directions + direction];

    private static Span<float> S(float* p, long n) => new(p, (int)n);
}
