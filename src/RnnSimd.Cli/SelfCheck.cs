using RnnSimd.Kernels;

namespace RnnSimd.Cli;

/// <summary>A short kernel self-check: every supported kernel set against a double-precision loop.</summary>
internal static class SelfCheck
{
    public static int Run(TextWriter o)
    {
        o.WriteLine($"active kernel set: {KernelSet.Default.Name}");
        var rng = new Random(1);
        const int m = 33, n = 47, k = 65;
        float[] a = Random(rng, m * k), b = Random(rng, n * k);
        bool ok = true;
        foreach (var set in KernelSet.Supported)
        {
            var c = new float[m * n];
            set.Gemm(false, true, m, n, k, 1f, a, k, b, k, 0f, c, n);
            double worst = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double e = 0;
                    for (int p = 0; p < k; p++) e += (double)a[i * k + p] * b[j * k + p];
                    worst = Math.Max(worst, Math.Abs(c[i * n + j] - e));
                }
            var t = new float[1000];
            var x = new float[1000];
            for (int i = 0; i < x.Length; i++) x[i] = (i - 500) / 50f;
            set.Map<TanhOp>(x, t);
            double worstTanh = 0;
            for (int i = 0; i < x.Length; i++) worstTanh = Math.Max(worstTanh, Math.Abs(t[i] - Math.Tanh(x[i])));
            bool pass = worst < 1e-4 && worstTanh < 1e-6;
            ok &= pass;
            o.WriteLine($"  {set.Name,-7} gemm {m}x{n}x{k} max |err| {worst:E2}, tanh max |err| {worstTanh:E2}: {(pass ? "ok" : "FAILED")}");
        }
        return ok ? 0 : 1;
    }

    private static float[] Random(Random rng, int n)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return v;
    }
}
