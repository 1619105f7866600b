using System.Globalization;
using System.Reflection;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace RnnSimd.TorchGolden;

internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length != 1)
        {
            Console.Error.WriteLine("usage: dotnet run -c Release --project tests/RnnSimd.TorchGolden -- <output folder, e.g. tests/data/torch>");
            return 2;
        }
        string outDir = Path.GetFullPath(args[0]);
        Directory.CreateDirectory(outDir);

        Determinism.Pin();  // before any TorchSharp call
        set_num_threads(1); // one thread: LibTorch's reductions then split the same way every run
        string generator = GeneratorDescription();
        Console.WriteLine(generator);

        var rows = new List<SummaryRow>();
        foreach (var c in Cases.All)
        {
            var data = CaseData.Make(c);
            var r64 = TorchRunner.Run(c, data, ScalarType.Float64);
            var r32 = TorchRunner.Run(c, data, ScalarType.Float32);
            SelfCheck.Run(c, data, r64);
            CheckRepeatable(c, data, r64, ScalarType.Float64);
            CheckRepeatable(c, data, r32, ScalarType.Float32);

            var row = SummaryRow.Of(c, r32, r64);
            if (!(row.Worst <= 1e-4))
                throw new InvalidOperationException($"{c.Name}: LibTorch float32 is {row.Worst:E2} (normwise) away from float64; expected ~1e-6");
            rows.Add(row);

            byte[] file = CaseFile.Build(c, data, r32, r64, generator);
            SafeTensorsWriter.Validate(file);
            File.WriteAllBytes(Path.Combine(outDir, c.Name + ".safetensors"), file);
        }

        // Remove files of cases that are no longer in the list, so the folder is exactly the list.
        var names = Cases.All.Select(c => c.Name + ".safetensors").ToHashSet();
        foreach (var f in Directory.GetFiles(outDir, "*.safetensors"))
            if (!names.Contains(Path.GetFileName(f))) File.Delete(f);

        string table = SummaryRow.Table(rows);
        Console.WriteLine();
        Console.WriteLine("LibTorch float32 vs float64, normwise relative error ||a - e|| / ||e||:");
        Console.WriteLine(table);
        Console.WriteLine($"worst over all cases and quantities: {rows.Max(r => r.Worst):E2}");
        File.WriteAllText(Path.Combine(outDir, "README.md"), Readme.Text(generator, rows, table));
        long bytes = Directory.GetFiles(outDir).Sum(f => new FileInfo(f).Length);
        Console.WriteLine($"wrote {rows.Count} cases + README.md to {outDir} ({bytes / 1024.0:F0} KiB); self-check passed on every case");
        return 0;
    }

    private static string GeneratorDescription()
    {
        string ts = typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "?";
        int plus = ts.IndexOf('+', StringComparison.Ordinal);
        if (plus >= 0) ts = ts[..plus];
        return $"RnnSimd.TorchGolden with TorchSharp {ts}, LibTorch {__version__} (CPU, 1 thread, {Determinism.Describe()}): " +
               "expected.* from module.to(float64), torch32.* from float32";
    }

    /// <summary>A second run must give bitwise the same results, or the files would not be reproducible.</summary>
    private static void CheckRepeatable(GoldenCase c, CaseData data, RunResult first, ScalarType dtype)
    {
        var again = TorchRunner.Run(c, data, dtype);
        bool same = first.Output.AsSpan().SequenceEqual(again.Output)
            && first.HN.AsSpan().SequenceEqual(again.HN)
            && first.Grads.Zip(again.Grads).All(g => g.First.Grad.AsSpan().SequenceEqual(g.Second.Grad));
        if (!same)
            throw new InvalidOperationException($"{c.Name}: two {dtype} LibTorch runs differ bitwise; the files would not be reproducible");
    }
}

/// <summary>Normwise relative errors of the float32 run against the float64 run, for one case.</summary>
internal sealed record SummaryRow(string Name, double Output, double HN, double? CN, double GradInput, double GradH0, double? GradC0, double GradParams, string WorstParam)
{
    public double Worst => new[] { Output, HN, CN ?? 0, GradInput, GradH0, GradC0 ?? 0, GradParams }.Max();

    public static SummaryRow Of(GoldenCase c, RunResult r32, RunResult r64)
    {
        double G(string n) => RelErr(r32.Grads.Single(g => g.Name == n).Grad, r64.Grads.Single(g => g.Name == n).Grad);
        var paramErrs = c.Parameters().Select(p => (p.Name, Err: G(p.Name))).ToList();
        var worst = paramErrs.MaxBy(p => p.Err);
        return new SummaryRow(c.Name,
            RelErr(r32.Output, r64.Output), RelErr(r32.HN, r64.HN), c.IsLstm ? RelErr(r32.CN!, r64.CN!) : null,
            G("input"), G("h0"), c.IsLstm ? G("c0") : null, worst.Err, worst.Name);
    }

    /// <summary>||a - e||_2 / ||e||_2 (plain ||a - e|| if e is all zeros).</summary>
    public static double RelErr(double[] a, double[] e)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { num += (a[i] - e[i]) * (a[i] - e[i]); den += e[i] * e[i]; }
        return den > 0 ? Math.Sqrt(num / den) : Math.Sqrt(num);
    }

    public static string Table(IEnumerable<SummaryRow> rows)
    {
        static string F(double? v) => v is null ? "-" : v.Value.ToString("0.0E+0", CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        sb.AppendLine("| case | output | h_n | c_n | grad.input | grad.h0 | grad.c0 | worst grad.<param> |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Name} | {F(r.Output)} | {F(r.HN)} | {F(r.CN)} | {F(r.GradInput)} | {F(r.GradH0)} | {F(r.GradC0)} | {F(r.GradParams)} ({r.WorstParam}) |");
        return sb.ToString().TrimEnd();
    }
}
