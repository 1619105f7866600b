using RnnSimd.Kernels;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

public sealed unsafe partial class RecurrentNetwork
{
    /// <summary>How the weight matrices are stored: float32 for a trainable network, bf16 or int8 for one made by <see cref="ToInference"/> or <see cref="FromReduced"/>.</summary>
    public Precision Precision { get; } = Precision.Float32;

    /// <summary>A reduced-precision network: parameters hold the dequantized weights, the layers the packed codes.</summary>
    private RecurrentNetwork(RecurrentOptions options, KernelSet kernels, Precision precision, IReadOnlyDictionary<string, QuantizedTensor> weights,
        Func<string, float[]?> floats)
    {
        options.Validate();
        RecurrentOptions.CheckBudget(options.NetworkBytes(), nameof(options),
            $"a {options.CellName} network of {options.NumLayers} layer(s) x {options.Directions}, input {options.InputSize}, hidden {options.HiddenSize}");
        Options = options;
        Kernels = kernels;
        if (!Kernels.IsSupported) throw new ArgumentException($"kernel set '{Kernels.Name}' is not supported here.", nameof(kernels));
        Precision = precision;
        Parameters = new Arena(options.ParameterShapes());
        foreach (var e in Parameters.Entries)
        {
            var dst = Parameters.View(e);
            if (IsWeightMatrix(e.Name))
            {
                if (!weights.TryGetValue(e.Name, out var t))
                    throw new ArgumentException($"no {precision.Name()} tensor '{e.Name}' (expected {e.ShapeText}).", nameof(weights));
                if (t.Precision != precision || t.Rows != e.Shape[0] || t.Cols != e.Shape[1])
                    throw new ArgumentException($"tensor '{e.Name}' is {t.Precision.Name()} ({t.Rows}, {t.Cols}); expected {precision.Name()} {e.ShapeText}.", nameof(weights));
                t.Dequantize(dst);
            }
            else
            {
                float[] src = floats(e.Name) ?? throw new ArgumentException($"no float32 tensor '{e.Name}' (expected {e.ShapeText}).", nameof(floats));
                if (src.Length != dst.Length)
                    throw new ArgumentException($"tensor '{e.Name}' has {src.Length} values; expected {e.ShapeText} = {dst.Length}.", nameof(floats));
                src.AsSpan().CopyTo(dst);
            }
        }
        foreach (var name in weights.Keys)
            if (!Parameters.Contains(name) || !IsWeightMatrix(name))
                throw new ArgumentException(Parameters.Contains(name)
                    ? $"tensor '{name}' is not a weight matrix; biases and peepholes are given as float32 (floats)."
                    : $"tensor '{name}' is not a parameter of this {options.CellName} network.", nameof(weights));
        _driver = CellRegistry.Get(options.Cell).Driver(options);
        _layers = new LayerWeights[options.NumLayers * options.Directions];
        for (int l = 0; l < options.NumLayers; l++)
            for (int d = 0; d < options.Directions; d++)
                _layers[l * options.Directions + d] = _driver.Pack(options, l, d, Parameters, Kernels, n => weights[n], precision);
    }

    /// <summary>Whether a parameter is one of the matrices a reduced precision stores (weight_ih, weight_hh, weight_hr); biases and peepholes stay float32.</summary>
    public static bool IsWeightMatrix(string name) =>
        name.StartsWith("weight_ih_", StringComparison.Ordinal) || name.StartsWith("weight_hh_", StringComparison.Ordinal)
        || name.StartsWith("weight_hr_", StringComparison.Ordinal);

    /// <summary>
    /// Converts this float32 network for inference in <paramref name="precision"/>: a new, independent network whose
    /// weight matrices are rounded to bf16 or quantized to int8 (<see cref="QuantizedTensor.Quantize"/>); biases and
    /// peepholes are copied. Its <see cref="Parameters"/> hold the values it computes with (the dequantized weights), so
    /// the difference from this network is the quantization error. It runs <see cref="Step"/>, <see cref="MultiStreamStepper"/>
    /// and inference <see cref="Forward"/> (every row of every step by the batch-1 streaming step, on one thread), is
    /// shared by threads like any network, and cannot be trained. Float32 gives a plain copy.
    /// </summary>
    /// <exception cref="InvalidOperationException">This network is itself reduced.</exception>
    /// <exception cref="ArgumentException">A weight is NaN or infinite (int8).</exception>
    public RecurrentNetwork ToInference(Precision precision)
    {
        ThrowIfReduced("convert the float32 network it was made from instead");
        if (precision == Precision.Float32)
        {
            var copy = new RecurrentNetwork(Options, 0, Kernels);
            Parameters.Data.CopyTo(copy.Parameters.Data, 0);
            copy.ParametersChanged();
            return copy;
        }
        var weights = new Dictionary<string, QuantizedTensor>();
        foreach (var e in Parameters.Entries)
            if (IsWeightMatrix(e.Name))
                weights[e.Name] = QuantizedTensor.Quantize(e.Name, precision, Parameters.View(e), e.Shape[0], e.Shape[1]);
        return new RecurrentNetwork(Options, Kernels, precision, weights, n => Parameters[n].ToArray());
    }

    /// <summary>
    /// A reduced-precision inference network from stored tensors (e.g. a file): <paramref name="weights"/> holds every
    /// weight matrix of <paramref name="options"/> in <paramref name="precision"/>, <paramref name="floats"/> every other
    /// parameter (biases, peepholes) by name. Its products are bitwise those of the network the tensors were exported
    /// from (<see cref="GetReducedWeights"/>).
    /// </summary>
    /// <exception cref="ArgumentException">A tensor is missing, extra, of another precision or shape (named, with the expected shape).</exception>
    public static RecurrentNetwork FromReduced(RecurrentOptions options, Precision precision, IEnumerable<QuantizedTensor> weights,
        IReadOnlyDictionary<string, float[]> floats, KernelSet? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(floats);
        if (precision == Precision.Float32)
            throw new ArgumentException("precision must be BFloat16 or Int8; a float32 network loads its parameters directly.", nameof(precision));
        var map = new Dictionary<string, QuantizedTensor>();
        foreach (var t in weights)
            if (!map.TryAdd(t.Name, t)) throw new ArgumentException($"tensor '{t.Name}' is given twice.", nameof(weights));
        foreach (var name in floats.Keys)
            if (IsWeightMatrix(name))
                throw new ArgumentException($"'{name}' is a weight matrix; give it as a {precision.Name()} tensor in weights.", nameof(floats));
        return new RecurrentNetwork(options, kernels ?? KernelSet.Default, precision, map,
            n => floats.TryGetValue(n, out var v) ? v : null);
    }

    /// <summary>The weight matrices of a reduced network in their stored form, read back from what its kernels use (for saving).</summary>
    /// <exception cref="InvalidOperationException">The network is float32.</exception>
    public IReadOnlyList<QuantizedTensor> GetReducedWeights()
    {
        if (Precision == Precision.Float32)
            throw new InvalidOperationException("a float32 network has no reduced weights; convert it with ToInference first.");
        return _layers.SelectMany(w => w.ExportReduced()).ToList();
    }

    /// <summary>Bytes of packed weights one batch-1 step of every layer reads (the memory-bound part of a step).</summary>
    public long StepWeightBytes => _layers.Sum(w => w.StepWeightBytes);

    private void ThrowIfReduced(string what)
    {
        if (Precision != Precision.Float32)
            throw new InvalidOperationException($"this is a {Precision.Name()} inference network: {what}.");
    }

    internal QuantScratch[] CreateQuantScratch()
    {
        var q = new QuantScratch[_layers.Length];
        for (int i = 0; i < q.Length; i++) q[i] = new QuantScratch(_layers[i]);
        return q;
    }

    /// <summary>A reduced step of a state: batch 1 in the state's own buffers, otherwise row by row in the state's scratch.</summary>
    private void StepReduced(RecurrentState state, float* x0, Span<float> output)
    {
        var o = Options;
        int B = state.Batch, Hout = o.OutputHidden, L = o.NumLayers;
        var q = state.Q!;
        if (B == 1)
        {
            float* x = x0;
            for (int l = 0; l < L; l++)
            {
                var w = _layers[l];
                var st = state.StepBuffers(l);
                float* xh = state.XH[l];
                if (x != xh) new ReadOnlySpan<float>(x, w.In).CopyTo(new Span<float>(xh, w.In));
                st.HNew = xh + w.In;
                _driver.StreamStep(w, xh, ref st);
                x = st.HNew;
            }
            new ReadOnlySpan<float>(x, Hout).CopyTo(output);
            return;
        }
        var hOut = stackalloc float*[L];
        var h = stackalloc float*[L];
        var c = stackalloc float*[L];
        for (int l = 0; l < L; l++) { h[l] = hOut[l] = state.XH[l]; c[l] = state.C[l]; }
        StepRowsReduced(B, x0, h, hOut, c, q);
        new ReadOnlySpan<float>(hOut[L - 1], B * Hout).CopyTo(output);
    }

    /// <summary>B rows (x (B, I), per layer h (B, Hout) in, hOut out (may be h), c (B, H) in place), each by the batch-1 streaming step.</summary>
    private void StepRowsReduced(int batch, float* x, float** h, float** hOut, float** c, QuantScratch[] q)
    {
        var o = Options;
        int L = o.NumLayers, H = o.HiddenSize, Hout = o.OutputHidden;
        bool cell = c != null && (_driver.Records & Cells.CellRecords.CellState) != 0; // not HasFlag: it boxes in tier-0 code (48 B a call)
        for (int b = 0; b < batch; b++)
        {
            float* xb = x + (long)b * o.InputSize;
            for (int l = 0; l < L; l++)
            {
                var w = _layers[l];
                var s = q[l];
                var st = s.Row();
                new ReadOnlySpan<float>(xb, w.In).CopyTo(new Span<float>(s.XH, w.In));
                new ReadOnlySpan<float>(h[l] + (long)b * Hout, Hout).CopyTo(new Span<float>(st.HNew, Hout));
                if (cell) new ReadOnlySpan<float>(c[l] + (long)b * H, H).CopyTo(new Span<float>(s.C, H));
                _driver.StreamStep(w, s.XH, ref st);
                new ReadOnlySpan<float>(st.HNew, Hout).CopyTo(new Span<float>(hOut[l] + (long)b * Hout, Hout));
                if (cell) new ReadOnlySpan<float>(s.C, H).CopyTo(new Span<float>(c[l] + (long)b * H, H));
                xb = st.HNew;
            }
        }
    }
}
