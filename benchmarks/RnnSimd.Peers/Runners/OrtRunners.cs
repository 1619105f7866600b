using Microsoft.ML.OnnxRuntime;
using RnnSimd.Layers;
using RnnSimd.Peers.Onnx;

namespace RnnSimd.Peers.Runners;

/// <summary>
/// What every ONNX Runtime runner shares: the session (CPU provider, graph optimizations on (ORT_ENABLE_ALL),
/// IntraOpNumThreads = the case's threads, InterOpNumThreads = 1, sequential execution; spinning left at ORT's default)
/// and the model built from RnnSimd's weights by <see cref="OnnxRnnModel"/> (the float32 LSTM / GRU / RNN operator, or
/// for an int8 LSTM the contrib operator DynamicQuantizeLSTM with RnnSimd's codes and scales). Inputs and outputs are
/// OrtValues over pinned managed arrays made once, bound once through an OrtIoBinding: a run copies nothing in or out.
/// </summary>
internal abstract class OrtRunner : IDisposable
{
    protected readonly InferenceSession Session;
    protected readonly RunOptions RunOptions = new();
    private readonly List<IDisposable> _owned = [];

    /// <summary>The model of <paramref name="net"/> at (steps, batch): DynamicQuantizeLSTM for an int8 network, else the float32 operator.</summary>
    protected static byte[] ModelOf(RecurrentNetwork net, int steps, int batch, bool step) => net.Precision == Precision.Int8
        ? OnnxRnnModel.BuildDynamicQuantizedLstm(net, steps, batch, step)
        : OnnxRnnModel.Build(net, steps, batch, step);

    protected OrtRunner(RecurrentNetwork net, int steps, int batch, bool step, int threads)
    {
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        Session = new InferenceSession(ModelOf(net, steps, batch, step), options);
    }

    /// <summary>An OrtValue over <paramref name="data"/> (pinned for the value's life).</summary>
    protected OrtValue Value(float[] data, params long[] shape)
    {
        var v = OrtValue.CreateTensorValueFromMemory(data, shape);
        _owned.Add(v);
        return v;
    }

    protected OrtIoBinding Binding()
    {
        var b = Session.CreateIoBinding();
        _owned.Add(b);
        return b;
    }

    public virtual void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        RunOptions.Dispose();
        Session.Dispose();
    }
}

/// <summary>
/// S1 through ONNX Runtime: the step graph (T = 1; inputs X, initial_h (, initial_c); outputs Y_h (, Y_c)).
/// The state is carried by ping-pong: two state buffer pairs A and B and two bindings, A → B and B → A, used in turn,
/// so each call's Y_h / Y_c are the next call's initial_h / initial_c with no copy (ORT does not promise that an input
/// may alias an output, so one buffer for both is avoided). The output y is Y_h.
/// </summary>
internal sealed class OrtStep : OrtRunner, IRunner
{
    private readonly OrtIoBinding[] _bindings = new OrtIoBinding[2];
    private readonly float[][] _h, _c;
    private int _turn;

    public OrtStep(Workload w, string cell, int threads) : this(w, w.CreateNetwork(cell), threads) { }

    /// <summary>S1 through DynamicQuantizeLSTM with the codes and scales of RnnSimd's int8 LSTM.</summary>
    public static OrtStep Int8Lstm(Workload w, int threads) => new(w, w.CreateNetwork("lstm", Precision.Int8), threads);

    private OrtStep(Workload w, RecurrentNetwork net, int threads) : base(net, 1, 1, step: true, threads)
    {
        bool lstm = net.Options.Cell == CellType.Lstm;
        int H = w.Hidden;
        var x = Value(w.CreateInput(), 1, 1, w.Input);                               // X (1, 1, I)
        _h = [new float[H], new float[H]];                                             // (1, 1, H) each
        _c = [new float[H], new float[H]];
        var hv = new[] { Value(_h[0], 1, 1, H), Value(_h[1], 1, 1, H) };
        var cv = new[] { Value(_c[0], 1, 1, H), Value(_c[1], 1, 1, H) };
        for (int k = 0; k < 2; k++)
        {
            var b = Binding();
            b.BindInput("X", x);
            b.BindInput("initial_h", hv[k]);
            b.BindOutput("Y_h", hv[1 - k]);
            if (lstm)
            {
                b.BindInput("initial_c", cv[k]);
                b.BindOutput("Y_c", cv[1 - k]);
            }
            _bindings[k] = b;
        }
    }

    public void Run()
    {
        Session.RunWithBinding(RunOptions, _bindings[_turn]);
        _turn ^= 1;
    }

    /// <summary>The current h: where the last call wrote Y_h.</summary>
    private float[] H => _h[_turn];

    public IReadOnlyList<Quantity> Check()
    {
        Reset();
        var ys = new List<float>();
        for (int k = 0; k < Protocol.CheckSteps; k++)
        {
            Run();
            ys.AddRange(H);
        }
        Reset();
        return [new("y", ys.ToArray())];
    }

    private void Reset()
    {
        foreach (var a in _h) Array.Clear(a);
        foreach (var a in _c) Array.Clear(a);
        _turn = 0;
    }
}

/// <summary>S2, S3 through ONNX Runtime: the sequence graph (input X (T, B, I); outputs Y (T, 1, B, H) and Y_h (1, B, H); zero initial state).</summary>
internal sealed class OrtSequence : OrtRunner, IRunner
{
    private readonly OrtIoBinding _binding;
    private readonly float[] _y, _hN;

    public OrtSequence(Workload w, string cell, int threads) : this(w, w.CreateNetwork(cell), threads) { }

    /// <summary>S2 through DynamicQuantizeLSTM with the codes and scales of RnnSimd's int8 LSTM.</summary>
    public static OrtSequence Int8Lstm(Workload w, int threads) => new(w, w.CreateNetwork("lstm", Precision.Int8), threads);

    private OrtSequence(Workload w, RecurrentNetwork net, int threads) : base(net, w.Steps, w.Batch, step: false, threads)
    {
        int T = w.Steps, B = w.Batch, H = w.Hidden;
        _y = new float[T * B * H];
        _hN = new float[B * H];
        _binding = Binding();
        _binding.BindInput("X", Value(w.CreateInput(), T, B, w.Input));
        _binding.BindOutput("Y", Value(_y, T, 1, B, H));
        _binding.BindOutput("Y_h", Value(_hN, 1, B, H));
    }

    public void Run() => Session.RunWithBinding(RunOptions, _binding);

    public IReadOnlyList<Quantity> Check()
    {
        Run();
        return [new("output", (float[])_y.Clone()), new("h_n", (float[])_hN.Clone())];
    }
}

/// <summary>
/// S4 through ONNX Runtime: the step graph at batch N. ORT is stateless per call, so a server keeps each stream's
/// state itself (here one h and one c array per stream) and, per tick, gathers them into the bound initial_h /
/// initial_c (1, N, H), runs, and scatters Y_h / Y_c back to the streams: what a user must do. The output y is Y_h.
/// </summary>
internal sealed class OrtServe : OrtRunner, IRunner
{
    private readonly OrtIoBinding _binding;
    private readonly float[][] _h, _c;                     // per stream (H)
    private readonly float[] _hIn, _cIn, _hOut, _cOut;     // (1, N, H)
    private readonly bool _lstm;

    public OrtServe(Workload w, string cell, int threads) : this(w, w.CreateNetwork(cell), threads) { }

    private OrtServe(Workload w, RecurrentNetwork net, int threads) : base(net, 1, w.Batch, step: true, threads)
    {
        _lstm = net.Options.Cell == CellType.Lstm;
        int N = w.Batch, H = w.Hidden;
        _h = Enumerable.Range(0, N).Select(_ => new float[H]).ToArray();
        _c = Enumerable.Range(0, N).Select(_ => new float[H]).ToArray();
        (_hIn, _cIn, _hOut, _cOut) = (new float[N * H], new float[N * H], new float[N * H], new float[N * H]);
        _binding = Binding();
        _binding.BindInput("X", Value(w.CreateInput(), 1, N, w.Input));
        _binding.BindInput("initial_h", Value(_hIn, 1, N, H));
        _binding.BindOutput("Y_h", Value(_hOut, 1, N, H));
        if (_lstm)
        {
            _binding.BindInput("initial_c", Value(_cIn, 1, N, H));
            _binding.BindOutput("Y_c", Value(_cOut, 1, N, H));
        }
    }

    public void Run()
    {
        int H = _h[0].Length;
        for (int n = 0; n < _h.Length; n++)
        {
            _h[n].CopyTo(_hIn, n * H);
            if (_lstm) _c[n].CopyTo(_cIn, n * H);
        }
        Session.RunWithBinding(RunOptions, _binding);
        for (int n = 0; n < _h.Length; n++)
        {
            _hOut.AsSpan(n * H, H).CopyTo(_h[n]);
            if (_lstm) _cOut.AsSpan(n * H, H).CopyTo(_c[n]);
        }
    }

    public IReadOnlyList<Quantity> Check()
    {
        Reset();
        var ys = new List<float>();
        for (int k = 0; k < Protocol.CheckSteps; k++)
        {
            Run();
            ys.AddRange(_hOut);
        }
        Reset();
        return [new("y", ys.ToArray())];
    }

    private void Reset()
    {
        foreach (var a in _h) Array.Clear(a);
        foreach (var a in _c) Array.Clear(a);
    }
}
