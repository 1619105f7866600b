using RnnSimd.Layers;
using RnnSimd.Tests.Reference;
using RnnSimd.Training;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Training;

/// <summary>
/// The trainer's sequence task: it learns, its losses and gradients are the definitions' (per step or per sequence, with
/// lengths) computed by the double oracle, its batch order depends on (seed, epoch) alone, resume is exact and refuses
/// other data, and a step allocates nothing.
/// </summary>
public class SequenceTaskTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-seq-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static TrainingConfig Config(string cell = "lstm", int hidden = 16, int layers = 1, int batch = 16, string optimizer = "adam",
        float lr = 1e-2f, float clip = 1f, float dropout = 0f, ulong seed = 3) =>
        new(TaskKind.Sequence, RecurrentOptions.ParseCell(cell), hidden, layers, Batch: batch, Optimizer: optimizer, LearningRate: lr,
            Clip: clip, TotalSteps: 10_000, Seed: seed, Dropout: dropout);

    // ---------------- it learns ----------------

    [Fact]
    public void Per_step_regression_learns_a_delayed_copy_far_below_the_mean_baseline()
    {
        var (x, y, _) = SequenceData.Delay(320, 10, seed: 1, lengths: false);
        var (train, validation) = SequenceDataset.ForRegression(x, y, 320, 10, 1, 1, perStep: true).Split(0.2);
        // Baseline, computed here: predict the training targets' mean, score the validation targets.
        double mean = train.TargetValues.ToArray().Average();
        double baseline = validation!.TargetValues.ToArray().Select(v => (v - mean) * (v - mean)).Average();
        Assert.InRange(baseline, 0.2, 0.35); // ~ 8/10 * 1/3

        var trainer = new Trainer(Config(), train, validation);
        double before = trainer.Evaluate();
        for (int i = 0; i < 400; i++) trainer.Step();
        var ev = trainer.EvaluateSequences();
        Assert.True(ev.OnValidationSet);
        Assert.Equal(64 * 10, ev.Predictions);
        Assert.True(ev.Loss < 0.05 * baseline, $"validation MSE {ev.Loss:F5} (before training {before:F4}), baseline {baseline:F4}");
        Assert.True(double.IsNaN(ev.Accuracy));
        // The gradient-flow picture works for this task too: dL/dh_t at each of the T steps, for a fixed batch.
        double[] flow = trainer.GradientFlow();
        Assert.Equal(10, flow.Length);
        Assert.All(flow, v => Assert.True(double.IsFinite(v) && v > 0));
        Assert.Equal(BitConverter.DoubleToInt64Bits(ev.Loss), BitConverter.DoubleToInt64Bits(trainer.Evaluate())); // and changed nothing
    }

    [Fact]
    public void Per_sequence_classification_with_lengths_learns_the_sign_of_a_sum_and_ignores_the_padding()
    {
        var (x, y, len) = SequenceData.SignOfSum(480, 12, seed: 2);
        var (train, validation) = SequenceDataset.ForClassification(x, y, 480, 12, 2, 2, perStep: false, len).Split(0.2);
        // Baselines, computed here: the majority class's accuracy, and the cross-entropy of the training class frequencies.
        int[] trainY = train.TargetClasses.ToArray(), valY = validation!.TargetClasses.ToArray();
        double p1 = trainY.Average();
        int majority = p1 >= 0.5 ? 1 : 0;
        double majorityAccuracy = valY.Count(c => c == majority) / (double)valY.Length;
        double baselineCe = valY.Select(c => -Math.Log(c == 1 ? p1 : 1 - p1)).Average();
        Assert.InRange(majorityAccuracy, 0.35, 0.65);
        var (libLoss, libAccuracy) = train.Baseline(validation);
        Assert.Equal(baselineCe, libLoss, 1e-12);
        Assert.Equal(majorityAccuracy, libAccuracy, 1e-12);

        var trainer = new Trainer(Config(cell: "gru", batch: 24), train, validation);
        for (int i = 0; i < 500; i++) trainer.Step();
        var ev = trainer.EvaluateSequences();
        Assert.Equal(96, ev.Predictions);
        Assert.True(ev.Accuracy > 0.9, $"accuracy {ev.Accuracy:F3} (majority {majorityAccuracy:F3}), CE {ev.Loss:F4}");
        Assert.True(ev.Loss < 0.4 * baselineCe, $"CE {ev.Loss:F4}, baseline {baselineCe:F4}");
    }

    // ---------------- the losses and gradients are the definitions' ----------------

    /// <summary>The loss, its accuracy, dL/d(head) and dL/d(rnn) of a batch, in double: the oracle network, then the head and the loss line by line.</summary>
    private sealed record Naive(double Loss, double Accuracy, double[] HeadWeight, double[] HeadBias, Dictionary<string, double[]> Rnn);

    private static Naive NaiveLoss(Trainer trainer, SequenceDataset d)
    {
        var net = trainer.Network;
        var o = net.Options;
        int N = d.Count, T = d.Steps, I = d.InputSize, O = d.Outputs, H = o.HiddenSize, L = o.NumLayers;
        var spec = new RecurrentSpec(new RecurrentOptions(o.Cell, 1, 1).CellName, I, H, L);
        var parameters = net.Parameters.Entries.ToDictionary(e => e.Name, e => net.Parameters.View(e).ToArray().Select(v => (double)v).ToArray());
        var oracle = new NaiveRecurrent(spec, parameters);
        // Time-major input (T, N, I) and lengths, from the dataset's (N, T, I).
        var x = new double[T * N * I];
        for (int n = 0; n < N; n++)
            for (int t = 0; t < T; t++)
                for (int i = 0; i < I; i++) x[(t * N + n) * I + i] = d.Inputs[(n * T + t) * I + i];
        int[]? lengths = d.HasLengths ? d.Lengths.ToArray() : null;
        bool lstm = o.Cell == CellType.Lstm;
        double[] Zeros(int k) => new double[k];
        var run = oracle.Run(x, T, N, Zeros(L * N * H), lstm ? Zeros(L * N * H) : null, Zeros(T * N * H), lengths);
        double[] h = run.Output; // (T, N, H), 0 past each length

        float[] w = trainer.Head.Parameters["weight"].ToArray(), b = trainer.Head.Parameters["bias"].ToArray(); // (O, H), (O)
        // The predictions that count: every valid step, or each sequence's last valid step.
        var rows = new List<(int T, int N, int Target)>();
        for (int n = 0; n < N; n++)
        {
            int len = d.LengthOf(n);
            if (d.PerStep) for (int t = 0; t < len; t++) rows.Add((t, n, n * T + t));
            else rows.Add((len - 1, n, n));
        }
        bool cls = d.Kind == SequenceTargetKind.Classification;
        double count = cls ? rows.Count : rows.Count * (double)O;
        double loss = 0, hits = 0;
        var dW = new double[O * H];
        var dB = new double[O];
        var dOut = new double[T * N * H];
        foreach (var (t, n, target) in rows)
        {
            var hr = h.AsSpan((t * N + n) * H, H);
            var z = new double[O];
            for (int k = 0; k < O; k++)
            {
                z[k] = b[k];
                for (int j = 0; j < H; j++) z[k] += w[k * H + j] * hr[j];
            }
            var g = new double[O]; // dL/dz for this row
            if (cls)
            {
                int c = d.TargetClasses[target];
                double max = z.Max(), sum = z.Sum(v => Math.Exp(v - max));
                loss += Math.Log(sum) + max - z[c];
                for (int k = 0; k < O; k++) g[k] = (Math.Exp(z[k] - max) / sum - (k == c ? 1 : 0)) / count;
                if (Array.IndexOf(z, z.Max()) == c) hits++;
            }
            else
                for (int k = 0; k < O; k++)
                {
                    double e = z[k] - d.TargetValues[target * O + k];
                    loss += e * e;
                    g[k] = 2 * e / count;
                }
            for (int k = 0; k < O; k++)
            {
                dB[k] += g[k];
                for (int j = 0; j < H; j++)
                {
                    dW[k * H + j] += g[k] * hr[j];
                    dOut[(t * N + n) * H + j] += g[k] * w[k * H + j];
                }
            }
        }
        // The oracle's loss is 0.5 sum (output - target)^2: with target = output - dL/doutput its gradients are dL/dparameters.
        var target2 = h.Select((v, i) => v - dOut[i]).ToArray();
        var grads = oracle.Run(x, T, N, Zeros(L * N * H), lstm ? Zeros(L * N * H) : null, target2, lengths).ParamGrads;
        return new Naive(loss / count, hits / rows.Count, dW, dB, grads);
    }

    /// <summary>|a - e| &lt;= 1e-5 max|e| + 1e-4 |e| per tensor (float sums of at most a few hundred terms through 5 steps; the tolerance of the network's oracle tests).</summary>
    private static void Close(string what, ReadOnlySpan<float> actual, double[] expected)
    {
        double scale = expected.Length == 0 ? 0 : expected.Max(Math.Abs);
        AssertClose(what, actual, expected, _ => 1e-5 * scale + 1e-30, 1e-4);
    }

    public static TheoryData<string, bool, bool, string, int> Forms() => new()
    {
        // kind, per step, lengths, cell, layers
        { "regression", true, false, "lstm", 1 }, { "regression", true, true, "gru", 2 }, { "regression", false, false, "rnn_tanh", 1 },
        { "regression", false, true, "lstm", 2 }, { "classification", true, false, "gru", 1 }, { "classification", true, true, "lstm", 1 },
        { "classification", false, false, "lstm", 2 }, { "classification", false, true, "gru", 1 },
    };

    [Theory, MemberData(nameof(Forms))]
    public void Loss_accuracy_and_gradients_are_the_definitions_computed_by_the_oracle(string kind, bool perStep, bool lengths, string cell, int layers)
    {
        var k = kind == "regression" ? SequenceTargetKind.Regression : SequenceTargetKind.Classification;
        var d = SequenceData.Random(k, perStep, lengths, n: 7, T: 5, I: 3, O: 3, seed: kind.Length + (perStep ? 1 : 0) + (lengths ? 2 : 0));
        // Batches of 4 out of 7: evaluation ends with a batch of 3; no clipping, so the gradients left after a step are the loss's.
        var trainer = new Trainer(Config(cell, hidden: 6, layers: layers, batch: 4, optimizer: "sgd", lr: 1e-3f, clip: 0f), d, validation: d);

        var whole = NaiveLoss(trainer, d);
        var ev = trainer.EvaluateSequences();
        Assert.Equal(whole.Loss, ev.Loss, 1e-5 * Math.Max(1, whole.Loss));
        if (k == SequenceTargetKind.Classification) Assert.Equal(whole.Accuracy, ev.Accuracy);
        Assert.Equal(whole.Loss, trainer.Evaluate(), 1e-5 * Math.Max(1, whole.Loss));

        int[] batch = trainer.SequencesOfStep(1);
        var expected = NaiveLoss(trainer, d.Subset(batch));
        var report = trainer.Step();
        Assert.Equal(expected.Loss, report.Loss, 1e-5 * Math.Max(1, expected.Loss));
        Close("head.weight gradient", trainer.Head.Gradients["weight"], expected.HeadWeight);
        Close("head.bias gradient", trainer.Head.Gradients["bias"], expected.HeadBias);
        foreach (var e in trainer.Network.Gradients.Entries)
            Close($"rnn.{e.Name} gradient", trainer.Network.Gradients.View(e), expected.Rnn[e.Name]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void What_lies_past_a_sequence_s_length_changes_nothing(bool perStep)
    {
        var d = SequenceData.Random(SequenceTargetKind.Regression, perStep, lengths: true, n: 9, T: 6, I: 2, O: 2, seed: 5);
        float[] x = d.Inputs.ToArray(), y = d.TargetValues.ToArray();
        for (int n = 0; n < d.Count; n++)
            for (int t = d.LengthOf(n); t < d.Steps; t++)
            {
                x[(n * 6 + t) * 2] = 1e3f;
                if (perStep) y[(n * 6 + t) * 2 + 1] = -1e3f;
            }
        var padded = SequenceDataset.ForRegression(x, y, 9, 6, 2, 2, perStep, d.Lengths);
        Assert.NotEqual(d.ContentHash, padded.ContentHash);
        var a = new Trainer(Config(layers: 2, batch: 4, dropout: 0.2f), d, d);
        var b = new Trainer(Config(layers: 2, batch: 4, dropout: 0.2f), padded, padded);
        for (int i = 0; i < 5; i++)
            Assert.Equal(BitConverter.DoubleToInt64Bits(a.Step().Loss), BitConverter.DoubleToInt64Bits(b.Step().Loss));
        AssertBitwiseEqual("parameters", a.Network.Parameters.Data, b.Network.Parameters.Data);
        Assert.Equal(BitConverter.DoubleToInt64Bits(a.Evaluate()), BitConverter.DoubleToInt64Bits(b.Evaluate()));
    }

    // ---------------- the order of the batches ----------------

    [Fact]
    public void Every_epoch_takes_each_training_sequence_once_in_an_order_drawn_from_seed_and_epoch()
    {
        var d = SequenceData.Random(SequenceTargetKind.Regression, true, false, n: 10, T: 3, I: 1, O: 1, seed: 1);
        var trainer = new Trainer(Config(batch: 4), d);
        // 10 epochs of 10 sequences in batches of 4: 25 steps, batches straddling epochs.
        int[] positions = Enumerable.Range(1, 25).SelectMany(s => trainer.SequencesOfStep(s)).ToArray();
        var epochs = positions.Chunk(10).ToArray();
        foreach (var epoch in epochs) Assert.Equal(Enumerable.Range(0, 10), epoch.Order());
        Assert.True(epochs.Select(e => string.Join(",", e)).Distinct().Count() >= 9, "the order is reshuffled every epoch");
        // The same steps asked in another order (as a resumed run would), or by another trainer of the same seed: the same batches.
        var other = new Trainer(Config(batch: 4), d);
        for (int s = 25; s >= 1; s--) Assert.Equal(positions.AsSpan((s - 1) * 4, 4).ToArray(), other.SequencesOfStep(s));
        var reseeded = new Trainer(Config(batch: 4, seed: 4), d);
        Assert.NotEqual(positions, Enumerable.Range(1, 25).SelectMany(s => reseeded.SequencesOfStep(s)).ToArray());
        // A batch larger than the training set spans several epochs, each still a permutation.
        var big = new Trainer(Config(batch: 25), d);
        int[] first = big.SequencesOfStep(1).Concat(big.SequencesOfStep(2)).ToArray();
        foreach (var epoch in first.Chunk(10).Take(5)) Assert.Equal(Enumerable.Range(0, 10), epoch.Order());
    }

    [Fact]
    public void The_split_is_deterministic_disjoint_and_independent_of_the_training_seed()
    {
        var d = SequenceData.Random(SequenceTargetKind.Classification, false, true, n: 50, T: 4, I: 2, O: 3, seed: 9);
        var (train, val) = d.Split(0.2);
        var (train2, val2) = d.Split(0.2);
        Assert.Equal(40, train.Count);
        Assert.Equal(10, val!.Count);
        Assert.Equal(train.ContentHash, train2.ContentHash);
        Assert.Equal(val.ContentHash, val2!.ContentHash);
        Assert.NotEqual(val.ContentHash, d.Split(0.2, seed: 1).Validation!.ContentHash);
        // Disjoint and complete: each sequence of d appears in exactly one part (identified by its inputs).
        string Key(SequenceDataset s, int n) => string.Join(",", s.Inputs.Slice(n * 8, 8).ToArray());
        var all = Enumerable.Range(0, 50).Select(n => Key(d, n)).ToHashSet();
        var parts = Enumerable.Range(0, 40).Select(n => Key(train, n)).Concat(Enumerable.Range(0, 10).Select(n => Key(val, n))).ToList();
        Assert.Equal(50, parts.Distinct().Count());
        Assert.True(all.SetEquals(parts));
        Assert.Null(d.Split(0).Validation);
        Assert.Equal(1, d.Split(0.001).Validation!.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Split(1.0));
        Assert.Throws<ArgumentException>(() => SequenceData.Random(SequenceTargetKind.Regression, true, false, 1, 2, 1, 1, 1).Split(0.5));
    }

    // ---------------- resume, allocation ----------------

    public static TheoryData<string> Datasets() => ["regression-per-step-lengths", "classification-per-sequence", "classification-per-step-lengths"];

    private static (SequenceDataset Train, SequenceDataset? Validation) Data(string name) => name switch
    {
        "regression-per-step-lengths" => SequenceData.Random(SequenceTargetKind.Regression, true, true, 23, 6, 3, 2, 1).Split(0.2),
        "classification-per-sequence" => SequenceData.Random(SequenceTargetKind.Classification, false, false, 23, 6, 3, 4, 2).Split(0.2),
        _ => SequenceData.Random(SequenceTargetKind.Classification, true, true, 23, 6, 3, 4, 3).Split(0.2),
    };

    [Theory, MemberData(nameof(Datasets))]
    public void A_resumed_run_continues_exactly_like_the_uninterrupted_one(string name)
    {
        var (train, val) = Data(name);
        // 18 training sequences in batches of 4: batches straddle epochs; dropout between the 2 layers; a cosine schedule.
        var config = Config(layers: 2, batch: 4, dropout: 0.25f) with { Schedule = "cosine", TotalSteps = 14 };
        var straight = new Trainer(config, train, val);
        var expected = Enumerable.Range(0, 14).Select(_ => straight.Step().Loss).ToArray();
        var first = new Trainer(config, train, val);
        for (int i = 0; i < 6; i++) first.Step();
        string path = Path.Combine(_dir, $"{name}.safetensors");
        first.SaveCheckpoint(path);
        var resumed = Trainer.Resume(path, Data(name).Train, Data(name).Validation);
        Assert.Equal(6, resumed.StepCount);
        for (int i = 6; i < 14; i++)
            Assert.Equal(BitConverter.DoubleToInt64Bits(expected[i]), BitConverter.DoubleToInt64Bits(resumed.Step().Loss));
        AssertBitwiseEqual("rnn parameters", straight.Network.Parameters.Data, resumed.Network.Parameters.Data);
        AssertBitwiseEqual("head parameters", straight.Head.Parameters.Data, resumed.Head.Parameters.Data);
        Assert.Equal(BitConverter.DoubleToInt64Bits(straight.Evaluate()), BitConverter.DoubleToInt64Bits(resumed.Evaluate()));
    }

    [Fact]
    public void Resuming_refuses_other_data_naming_what_differs()
    {
        var (train, val) = Data("regression-per-step-lengths");
        var trainer = new Trainer(Config(batch: 4), train, val);
        trainer.Step();
        string path = Path.Combine(_dir, "ckpt.safetensors");
        trainer.SaveCheckpoint(path);

        // One value changed: same shape, other content.
        float[] x = train.Inputs.ToArray();
        x[5] += 0.5f;
        var changed = SequenceDataset.ForRegression(x, train.TargetValues, train.Count, train.Steps, train.InputSize, train.Outputs, true, train.Lengths);
        var ex = Assert.Throws<InvalidDataException>(() => Trainer.Resume(path, changed, val));
        Assert.Contains(path, ex.Message);
        Assert.Contains("'data_hash'", ex.Message);
        // Another split (fraction): the training set's count differs first.
        var (train3, val3) = SequenceData.Random(SequenceTargetKind.Regression, true, true, 23, 6, 3, 2, 1).Split(0.3);
        Assert.Contains("'data_count' = '18'", Assert.Throws<InvalidDataException>(() => Trainer.Resume(path, train3, val3)).Message);
        // The same training set but no validation set, or another one.
        Assert.Contains("validation set of 5 sequences", Assert.Throws<InvalidDataException>(() => Trainer.Resume(path, train)).Message);
        Assert.Contains("'validation_hash'", Assert.Throws<InvalidDataException>(() => Trainer.Resume(path, train, train.Subset([0, 1, 2, 3, 4]))).Message);
        // Other targets: classification data of the same sizes.
        var cls = SequenceData.Random(SequenceTargetKind.Classification, true, true, 23, 6, 3, 2, 1).Split(0.2);
        Assert.Contains("'data_kind'", Assert.Throws<InvalidDataException>(() => Trainer.Resume(path, cls.Train, cls.Validation)).Message);
        // A sequence checkpoint without data, a built-in task's checkpoint with data.
        Assert.Contains("needs its training data", Assert.Throws<InvalidDataException>(() => Trainer.Resume(path)).Message);
        string adding = Path.Combine(_dir, "adding.safetensors");
        new Trainer(new TrainingConfig(TaskKind.Adding, Hidden: 4, SeqLen: 5, Batch: 2)).SaveCheckpoint(adding);
        Assert.Contains("not seq", Assert.Throws<InvalidDataException>(() => Trainer.Resume(adding, train, val)).Message);
        // The right data resumes.
        Assert.Equal(1, Trainer.Resume(path, train, val).StepCount);
    }

    [Theory, MemberData(nameof(Datasets))]
    public void A_training_step_allocates_nothing_after_warm_up(string name)
    {
        var (train, val) = Data(name);
        var trainer = new Trainer(Config(layers: 2, batch: 4, dropout: 0.3f), train, val);
        trainer.Evaluate(); // evaluation between steps (smaller last batch, dropout off and on) must not make later steps allocate
        long[] windows = SteadyStateAllocations(() => trainer.Step(), 20);
        Assert.True(windows[^1] == 0, $"{string.Join(", ", windows)} bytes in windows of 20 steps");
    }

    [Fact]
    public void Bad_configurations_are_refused_before_anything_is_allocated()
    {
        var (train, val) = Data("classification-per-sequence");
        Assert.Contains("shards", Assert.Throws<ArgumentException>(() => new Trainer(Config(batch: 4) with { Shards = 2 }, train, val)).Message);
        Assert.Contains("sequence task", Assert.Throws<ArgumentException>(() => new Trainer(Config() with { Task = TaskKind.Adding }, train)).Message);
        Assert.Contains("SequenceDataset", Assert.Throws<ArgumentException>(() => new Trainer(Config())).Message);
        var other = SequenceData.Random(SequenceTargetKind.Classification, false, false, 5, 6, 3, 5, 2);
        Assert.Contains("does not match", Assert.Throws<ArgumentException>(() => new Trainer(Config(), train, other)).Message);
        // A head of 1024 x 1,000,000 (a hostile or mistaken width) is refused by the memory budget, not allocated.
        var wide = SequenceDataset.ForRegression(new float[1], new float[1_000_000], 1, 1, 1, 1_000_000, perStep: false);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new Trainer(Config(hidden: 1024, batch: 1), wide));
        Assert.Contains("MemoryBudget", ex.Message);
    }
}
