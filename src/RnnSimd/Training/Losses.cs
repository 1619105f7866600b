using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.Training;

/// <summary>
/// Loss functions that return the loss and write its gradient in one call, allocation-free and vectorised with the
/// given kernel set. Inputs are row-major (rows, width); a loss summed over time steps is the same call with
/// rows = T*B (a (T, B, F) tensor is (T*B, F) row-major), and a (T, B) row mask of 0/1 (for example from sequence
/// lengths) leaves padded steps out of both the loss and the count a mean divides by.
/// </summary>
/// <remarks>
/// Row masks: empty for "every row counts", else one value per row, each exactly 0 (row left out: contributes nothing
/// and its gradient row is written as zeros) or 1. Everything is validated before anything is written.
/// The loss is accumulated in double; per-element work is in float with the kernel set's vectors and the library's
/// reduction policy (16 lane partials and a fixed tree), so within one kernel set results are bitwise reproducible.
/// </remarks>
public static unsafe class Losses
{
    /// <summary>Squared errors are summed in float over blocks of at most this many elements, then in double.</summary>
    internal const int SumBlock = 1024;

    /// <summary>
    /// Mean squared error, with the standard definition D = (y - t)^2 per element (as torch.nn.MSELoss; no 1/2):
    /// L = sum over unmasked rows r and features f of (y[r,f] - target[r,f])^2, divided by the number of unmasked
    /// elements (unmasked rows * features) when <paramref name="mean"/>. Writes dy = dL/dy = 2 (y - target), times
    /// 1 / (unmasked rows * features) when <paramref name="mean"/>, and zeros on masked rows. With mean and no unmasked
    /// row, L = 0 and dy = 0.
    /// </summary>
    /// <param name="k">The kernel set to compute with.</param>
    /// <param name="y">Predictions, (rows, features).</param>
    /// <param name="target">Targets, (rows, features).</param>
    /// <param name="rows">Number of rows (T*B for a sequence).</param>
    /// <param name="features">Values per row.</param>
    /// <param name="rowMask">(rows) of 0/1, or empty for all rows.</param>
    /// <param name="dy">Receives dL/dy, (rows, features); may be <paramref name="y"/> or <paramref name="target"/> itself (same start).</param>
    /// <param name="mean">Divide by the number of unmasked elements (true) or sum (false).</param>
    /// <returns>The loss.</returns>
    /// <exception cref="ArgumentException">A span's length does not match its shape, a dimension is negative, a mask value is not 0 or 1, or the kernel set is not supported here.</exception>
    public static double MeanSquaredError(KernelSet k, ReadOnlySpan<float> y, ReadOnlySpan<float> target, int rows, int features,
        ReadOnlySpan<float> rowMask, Span<float> dy, bool mean)
    {
        CheckKernels(k);
        ThrowHelper.CheckNonNegative(rows, nameof(rows));
        ThrowHelper.CheckNonNegative(features, nameof(features));
        Shapes.Check(y.Length, nameof(y), "(rows, features)", rows, features);
        Shapes.Check(target.Length, nameof(target), "(rows, features)", rows, features);
        Shapes.Check(dy.Length, nameof(dy), "(rows, features)", rows, features);
        int active = CountRows(rowMask, rows);

        long count = (long)active * features;
        double scale = !mean ? 1.0 : count > 0 ? 1.0 / count : 0.0;
        float g = (float)(2.0 * scale);
        var isa = k.Isa;
        double sum = 0;
        fixed (float* py = y, pt = target, pd = dy, pm = rowMask)
        {
            int r = 0;
            while (r < rows)
            {
                if (pm != null && pm[r] == 0f)
                {
                    new Span<float>(pd + (long)r * features, features).Clear();
                    r++;
                    continue;
                }
                // A run of unmasked rows is one contiguous block of elements.
                int end = r + 1;
                while (end < rows && (pm == null || pm[end] != 0f)) end++;
                for (long i = (long)r * features, stop = (long)end * features; i < stop; i += SumBlock)
                {
                    var kernel = new SquaredErrorKernel { Y = py + i, T = pt + i, DY = pd + i, G = g };
                    sum += Lanes.Reduce(isa, (int)Math.Min(SumBlock, stop - i), ref kernel);
                }
                r = end;
            }
        }
        return sum * scale;
    }

    /// <summary>
    /// Softmax cross-entropy over classes (as torch.nn.CrossEntropyLoss on logits with class-index targets):
    /// L = sum over unmasked rows r of -log softmax(logits[r])[targets[r]], divided by the number of unmasked rows when
    /// <paramref name="mean"/>. Computed as a fused log-softmax with max subtraction, log(sum_j exp(x_j - m)) + (m - x_t)
    /// with m = max_j x_j, so logits of any finite magnitude (1e4, -1e4) give a finite loss; a NaN or +Inf logit
    /// gives NaN for its row (loss and gradient), a -Inf logit has probability 0 (loss +Inf if it is the target). Writes dLogits = softmax(logits) - onehot(target), times 1 / (unmasked rows) when
    /// <paramref name="mean"/>, and zeros on masked rows. Targets of masked rows are ignored (padding may hold any value,
    /// for example -1); with mean and no unmasked row, L = 0 and dLogits = 0.
    /// </summary>
    /// <remarks>
    /// Per row: one pass for the maximum, one for exp(x - m) (into dLogits) and its sum, one scaling pass; the row stays in
    /// cache between them. The target's gradient is formed with one FMA, p_t * s - s, so it keeps its accuracy when
    /// p_t is close to 1.
    /// </remarks>
    /// <param name="k">The kernel set to compute with.</param>
    /// <param name="logits">Unnormalised scores, (rows, classes) with rows = targets.Length.</param>
    /// <param name="targets">(rows) class indices in 0..classes-1 (any value on masked rows).</param>
    /// <param name="classes">Number of classes (at least 1).</param>
    /// <param name="rowMask">(rows) of 0/1, or empty for all rows.</param>
    /// <param name="dLogits">Receives dL/dlogits, (rows, classes); may be <paramref name="logits"/> itself (same start).</param>
    /// <param name="mean">Divide by the number of unmasked rows (true) or sum (false).</param>
    /// <returns>The loss.</returns>
    /// <exception cref="ArgumentException">A span's length does not match its shape, classes is below 1, a target of an unmasked row is out of range, a mask value is not 0 or 1, or the kernel set is not supported here.</exception>
    public static double SoftmaxCrossEntropy(KernelSet k, ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int classes,
        ReadOnlySpan<float> rowMask, Span<float> dLogits, bool mean)
    {
        CheckKernels(k);
        if (classes < 1) ThrowClasses(classes);
        int rows = targets.Length;
        Shapes.Check(logits.Length, nameof(logits), "(rows, classes)", rows, classes);
        Shapes.Check(dLogits.Length, nameof(dLogits), "(rows, classes)", rows, classes);
        int active = CountRows(rowMask, rows);
        for (int r = 0; r < rows; r++)
            if ((uint)targets[r] >= (uint)classes && (rowMask.IsEmpty || rowMask[r] != 0f)) ThrowTarget(r, targets[r], classes);

        double scale = !mean ? 1.0 : active > 0 ? 1.0 / active : 0.0;
        float scaleF = (float)scale;
        var isa = k.Isa;
        double loss = 0;
        fixed (float* px = logits, pd = dLogits, pm = rowMask)
        {
            for (int r = 0; r < rows; r++)
            {
                float* x = px + (long)r * classes, d = pd + (long)r * classes;
                if (pm != null && pm[r] == 0f)
                {
                    new Span<float>(d, classes).Clear();
                    continue;
                }
                int t = targets[r];
                float xt = x[t]; // read before d (which may be x) is written
                var max = new RowMaxKernel { X = x };
                float m = Lanes.Reduce(isa, classes, ref max);
                var exp = new ShiftedExpSumKernel { X = x, E = d, Shift = m };
                float sum = Lanes.Reduce(isa, classes, ref exp); // >= 1: the maximum contributes exp(0) = 1 exactly
                loss += Math.Log(sum) + ((double)m - xt);
                float c = (float)(scale / sum);
                float et = d[t];
                var scaled = new ScaleKernel { X = d, Dst = d, C = c };
                Lanes.For(isa, classes, ref scaled);
                d[t] = MathF.FusedMultiplyAdd(et, c, -scaleF);
            }
        }
        return loss * scale;
    }

    private static void CheckKernels(KernelSet k)
    {
        ArgumentNullException.ThrowIfNull(k);
        if (!k.IsSupported) ThrowUnsupported(k);
    }

    /// <summary>Validates a row mask and returns the number of rows it keeps (all rows when empty).</summary>
    private static int CountRows(ReadOnlySpan<float> rowMask, int rows)
    {
        if (rowMask.IsEmpty) return rows;
        if (rowMask.Length != rows) ThrowMaskLength(rowMask.Length, rows);
        int active = 0;
        for (int r = 0; r < rowMask.Length; r++)
        {
            float v = rowMask[r];
            if (v == 1f) active++;
            else if (v != 0f) ThrowMaskValue(r, v);
        }
        return active;
    }

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUnsupported(KernelSet k) =>
        throw new ArgumentException($"kernel set '{k.Name}' is not supported here.", nameof(k));

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowClasses(int classes) =>
        throw new ArgumentOutOfRangeException(nameof(classes), classes, "classes must be at least 1.");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTarget(int row, int value, int classes) =>
        throw new ArgumentException($"targets[{row}] = {value} is outside 0..classes-1 = 0..{classes - 1}.", "targets");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowMaskLength(int length, int rows) =>
        throw new ArgumentException($"rowMask has {length} floats, expected (rows) = {rows} (or empty).", "rowMask");

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowMaskValue(int row, float value) =>
        throw new ArgumentException($"rowMask[{row}] = {value}; row masks hold 0 (row left out) or 1.", "rowMask");
}
