using System.Buffers.Binary;
using System.Runtime.InteropServices;
using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.IO;

/// <remarks>
/// A reduced-precision state_dict is a float32 state_dict (PyTorch's names, the metadata of <see cref="Describe"/>)
/// with metadata <c>precision</c> = <c>bf16</c> or <c>int8</c>, in which every weight matrix (<c>weight_ih_*</c>,
/// <c>weight_hh_*</c>, <c>weight_hr_*</c>) is stored as its network uses it:
/// <list type="bullet">
/// <item>bf16: the matrix as <c>BF16</c> (rows, cols), the bit patterns of the rounded weights;</item>
/// <item>int8: the matrix as <c>I8</c> (rows, cols), codes in [-127, 127] (never -128), plus <c>&lt;name&gt;_scale</c>
/// as <c>F32</c> (rows), one finite, non-negative scale per row: w[r, c] = q[r, c] * scale[r].</item>
/// </list>
/// Biases and peepholes stay <c>F32</c>. Nothing else varies: a file either holds exactly these tensors (under a
/// prefix) or is refused, with the file, the tensor, its dtype and shape and the expected ones named, before the
/// network is allocated.
/// </remarks>
public static partial class StateDict
{
    /// <summary>The metadata key of a reduced file's precision: "bf16" or "int8" (absent, or "float32": a float32 state_dict).</summary>
    public const string PrecisionKey = "precision";

    /// <summary>What an int8 matrix's per-row scales are named: the matrix's name + "_scale" (e.g. "weight_ih_l0_scale").</summary>
    public const string ScaleSuffix = "_scale";

    /// <summary>
    /// The parameters in their stored form, in state_dict order (each int8 matrix followed by its scales), for
    /// <see cref="SafeTensorsWriter"/>: all <c>F32</c> for a float32 network; for a reduced one, its weight matrices
    /// exactly as its kernels use them (<see cref="RecurrentNetwork.GetReducedWeights"/>), so a network loaded from them
    /// computes bitwise what this one does.
    /// </summary>
    public static IEnumerable<SafeTensor> StoredTensors(RecurrentNetwork network, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(prefix);
        if (network.Precision == Precision.Float32) return Tensors(network, prefix).Select(t => SafeTensor.F32(t.Name, t.Shape, t.Data));
        var reduced = network.GetReducedWeights().ToDictionary(t => t.Name, StringComparer.Ordinal);
        return Reduced();

        IEnumerable<SafeTensor> Reduced()
        {
            foreach (var e in network.Parameters.Entries)
            {
                string name = prefix + e.Name;
                if (!reduced.TryGetValue(e.Name, out var q))
                {
                    if (RecurrentNetwork.IsWeightMatrix(e.Name))
                        throw new InvalidOperationException($"the {network.Precision.Name()} network has no stored form of '{e.Name}'.");
                    yield return SafeTensor.F32(name, e.Shape, network.Parameters.Data.AsMemory(e.Offset, e.Length));
                }
                else if (q.Precision == Precision.Int8)
                {
                    yield return SafeTensor.I8(name, [q.Rows, q.Cols], q.Codes.ToArray());
                    yield return SafeTensor.F32(name + ScaleSuffix, [q.Rows], q.Scales.ToArray());
                }
                else
                {
                    yield return SafeTensor.BF16(name, [q.Rows, q.Cols], q.Bf16.ToArray());
                }
            }
        }
    }

    /// <summary>The precision a file's metadata declares: <c>precision</c> = "float32", "bf16" or "int8"; absent means float32.</summary>
    /// <exception cref="InvalidDataException">Another value (named with <paramref name="source"/>).</exception>
    public static Precision ReadPrecision(IReadOnlyDictionary<string, string> metadata, string source)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (!metadata.TryGetValue(PrecisionKey, out var v)) return Precision.Float32;
        foreach (var p in new[] { Precision.Float32, Precision.BFloat16, Precision.Int8 })
            if (v == p.Name()) return p;
        throw new InvalidDataException($"{source}: metadata '{PrecisionKey}' = '{Shorten(v)}' is not float32, bf16 or int8.");
    }

    /// <summary>
    /// Reads a state_dict file written by <see cref="Save"/> (or any with its metadata): the network its metadata
    /// describes, in the precision it declares (float32 when it declares none).
    /// </summary>
    /// <exception cref="InvalidDataException">The file is malformed or does not hold that network; the message names the file.</exception>
    public static RecurrentNetwork Read(string path, KernelSet? kernels = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SafeTensorsFile file;
        RecurrentOptions options;
        try
        {
            file = SafeTensorsFile.Read(path);
            options = ReadOptions(file.Metadata);
        }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        return LoadNetwork(file, options, path, "", kernels);
    }

    /// <summary>
    /// A network of <paramref name="options"/> from the tensors under <paramref name="prefix"/>, in the precision the
    /// file's metadata declares: float32 (<see cref="Load"/>, which also converts F64, F16 and BF16 tensors), or bf16 /
    /// int8 (<see cref="RecurrentNetwork.FromReduced"/>, after <see cref="CheckHolds(SafeTensorsFile, RecurrentOptions, Precision, string, string)"/>
    /// and a check of every int8 code and scale). <paramref name="source"/> names the file in messages.
    /// </summary>
    /// <exception cref="InvalidDataException">The file does not hold the network, or holds bad values; nothing large is allocated first.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The network would exceed <see cref="RecurrentOptions.MemoryBudget"/>.</exception>
    public static RecurrentNetwork LoadNetwork(SafeTensorsFile file, RecurrentOptions options, string source, string prefix = "", KernelSet? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(prefix);
        options.Validate();
        var precision = ReadPrecision(file.Metadata, source);
        if (precision == Precision.Float32)
        {
            try
            {
                foreach (var t in file.Tensors)
                    if (t.DType == SafeTensorsDType.I8 && IsOurs(t.Name, prefix, out string bare) && RecurrentNetwork.IsWeightMatrix(bare))
                        throw new InvalidDataException($"'{t.Name}' is I8, but the metadata's '{PrecisionKey}' is "
                            + (file.Metadata.ContainsKey(PrecisionKey) ? "float32" : "absent (float32)") + $"; an int8 file declares '{PrecisionKey}' = int8.");
                CheckHolds(file, options, prefix);
                var net = new RecurrentNetwork(options, 0, kernels);
                Load(net, file, prefix);
                return net;
            }
            catch (InvalidDataException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
        }
        CheckHolds(file, options, precision, prefix, source);
        CheckValues(file, options, precision, prefix, source);
        var weights = new List<QuantizedTensor>();
        var floats = new Dictionary<string, float[]>(StringComparer.Ordinal);
        try
        {
            foreach (var e in Expected(options, precision, prefix))
            {
                string bare = e.Name[prefix.Length..];
                if (e.ScaleOf is not null) continue;
                if (e.DType == SafeTensorsDType.F32)
                {
                    floats[bare] = file.ReadFloats(e.Name);
                    continue;
                }
                int rows = (int)e.Shape[0], cols = (int)e.Shape[1];
                var bytes = file.GetBytes(e.Name).Span;
                if (e.DType == SafeTensorsDType.I8)
                {
                    weights.Add(QuantizedTensor.FromInt8(bare, rows, cols, MemoryMarshal.Cast<byte, sbyte>(bytes), file.ReadFloats(e.Name + ScaleSuffix)));
                }
                else
                {
                    var bits = new ushort[rows * cols];
                    for (int i = 0; i < bits.Length; i++) bits[i] = BinaryPrimitives.ReadUInt16LittleEndian(bytes.Slice(2 * i, 2));
                    weights.Add(QuantizedTensor.FromBf16(bare, rows, cols, bits));
                }
            }
            return RecurrentNetwork.FromReduced(options, precision, weights, floats, kernels);
        }
        catch (ArgumentException e) when (e.ParamName is "weights" or "floats" or "codes" or "scales" or "bits")
        {
            // Not reached for a file that passed the checks above; kept so a gap in them is still a file error.
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Checks, before any network is built, that <paramref name="file"/> holds exactly the tensors of a
    /// <paramref name="precision"/> network of <paramref name="options"/> under <paramref name="prefix"/>: every weight
    /// matrix as BF16 or I8 (rows, cols), every int8 matrix's F32 scales (rows), every bias and peephole F32; and no other
    /// <c>weight_*</c>, <c>bias_*</c> or <c>*_scale</c> tensor. Cost O(tensors in the file) whatever the options say.
    /// Float32 is <see cref="CheckHolds(SafeTensorsFile, RecurrentOptions, string)"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">A tensor is missing, extra, or of another dtype or shape: the message names
    /// <paramref name="source"/>, the first five such tensors with their dtype and shape, and the expected ones.</exception>
    public static void CheckHolds(SafeTensorsFile file, RecurrentOptions options, Precision precision, string prefix = "", string source = "the file")
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(prefix);
        if (precision == Precision.Float32)
        {
            try { CheckHolds(file, options, prefix); }
            catch (InvalidDataException e) { throw new InvalidDataException($"{source}: {e.Message}", e); }
            return;
        }
        var problems = new List<string>();
        var expected = new HashSet<string>(StringComparer.Ordinal);
        bool complete = true;
        foreach (var e in Expected(options, precision, prefix))
        {
            // Each expected tensor must be a distinct tensor of the file: a few past their count the walk stops, so a
            // network of a million layers in the metadata costs no more than the file's tensors.
            if (expected.Count == file.Tensors.Count + 16)
            {
                problems.Insert(0, $"the network needs more tensors than the file's {file.Tensors.Count}");
                complete = false;
                break;
            }
            expected.Add(e.Name);
            if (!file.TryGetTensor(e.Name, out var t))
                problems.Add($"missing '{e.Name}' ({Show(e)})");
            else if (t.DType != e.DType || !t.Shape.SequenceEqual(e.Shape))
                problems.Add($"'{e.Name}' is {t.DType.ToFormatString()} {t.ShapeString}, expected {Show(e)}");
        }
        if (complete)
        {
            foreach (var t in file.Tensors)
            {
                if (!IsOurs(t.Name, prefix, out string bare) || expected.Contains(t.Name)) continue;
                bool scale = bare.EndsWith(ScaleSuffix, StringComparison.Ordinal);
                problems.Add($"unexpected '{t.Name}' ({t.DType.ToFormatString()} {t.ShapeString})"
                    + (scale && precision == Precision.BFloat16 ? ": a bf16 file has no scales" : scale ? ": no int8 matrix of this network has that name" : ""));
            }
        }
        if (problems.Count > 0)
            throw new InvalidDataException(
                $"{source}: the file does not hold a {precision.Name()} {options.CellName} state_dict of this shape "
                + $"(metadata '{PrecisionKey}' = {precision.Name()}; {options.NumLayers} layer(s) x {options.Directions} direction(s), input {options.InputSize}, hidden {options.HiddenSize}): "
                + string.Join("; ", problems.Take(5)) + (problems.Count > 5 ? $"; and {problems.Count - 5} more problems." : "."));
    }

    /// <summary>Every int8 code must be in [-127, 127] and every scale finite and >= 0 (checked on the file's bytes, before anything is built).</summary>
    private static void CheckValues(SafeTensorsFile file, RecurrentOptions options, Precision precision, string prefix, string source)
    {
        if (precision != Precision.Int8) return;
        foreach (var e in Expected(options, precision, prefix))
        {
            if (e.DType == SafeTensorsDType.I8)
            {
                int at = file.GetBytes(e.Name).Span.IndexOf((byte)0x80);
                if (at >= 0)
                    throw new InvalidDataException($"{source}: '{e.Name}' [{at / e.Shape[1]}, {at % e.Shape[1]}] = -128: symmetric int8 codes are in [-127, 127].");
            }
            else if (e.ScaleOf is not null)
            {
                float[] scales = file.ReadFloats(e.Name);
                for (int r = 0; r < scales.Length; r++)
                    if (!float.IsFinite(scales[r]) || scales[r] < 0)
                        throw new InvalidDataException($"{source}: '{e.Name}' [{r}] = {scales[r].ToString(System.Globalization.CultureInfo.InvariantCulture)}: "
                            + $"the scales of '{e.ScaleOf}' must be finite and non-negative.");
            }
        }
    }

    /// <summary>One tensor a reduced file must hold: name (with prefix), dtype, shape; for a scale, the matrix it scales.</summary>
    private readonly record struct ExpectedTensor(string Name, SafeTensorsDType DType, long[] Shape, string? ScaleOf);

    /// <summary>
    /// The tensors of a reduced file in state_dict order (the order of <see cref="RecurrentOptions.ParameterShapes"/>),
    /// made lazily: a caller can stop after as many as the file holds.
    /// </summary>
    private static IEnumerable<ExpectedTensor> Expected(RecurrentOptions o, Precision precision, string prefix)
    {
        long gh = (long)o.GateCount * o.HiddenSize;
        var weightType = precision == Precision.Int8 ? SafeTensorsDType.I8 : SafeTensorsDType.BF16;
        for (int l = 0; l < o.NumLayers; l++)
        {
            for (int d = 0; d < o.Directions; d++)
            {
                string sfx = $"_l{l}" + (d == 1 ? "_reverse" : "");
                foreach (var e in Matrix("weight_ih" + sfx, gh, o.LayerInput(l))) yield return e;
                foreach (var e in Matrix("weight_hh" + sfx, gh, o.OutputHidden)) yield return e;
                if (o.Bias)
                {
                    yield return new(prefix + "bias_ih" + sfx, SafeTensorsDType.F32, [gh], null);
                    yield return new(prefix + "bias_hh" + sfx, SafeTensorsDType.F32, [gh], null);
                }
                if (o.ProjSize > 0)
                    foreach (var e in Matrix("weight_hr" + sfx, o.ProjSize, o.HiddenSize)) yield return e;
                if (o.Peepholes) yield return new(prefix + "weight_peep" + sfx, SafeTensorsDType.F32, [3, o.HiddenSize], null);
            }
        }

        IEnumerable<ExpectedTensor> Matrix(string name, long rows, long cols)
        {
            yield return new(prefix + name, weightType, [rows, cols], null);
            if (precision == Precision.Int8) yield return new(prefix + name + ScaleSuffix, SafeTensorsDType.F32, [rows], prefix + name);
        }
    }

    private static string Show(ExpectedTensor e) =>
        $"{e.DType.ToFormatString()} [{string.Join(", ", e.Shape)}]" + (e.ScaleOf is null ? "" : $": the per-row scales of '{e.ScaleOf}'");

    /// <summary>Whether a tensor name is a recurrent parameter or scale under <paramref name="prefix"/> (weight_*, bias_*, *_scale).</summary>
    private static bool IsOurs(string name, string prefix, out string bare)
    {
        bare = name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : "";
        return bare.Length > 0 && (bare.StartsWith("weight_", StringComparison.Ordinal) || bare.StartsWith("bias_", StringComparison.Ordinal)
            || bare.EndsWith(ScaleSuffix, StringComparison.Ordinal));
    }

    private static string Shorten(string value) => value.Length <= 60 ? value : string.Concat(value.AsSpan(0, 60), $"… ({value.Length} characters)");
}
