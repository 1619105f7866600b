using System.CommandLine;
using System.Runtime.InteropServices;
using System.Globalization;
using System.Text;
using RnnSimd.Layers;
using RnnSimd.Memory;
using RnnSimd.Training;

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
        var task = new Argument<string>("task") { Description = "adding, copy or charlm." };
        task.AcceptOnlyFromAmong("adding", "copy", "charlm");
        var text = new Option<string?>("--text") { Description = "UTF-8 text file (charlm)." };
        var cell = new Option<string>("--cell") { Description = "lstm, gru, rnn_tanh or rnn_relu.", DefaultValueFactory = _ => "lstm" };
        cell.AcceptOnlyFromAmong("lstm", "gru", "rnn_tanh", "rnn_relu");
        var hidden = new Option<int>("--hidden") { DefaultValueFactory = _ => 128, Description = "Hidden units." };
        var layers = new Option<int>("--layers") { DefaultValueFactory = _ => 1, Description = "Stacked layers." };
        var tSeq = new Option<int>("--seq-len") { DefaultValueFactory = _ => 100, Description = "T (adding), delay (copy), BPTT chunk (charlm)." };
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
        var train = new Command("train", "Train on a task with progress, periodic validation and checkpoints.")
            { task, text, cell, hidden, layers, tSeq, batch, optimizer, lr, clip, schedule, warmup, nSteps, seed, checkpoint, resume, every, shards };
        train.SetAction(pr =>
        {
            var kind = TrainingConfig.ParseTask(pr.GetValue(task)!);
            string? textPath = pr.GetValue(text);
            CharCorpus? corpus = null;
            if (kind == TaskKind.CharLm)
            {
                if (textPath is null) throw new ArgumentException("charlm needs --text FILE.");
                corpus = CharCorpus.FromFile(textPath);
            }
            string? ckpt = pr.GetValue(checkpoint);
            if (ckpt is not null && !pr.GetValue(resume)) CheckWritable(ckpt);
            Trainer trainer;
            if (pr.GetValue(resume))
            {
                if (ckpt is null) throw new ArgumentException("--resume needs --checkpoint FILE.");
                trainer = Trainer.Resume(ckpt, corpus);
                o.WriteLine($"resumed {ckpt} at step {trainer.StepCount}");
            }
            else
            {
                var config = new TrainingConfig(kind, RecurrentOptions.ParseCell(pr.GetValue(cell)!), pr.GetValue(hidden), pr.GetValue(layers),
                    pr.GetValue(tSeq), pr.GetValue(batch), pr.GetValue(optimizer)!, pr.GetValue(lr), pr.GetValue(clip), false,
                    pr.GetValue(schedule)!, pr.GetValue(warmup), pr.GetValue(nSteps), pr.GetValue(seed), Shards: pr.GetValue(shards));
                trainer = new Trainer(config, corpus);
            }
            return TrainLoop(trainer, pr.GetValue(nSteps), pr.GetValue(every), ckpt, o, e);
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

    private static int TrainLoop(Trainer trainer, int steps, int every, string? checkpoint, TextWriter o, TextWriter e)
    {
        var c = trainer.Config;
        string metric = c.Task == TaskKind.Adding ? "MSE" : c.Task == TaskKind.Copy ? "CE/step" : "nats/char";
        o.WriteLine($"{c.TaskName}: {c.Cell} hidden {c.Hidden} x{c.Layers}, T {c.SeqLen}, batch {c.Batch}, {c.Optimizer} lr {c.LearningRate.ToString(CultureInfo.InvariantCulture)}, kernels {trainer.Network.Kernels.Name}"
            + (c.Shards > 1 ? $", {c.Shards} shards on up to {RnnSimd.Kernels.Parallelism.MaxThreads} threads" : ""));
        if (c.Task == TaskKind.Adding) o.WriteLine($"baseline MSE {AddingProblem.BaselineMse:F4}");
        if (c.Task == TaskKind.Copy) o.WriteLine($"baseline CE/step {new CopyMemory(c.SeqLen).BaselineCrossEntropy:F4}");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        double window = 0;
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
        while (trainer.StepCount < steps)
        {
            if (Volatile.Read(ref stop) is int code and not 0)
            {
                string signal = code == 143 ? "SIGTERM" : "SIGINT";
                if (checkpoint is null)
                {
                    e.WriteLine($"rnnsimd: stopped by {signal} after step {trainer.StepCount}; no --checkpoint was given, so nothing was saved.");
                }
                else
                {
                    trainer.SaveCheckpoint(checkpoint);
                    e.WriteLine($"rnnsimd: stopped by {signal} after step {trainer.StepCount}; checkpoint written to {checkpoint}. "
                        + $"Resume with: rnnsimd train {c.TaskName} --checkpoint {checkpoint} --resume --steps {steps}"
                        + (c.Task == TaskKind.CharLm ? " --text FILE" : ""));
                }
                return code;
            }
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
            if (r.Step % every == 0 || r.Step == steps)
            {
                double val = trainer.Evaluate();
                o.WriteLine($"step {r.Step,6}  train {window / inWindow:F4}  held-out {metric} {val:F4}  |g| {r.GradientNorm:F3}  lr {r.LearningRate:G3}  {r.Step / sw.Elapsed.TotalSeconds:F1} steps/s");
                window = 0;
                inWindow = 0;
                if (checkpoint is not null) trainer.SaveCheckpoint(checkpoint);
            }
        }
        return 0;
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
