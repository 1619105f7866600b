using System.Globalization;
using RnnSimd.Cli;
using RnnSimd.Layers;
using RnnSimd.Tests.Reference;
using RnnSimd.Training;
using Xunit.Abstractions;

namespace RnnSimd.Tests.Training;

/// <summary>
/// <c>rnnsimd evaluate</c>: the validation loss it computes is the trainer's own held-out figure (float32), the reduced
/// precisions are evaluated on the same data deterministically, bad arguments fail clearly, and the S2 error table's
/// figures (with float32 against the double oracle beside them, printed for the README).
/// </summary>
public sealed class EvaluateCommandTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-evaluate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string Text = string.Concat(Enumerable.Repeat(
        "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer the slings and arrows. ", 40));

    /// <summary>A small char-LM trained for a few steps and saved; returns the checkpoint and the text file.</summary>
    private (string Checkpoint, string TextPath) TrainTiny(string cell)
    {
        string textPath = Path.Combine(_dir, "text.txt");
        File.WriteAllText(textPath, Text);
        var config = new TrainingConfig(TaskKind.CharLm, RecurrentOptions.ParseCell(cell), Hidden: 32, Layers: 2, SeqLen: 16, Batch: 4,
            Optimizer: "adam", LearningRate: 1e-2f, Clip: 1f, TotalSteps: 80, Seed: 3);
        var trainer = new Trainer(config, new CharCorpus(Text));
        for (int i = 0; i < 80; i++) trainer.Step();
        string checkpoint = Path.Combine(_dir, $"{cell}.safetensors");
        trainer.SaveCheckpoint(checkpoint);
        return (checkpoint, textPath);
    }

    [Theory]
    [InlineData("lstm")]
    [InlineData("gru")]
    public void Float32_evaluation_is_the_trainers_validation_loss_and_reduced_ones_are_deterministic_and_close(string cell)
    {
        var (checkpoint, textPath) = TrainTiny(cell);
        var corpus = new CharCorpus(Text);
        var trainer = Trainer.Resume(checkpoint, corpus);
        double expected = trainer.Evaluate();          // the trainer's own held-out code
        Assert.True(expected < 0.8 * Math.Log(corpus.Vocabulary.Length), $"the tiny model did not learn: {expected} nats/char");

        var f32 = CharLmEvaluation.ValidationLoss(trainer.Network, trainer.Head, corpus.Validation, 4, 16, 32);
        Assert.True(Math.Abs(f32.NatsPerChar - expected) <= 1e-6 * expected, $"evaluate {f32.NatsPerChar:R} vs trainer {expected:R}");
        Assert.Equal((corpus.Validation.Length / 4 - 1) * 4, f32.Predictions);   // every stream's next characters, all chunks

        foreach (var p in new[] { Precision.BFloat16, Precision.Int8 })
        {
            var reduced = trainer.Network.ToInference(p);
            var a = CharLmEvaluation.ValidationLoss(reduced, trainer.Head, corpus.Validation, 4, 16, 32);
            var b = CharLmEvaluation.ValidationLoss(trainer.Network.ToInference(p), trainer.Head, corpus.Validation, 4, 16, 32);
            Assert.Equal(BitConverter.DoubleToInt64Bits(a.NatsPerChar), BitConverter.DoubleToInt64Bits(b.NatsPerChar));
            double relative = (a.NatsPerChar - expected) / expected;
            output.WriteLine($"{cell} {p.Name()}: {a.NatsPerChar:F5} vs float32 {expected:F5} ({100 * relative:F3} %)");
            Assert.NotEqual(expected, a.NatsPerChar);           // the weights really were rounded
            Assert.True(Math.Abs(relative) < 0.05, $"{p.Name()} {a.NatsPerChar} vs float32 {expected}");
        }

        var o = new StringWriter();
        var err = new StringWriter();
        Assert.Equal(0, Commands.Run(["evaluate", checkpoint, "--text", textPath], o, err));
        string table = o.ToString();
        Assert.Contains($"| float32 | {expected.ToString("F5", CultureInfo.InvariantCulture)} |", table);
        Assert.Contains("| bf16 | ", table);
        Assert.Contains("| int8 | ", table);
        Assert.Equal("", err.ToString());
    }

    [Fact]
    public void Bad_arguments_give_one_clear_line()
    {
        var (checkpoint, textPath) = TrainTiny("lstm");
        var adding = new Trainer(new TrainingConfig(TaskKind.Adding, CellType.Lstm, Hidden: 8, Layers: 1, SeqLen: 10, Batch: 2,
            Optimizer: "adam", LearningRate: 1e-3f, Clip: 1f, TotalSteps: 1, Seed: 1));
        string addingCheckpoint = Path.Combine(_dir, "adding.safetensors");
        adding.SaveCheckpoint(addingCheckpoint);
        foreach (var (args, code, says) in new (string[], int, string)[]
        {
            (["evaluate", checkpoint, "--text", textPath, "--precision", "fp8"], 2, "'fp8' is not a precision; expected float32, bf16, int8 or all"),
            (["evaluate", checkpoint, "--text", textPath, "--chunks", "0"], 2, "--chunks must be at least 1"),
            (["evaluate", checkpoint], 1, "needs --text FILE"),
            (["evaluate", "--text", textPath], 1, "needs a CHECKPOINT"),
            (["evaluate", addingCheckpoint, "--text", textPath], 1, "is a 'adding' checkpoint"),
            (["evaluate", checkpoint, "--s2-error"], 1, "give no checkpoint"),
        })
        {
            var err = new StringWriter();
            Assert.Equal(code, Commands.Run(args, TextWriter.Null, err));
            string line = err.ToString().TrimEnd();
            Assert.StartsWith("rnnsimd: ", line);
            Assert.Contains(says, line);
            Assert.DoesNotContain("\n", line);
        }
    }

    /// <summary>
    /// The README's S2 table: bf16 and int8 against float32 (what <c>rnnsimd evaluate --s2-error</c> prints), and float32
    /// against the double oracle on the same weights and inputs. The weight errors follow from the formats: int8 with a
    /// per-row scale s = max|w| / 127 on U(-a, a) weights has error U(-s/2, s/2), so ||W_q - W|| / ||W|| = (s / sqrt 12) /
    /// (a / sqrt 3) = 1 / 254; bf16 keeps 8 significant bits, so each weight is within 2^-8 = 3.9e-3 relative (the norm
    /// comes lower: 1.48e-3 measured).
    /// </summary>
    [Fact]
    public void S2_errors_of_bf16_int8_and_float32_against_the_double_oracle()
    {
        var rows = EvaluateCommand.S2Errors(seed: 1);
        Assert.Equal(6, rows.Count);
        output.WriteLine("| cell | float32 vs float64 | bf16 vs float32 | int8 vs float32 |");
        foreach (var cell in new[] { CellType.Lstm, CellType.Gru, CellType.RnnTanh })
        {
            var net = new RecurrentNetwork(new RecurrentOptions(cell, EvaluateCommand.S2Input, EvaluateCommand.S2Hidden), 1);
            string name = net.Options.CellName;
            float[] x = EvaluateCommand.S2Inputs(1);
            float[] y = EvaluateCommand.RunS2(net, x);
            var parameters = net.Parameters.Entries.ToDictionary(e => e.Name, e => net.Parameters.View(e).ToArray().Select(v => (double)v).ToArray());
            bool lstm = cell == CellType.Lstm;
            var oracle = new NaiveRecurrent(new RecurrentSpec(name, EvaluateCommand.S2Input, EvaluateCommand.S2Hidden), parameters)
                .Run(x.Select(v => (double)v).ToArray(), EvaluateCommand.S2Steps, 1, new double[EvaluateCommand.S2Hidden],
                    lstm ? new double[EvaluateCommand.S2Hidden] : null, new double[y.Length]);
            double f32 = Normwise(y, oracle.Output);
            var bf16 = rows.Single(r => r.Cell == name && r.Precision == Precision.BFloat16);
            var int8 = rows.Single(r => r.Cell == name && r.Precision == Precision.Int8);
            output.WriteLine($"| {name} | {f32:0.00e+0} | {bf16.OutputError:0.00e+0} | {int8.OutputError:0.00e+0} |");

            Assert.True(f32 < 1e-6, $"{name}: float32 vs float64 {f32}");
            Assert.InRange(int8.WeightError, 0.95 / 254, 1.05 / 254);
            Assert.InRange(bf16.WeightError, 5e-4, 1.0 / 256);
            // Through 128 steps the output error stays of the order of the weights' (no step amplifies it much).
            Assert.InRange(bf16.OutputError, 1e-4, 3 * bf16.WeightError);
            Assert.InRange(int8.OutputError, 1e-4, 3 * int8.WeightError);
        }
    }

    private static double Normwise(float[] actual, double[] expected)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }
        return Math.Sqrt(diff / norm);
    }
}
