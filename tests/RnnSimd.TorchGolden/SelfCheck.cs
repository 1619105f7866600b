namespace RnnSimd.TorchGolden;

/// <summary>
/// Checks LibTorch's float64 results against <see cref="NaiveRnn"/> on every case, every run:
/// output, h_n, c_n and loss to ~1e-12, and a handful of gradient entries per tensor against
/// central finite differences of the naive double loss. Throws (and so fails the generator) on
/// any mismatch, printing the worst entry.
/// </summary>
internal static class SelfCheck
{
    // Forward in double: same equations, different summation order, so agreement is ~1e-15.
    private const double ForwardTol = 1e-12;
    // Central differences with step 1e-6 in double: truncation ~1e-12 * |f'''|, rounding
    // ~1e-16 * |loss| / 1e-6 <= ~1e-8 for these losses; 1e-6 leaves margin yet catches any wrong term.
    private const double FdStep = 1e-6;
    private const double FdTol = 1e-6;

    public static void Run(GoldenCase c, CaseData data, RunResult r64)
    {
        var p = data.Parameters.ToDictionary(e => e.Name, e => Widen(e.Values));
        var x = Widen(data.Input);
        var h0 = Widen(data.H0);
        var c0 = data.C0 is null ? null : Widen(data.C0);
        var target = Widen(data.Target);

        var (o, hN, cN) = NaiveRnn.Forward(c, p, x, h0, c0);
        Compare(c, "output", o, r64.Output, ForwardTol);
        Compare(c, "h_n", hN, r64.HN, ForwardTol);
        if (cN is not null) Compare(c, "c_n", cN, r64.CN!, ForwardTol);
        Compare(c, "loss", [NaiveRnn.Loss(o, target)], [r64.Loss], ForwardTol);

        double LossNow() => NaiveRnn.Loss(NaiveRnn.Forward(c, p, x, h0, c0).Output, target);
        var rng = new SplitMix64(SplitMix64.SeedOf(c.Name) ^ 0x5EED);
        int checkedEntries = 0;
        foreach (var (name, _, grad) in r64.Grads)
        {
            double[] v = name switch { "input" => x, "h0" => h0, "c0" => c0!, _ => p[name] };
            int n = v.Length;
            foreach (int i in new[] { 0, n - 1, n / 2, (int)(rng.Next() % (ulong)n), (int)(rng.Next() % (ulong)n) }.Distinct())
            {
                double keep = v[i];
                v[i] = keep + FdStep;
                double up = LossNow();
                v[i] = keep - FdStep;
                double down = LossNow();
                v[i] = keep;
                double fd = (up - down) / (2 * FdStep);
                if (!(Math.Abs(fd - grad[i]) <= FdTol * (1 + Math.Abs(grad[i]))))
                    throw new InvalidOperationException(
                        $"SELF-CHECK FAILED {c.Name}: expected.grad.{name}[{i}] = {grad[i]:R} but central difference gives {fd:R}");
                checkedEntries++;
            }
        }
        if (checkedEntries == 0) throw new InvalidOperationException($"SELF-CHECK FAILED {c.Name}: no gradient checked");
    }

    private static void Compare(GoldenCase c, string what, double[] naive, double[] torch, double tol)
    {
        if (naive.Length != torch.Length)
            throw new InvalidOperationException($"SELF-CHECK FAILED {c.Name}: {what} has {torch.Length} values, naive has {naive.Length}");
        int worst = 0;
        double worstErr = 0;
        for (int i = 0; i < naive.Length; i++)
        {
            double err = Math.Abs(naive[i] - torch[i]) / (1 + Math.Abs(naive[i]));
            if (double.IsNaN(err)) { worst = i; worstErr = err; break; }
            if (err > worstErr) { worst = i; worstErr = err; }
        }
        if (!(worstErr <= tol))
            throw new InvalidOperationException(
                $"SELF-CHECK FAILED {c.Name}: expected.{what}[{worst}] = {torch[worst]:R}, naive double gives {naive[worst]:R} (err {worstErr:E2} > {tol:E0})");
    }

    public static double[] Widen(float[] v) => Array.ConvertAll(v, f => (double)f);
}
