using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Layers;
using RnnSimd.Onnx;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Onnx;

/// <summary>rnnsimd onnx-run, onnx-test, convert and inspect on ONNX files.</summary>
[Trait("Category", "Onnx")]
public sealed class OnnxCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-onnx-cli").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Commands.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string Case(string name) => Path.Combine(OnnxBackendTests.OnnxDir, name);

    [Fact]
    public void Onnx_test_passes_supported_folders_and_fails_the_others_by_name()
    {
        var supported = new[] { "spec/lstm_bidirectional_seqlens_initial_states", "spec/gru_layout1_bidirectional_seqlens_initial_states", "node/test_rnn_seq_length" };
        var (code, output, _) = Cli(["onnx-test", .. supported.Select(Case)]);
        Assert.Equal(0, code);
        Assert.Contains("outputs passed, 0 failed in 3 models", output);

        string softsign = SoftsignLstm();
        (code, output, _) = Cli("onnx-test", Path.GetDirectoryName(softsign)!);
        Assert.Equal(1, code);
        Assert.Contains("FAIL softsign: unsupported: activation 'Softsign'", output);
    }

    /// <summary>A backend-test folder whose LSTM uses ONNX's Softsign, which RnnSimd does not have.</summary>
    private string SoftsignLstm()
    {
        string dir = Path.Combine(_dir, "softsign");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "model.onnx");
        File.WriteAllBytes(path, OnnxTestModel.Lstm(null, a =>
        {
            a.String(1, "activations"); a.Int64(20, 8);
            foreach (var name in new[] { "Sigmoid", "Softsign", "Tanh" }) a.StringAlways(9, name);
        }));
        return path;
    }

    [Fact]
    public void Onnx_run_writes_the_expected_outputs_named()
    {
        string c = Case("spec/lstm_layout1_bidirectional_seqlens_initial_states");
        var (code, _, err) = Cli("onnx-run", Path.Combine(c, "model.onnx"), "--inputs", Path.Combine(c, "test_data_set_0"), "--out", _dir);
        Assert.True(code == 0, err);
        for (int k = 0; k < 3; k++)
        {
            var actual = OnnxTensor.Parse(File.ReadAllBytes(Path.Combine(_dir, $"output_{k}.pb")), "actual");
            var expected = OnnxTensor.Parse(File.ReadAllBytes(Path.Combine(c, "test_data_set_0", $"output_{k}.pb")), "expected");
            Assert.Equal(expected.Name, actual.Name);
            Assert.Equal(expected.Dims, actual.Dims);
            AssertClose($"output {k}", actual.Floats!, expected.Floats!.Select(v => (double)v).ToArray(), _ => 1e-5, 1e-5);
        }
        (code, _, err) = Cli("onnx-run", Path.Combine(c, "model.onnx"), "--inputs", _dir, "--out", _dir);
        Assert.Equal(1, code);
        Assert.Contains("input_0.pb' is missing", err);
    }

    [Fact]
    public void Convert_goes_both_ways_and_reads_a_pytorch_state_dict_without_metadata()
    {
        var o = new RecurrentOptions(CellType.Gru, 4, 6, 2, Bidirectional: true);
        var net = new RecurrentNetwork(o, 9);
        string plain = Path.Combine(_dir, "torch.safetensors"), onnx = Path.Combine(_dir, "m.onnx"), back = Path.Combine(_dir, "back.safetensors");
        SafeTensorsWriter.Write(plain, StateDict.Tensors(net), new Dictionary<string, string>()); // as safetensors.torch.save_file writes it
        Assert.Contains("give --cell", Cli("convert", plain, onnx).Err);
        var (code, output, err) = Cli("convert", plain, onnx, "--cell", "gru");
        Assert.True(code == 0, err);
        Assert.Contains("gru, 2 layer(s), input 4, hidden 6, bidirectional", output);
        (code, _, err) = Cli("convert", onnx, back);
        Assert.True(code == 0, err);
        var file = SafeTensorsFile.Read(back);
        var again = new RecurrentNetwork(StateDict.ReadOptions(file.Metadata));
        StateDict.Load(again, file);
        Assert.Equal(o, again.Options);
        Assert.Equal(net.Parameters.Data, again.Parameters.Data);
        Assert.Equal(2, Cli("convert", onnx).Code);
        Assert.Contains("between .safetensors and .onnx", Cli("convert", onnx, Path.Combine(_dir, "x.onnx")).Err);
    }

    [Fact]
    public void Inspect_describes_onnx_models_and_says_whether_they_run()
    {
        var (code, output, _) = Cli("inspect", Path.Combine(Case("spec/graph_torch_gru_2layer_bidirectional"), "model.onnx"));
        Assert.Equal(0, code);
        Assert.Contains("runs in RnnSimd: yes", output);
        Assert.Contains("run as one 2-layer network (gru I=3 H=5 bidirectional linear_before_reset=1)", output);
        (code, output, _) = Cli("inspect", SoftsignLstm());
        Assert.Equal(0, code);
        Assert.Contains("runs in RnnSimd: no: unsupported: activation 'Softsign'", output);
        (code, output, _) = Cli("inspect", Path.Combine(Case("spec/lstm_bidirectional_activations_per_direction"), "model.onnx"));
        Assert.Contains("runs in RnnSimd: yes", output);
    }
}
