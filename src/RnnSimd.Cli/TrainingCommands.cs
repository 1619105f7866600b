using System.CommandLine;
using System.Runtime.InteropServices;
using System.Globalization;
using System.Text;
using RnnSimd.Layers;
using RnnSimd.Memory;
using RnnSimd.Training;
using Spectre.Console;

namespace RnnSimd.Cli;

internal static partial class Commands
{
    static partial void AddTrainingCommands(RootCommand root, TextWriter o, TextWriter e)
    {
        // demo
        var outDir = new Option<string>("--out") { Description = "Output folder.", DefaultValueFactory = _ => "demo-out" };
        var steps = new Option<int?>("--steps") { Description = "Training steps per cell (default 3500; 1500 with --quick)." };
        var seqLen = new Option<int?>("--seq-len") { Description = "Sequence length T (default 100; 30 with --quick)." };
        var quick = new Option<bool>("--quick") { Description = "A small, fast run (CI smoke test)." };
        var demo = new Command("demo", "Train a tanh RNN, an LSTM and a GRU on the adding problem side by side: the vanishing-gradient lesson.")
            { outDir, steps, seqLen, quick };
        demo.SetAction(pr =>
        {
            bool q = pr.GetValue(quick);
            return DemoCommand.Run(pr.GetValue(outDir)!, pr.GetValue(steps) ?? (q ? 1500 : 3500), pr.GetValue(seqLen) ?? (q ? 30 : 100), q, o);
        });
        root.Subcommands.Add(demo);

        // train
        var task = new Argument<string>("task") { Description = "adding, copy, charlm, or seq (your own sequences: --data FILE)." };
        task.AcceptOnlyFromAmong("adding", "copy", "charlm", "seq");
        var text = new Option<string?>("--text") { Description = "UTF-8 text file (charlm)." };
        var data = new Option<string?>("--data")
        {
            Description = "seq: a safetensors file with inputs (N, T, I), targets (N, T, O) / (N, O) float or (N, T) / (N) integer classes, optional lengths (N).",
        };
        var targetKind = new Option<string?>("--task") { Description = "seq: regression or classification (default: from the targets' dtype, float or integer)." };
        targetKind.AcceptOnlyFromAmong("regression", "classification");
        var validation = new Option<double>("--validation") { DefaultValueFactory = _ => 0.1, Description = "seq: the fraction of sequences held out for validation, in [0, 1)." };
        validation.Validators.Add(r =>
        {
            double v = r.GetValueOrDefault<double>();
            if (!(v >= 0 && v < 1)) r.AddError($"--validation must be in [0, 1), got {v.ToString(CultureInfo.InvariantCulture)}.");
        });
        var dropout = new Option<float>("--dropout") { DefaultValueFactory = _ => 0f, Description = "Dropout between layers (as nn.LSTM(dropout=p)), in [0, 1); needs --layers 2 or more." };
        var outputDropout = new Option<float>("--output-dropout")
        {
            DefaultValueFactory = _ => 0f, Description = "charlm: variational dropout of the top layer's output (one mask per stream and chunk), in [0, 1).",
        };
        foreach (var p in new[] { dropout, outputDropout })
            p.Validators.Add(r =>
            {
                float v = r.GetValueOrDefault<float>();
                if (!(v >= 0 && v < 1)) r.AddError($"{p.Name} must be in [0, 1), got {v.ToString(CultureInfo.InvariantCulture)}.");
            });
        var cell = new Option<string>("--cell") { Description = "lstm, gru, rnn_tanh or rnn_relu.", DefaultValueFactory = _ => "lstm" };
        cell.AcceptOnlyFromAmong("lstm", "gru", "rnn_tanh", "rnn_relu");
        var hidden = new Option<int>("--hidden") { DefaultValueFactory = _ => 128, Description = "Hidden units." };
        var layers = new Option<int>("--layers") { DefaultValueFactory = _ => 1, Description = "Stacked layers." };
        var tSeq = new Option<int>("--seq-len") { DefaultValueFactory = _ => 100, Description = "T (adding), delay (copy), BPTT chunk (charlm); seq: not used (T is the data's)." };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32, Description = "Batch size." };
        var optimizer = new Option<string>("--optimizer") { DefaultValueFactory = _ => "adam", Description = "sgd, adagrad, rmsprop, adam, adamw." };
        optimizer.AcceptOnlyFromAmong("sgd", "adagrad", "rmsprop", "adam", "adamw");
        var lr = new Option<float>("--lr") { DefaultValueFactory = _ => 2e-3f, Description = "Learning rate." };
        var clip = new Option<float>("--clip") { DefaultValueFactory = _ => 1f, Description = "Global gradient-norm clip (0: none)." };
        var schedule = new Option<string>("--schedule") { DefaultValueFactory = _ => "constant", Description = "constant, step or cosine." };
        schedule.AcceptOnlyFromAmong("constant", "step", "cosine");
        var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 0, Description = "Linear warm-up steps." };
        var nSteps = new Option<int>("--steps") { DefaultValueFactory = _ => 1000, Description = "Training steps." };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1UL, Description = "Seed." };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Checkpoint file (written every --every steps and at the end)." };
        var resume = new Option<bool>("--resume") { Description = "Continue from --checkpoint." };
        var every = new Option<int>("--every") { DefaultValueFactory = _ => 200, Description = "Validate and checkpoint every N steps (at least 1)." };
        every.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1) r.AddError($"--every must be at least 1, got {r.GetValueOrDefault<int>()}.");
        });
        var shards = new Option<int>("--shards")
        {
            DefaultValueFactory = _ => 1,
            Description = "Data-parallel shards of each batch (each on its own thread when RNNSIMD_THREADS allows; results depend on shards, not threads).",
        };
        var train = new Command("train", "Train on a task (or your own sequences) with progress, periodic validation and checkpoints.")
        {
            task, text, data, targetKind, validation, cell, hidden, layers, tSeq, batch, optimizer, lr, clip, schedule, warmup, nSteps, seed,
            checkpoint, resume, every, shards, dropout, outputDropout,
        };
        train.Validators.Add(r =>
        {
            if (r.GetValue(resume)) return; // the checkpoint's config is used
            if (r.GetValue(dropout) > 0 && r.GetValue(layers) < 2)
                r.AddError("--dropout acts between layers, so it needs --layers 2 or more (as nn.LSTM(dropout=p)).");
            if (r.GetValue(outputDropout) > 0 && r.GetValue(task) != "charlm")
                r.AddError("--output-dropout is for charlm (variational dropout of the top layer's output, one mask per stream and chunk).");
        });
        train.SetAction(pr =>
        {
            var kind = TrainingConfig.ParseTask(pr.GetValue(task)!);
            string? textPath = pr.GetValue(text), dataPath = pr.GetValue(data), targets = pr.GetValue(targetKind);
            double validationFraction = pr.GetValue(validation);
            CharCorpus? corpus = null;
            SequenceDataset? trainData = null, validationData = null;
            string resumeArgs = "";
            if (kind == TaskKind.CharLm)
            {
                if (textPath is null) throw new ArgumentException("charlm needs --text FILE.");
                corpus = CharCorpus.FromFile(textPath);
                resumeArgs = " --text FILE";
            }
            if (kind == TaskKind.Sequence)
            {
                if (dataPath is null) throw new ArgumentException("seq needs --data FILE (a safetensors file with inputs, targets and optionally lengths; see rnnsimd train --help).");
                var all = SequenceDataset.Load(dataPath, targets switch
                {
                    "regression" => SequenceTargetKind.Regression,
                    "classification" => SequenceTargetKind.Classification,
                    _ => null,
                });
                (trainData, validationData) = all.Split(validationFraction);
                o.WriteLine($"data {dataPath}: {all.Describe()}; {trainData.Count} for training, {validationData?.Count ?? 0} for validation");
                resumeArgs = $" --data {dataPath}" + (targets is null ? "" : $" --task {targets}")
                    + (validationFraction == 0.1 ? "" : $" --validation {validationFraction.ToString(CultureInfo.InvariantCulture)}");
            }
            else if (dataPath is not null) throw new ArgumentException($"--data is for the seq task, not {pr.GetValue(task)}.");
            string? ckpt = pr.GetValue(checkpoint);
            if (ckpt is not null && !pr.GetValue(resume)) CheckWritable(ckpt);
            Trainer trainer;
            if (pr.GetValue(resume))
            {
                if (ckpt is null) throw new ArgumentException("--resume needs --checkpoint FILE.");
                trainer = trainData is null ? Trainer.Resume(ckpt, corpus) : Trainer.Resume(ckpt, trainData, validationData);
                o.WriteLine($"resumed {ckpt} at step {trainer.StepCount}");
            }
            else
            {
                var config = new TrainingConfig(kind, RecurrentOptions.ParseCell(pr.GetValue(cell)!), pr.GetValue(hidden), pr.GetValue(layers),
                    pr.GetValue(tSeq), pr.GetValue(batch), pr.GetValue(optimizer)!, pr.GetValue(lr), pr.GetValue(clip), false,
                    pr.GetValue(schedule)!, pr.GetValue(warmup), pr.GetValue(nSteps), pr.GetValue(seed), Shards: pr.GetValue(shards),
                    Dropout: pr.GetValue(dropout), OutputDropout: pr.GetValue(outputDropout));
                trainer = trainData is null ? new Trainer(config, corpus) : new Trainer(config, trainData, validationData);
            }
            bool interactive = !Console.IsOutputRedirected && ReferenceEquals(o, Console.Out);
            return TrainLoop(trainer, pr.GetValue(nSteps), pr.GetValue(every), ckpt, resumeArgs, o, e, interactive ? AnsiConsole.Console : null);
        });
        root.Subcommands.Add(train);

        // sample
        var sCkpt = new Option<string>("--checkpoint") { Description = "A charlm checkpoint.", Required = true };
        var prime = new Option<string>("--prime") { DefaultValueFactory = _ => "\n", Description = "Priming text." };
        var length = new Option<int>("--length") { DefaultValueFactory = _ => 500, Description = "Characters to sample." };
        var temperature = new Option<float>("--temperature") { DefaultValueFactory = _ => 0.8f, Description = "Sampling temperature (> 0)." };
        var sSeed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1UL, Description = "Seed." };
        var sPrecision = new Option<string?>("--precision") { Description = "float32, bf16 or int8: convert a float32 checkpoint's network first (default: the file's precision)." };
        sPrecision.Validators.Add(r =>
        {
            try { PrecisionNames.Parse(r.GetValueOrDefault<string?>() ?? "", "--precision"); }
            catch (ArgumentException ex) { r.AddError(ex.Message); }
        });
        var sample = new Command("sample", "Sample text from a character-LM checkpoint, or from its bf16 / int8 file (rnnsimd quantize).")
            { sCkpt, prime, length, temperature, sSeed, sPrecision };
        sample.SetAction(pr => Sampler.Run(pr.GetValue(sCkpt)!, pr.GetValue(prime)!, pr.GetValue(length), pr.GetValue(temperature), pr.GetValue(sSeed),
            pr.GetValue(sPrecision) is { } p ? PrecisionNames.Parse(p, "--precision") : null, o));
        root.Subcommands.Add(sample);
    }

    /// <summary>
    /// Fails before any training when the checkpoint could not be written: its directory must exist and take a new
    /// file (one is created and deleted), so the error names the path now, not after --every steps.
    /// </summary>
    private static void CheckWritable(string checkpoint)
    {
        string full = Path.GetFullPath(checkpoint);
        string dir = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(dir)) throw new IOException($"cannot write the checkpoint {checkpoint}: directory {dir} does not exist.");
        if (Directory.Exists(full)) throw new IOException($"cannot write the checkpoint {checkpoint}: it is a directory.");
        try
        {
            using var probe = new FileStream(Path.Combine(dir, $".rnnsimd-write-check-{Environment.ProcessId}"), FileMode.CreateNew,
                FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"cannot write the checkpoint {checkpoint}: directory {dir} does not take new files ({e.Message.ReplaceLineEndings(" ")}).");
        }
    }

    /// <summary>
    /// Runs <paramref name="trainer"/> to <paramref name="steps"/>, validating and checkpointing every <paramref name="every"/>
    /// steps. With <paramref name="live"/> (a terminal) a Spectre.Console progress display shows the step, the recent
    /// training loss, the last validation, steps/s and the time left, with the validation lines printed above it;
    /// without (output redirected) every figure is a plain line.
    /// </summary>
    /// <param name="resumeArgs">What a resume command needs besides the checkpoint (e.g. " --data FILE"), for the message after a signal.</param>
    internal static int TrainLoop(Trainer trainer, int steps, int every, string? checkpoint, string resumeArgs, TextWriter o, TextWriter e, IAnsiConsole? live)
    {
        var c = trainer.Config;
        var data = trainer.TrainingData;
        bool classes = data?.Kind == SequenceTargetKind.Classification;
        string metric = c.Task switch
        {
            TaskKind.Adding => "MSE",
            TaskKind.Copy => "CE/step",
            TaskKind.Sequence => classes ? "CE" : "MSE",
            _ => "nats/char",
        };
        string where = c.Task == TaskKind.Sequence && trainer.ValidationData is null ? "train-set" : "held-out";
        o.WriteLine($"{c.TaskName}: {c.Cell} hidden {c.Hidden} x{c.Layers}, T {(data is null ? c.SeqLen : data.Steps)}, batch {c.Batch}, {c.Optimizer} lr {c.LearningRate.ToString(CultureInfo.InvariantCulture)}, kernels {trainer.Network.Kernels.Name}"
            + (c.Shards > 1 ? $", {c.Shards} shards on up to {RnnSimd.Kernels.Parallelism.MaxThreads} threads" : "")
            + (c.Dropout > 0 ? $", dropout {c.Dropout.ToString(CultureInfo.InvariantCulture)}" : "")
            + (c.OutputDropout > 0 ? $", output dropout {c.OutputDropout.ToString(CultureInfo.InvariantCulture)}" : ""));
        if (c.Task == TaskKind.Adding) o.WriteLine($"baseline MSE {AddingProblem.BaselineMse:F4}");
        if (c.Task == TaskKind.Copy) o.WriteLine($"baseline CE/step {new CopyMemory(c.SeqLen).BaselineCrossEntropy:F4}");
        if (data is not null)
        {
            var (loss, accuracy) = data.Baseline(trainer.ValidationData);
            o.WriteLine(classes
                ? $"baseline ({where}, the training set's class frequencies) CE {loss:F4}, majority-class accuracy {accuracy:F4}"
                : $"baseline ({where}, the training set's mean) MSE {loss:F4}");
        }
        int start = trainer.StepCount;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        double window = 0, recent = double.NaN, lastVal = double.NaN;
        int inWindow = 0;
        // Ctrl+C (SIGINT) or SIGTERM: the first one lets the current step finish, then the checkpoint is written and the
        // command exits 130 / 143; a second one takes the default action at once (the last checkpoint, written
        // atomically, stays whole).
        int stop = 0;
        void OnSignal(PosixSignalContext ctx)
        {
            int code = ctx.Signal == PosixSignal.SIGTERM ? 143 : 130;
            ctx.Cancel = Interlocked.CompareExchange(ref stop, code, 0) == 0;
        }
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        double Rate() => (trainer.StepCount - start) / Math.Max(sw.Elapsed.TotalSeconds, 1e-9);

        // One training run to the end, a signal or divergence; report(line) prints a validation line, tick() updates the display.
        int Run(Action<string> report, Action? tick)
        {
            long nextTick = 0;
            while (trainer.StepCount < steps)
            {
                if (Volatile.Read(ref stop) is int code and not 0) return code;
                StepReport r;
                try
                {
                    r = trainer.Step();
                }
                catch (TrainingDivergedException ex)
                {
                    e.WriteLine($"rnnsimd: training stopped: {ex.Message} The last checkpoint{(checkpoint is null ? "" : $" ({checkpoint})")} is left as it was.");
                    return 3;
                }
                window += r.Loss;
                inWindow++;
                recent = double.IsNaN(recent) ? r.Loss : 0.95 * recent + 0.05 * r.Loss;
                if (r.Step % every == 0 || r.Step == steps)
                {
                    string val;
                    if (c.Task == TaskKind.Sequence)
                    {
                        var ev = trainer.EvaluateSequences();
                        lastVal = ev.Loss;
                        val = $"{where} {metric} {ev.Loss:F4}" + (classes ? $"  acc {ev.Accuracy:F4}" : "");
                    }
                    else
                    {
                        lastVal = trainer.Evaluate();
                        val = $"held-out {metric} {lastVal:F4}";
                    }
                    report($"step {r.Step,6}  train {window / inWindow:F4}  {val}  |g| {r.GradientNorm:F3}  lr {r.LearningRate:G3}  {Rate():F1} steps/s");
                    window = 0;
                    inWindow = 0;
                    if (checkpoint is not null) trainer.SaveCheckpoint(checkpoint);
                }
                if (tick is not null && sw.ElapsedMilliseconds >= nextTick)
                {
                    nextTick = sw.ElapsedMilliseconds + 100;
                    tick();
                }
            }
            return 0;
        }

        int result;
        if (live is null) result = Run(o.WriteLine, null);
        else
        {
            result = live.Progress().AutoClear(false).HideCompleted(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 20 }, new PercentageColumn(),
                    new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var bar = ctx.AddTask("training", maxValue: steps);
                    bar.Value = trainer.StepCount;
                    void Tick()
                    {
                        bar.Value = trainer.StepCount;
                        // About 60 characters, so that with the bar, the percentage and the time left it fits 100 columns.
                        bar.Description = $"step {trainer.StepCount}/{steps}  loss {recent:F4}  val {(double.IsNaN(lastVal) ? "-" : lastVal.ToString("F4", CultureInfo.InvariantCulture))}"
                            + $"  {Rate():F1} steps/s";
                    }
                    int code = Run(line => live.WriteLine(line), Tick);
                    Tick();
                    return code;
                });
        }
        if (result is 130 or 143)
        {
            string signal = result == 143 ? "SIGTERM" : "SIGINT";
            if (checkpoint is null)
            {
                e.WriteLine($"rnnsimd: stopped by {signal} after step {trainer.StepCount}; no --checkpoint was given, so nothing was saved.");
            }
            else
            {
                trainer.SaveCheckpoint(checkpoint);
                e.WriteLine($"rnnsimd: stopped by {signal} after step {trainer.StepCount}; checkpoint written to {checkpoint}. "
                    + $"Resume with: rnnsimd train {c.TaskName} --checkpoint {checkpoint} --resume --steps {steps}{resumeArgs}");
            }
        }
        return result;
    }
}

/// <summary>Sampling from a character LM checkpoint with temperature and a priming string (streaming steps, batch 1).</summary>
internal static class Sampler
{
    /// <param name="precision">The network's precision (null: the file's); a float32 checkpoint is converted, the head stays float32.</param>
    public static int Run(string checkpoint, string prime, int length, float temperature, ulong seed, Precision? precision, TextWriter o)
    {
        if (!(temperature > 0)) throw new ArgumentException($"--temperature must be positive, got {temperature}.");
        if (length < 0) throw new ArgumentException($"--length must be non-negative, got {length}.");
        var model = CharLmModel.Load(checkpoint).In(precision, checkpoint);
        var (net, head, vocab) = (model.Network, model.Head, model.Vocabulary);
        int V = vocab.Length;
        var index = vocab.Select((v, i) => (v, i)).ToDictionary(p => p.v, p => p.i);
        var state = net.CreateState(1);
        float[] x = new float[V], h = new float[net.Options.OutputHidden], logits = new float[V];
        var rng = new Xoshiro(seed);
        var text = new StringBuilder();
        int current = -1;
        foreach (var rune in prime.EnumerateRunes())
        {
            if (!index.TryGetValue(rune.Value, out current)) continue; // characters the model never saw are skipped
            Feed(current);
            text.Append(rune.ToString());
        }
        if (current < 0) { current = 0; Feed(0); }
        for (int n = 0; n < length; n++)
        {
            double max = logits.Max(), sum = 0;
            var p = new double[V];
            for (int i = 0; i < V; i++) sum += p[i] = Math.Exp((logits[i] - max) / temperature);
            double u = rng.NextDouble() * sum;
            int next = V - 1;
            for (int i = 0; i < V; i++) { u -= p[i]; if (u < 0) { next = i; break; } }
            text.Append(char.ConvertFromUtf32(vocab[next]));
            Feed(next);
        }
        o.WriteLine(text.ToString());
        return 0;

        void Feed(int symbol)
        {
            Array.Clear(x);
            x[symbol] = 1f;
            net.Step(state, x, h);
            head.Forward(h, 1, logits);
        }
    }
}
