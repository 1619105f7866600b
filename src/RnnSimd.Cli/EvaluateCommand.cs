using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using RnnSimd.Layers;
using RnnSimd.Memory;
using RnnSimd.Training;

namespace RnnSimd.Cli;

/// <summary>One precision's validation loss: nats per character over <see cref="Predictions"/> predicted characters.</summary>

/// <summary>One row of the S2 error table: a cell in a reduced precision against its float32 network.</summary>
/// <param name="WeightError">||W_q - W|| / ||W|| over every weight matrix (the quantization error itself).</param>
/// <param name="OutputError">||y_q - y|| / ||y|| over the whole output sequence (T, B, H).</param>
/// <param name="MaxAbsError">max |y_q - y| over the output sequence.</param>
internal readonly record struct S2ErrorRow(string Cell, Precision Precision, double WeightError, double OutputError, double MaxAbsError);

/// <summary>
/// <c>rnnsimd evaluate</c>: what the reduced precisions cost in accuracy, end to end. With a character-LM checkpoint:
/// the validation loss (nats/char) of its float32 network and of the bf16 and int8 conversions of that network (the
/// output head stays float32), computed the way training computes its held-out figure. With <c>--s2-error</c>: the
/// output error of bf16 and int8 against float32 for random networks of benchmark S2's shape.
/// </summary>
internal static class EvaluateCommand
{
    /// <summary>S2's shape: input 64, hidden 256, T 128, B 1.</summary>
    public const int S2Input = 64, S2Hidden = 256, S2Steps = 128;

    private static readonly CellType[] S2Cells = [CellType.Lstm, CellType.Gru, CellType.RnnTanh];

    public static Command Create(TextWriter o)
    {
        var checkpoint = new Argument<string?>("checkpoint") { Description = "A charlm checkpoint (from rnnsimd train charlm --checkpoint).", Arity = ArgumentArity.ZeroOrOne };
        var text = new Option<string?>("--text") { Description = "The UTF-8 text the checkpoint was trained on; its last 10 % is the validation text, as in training." };
        var precision = new Option<string>("--precision") { DefaultValueFactory = _ => "all", Description = "float32, bf16, int8 or all." };
        precision.Validators.Add(r =>
        {
            string value = r.GetValueOrDefault<string>() ?? "";
            if (value == "all") return;
            try { PrecisionNames.Parse(value, "--precision"); }
            catch (ArgumentException ex) { r.AddError(ex.Message.Replace("expected float32, bf16 or int8", "expected float32, bf16, int8 or all", StringComparison.Ordinal)); }
        });
        var chunks = new Option<int>("--chunks")
        {
            DefaultValueFactory = _ => 32,
            Description = "At most this many chunks of T characters per stream (32: training's held-out evaluation).",
        };
        chunks.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1) r.AddError($"--chunks must be at least 1, got {r.GetValueOrDefault<int>()}.");
        });
        var breakdown = new Option<bool>("--breakdown")
        {
            Description = "Also evaluate float32 networks with only some weight matrices rounded to bf16 / int8 (all, per layer, W_ih or W_hh only): which part loses what.",
        };
        var s2 = new Option<bool>("--s2-error") { Description = "Instead of a checkpoint: output error of bf16 and int8 vs float32 for random lstm, gru and rnn_tanh networks of S2's shape." };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1UL, Description = "Seed of the networks and inputs of --s2-error." };
        var command = new Command("evaluate", "Validation nats/char of a charlm checkpoint in float32, bf16 and int8; or (--s2-error) the output error of bf16 and int8 at S2's shape.")
            { checkpoint, text, precision, chunks, breakdown, s2, seed };
        command.SetAction(pr =>
        {
            if (pr.GetValue(s2))
            {
                if (pr.GetValue(checkpoint) is not null || pr.GetValue(text) is not null)
                    throw new ArgumentException("--s2-error uses random networks: give no checkpoint and no --text.");
                return PrintS2Errors(pr.GetValue(seed), o);
            }
            string p = pr.GetValue(precision)!;
            Precision[] precisions = p == "all" ? [Precision.Float32, Precision.BFloat16, Precision.Int8] : [PrecisionNames.Parse(p, "--precision")];
            return EvaluateCheckpoint(pr.GetValue(checkpoint), pr.GetValue(text), precisions, pr.GetValue(chunks), pr.GetValue(breakdown), o);
        });
        return command;
    }

    // ---------------- character LM ----------------

    private static int EvaluateCheckpoint(string? checkpoint, string? textPath, Precision[] precisions, int chunks, bool breakdown, TextWriter o)
    {
        if (checkpoint is null) throw new ArgumentException("evaluate needs a CHECKPOINT of a character LM (or --s2-error).");
        if (textPath is null) throw new ArgumentException("evaluate needs --text FILE, the text the checkpoint was trained on.");
        // The trainer's own loader: every tensor, shape and the vocabulary are checked against the text.
        var trainer = Trainer.Resume(checkpoint, CharCorpus.FromFile(textPath));
        var c = trainer.Config;
        if (c.Task != TaskKind.CharLm) throw new InvalidDataException($"{checkpoint} is a '{c.TaskName}' checkpoint; evaluate takes a charlm one.");
        var net = trainer.Network;
        int[] validation = trainer.Corpus!.Validation;
        o.WriteLine($"{checkpoint}: {net.Options.CellName} hidden {c.Hidden} x{c.Layers}, vocabulary {trainer.Corpus.Vocabulary.Length}, step {trainer.StepCount}, kernels {net.Kernels.Name}");
        var sw = Stopwatch.StartNew();
        var first = CharLmEvaluation.ValidationLoss(net, trainer.Head, validation, c.Batch, c.SeqLen, chunks);
        double firstSeconds = sw.Elapsed.TotalSeconds;
        o.WriteLine($"validation: the last {validation.Length} characters of {textPath}, as {c.Batch} streams read in chunks of {c.SeqLen} (at most {chunks}): "
            + $"{first.Predictions} predictions");
        o.WriteLine("| precision | nats/char | vs float32 (nats/char) | weight bytes | seconds |");
        o.WriteLine("|---|---:|---:|---:|---:|");
        double reference = precisions.Contains(Precision.Float32) ? first.NatsPerChar : double.NaN;
        foreach (var p in precisions)
        {
            sw.Restart();
            var q = p == Precision.Float32 ? net : net.ToInference(p);
            var r = p == Precision.Float32 ? first : CharLmEvaluation.ValidationLoss(q, trainer.Head, validation, c.Batch, c.SeqLen, chunks);
            double seconds = p == Precision.Float32 ? firstSeconds : sw.Elapsed.TotalSeconds;
            o.WriteLine($"| {p.Name()} | {Nats(r)} | {Relative(r.NatsPerChar, reference)} | {WeightBytes(q):N0} | {seconds:F1} |");
        }
        if (breakdown)
        {
            if (double.IsNaN(reference)) reference = first.NatsPerChar;
            o.WriteLine();
            o.WriteLine("float32 network with some weight matrices rounded (float32 products, float32 x and h):");
            o.WriteLine("| rounded | to | nats/char | vs float32 (nats/char) |");
            o.WriteLine("|---|---|---:|---:|");
            foreach (var p in new[] { Precision.BFloat16, Precision.Int8 })
                foreach (var (label, select) in Parts(c.Layers))
                {
                    var r = CharLmEvaluation.ValidationLoss(WithRoundedWeights(net, p, select), trainer.Head, validation, c.Batch, c.SeqLen, chunks);
                    o.WriteLine($"| {label} | {p.Name()} | {Nats(r)} | {Relative(r.NatsPerChar, reference)} |");
                }
        }
        return 0;
    }

    private static string Relative(double value, double reference) =>
        double.IsNaN(reference) ? "" : $"{Signed(100 * (value - reference) / reference, "F3")} % ({Signed(value - reference, "0.0e+0")})";

    private static string Nats(ValidationResult r) => r.NatsPerChar.ToString("F5", CultureInfo.InvariantCulture);

    /// <summary>A signed figure ("+0.12", "-0.03"); a custom format's negative section would print "-+0.00" for -0.001.</summary>
    private static string Signed(double value, string format) =>
        (value < 0 ? "-" : "+") + Math.Abs(value).ToString(format, CultureInfo.InvariantCulture);

    /// <summary>Bytes of the weight matrices as the network stores them (float32: 4 per weight).</summary>
    private static long WeightBytes(RecurrentNetwork net) => net.Precision == Precision.Float32
        ? 4L * net.Parameters.Entries.Where(e => RecurrentNetwork.IsWeightMatrix(e.Name)).Sum(e => (long)e.Length)
        : net.GetReducedWeights().Sum(t => t.Bytes);

    /// <summary>The weight-matrix groups the breakdown rounds: all, each layer, every W_ih, every W_hh.</summary>
    private static IEnumerable<(string Label, Func<string, bool> Select)> Parts(int layers)
    {
        yield return ("every weight matrix", _ => true);
        for (int l = 0; l < layers; l++)
        {
            string suffix = $"_l{l}";
            yield return ($"layer {l} (W_ih, W_hh)", n => n.EndsWith(suffix, StringComparison.Ordinal));
        }
        yield return ("every W_ih", n => n.StartsWith("weight_ih_", StringComparison.Ordinal));
        yield return ("every W_hh", n => n.StartsWith("weight_hh_", StringComparison.Ordinal));
    }

    /// <summary>
    /// A float32 copy of <paramref name="net"/> whose selected weight matrices hold their <paramref name="precision"/>
    /// values (rounded and dequantized): the weights' share of a reduced precision's error, without the int8 path's
    /// quantization of x and h.
    /// </summary>
    internal static RecurrentNetwork WithRoundedWeights(RecurrentNetwork net, Precision precision, Func<string, bool> select)
    {
        var copy = net.ToInference(Precision.Float32);
        foreach (var e in copy.Parameters.Entries)
            if (RecurrentNetwork.IsWeightMatrix(e.Name) && select(e.Name))
            {
                var view = copy.Parameters.View(e);
                QuantizedTensor.Quantize(e.Name, precision, view, e.Shape[0], e.Shape[1]).Dequantize(view);
            }
        copy.ParametersChanged();
        return copy;
    }


    // ---------------- S2 output error ----------------

    /// <summary>
    /// For lstm, gru and rnn_tanh at S2's shape (I 64, H 256, T 128, B 1), PyTorch's default initialisation from
    /// <paramref name="seed"/> and x ~ U(-1, 1) from the same seed, zero initial state: each reduced precision's output
    /// sequence against the float32 network's (inference Forward for both).
    /// </summary>
    internal static IReadOnlyList<S2ErrorRow> S2Errors(ulong seed)
    {
        var rows = new List<S2ErrorRow>();
        foreach (var cell in S2Cells)
        {
            var net = new RecurrentNetwork(new RecurrentOptions(cell, S2Input, S2Hidden), seed);
            float[] x = S2Inputs(seed);
            float[] y = RunS2(net, x);
            foreach (var p in new[] { Precision.BFloat16, Precision.Int8 })
            {
                var q = net.ToInference(p);
                float[] yq = RunS2(q, x);
                double maxAbs = 0;
                for (int i = 0; i < y.Length; i++) maxAbs = Math.Max(maxAbs, Math.Abs((double)yq[i] - y[i]));
                rows.Add(new S2ErrorRow(net.Options.CellName, p, WeightError(q, net), Normwise(yq, y), maxAbs));
            }
        }
        return rows;
    }

    /// <summary>S2's input (T, B, I) = (128, 1, 64), U(-1, 1) from <paramref name="seed"/>.</summary>
    internal static float[] S2Inputs(ulong seed)
    {
        var rng = new Xoshiro(seed ^ 0x5EED_0F_52_1A_9E7UL);
        var x = new float[S2Steps * S2Input];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextFloat(-1f, 1f);
        return x;
    }

    /// <summary>The output sequence (T, 1, H) of an inference Forward from a zero state.</summary>
    internal static float[] RunS2(RecurrentNetwork net, float[] x)
    {
        var y = new float[S2Steps * net.Options.OutputHidden];
        net.Forward(x, S2Steps, 1, [], [], y, [], [], net.CreateInferenceWorkspace(S2Steps, 1));
        return y;
    }

    /// <summary>||a - e|| / ||e|| in double.</summary>
    internal static double Normwise(ReadOnlySpan<float> a, ReadOnlySpan<float> e)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < e.Length; i++)
        {
            double d = (double)a[i] - e[i];
            diff += d * d;
            norm += (double)e[i] * e[i];
        }
        return Math.Sqrt(diff / norm);
    }

    /// <summary>||W_q - W|| / ||W|| over every weight matrix: a reduced network's parameters hold the values it computes with.</summary>
    private static double WeightError(RecurrentNetwork reduced, RecurrentNetwork net)
    {
        var q = new List<float>();
        var w = new List<float>();
        foreach (var e in net.Parameters.Entries.Where(e => RecurrentNetwork.IsWeightMatrix(e.Name)))
        {
            q.AddRange(reduced.Parameters[e.Name].ToArray());
            w.AddRange(net.Parameters.View(e).ToArray());
        }
        return Normwise(q.ToArray(), w.ToArray());
    }

    private static int PrintS2Errors(ulong seed, TextWriter o)
    {
        o.WriteLine($"S2 shape: I {S2Input}, H {S2Hidden}, T {S2Steps}, B 1; PyTorch's default init U(-1/16, 1/16) and x ~ U(-1, 1), seed {seed}; zero initial state");
        o.WriteLine("| cell | precision | weights: \\|W_q - W\\| / \\|W\\| | output: \\|y_q - y\\| / \\|y\\| | max \\|y_q - y\\| |");
        o.WriteLine("|---|---|---:|---:|---:|");
        foreach (var r in S2Errors(seed))
            o.WriteLine($"| {r.Cell} | {r.Precision.Name()} | {E(r.WeightError)} | {E(r.OutputError)} | {E(r.MaxAbsError)} |");
        return 0;

        static string E(double v) => v.ToString("0.00e+0", CultureInfo.InvariantCulture);
    }
}
