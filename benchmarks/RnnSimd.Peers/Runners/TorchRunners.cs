using RnnSimd.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RnnSimd.Peers.Runners;

/// <summary>What every LibTorch runner shares: threads, building modules, loading RnnSimd's weights by PyTorch name.</summary>
internal static class Torch
{
    /// <summary>
    /// torch.set_num_threads is process-wide (LibTorch's intra-op pool, OpenMP, MKL): the benchmarks set it in each
    /// case's own process (BenchmarkDotNet runs every case out of process); --verify sets it before each group.
    /// </summary>
    public static void SetThreads(int threads)
    {
        torch.set_num_threads(threads);
        if (torch.get_num_threads() != threads)
            throw new InvalidOperationException($"torch.set_num_threads({threads}) left get_num_threads() = {torch.get_num_threads()}.");
    }

    public static nn.Module Sequence(string cell, int input, int hidden) => cell switch
    {
        "lstm" => nn.LSTM(input, hidden),
        "gru" => nn.GRU(input, hidden),
        "rnn_tanh" => nn.RNN(input, hidden, nonLinearity: nn.NonLinearities.Tanh),
        _ => throw new ArgumentException($"no LibTorch module for cell '{cell}'."),
    };

    public static nn.Module Cell(string cell, int input, int hidden) => cell switch
    {
        "lstm" => nn.LSTMCell(input, hidden),
        "gru" => nn.GRUCell(input, hidden),
        "rnn_tanh" => nn.RNNCell(input, hidden, nonLinearity: nn.NonLinearities.Tanh),
        _ => throw new ArgumentException($"no LibTorch cell for cell '{cell}'."),
    };

    /// <summary>
    /// Copies every parameter of <paramref name="module"/> from <paramref name="source"/> by name; <paramref name="rename"/>
    /// maps a module name to the source's (cells lack the "_l0" suffix). Every parameter must be found, shapes equal.
    /// </summary>
    public static void Load(nn.Module module, IReadOnlyDictionary<string, float[]> source, Func<string, string>? rename = null)
    {
        using var _ = no_grad();
        int n = 0;
        foreach (var (name, param) in module.named_parameters())
        {
            string key = rename is null ? name : rename(name);
            if (!source.TryGetValue(key, out var values))
                throw new InvalidOperationException($"LibTorch parameter '{name}' (as '{key}') has no source among [{string.Join(", ", source.Keys)}].");
            if (values.Length != param.numel())
                throw new InvalidOperationException($"LibTorch parameter '{name}' has {param.numel()} values, source '{key}' has {values.Length}.");
            param.copy_(tensor(values, param.shape));
            n++;
        }
        if (n == 0) throw new InvalidOperationException("module has no parameters.");
    }

    public static Dictionary<string, float[]> ParametersOf(RecurrentNetwork net) =>
        net.Parameters.Entries.ToDictionary(e => e.Name, e => net.Parameters.View(e).ToArray());

    public static float[] Values(Tensor t) => t.detach().contiguous().data<float>().ToArray();
}

/// <summary>
/// S1 through nn.LSTM / nn.GRU / nn.RNN at T = 1, B = 1, under no_grad: input (1, 1, I), state (1, 1, H) carried by
/// keeping the returned h_n (and c_n) tensors for the next call. Each call's temporaries are released by a dispose scope.
/// </summary>
internal sealed class TorchStep : IRunner
{
    private readonly nn.Module _module;
    private readonly LSTM? _lstm;
    private readonly GRU? _gru;
    private readonly RNN? _rnn;
    private readonly Tensor _x;
    private readonly long[] _stateShape;
    private Tensor _h, _c;

    public TorchStep(Workload w, string cell)
    {
        var net = w.CreateNetwork(cell);
        _module = Torch.Sequence(cell, w.Input, w.Hidden);
        Torch.Load(_module, Torch.ParametersOf(net));
        _module.eval();
        (_lstm, _gru, _rnn) = (_module as LSTM, _module as GRU, _module as RNN);
        _x = tensor(w.CreateInput(), [1, 1, w.Input]);
        _stateShape = [1, 1, w.Hidden];
        _h = zeros(_stateShape);
        _c = zeros(_stateShape);
    }

    public void Run()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor h, c = _c;
        if (_lstm is not null) (_, h, c) = _lstm.forward(_x, (_h, _c));
        else if (_gru is not null) (_, h) = _gru.forward(_x, _h);
        else (_, h) = _rnn!.forward(_x, _h);
        _h.Dispose();
        _h = h.DetachFromDisposeScope();
        if (!ReferenceEquals(c, _c)) { _c.Dispose(); _c = c.DetachFromDisposeScope(); }
    }

    public IReadOnlyList<Quantity> Check()
    {
        Reset();
        var ys = new List<float>();
        for (int k = 0; k < Protocol.CheckSteps; k++)
        {
            Run();
            ys.AddRange(Torch.Values(_h));                          // y = h_n at T = 1
        }
        Reset();
        return [new("y", ys.ToArray())];
    }

    private void Reset()
    {
        _h.Dispose(); _c.Dispose();
        _h = zeros(_stateShape); _c = zeros(_stateShape);
    }

    public void Dispose() { _h.Dispose(); _c.Dispose(); _x.Dispose(); _module.Dispose(); }
}

/// <summary>
/// S1 through nn.LSTMCell / GRUCell / RNNCell, B = 1, under no_grad: input (1, I), state (1, H) carried as in <see cref="TorchStep"/>.
/// S4: the same with batch N (input (N, I), state (N, H) tensors carried): the streams live as rows of one batch tensor, so
/// no gather or scatter is timed (kinder to LibTorch than a per-stream state would be).
/// </summary>
internal sealed class TorchCellStep : IRunner
{
    private readonly nn.Module _module;
    private readonly LSTMCell? _lstm;
    private readonly GRUCell? _gru;
    private readonly RNNCell? _rnn;
    private readonly Tensor _x;
    private readonly long[] _stateShape;
    private Tensor _h, _c;

    public TorchCellStep(Workload w, string cell)
    {
        var net = w.CreateNetwork(cell);
        _module = Torch.Cell(cell, w.Input, w.Hidden);
        Torch.Load(_module, Torch.ParametersOf(net), name => name + "_l0");
        _module.eval();
        (_lstm, _gru, _rnn) = (_module as LSTMCell, _module as GRUCell, _module as RNNCell);
        _x = tensor(w.CreateInput(), [w.Batch, w.Input]);        // S1: (1, I); S4: (N, I), one row per stream
        _stateShape = [w.Batch, w.Hidden];
        _h = zeros(_stateShape);
        _c = zeros(_stateShape);
    }

    public void Run()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Tensor h, c = _c;
        if (_lstm is not null) (h, c) = _lstm.forward(_x, (_h, _c));
        else if (_gru is not null) h = _gru.forward(_x, _h);
        else h = _rnn!.forward(_x, _h);
        _h.Dispose();
        _h = h.DetachFromDisposeScope();
        if (!ReferenceEquals(c, _c)) { _c.Dispose(); _c = c.DetachFromDisposeScope(); }
    }

    public IReadOnlyList<Quantity> Check()
    {
        Reset();
        var ys = new List<float>();
        for (int k = 0; k < Protocol.CheckSteps; k++)
        {
            Run();
            ys.AddRange(Torch.Values(_h));
        }
        Reset();
        return [new("y", ys.ToArray())];
    }

    private void Reset()
    {
        _h.Dispose(); _c.Dispose();
        _h = zeros(_stateShape); _c = zeros(_stateShape);
    }

    public void Dispose() { _h.Dispose(); _c.Dispose(); _x.Dispose(); _module.Dispose(); }
}

/// <summary>
/// S2, S3 through nn.LSTM / GRU / RNN under no_grad: one forward of input (T, B, I) with no initial state (zeros);
/// LibTorch allocates the output (T, B, H) and h_n each call (its API has no out= for these modules); released by a
/// dispose scope.
/// </summary>
internal sealed class TorchSequence : IRunner
{
    private readonly nn.Module _module;
    private readonly Tensor _x;

    public TorchSequence(Workload w, string cell)
    {
        var net = w.CreateNetwork(cell);
        _module = Torch.Sequence(cell, w.Input, w.Hidden);
        Torch.Load(_module, Torch.ParametersOf(net));
        _module.eval();
        _x = tensor(w.CreateInput(), [w.Steps, w.Batch, w.Input]);
    }

    public void Run()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Forward(_module, _x);
    }

    /// <summary>(output (T, B, H), h_n (1, B, H)) with zero initial state.</summary>
    internal static (Tensor Output, Tensor HN) Forward(nn.Module module, Tensor x)
    {
        switch (module)
        {
            case LSTM lstm: { var (y, h, _) = lstm.forward(x, null); return (y, h); }
            case GRU gru: return gru.forward(x, null);
            case RNN rnn: return rnn.forward(x, null);
            default: throw new InvalidOperationException("unreachable");
        }
    }

    public IReadOnlyList<Quantity> Check()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (y, h) = Forward(_module, _x);
        return [new("output", Torch.Values(y)), new("h_n", Torch.Values(h))];
    }

    public void Dispose() { _x.Dispose(); _module.Dispose(); }
}

/// <summary>
/// T1, T2 through LibTorch with autograd: nn.LSTM / GRU / RNN (zero initial state) → nn.Linear(H, V) on the
/// (T*B, H) view → nn.functional.cross_entropy (mean) → backward → torch.optim.Adam(lr 2e-3).step(). zero_grad
/// first, as a training loop does. One-hot input and targets are tensors made once.
/// </summary>
internal sealed class TorchTrain : IRunner
{
    private readonly nn.Module _rnn;
    private readonly TorchSharp.Modules.Linear _head;
    private readonly optim.Optimizer _adam;
    private readonly Tensor _x, _targets;
    private readonly int _rows, _hidden;

    public TorchTrain(Workload w, string cell)
    {
        var init = new CharLmInit(w, cell);
        _rows = w.Steps * w.Batch;
        _hidden = w.Hidden;
        _rnn = Torch.Sequence(cell, w.Vocabulary, w.Hidden);
        Torch.Load(_rnn, Torch.ParametersOf(init.Net));
        _head = nn.Linear(w.Hidden, w.Vocabulary);
        Torch.Load(_head, new Dictionary<string, float[]> { ["weight"] = init.HeadWeight, ["bias"] = init.HeadBias });
        _rnn.train(); _head.train();
        _adam = optim.Adam(_rnn.parameters().Concat(_head.parameters()), lr: Workload.LearningRate);
        _x = tensor(init.Data.OneHot, [w.Steps, w.Batch, w.Vocabulary]);
        _targets = tensor(init.Data.Targets, [_rows]);
    }

    public void Run()
    {
        using var scope = NewDisposeScope();
        _adam.zero_grad();
        var loss = Loss();
        loss.backward();
        _adam.step();
    }

    private Tensor Loss()
    {
        var (output, _) = TorchSequence.Forward(_rnn, _x);                            // (T, B, H)
        var logits = _head.forward(output.reshape(_rows, _hidden));                    // (T*B, V)
        return nn.functional.cross_entropy(logits, _targets);                          // mean over T*B
    }

    public IReadOnlyList<Quantity> Check()
    {
        using var scope = NewDisposeScope();
        _adam.zero_grad();
        var loss = Loss();
        loss.backward();
        var named = _rnn.named_parameters().Select(p => (p.name, p.parameter))
            .Concat(_head.named_parameters().Select(p => ("head." + p.name, p.parameter))).ToList();
        var results = new List<Quantity> { new("loss", Torch.Values(loss)) };
        foreach (var (name, p) in named)
            results.Add(new("grad." + name, Torch.Values(p.grad ?? throw new InvalidOperationException($"no gradient reached {name}"))));
        _adam.step();
        foreach (var (name, p) in named) results.Add(new("param." + name, Torch.Values(p)));
        return results;
    }

    public void Dispose() { _adam.Dispose(); _x.Dispose(); _targets.Dispose(); _head.Dispose(); _rnn.Dispose(); }
}
