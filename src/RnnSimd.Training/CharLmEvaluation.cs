using RnnSimd.Layers;

namespace RnnSimd.Training;

/// <summary>A character LM's validation figure: mean nats per predicted character, and how many predictions it averages.</summary>
/// <param name="NatsPerChar">Mean cross-entropy per predicted character, in nats.</param>
/// <param name="Predictions">Characters predicted.</param>
public readonly record struct ValidationResult(double NatsPerChar, long Predictions);

/// <summary>The character LM's held-out loss for any network (float32 or reduced precision) and output head.</summary>
public static class CharLmEvaluation
{
    /// <summary>
    /// The validation loss as <see cref="Trainer.Evaluate"/> (which calls this) computes it for a character LM, for any network (float32 or
    /// reduced) and head: the text cut into <paramref name="batch"/> contiguous streams, each read from a zero state in
    /// chunks of <paramref name="steps"/> characters with the state carried from chunk to chunk, at most
    /// <paramref name="maxChunks"/> chunks; the summed cross-entropy of every next character over their count.
    /// Deterministic: one inference workspace, sums in double in a fixed order.
    /// </summary>
    /// <exception cref="ArgumentException">The head does not map Hout to the vocabulary, or the text is too short for the streams.</exception>
    public static ValidationResult ValidationLoss(RecurrentNetwork net, Linear head, int[] text, int batch, int steps, int maxChunks)
    {
        var o = net.Options;
        int B = batch, T = steps, V = o.InputSize, rows = T * B, Hout = o.OutputHidden;
        if (head.InFeatures != Hout || head.OutFeatures != V)
            throw new ArgumentException($"the head is ({head.OutFeatures}, {head.InFeatures}); expected (vocabulary, Hout) = ({V}, {Hout}).", nameof(head));
        int slice = text.Length / B;
        if (slice < 2) throw new ArgumentException($"the validation text ({text.Length} characters) is too short for {B} streams of 2.", nameof(text));
        var ws = net.CreateInferenceWorkspace(T, B);
        float[] x = new float[rows * V];                    // (T, B, V) one-hot
        float[] y = new float[rows * Hout];                 // (T, B, Hout)
        float[] logits = new float[rows * V], dLogits = new float[rows * V];  // (T*B, V)
        float[] mask = new float[rows];                     // (T*B) 1 where a next character exists
        int[] targets = new int[rows];                      // (T*B)
        float[] h = new float[o.NumLayers * B * Hout];      // (L, B, Hout) carried
        float[] cs = new float[o.Cell == CellType.Lstm ? o.NumLayers * B * o.HiddenSize : 0]; // (L, B, H) carried
        double sum = 0;
        long count = 0;
        for (int chunk = 0; chunk < maxChunks && (chunk * T) + 1 < slice; chunk++)
        {
            int len = Math.Min(T, slice - 1 - chunk * T);
            Array.Clear(x);
            Array.Clear(mask);
            Array.Clear(targets);
            for (int b = 0; b < B; b++)
            {
                int start = b * slice + chunk * T;
                for (int t = 0; t < len; t++)
                {
                    x[(t * B + b) * V + text[start + t]] = 1f;
                    targets[t * B + b] = text[start + t + 1];
                    mask[t * B + b] = 1f;
                }
            }
            net.Forward(x, T, B, h, cs, y, h, cs, ws);
            head.Forward(y, rows, logits);
            sum += Losses.SoftmaxCrossEntropy(net.Kernels, logits, targets, V, mask, dLogits, mean: false);
            count += (long)len * B;
        }
        return new ValidationResult(sum / count, count);
    }
}
