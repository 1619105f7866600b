using System.Numerics.Tensors;
using BenchmarkDotNet.Attributes;
using RnnSimd.Kernels;

namespace RnnSimd.Benchmarks;

/// <summary>Seeded data for benchmarks.</summary>
internal static class BenchData
{
    public static float[] Uniform(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return v;
    }
}

/// <summary>
/// GEMM at the shapes the recurrent workloads use, each beside a ragged neighbour. Shape strings are "M x N x K".
/// step: batch-32 LSTM step gates = [x h] W^T (weights packed once: "packed"; and packed per call).
/// inproj: the hoisted input projection of a whole sequence (T*B = 2048 rows). wgrad: dW = dY^T X (accumulating).
/// square: 1024^3 for peak.
/// </summary>
[Config(typeof(KernelSetConfig))]
public class GemmBenchmarks
{
    [Params("step 32x1024x321", "step 31x1021x319", "inproj 2048x1024x65", "inproj 2047x1021x67",
        "wgrad 1024x321x2048", "wgrad 1021x319x2047", "square 1024x1024x1024", "square 1023x1023x1023")]
    public string Shape { get; set; } = "";

    private int _m, _n, _k;
    private float[] _a = [], _b = [], _c = [];
    private bool _transA, _transB;
    private PackedGemmOperand? _packed;
    private readonly KernelSet _set = KernelSet.Default;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split(' ');
        var dims = parts[1].Split('x').Select(int.Parse).ToArray();
        (_m, _n, _k) = (dims[0], dims[1], dims[2]);
        // forward shapes multiply by W^T (weights stored N x K); the weight gradient is dY^T X (dY stored K x M).
        _transA = parts[0] == "wgrad";
        _transB = parts[0] is "step" or "inproj";
        _a = BenchData.Uniform(_m * _k, 1);
        _b = BenchData.Uniform(_k * _n, 2);
        _c = new float[_m * _n];
        _packed = _set.PackGemmOperand(_transB, _k, _n, _b, _transB ? _k : _n);
    }

    /// <summary>op(B) packed on every call.</summary>
    [Benchmark]
    public void Gemm() => _set.Gemm(_transA, _transB, _m, _n, _k, 1f, _a, _transA ? _m : _k, _b, _transB ? _k : _n,
        _transA ? 1f : 0f, _c, _n);

    /// <summary>op(B) packed once in advance (weights reused every call).</summary>
    [Benchmark]
    public void GemmPrePacked() => _set.Gemm(_transA, _m, 1f, _a, _transA ? _m : _k, _packed!, _transA ? 1f : 0f, _c, _n);
}

/// <summary>Batch-1 matrix-vector products at the recurrent shapes (4H x (I+H) for LSTM 256/64, GRU, RNN), with a ragged neighbour.</summary>
[Config(typeof(KernelSetConfig))]
public class GemvBenchmarks
{
    [Params("1024x320", "768x320", "256x320", "1021x317")]
    public string Shape { get; set; } = "";

    private int _rows, _cols;
    private float[] _w = [], _x = [], _y = [];
    private PackedGemvMatrix? _packed;
    private readonly KernelSet _set = KernelSet.Default;

    [GlobalSetup]
    public void Setup()
    {
        var d = Shape.Split('x').Select(int.Parse).ToArray();
        (_rows, _cols) = (d[0], d[1]);
        _w = BenchData.Uniform(_rows * _cols, 3);
        _x = BenchData.Uniform(_cols, 4);
        _y = BenchData.Uniform(_rows, 5);
        _packed = new PackedGemvMatrix(_rows, _cols, _w, _cols);
    }

    /// <summary>y = W x with W in 16-row tiles.</summary>
    [Benchmark]
    public void PackedTiles() => _set.Gemv(_packed!, _x, _y);

    /// <summary>y = W x with W row-major (one dot product per row).</summary>
    [Benchmark]
    public void RowMajor() => _set.Gemv(_rows, _cols, _w, _cols, _x, _y);

    /// <summary>x = W^T y with W row-major (the backward-data product of BPTT at batch 1).</summary>
    [Benchmark]
    public void Transposed() => _set.GemvTransposed(_rows, _cols, _w, _cols, _y, _x);
}

/// <summary>Activations on 4H = 1024 and 100,000 elements, next to System.Numerics.Tensors' TensorPrimitives.</summary>
[Config(typeof(KernelSetConfig))]
public class ActivationBenchmarks
{
    [Params(1024, 100_000)]
    public int Length { get; set; }

    private float[] _x = [], _y = [];
    private readonly KernelSet _set = KernelSet.Default;

    [GlobalSetup]
    public void Setup()
    {
        _x = BenchData.Uniform(Length, 6, 6f);
        _y = new float[Length];
    }

    [Benchmark] public void Tanh() => _set.Map<TanhOp>(_x, _y);
    [Benchmark] public void TensorPrimitivesTanh() => TensorPrimitives.Tanh(_x, _y);
    [Benchmark] public void Sigmoid() => _set.Map<SigmoidOp>(_x, _y);
    [Benchmark] public void TensorPrimitivesSigmoid() => TensorPrimitives.Sigmoid(_x, _y);
}
