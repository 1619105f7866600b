using RnnSimd.Benchmarks;
using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.Peers.Runners;

/// <summary>
/// S1 through RnnSimd: <see cref="RecurrentNetwork.Step"/>, batch 1, state object carried (as the main project's S1), on
/// the float32 network or the one converted to bf16 / int8.
/// </summary>
internal sealed class RnnSimdStep : IRunner
{
    private readonly RecurrentNetwork _net;
    private readonly RecurrentState _state;
    private readonly float[] _x, _y;

    public RnnSimdStep(Workload w, string cell, Precision precision = Precision.Float32)
    {
        _net = w.CreateNetwork(cell, precision);
        _state = _net.CreateState(1);
        _x = w.CreateInput();                                     // (1, I)
        _y = new float[w.Hidden];                                 // (1, H)
    }

    public void Run() => _net.Step(_state, _x, _y);

    public IReadOnlyList<Quantity> Check()
    {
        _state.Reset();
        var ys = new float[Protocol.CheckSteps * _y.Length];      // (K, 1, H)
        for (int k = 0; k < Protocol.CheckSteps; k++)
        {
            Run();
            _y.CopyTo(ys, k * _y.Length);
        }
        _state.Reset();
        return [new("y", ys)];
    }

    public void Dispose() { }
}

/// <summary>
/// S2, S3 through RnnSimd: one inference-mode <see cref="RecurrentNetwork.Forward"/>, zero initial state, output and h_n
/// written (as the main project's), on the float32 network or the one converted to bf16 / int8.
/// </summary>
internal sealed class RnnSimdSequence : IRunner
{
    private readonly RecurrentNetwork _net;
    private readonly SequenceWorkspace _ws;
    private readonly int _steps, _batch;
    private readonly float[] _x, _y, _hN;

    public RnnSimdSequence(Workload w, string cell, Precision precision = Precision.Float32)
    {
        _net = w.CreateNetwork(cell, precision);
        _steps = w.Steps; _batch = w.Batch;
        _ws = _net.CreateInferenceWorkspace(_steps, _batch);       // records nothing (as no_grad / ORT)
        _x = w.CreateInput();                                     // (T, B, I)
        _y = new float[_steps * _batch * w.Hidden];               // (T, B, H)
        _hN = new float[_batch * w.Hidden];                       // (1, B, H)
    }

    public void Run() => _net.Forward(_x, _steps, _batch, [], [], _y, _hN, [], _ws);

    public IReadOnlyList<Quantity> Check()
    {
        Run();
        return [new("output", (float[])_y.Clone()), new("h_n", (float[])_hN.Clone())];
    }

    public void Dispose() { }
}

/// <summary>
/// S2, S3 through RnnSimd's ONNX import: the very model bytes ONNX Runtime's runner loads (<see cref="Onnx.OnnxRnnModel"/>:
/// X (T, B, I) into one LSTM / GRU / RNN node, outputs Y (T, 1, B, H) and Y_h), loaded by
/// <see cref="global::RnnSimd.Onnx.OnnxModel"/>; a call copies X into the session (SetInput) and runs it, as a user
/// would. Allocation-free after the first call.
/// </summary>
internal sealed class RnnSimdOnnxSequence : IRunner
{
    private readonly global::RnnSimd.Onnx.OnnxSession _session;
    private readonly float[] _x;
    private readonly long[] _shape;

    public RnnSimdOnnxSequence(Workload w, string cell)
    {
        var model = global::RnnSimd.Onnx.OnnxModel.Load(Onnx.OnnxRnnModel.Build(w.CreateNetwork(cell), w.Steps, w.Batch, step: false), "peers");
        _session = model.CreateSession();
        _x = w.CreateInput();
        _shape = [w.Steps, w.Batch, w.Input];
    }

    public void Run()
    {
        _session.SetInput(0, _x, _shape);
        _session.Run();
    }

    public IReadOnlyList<Quantity> Check()
    {
        Run();
        return [new("output", _session.OutputFloats(0).ToArray()), new("h_n", _session.OutputFloats(1).ToArray())];
    }

    public void Dispose() { }
}

/// <summary>
/// S4 through RnnSimd: N = <see cref="Workload.Batch"/> batch-1 states, one per stream, each stepped once per tick by
/// one <see cref="MultiStreamStepper"/> tick (stepper) or by N calls of <see cref="RecurrentNetwork.Step"/>. Every
/// stream has its own input row (so the streams' states differ from the first tick).
/// </summary>
internal sealed class RnnSimdServe : IRunner
{
    private readonly RecurrentNetwork _net;
    private readonly RecurrentState[] _streams;
    private readonly MultiStreamStepper? _stepper;
    private readonly float[] _x, _y;
    private readonly int _in, _hidden;

    public RnnSimdServe(Workload w, string cell, bool stepper)
    {
        _net = w.CreateNetwork(cell);
        _streams = Enumerable.Range(0, w.Batch).Select(_ => _net.CreateState(1)).ToArray();
        _stepper = stepper ? new MultiStreamStepper(_net, w.Batch) : null;
        _x = w.CreateInput();                                     // (N, I)
        _y = new float[w.Batch * w.Hidden];                       // (N, H)
        (_in, _hidden) = (w.Input, w.Hidden);
    }

    public void Run()
    {
        if (_stepper is not null)
        {
            _stepper.Step(_streams, _x, _y);
            return;
        }
        for (int n = 0; n < _streams.Length; n++)
            _net.Step(_streams[n], _x.AsSpan(n * _in, _in), _y.AsSpan(n * _hidden, _hidden));
    }

    public IReadOnlyList<Quantity> Check()
    {
        foreach (var s in _streams) s.Reset();
        var ys = new float[Protocol.CheckSteps * _y.Length];      // (K, N, H)
        for (int k = 0; k < Protocol.CheckSteps; k++)
        {
            Run();
            _y.CopyTo(ys, k * _y.Length);
        }
        foreach (var s in _streams) s.Reset();
        return [new("y", ys)];
    }

    public void Dispose() { }
}

/// <summary>
/// S1's and S4's reference for the check: the K steps as ONE RnnSimd <see cref="RecurrentNetwork.Forward"/> over the
/// input repeated K times, batch 1 (S1) or N (S4) (sequence path, not the step path or the stepper), so RnnSimd's own
/// runners are checked against something else. A reduced network records nothing, so it runs inference Forward.
/// </summary>
internal sealed class RnnSimdStepReference : IRunner
{
    private readonly Workload _w;
    private readonly string _cell;
    private readonly Precision _precision;

    public RnnSimdStepReference(Workload w, string cell, Precision precision = Precision.Float32) { _w = w; _cell = cell; _precision = precision; }

    public void Run() => throw new NotSupportedException("a reference is not timed.");

    public IReadOnlyList<Quantity> Check()
    {
        int K = Protocol.CheckSteps, B = _w.Batch, I = _w.Input, H = _w.Hidden;
        var net = _w.CreateNetwork(_cell, _precision);
        var x1 = _w.CreateInput();                                // (B, I)
        var x = new float[K * B * I];                             // (K, B, I): the same input every step
        for (int k = 0; k < K; k++) x1.CopyTo(x, k * B * I);
        var y = new float[K * B * H];                             // (K, B, H)
        var ws = _precision == Precision.Float32 ? net.CreateWorkspace(K, B) : net.CreateInferenceWorkspace(K, B);
        net.Forward(x, K, B, [], [], y, [], [], ws);
        return [new("y", y)];
    }

    public void Dispose() { }
}

/// <summary>
/// T1, T2 through RnnSimd: the main project's <see cref="CharLmTrainStep"/> (Linear head, mean softmax cross-entropy,
/// full BPTT, Adam) from the workload's initial weights and data; at 2 threads in its data-parallel scheme.
/// </summary>
internal sealed class RnnSimdTrain : IRunner
{
    private readonly Workload _w;
    private readonly string _cell;
    private readonly CharLmTrainStep _step;

    private readonly bool _dataParallel;

    /// <summary>At 2 threads, the data-parallel scheme (two shards, one per thread; faster than splitting each GEMM on 4 of 6
    /// T1/T2 cases here: perf-results/&lt;cpu&gt;/*TrainingSchemeBenchmarks*).</summary>
    public RnnSimdTrain(Workload w, string cell, int threads)
    {
        (_w, _cell, _dataParallel) = (w, cell, threads >= 2);
        _step = Create(w, cell, _dataParallel);
    }

    private static CharLmTrainStep Create(Workload w, string cell, bool dataParallel)
    {
        var init = new CharLmInit(w, cell);
        int[] targets = init.Data.Targets.Select(t => (int)t).ToArray();
        var step = new CharLmTrainStep(init.Net, init.HeadWeight, init.HeadBias, (init.Data.OneHot, targets), w.Steps, w.Batch);
        if (dataParallel) step.UseDataParallel();
        return step;
    }

    public void Run() => _step.Step();

    public IReadOnlyList<Quantity> Check()
    {
        var fresh = Create(_w, _cell, _dataParallel);
        var net = fresh.Network;
        var head = fresh.Head;
        double loss = fresh.Step(); // gradients stay in the arenas after the update
        var results = new List<Quantity> { new("loss", [(float)loss]) };
        foreach (var e in net.Gradients.Entries) results.Add(new("grad." + e.Name, net.Gradients.View(e).ToArray()));
        results.Add(new("grad.head.weight", head.Gradients["weight"].ToArray()));
        results.Add(new("grad.head.bias", head.Gradients["bias"].ToArray()));
        foreach (var e in net.Parameters.Entries) results.Add(new("param." + e.Name, net.Parameters.View(e).ToArray()));
        results.Add(new("param.head.weight", head.Parameters["weight"].ToArray()));
        results.Add(new("param.head.bias", head.Parameters["bias"].ToArray()));
        return results;
    }

    public void Dispose() { }
}
