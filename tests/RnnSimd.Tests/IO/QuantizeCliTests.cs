using System.Globalization;
using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Kernels;
using RnnSimd.Layers;
using RnnSimd.Onnx;
using RnnSimd.Tests.Cells;
using RnnSimd.Training;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.IO;

/// <summary>
/// `rnnsimd quantize`, `inspect`, `sample --precision` and `info` for reduced precisions (issue 11, items 4 and 5): a
/// float32 file quantized by the command loads as a network stepping bitwise as <see cref="RecurrentNetwork.ToInference"/>
/// of the float network; a char-LM checkpoint keeps its head float32 and samples as the checkpoint converted in memory.
/// </summary>
[Trait("Category", "IO")]
public sealed class QuantizeCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-quantize-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Commands.Run(args, o, e);
        return (code, o.ToString(), e.ToString().TrimEnd());
    }

    private string P(string name) => Path.Combine(_dir, name);

    public static TheoryData<string, Precision> Cases()
    {
        var d = new TheoryData<string, Precision>();
        foreach (var cell in new[] { "lstmp", "gru", "rnn_tanh" })
            foreach (var p in new[] { Precision.Int8, Precision.BFloat16 }) d.Add(cell, p);
        return d;
    }

    [Theory, MemberData(nameof(Cases))]
    public void A_quantized_state_dict_steps_bitwise_as_the_float_network_converted_in_memory(string cell, Precision p)
    {
        var net = new RecurrentNetwork(RecurrentContractTests.Options(cell, layers: 2, input: 17, hidden: 33), 4);
        StateDict.Save(net, P("f32.safetensors"));
        var (code, output, err) = Cli("quantize", P("f32.safetensors"), P("q.safetensors"), "--precision", p.Name());
        Assert.True(code == 0, err);

        var q = StateDict.Read(P("q.safetensors"));
        var expected = net.ToInference(p);
        Assert.Equal(p, q.Precision);
        AssertBitwiseEqual("Step outputs and states", ReducedStateDictTests.StepTrace(expected), ReducedStateDictTests.StepTrace(q));

        long before = new FileInfo(P("f32.safetensors")).Length, after = new FileInfo(P("q.safetensors")).Length;
        Assert.Contains($"{p.Name()} state_dict; {net.Options.CellName}, 2 layer(s), input 17, hidden 33", output);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"file: {before:N0} -> {after:N0} bytes"), output);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"StepWeightBytes (packed weights one batch-1 step reads): {net.StepWeightBytes:N0} -> {expected.StepWeightBytes:N0}"), output);
        Assert.True(after < before * (p == Precision.Int8 ? 0.5 : 0.6), $"{before} -> {after}"); // biases and the header stay
    }

    /// <summary>PyTorch writes no metadata: --cell and --prefix say what the file holds, as for convert; an ONNX model also quantizes.</summary>
    [Fact]
    public void A_pytorch_state_dict_and_an_onnx_model_quantize_too()
    {
        var net = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 5, 8, 2, ProjSize: 3), 6);
        SafeTensorsWriter.Write(P("torch.safetensors"), StateDict.Tensors(net, "rnn.").Append(("head.weight", [2, 3], new float[6])));
        var (code, _, err) = Cli("quantize", P("torch.safetensors"), P("t8.safetensors"), "--precision", "int8");
        Assert.Equal(1, code);
        Assert.Contains("give --cell", err);
        (code, _, err) = Cli("quantize", P("torch.safetensors"), P("t8.safetensors"), "--precision", "int8", "--cell", "lstm", "--prefix", "rnn.");
        Assert.True(code == 0, err);
        AssertBitwiseEqual("from a PyTorch state_dict", ReducedStateDictTests.StepTrace(net.ToInference(Precision.Int8)),
            ReducedStateDictTests.StepTrace(StateDict.Read(P("t8.safetensors"))));

        var gru = new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 5, 8, 2), 6); // ONNX's LSTM has no projection
        OnnxExport.Save(gru, P("m.onnx"));
        (code, _, err) = Cli("quantize", P("m.onnx"), P("o16.safetensors"), "--precision", "bf16");
        Assert.True(code == 0, err);
        AssertBitwiseEqual("from ONNX", ReducedStateDictTests.StepTrace(gru.ToInference(Precision.BFloat16)),
            ReducedStateDictTests.StepTrace(StateDict.Read(P("o16.safetensors"))));
    }

    private string CharLmCheckpoint(CellType cell = CellType.Lstm, int layers = 2)
    {
        string text = P("text.txt");
        File.WriteAllText(text, string.Concat(Enumerable.Repeat("to be or not to be, that is the question. ", 40)));
        var trainer = new Trainer(new TrainingConfig(TaskKind.CharLm, cell, Hidden: 16, Layers: layers, SeqLen: 8, Batch: 4, TotalSteps: 30), CharCorpus.FromFile(text));
        for (int i = 0; i < 30; i++) trainer.Step();
        string ckpt = P("lm.safetensors");
        trainer.SaveCheckpoint(ckpt);
        return ckpt;
    }

    [Theory]
    [InlineData(Precision.Int8)]
    [InlineData(Precision.BFloat16)]
    public void A_charlm_checkpoint_quantizes_with_its_head_float32_and_samples_as_converted_in_memory(Precision p)
    {
        string ckpt = CharLmCheckpoint(), q = P($"lm-{p.Name()}.safetensors");
        var (code, output, err) = Cli("quantize", ckpt, q, "--precision", p.Name());
        Assert.True(code == 0, err);
        Assert.Contains("charlm model (head.weight and head.bias stay float32)", output);

        var f = SafeTensorsFile.Read(q);
        Assert.Equal(p.Name(), f.Metadata[StateDict.PrecisionKey]);
        Assert.Equal(SafeTensorsDType.F32, f.GetTensor("head.weight").DType);
        Assert.Equal(SafeTensorsDType.F32, f.GetTensor("head.bias").DType);
        Assert.Equal(p == Precision.Int8 ? SafeTensorsDType.I8 : SafeTensorsDType.BF16, f.GetTensor("rnn.weight_hh_l1").DType);
        foreach (var key in CharLmModel.TrainingStateKeys) Assert.False(f.Metadata.ContainsKey(key), key);
        Assert.DoesNotContain(f.Tensors, t => t.Name.StartsWith("optim.", StringComparison.Ordinal) || t.Name.StartsWith("train.", StringComparison.Ordinal));
        var checkpoint = SafeTensorsFile.Read(ckpt);
        Assert.Equal(checkpoint.Metadata["vocabulary"], f.Metadata["vocabulary"]);
        Assert.Equal(checkpoint.ReadFloats("head.weight"), f.ReadFloats("head.weight"));

        // The file's network is bitwise the checkpoint's converted in memory, so the samples are the same text.
        var fromFile = CharLmModel.Load(q);
        var converted = CharLmModel.Load(ckpt).In(p, ckpt);
        AssertBitwiseEqual("Step", ReducedStateDictTests.StepTrace(converted.Network), ReducedStateDictTests.StepTrace(fromFile.Network));
        var a = Cli("sample", "--checkpoint", q, "--length", "200", "--seed", "3");
        var b = Cli("sample", "--checkpoint", ckpt, "--length", "200", "--seed", "3", "--precision", p.Name());
        var c = Cli("sample", "--checkpoint", q, "--length", "200", "--seed", "3", "--precision", p.Name());
        Assert.True(a.Code == 0 && b.Code == 0 && c.Code == 0, a.Err + b.Err + c.Err);
        Assert.Equal(b.Out, a.Out);
        Assert.Equal(a.Out, c.Out);
        Assert.True(a.Out.Length > 150);

        // A reduced file converts no further, and it is not a training checkpoint.
        var other = p == Precision.Int8 ? "bf16" : "int8";
        var r = Cli("sample", "--checkpoint", q, "--precision", other);
        Assert.Equal(1, r.Code);
        Assert.Contains($"is a {p.Name()} model; --precision {other} needs the float32 checkpoint", r.Err);
        r = Cli("sample", "--checkpoint", q, "--precision", "float32");
        Assert.Equal(1, r.Code);
        Assert.Throws<InvalidDataException>(() => Trainer.Resume(q, CharCorpus.FromFile(P("text.txt"))));
        r = Cli("quantize", q, P("again.safetensors"), "--precision", other);
        Assert.Equal(1, r.Code);
        Assert.Contains($"is already {p.Name()}", r.Err);
    }

    [Fact]
    public void Quantize_refuses_bad_arguments_and_inputs_in_one_line()
    {
        var net = new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 3, 4), 1);
        StateDict.Save(net, P("g.safetensors"));
        foreach (var (args, exit, mention) in new (string[], int, string)[]
        {
            (["quantize", P("g.safetensors"), P("o.safetensors"), "--precision", "float32"], 2, "quantize takes bf16 or int8"),
            (["quantize", P("g.safetensors"), P("o.safetensors"), "--precision", "fp8"], 2, "'fp8' is not a precision"),
            (["quantize", P("g.safetensors"), P("o.safetensors")], 2, "--precision"),
            (["quantize", P("g.safetensors"), P("o.onnx"), "--precision", "int8"], 1, "writes a .safetensors file"),
            (["quantize", P("missing.safetensors"), P("o.safetensors"), "--precision", "int8"], 1, "missing.safetensors"),
        })
        {
            var (code, _, err) = Cli(args);
            Assert.True(code == exit, $"{string.Join(' ', args)}: exit {code}: {err}");
            Assert.StartsWith("rnnsimd: ", err);
            Assert.DoesNotContain("\n", err);
            Assert.Contains(mention, err);
        }
        Assert.False(File.Exists(P("o.safetensors")));

        // An adding-task checkpoint is no language model to sample, nor a state_dict.
        var adding = new Trainer(new TrainingConfig(TaskKind.Adding, CellType.Lstm, Hidden: 4, SeqLen: 5, Batch: 2, TotalSteps: 1));
        adding.SaveCheckpoint(P("adding.safetensors"));
        var r = Cli("quantize", P("adding.safetensors"), P("o.safetensors"), "--precision", "int8");
        Assert.Equal(1, r.Code);
        Assert.Contains("'adding' training checkpoint", r.Err);

        // int8 needs finite weights: the file and the weight are named.
        net.Parameters["weight_hh_l0"][5] = float.NaN;
        StateDict.Save(net, P("nan.safetensors"));
        r = Cli("quantize", P("nan.safetensors"), P("o.safetensors"), "--precision", "int8");
        Assert.Equal(1, r.Code);
        Assert.Contains("nan.safetensors", r.Err);
        Assert.Contains("weight_hh_l0[1, 1] = NaN", r.Err);
        Assert.False(File.Exists(P("o.safetensors")));
    }

    [Fact]
    public void Inspect_shows_the_precision_dtypes_bytes_and_the_int8_scales_range()
    {
        var net = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 3, 4), 2).ToInference(Precision.Int8);
        StateDict.Save(net, P("i8.safetensors"));
        var (code, output, err) = Cli("inspect", P("i8.safetensors"));
        Assert.True(code == 0, err);
        Assert.Contains("precision: int8 (weight matrices I8 (rows, cols) in [-127, 127], each with per-row F32 scales '<name>_scale' (rows)", output);
        Assert.Matches(@"weight_ih_l0 +I8 +\[16, 3\] +48 B  codes min=-?\d+ max=-?\d+", output);
        Assert.Matches(@"weight_ih_l0_scale +F32 +\[16\] +64 B  min=", output);
        Assert.Contains("bytes by dtype: I8 112 in 2 tensor(s), F32 256 in 4 tensor(s)", output);
        var scales = net.GetReducedWeights().SelectMany(t => t.Scales.ToArray()).ToArray();
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"int8 scales: 32 rows in 2 matrices, min={scales.Min():G6} max={scales.Max():G6}"), output);

        StateDict.Save(new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 3, 4), 2).ToInference(Precision.BFloat16), P("b16.safetensors"));
        (code, output, _) = Cli("inspect", P("b16.safetensors"));
        Assert.Equal(0, code);
        Assert.Contains("precision: bf16 (weight matrices BF16 (rows, cols); the rest F32)", output);
        Assert.Matches(@"weight_hh_l0 +BF16 +\[12, 4\] +96 B  min=", output);
        Assert.DoesNotContain("int8 scales", output);
    }

    [Fact]
    public void Info_lists_per_kernel_set_how_each_precision_runs_and_the_default()
    {
        var (code, output, _) = Cli("info");
        Assert.Equal(0, code);
        foreach (var set in KernelSet.Supported)
        {
            Assert.Contains($"  {set.Name,-7} float32: {set.Description}", output);
            Assert.Contains($"bf16:    {set.Bf16Description}", output);
            Assert.Contains($"int8:    {set.Int8Description}", output);
        }
        Assert.Single(output.Split('\n'), l => l.Contains("runs by default"));
    }
}
