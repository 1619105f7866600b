namespace RnnSimd.Tests.Reference;

/// <summary>
/// The spec of the output layer and the losses: naive double-precision code written line by line from the
/// definitions, with nothing else in it. Never optimised. Row-major (rows, width) arrays; masks are null for
/// "every row counts", else 0/1 per row.
/// </summary>
public static class NaiveLosses
{
    /// <summary>Linear forward y[r,o] = b[o] + sum_i x[r,i] w[o,i]; also sum_i |x w| + |b|, which bounds a float evaluation's error.</summary>
    public static (double[] Y, double[] AbsSum) LinearForward(double[] x, int rows, int inF, int outF, double[] w, double[] b)
    {
        var y = new double[rows * outF];
        var abs = new double[rows * outF];
        for (int r = 0; r < rows; r++)
        {
            for (int o = 0; o < outF; o++)
            {
                double s = b[o], sa = Math.Abs(b[o]);
                for (int i = 0; i < inF; i++)
                {
                    s += x[r * inF + i] * w[o * inF + i];
                    sa += Math.Abs(x[r * inF + i] * w[o * inF + i]);
                }
                y[r * outF + o] = s;
                abs[r * outF + o] = sa;
            }
        }
        return (y, abs);
    }

    /// <summary>Linear backward from dy = dL/dy, with the error-bounding magnitudes of each sum.</summary>
    public sealed record LinearGradients(double[] DW, double[] DWAbs, double[] DB, double[] DBAbs, double[] DX, double[] DXAbs);

    /// <summary>
    /// dW[o,i] = dW0[o,i] + sum_r dy[r,o] x[r,i]; db[o] = db0[o] + sum_r dy[r,o]; dx[r,i] = sum_o dy[r,o] w[o,i].
    /// </summary>
    public static LinearGradients LinearBackward(double[] x, double[] dy, int rows, int inF, int outF, double[] w, double[] dW0, double[] db0)
    {
        var dW = new double[outF * inF];
        var dWAbs = new double[outF * inF];
        for (int o = 0; o < outF; o++)
        {
            for (int i = 0; i < inF; i++)
            {
                double s = dW0[o * inF + i], sa = Math.Abs(dW0[o * inF + i]);
                for (int r = 0; r < rows; r++)
                {
                    s += dy[r * outF + o] * x[r * inF + i];
                    sa += Math.Abs(dy[r * outF + o] * x[r * inF + i]);
                }
                dW[o * inF + i] = s;
                dWAbs[o * inF + i] = sa;
            }
        }
        var db = new double[outF];
        var dbAbs = new double[outF];
        for (int o = 0; o < outF; o++)
        {
            double s = db0[o], sa = Math.Abs(db0[o]);
            for (int r = 0; r < rows; r++)
            {
                s += dy[r * outF + o];
                sa += Math.Abs(dy[r * outF + o]);
            }
            db[o] = s;
            dbAbs[o] = sa;
        }
        var dx = new double[rows * inF];
        var dxAbs = new double[rows * inF];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < inF; i++)
            {
                double s = 0, sa = 0;
                for (int o = 0; o < outF; o++)
                {
                    s += dy[r * outF + o] * w[o * inF + i];
                    sa += Math.Abs(dy[r * outF + o] * w[o * inF + i]);
                }
                dx[r * inF + i] = s;
                dxAbs[r * inF + i] = sa;
            }
        }
        return new LinearGradients(dW, dWAbs, db, dbAbs, dx, dxAbs);
    }

    /// <summary>
    /// L = sum over unmasked rows and features of (y - t)^2, divided by (unmasked rows * features) when mean;
    /// dy = dL/dy = 2 (y - t) (/ that count), 0 on masked rows.
    /// </summary>
    public static (double Loss, double[] Dy) MeanSquaredError(double[] y, double[] t, int rows, int features, double[]? mask, bool mean)
    {
        int kept = 0;
        for (int r = 0; r < rows; r++)
            if (mask is null || mask[r] == 1) kept++;
        double count = (double)kept * features;
        double scale = mean ? (count > 0 ? 1 / count : 0) : 1;
        double loss = 0;
        var dy = new double[rows * features];
        for (int r = 0; r < rows; r++)
        {
            if (mask is not null && mask[r] == 0) continue;
            for (int f = 0; f < features; f++)
            {
                double d = y[r * features + f] - t[r * features + f];
                loss += d * d;
                dy[r * features + f] = 2 * d * scale;
            }
        }
        return (loss * scale, dy);
    }

    /// <summary>
    /// L = sum over unmasked rows of -log p[target] with p = softmax(logits row), divided by the number of unmasked
    /// rows when mean; dLogits = (p - onehot(target)) (/ that count), 0 on masked rows.
    /// -log p[t] is written log(sum_j exp(x_j - m)) - (x_t - m) with m = max_j x_j: the same number, without overflow.
    /// </summary>
    public static (double Loss, double[] DLogits) SoftmaxCrossEntropy(double[] logits, int[] targets, int classes, double[]? mask, bool mean)
    {
        int rows = targets.Length;
        int kept = 0;
        for (int r = 0; r < rows; r++)
            if (mask is null || mask[r] == 1) kept++;
        double scale = mean ? (kept > 0 ? 1.0 / kept : 0) : 1;
        double loss = 0;
        var dLogits = new double[rows * classes];
        for (int r = 0; r < rows; r++)
        {
            if (mask is not null && mask[r] == 0) continue;
            double m = double.NegativeInfinity;
            for (int j = 0; j < classes; j++) m = Math.Max(m, logits[r * classes + j]);
            double sum = 0;
            for (int j = 0; j < classes; j++) sum += Math.Exp(logits[r * classes + j] - m);
            int t = targets[r];
            loss += Math.Log(sum) - (logits[r * classes + t] - m);
            for (int j = 0; j < classes; j++)
            {
                double p = Math.Exp(logits[r * classes + j] - m) / sum;
                dLogits[r * classes + j] = (p - (j == t ? 1 : 0)) * scale;
            }
        }
        return (loss * scale, dLogits);
    }
}
