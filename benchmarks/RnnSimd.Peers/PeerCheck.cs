using RnnSimd.Peers.Runners;

namespace RnnSimd.Peers;

/// <summary>
/// Checks that an implementation computes the same function as RnnSimd: same weights, same input, outputs compared
/// quantity by quantity by normwise relative error ||a - e||_2 / ||e||_2 (e: RnnSimd's reference), each of which must
/// be below <see cref="Tolerance"/>. Normwise because the peers sum in other orders (MKL / MLAS GEMMs, other
/// activation approximations): element-wise relative error is meaningless for elements near zero, while the
/// normwise error of a float32 computation that is right is ~1e-7..1e-6 here.
/// </summary>
internal static class PeerCheck
{
    public const double Tolerance = 1e-5;

    /// <summary>One compared quantity: its error, and whether it is within tolerance.</summary>
    public readonly record struct Row(string Quantity, double Error)
    {
        public bool Ok => Error < Tolerance;
    }

    /// <summary>Every quantity of <paramref name="reference"/> compared with <paramref name="actual"/>'s of the same name.</summary>
    /// <exception cref="InvalidOperationException">A quantity is missing or has another length.</exception>
    public static List<Row> Compare(IReadOnlyList<Quantity> reference, IReadOnlyList<Quantity> actual)
    {
        var byName = actual.ToDictionary(q => q.Name);
        var rows = new List<Row>();
        foreach (var e in reference)
        {
            if (!byName.TryGetValue(e.Name, out var a))
                throw new InvalidOperationException($"'{e.Name}' is missing; got [{string.Join(", ", actual.Select(q => q.Name))}].");
            if (a.Values.Length != e.Values.Length)
                throw new InvalidOperationException($"'{e.Name}' has {a.Values.Length} values, expected {e.Values.Length}.");
            rows.Add(new(e.Name, NormwiseError(a.Values, e.Values)));
        }
        return rows;
    }

    /// <summary>||a - e|| / ||e|| in double; NaN anywhere gives NaN (which fails); ||e|| = 0 gives ||a||.</summary>
    public static double NormwiseError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            num += d * d;
            den += (double)expected[i] * expected[i];
        }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    /// <summary>The reference's results for (workload, cell), computed once per process.</summary>
    public static IReadOnlyList<Quantity> ReferenceOf(Workload w, string cell)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue((w.Id, cell), out var r))
            {
                using var reference = Implementations.Reference(w, cell);
                Cache[(w.Id, cell)] = r = reference.Check();
            }
            return r;
        }
    }

    private static readonly Dictionary<(string, string), IReadOnlyList<Quantity>> Cache = [];

    /// <summary>
    /// Builds the runner and checks it (for [GlobalSetup]); throws, naming the worst quantity, if any is out of
    /// tolerance. The check leaves the runner ready to time (S1's state is reset; a training runner has taken one step).
    /// </summary>
    public static IRunner CreateChecked(Workload w, string cell, string impl, int threads)
    {
        var runner = Implementations.Create(w, cell, impl, threads);
        try
        {
            var rows = Compare(ReferenceOf(w, cell), runner.Check());
            var bad = rows.Where(r => !r.Ok).ToList();
            if (bad.Count > 0)
                throw new InvalidOperationException(
                    $"{w.Id} {cell} {impl} threads={threads} does not compute RnnSimd's function: " +
                    string.Join("; ", bad.Select(r => $"{r.Quantity} normwise error {r.Error:E2}")) + $" (tolerance {Tolerance:E0}).");
            return runner;
        }
        catch
        {
            runner.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The --verify mode: every (workload, cell, threads, impl), one line each with the worst quantity's error;
    /// returns 0 when all pass, 1 otherwise. Thread counts run in turn in this one process (torch's is set before each).
    /// </summary>
    public static int VerifyAll(TextWriter log)
    {
        int failures = 0, total = 0;
        log.WriteLine($"normwise relative error vs RnnSimd's reference, tolerance {Tolerance:E0}; worst quantity shown");
        log.WriteLine($"{"workload",-8} {"cell",-9} {"threads",7} {"impl",-13} {"worst quantity",-26} {"error",10}  result");
        foreach (var w in Workload.All)
            foreach (var cell in Workload.Cells)
                foreach (int threads in Workload.ThreadCounts)
                    foreach (var impl in Implementations.ImplsFor(w))
                    {
                        total++;
                        string quantity, result;
                        double error;
                        try
                        {
                            using var runner = Implementations.Create(w, cell, impl, threads);
                            var rows = Compare(ReferenceOf(w, cell), runner.Check());
                            var worst = rows.OrderByDescending(r => double.IsNaN(r.Error) ? double.PositiveInfinity : r.Error).First();
                            (quantity, error) = (worst.Quantity, worst.Error);
                            bool ok = rows.All(r => r.Ok);
                            result = ok ? "ok" : $"FAIL ({rows.Count(r => !r.Ok)} of {rows.Count} quantities)";
                            if (!ok) failures++;
                        }
                        catch (Exception ex)
                        {
                            (quantity, error, result) = ("-", double.NaN, "FAIL: " + ex.Message);
                            failures++;
                        }
                        log.WriteLine($"{w.Id,-8} {cell,-9} {threads,7} {impl,-13} {quantity,-26} {error,10:E2}  {result}");
                    }
        log.WriteLine($"{total - failures} passed, {failures} failed");
        return failures == 0 ? 0 : 1;
    }
}
