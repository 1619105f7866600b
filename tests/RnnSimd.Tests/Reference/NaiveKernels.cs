namespace RnnSimd.Tests.Reference;

/// <summary>
/// The spec: naive double-precision kernels written line by line from their definitions. Never optimised.
/// Matrices are row-major with a leading dimension (row stride), as in the library.
/// </summary>
public static class NaiveKernels
{
    /// <summary>op(A)[i, p] for A stored m x k (or k x m when transposed).</summary>
    public static double OpA(float[] a, int offset, int lda, bool trans, int i, int p) =>
        trans ? a[offset + p * lda + i] : a[offset + i * lda + p];

    /// <summary>
    /// C = alpha * op(A) op(B) + beta * C in double; also returns, per element, sum_p |op(A)[i,p] op(B)[p,j]|,
    /// the magnitude that bounds the rounding error of a float dot product.
    /// </summary>
    public static (double[] C, double[] AbsSum) Gemm(bool transA, bool transB, int m, int n, int k, double alpha,
        float[] a, int aOff, int lda, float[] b, int bOff, int ldb, double beta, float[] c, int cOff, int ldc)
    {
        var result = new double[m * n];
        var abs = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0, sumAbs = 0;
                for (int p = 0; p < k; p++)
                {
                    double prod = OpA(a, aOff, lda, transA, i, p) * OpA(b, bOff, ldb, !transB, j, p);
                    sum += prod;
                    sumAbs += Math.Abs(prod);
                }
                double c0 = beta == 0 ? 0 : c[cOff + i * ldc + j];
                result[i * n + j] = alpha * sum + beta * c0;
                abs[i * n + j] = Math.Abs(alpha) * sumAbs + Math.Abs(beta * c0);
            }
        }
        return (result, abs);
    }

    /// <summary>y = W x (+ y0), with W rows x cols; returns y and sum_c |W[r,c] x[c]| (+ |y0|).</summary>
    public static (double[] Y, double[] AbsSum) Gemv(int rows, int cols, float[] w, int ldw, float[] x, float[]? y0)
    {
        var y = new double[rows];
        var abs = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = y0 is null ? 0 : y0[r], sa = y0 is null ? 0 : Math.Abs(y0[r]);
            for (int c = 0; c < cols; c++)
            {
                double prod = (double)w[r * ldw + c] * x[c];
                s += prod;
                sa += Math.Abs(prod);
            }
            y[r] = s;
            abs[r] = sa;
        }
        return (y, abs);
    }

    /// <summary>x = W^T y (+ x0), with W rows x cols.</summary>
    public static (double[] X, double[] AbsSum) GemvTransposed(int rows, int cols, float[] w, int ldw, float[] y, float[]? x0)
    {
        var x = new double[cols];
        var abs = new double[cols];
        for (int c = 0; c < cols; c++)
        {
            double s = x0 is null ? 0 : x0[c], sa = x0 is null ? 0 : Math.Abs(x0[c]);
            for (int r = 0; r < rows; r++)
            {
                double prod = (double)w[r * ldw + c] * y[r];
                s += prod;
                sa += Math.Abs(prod);
            }
            x[c] = s;
            abs[c] = sa;
        }
        return (x, abs);
    }

    /// <summary>tanh in double.</summary>
    public static double Tanh(double x) => Math.Tanh(x);

    /// <summary>The logistic function 1 / (1 + e^-x) in double.</summary>
    public static double Sigmoid(double x) => 1.0 / (1.0 + Math.Exp(-x));

    /// <summary>max(x, 0).</summary>
    public static double Relu(double x) => x > 0 ? x : 0;

    /// <summary>tanh'(x) * dy written from the output: (1 - y^2) dy.</summary>
    public static double TanhBackward(double y, double dy) => (1 - y * y) * dy;

    /// <summary>sigmoid'(x) * dy written from the output: y (1 - y) dy.</summary>
    public static double SigmoidBackward(double y, double dy) => y * (1 - y) * dy;

    /// <summary>relu'(x) * dy: dy where the output is positive.</summary>
    public static double ReluBackward(double y, double dy) => y > 0 ? dy : 0;
}
