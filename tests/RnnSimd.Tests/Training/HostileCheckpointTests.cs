using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Layers;
using RnnSimd.Training;

namespace RnnSimd.Tests.Training;

/// <summary>
/// Issue 9's table, rows 2-4, 6-8, 10, 11, 13 (and row 1 for checkpoints): each hostile checkpoint value or careless
/// argument gives one line naming the file and the key (exit 1 or 2), before any training and without a crash.
/// </summary>
public class HostileCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-hostile-").FullName;
    private readonly string _text, _ckpt;

    public HostileCheckpointTests()
    {
        _text = Path.Combine(_dir, "text.txt");
        File.WriteAllText(_text, string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 40)));
        _ckpt = Path.Combine(_dir, "lm.safetensors");
        var trainer = new Trainer(new TrainingConfig(TaskKind.CharLm, CellType.Lstm, Hidden: 8, SeqLen: 6, Batch: 2, TotalSteps: 5),
            CharCorpus.FromFile(_text));
        trainer.Step();
        trainer.SaveCheckpoint(_ckpt);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A copy of the checkpoint with one metadata value replaced (or removed when null).</summary>
    private string WithMetadata(string key, string? value, Func<SafeTensorInfo, float[], float[]>? tensors = null)
    {
        var file = SafeTensorsFile.Read(_ckpt);
        var meta = file.Metadata.ToDictionary(p => p.Key, p => p.Value);
        if (value is null) meta.Remove(key); else meta[key] = value;
        string path = Path.Combine(_dir, $"bad-{key}-{Math.Abs((value ?? "").GetHashCode())}.safetensors");
        SafeTensorsWriter.Write(path, file.Tensors.Select(t =>
        {
            float[] data = file.ReadFloats(t.Name), changed = tensors?.Invoke(t, data) ?? data;
            int[] shape = changed.Length == data.Length ? t.Shape.Select(d => (int)d).ToArray() : [changed.Length];
            return (t.Name, shape, (ReadOnlyMemory<float>)changed);
        }), meta);
        return path;
    }

    private static (int Code, string Error) Cli(params string[] args)
    {
        var err = new StringWriter();
        int code = Commands.Run(args, TextWriter.Null, err);
        return (code, err.ToString().TrimEnd());
    }

    private static void AssertOneLine((int Code, string Error) r, int code, params string[] mentions)
    {
        Assert.Equal(code, r.Code);
        Assert.StartsWith("rnnsimd: ", r.Error);
        Assert.DoesNotContain("\n", r.Error);
        Assert.True(r.Error.Length < 400, r.Error);
        foreach (var m in mentions) Assert.Contains(m, r.Error);
    }

    private (int, string) Resume(string path) =>
        Cli("train", "charlm", "--text", _text, "--checkpoint", path, "--resume", "--steps", "2", "--every", "1");

    [Theory]
    [InlineData("rng", "zz,1,2,3")]          // row 2
    [InlineData("rng", "")]
    [InlineData("rng", "1,2,3,1ffffffffffffffff")]
    [InlineData("rng", "1,2")]               // row 8
    [InlineData("rng", "0,0,0,0")]
    [InlineData("step", "-5")]               // row 7
    [InlineData("optimizer_step", "-100")]   // row 8
    [InlineData("cursors", "x,y")]           // row 4
    [InlineData("cursors", "-100000,-5")]
    [InlineData("cursors", "2147483647,0")]
    [InlineData("cursors", "2000000000,2000000000")]
    [InlineData("vocabulary", "a,b,c")]      // row 3 (resume side)
    [InlineData("vocabulary", "")]
    [InlineData("vocabulary", "97,97")]      // row 8: a duplicate entry
    [InlineData("vocabulary", "1114112")]    // not a Unicode scalar value
    [InlineData("layers", "1000000")]        // row 1: more layers than the file holds
    [InlineData("hidden", "100000")]
    [InlineData("step", null)]
    [InlineData("weight_decay", "Infinity")]   // found by CheckpointFuzzTests: reached the optimizer's own range check
    [InlineData("momentum", "-1")]
    [InlineData("seq_len", "2147483647")]      // found by CheckpointFuzzTests: the memory budget's exception escaped as such
    public void Resume_refuses_hostile_metadata_naming_the_file_and_the_key(string key, string? value)
    {
        string path = WithMetadata(key, value);
        AssertOneLine(Resume(path), 1, Path.GetFileName(path), $"'{key}'");
    }

    [Theory]
    [InlineData("vocabulary", "a,b,c")]      // row 3
    [InlineData("vocabulary", "")]
    [InlineData("vocabulary", "97,97")]
    [InlineData("layers", "1000000")]
    public void Sample_refuses_hostile_metadata(string key, string value)
    {
        string path = WithMetadata(key, value);
        AssertOneLine(Cli("sample", "--checkpoint", path, "--length", "5"), 1, Path.GetFileName(path), $"'{key}'");
    }

    /// <summary>Found by CheckpointFuzzTests: a carried state tensor of another shape escaped as an ArgumentException.</summary>
    [Fact]
    public void Resume_refuses_a_carried_state_of_another_shape()
    {
        string path = WithMetadata("task", "charlm", (t, data) => t.Name == "train.c" ? [.. data, .. data] : data);
        AssertOneLine(Resume(path), 1, Path.GetFileName(path), "'train.c'");
    }

    /// <summary>
    /// Found by the AFL++ harness (tests/RnnSimd.Fuzz): a checkpoint tensor of an integer dtype. StateDict.Load refused
    /// it, but the head, optimizer and carried-state tensors reached ReadFloats and escaped as NotSupportedException.
    /// </summary>
    [Theory]
    [InlineData("head.weight")]
    [InlineData("train.h")]
    [InlineData("optim.exp_avg.head.bias")]
    public void Resume_refuses_a_tensor_of_an_integer_dtype(string tensor)
    {
        byte[] patched = RnnSimd.Tests.IO.SafeTensorsHeaderPatch.Apply(File.ReadAllBytes(_ckpt),
            header => header[tensor]!["dtype"] = "I32");                     // same element size: the file stays valid
        string path = Path.Combine(_dir, $"i32-{tensor}.safetensors");
        File.WriteAllBytes(path, patched);
        AssertOneLine(Resume(path), 1, $"'{tensor}'", "I32");
    }

    /// <summary>The AFL++ finding itself (tests/data/fuzz): every documented reader path refuses it with a documented exception.</summary>
    [Fact]
    public void The_fuzzer_finding_is_refused_by_every_reader()
    {
        string? path = null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null && path is null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "data", "fuzz", "i32-weight-ih.safetensors");
            if (File.Exists(candidate)) path = candidate;
        }
        Assert.NotNull(path);
        var file = SafeTensorsFile.Read(path);
        Assert.Throws<NotSupportedException>(() => file.ReadFloats("rnn.weight_ih_l0"));   // documented for ReadFloats
        Assert.Throws<InvalidDataException>(() => Trainer.Resume(path, new CharCorpus("the quick brown fox jumps over the lazy dog. ")));
    }

    [Fact]
    public void Sample_refuses_a_model_with_non_finite_weights()   // row 10
    {
        string path = WithMetadata("task", "charlm", (t, data) => t.Name == "rnn.weight_hh_l0" ? data.Select(_ => float.NaN).ToArray() : data);
        AssertOneLine(Cli("sample", "--checkpoint", path, "--length", "5"), 1, "weight_hh_l0", "non-finite");
    }

    [Fact]
    public void The_untouched_checkpoint_still_resumes_and_samples()
    {
        Assert.Equal(0, Resume(_ckpt).Item1);
        Assert.Equal(0, Cli("sample", "--checkpoint", _ckpt, "--length", "5").Code);
    }

    [Fact]
    public void Careless_arguments_are_refused_before_training()
    {
        AssertOneLine(Cli("train", "adding", "--every", "0"), 2, "--every");                    // row 6
        AssertOneLine(Cli("train", "adding", "--every", "-1"), 2, "--every");
        string missing = Path.Combine(_dir, "no-such-dir", "c.safetensors");                    // row 11
        AssertOneLine(Cli("train", "adding", "--steps", "3", "--checkpoint", missing), 1, "no-such-dir");
        Assert.False(File.Exists(missing));
        AssertOneLine(Cli("train", "adding", "--steps", "3", "--checkpoint", _dir), 1, "is a directory");
        AssertOneLine(Cli("quantise", "in.safetensors"), 2, "unknown command 'quantise'", "train", "sample");  // row 13
    }

    [Fact]
    public void A_read_only_checkpoint_directory_is_refused_before_training()  // row 11
    {
        // root writes anywhere, so the permission cannot be tested as root (the missing-directory case above still runs).
        if (!OperatingSystem.IsLinux() || Environment.UserName == "root") return;
        string ro = Directory.CreateDirectory(Path.Combine(_dir, "ro")).FullName;
        File.SetUnixFileMode(ro, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try { AssertOneLine(Cli("train", "adding", "--steps", "3", "--checkpoint", Path.Combine(ro, "c.safetensors")), 1, "does not take new files"); }
        finally { File.SetUnixFileMode(ro, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute); }
    }

    [Fact]
    public void An_unknown_cell_type_is_refused()                 // row 9
    {
        var e = Assert.Throws<ArgumentException>(() => new RecurrentNetwork(new RecurrentOptions((CellType)99, 3, 4)));
        Assert.Contains("unknown cell type 99", e.Message);
    }
}
