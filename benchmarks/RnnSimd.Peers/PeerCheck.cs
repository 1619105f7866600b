using RnnSimd.Layers;
using RnnSimd.Peers.Runners;

namespace RnnSimd.Peers;

/// <summary>
/// Checks that an implementation computes the same function as RnnSimd: same weights, same input, outputs compared
/// quantity by quantity by normwise relative error ||a - e||_2 / ||e||_2 (e: RnnSimd's reference at the same precision),
/// each of which must be below <see cref="ToleranceFor"/>. Normwise because the peers sum in other orders (MKL / MLAS
/// GEMMs, other activation approximations): element-wise relative error is meaningless for elements near zero, while the
/// normwise error of a float32 computation that is right is ~1e-7..1e-6 here.
/// </summary>
internal static class PeerCheck
{
    public const double Tolerance = 1e-5;

    /// <summary>
    /// ONNX Runtime's DynamicQuantizeLSTM against RnnSimd's int8 LSTM (the same int8 weights): the two quantize the
    /// activations differently (ORT: asymmetric uint8, X over the whole call and h per step; RnnSimd: symmetric int8, x
    /// and h per step), each adding up to half a step of its own grid per activation, ~1/254 of the largest |x| or |h|,
    /// so they differ by the order of the int8 quantization error itself: measured 5.4e-3 (S1, 8 steps) and 4.9e-3 (S2)
    /// normwise, where each of the two is 5.3e-3 / 4.7e-3 (ORT) and 5.3e-3 / 5.0e-3 (RnnSimd) from the float32 output
    /// (verify.txt). Seeded data, so the figure is fixed. A layout error (a transposed or misordered gate block, a scale
    /// on the wrong row) gives O(1).
    /// </summary>
    public const double QuantizedPeerTolerance = 1e-2;

    /// <summary>The tolerance of <paramref name="impl"/> at <paramref name="precision"/> against RnnSimd's reference at that precision.</summary>
    public static double ToleranceFor(string impl, Precision precision) =>
        precision == Precision.Int8 && impl != Implementations.RnnSimd ? QuantizedPeerTolerance : Tolerance;

    /// <summary>One compared quantity: its error, and whether it is within tolerance.</summary>
    public readonly record struct Row(string Quantity, double Error, double Limit)
    {
        public bool Ok => Error < Limit;
    }

    /// <summary>Every quantity of <paramref name="reference"/> compared with <paramref name="actual"/>'s of the same name.</summary>
    /// <exception cref="InvalidOperationException">A quantity is missing or has another length.</exception>
    public static List<Row> Compare(IReadOnlyList<Quantity> reference, IReadOnlyList<Quantity> actual, double tolerance = Tolerance)
    {
        var byName = actual.ToDictionary(q => q.Name);
        var rows = new List<Row>();
        foreach (var e in reference)
        {
            if (!byName.TryGetValue(e.Name, out var a))
                throw new InvalidOperationException($"'{e.Name}' is missing; got [{string.Join(", ", actual.Select(q => q.Name))}].");
            if (a.Values.Length != e.Values.Length)
                throw new InvalidOperationException($"'{e.Name}' has {a.Values.Length} values, expected {e.Values.Length}.");
            rows.Add(new(e.Name, NormwiseError(a.Values, e.Values), tolerance));
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

    /// <summary>The reference's results for (workload, cell, precision), computed once per process.</summary>
    public static IReadOnlyList<Quantity> ReferenceOf(Workload w, string cell, Precision precision = Precision.Float32)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue((w.Id, cell, precision), out var r))
            {
                using var reference = Implementations.Reference(w, cell, precision);
                Cache[(w.Id, cell, precision)] = r = reference.Check();
            }
            return r;
        }
    }

    private static readonly Dictionary<(string, string, Precision), IReadOnlyList<Quantity>> Cache = [];

    /// <summary>
    /// Builds the runner and checks it (for [GlobalSetup]); throws, naming the worst quantity, if any is out of
    /// tolerance. The check leaves the runner ready to time (S1's state is reset; a training runner has taken one step).
    /// </summary>
    public static IRunner CreateChecked(Workload w, string cell, string impl, int threads, Precision precision = Precision.Float32)
    {
        var runner = Implementations.Create(w, cell, impl, threads, precision);
        try
        {
            var rows = Compare(ReferenceOf(w, cell, precision), runner.Check(), ToleranceFor(impl, precision));
            var bad = rows.Where(r => !r.Ok).ToList();
            if (bad.Count > 0)
                throw new InvalidOperationException(
                    $"{w.Id} {cell} {impl} {precision.Name()} threads={threads} does not compute RnnSimd's function: " +
                    string.Join("; ", bad.Select(r => $"{r.Quantity} normwise error {r.Error:E2}")) + $" (tolerance {ToleranceFor(impl, precision):E0}).");
            return runner;
        }
        catch
        {
            runner.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The --verify mode: every (workload, cell, threads, impl, precision) the benchmarks run, one line each with the
    /// worst quantity's error against RnnSimd's reference at that precision (and its tolerance); at a reduced precision
    /// also the same quantity's error against the float32 reference (the quantization error, reported, not judged).
    /// Returns 0 when all pass, 1 otherwise. Thread counts run in turn in this one process (torch's is set before each).
    /// </summary>
    public static int VerifyAll(TextWriter log)
    {
        int failures = 0, total = 0;
        log.WriteLine($"normwise relative error vs RnnSimd's reference at the same precision (tolerance {Tolerance:E0}; "
            + $"{QuantizedPeerTolerance:E0} for a peer's int8, which quantizes activations its own way); worst quantity shown; "
            + "vs float32: the same quantity against RnnSimd's float32 reference (quantization error, not judged)");
        log.WriteLine($"{"workload",-8} {"cell",-9} {"threads",7} {"impl",-13} {"precision",-9} {"worst quantity",-26} {"error",10} {"vs float32",10}  result");
        foreach (var w in Workload.All)
            foreach (var cell in Workload.Cells)
                foreach (int threads in Workload.ThreadCounts)
                    foreach (var impl in Implementations.ImplsFor(w))
                        foreach (var precision in Implementations.PrecisionsFor(w))
                        {
                            if (!Implementations.Supports(w, cell, impl, threads, precision)) continue;
                            total++;
                            string quantity, result, vsFloat = "";
                            double error;
                            try
                            {
                                using var runner = Implementations.Create(w, cell, impl, threads, precision);
                                var actual = runner.Check();
                                var rows = Compare(ReferenceOf(w, cell, precision), actual, ToleranceFor(impl, precision));
                                var worst = rows.OrderByDescending(r => double.IsNaN(r.Error) ? double.PositiveInfinity : r.Error).First();
                                (quantity, error) = (worst.Quantity, worst.Error);
                                if (precision != Precision.Float32)
                                    vsFloat = Compare(ReferenceOf(w, cell), actual).First(r => r.Quantity == quantity).Error.ToString("E2");
                                bool ok = rows.All(r => r.Ok);
                                result = ok ? "ok" : $"FAIL ({rows.Count(r => !r.Ok)} of {rows.Count} quantities)";
                                if (!ok) failures++;
                            }
                            catch (Exception ex)
                            {
                                (quantity, error, result) = ("-", double.NaN, "FAIL: " + ex.Message);
                                failures++;
                            }
                            log.WriteLine($"{w.Id,-8} {cell,-9} {threads,7} {impl,-13} {precision.Name(),-9} {quantity,-26} {error,10:E2} {vsFloat,10}  {result}");
                        }
        log.WriteLine($"{total - failures} passed, {failures} failed");
        return failures == 0 ? 0 : 1;
    }
}
