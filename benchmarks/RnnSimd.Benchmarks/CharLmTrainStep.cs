using System.Runtime.InteropServices;
using RnnSimd.Kernels;
using RnnSimd.Layers;
using RnnSimd.Memory;
using RnnSimd.Training;

namespace RnnSimd.Benchmarks;

/// <summary>
/// The T1 / T2 training step as the peers run it: a fixed one-hot batch (T, B, V) of seeded random symbols, zero
/// initial state, zero gradients, RNN forward, Linear(H, V), mean softmax cross-entropy over the T*B positions, full
/// BPTT, one Adam step (lr 2e-3). Shared (linked) with the peers project so both measure the same code.
/// <para>
/// Two ways to use 2 threads (<see cref="Parallelism.MaxThreads"/> = 2): the default splits each large GEMM and batched
/// step across the threads; <see cref="UseDataParallel"/> instead splits the batch into two shards of B/2 sequences,
/// each running its whole forward, loss and backward on one thread (the network and head shared read-only, workspaces
/// and gradient arenas per shard), then adds the shards' gradients in a fixed order before one Adam step. The mean loss
/// over T*B positions is the average of the two shards' means (equal sizes), and each shard's dL/dlogits is halved
/// (exact: a power of two), so both schemes compute the same function; only the order of the sums differs.
/// </para>
/// </summary>
public sealed unsafe class CharLmTrainStep
{
    private readonly RecurrentNetwork _net;
    private readonly Linear _head;
    private readonly Adam _adam;
    private readonly SequenceWorkspace _ws;
    private readonly float[] _x, _y, _dy, _logits, _dLogits;
    private readonly int[] _targets;
    private readonly int _steps, _batch, _vocab;

    public CharLmTrainStep(CellType cell, int hidden, int steps, int batch, int vocab = 65, ulong seed = 1, KernelSet? kernels = null)
        : this(new RecurrentNetwork(new RecurrentOptions(cell, vocab, hidden), seed, kernels), null, null, RandomText(steps, batch, vocab, seed), steps, batch)
    {
    }

    /// <summary>
    /// A step over a given network (input size = vocabulary), head weights (V, H) and bias (V) (null: seeded default
    /// initialisation) and data: one-hot (T, B, V) and targets (T*B).
    /// </summary>
    public CharLmTrainStep(RecurrentNetwork net, float[]? headWeight, float[]? headBias, (float[] OneHot, int[] Targets) data, int steps, int batch)
    {
        int vocab = net.Options.InputSize, hidden = net.Options.OutputHidden;
        (_steps, _batch, _vocab) = (steps, batch, vocab);
        _net = net;
        _head = new Linear(hidden, vocab, 2, _net.Kernels);
        if (headWeight is not null) headWeight.CopyTo(_head.Parameters["weight"]);
        if (headBias is not null) headBias.CopyTo(_head.Parameters["bias"]);
        _head.ParametersChanged();
        _adam = new Adam([new ParameterGroup("rnn.", _net.Parameters, _net.Gradients), new ParameterGroup("head.", _head.Parameters, _head.Gradients)],
            _net.Kernels, 2e-3f);
        _ws = _net.CreateWorkspace(steps, batch);
        int rows = steps * batch;
        (_x, _targets) = data;
        _y = new float[rows * hidden];
        _dy = new float[rows * hidden];
        _logits = new float[rows * vocab];
        _dLogits = new float[rows * vocab];
    }

    private static (float[], int[]) RandomText(int steps, int batch, int vocab, ulong seed)
    {
        int rows = steps * batch;
        var x = new float[rows * vocab];
        var targets = new int[rows];
        var rng = new Xoshiro(seed + 2);
        int[] text = Enumerable.Range(0, rows + batch).Select(_ => rng.NextInt(vocab)).ToArray();
        for (int t = 0; t < steps; t++)
            for (int b = 0; b < batch; b++)
            {
                x[(t * batch + b) * vocab + text[t * batch + b]] = 1f;
                targets[t * batch + b] = text[(t + 1) * batch + b];
            }
        return (x, targets);
    }

    private sealed class Shard
    {
        public required SequenceWorkspace Workspace;
        public required Arena RnnGradients, HeadGradients;
        public required float[] X, Y, Dy, Logits, DLogits;
        public required int[] Targets;
        public double Loss;
    }

    private Shard[]? _shards;
    private GCHandle _self;

    /// <summary>
    /// Switches to the data-parallel scheme (two shards of B/2 sequences, one per thread; see the type's summary). Needs an
    /// even B. Falls back to running the shards one after the other when no second thread is available.
    /// </summary>
    public void UseDataParallel()
    {
        if (_batch % 2 != 0) throw new InvalidOperationException($"data-parallel shards need an even batch, got {_batch}.");
        int bs = _batch / 2, rows = _steps * bs, hidden = _net.Options.OutputHidden;
        _shards = new Shard[2];
        for (int k = 0; k < 2; k++)
        {
            var sh = new Shard
            {
                Workspace = _net.CreateWorkspace(_steps, bs), RnnGradients = _net.CreateGradients(), HeadGradients = _head.CreateGradients(),
                X = new float[rows * _vocab], Y = new float[rows * hidden], Dy = new float[rows * hidden], Logits = new float[rows * _vocab],
                DLogits = new float[rows * _vocab], Targets = new int[rows],
            };
            for (int t = 0; t < _steps; t++)          // rows (t, b) of shard k are rows (t, k*bs + b) of the batch
            {
                _x.AsSpan((t * _batch + k * bs) * _vocab, bs * _vocab).CopyTo(sh.X.AsSpan(t * bs * _vocab));
                _targets.AsSpan(t * _batch + k * bs, bs).CopyTo(sh.Targets.AsSpan(t * bs));
            }
            _shards[k] = sh;
        }
        if (!_self.IsAllocated) _self = GCHandle.Alloc(this, GCHandleType.Weak);
    }

    private static void RunShard(void* self, int part, int parts) =>
        ((CharLmTrainStep)GCHandle.FromIntPtr((IntPtr)self).Target!).RunShard(part);

    /// <summary>One shard's forward, loss and backward into its own gradient arenas (nested GEMMs stay on this thread).</summary>
    private void RunShard(int k)
    {
        var sh = _shards![k];
        int bs = _batch / 2, rows = _steps * bs;
        sh.RnnGradients.Clear();
        sh.HeadGradients.Clear();
        _net.Forward(sh.X, _steps, bs, [], [], sh.Y, [], [], sh.Workspace);
        _head.Forward(sh.Y, rows, sh.Logits);
        sh.Loss = Losses.SoftmaxCrossEntropy(_net.Kernels, sh.Logits, sh.Targets, _vocab, [], sh.DLogits, mean: true);
        foreach (ref float d in sh.DLogits.AsSpan()) d *= 0.5f;                  // mean over the whole batch: / 2, exact
        _head.Backward(sh.Y, sh.DLogits, rows, sh.Dy, sh.HeadGradients);
        _net.Backward(sh.Workspace, sh.Dy, [], [], [], [], [], default, sh.RnnGradients);
    }

    private double StepDataParallel()
    {
        if (!Parallelism.TryRun(&RunShard, (void*)GCHandle.ToIntPtr(_self), 2)) { RunShard(0); RunShard(1); }
        _net.ZeroGradients();
        _head.ZeroGradients();
        foreach (var sh in _shards!)                   // fixed order: shard 0, then shard 1
        {
            _net.Gradients.Add(sh.RnnGradients);
            _head.Gradients.Add(sh.HeadGradients);
        }
        _adam.Step();
        _net.ParametersChanged();
        _head.ParametersChanged();
        return (_shards[0].Loss + _shards[1].Loss) / 2;
    }

    ~CharLmTrainStep()
    {
        if (_self.IsAllocated) _self.Free();
    }

    public RecurrentNetwork Network => _net;
    public Linear Head => _head;

    /// <summary>One training step; returns the mean cross-entropy before the update.</summary>
    public double Step()
    {
        if (_shards is not null) return StepDataParallel();
        int rows = _steps * _batch;
        _net.ZeroGradients();
        _head.ZeroGradients();
        _net.Forward(_x, _steps, _batch, [], [], _y, [], [], _ws);
        _head.Forward(_y, rows, _logits);
        double loss = Losses.SoftmaxCrossEntropy(_net.Kernels, _logits, _targets, _vocab, [], _dLogits, mean: true);
        _head.Backward(_y, _dLogits, rows, _dy);
        _net.Backward(_ws, _dy, [], [], [], [], []);
        _adam.Step();
        _net.ParametersChanged();
        _head.ParametersChanged();
        return loss;
    }
}
