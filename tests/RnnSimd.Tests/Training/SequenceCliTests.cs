using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Training;
using Spectre.Console;
using static RnnSimd.Tests.Training.SequenceData;

namespace RnnSimd.Tests.Training;

/// <summary>
/// `rnnsimd train seq` end to end (learning, checkpoints, exact resume, refusing other data), the --dropout and
/// --output-dropout flags, the usage errors, the README's demo generator, and the live progress display.
/// </summary>
public partial class SequenceCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-seqcli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Commands.Run(args, o, e);
        return (code, o.ToString(), e.ToString().TrimEnd());
    }

    private string DelayFile(string name, int seed = 1)
    {
        var (x, y, len) = Delay(200, 8, seed, lengths: true);
        return Write(_dir, name, F32("inputs", x, 200, 8, 1), F32("targets", y, 200, 8, 1), I64("lengths", len.Select(v => (long)v).ToArray(), 200));
    }

    [GeneratedRegex(@"held-out MSE (\d+\.\d+)")]
    private static partial Regex HeldOutMse();

    [Fact]
    public void Train_seq_learns_checkpoints_and_resumes_exactly()
    {
        string data = DelayFile("delay.safetensors"), straight = Path.Combine(_dir, "straight.safetensors"), split = Path.Combine(_dir, "split.safetensors");
        string[] common = ["train", "seq", "--data", data, "--hidden", "16", "--batch", "16", "--lr", "0.01", "--every", "50", "--seed", "4"];

        var run = Cli([.. common, "--steps", "200", "--checkpoint", straight]);
        Assert.True(run.Code == 0, run.Err);
        Assert.Contains($"data {data}: 200 sequences of 8 steps x 1 inputs, regression of 1 value(s) at every step, with lengths; 180 for training, 20 for validation", run.Out);
        double baseline = double.Parse(Regex.Match(run.Out, @"baseline \(held-out, the training set's mean\) MSE (\d+\.\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        var mse = HeldOutMse().Matches(run.Out).Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(4, mse.Length); // steps 50, 100, 150, 200
        Assert.True(mse[^1] < 0.25 * baseline, run.Out);

        // 120 steps, then resumed to 200: the same checkpoint, tensor by tensor, bitwise.
        Assert.Equal(0, Cli([.. common, "--steps", "120", "--checkpoint", split]).Code);
        var resumed = Cli([.. common, "--steps", "200", "--checkpoint", split, "--resume"]);
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Contains($"resumed {split} at step 120", resumed.Out);
        var a = SafeTensorsFile.Read(straight);
        var b = SafeTensorsFile.Read(split);
        Assert.Equal(a.Tensors.Select(t => t.Name), b.Tensors.Select(t => t.Name));
        foreach (var t in a.Tensors) Assert.True(a.GetBytes(t.Name).Span.SequenceEqual(b.GetBytes(t.Name).Span), t.Name);
        Assert.Equal("200", b.Metadata["step"]);
        Assert.Equal("seq", b.Metadata["task"]);
        Assert.Equal("180", b.Metadata["data_count"]);
        Assert.Equal("regression", b.Metadata["data_kind"]);
        Assert.Equal("per_step", b.Metadata["data_targets"]);

        // Other data, or another split of the same data: refused in one line naming the checkpoint and the key.
        string other = DelayFile("other.safetensors", seed: 2);
        var refused = Cli([.. common[..2], "--data", other, "--steps", "300", "--checkpoint", split, "--resume"]);
        Assert.Equal(1, refused.Code);
        Assert.StartsWith($"rnnsimd: {split}: the training data has the checkpoint's shape but other content", refused.Err);
        Assert.Contains("'data_hash'", refused.Err);
        var resplit = Cli([.. common, "--steps", "300", "--checkpoint", split, "--resume", "--validation", "0.2"]);
        Assert.Equal(1, resplit.Code);
        Assert.Contains("'data_count' = '180', the data's is '160'", resplit.Err);
    }

    [Fact]
    public void Train_seq_classifies_with_the_kind_given_and_no_validation_set()
    {
        var (x, y, len) = SignOfSum(240, 10, seed: 3);
        // Whole-number float targets: regression unless --task classification says otherwise.
        string data = Write(_dir, "sign.safetensors", F32("inputs", x, 240, 10, 2), F32("targets", y.Select(v => (float)v).ToArray(), 240),
            I32("lengths", len, 240));
        var run = Cli("train", "seq", "--data", data, "--task", "classification", "--validation", "0", "--cell", "gru", "--hidden", "16",
            "--lr", "0.01", "--steps", "300", "--every", "100");
        Assert.True(run.Code == 0, run.Err);
        Assert.Contains("classification into 2 classes per sequence, with lengths; 240 for training, 0 for validation", run.Out);
        Assert.Contains("baseline (train-set, the training set's class frequencies) CE", run.Out);
        var acc = Regex.Matches(run.Out, @"train-set CE \d+\.\d+  acc (\d+\.\d+)").Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(3, acc.Length);
        Assert.True(acc[^1] > 0.85, run.Out);

        // Given regression, the same file trains on the values.
        var regression = Cli("train", "seq", "--data", data, "--task", "regression", "--hidden", "8", "--steps", "2", "--every", "2");
        Assert.Equal(0, regression.Code);
        Assert.Contains("regression of 1 value(s) per sequence", regression.Out);
    }

    [Fact]
    public void Dropout_flags_reach_the_run_and_its_checkpoint()
    {
        string text = Path.Combine(_dir, "text.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("to be or not to be, that is the question. ", 30)));
        string lm = Path.Combine(_dir, "lm.safetensors");
        var run = Cli("train", "charlm", "--text", text, "--layers", "2", "--hidden", "8", "--seq-len", "8", "--batch", "2", "--steps", "3",
            "--every", "3", "--dropout", "0.3", "--output-dropout", "0.2", "--checkpoint", lm);
        Assert.True(run.Code == 0, run.Err);
        Assert.Contains("dropout 0.3, output dropout 0.2", run.Out);
        var meta = SafeTensorsFile.Read(lm).Metadata;
        Assert.Equal(("0.3", "0.2"), (meta["dropout"], meta["output_dropout"]));

        string seq = Path.Combine(_dir, "seq.safetensors");
        Assert.Equal(0, Cli("train", "seq", "--data", DelayFile("d.safetensors"), "--layers", "2", "--hidden", "8", "--steps", "2", "--every", "2",
            "--dropout", "0.25", "--checkpoint", seq).Code);
        Assert.Equal("0.25", SafeTensorsFile.Read(seq).Metadata["dropout"]);
    }

    public static TheoryData<string[], int, string> UsageErrors() => new()
    {
        { ["train", "adding", "--dropout", "0.5"], 2, "--dropout acts between layers, so it needs --layers 2" },
        { ["train", "adding", "--layers", "2", "--dropout", "1"], 2, "--dropout must be in [0, 1), got 1" },
        { ["train", "adding", "--layers", "2", "--dropout", "-0.1"], 2, "--dropout must be in [0, 1)" },
        { ["train", "adding", "--output-dropout", "0.2"], 2, "--output-dropout is for charlm" },
        { ["train", "seq", "--validation", "1"], 2, "--validation must be in [0, 1), got 1" },
        { ["train", "seq", "--data", "x", "--task", "ranking"], 2, "ranking" },
        { ["train", "seq"], 1, "seq needs --data FILE" },
        { ["train", "adding", "--data", "x.safetensors"], 1, "--data is for the seq task, not adding" },
        { ["train", "seq", "--data", "/nonexistent/d.safetensors"], 1, "/nonexistent/d.safetensors" },
    };

    [Theory, MemberData(nameof(UsageErrors))]
    public void Bad_options_give_one_line_and_the_documented_exit_code(string[] args, int code, string mention)
    {
        var r = Cli(args);
        Assert.Equal(code, r.Code);
        Assert.StartsWith("rnnsimd: ", r.Err);
        Assert.DoesNotContain("\n", r.Err);
        Assert.Contains(mention, r.Err);
    }

    [Fact]
    public void Shards_are_refused_for_the_sequence_task_and_a_bad_file_names_itself()
    {
        string data = DelayFile("d.safetensors");
        var r = Cli("train", "seq", "--data", data, "--shards", "2", "--steps", "2");
        Assert.Equal(1, r.Code);
        Assert.Contains("shards > 1 (got 2) is not supported for the sequence task", r.Err);
        string bad = Write(_dir, "bad.safetensors", F32("inputs", new float[6], 2, 3, 1), I64("targets", [0, 0], 2));
        var b = Cli("train", "seq", "--data", bad, "--steps", "2");
        Assert.Equal(1, b.Code);
        Assert.StartsWith($"rnnsimd: {bad}: every classification target", b.Err);
    }

    [Fact]
    public void The_readme_demo_generator_writes_a_dataset_that_trains()
    {
        string script = Path.Combine(RepositoryRoot(), "tools", "make-sequence-demo.py");
        Assert.True(File.Exists(script), script);
        string data = Path.Combine(_dir, "majority.safetensors");
        ProcessStartInfo psi;
        try
        {
            psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { script, data, "--count", "600" }) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, p.StandardError.ReadToEnd());
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return; // no python3 on this machine: nothing to run the generator with
        }
        var d = SequenceDataset.Load(data);
        Assert.Equal((600, 30, 3, 3, SequenceTargetKind.Classification, false, true), (d.Count, d.Steps, d.InputSize, d.Outputs, d.Kind, d.PerStep, d.HasLengths));
        // Each class is the symbol seen most often in the sequence's valid steps (ties to the earlier symbol).
        for (int n = 0; n < d.Count; n++)
        {
            var counts = new int[3];
            for (int t = 0; t < d.LengthOf(n); t++)
                for (int s = 0; s < 3; s++) counts[s] += (int)d.Inputs[(n * 30 + t) * 3 + s];
            Assert.Equal(Array.IndexOf(counts, counts.Max()), d.TargetClasses[n]);
        }
        var run = Cli("train", "seq", "--data", data, "--hidden", "32", "--lr", "0.005", "--steps", "300", "--every", "300");
        Assert.True(run.Code == 0, run.Err);
        double acc = double.Parse(Regex.Match(run.Out, @"acc (\d+\.\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        double majority = double.Parse(Regex.Match(run.Out, @"majority-class accuracy (\d+\.\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(acc > majority + 0.2, run.Out);
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RnnSimd.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("RnnSimd.sln not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public void On_a_terminal_train_shows_a_live_progress_display_with_the_validation_lines_above_it()
    {
        var screen = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.Yes, Out = new AnsiConsoleOutput(screen),
        });
        var trainer = new Trainer(new TrainingConfig(TaskKind.Adding, Hidden: 8, SeqLen: 10, Batch: 4, TotalSteps: 60));
        var plain = new StringWriter();
        int code = Commands.TrainLoop(trainer, 60, 30, null, "", plain, TextWriter.Null, console);
        Assert.Equal(0, code);
        string shown = screen.ToString();
        Assert.Contains("step 60/60", shown);
        Assert.Contains("steps/s", shown);
        Assert.Contains("100%", shown);
        Assert.Matches(@"step +30  train \d+\.\d+  held-out MSE \d+\.\d+", shown);
        Assert.Matches(@"step +60  train", shown);
        // The header and baseline still go to the plain writer; the step lines only to the display.
        Assert.Contains("baseline MSE 0.1667", plain.ToString());
        Assert.DoesNotContain("step ", plain.ToString());
    }
}
