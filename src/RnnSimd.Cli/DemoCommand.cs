using System.Runtime.InteropServices;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RnnSimd.Layers;
using RnnSimd.Training;
using Spectre.Console;

namespace RnnSimd.Cli;

/// <summary>
/// rnnsimd demo: the vanishing-gradient lesson. Trains a tanh RNN, an LSTM and a GRU on the adding problem side by
/// side, prints their held-out MSE against the 1/6 baseline, and writes loss.png, gradient-flow.png and summary.json.
/// </summary>
internal static class DemoCommand
{
    public sealed record Result(string Cell, double TestMse, int Steps, double Seconds, double[] Losses, double[] FlowBefore, double[] FlowAfter);

    public static int Run(string outDir, int steps, int seqLen, bool quick, TextWriter o)
    {
        if (steps <= 0) throw new ArgumentException($"--steps must be positive, got {steps}.");
        if (seqLen < 2) throw new ArgumentException($"--seq-len must be at least 2, got {seqLen}.");
        Directory.CreateDirectory(outDir);
        var cells = new[] { CellType.RnnTanh, CellType.Lstm, CellType.Gru };
        var trainers = cells.Select(c => new Trainer(new TrainingConfig(TaskKind.Adding, c, Hidden: quick ? 32 : 128, SeqLen: seqLen,
            Batch: 32, Optimizer: "adam", LearningRate: 2e-3f, Clip: 1f, TotalSteps: steps, Seed: 1))).ToArray();
        var results = new Result[cells.Length];
        var flowsBefore = trainers.Select(t => t.GradientFlow()).ToArray();
        var losses = trainers.Select(_ => new List<double>(steps)).ToArray();
        var seconds = new double[cells.Length];
        var done = new int[cells.Length];
        // Ctrl+C / SIGTERM: each training finishes its current step and stops; the results so far are evaluated, plotted
        // and written as usual, then the command exits 130 / 143. A second signal ends the process at once.
        int stop = 0;
        void OnSignal(PosixSignalContext ctx) =>
            ctx.Cancel = Interlocked.CompareExchange(ref stop, ctx.Signal == PosixSignal.SIGTERM ? 143 : 130, 0) == 0;
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        bool interactive = !Console.IsOutputRedirected && ReferenceEquals(o, Console.Out);
        o.WriteLine($"adding problem, T = {seqLen}, hidden {trainers[0].Config.Hidden}, batch 32, Adam lr 2e-3, clip 1, {steps} steps, kernel set {trainers[0].Network.Kernels.Name}");

        void TrainAll(Action<int, int, double>? progress)
        {
            // The three trainings run side by side: one task each on the thread pool (2 cores share 3 cells).
            var tasks = trainers.Select((t, i) => Task.Run(() =>
            {
                var sw = Stopwatch.StartNew();
                for (int s = 0; s < steps && Volatile.Read(ref stop) == 0; s++)
                {
                    var r = t.Step();
                    losses[i].Add(r.Loss);
                    done[i] = s + 1;
                    progress?.Invoke(i, s + 1, r.Loss);
                }
                seconds[i] = sw.Elapsed.TotalSeconds;
            })).ToArray();
            Task.WaitAll(tasks);
        }

        if (interactive)
        {
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var bars = cells.Select(c => ctx.AddTask($"{Name(c),-8}", maxValue: steps)).ToArray();
                    TrainAll((i, s, loss) =>
                    {
                        if (s % 10 != 0 && s != steps) return;
                        bars[i].Value = s;
                        bars[i].Description = $"{Name(cells[i]),-8} loss {Smooth(losses[i]):F4}";
                    });
                });
        }
        else
        {
            int reported = 0;
            TrainAll((i, s, _) =>
            {
                if (i == 0 && s * 4 / steps > reported) { reported = s * 4 / steps; lock (o) o.WriteLine($"  {reported * 25}% ..."); }
            });
        }

        for (int i = 0; i < cells.Length; i++)
        {
            double test = trainers[i].Evaluate(quick ? 8 : 32);
            results[i] = new Result(Name(cells[i]), test, done[i], seconds[i], losses[i].ToArray(), flowsBefore[i], trainers[i].GradientFlow());
        }

        var table = new Table().AddColumns("cell", "test MSE", "baseline", "steps", "steps/s", "seconds");
        foreach (var r in results)
            table.AddRow(r.Cell, F(r.TestMse), F(AddingProblem.BaselineMse), r.Steps.ToString(CultureInfo.InvariantCulture),
                (r.Steps / r.Seconds).ToString("F1", CultureInfo.InvariantCulture), r.Seconds.ToString("F1", CultureInfo.InvariantCulture));
        if (interactive) AnsiConsole.Write(table);
        else
        {
            o.WriteLine($"{"cell",-10}{"test MSE",12}{"baseline",12}{"steps",8}{"steps/s",10}{"seconds",10}");
            foreach (var r in results)
                o.WriteLine($"{r.Cell,-10}{F(r.TestMse),12}{F(AddingProblem.BaselineMse),12}{r.Steps,8}{(r.Steps / r.Seconds).ToString("F1", CultureInfo.InvariantCulture),10}{r.Seconds.ToString("F1", CultureInfo.InvariantCulture),10}");
        }

        Plots.Losses(Path.Combine(outDir, "loss.png"), results, AddingProblem.BaselineMse);
        Plots.GradientFlow(Path.Combine(outDir, "gradient-flow.png"), results);
        WriteSummary(Path.Combine(outDir, "summary.json"), seqLen, results);
        o.WriteLine($"wrote {Path.Combine(outDir, "loss.png")}, gradient-flow.png and summary.json");
        if (stop != 0)
        {
            o.WriteLine($"stopped by {(stop == 143 ? "SIGTERM" : "SIGINT")} after {string.Join(", ", results.Select(r => $"{r.Cell} {r.Steps}"))} of {steps} steps; the results above are for those steps.");
            return stop;
        }
        return 0;
    }

    private static string Name(CellType c) => new RecurrentOptions(c, 1, 1).CellName;
    private static string F(double v) => v.ToString("F4", CultureInfo.InvariantCulture);

    private static double Smooth(List<double> l)
    {
        int n = Math.Min(20, l.Count);
        double s = 0;
        for (int i = l.Count - n; i < l.Count; i++) s += l[i];
        return n == 0 ? double.NaN : s / n;
    }

    private static void WriteSummary(string path, int seqLen, Result[] results)
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("task", "adding");
        w.WriteNumber("seq_len", seqLen);
        w.WriteNumber("baseline_mse", Math.Round(AddingProblem.BaselineMse, 4));
        w.WriteStartArray("cells");
        foreach (var r in results)
        {
            w.WriteStartObject();
            w.WriteString("cell", r.Cell);
            w.WriteNumber("test_mse", r.TestMse);
            w.WriteNumber("steps", r.Steps);
            w.WriteNumber("seconds", Math.Round(r.Seconds, 3));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
