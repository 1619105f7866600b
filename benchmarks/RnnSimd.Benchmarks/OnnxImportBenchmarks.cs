using BenchmarkDotNet.Attributes;
using RnnSimd.Layers;
using RnnSimd.Onnx;

namespace RnnSimd.Benchmarks;

/// <summary>
/// Import time of an ONNX model: a 2-layer LSTM, I = H = 512 (6.3 M weights, 25 MB of float32), as RnnSimd exports it
/// (torch.onnx.export's form), loaded from memory (parse, validate, reorder gates, pack every weight for the kernels)
/// and from a file, plus the first run of a session (planning) at T = 16, B = 1.
/// </summary>
[Config(typeof(WorkloadConfig))]
public class OnnxImportBenchmarks
{
    private byte[] _bytes = [];
    private string _path = "";
    private OnnxModel _model = null!;
    private float[] _x = [], _h0 = [], _c0 = [];

    [GlobalSetup]
    public void Setup()
    {
        var net = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 512, 512, NumLayers: 2), 1);
        _bytes = OnnxExport.ToBytes(net);
        _path = Path.Combine(Path.GetTempPath(), $"rnnsimd-import-bench-{Environment.ProcessId}.onnx");
        File.WriteAllBytes(_path, _bytes);
        _model = OnnxModel.Load(_bytes);
        _x = new float[16 * 512];
        _h0 = new float[2 * 512];
        _c0 = new float[2 * 512];
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(_path);

    [Benchmark(Description = "ONNX import, 2-layer LSTM 512, from memory")]
    public OnnxModel FromMemory() => OnnxModel.Load(_bytes);

    [Benchmark(Description = "ONNX import, 2-layer LSTM 512, from a file")]
    public OnnxModel FromFile() => OnnxModel.Load(_path);

    [Benchmark(Description = "ONNX first run (plan + run), T 16, B 1")]
    public void FirstRun()
    {
        var s = _model.CreateSession();
        s.SetInput(0, _x, [16, 1, 512]);
        s.SetInput(1, _h0, [2, 1, 512]);
        s.SetInput(2, _c0, [2, 1, 512]);
        s.Run();
    }
}
