using System.Diagnostics;
using System.Text.Json.Nodes;
using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Layers;

namespace RnnSimd.Tests.Cells;

/// <summary>
/// Issue 9, rows 1 and 5: sizes asked for by options or by a file's metadata are checked against a memory budget or
/// against what the file holds before anything is allocated, and fail in well under a second with a bounded message.
/// </summary>
[Trait("Category", "Cells")]
public class BudgetAndCaseFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-budget-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Oversized_networks_workspaces_and_states_fail_at_once_naming_the_option()
    {
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 1, 1, int.MaxValue)));
        Assert.Equal("options", e.ParamName);
        Assert.Contains("MemoryBudget", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 10, int.MaxValue / 4)));
        var net = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 8, 16));
        Assert.Equal("steps", Assert.Throws<ArgumentOutOfRangeException>(() => net.CreateWorkspace(int.MaxValue / 64, 64)).ParamName);
        Assert.Equal("batch", Assert.Throws<ArgumentOutOfRangeException>(() => net.CreateInferenceWorkspace(1, 200_000_000)).ParamName);
        Assert.Equal("batch", Assert.Throws<ArgumentOutOfRangeException>(() => net.CreateState(int.MaxValue)).ParamName);
        Assert.Equal("capacity", Assert.Throws<ArgumentOutOfRangeException>(() => new MultiStreamStepper(net, int.MaxValue)).ParamName);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"{sw.Elapsed}"); // microseconds each; generous for a loaded CI machine
        Assert.Throws<ArgumentOutOfRangeException>(() => RecurrentOptions.MemoryBudget = 0);
    }

    /// <summary>A small GRU case file (state_dict, input, h0, target), "input" stored last.</summary>
    private string CaseFile(Dictionary<string, string>? metadataChanges = null)
    {
        var o = new RecurrentOptions(CellType.Gru, 3, 4);
        var net = new RecurrentNetwork(o, 1);
        var tensors = StateDict.Tensors(net).ToList();
        tensors.Add(("h0", [1, 2, 4], new float[8]));
        tensors.Add(("target", [5, 2, 4], new float[40]));
        tensors.Add(("input", [5, 2, 3], new float[30]));
        var meta = StateDict.Describe(o);
        foreach (var kv in metadataChanges ?? []) meta[kv.Key] = kv.Value;
        string path = Path.Combine(_dir, $"case{Guid.NewGuid():N}.safetensors");
        SafeTensorsWriter.Write(path, tensors, meta);
        return path;
    }

    private static (int Code, string Error) Grad(string casePath, string outPath)
    {
        var err = new StringWriter();
        int code = Commands.Run(["grad", "--case", casePath, "--out", outPath], TextWriter.Null, err);
        return (code, err.ToString().TrimEnd());
    }

    [Fact]
    public void A_case_whose_metadata_asks_for_a_million_layers_fails_at_once_in_one_short_line()  // row 1
    {
        var sw = Stopwatch.StartNew();
        var (code, error) = Grad(CaseFile(new() { ["num_layers"] = "1000000" }), Path.Combine(_dir, "out.safetensors"));
        Assert.Equal(1, code);
        Assert.StartsWith("rnnsimd: ", error);
        Assert.Contains("1000000 layer(s)", error);
        Assert.Contains(".safetensors: ", error);                           // the case file is named
        Assert.True(error.Length < 500, $"{error.Length} characters");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), $"{sw.Elapsed}");
        Assert.Equal(0, Grad(CaseFile(), Path.Combine(_dir, "ok.safetensors")).Code);
    }

    [Fact]
    public void A_case_whose_input_shape_overflows_is_refused()  // row 5: shape [4294967296, 0, 7], zero bytes
    {
        string path = CaseFile();
        long begin = SafeTensorsFile.Read(path).Tensors.Single(t => t.Name == "input").Begin;  // stored last
        File.WriteAllBytes(path, RnnSimd.Tests.IO.SafeTensorsHeaderPatch.Apply(File.ReadAllBytes(path), header =>
        {
            header["input"]!["shape"] = new JsonArray(4294967296L, 0L, 3L);
            header["input"]!["data_offsets"] = new JsonArray(begin, begin);
        }, keepData: begin));                                                // the data of every other tensor
        Assert.Contains(SafeTensorsFile.Read(path).Tensors, t => t.Name == "input" && t.Shape[0] == 4294967296L); // the file itself is valid
        var (code, error) = Grad(path, Path.Combine(_dir, "out.safetensors"));
        Assert.Equal(1, code);
        Assert.Contains("'input' has shape [4294967296, 0, 3]", error);
    }
}
