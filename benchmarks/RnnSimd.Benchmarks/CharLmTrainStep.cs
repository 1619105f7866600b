using RnnSimd.Kernels;
using RnnSimd.Layers;
using RnnSimd.Memory;
using RnnSimd.Training;

namespace RnnSimd.Benchmarks;

/// <summary>
/// The T1 / T2 training step as the peers run it: a fixed one-hot batch (T, B, V) of seeded random symbols, zero
/// initial state, zero gradients, RNN forward, Linear(H, V), mean softmax cross-entropy over the T*B positions, full
/// BPTT, one Adam step (lr 2e-3). Shared (linked) with the peers project so both measure the same code.
/// </summary>
public sealed class CharLmTrainStep
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

    public RecurrentNetwork Network => _net;
    public Linear Head => _head;

    /// <summary>One training step; returns the mean cross-entropy before the update.</summary>
    public double Step()
    {
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
