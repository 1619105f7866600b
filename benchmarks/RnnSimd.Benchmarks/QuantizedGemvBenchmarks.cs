using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using RnnSimd.Kernels;

namespace RnnSimd.Benchmarks;

/// <summary>
/// The recurrent step's batch-1 product at S1 (LSTM I = 64, H = 256: W = [W_ih | W_hh], 4H x (I + H) = 1024 x 320) and a
/// ragged neighbour, in float32, bf16 and int8, per kernel set. Bytes read per product at S1: float32 1,310,720;
/// bf16 655,360; int8 327,680 of weights + 32,768 of scales and corrections (+ 320 of activations).
/// Int8 includes quantizing [x | h] (two segments); Int8Product and Int8Quantize are its two halves.
/// </summary>
[Config(typeof(KernelSetConfig))]
public class QuantizedGemvBenchmarks
{
    [Params("1024x64+256", "1021x61+253")]
    public string Shape { get; set; } = "";

    private float[] _x = [], _y = [];
    private PackedGemvMatrix? _f32;
    private PackedBf16GemvMatrix? _bf16;
    private PackedInt8GemvMatrix? _int8;
    private Int8Activations? _q;
    private int _inputs;
    private readonly KernelSet _set = KernelSet.Default;

    [GlobalSetup]
    public void Setup()
    {
        var d = Shape.Split('x', '+').Select(int.Parse).ToArray();
        int rows = d[0], inputs = d[1], hidden = d[2], cols = inputs + hidden;
        _inputs = inputs;
        float[] wih = BenchData.Uniform(rows * inputs, 3, 0.1f), whh = BenchData.Uniform(rows * hidden, 4, 0.06f);
        var w = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            wih.AsSpan(r * inputs, inputs).CopyTo(w.AsSpan(r * cols));
            whh.AsSpan(r * hidden, hidden).CopyTo(w.AsSpan(r * cols + inputs));
        }
        _x = BenchData.Uniform(cols, 5);
        _y = new float[rows];
        _f32 = new PackedGemvMatrix(rows, cols, w, cols);
        _bf16 = new PackedBf16GemvMatrix(rows, wih, inputs, inputs, whh, hidden, hidden);
        _int8 = new PackedInt8GemvMatrix(rows, wih, inputs, inputs, whh, hidden, hidden);
        _q = new Int8Activations(_int8);
        Int8Quantize();
    }

    [Benchmark] public void Float32() => _set.Gemv(_f32!, _x, _y);
    [Benchmark] public void Bf16() => _set.Gemv(_bf16!, _x, _y);

    [Benchmark]
    public void Int8()
    {
        Int8Quantize();
        _set.Gemv(_int8!, _q!, default, _y);
    }

    [Benchmark] public void Int8Product() => _set.Gemv(_int8!, _q!, default, _y);

    [Benchmark]
    public void Int8Quantize()
    {
        _set.QuantizeActivations(0, _x.AsSpan(0, _inputs), _q!);
        _set.QuantizeActivations(1, _x.AsSpan(_inputs), _q!);
    }
}

/// <summary>
/// Every int8 instruction path this process supports, on the S1 product (1024 x (64 + 256)), in one job: which one a kernel
/// set should choose (vpdpbusd at 256 bits against vpmaddwd widening at 512 and 256 bits).
/// </summary>
[Config(typeof(Int8PathConfig))]
public class QuantizedInt8PathBenchmarks
{
    public static IEnumerable<string> Paths => GemvInt8.Supported.Select(p => p.ToString());

    [ParamsSource(nameof(Paths))]
    public string Path { get; set; } = "";

    private float[] _y = [];
    private PackedInt8GemvMatrix? _w;
    private Int8Activations? _q;
    private Int8Path _path;

    [GlobalSetup]
    public void Setup()
    {
        const int rows = 1024, inputs = 64, hidden = 256;
        _path = Enum.Parse<Int8Path>(Path);
        _w = new PackedInt8GemvMatrix(rows, BenchData.Uniform(rows * inputs, 3), inputs, inputs, BenchData.Uniform(rows * hidden, 4), hidden, hidden);
        _q = new Int8Activations(_w);
        KernelSet.Scalar.QuantizeActivations(BenchData.Uniform(inputs + hidden, 5), _q);
        _y = new float[rows];
    }

    [Benchmark]
    public unsafe void Product()
    {
        fixed (float* y = _y) GemvInt8.PackedTiles(_path, _w!, _q!, null, 0, _w!.Tiles, y, false);
    }
}

/// <summary>One job (the paths are parameters, not kernel sets), MemoryDiagnoser, markdown + JSON.</summary>
public class Int8PathConfig : ManualConfig
{
    public Int8PathConfig()
    {
        AddJob(BenchMode.Apply(Job.Default.WithId("paths")));
        AddDiagnoser(MemoryDiagnoser.Default);
        AddExporter(MarkdownExporter.GitHub, JsonExporter.Full);
        AddColumn(BenchmarkDotNet.Columns.StatisticColumn.Median, BenchmarkDotNet.Columns.StatisticColumn.P95);
    }
}
