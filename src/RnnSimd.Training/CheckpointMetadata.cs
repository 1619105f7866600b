using System.Globalization;
using System.Text;

namespace RnnSimd.Training;

/// <summary>
/// Reads the values of a checkpoint's metadata with every string treated as hostile: each failure is an
/// <see cref="InvalidDataException"/> naming the file, the key, the value (truncated) and what was expected.
/// </summary>
public static class CheckpointMetadata
{
    private const int ShownChars = 60;

    /// <summary><paramref name="value"/> shortened for a message (at most 60 characters and the length).</summary>
    public static string Shown(string value) =>
        value.Length <= ShownChars ? value : string.Concat(value.AsSpan(0, ShownChars), $"… ({value.Length} characters)");

    /// <summary>The error for a malformed value: file, key, value (shortened) and what was expected.</summary>
    public static InvalidDataException Bad(string path, string key, string value, string expected) =>
        new($"{path}: checkpoint metadata '{key}' = '{Shown(value)}' is invalid: expected {expected}.");

    /// <summary>The value of <paramref name="key"/>.</summary>
    /// <exception cref="InvalidDataException">The key is missing.</exception>
    public static string Get(string path, IReadOnlyDictionary<string, string> m, string key) =>
        m.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"{path}: checkpoint metadata lacks '{key}'.");

    /// <summary>A non-negative decimal int.</summary>
    /// <exception cref="InvalidDataException">Missing or not a non-negative integer below 2^31.</exception>
    public static int NonNegativeInt(string path, IReadOnlyDictionary<string, string> m, string key)
    {
        string v = Get(path, m, key);
        return int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n
            : throw Bad(path, key, v, "a non-negative integer below 2^31");
    }

    /// <summary>The generator state: exactly four comma-separated 64-bit hexadecimal words, not all zero.</summary>
    /// <exception cref="InvalidDataException">Missing or malformed.</exception>
    public static ulong[] RngState(string path, IReadOnlyDictionary<string, string> m, string key = "rng")
    {
        string v = Get(path, m, key);
        var parts = v.Split(',');
        var state = new ulong[4];
        bool ok = parts.Length == 4;
        for (int i = 0; ok && i < 4; i++)
            ok = parts[i].Length is > 0 and <= 16 && ulong.TryParse(parts[i], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out state[i]);
        if (!ok || (state[0] | state[1] | state[2] | state[3]) == 0)
            throw Bad(path, key, v, "four comma-separated hexadecimal 64-bit words, not all zero");
        return state;
    }

    /// <summary>The vocabulary: comma-separated distinct Unicode scalar values (decimal), at least one.</summary>
    /// <exception cref="InvalidDataException">Missing, malformed, not a scalar value, or repeated.</exception>
    public static int[] Vocabulary(string path, IReadOnlyDictionary<string, string> m, string key = "vocabulary")
    {
        string v = Get(path, m, key);
        var parts = v.Split(',');
        var seen = new HashSet<int>();
        var result = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out int c) || !Rune.IsValid(c))
                throw Bad(path, key, v, $"comma-separated Unicode scalar values in decimal; entry {i} ('{Shown(parts[i])}') is not one");
            if (!seen.Add(c))
                throw Bad(path, key, v, $"distinct characters; {c} appears twice");
            result[i] = c;
        }
        return result;
    }

    /// <summary>
    /// The char-LM stream cursors: B comma-separated integers, stream b at b*slice + offset with one offset shared by
    /// every stream in 0..slice (how the trainer advances them), slice = textLength / B.
    /// </summary>
    /// <exception cref="InvalidDataException">Missing, malformed, or positions the trainer could not have reached.</exception>
    public static int[] Cursors(string path, IReadOnlyDictionary<string, string> m, int batch, int textLength, string key = "cursors")
    {
        string v = Get(path, m, key);
        var parts = v.Split(',');
        int slice = textLength / batch;
        string expected = $"{batch} integers b*{slice} + offset with one offset in 0..{slice} (text of {textLength} characters, {batch} streams)";
        if (parts.Length != batch) throw Bad(path, key, v, expected);
        var cursors = new int[batch];
        long offset = -1;
        for (int b = 0; b < batch; b++)
        {
            if (!int.TryParse(parts[b], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out cursors[b])) throw Bad(path, key, v, expected);
            long o = cursors[b] - (long)b * slice;
            if (b == 0) offset = o;
            if (o != offset || o < 0 || o > slice) throw Bad(path, key, v, expected);
        }
        return cursors;
    }

    /// <summary>
    /// Checks a checkpoint's config against the tensors the file holds, before anything is built from it: as many
    /// layers as rnn.weight_ih_l* tensors, and rnn.weight_hh_l0 of shape (gates * hidden, hidden). A config that
    /// asks for more than the file holds (say layers = 1000000) fails here, in microseconds, not after allocating it.
    /// </summary>
    /// <exception cref="InvalidDataException">The config does not match the tensors.</exception>
    public static void CheckNetworkTensors(string path, TrainingConfig config, IReadOnlyList<IO.SafeTensorInfo> tensors)
    {
        int layers = 0;
        foreach (var t in tensors)
            if (t.Name.StartsWith("rnn.weight_ih_l", StringComparison.Ordinal) && !t.Name.EndsWith("_reverse", StringComparison.Ordinal)) layers++;
        if (layers != config.Layers)
            throw new InvalidDataException($"{path}: checkpoint metadata 'layers' = {config.Layers}, but the file holds {layers} layer(s) of rnn.weight_ih_l* tensors.");
        int gates = Layers.CellRegistry.Get(config.Cell).GateCount;
        var hh = tensors.FirstOrDefault(t => t.Name == "rnn.weight_hh_l0");
        long expectedRows = (long)gates * config.Hidden;
        if (hh is null || hh.Shape.Count != 2 || hh.Shape[0] != expectedRows || hh.Shape[1] != config.Hidden)
            throw new InvalidDataException($"{path}: checkpoint metadata 'hidden' = {config.Hidden} and 'cell' = {new Layers.RecurrentOptions(config.Cell, 1, 1).CellName} "
                + $"need rnn.weight_hh_l0 of shape [{expectedRows}, {config.Hidden}]; the file has {(hh is null ? "none" : hh.ShapeString)}.");
    }

    /// <summary>Reads the run's config from the metadata, naming the file in any error.</summary>
    /// <exception cref="InvalidDataException">A key is missing or malformed.</exception>
    public static TrainingConfig Config(string path, IReadOnlyDictionary<string, string> m)
    {
        try { return TrainingConfig.FromMetadata(m); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }
}
