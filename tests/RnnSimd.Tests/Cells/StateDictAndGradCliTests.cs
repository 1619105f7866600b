using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Layers;

namespace RnnSimd.Tests.Cells;

/// <summary>Model weights in and out of safetensors state_dicts, and the `rnnsimd grad` parity command end to end.</summary>
public class StateDictAndGradCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-sd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Save_then_load_restores_every_parameter_bitwise()
    {
        var o = new RecurrentOptions(CellType.Lstm, 6, 10, 2, Bidirectional: true, ProjSize: 4);
        var a = new RecurrentNetwork(o, 1);
        string path = Path.Combine(_dir, "m.safetensors");
        StateDict.Save(a, path);
        var file = SafeTensorsFile.Read(path);
        Assert.Equal(a.Parameters.Entries.Select(e => e.Name).Order(), file.Tensors.Select(t => t.Name).Order());
        Assert.Equal("lstm", file.Metadata["cell"]);
        Assert.Equal(o, StateDict.ReadOptions(file.Metadata));
        var b = new RecurrentNetwork(o, 2);
        StateDict.Load(b, file);
        Assert.Equal(a.Parameters.Data, b.Parameters.Data);
    }

    /// <summary>
    /// ONNX's activations and clip travel in the metadata (activation_f, activation_g, activation_h: sigmoid, tanh, relu or
    /// default; clip: the float's round-trip text) and add no tensor; files written before them (no keys) read as the
    /// cell's defaults; bad values are refused naming the key.
    /// </summary>
    [Fact]
    public void Activations_and_clip_are_saved_loaded_and_described()
    {
        foreach (var o in new[]
        {
            new RecurrentOptions(CellType.Lstm, 6, 10, 2, Bidirectional: true, Peepholes: true, ActivationF: GateActivation.Tanh,
                ActivationH: GateActivation.Relu, Clip: 0.1f),
            new RecurrentOptions(CellType.Gru, 6, 10, GruLinearBeforeReset: false, ActivationF: GateActivation.Relu, ActivationG: GateActivation.Sigmoid),
            new RecurrentOptions(CellType.RnnRelu, 6, 10, Reverse: true, ActivationF: GateActivation.Sigmoid, Clip: 3.4028235e38f),
        })
        {
            var a = new RecurrentNetwork(o, 1);
            string path = Path.Combine(_dir, $"{o.CellName}.safetensors");
            StateDict.Save(a, path);
            var file = SafeTensorsFile.Read(path);
            Assert.Equal(o, StateDict.ReadOptions(file.Metadata));
            Assert.Equal(a.Parameters.Entries.Select(e => e.Name).Order(), file.Tensors.Select(t => t.Name).Order());
            StateDict.CheckHolds(file, o);
            StateDict.CheckHolds(file, o with { ActivationF = null, ActivationG = null, ActivationH = null, Clip = 0 });
            var b = new RecurrentNetwork(o, 2);
            StateDict.Load(b, file);
            Assert.Equal(a.Parameters.Data, b.Parameters.Data);
        }
        var meta = StateDict.Describe(new RecurrentOptions(CellType.Lstm, 6, 10, ActivationG: GateActivation.Relu, Clip: 0.1f));
        Assert.Equal(("default", "relu", "default", "0.1"), (meta["activation_f"], meta["activation_g"], meta["activation_h"], meta["clip"]));
        meta["activation_f"] = "Sigmoid"; // ONNX's spelling is read too
        Assert.Equal(GateActivation.Sigmoid, StateDict.ReadOptions(meta).ActivationF);
        foreach (var key in new[] { "activation_f", "activation_g", "activation_h", "clip" })
        {
            var old = new Dictionary<string, string>(meta);
            old.Remove(key);
            var read = StateDict.ReadOptions(old);
            Assert.True(key switch { "activation_f" => read.ActivationF is null, "activation_g" => read.ActivationG is null, "activation_h" => read.ActivationH is null, _ => read.Clip == 0 });
        }
        Assert.Contains("activation_h", Assert.Throws<InvalidDataException>(() => StateDict.ReadOptions(new Dictionary<string, string>(meta) { ["activation_h"] = "softsign" })).Message);
        Assert.Contains("clip", Assert.Throws<InvalidDataException>(() => StateDict.ReadOptions(new Dictionary<string, string>(meta) { ["clip"] = "half" })).Message);
        Assert.Contains("Clip", Assert.Throws<InvalidDataException>(() => StateDict.ReadOptions(new Dictionary<string, string>(meta) { ["clip"] = "-1" })).Message);
        Assert.Contains("ActivationH", Assert.Throws<InvalidDataException>(() =>
            StateDict.ReadOptions(new Dictionary<string, string>(meta) { ["cell"] = "gru", ["activation_h"] = "tanh" })).Message);
    }

    /// <summary>ONNX's LSTM options travel in the metadata (peepholes, coupled_input_forget) and the peepholes as weight_peep_l{l}[_reverse].</summary>
    [Fact]
    public void Peepholes_and_coupled_gates_are_saved_loaded_and_described()
    {
        var o = new RecurrentOptions(CellType.Lstm, 6, 10, 2, Bidirectional: true, Peepholes: true, CoupledInputForget: true);
        var a = new RecurrentNetwork(o, 1);
        string path = Path.Combine(_dir, "peep.safetensors");
        StateDict.Save(a, path);
        var file = SafeTensorsFile.Read(path);
        Assert.Equal("true", file.Metadata["peepholes"]);
        Assert.Equal("true", file.Metadata["coupled_input_forget"]);
        Assert.Equal(o, StateDict.ReadOptions(file.Metadata));
        Assert.Contains(file.Tensors, t => t.Name == "weight_peep_l1_reverse" && t.Shape.SequenceEqual([3L, 10L]));
        StateDict.CheckHolds(file, o);
        var b = new RecurrentNetwork(o, 2);
        StateDict.Load(b, file);
        Assert.Equal(a.Parameters.Data, b.Parameters.Data);

        // Files written before these options existed (no keys) read as PyTorch's LSTM; a file without the peepholes does
        // not hold a peephole network, and one with them does not hold a plain one.
        var old = new Dictionary<string, string>(file.Metadata);
        old.Remove("peepholes");
        old.Remove("coupled_input_forget");
        Assert.Equal(o with { Peepholes = false, CoupledInputForget = false }, StateDict.ReadOptions(old));
        Assert.Throws<InvalidDataException>(() => StateDict.CheckHolds(file, o with { Peepholes = false }));
        string plainPath = Path.Combine(_dir, "plain.safetensors");
        StateDict.Save(new RecurrentNetwork(o with { Peepholes = false }, 3), plainPath);
        var plain = SafeTensorsFile.Read(plainPath);
        Assert.Throws<InvalidDataException>(() => StateDict.CheckHolds(plain, o));
        var e = Assert.Throws<InvalidDataException>(() => StateDict.Load(b, plain));
        Assert.Contains("missing 'weight_peep_l0', expected shape (3, 10)", e.Message);
        Assert.Equal(a.Parameters.Data, b.Parameters.Data);
        old["peepholes"] = "maybe";
        Assert.Contains("peepholes", Assert.Throws<InvalidDataException>(() => StateDict.ReadOptions(old)).Message);
        old["peepholes"] = "true";
        old["cell"] = "gru";
        Assert.Contains("Peepholes", Assert.Throws<InvalidDataException>(() => StateDict.ReadOptions(old)).Message);
    }

    [Fact]
    public void Load_reports_expected_and_found_names_and_shapes_and_changes_nothing()
    {
        var small = new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 3, 4), 1);
        string path = Path.Combine(_dir, "gru.safetensors");
        StateDict.Save(small, path);
        var file = SafeTensorsFile.Read(path);
        var other = new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 3, 5, 2), 2);
        float[] before = (float[])other.Parameters.Data.Clone();
        var e = Assert.Throws<InvalidDataException>(() => StateDict.Load(other, file));
        Assert.Contains("'weight_ih_l0' has shape (12, 3), expected (15, 3)", e.Message);
        Assert.Contains("missing 'weight_ih_l1', expected shape (15, 5)", e.Message);
        Assert.Equal(before, other.Parameters.Data);
    }

    [Fact]
    public void Grad_command_writes_every_result_tensor_matching_pytorch()
    {
        string casePath = Path.Combine(TorchParityTests.DataDir, "lstm_L2_bi_bias_T5_B3_I7_H16.safetensors");
        string outPath = Path.Combine(_dir, "result.safetensors");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, Commands.Run(["grad", "--case", casePath, "--out", outPath], stdout, stderr));
        var result = SafeTensorsFile.Read(outPath);
        var golden = SafeTensorsFile.Read(casePath);
        var names = result.Tensors.Select(t => t.Name).ToHashSet();
        foreach (var required in new[] { "output", "h_n", "c_n", "loss", "grad.input", "grad.h0", "grad.c0", "grad.weight_hh_l1_reverse" })
            Assert.Contains(required, names);
        foreach (var t in result.Tensors)
        {
            Assert.Equal(SafeTensorsDType.F32, t.DType);
            double err = TorchParityTests.NormwiseError(result.ReadFloats(t.Name), TorchParityTests.ReadF64(golden, "expected." + t.Name));
            Assert.True(err < (t.Name.StartsWith("grad.") ? 1e-4 : 2e-5), $"{t.Name}: {err:E2}");
        }
    }

    [Fact]
    public void Grad_command_fails_cleanly_on_bad_files_and_arguments()
    {
        string bad = Path.Combine(_dir, "bad.safetensors");
        File.WriteAllBytes(bad, [1, 2, 3]);
        var err = new StringWriter();
        Assert.NotEqual(0, Commands.Run(["grad", "--case", bad, "--out", Path.Combine(_dir, "o.safetensors")], TextWriter.Null, err));
        Assert.StartsWith("rnnsimd: ", err.ToString());
        Assert.DoesNotContain("   at ", err.ToString());

        // a valid safetensors file that is not a case
        string notCase = Path.Combine(_dir, "notcase.safetensors");
        SafeTensorsWriter.Write(notCase, [("x", new[] { 1 }, new float[] { 1f })], new Dictionary<string, string> { ["cell"] = "lstm" });
        err = new StringWriter();
        Assert.NotEqual(0, Commands.Run(["grad", "--case", notCase, "--out", Path.Combine(_dir, "o.safetensors")], TextWriter.Null, err));
        Assert.Contains("input_size", err.ToString());

        err = new StringWriter();
        Assert.Equal(2, Commands.Run(["grad", "--case"], TextWriter.Null, err));
        Assert.Contains("usage", err.ToString());
        Assert.False(File.Exists(Path.Combine(_dir, "o.safetensors")));
    }
}
