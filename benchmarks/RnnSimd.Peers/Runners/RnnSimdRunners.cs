using RnnSimd.Layers;

namespace RnnSimd.Peers.Runners;

/// <summary>S1 through RnnSimd: <see cref="RecurrentNetwork.Step"/>, batch 1, state object carried (as the main project's S1).</summary>
internal sealed class RnnSimdStep : IRunner
{
    private readonly RecurrentNetwork _net;
    private readonly RecurrentState _state;
    private readonly float[] _x, _y;

    public RnnSimdStep(Workload w, string cell)
    {
        _net = w.CreateNetwork(cell);
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

/// <summary>S2, S3 through RnnSimd: one <see cref="RecurrentNetwork.Forward"/>, zero initial state, output and h_n written (as the main project's).</summary>
internal sealed class RnnSimdSequence : IRunner
{
    private readonly RecurrentNetwork _net;
    private readonly SequenceWorkspace _ws;
    private readonly int _steps, _batch;
    private readonly float[] _x, _y, _hN;

    public RnnSimdSequence(Workload w, string cell)
    {
        _net = w.CreateNetwork(cell);
        _steps = w.Steps; _batch = w.Batch;
        _ws = _net.CreateWorkspace(_steps, _batch);
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
/// S1's reference for the check: the K steps as ONE RnnSimd <see cref="RecurrentNetwork.Forward"/> over the input
/// repeated K times (sequence path, not the step path), so RnnSimd's own S1 runner is checked against something else.
/// </summary>
internal sealed class RnnSimdStepReference : IRunner
{
    private readonly Workload _w;
    private readonly string _cell;

    public RnnSimdStepReference(Workload w, string cell) { _w = w; _cell = cell; }

    public void Run() => throw new NotSupportedException("a reference is not timed.");

    public IReadOnlyList<Quantity> Check()
    {
        int K = Protocol.CheckSteps, I = _w.Input, H = _w.Hidden;
        var net = _w.CreateNetwork(_cell);
        var x1 = _w.CreateInput();
        var x = new float[K * I];                                 // (K, 1, I): the same input every step
        for (int k = 0; k < K; k++) x1.CopyTo(x, k * I);
        var y = new float[K * H];                                 // (K, 1, H)
        net.Forward(x, K, 1, [], [], y, [], [], net.CreateWorkspace(K, 1));
        return [new("y", y)];
    }

    public void Dispose() { }
}
