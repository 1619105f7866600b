using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using RnnSimd.IO;
using RnnSimd.Memory;

namespace RnnSimd.Training;

/// <summary>
/// Your own sequences to train on: N sequences of T steps of I inputs, with targets either at every step (per step)
/// or one per sequence (read at each sequence's last valid step), real-valued (regression) or class indexes
/// (classification), and optional lengths in 1..T (variable-length sequences padded to T; padding is never read by the
/// network and never counted by a loss). Immutable: the constructors copy what they are given, so the
/// <see cref="ContentHash"/> a checkpoint stores stays true.
/// </summary>
/// <remarks>
/// <para>Shapes, row-major, sequence-major as PyTorch's <c>batch_first</c> tensors: inputs (N, T, I); regression
/// targets (N, T, O) per step or (N, O) per sequence (in a file also (N): one value); classification targets (N, T) per step or (N) per sequence;
/// lengths (N).</para>
/// <para>As a safetensors file (<see cref="Load(string, SequenceTargetKind?)"/>): tensors <c>inputs</c> (F32, F64, F16 or BF16), <c>targets</c> (a
/// float dtype: regression; an integer dtype I8..I64, U8..U64: classification, unless the kind is given) and optionally
/// <c>lengths</c> (an integer dtype). Other tensors and the metadata are ignored.</para>
/// </remarks>
public sealed class SequenceDataset
{
    /// <summary>The most classes a classification dataset may have (the head is H x classes; labels beyond this are far more likely a corrupt file than a label space).</summary>
    public const int MaxClasses = 65536;

    private readonly float[] _inputs;   // (N, T, I)
    private readonly float[] _values;   // regression: (N, T, O) per step or (N, O) per sequence; else empty
    private readonly int[] _classes;    // classification: (N, T) per step or (N) per sequence; else empty
    private readonly int[] _lengths;    // (N) in 1..T, or empty: every sequence has T steps
    private string? _hash;

    private SequenceDataset(float[] inputs, float[] values, int[] classes, int[] lengths, int count, int steps, int inputSize,
        int outputs, SequenceTargetKind kind, bool perStep)
    {
        (_inputs, _values, _classes, _lengths) = (inputs, values, classes, lengths);
        (Count, Steps, InputSize, Outputs, Kind, PerStep) = (count, steps, inputSize, outputs, kind, perStep);
    }

    /// <summary>N, the number of sequences.</summary>
    public int Count { get; }
    /// <summary>T, the steps of every sequence (the padded length when <see cref="HasLengths"/>).</summary>
    public int Steps { get; }
    /// <summary>I, the inputs per step.</summary>
    public int InputSize { get; }
    /// <summary>O: the target values per prediction (regression) or the number of classes (classification); the head's width.</summary>
    public int Outputs { get; }
    /// <summary>Regression or classification.</summary>
    public SequenceTargetKind Kind { get; }
    /// <summary>True: a target at every step; false: one target per sequence, for its last valid step.</summary>
    public bool PerStep { get; }
    /// <summary>Whether the sequences have their own lengths (else every one has <see cref="Steps"/> steps).</summary>
    public bool HasLengths => _lengths.Length > 0;

    /// <summary>The inputs, (N, T, I).</summary>
    public ReadOnlySpan<float> Inputs => _inputs;
    /// <summary>Regression targets, (N, T, O) per step or (N, O) per sequence; empty for classification.</summary>
    public ReadOnlySpan<float> TargetValues => _values;
    /// <summary>Classification targets, (N, T) per step or (N) per sequence; empty for regression.</summary>
    public ReadOnlySpan<int> TargetClasses => _classes;
    /// <summary>The lengths, (N) in 1..T; empty when every sequence has T steps.</summary>
    public ReadOnlySpan<int> Lengths => _lengths;

    /// <summary>The valid steps of sequence <paramref name="n"/>.</summary>
    public int LengthOf(int n) => _lengths.Length == 0 ? Steps : _lengths[n];

    /// <summary>"regression" or "classification".</summary>
    public string KindName => Kind == SequenceTargetKind.Regression ? "regression" : "classification";

    /// <summary>A one-line description: N, T, I, O, kind, targets per step or per sequence, lengths.</summary>
    public string Describe() =>
        $"{Count} sequences of {Steps} steps x {InputSize} inputs, {KindName} "
        + (Kind == SequenceTargetKind.Regression ? $"of {Outputs} value(s)" : $"into {Outputs} classes")
        + (PerStep ? " at every step" : " per sequence") + (HasLengths ? ", with lengths" : "");

    /// <summary>
    /// SHA-256 (first 128 bits, hex) of everything that defines the data: N, T, I, O, kind, per step or per sequence,
    /// and every input, target and length. Checkpoints store it, so a run cannot be resumed on other data.
    /// </summary>
    public string ContentHash => _hash ??= ComputeHash();

    // ---------------- construction ----------------

    /// <summary>A regression dataset from arrays (copied).</summary>
    /// <param name="inputs">(N, T, I).</param>
    /// <param name="targets">(N, T, O) when <paramref name="perStep"/>, else (N, O).</param>
    /// <param name="count">N, at least 1.</param>
    /// <param name="steps">T, at least 1.</param>
    /// <param name="inputSize">I, at least 1.</param>
    /// <param name="outputs">O, at least 1.</param>
    /// <param name="perStep">A target at every step, or one per sequence (for its last valid step).</param>
    /// <param name="lengths">(N) in 1..T, or empty for all T.</param>
    /// <exception cref="ArgumentException">A length does not match its shape, a dimension is below 1, a value is not finite, or a length is out of range.</exception>
    public static SequenceDataset ForRegression(ReadOnlySpan<float> inputs, ReadOnlySpan<float> targets, int count, int steps, int inputSize,
        int outputs, bool perStep, ReadOnlySpan<int> lengths = default)
    {
        CheckDims(count, steps, inputSize, outputs);
        CheckLength(inputs.Length, nameof(inputs), "(N, T, I)", count, steps, inputSize);
        if (perStep) CheckLength(targets.Length, nameof(targets), "(N, T, O)", count, steps, outputs);
        else CheckLength(targets.Length, nameof(targets), "(N, O)", count, outputs);
        CheckFinite(inputs, nameof(inputs));
        CheckFinite(targets, nameof(targets));
        CheckLengths(lengths, count, steps);
        return new SequenceDataset(inputs.ToArray(), targets.ToArray(), [], lengths.ToArray(), count, steps, inputSize, outputs,
            SequenceTargetKind.Regression, perStep);
    }

    /// <summary>A classification dataset from arrays (copied).</summary>
    /// <param name="inputs">(N, T, I).</param>
    /// <param name="targets">(N, T) class indexes when <paramref name="perStep"/>, else (N).</param>
    /// <param name="count">N, at least 1.</param>
    /// <param name="steps">T, at least 1.</param>
    /// <param name="inputSize">I, at least 1.</param>
    /// <param name="classes">The number of classes, 2..<see cref="MaxClasses"/>.</param>
    /// <param name="perStep">A target at every step, or one per sequence (for its last valid step).</param>
    /// <param name="lengths">(N) in 1..T, or empty for all T.</param>
    /// <exception cref="ArgumentException">A length does not match its shape, a dimension is out of range, an input is not finite, a target is not a class, or a length is out of range.</exception>
    public static SequenceDataset ForClassification(ReadOnlySpan<float> inputs, ReadOnlySpan<int> targets, int count, int steps, int inputSize,
        int classes, bool perStep, ReadOnlySpan<int> lengths = default)
    {
        CheckDims(count, steps, inputSize, 1);
        if (classes < 2 || classes > MaxClasses)
            throw new ArgumentException($"classes must be in 2..{MaxClasses}, got {classes}.", nameof(classes));
        CheckLength(inputs.Length, nameof(inputs), "(N, T, I)", count, steps, inputSize);
        if (perStep) CheckLength(targets.Length, nameof(targets), "(N, T)", count, steps);
        else CheckLength(targets.Length, nameof(targets), "(N)", count);
        CheckFinite(inputs, nameof(inputs));
        for (int i = 0; i < targets.Length; i++)
            if ((uint)targets[i] >= (uint)classes)
                throw new ArgumentException($"targets[{i}] = {targets[i]} is not a class in 0..{classes - 1}.", nameof(targets));
        CheckLengths(lengths, count, steps);
        return new SequenceDataset(inputs.ToArray(), [], targets.ToArray(), lengths.ToArray(), count, steps, inputSize, classes,
            SequenceTargetKind.Classification, perStep);
    }

    private static void CheckDims(int count, int steps, int inputSize, int outputs)
    {
        if (count < 1) throw new ArgumentException($"count (N) must be at least 1, got {count}.", nameof(count));
        if (steps < 1) throw new ArgumentException($"steps (T) must be at least 1, got {steps}.", nameof(steps));
        if (inputSize < 1) throw new ArgumentException($"inputSize (I) must be at least 1, got {inputSize}.", nameof(inputSize));
        if (outputs < 1) throw new ArgumentException($"outputs (O) must be at least 1, got {outputs}.", nameof(outputs));
    }

    private static void CheckLength(int actual, string name, string dims, int a, int b = 1, int c = 1)
    {
        long expected = (long)a * b * c;
        if (actual == expected) return;
        string values = dims.Count(ch => ch == ',') switch { 0 => $"({a})", 1 => $"({a}, {b})", _ => $"({a}, {b}, {c})" };
        throw new ArgumentException($"{name} has {actual} values, expected {dims} = {values} = {expected}.", name);
    }

    private static void CheckFinite(ReadOnlySpan<float> values, string name)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
                throw new ArgumentException($"{name}[{i}] is {values[i].ToString(CultureInfo.InvariantCulture)}; every value must be finite.", name);
    }

    private static void CheckLengths(ReadOnlySpan<int> lengths, int count, int steps)
    {
        if (lengths.IsEmpty) return;
        if (lengths.Length != count) throw new ArgumentException($"lengths has {lengths.Length} entries, expected (N) = ({count}).", nameof(lengths));
        for (int n = 0; n < lengths.Length; n++)
            if (lengths[n] < 1 || lengths[n] > steps)
                throw new ArgumentException($"lengths[{n}] = {lengths[n]} is outside 1..T = 1..{steps}.", nameof(lengths));
    }

    // ---------------- the file ----------------

    /// <summary>
    /// Reads a dataset from a safetensors file: <c>inputs</c> (N, T, I), <c>targets</c> and optionally <c>lengths</c> (N),
    /// all read with the hostile-input-safe reader. Regression or classification follows the targets' dtype (float or
    /// integer) unless <paramref name="kind"/> is given: given regression, integer targets are read as values; given
    /// classification, float targets must hold whole numbers. Regression targets are (N, T, O) per step or (N, O) per
    /// sequence ((N) for one value); classification targets (N, T) per step or (N) per sequence, with classes = the largest target + 1.
    /// Every shape, dtype and value is checked before the arrays are made.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is malformed, or a tensor is missing or has the wrong dtype, shape or values; the message names the file, the tensor, its dtype and shape and what was expected.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static SequenceDataset Load(string path, SequenceTargetKind? kind = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SafeTensorsFile file;
        try { file = SafeTensorsFile.Read(path); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: not a valid safetensors file: {e.Message}", e); }
        return Load(file, path, kind);
    }

    /// <summary>As <see cref="Load(string, SequenceTargetKind?)"/>, from a file already read; <paramref name="name"/> names it in messages.</summary>
    /// <exception cref="InvalidDataException">A tensor is missing or has the wrong dtype, shape or values.</exception>
    public static SequenceDataset Load(SafeTensorsFile file, string name, SequenceTargetKind? kind = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        const string Layout = "a sequence dataset holds 'inputs' (N, T, I) F32, 'targets' (N, T, O), (N, O) or (N) float for regression, (N, T) or (N) integer for classification, and optionally 'lengths' (N) integer in 1..T";
        if (!file.TryGetTensor("inputs", out var xi))
            throw new InvalidDataException($"{name}: no tensor 'inputs'; {Layout}. The file holds: {Names(file)}.");
        if (!xi.DType.IsReadableAsFloat())
            throw new InvalidDataException($"{name}: 'inputs' has dtype {xi.DType.ToFormatString()} {xi.ShapeString}, expected F32 (or F64, F16, BF16) of shape (N, T, I).");
        if (xi.Shape.Count != 3 || xi.Shape.Any(d => d < 1))
            throw new InvalidDataException($"{name}: 'inputs' {xi.DType.ToFormatString()} has shape {xi.ShapeString}, expected (N, T, I) with N, T, I >= 1.");
        if (xi.ElementCount > Array.MaxLength)
            throw new InvalidDataException($"{name}: 'inputs' {xi.ShapeString} has {xi.ElementCount} values; at most {Array.MaxLength} are supported.");
        int N = (int)xi.Shape[0], T = (int)xi.Shape[1], I = (int)xi.Shape[2];

        if (!file.TryGetTensor("targets", out var yi))
            throw new InvalidDataException($"{name}: no tensor 'targets'; {Layout}. The file holds: {Names(file)}.");
        bool isFloat = yi.DType.IsReadableAsFloat(), isInt = IsInteger(yi.DType);
        string yd = yi.DType.ToFormatString();
        if (!isFloat && !isInt)
            throw new InvalidDataException($"{name}: 'targets' has dtype {yd} {yi.ShapeString}, expected a float dtype (regression) or an integer dtype (classification).");
        var k = kind ?? (isFloat ? SequenceTargetKind.Regression : SequenceTargetKind.Classification);
        int[] shape = yi.Shape.Select(d => (int)Math.Min(d, int.MaxValue)).ToArray();
        bool perStep;
        int outputs;
        if (k == SequenceTargetKind.Regression)
        {
            perStep = shape.Length == 3;
            bool ok = (shape.Length == 3 && shape[0] == N && shape[1] == T && shape[2] >= 1) || (shape.Length == 2 && shape[0] == N && shape[1] >= 1)
                || (shape.Length == 1 && shape[0] == N);
            if (!ok)
                throw new InvalidDataException($"{name}: regression 'targets' {yd} has shape {yi.ShapeString}, expected (N, T, O) = ({N}, {T}, O) per step or (N, O) = ({N}, O) or (N) = ({N}) per sequence (inputs are {xi.ShapeString}).");
            outputs = shape.Length == 1 ? 1 : shape[^1];
        }
        else
        {
            perStep = shape.Length == 2;
            bool ok = (shape.Length == 2 && shape[0] == N && shape[1] == T) || (shape.Length == 1 && shape[0] == N);
            if (!ok)
                throw new InvalidDataException($"{name}: classification 'targets' {yd} has shape {yi.ShapeString}, expected (N, T) = ({N}, {T}) per step or (N) = ({N}) per sequence (inputs are {xi.ShapeString}).");
            outputs = 0;
        }

        int[] lengths = [];
        if (file.TryGetTensor("lengths", out var li))
        {
            string ld = li.DType.ToFormatString();
            if (!IsInteger(li.DType))
                throw new InvalidDataException($"{name}: 'lengths' has dtype {ld} {li.ShapeString}, expected an integer dtype (I64, I32, ...) of shape (N) = ({N}).");
            if (li.Shape.Count != 1 || li.Shape[0] != N)
                throw new InvalidDataException($"{name}: 'lengths' {ld} has shape {li.ShapeString}, expected (N) = ({N}).");
            lengths = new int[N];
            ReadIntegers(file, li, lengths, name, "lengths", 1, T, $"1..T = 1..{T}");
        }

        // Every shape is known to match: the arrays below are no larger than the file's own tensors (at most 4x an I8 tensor).
        var inputs = new float[N * (long)T * I];
        file.ReadFloats("inputs", inputs);
        CheckFinite(inputs, name, "inputs", [N, T, I]);
        if (k == SequenceTargetKind.Regression)
        {
            var values = new float[yi.ElementCount];
            if (isFloat) file.ReadFloats("targets", values);
            else ReadIntegers(file, yi, values);
            CheckFinite(values, name, "targets", shape);
            return new SequenceDataset(inputs, values, [], lengths, N, T, I, outputs, k, perStep);
        }
        var classes = new int[yi.ElementCount];
        if (isInt) ReadIntegers(file, yi, classes, name, "targets", 0, MaxClasses - 1, $"class indexes 0..{MaxClasses - 1}");
        else
        {
            var f = new float[classes.Length];
            file.ReadFloats("targets", f);
            for (int i = 0; i < f.Length; i++)
            {
                if (!(f[i] >= 0 && f[i] < MaxClasses && f[i] == MathF.Floor(f[i])))
                    throw new InvalidDataException($"{name}: 'targets' {yd} {yi.ShapeString}{At(i, shape)} = {f[i].ToString(CultureInfo.InvariantCulture)} is not a class index: classification targets are whole numbers in 0..{MaxClasses - 1}.");
                classes[i] = (int)f[i];
            }
        }
        int max = classes.Max();
        if (max < 1)
            throw new InvalidDataException($"{name}: every classification target in 'targets' {yd} {yi.ShapeString} is 0; classification needs at least 2 classes.");
        return new SequenceDataset(inputs, [], classes, lengths, N, T, I, max + 1, k, perStep);
    }

    private static string Names(SafeTensorsFile file) =>
        file.Tensors.Count == 0 ? "no tensors" : string.Join(", ", file.Tensors.Take(8).Select(t => $"'{CheckpointMetadata.Shown(t.Name)}' {t.DType.ToFormatString()} {t.ShapeString}"))
            + (file.Tensors.Count > 8 ? $" and {file.Tensors.Count - 8} more" : "");

    private static bool IsInteger(SafeTensorsDType d) => d is SafeTensorsDType.I8 or SafeTensorsDType.I16 or SafeTensorsDType.I32 or SafeTensorsDType.I64
        or SafeTensorsDType.U8 or SafeTensorsDType.U16 or SafeTensorsDType.U32 or SafeTensorsDType.U64;

    /// <summary>" [n, t, ...]": the index of flat element i in a tensor of this shape.</summary>
    private static string At(long i, int[] shape)
    {
        var idx = new long[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = shape[d] == 0 ? 0 : i % shape[d]; i = shape[d] == 0 ? 0 : i / shape[d]; }
        return $" at [{string.Join(", ", idx)}]";
    }

    private static void CheckFinite(float[] values, string file, string key, int[] shape)
    {
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
                throw new InvalidDataException($"{file}: '{key}'{At(i, shape)} is {values[i].ToString(CultureInfo.InvariantCulture)}; every value must be finite.");
    }

    /// <summary>Decodes an integer tensor into ints, each in lo..hi.</summary>
    private static void ReadIntegers(SafeTensorsFile file, SafeTensorInfo t, Span<int> dst, string name, string key, long lo, long hi, string expected)
    {
        ReadOnlySpan<byte> b = file.GetBytes(t.Name).Span;
        for (int i = 0; i < dst.Length; i++)
        {
            long v = Integer(b, t.DType, i, out bool fits);
            if (!fits || v < lo || v > hi)
                throw new InvalidDataException($"{name}: '{key}' {t.DType.ToFormatString()} {t.ShapeString}{At(i, t.Shape.Select(d => (int)d).ToArray())} = "
                    + $"{(fits ? v.ToString(CultureInfo.InvariantCulture) : BinaryPrimitives.ReadUInt64LittleEndian(b.Slice(8 * i)).ToString(CultureInfo.InvariantCulture))} is out of range: expected {expected}.");
            dst[i] = (int)v;
        }
    }

    /// <summary>Decodes an integer tensor into floats (regression targets given as integers).</summary>
    private static void ReadIntegers(SafeTensorsFile file, SafeTensorInfo t, Span<float> dst)
    {
        ReadOnlySpan<byte> b = file.GetBytes(t.Name).Span;
        for (int i = 0; i < dst.Length; i++)
            dst[i] = t.DType == SafeTensorsDType.U64 ? BinaryPrimitives.ReadUInt64LittleEndian(b.Slice(8 * i)) : Integer(b, t.DType, i, out _);
    }

    /// <summary>Element i of an integer tensor's little-endian bytes; <paramref name="fits"/> is false for a U64 above long.MaxValue.</summary>
    private static long Integer(ReadOnlySpan<byte> b, SafeTensorsDType dtype, int i, out bool fits)
    {
        fits = true;
        switch (dtype)
        {
            case SafeTensorsDType.I8: return (sbyte)b[i];
            case SafeTensorsDType.U8: return b[i];
            case SafeTensorsDType.I16: return BinaryPrimitives.ReadInt16LittleEndian(b.Slice(2 * i));
            case SafeTensorsDType.U16: return BinaryPrimitives.ReadUInt16LittleEndian(b.Slice(2 * i));
            case SafeTensorsDType.I32: return BinaryPrimitives.ReadInt32LittleEndian(b.Slice(4 * i));
            case SafeTensorsDType.U32: return BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(4 * i));
            case SafeTensorsDType.I64: return BinaryPrimitives.ReadInt64LittleEndian(b.Slice(8 * i));
            default:
                ulong u = BinaryPrimitives.ReadUInt64LittleEndian(b.Slice(8 * i));
                fits = u <= long.MaxValue;
                return fits ? (long)u : -1;
        }
    }

    // ---------------- subsets and batches ----------------

    /// <summary>The sequences at <paramref name="indices"/> (in that order; repeats allowed), as a new dataset of the same kind and width.</summary>
    /// <exception cref="ArgumentException">No index, or an index outside 0..N-1.</exception>
    public SequenceDataset Subset(ReadOnlySpan<int> indices)
    {
        if (indices.IsEmpty) throw new ArgumentException("a dataset needs at least one sequence.", nameof(indices));
        foreach (int n in indices)
            if ((uint)n >= (uint)Count) throw new ArgumentException($"index {n} is outside 0..N-1 = 0..{Count - 1}.", nameof(indices));
        int M = indices.Length, T = Steps, I = InputSize, O = Outputs;
        int perInput = T * I, perValue = PerStep ? T * O : O, perClass = PerStep ? T : 1;
        var inputs = new float[(long)M * perInput];
        var values = _values.Length > 0 ? new float[(long)M * perValue] : [];
        var classes = _classes.Length > 0 ? new int[(long)M * perClass] : [];
        var lengths = _lengths.Length > 0 ? new int[M] : [];
        for (int m = 0; m < M; m++)
        {
            int n = indices[m];
            _inputs.AsSpan(n * perInput, perInput).CopyTo(inputs.AsSpan(m * perInput));
            if (values.Length > 0) _values.AsSpan(n * perValue, perValue).CopyTo(values.AsSpan(m * perValue));
            if (classes.Length > 0) _classes.AsSpan(n * perClass, perClass).CopyTo(classes.AsSpan(m * perClass));
            if (lengths.Length > 0) lengths[m] = _lengths[n];
        }
        return new SequenceDataset(inputs, values, classes, lengths, M, T, I, O, Kind, PerStep);
    }

    /// <summary>
    /// A deterministic train / validation split: a permutation of 0..N-1 drawn from <paramref name="seed"/> alone (not the
    /// training seed, so runs with different seeds are judged on the same sequences); its first
    /// round(N * fraction) sequences (at least 1 when fraction &gt; 0) are the validation set, the rest the training set,
    /// each kept in the file's order. Fraction 0 gives an empty validation set (null).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">fraction is not in [0, 1).</exception>
    /// <exception cref="ArgumentException">The split would leave no training sequence.</exception>
    public (SequenceDataset Train, SequenceDataset? Validation) Split(double validationFraction, ulong seed = 0)
    {
        if (!(validationFraction >= 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "the validation fraction must be in [0, 1).");
        int nVal = (int)Math.Round(Count * validationFraction, MidpointRounding.AwayFromZero);
        if (validationFraction > 0) nVal = Math.Max(1, nVal);
        if (nVal == 0) return (this, null);
        if (nVal >= Count)
            throw new ArgumentException($"a validation fraction of {validationFraction.ToString(CultureInfo.InvariantCulture)} of {Count} sequences leaves none to train on.", nameof(validationFraction));
        var perm = new int[Count];
        Permutation(new Xoshiro(seed ^ 0x5E0_5E0_5E0UL), perm);
        int[] val = perm[..nVal], train = perm[nVal..];
        Array.Sort(val);
        Array.Sort(train);
        return (Subset(train), Subset(val));
    }

    /// <summary>Fills <paramref name="perm"/> with a uniformly random permutation of 0..n-1 (Fisher-Yates) from <paramref name="rng"/>.</summary>
    internal static void Permutation(Xoshiro rng, Span<int> perm)
    {
        for (int i = 0; i < perm.Length; i++) perm[i] = i;
        for (int i = perm.Length - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (perm[i], perm[j]) = (perm[j], perm[i]);
        }
    }

    /// <summary>
    /// Copies sequences <paramref name="indices"/>[b] into time-major batch buffers, as a recurrent network reads them:
    /// inputs (T, B, I); lengths (B) (written only when <see cref="HasLengths"/>; else may be empty); per-step targets
    /// (T, B, O) values or (T, B) classes, per-sequence targets (B, O) or (B). Pass an empty span for the target kind this
    /// dataset does not have. Padding past a sequence's length is copied as it is (the network and the losses skip it).
    /// Allocates nothing.
    /// </summary>
    /// <exception cref="ArgumentException">A buffer's length does not match its shape, or an index is out of range.</exception>
    public void CopyBatch(ReadOnlySpan<int> indices, Span<float> inputs, Span<int> lengths, Span<float> targetValues, Span<int> targetClasses)
    {
        int B = indices.Length, T = Steps, I = InputSize, O = Outputs;
        CheckLength(inputs.Length, nameof(inputs), "(T, B, I)", T, B, I);
        if (HasLengths) CheckLength(lengths.Length, nameof(lengths), "(B)", B);
        if (Kind == SequenceTargetKind.Regression)
        {
            if (PerStep) CheckLength(targetValues.Length, nameof(targetValues), "(T, B, O)", T, B, O);
            else CheckLength(targetValues.Length, nameof(targetValues), "(B, O)", B, O);
        }
        else if (PerStep) CheckLength(targetClasses.Length, nameof(targetClasses), "(T, B)", T, B);
        else CheckLength(targetClasses.Length, nameof(targetClasses), "(B)", B);
        for (int b = 0; b < B; b++)
        {
            int n = indices[b];
            if ((uint)n >= (uint)Count) throw new ArgumentException($"indices[{b}] = {n} is outside 0..N-1 = 0..{Count - 1}.", nameof(indices));
            for (int t = 0; t < T; t++)
            {
                _inputs.AsSpan((n * T + t) * I, I).CopyTo(inputs.Slice((t * B + b) * I, I));
                if (!PerStep) continue;
                if (Kind == SequenceTargetKind.Regression) _values.AsSpan((n * T + t) * O, O).CopyTo(targetValues.Slice((t * B + b) * O, O));
                else targetClasses[t * B + b] = _classes[n * T + t];
            }
            if (!PerStep)
            {
                if (Kind == SequenceTargetKind.Regression) _values.AsSpan(n * O, O).CopyTo(targetValues.Slice(b * O, O));
                else targetClasses[b] = _classes[n];
            }
            if (HasLengths) lengths[b] = _lengths[n];
        }
    }

    /// <summary>
    /// The loss of the best constant prediction learned from this dataset, scored on <paramref name="evaluateOn"/>
    /// (default this): regression, the MSE of predicting this set's mean of each output; classification, the
    /// cross-entropy of predicting this set's class frequencies, and the accuracy of always answering its most
    /// frequent class (NaN for regression). Counts only valid steps. The number a model must beat.
    /// </summary>
    /// <exception cref="ArgumentException">The datasets differ in kind, targets or width.</exception>
    public (double Loss, double Accuracy) Baseline(SequenceDataset? evaluateOn = null)
    {
        var e = evaluateOn ?? this;
        if (e.Kind != Kind || e.PerStep != PerStep || e.Outputs != Outputs)
            throw new ArgumentException("the datasets differ in kind, targets or width.", nameof(evaluateOn));
        int O = Outputs;
        if (Kind == SequenceTargetKind.Regression)
        {
            var mean = new double[O];
            long rows = 0;
            ForEachTarget(this, (n, at) => { rows++; for (int o = 0; o < O; o++) mean[o] += _values[at * O + o]; });
            for (int o = 0; o < O; o++) mean[o] /= rows;
            double sum = 0;
            long count = 0;
            ForEachTarget(e, (n, at) =>
            {
                count += O;
                for (int o = 0; o < O; o++) { double d = e._values[at * O + o] - mean[o]; sum += d * d; }
            });
            return (sum / count, double.NaN);
        }
        var freq = new double[O];
        long total = 0;
        ForEachTarget(this, (n, at) => { freq[_classes[at]]++; total++; });
        int majority = Array.IndexOf(freq, freq.Max());
        double ce = 0, hits = 0;
        long seen = 0;
        ForEachTarget(e, (n, at) =>
        {
            int c = e._classes[at];
            ce -= Math.Log((freq[c] > 0 ? freq[c] : 0.5) / total); // a class never seen in this set: half a count, so the loss stays finite
            if (c == majority) hits++;
            seen++;
        });
        return (ce / seen, hits / seen);
    }

    /// <summary>Calls <paramref name="action"/>(sequence, flat target index) for every valid target of <paramref name="d"/>.</summary>
    private static void ForEachTarget(SequenceDataset d, Action<int, long> action)
    {
        for (int n = 0; n < d.Count; n++)
        {
            if (!d.PerStep) { action(n, n); continue; }
            int len = d.LengthOf(n);
            for (int t = 0; t < len; t++) action(n, (long)n * d.Steps + t);
        }
    }

    private string ComputeHash()
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"rnnsimd-sequences-1 N={Count} T={Steps} I={InputSize} O={Outputs} kind={KindName} per_step={PerStep} lengths={HasLengths}\n")));
        // Values as little-endian bytes (the host's order: every platform .NET runs RnnSimd on is little-endian).
        h.AppendData(MemoryMarshal.AsBytes(_inputs.AsSpan()));
        h.AppendData(MemoryMarshal.AsBytes(_values.AsSpan()));
        h.AppendData(MemoryMarshal.AsBytes(_classes.AsSpan()));
        h.AppendData(MemoryMarshal.AsBytes(_lengths.AsSpan()));
        return Convert.ToHexStringLower(h.GetHashAndReset().AsSpan(0, 16));
    }
}
