using System.Text.Json;
using RnnSimd.Cli;
using RnnSimd.Layers;
using RnnSimd.Memory;
using RnnSimd.Training;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Training;

/// <summary>The training loop: determinism, exact resume, zero allocation, divergence handling, tasks and the demo.</summary>
public class TrainerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-train-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string Text = string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 60)) + "Ünïcödé ✓\n";

    public static TheoryData<string, string> Configs() => new()
    {
        { "adding", "lstm" }, { "adding", "gru" }, { "adding", "rnn_tanh" }, { "copy", "gru" }, { "charlm", "lstm" },
        // "+dropout": dropout 0.3 between the two layers (and variational output dropout 0.2 for the character LM).
        { "adding+dropout", "gru" }, { "charlm+dropout", "lstm" },
    };

    private static TrainingConfig Small(string task, string cell, string optimizer = "adam")
    {
        string name = task.Split('+')[0];
        bool dropout = task.EndsWith("+dropout", StringComparison.Ordinal);
        return new(TrainingConfig.ParseTask(name), RecurrentOptions.ParseCell(cell), Hidden: 17, Layers: 2, SeqLen: name == "copy" ? 5 : 12,
            Batch: 4, Optimizer: optimizer, LearningRate: 5e-3f, Clip: 1f, TotalSteps: 40, Seed: 7,
            Dropout: dropout ? 0.3f : 0f, OutputDropout: dropout && name == "charlm" ? 0.2f : 0f);
    }

    private static CharCorpus? CorpusFor(string task) => task.StartsWith("charlm", StringComparison.Ordinal) ? new CharCorpus(Text) : null;

    [Theory]
    [InlineData("adding+dropout", "gru")]
    [InlineData("charlm+dropout", "lstm")]
    public void Dropout_changes_training_but_never_evaluation(string task, string cell)
    {
        var plain = new Trainer(Small(task.Split('+')[0], cell), CorpusFor(task));
        var dropped = new Trainer(Small(task, cell), CorpusFor(task));
        // Same seed, same initial parameters: evaluation (no dropout) agrees bitwise before and after a training step.
        Assert.Equal(BitConverter.DoubleToInt64Bits(plain.Evaluate(4)), BitConverter.DoubleToInt64Bits(dropped.Evaluate(4)));
        Assert.NotEqual(plain.Step().Loss, dropped.Step().Loss);
        dropped.Network.Parameters.Data.CopyTo(plain.Network.Parameters.Data, 0);
        plain.Network.ParametersChanged();
        dropped.Head.Parameters.Data.CopyTo(plain.Head.Parameters.Data, 0);
        plain.Head.ParametersChanged();
        Assert.Equal(BitConverter.DoubleToInt64Bits(plain.Evaluate(4)), BitConverter.DoubleToInt64Bits(dropped.Evaluate(4)));
    }

    [Theory, MemberData(nameof(Configs))]
    public void Same_seed_and_kernel_set_give_a_bitwise_identical_loss_trajectory(string task, string cell)
    {
        var a = new Trainer(Small(task, cell), CorpusFor(task));
        var b = new Trainer(Small(task, cell), CorpusFor(task));
        for (int i = 0; i < 15; i++)
        {
            var ra = a.Step();
            var rb = b.Step();
            Assert.Equal(BitConverter.DoubleToInt64Bits(ra.Loss), BitConverter.DoubleToInt64Bits(rb.Loss));
            Assert.Equal(BitConverter.DoubleToInt64Bits(ra.GradientNorm), BitConverter.DoubleToInt64Bits(rb.GradientNorm));
        }
        Assert.Equal(a.Network.Parameters.Data, b.Network.Parameters.Data);
        var c = new Trainer(Small(task, cell) with { Seed = 8 }, CorpusFor(task));
        Assert.NotEqual(a.Step().Loss, c.Step().Loss);
    }

    [Theory, MemberData(nameof(Configs))]
    public void A_resumed_run_continues_exactly_like_the_uninterrupted_one(string task, string cell)
    {
        foreach (string optimizer in task == "adding" && cell == "lstm" ? new[] { "adam", "sgd", "rmsprop", "adagrad", "adamw" } : ["adam"])
        {
            var config = Small(task, cell, optimizer) with { Momentum = optimizer is "sgd" or "rmsprop" ? 0.9f : 0f };
            var straight = new Trainer(config, CorpusFor(task));
            var expected = Enumerable.Range(0, 12).Select(_ => straight.Step().Loss).ToArray();

            var first = new Trainer(config, CorpusFor(task));
            for (int i = 0; i < 5; i++) first.Step();
            string path = Path.Combine(_dir, $"{task}-{cell}-{optimizer}.safetensors");
            first.SaveCheckpoint(path);
            var resumed = Trainer.Resume(path, CorpusFor(task));
            Assert.Equal(5, resumed.StepCount);
            for (int i = 5; i < 12; i++)
                Assert.Equal(BitConverter.DoubleToInt64Bits(expected[i]), BitConverter.DoubleToInt64Bits(resumed.Step().Loss));
            Assert.Equal(straight.Network.Parameters.Data, resumed.Network.Parameters.Data);
        }
    }

    [Theory, MemberData(nameof(Configs))]
    public void A_training_step_allocates_nothing_after_warm_up(string task, string cell)
    {
        var trainer = new Trainer(Small(task, cell) with { TotalSteps = 10_000 }, CorpusFor(task));
        long[] windows = SteadyStateAllocations(() => trainer.Step(), 20);
        Assert.True(windows[^1] == 0, $"{string.Join(", ", windows)} bytes in windows of 20 steps");
    }

    [Fact]
    public void A_non_finite_loss_stops_training_and_the_last_checkpoint_is_kept()
    {
        var trainer = new Trainer(Small("adding", "lstm"));
        trainer.Step();
        string path = Path.Combine(_dir, "good.safetensors");
        trainer.SaveCheckpoint(path);
        byte[] good = File.ReadAllBytes(path);

        trainer.Head.Parameters["weight"][0] = float.NaN;
        trainer.Head.ParametersChanged();
        float[] before = (float[])trainer.Network.Parameters.Data.Clone();
        var ex = Assert.Throws<TrainingDivergedException>(() => trainer.Step());
        Assert.Contains("step 2", ex.Message);
        Assert.Equal(before, trainer.Network.Parameters.Data); // no update was applied

        // The command line reports it in one line, exits non-zero and leaves the checkpoint as it was.
        string poisoned = Path.Combine(_dir, "poisoned.safetensors");
        trainer.SaveCheckpoint(poisoned);
        byte[] poisonedBytes = File.ReadAllBytes(poisoned);
        var err = new StringWriter();
        int code = Commands.Run(["train", "adding", "--resume", "--checkpoint", poisoned, "--steps", "50", "--every", "1"], TextWriter.Null, err);
        Assert.Equal(3, code);
        Assert.StartsWith("rnnsimd: training stopped: step 2", err.ToString());
        Assert.Equal(poisonedBytes, File.ReadAllBytes(poisoned));
        Assert.Equal(good, File.ReadAllBytes(path));
    }

    [Fact]
    public void Adding_problem_batches_follow_the_definition()
    {
        var task = new AddingProblem(10);
        float[] x = new float[10 * 64 * 2], y = new float[64];
        task.Sample(new Xoshiro(3), 64, x, y);
        for (int b = 0; b < 64; b++)
        {
            var marked = Enumerable.Range(0, 10).Where(t => x[(t * 64 + b) * 2 + 1] == 1f).ToArray();
            Assert.Equal(2, marked.Length);
            Assert.InRange(marked[0], 0, 4);
            Assert.InRange(marked[1], 5, 9);
            Assert.Equal(x[(marked[0] * 64 + b) * 2] + x[(marked[1] * 64 + b) * 2], y[b]);
            Assert.All(Enumerable.Range(0, 10), t => Assert.InRange(x[(t * 64 + b) * 2], 0f, 1f));
        }
        // predicting 1 always: MSE 1/6 in expectation
        var big = new float[2 * 20000 * 2];
        var targets = new float[20000];
        new AddingProblem(2).Sample(new Xoshiro(4), 20000, big, targets);
        Assert.InRange(targets.Average(t => (t - 1.0) * (t - 1.0)), 1.0 / 6 - 0.01, 1.0 / 6 + 0.01);
    }

    [Fact]
    public void Copy_memory_batches_follow_the_definition()
    {
        var task = new CopyMemory(5);
        Assert.Equal(25, task.SeqLen);
        Assert.Equal(10 * Math.Log(8) / 25, task.BaselineCrossEntropy, 12);
        float[] x = new float[25 * 3 * 10];
        int[] targets = new int[25 * 3];
        task.Sample(new Xoshiro(5), 3, x, targets);
        for (int b = 0; b < 3; b++)
        {
            int Symbol(int t) => Enumerable.Range(0, 10).Single(s => x[(t * 3 + b) * 10 + s] == 1f);
            for (int i = 0; i < 10; i++)
            {
                Assert.InRange(Symbol(i), 1, 8);
                Assert.Equal(Symbol(i), targets[(15 + i) * 3 + b]);
            }
            for (int t = 10; t < 25; t++) Assert.Equal(t == 14 ? 9 : 0, Symbol(t));
            for (int t = 0; t < 15; t++) Assert.Equal(0, targets[t * 3 + b]);
        }
    }

    [Fact]
    public void Demo_quick_runs_end_to_end_and_shows_the_lesson()
    {
        var output = new StringWriter();
        Assert.Equal(0, Commands.Run(["demo", "--quick", "--out", _dir], output, Console.Error));
        Assert.True(new FileInfo(Path.Combine(_dir, "loss.png")).Length > 1000);
        Assert.True(new FileInfo(Path.Combine(_dir, "gradient-flow.png")).Length > 1000);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "summary.json")));
        var root = doc.RootElement;
        Assert.Equal("adding", root.GetProperty("task").GetString());
        Assert.Equal(30, root.GetProperty("seq_len").GetInt32());
        Assert.Equal(0.1667, root.GetProperty("baseline_mse").GetDouble());
        var cells = root.GetProperty("cells").EnumerateArray().ToDictionary(c => c.GetProperty("cell").GetString()!, c => c);
        Assert.Equal(["gru", "lstm", "rnn_tanh"], cells.Keys.Order());
        foreach (var c in cells.Values)
        {
            Assert.Equal(1500, c.GetProperty("steps").GetInt32());
            Assert.True(c.GetProperty("seconds").GetDouble() > 0);
            Assert.True(double.IsFinite(c.GetProperty("test_mse").GetDouble()));
        }
        // The gated cells learn the task well below the 1/6 baseline in the quick run (fixed seed, and every kernel
        // set computes bitwise the same run, so this is deterministic).
        Assert.True(cells["gru"].GetProperty("test_mse").GetDouble() < 0.02);
        Assert.True(cells["lstm"].GetProperty("test_mse").GetDouble() < 0.05);
    }

    [Fact]
    public void Char_lm_trains_samples_and_reports_validation_loss()
    {
        string textPath = Path.Combine(_dir, "text.txt");
        File.WriteAllText(textPath, Text);
        string ckpt = Path.Combine(_dir, "char.safetensors");
        var o = new StringWriter();
        Assert.Equal(0, Commands.Run(["train", "charlm", "--text", textPath, "--hidden", "32", "--seq-len", "16", "--batch", "4",
            "--steps", "60", "--every", "30", "--checkpoint", ckpt], o, Console.Error));
        Assert.Contains("nats/char", o.ToString());
        var s = new StringWriter();
        Assert.Equal(0, Commands.Run(["sample", "--checkpoint", ckpt, "--prime", "the ", "--length", "40", "--temperature", "0.5"], s, Console.Error));
        string sampled = s.ToString().TrimEnd('\n');
        Assert.StartsWith("the ", sampled);
        Assert.True(sampled.EnumerateRunes().Count() >= 44);
        var corpus = new CharCorpus(Text);
        Assert.All(sampled.EnumerateRunes(), r => Assert.True(corpus.IndexOf(r.Value) >= 0));
    }

    [Fact]
    public void Bad_arguments_give_one_line_and_a_non_zero_exit_code()
    {
        foreach (var args in new[]
        {
            new[] { "train", "nosuchtask" }, ["train", "charlm"], ["train", "adding", "--hidden", "0"], ["train", "adding", "--cell", "xyz"],
            ["sample", "--checkpoint", Path.Combine(_dir, "missing.safetensors")], ["demo", "--steps", "-3"], ["train", "adding", "--resume"],
        })
        {
            var err = new StringWriter();
            Assert.NotEqual(0, Commands.Run(args, TextWriter.Null, err));
            string text = err.ToString().TrimEnd();
            Assert.StartsWith("rnnsimd: ", text);
            Assert.DoesNotContain("\n", text);
        }
    }
}
