using BenchmarkDotNet.Attributes;
using RnnSimd.Cells;
using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.Benchmarks;

/// <summary>
/// Where the time of an LSTM workload goes (issue 12, item 1): each phase of a whole sequence run on its own, with the
/// same kernels, shapes and packed weights the network uses, so the phases add up to (about) the whole. One operation
/// = that phase for the whole sequence (T steps), so the rows compare directly with "whole".
/// S2: T = 128, B = 1, I = 64, H = 256 (inference); S3: T = 64, B = 32, I = 65, H = 256 (inference);
/// T2: T = 32, B = 64, I = 65, H = 512 (training: forward recording, BPTT, weight gradients).
/// Phases: input (x W_ih^T for all steps), recurrent (h W_hh^T, T times), gates (the fused cell kernel, T times),
/// whole (the network's own Forward, or Forward + Backward for T2); T2 adds recurrent-back (dG W_hh, T times),
/// gates-back (T times), weight-grads (dW_ih and dW_hh over all steps). The single phases run on one thread's kernels
/// (at Threads = 2 a large GEMM still splits by columns); "whole" at Threads = 2 shows the network's own split.
/// Classes: <see cref="InferencePhaseBenchmarks"/> (S2, S3), <see cref="TrainingPhaseBenchmarks"/> (T2).
/// </summary>
public abstract unsafe class PhaseBenchmarks
{
    public abstract string Workload { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    private RecurrentNetwork _net = null!;
    private LayerWeights _w = null!;
    private SequenceWorkspace _ws = null!;
    private int _t, _b, _in, _h;
    private float[] _x = [], _y = [], _hN = [], _dy = [];
    private float* _gx, _hs, _gh, _gates, _c, _tanhC, _dg, _dh;
    private float[] _buffers = [];

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.MaxThreads = Threads;
        (_t, _b, _in, _h) = Workload switch
        {
            "S2" => (128, 1, 64, 256),
            "S3" => (64, 32, 65, 256),
            _ => (32, 64, 65, 512),
        };
        _net = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, _in, _h), 3);
        _w = _net.LayerAt(0);
        bool training = Workload == "T2";
        _ws = training ? _net.CreateWorkspace(_t, _b) : _net.CreateInferenceWorkspace(_t, _b);
        _x = BenchData.Uniform(_t * _b * _in, 4);
        _y = new float[_t * _b * _h];
        _dy = BenchData.Uniform(_t * _b * _h, 5);
        _hN = new float[_b * _h];
        int gh = 4 * _h, rows = _t * _b;
        // gx (T*B, GH), hs (T+1, B, H), gh (B, GH), gates (T*B, GH), c (T+1, B, H), tanhC (B, H), dg (T*B, GH), dh (B, H)
        long n = (long)rows * gh + (rows + _b) * _h + _b * gh + (long)rows * gh + (rows + _b) * _h + _b * _h + (long)rows * gh + _b * _h + 64;
        _buffers = GC.AllocateArray<float>((int)n, pinned: true);
        var fill = BenchData.Uniform((int)n, 6);
        for (int i = 0; i < fill.Length; i++) _buffers[i] = fill[i] * 0.5f;
        fixed (float* p = _buffers)
        {
            float* q = (float*)(((nint)p + 63) & ~(nint)63);
            _gx = q; q += (long)rows * gh;
            _hs = q; q += (long)(rows + _b) * _h;
            _gh = q; q += _b * gh;
            _gates = q; q += (long)rows * gh;
            _c = q; q += (long)(rows + _b) * _h;
            _tanhC = q; q += _b * _h;
            _dg = q; q += (long)rows * gh;
            _dh = q;
        }
    }

    [GlobalCleanup]
    public void Cleanup() => Parallelism.MaxThreads = 1;

    /// <summary>The input projection of every step (in the inference path's chunks of 128 rows for S2/S3, one GEMM for T2).</summary>
    [Benchmark(Description = "input")]
    public void Input()
    {
        int rows = _t * _b, gh = 4 * _h;
        int chunk = Workload == "T2" ? rows : Math.Max(SequenceWorkspace.InferenceChunkRows / _b, 1) * _b;
        for (int r0 = 0; r0 < rows; r0 += chunk)
        {
            int n = Math.Min(chunk, rows - r0);
            fixed (float* x = _x)
                _w.K.Gemm(false, n, 1f, new ReadOnlySpan<float>(x + (long)r0 * _in, n * _in), _in, _w.WihT, 0f,
                    new Span<float>(_gx + (long)(Workload == "T2" ? r0 : 0) * gh, n * gh), gh);
        }
    }

    /// <summary>h W_hh^T, T times (GEMV tiles at B = 1, GEMM panels otherwise).</summary>
    [Benchmark(Description = "recurrent")]
    public void Recurrent()
    {
        var s = new CellStep { Batch = _b };
        for (int t = 0; t < _t; t++) _w.Mul(s, _hs + (long)t * _b * _h, _w.RecV, _w.RecT, _gh, 4 * _h, false);
    }

    /// <summary>The fused LSTM gate kernel, T times.</summary>
    [Benchmark(Description = "gates")]
    public void Gates()
    {
        int gh = 4 * _h;
        for (int t = 0; t < _t; t++)
        {
            long row = (long)t * _b;
            var k = new LstmForward<LstmPlain>
            {
                Isa = _w.K.Isa, A = _gx + row * gh, Bias = _w.BiasSum, B = _gh, CPrev = _c + row * _h, Gates = _gates + row * gh,
                C = _c + row * _h + _b * _h, TanhC = _tanhC, H = _hs + row * _h + _b * _h, Hd = (nuint)_h, BStride = (nuint)gh,
            };
            Rows.Run(ref k, _b, gh);
        }
    }

    /// <summary>dG W_hh (the recurrent half of dL/dh_{t-1}), T times (T2).</summary>
    protected void RecurrentBackPhase()
    {
        for (int t = 0; t < _t; t++) _w.MulBack(_b, _dg + (long)t * _b * 4 * _h, 4 * _h, _w.Whh, _w.RecN, _dh, false);
    }

    /// <summary>The fused LSTM backward gate kernel, T times (T2).</summary>
    protected void GatesBackPhase()
    {
        int gh = 4 * _h;
        for (int t = 0; t < _t; t++)
        {
            long row = (long)t * _b;
            var k = new LstmBackward<LstmPlain>
            {
                Isa = _w.K.Isa, DM = _dh, DCNext = _tanhC, Gates = _gates + row * gh, CPrev = _c + row * _h, TanhC = _c + row * _h + _b * _h,
                DG = _dg + row * gh, DCPrev = _tanhC, Hd = (nuint)_h,
            };
            Rows.Run(ref k, _b, gh);
        }
    }

    /// <summary>dW_ih += dG^T X and dW_hh += dG^T H over all steps (T2).</summary>
    protected void WeightGradientsPhase()
    {
        int rows = _t * _b, gh = 4 * _h;
        fixed (float* x = _x)
        fixed (float* g = _net.Gradients.Data)
        {
            _w.K.Gemm(true, false, gh, _in, rows, 1f, new ReadOnlySpan<float>(_dg, rows * gh), gh, new ReadOnlySpan<float>(x, rows * _in), _in,
                1f, new Span<float>(g + _w.OWih, gh * _in), _in);
            _w.K.Gemm(true, false, gh, _h, rows, 1f, new ReadOnlySpan<float>(_dg, rows * gh), gh, new ReadOnlySpan<float>(_hs, rows * _h), _h,
                1f, new Span<float>(g + _w.OWhh, gh * _h), _h);
        }
    }

    /// <summary>The network's own call: Forward (S2, S3), Forward + Backward (T2).</summary>
    [Benchmark(Description = "whole")]
    public void Whole()
    {
        _net.Forward(_x, _t, _b, [], [], _y, _hN, [], _ws);
        if (Workload == "T2") _net.Backward(_ws, _dy, [], [], [], [], [], gradients: _net.Gradients);
    }
}

/// <summary>The inference workloads' phases (S2, S3).</summary>
[Config(typeof(WorkloadConfig))]
public class InferencePhaseBenchmarks : PhaseBenchmarks
{
    [Params("S2", "S3")]
    public override string Workload { get; set; } = "";
}

/// <summary>The training workload's phases (T2), with the backward ones.</summary>
[Config(typeof(WorkloadConfig))]
public class TrainingPhaseBenchmarks : PhaseBenchmarks
{
    [Params("T2")]
    public override string Workload { get; set; } = "";

    /// <summary>dG W_hh (the recurrent half of dL/dh_{t-1}), T times.</summary>
    [Benchmark(Description = "recurrent-back")]
    public void RecurrentBack() => RecurrentBackPhase();

    /// <summary>The fused LSTM backward gate kernel, T times.</summary>
    [Benchmark(Description = "gates-back")]
    public void GatesBack() => GatesBackPhase();

    /// <summary>dW_ih += dG^T X and dW_hh += dG^T H over all steps.</summary>
    [Benchmark(Description = "weight-grads")]
    public void WeightGradients() => WeightGradientsPhase();
}
