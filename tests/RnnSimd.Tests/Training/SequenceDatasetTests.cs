using RnnSimd.Training;
using static RnnSimd.Tests.Training.SequenceData;

namespace RnnSimd.Tests.Training;

/// <summary>Sequence datasets from arrays and from safetensors files: what is read, what is inferred, and every bad input refused with a message that says where and why.</summary>
public class SequenceDatasetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-seqdata-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // N = 3 sequences, T = 4 steps, I = 2 inputs.
    private static readonly float[] X = Enumerable.Range(0, 24).Select(i => i * 0.1f - 1f).ToArray();
    private static Tensor Inputs => F32("inputs", X, 3, 4, 2);

    [Fact]
    public void A_file_s_form_is_inferred_from_the_targets_dtype_and_rank()
    {
        var perStepValues = Load(Inputs, F32("targets", new float[3 * 4 * 5], 3, 4, 5));
        Assert.Equal((SequenceTargetKind.Regression, true, 5, false), (perStepValues.Kind, perStepValues.PerStep, perStepValues.Outputs, perStepValues.HasLengths));
        var perSequenceValues = Load(Inputs, F32("targets", [1, 2, 3], 3, 1));
        Assert.Equal((SequenceTargetKind.Regression, false, 1), (perSequenceValues.Kind, perSequenceValues.PerStep, perSequenceValues.Outputs));
        Assert.Equal([1f, 2f, 3f], perSequenceValues.TargetValues.ToArray());
        var oneValue = Load(Inputs, F32("targets", [1, 2, 3], 3)); // (N): one value per sequence
        Assert.Equal((SequenceTargetKind.Regression, false, 1), (oneValue.Kind, oneValue.PerStep, oneValue.Outputs));
        Assert.Equal(perSequenceValues.ContentHash, oneValue.ContentHash);
        var perStepClasses = Load(Inputs, I64("targets", [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 6], 3, 4), I32("lengths", [4, 1, 2], 3));
        Assert.Equal((SequenceTargetKind.Classification, true, 7, true), (perStepClasses.Kind, perStepClasses.PerStep, perStepClasses.Outputs, perStepClasses.HasLengths));
        Assert.Equal([4, 1, 2], perStepClasses.Lengths.ToArray());
        var perSequenceClasses = Load(Inputs, U8("targets", [2, 0, 1], 3));
        Assert.Equal((SequenceTargetKind.Classification, false, 3), (perSequenceClasses.Kind, perSequenceClasses.PerStep, perSequenceClasses.Outputs));
        Assert.Equal([2, 0, 1], perSequenceClasses.TargetClasses.ToArray());
        Assert.Equal(X, perSequenceClasses.Inputs.ToArray());
        // Given: integer targets as regression values, whole-number float targets as classes.
        var given = Load(SequenceTargetKind.Regression, Inputs, I64("targets", [5, -2, 7], 3, 1));
        Assert.Equal([5f, -2f, 7f], given.TargetValues.ToArray());
        var floatClasses = Load(SequenceTargetKind.Classification, Inputs, F32("targets", [1, 0, 3], 3));
        Assert.Equal(4, floatClasses.Outputs);
        Assert.Equal([1, 0, 3], floatClasses.TargetClasses.ToArray());
        // The content hash names the data, not the file's dtypes: the same values in another dtype hash the same.
        Assert.Equal(perSequenceClasses.ContentHash, Load(Inputs, I64("targets", [2, 0, 1], 3)).ContentHash);
        Assert.NotEqual(perSequenceClasses.ContentHash, Load(Inputs, I64("targets", [2, 1, 0], 3)).ContentHash);
    }

    [Fact]
    public void Batches_are_time_major_with_the_targets_of_every_form()
    {
        var d = Load(Inputs, F32("targets", Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 3, 4, 1), I64("lengths", [2, 4, 3], 3));
        float[] x = new float[4 * 2 * 2], y = new float[4 * 2];
        int[] len = new int[2];
        d.CopyBatch([2, 0], x, len, y, []);
        for (int t = 0; t < 4; t++)
            for (int b = 0; b < 2; b++)
            {
                int n = b == 0 ? 2 : 0;
                Assert.Equal(X[(n * 4 + t) * 2 + 1], x[(t * 2 + b) * 2 + 1]);
                Assert.Equal(n * 4 + t, y[t * 2 + b]);
            }
        Assert.Equal([3, 2], len);
        Assert.Contains("(T, B, I) = (4, 2, 2) = 16", Assert.Throws<ArgumentException>(() => d.CopyBatch([2, 0], new float[15], len, y, [])).Message);
        Assert.Contains("outside 0..N-1", Assert.Throws<ArgumentException>(() => d.CopyBatch([3, 0], x, len, y, [])).Message);
    }

    private SequenceDataset Load(params Tensor[] tensors) => Load(null, tensors);

    private SequenceDataset Load(SequenceTargetKind? kind, params Tensor[] tensors) =>
        SequenceDataset.Load(Write(_dir, $"d{Guid.NewGuid():N}.safetensors", tensors), kind);

    public static TheoryData<string, string[]> BadFiles() => new()
    {
        // case name, then what the message must contain
        { "no inputs", ["no tensor 'inputs'", "'targets' F32 [3]"] },
        { "integer inputs", ["'inputs' has dtype I32", "expected F32", "(N, T, I)"] },
        { "inputs of rank 2", ["'inputs' F32 has shape [3, 8]", "expected (N, T, I)"] },
        { "empty inputs", ["'inputs' F32 has shape [0, 4, 2]", "N, T, I >= 1"] },
        { "no targets", ["no tensor 'targets'", "'inputs' F32 [3, 4, 2]"] },
        { "boolean targets", ["'targets' has dtype BOOL", "float dtype (regression) or an integer dtype (classification)"] },
        { "regression targets of another N", ["regression 'targets' F32 has shape [2, 1]", "(N, O) = (3, O) or (N) = (3)", "(N, T, O) = (3, 4, O)"] },
        { "regression targets of another T", ["regression 'targets' F32 has shape [3, 5, 1]", "(N, T, O) = (3, 4, O)"] },
        { "class targets of another T", ["classification 'targets' I64 has shape [3, 5]", "(N, T) = (3, 4)", "(N) = (3)"] },
        { "a negative class", ["'targets' I64 [3] at [1] = -1 is out of range", "class indexes 0..65535"] },
        { "a class beyond the cap", ["'targets' I64 [3] at [2] = 1099511627776 is out of range"] },
        { "a class index above long", ["'targets' U64 [3] at [0] = 18446744073709551615 is out of range"] },
        { "a single class", ["every classification target", "is 0", "at least 2 classes"] },
        { "a fractional class", ["'targets' F32 [3] at [1] = 0.5 is not a class index"] },
        { "float lengths", ["'lengths' has dtype F32", "integer dtype", "(N) = (3)"] },
        { "lengths of another N", ["'lengths' I64 has shape [4]", "expected (N) = (3)"] },
        { "a zero length", ["'lengths' I64 [3] at [2] = 0 is out of range", "1..T = 1..4"] },
        { "a length beyond T", ["'lengths' I32 [3] at [0] = 5 is out of range", "1..T = 1..4"] },
        { "a NaN input", ["'inputs' at [1, 2, 0] is NaN", "finite"] },
        { "an infinite target", ["'targets' at [2, 0] is Infinity", "finite"] },
        { "not a safetensors file", ["not a valid safetensors file"] },
    };

    private static Tensor[] BadFile(string name)
    {
        float[] nan = (float[])X.Clone();
        nan[(1 * 4 + 2) * 2] = float.NaN;
        var classes = I64("targets", [1, 0, 2], 3);
        return name switch
        {
            "no inputs" => [F32("targets", [1, 2, 3], 3)],
            "integer inputs" => [I32("inputs", new int[24], 3, 4, 2), classes],
            "inputs of rank 2" => [F32("inputs", X, 3, 8), classes],
            "empty inputs" => [F32("inputs", [], 0, 4, 2), classes],
            "no targets" => [Inputs],
            "boolean targets" => [Inputs, new Tensor("targets", "BOOL", [3], [1, 0, 1])],
            "regression targets of another N" => [Inputs, F32("targets", [1, 2], 2, 1)],
            "regression targets of another T" => [Inputs, F32("targets", new float[15], 3, 5, 1)],
            "class targets of another T" => [Inputs, I64("targets", new long[15], 3, 5)],
            "a negative class" => [Inputs, I64("targets", [1, -1, 0], 3)],
            "a class beyond the cap" => [Inputs, I64("targets", [1, 0, 1L << 40], 3)],
            "a class index above long" => [Inputs, new Tensor("targets", "U64", [3], [.. Enumerable.Repeat((byte)0xFF, 8), .. new byte[16]])],
            "a single class" => [Inputs, I64("targets", [0, 0, 0], 3)],
            "a fractional class" => [Inputs, F32("targets", [1, 0.5f, 0], 3)],
            "float lengths" => [Inputs, classes, F32("lengths", [1, 2, 3], 3)],
            "lengths of another N" => [Inputs, classes, I64("lengths", [1, 2, 3, 4], 4)],
            "a zero length" => [Inputs, classes, I64("lengths", [1, 2, 0], 3)],
            "a length beyond T" => [Inputs, classes, I32("lengths", [5, 2, 1], 3)],
            "a NaN input" => [F32("inputs", nan, 3, 4, 2), classes],
            "an infinite target" => [Inputs, F32("targets", [1, 2, 3, 4, float.PositiveInfinity, 6], 3, 2)],
            _ => throw new ArgumentException(name),
        };
    }

    [Theory, MemberData(nameof(BadFiles))]
    public void Bad_files_are_refused_naming_the_file_the_tensor_its_dtype_and_the_expected_shape(string name, string[] expected)
    {
        string path = Path.Combine(_dir, "bad.safetensors");
        if (name == "not a safetensors file") File.WriteAllBytes(path, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        else File.WriteAllBytes(path, Build(BadFile(name)));
        SequenceTargetKind? kind = name == "a fractional class" ? SequenceTargetKind.Classification : null;
        var ex = Assert.Throws<InvalidDataException>(() => SequenceDataset.Load(path, kind));
        Assert.StartsWith(path + ": ", ex.Message);
        foreach (string part in expected) Assert.Contains(part, ex.Message);
    }

    [Fact]
    public void Every_truncation_and_random_corruption_of_a_file_loads_or_fails_with_InvalidDataException()
    {
        byte[] good = Build(Inputs, I64("targets", [0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 2], 3, 4), I64("lengths", [4, 2, 3], 3));
        string path = Path.Combine(_dir, "fuzz.safetensors");
        var rng = new Random(11);
        int loaded = 0, refused = 0;
        for (int i = 0; i < good.Length + 600; i++)
        {
            byte[] bytes;
            if (i < good.Length) bytes = good[..i];
            else
            {
                bytes = (byte[])good.Clone();
                for (int k = 0, flips = 1 + rng.Next(3); k < flips; k++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            }
            File.WriteAllBytes(path, bytes);
            try
            {
                var d = SequenceDataset.Load(path);
                Assert.True(d.Count >= 1 && d.Steps >= 1 && d.InputSize >= 1 && d.Outputs >= 2);
                loaded++;
            }
            catch (InvalidDataException e)
            {
                Assert.StartsWith(path, e.Message);
                Assert.True(e.Message.Length < 1000, e.Message);
                refused++;
            }
        }
        Assert.True(loaded > 0 && refused > good.Length, $"{loaded} loaded, {refused} refused");
    }

    [Fact]
    public void Arrays_are_checked_against_their_shapes_and_copied()
    {
        float[] x = new float[2 * 3 * 1];
        var ex = Assert.Throws<ArgumentException>(() => SequenceDataset.ForRegression(x, new float[5], 2, 3, 1, 1, perStep: true));
        Assert.Contains("targets has 5 values, expected (N, T, O) = (2, 3, 1) = 6", ex.Message);
        Assert.Contains("inputs has 6 values, expected (N, T, I) = (2, 3, 2) = 12",
            Assert.Throws<ArgumentException>(() => SequenceDataset.ForRegression(x, new float[2], 2, 3, 2, 1, perStep: false)).Message);
        Assert.Contains("lengths[1] = 4 is outside 1..T = 1..3",
            Assert.Throws<ArgumentException>(() => SequenceDataset.ForClassification(x, [0, 1], 2, 3, 1, 2, perStep: false, [3, 4])).Message);
        Assert.Contains("targets[1] = 2 is not a class in 0..1",
            Assert.Throws<ArgumentException>(() => SequenceDataset.ForClassification(x, [0, 2], 2, 3, 1, 2, perStep: false)).Message);
        Assert.Contains("classes must be in 2..65536",
            Assert.Throws<ArgumentException>(() => SequenceDataset.ForClassification(x, [0, 0], 2, 3, 1, 1, perStep: false)).Message);
        x[4] = float.NegativeInfinity;
        Assert.Contains("inputs[4] is -Infinity",
            Assert.Throws<ArgumentException>(() => SequenceDataset.ForRegression(x, new float[2], 2, 3, 1, 1, perStep: false)).Message);
        // Copied: changing the caller's array afterwards changes neither the data nor its hash.
        float[] y = [1f, 2f];
        var d = SequenceDataset.ForRegression(new float[6], y, 2, 3, 1, 1, perStep: false);
        string hash = d.ContentHash;
        y[0] = 9f;
        Assert.Equal(1f, d.TargetValues[0]);
        Assert.Equal(hash, SequenceDataset.ForRegression(new float[6], [1f, 2f], 2, 3, 1, 1, perStep: false).ContentHash);
    }
}
