using System.Text;
using RnnSimd.Memory;

namespace RnnSimd.Training;

/// <summary>
/// The adding problem (Hochreiter and Schmidhuber 1997; the form of Le et al. 2015): T steps of two channels;
/// channel 0 is uniform in [0, 1], channel 1 is zero except for two 1-markers, one in each half; the target, read
/// at the last step, is the sum of the two marked values. Always predicting 1 scores MSE 1/6: the baseline.
/// </summary>
public sealed class AddingProblem
{
    /// <summary>MSE of always predicting 1 (the variance of the sum of two U(0, 1)).</summary>
    public const double BaselineMse = 1.0 / 6.0;

    /// <summary>Creates the task for sequences of <paramref name="seqLen"/> steps (at least 2).</summary>
    public AddingProblem(int seqLen)
    {
        if (seqLen < 2) throw new ArgumentOutOfRangeException(nameof(seqLen), seqLen, "the adding problem needs at least 2 steps.");
        SeqLen = seqLen;
    }

    /// <summary>T.</summary>
    public int SeqLen { get; }
    /// <summary>Input channels: 2.</summary>
    public int InputSize => 2;

    /// <summary>Fills input (T, B, 2) and target (B) with a fresh batch drawn from <paramref name="rng"/>.</summary>
    public void Sample(Xoshiro rng, int batch, Span<float> input, Span<float> target)
    {
        if (input.Length != SeqLen * batch * 2) throw new ArgumentException($"input has {input.Length} floats, expected (T, B, 2) = ({SeqLen}, {batch}, 2) = {SeqLen * batch * 2}.", nameof(input));
        if (target.Length != batch) throw new ArgumentException($"target has {target.Length} floats, expected B = {batch}.", nameof(target));
        int half = SeqLen / 2;
        for (int b = 0; b < batch; b++)
        {
            int m1 = rng.NextInt(half), m2 = half + rng.NextInt(SeqLen - half);
            float sum = 0;
            for (int t = 0; t < SeqLen; t++)
            {
                float v = (float)rng.NextDouble();
                int at = (t * batch + b) * 2;
                input[at] = v;
                input[at + 1] = t == m1 || t == m2 ? 1f : 0f;
                if (t == m1 || t == m2) sum += v;
            }
            target[b] = sum;
        }
    }
}

/// <summary>
/// The copy-memory task (Hochreiter and Schmidhuber 1997; the form of Arjovsky et al. 2016): 10 symbols from 1-8,
/// then T-1 blanks (0), a delimiter (9) and 10 more blanks; the target is blank for the first T+10 steps and the 10
/// symbols after. Inputs are one-hot over 10 symbols, outputs are 9 classes (blank and 1-8). Predicting blanks and
/// then a uniform guess scores cross-entropy 10 ln 8 / (T + 20) per step: the baseline.
/// </summary>
public sealed class CopyMemory
{
    /// <summary>Symbols to remember.</summary>
    public const int Remember = 10;

    /// <summary>Creates the task with a delay of <paramref name="delay"/> blanks (T, at least 1).</summary>
    public CopyMemory(int delay)
    {
        if (delay < 1) throw new ArgumentOutOfRangeException(nameof(delay), delay, "the delay must be at least 1.");
        Delay = delay;
    }

    /// <summary>T, the number of steps between the last symbol and the delimiter's end.</summary>
    public int Delay { get; }
    /// <summary>Steps per sequence: T + 20.</summary>
    public int SeqLen => Delay + 2 * Remember;
    /// <summary>One-hot input width: blank, 8 symbols, delimiter.</summary>
    public int InputSize => 10;
    /// <summary>Output classes: blank and the 8 symbols.</summary>
    public int Classes => 9;
    /// <summary>Cross-entropy per step of the best memoryless strategy: 10 ln 8 / (T + 20).</summary>
    public double BaselineCrossEntropy => Remember * Math.Log(8) / SeqLen;

    /// <summary>Fills input (L, B, 10) one-hot and targets (L*B) class indexes, L = T + 20, from <paramref name="rng"/>.</summary>
    public void Sample(Xoshiro rng, int batch, Span<float> input, Span<int> targets)
    {
        int L = SeqLen;
        if (input.Length != L * batch * InputSize) throw new ArgumentException($"input has {input.Length} floats, expected (T+20, B, 10) = {L * batch * InputSize}.", nameof(input));
        if (targets.Length != L * batch) throw new ArgumentException($"targets has {targets.Length} entries, expected (T+20) * B = {L * batch}.", nameof(targets));
        input.Clear();
        targets.Clear();
        for (int b = 0; b < batch; b++)
        {
            for (int i = 0; i < Remember; i++)
            {
                int symbol = 1 + rng.NextInt(8);
                input[(i * batch + b) * InputSize + symbol] = 1f;
                targets[(Delay + Remember + i) * batch + b] = symbol;
            }
            for (int t = Remember; t < L; t++)
                input[(t * batch + b) * InputSize + (t == Delay + Remember - 1 ? 9 : 0)] = 1f;
        }
    }
}

/// <summary>
/// A character corpus from any UTF-8 text: the vocabulary is the set of distinct characters (Unicode scalar values,
/// sorted), the text is split into a training part and a validation tail.
/// </summary>
public sealed class CharCorpus
{
    private readonly Dictionary<int, int> _index;

    /// <summary>Builds the corpus from text; the last <paramref name="validationFraction"/> of it is the validation set.</summary>
    /// <exception cref="ArgumentException">Fewer than 2 distinct characters or too little text to split.</exception>
    public CharCorpus(string text, double validationFraction = 0.1)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (validationFraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(validationFraction));
        var runes = text.EnumerateRunes().Select(r => r.Value).ToArray();
        Vocabulary = runes.Distinct().Order().ToArray();
        if (Vocabulary.Length < 2) throw new ArgumentException("the text needs at least 2 distinct characters.", nameof(text));
        _index = Vocabulary.Select((v, i) => (v, i)).ToDictionary(p => p.v, p => p.i);
        var ids = runes.Select(r => _index[r]).ToArray();
        int valLen = (int)(ids.Length * validationFraction);
        if (ids.Length - valLen < 2) throw new ArgumentException("the text is too short to train on.", nameof(text));
        Train = ids[..(ids.Length - valLen)];
        Validation = ids[(ids.Length - valLen)..];
    }

    /// <summary>Reads a UTF-8 text file (invalid bytes become U+FFFD).</summary>
    public static CharCorpus FromFile(string path, double validationFraction = 0.1) =>
        new(File.ReadAllText(path, new UTF8Encoding(false, false)), validationFraction);

    /// <summary>The distinct characters, as Unicode scalar values, in increasing order.</summary>
    public int[] Vocabulary { get; }
    /// <summary>Training text as vocabulary indexes.</summary>
    public int[] Train { get; }
    /// <summary>Validation text as vocabulary indexes.</summary>
    public int[] Validation { get; }

    /// <summary>The index of a character, or -1 if it is not in the vocabulary.</summary>
    public int IndexOf(int scalar) => _index.TryGetValue(scalar, out int i) ? i : -1;

    /// <summary>The character of an index.</summary>
    public string CharOf(int index) => char.ConvertFromUtf32(Vocabulary[index]);
}
