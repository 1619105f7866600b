using System.Globalization;
using System.Runtime.InteropServices;
using RnnSimd.IO;
using RnnSimd.Kernels;
using RnnSimd.Layers;
using RnnSimd.Memory;

namespace RnnSimd.Training;

/// <summary>One training step's figures.</summary>
/// <param name="Step">The step number (1 for the first).</param>
/// <param name="Loss">The task's loss on this step's batch (mean over the batch's predictions).</param>
/// <param name="GradientNorm">The global L2 norm of all gradients before clipping.</param>
/// <param name="LearningRate">The learning rate used.</param>
public readonly record struct StepReport(int Step, double Loss, double GradientNorm, float LearningRate);

/// <summary>Training stopped because a loss or gradient was not finite.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>
/// Trains a recurrent network plus a linear output layer on a task: draws a batch, runs forward, the loss summed
/// (or averaged) over time, BPTT, gradient clipping and an optimizer step. Adding and copy draw fresh random batches
/// every step; the character LM reads B contiguous streams of the text in chunks of T steps and carries the state
/// from chunk to chunk (stateful truncated BPTT, as char-rnn), the streams' offsets shuffled at every epoch. The
/// sequence task takes B whole sequences of a <see cref="SequenceDataset"/> per step, in an order shuffled per epoch.
/// With a fixed seed and kernel set the loss trajectory is bitwise reproducible, and a run resumed from a checkpoint
/// continues exactly as the uninterrupted run. A step allocates nothing after warm-up.
/// With <see cref="TrainingConfig.Shards"/> &gt; 1 each step is data-parallel: the batch's shards run forward, loss and
/// backward on their own threads (up to <see cref="Parallelism.MaxThreads"/>) with their own workspaces and gradient
/// arenas, summed in shard order; the result does not depend on the thread count.
/// </summary>
public sealed unsafe class Trainer
{
    private readonly ParameterGroup[] _groups;
    private readonly ILearningRateSchedule _schedule;
    private readonly Xoshiro _rng;
    private readonly SequenceWorkspace _ws;
    private readonly AddingProblem? _adding;
    private readonly CopyMemory? _copy;
    private readonly CharCorpus? _corpus;
    private readonly SequenceDataset? _train, _validation;
    private readonly int _steps, _inputSize, _outputs, _hout;
    // Buffers, sized once: input (T, B, I), output (T, B, H), dOutput, head outputs (rows, outputs), targets.
    private readonly float[] _x, _y, _dy, _last, _dLast, _pred, _dPred, _targetF, _h, _c;
    private readonly int[] _targets;
    private readonly int[] _cursors;
    private readonly float[] _rowMask;
    private readonly float[] _outMask;          // char-LM output dropout: (B, H), one mask per stream for this step's chunk
    private readonly Xoshiro _dropRng = new(0);
    // Sequence task: the sequences of this batch (B), their lengths (B), and the training set's order in two epochs
    // (slot = epoch & 1; a batch spans at most the end of one epoch and the start of the next, or more when B > N).
    private readonly int[] _batchIndex = [], _lengths = [];
    private readonly int[][] _order = [[], []];
    private readonly long[] _orderEpoch = [-1, -1];
    private readonly Xoshiro _orderRng = new(0);
    private readonly Shard[] _shards = [];      // data-parallel shards (Config.Shards > 1)
    private GCHandle _self;

    /// <summary>One shard's rows of the batch and everything its forward and backward write.</summary>
    private sealed class Shard
    {
        public required SequenceWorkspace Workspace;
        public required Arena RnnGradients, HeadGradients;
        public required float[] X, Y, Dy, Last, DLast, Pred, DPred, TargetF, H, C;
        public required int[] Targets;
        public double Loss;
    }

    /// <summary>Creates a trainer for a built-in task; <paramref name="corpus"/> is required for the character LM.</summary>
    /// <exception cref="ArgumentException">Invalid config, no corpus for the character LM, or the sequence task (which takes a <see cref="SequenceDataset"/>).</exception>
    public Trainer(TrainingConfig config, CharCorpus? corpus = null, KernelSet? kernels = null)
        : this(config, corpus, null, null, kernels)
    {
    }

    /// <summary>
    /// Creates a trainer for your own sequences (<see cref="TaskKind.Sequence"/>): each step trains on B sequences of
    /// <paramref name="train"/>, taken in an order shuffled at every epoch from (seed, epoch) alone; <see cref="Evaluate"/>
    /// scores the whole <paramref name="validation"/> set (or the training set when there is none). Make both with
    /// <see cref="SequenceDataset.Split"/>, or pass a validation set of your own of the same kind and shape.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid config, a task other than <see cref="TaskKind.Sequence"/>, a validation set of another kind or shape, or sizes above <see cref="RecurrentOptions.MemoryBudget"/>.</exception>
    public Trainer(TrainingConfig config, SequenceDataset train, SequenceDataset? validation = null, KernelSet? kernels = null)
        : this(config, null, train ?? throw new ArgumentNullException(nameof(train)), validation, kernels)
    {
    }

    private Trainer(TrainingConfig config, CharCorpus? corpus, SequenceDataset? train, SequenceDataset? validation, KernelSet? kernels)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int B = config.Batch;
        if (train is not null && config.Task != TaskKind.Sequence)
            throw new ArgumentException($"a sequence dataset is for the sequence task; this config's task is {config.TaskName}.", nameof(train));
        switch (config.Task)
        {
            case TaskKind.Sequence:
                _train = train ?? throw new ArgumentException("the sequence task needs a SequenceDataset: use the constructor that takes one.", nameof(train));
                if (validation is not null && (validation.Kind != train.Kind || validation.PerStep != train.PerStep || validation.Steps != train.Steps
                        || validation.InputSize != train.InputSize || validation.Outputs != train.Outputs))
                    throw new ArgumentException($"the validation set ({validation.Describe()}) does not match the training set ({train.Describe()}).", nameof(validation));
                _validation = validation;
                (_steps, _inputSize, _outputs) = (train.Steps, train.InputSize, train.Outputs);
                CheckSequenceBudget(config, train);
                break;
            case TaskKind.Adding:
                _adding = new AddingProblem(config.SeqLen);
                (_steps, _inputSize, _outputs) = (config.SeqLen, _adding.InputSize, 1);
                break;
            case TaskKind.Copy:
                _copy = new CopyMemory(config.SeqLen);
                (_steps, _inputSize, _outputs) = (_copy.SeqLen, _copy.InputSize, _copy.Classes);
                break;
            default:
                if (validation is not null) throw new ArgumentException("a validation dataset is for the sequence task.", nameof(validation));
                _corpus = corpus ?? throw new ArgumentException("the character LM needs a text corpus.", nameof(corpus));
                (_steps, _inputSize, _outputs) = (config.SeqLen, corpus.Vocabulary.Length, corpus.Vocabulary.Length);
                if (corpus.Train.Length < (long)B * (config.SeqLen + 1))
                    throw new ArgumentException($"the training text ({corpus.Train.Length} characters) is too short for {B} streams of {config.SeqLen + 1}.", nameof(corpus));
                break;
        }
        var options = new RecurrentOptions(config.Cell, _inputSize, config.Hidden, config.Layers);
        Network = new RecurrentNetwork(options, config.Seed, kernels);
        _hout = options.OutputHidden;
        Head = new Linear(_hout, _outputs, config.Seed ^ 0x9E3779B97F4A7C15UL, Network.Kernels);
        _groups = [new ParameterGroup("rnn.", Network.Parameters, Network.Gradients), new ParameterGroup("head.", Head.Parameters, Head.Gradients)];
        Optimizer = CreateOptimizer(config, _groups, Network.Kernels);
        _schedule = CreateSchedule(config);
        _rng = new Xoshiro(config.Seed * 0xD1B54A32D192ED03UL + 1);
        _ws = Network.CreateWorkspace(_steps, B);
        int rows = _steps * B;
        _x = new float[rows * _inputSize];
        _y = new float[rows * _hout];
        _dy = new float[rows * _hout];
        _last = new float[B * _hout];
        _dLast = new float[B * _hout];
        bool perSequence = config.Task == TaskKind.Adding || (_train is { PerStep: false });
        int predRows = perSequence ? B : rows;
        _pred = new float[predRows * _outputs];
        _dPred = new float[predRows * _outputs];
        _targetF = new float[_train is { Kind: SequenceTargetKind.Regression } ? predRows * _outputs : B];
        _targets = new int[rows];
        _rowMask = _train is { PerStep: true, HasLengths: true } || _validation is { PerStep: true, HasLengths: true } ? new float[rows] : [];
        if (_train is not null)
        {
            _batchIndex = new int[B];
            _lengths = new int[B];
            _order = [new int[_train.Count], new int[_train.Count]];
        }
        _outMask = new float[config.OutputDropout > 0 ? B * _hout : 0];
        _h = new float[config.Layers * B * _hout];
        _c = new float[config.Cell == CellType.Lstm ? config.Layers * B * config.Hidden : 0];
        _cursors = new int[B];
        if (_corpus is not null) ShuffleStreams();
        if (config.Shards > 1)
        {
            int bs = B / config.Shards, srows = _steps * bs;
            _shards = new Shard[config.Shards];
            for (int k = 0; k < _shards.Length; k++)
                _shards[k] = new Shard
                {
                    Workspace = Network.CreateWorkspace(_steps, bs), RnnGradients = Network.CreateGradients(), HeadGradients = Head.CreateGradients(),
                    X = new float[srows * _inputSize], Y = new float[srows * _hout], Dy = new float[srows * _hout], Last = new float[bs * _hout],
                    DLast = new float[bs * _hout], Pred = new float[(config.Task == TaskKind.Adding ? bs : srows) * _outputs],
                    DPred = new float[(config.Task == TaskKind.Adding ? bs : srows) * _outputs], TargetF = new float[bs],
                    H = new float[config.Layers * bs * _hout], C = new float[_c.Length / config.Shards], Targets = new int[srows],
                };
            _self = GCHandle.Alloc(this, GCHandleType.Weak);
        }
    }

    /// <summary>Frees the handle the parallel shards use to find this trainer.</summary>
    ~Trainer()
    {
        if (_self.IsAllocated) _self.Free();
    }

    /// <summary>The run's definition.</summary>
    public TrainingConfig Config { get; }
    /// <summary>The recurrent network.</summary>
    public RecurrentNetwork Network { get; }
    /// <summary>The output layer y_t = W_out h_t + b_out.</summary>
    public Linear Head { get; }
    /// <summary>The optimizer.</summary>
    public Optimizer Optimizer { get; }
    /// <summary>Steps taken.</summary>
    public int StepCount { get; private set; }
    /// <summary>The corpus of a character LM, else null.</summary>
    public CharCorpus? Corpus => _corpus;
    /// <summary>Parameter groups (rnn., head.) for clipping and checks.</summary>
    public IReadOnlyList<ParameterGroup> Groups => _groups;

    private static Optimizer CreateOptimizer(TrainingConfig c, ParameterGroup[] groups, KernelSet k) => c.Optimizer switch
    {
        "sgd" => new Sgd(groups, k, c.LearningRate, c.Momentum, 0f, c.WeightDecay, nesterov: false),
        "adagrad" => new Adagrad(groups, k, c.LearningRate, weightDecay: c.WeightDecay),
        "rmsprop" => new RmsProp(groups, k, c.LearningRate, weightDecay: c.WeightDecay, momentum: c.Momentum),
        "adamw" => new AdamW(groups, k, c.LearningRate, weightDecay: c.WeightDecay == 0 ? 1e-2f : c.WeightDecay),
        _ => new Adam(groups, k, c.LearningRate, weightDecay: c.WeightDecay),
    };

    private static ILearningRateSchedule CreateSchedule(TrainingConfig c)
    {
        ILearningRateSchedule s = c.Schedule switch
        {
            "step" => new StepSchedule(c.LearningRate, Math.Max(1, c.TotalSteps / 3), 0.1f),
            "cosine" => new CosineSchedule(c.LearningRate, c.TotalSteps),
            _ => new ConstantSchedule(c.LearningRate),
        };
        return c.WarmupSteps > 0 ? new WarmupSchedule(c.WarmupSteps, s) : s;
    }

    /// <summary>One training step: batch, forward, loss, BPTT, clipping, optimizer.</summary>
    /// <exception cref="TrainingDivergedException">The loss or a gradient is not finite (parameters are left unchanged).</exception>
    public StepReport Step()
    {
        Network.ZeroGradients();
        Head.ZeroGradients();
        int step = StepCount + 1;
        SetDropout(step);
        double loss = ForwardBackward(_rng, training: true, dHidden: default);
        if (!double.IsFinite(loss))
            throw new TrainingDivergedException($"step {step}: the loss is {loss.ToString(CultureInfo.InvariantCulture)}.");
        double norm = GradientClipping.GlobalNorm(_groups, Network.Kernels);
        if (!double.IsFinite(norm))
        {
            var bad = NonFiniteCheck.FindGradient(_groups, Network.Kernels);
            throw new TrainingDivergedException($"step {step}: gradient of {bad?.Name ?? "?"} [{bad?.Index}] is {bad?.Value.ToString(CultureInfo.InvariantCulture) ?? "not finite"}.");
        }
        if (Config.Clip > 0)
        {
            if (Config.ClipByValue) GradientClipping.ClipByValue(_groups, Config.Clip, Network.Kernels);
            else GradientClipping.ClipByGlobalNorm(_groups, Config.Clip, Network.Kernels);
        }
        Optimizer.Step(_schedule);
        Network.ParametersChanged();
        Head.ParametersChanged();
        StepCount = step;
        return new StepReport(step, loss, norm, Optimizer.LearningRate);
    }

    /// <summary>A mask seed for (step, stream of masks): a SplitMix64 finalizer of the run's seed and both, so masks never depend on what ran before.</summary>
    private ulong MaskSeed(int step, int which) =>
        Mix(Config.Seed ^ ((ulong)(uint)step << 20) ^ ((ulong)(uint)which * 0x9E3779B97F4A7C15UL) ^ 0xD0_0D_D0_0DUL);

    /// <summary>The SplitMix64 finalizer.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Dropout for training step <paramref name="step"/> (0: off, as every evaluation runs).</summary>
    private void SetDropout(int step)
    {
        float p = step > 0 ? Config.Dropout : 0f;
        if (Config.Dropout > 0 && Config.Layers > 1)
        {
            _ws.SetDropout(p, MaskSeed(step, 0));
            for (int k = 0; k < _shards.Length; k++) _shards[k].Workspace.SetDropout(p, MaskSeed(step, k + 1));
        }
        if (_outMask.Length > 0 && step > 0)
        {
            float keep = 1f - Config.OutputDropout, scale = 1f / keep;
            var rng = _dropRng;
            rng.Reseed(MaskSeed(step, -1));
            for (int i = 0; i < _outMask.Length; i++) _outMask[i] = rng.NextDouble() < keep ? scale : 0f;
        }
    }

    /// <summary>Multiplies rows [b0, b0 + n) of every step of y (T, n, H) by the output mask's rows b0.. (the same at every step).</summary>
    private void ApplyOutputMask(Span<float> y, int T, int b0, int n)
    {
        int H = _hout;
        for (int t = 0; t < T; t++)
            for (int b = 0; b < n; b++)
            {
                var row = y.Slice((t * n + b) * H, H);
                var m = _outMask.AsSpan((b0 + b) * H, H);
                for (int j = 0; j < H; j++) row[j] *= m[j];
            }
    }

    /// <summary>
    /// Draws a batch, runs forward and the loss, and backward into the gradients (which it does not zero).
    /// dHidden (T, B, H), if given, receives dL/dh_t of the top layer.
    /// </summary>
    private double ForwardBackward(Xoshiro rng, bool training, Span<float> dHidden)
    {
        if (training && dHidden.IsEmpty && _shards.Length > 1) return ForwardBackwardSharded(rng);
        var k = Network.Kernels;
        int B = Config.Batch, T = _steps, H = _hout, rows = T * B;
        switch (Config.Task)
        {
            case TaskKind.Adding:
            {
                _adding!.Sample(rng, B, _x, _targetF);
                Network.Forward(_x, T, B, [], [], _y, [], [], _ws);
                _y.AsSpan((T - 1) * B * H, B * H).CopyTo(_last);
                Head.Forward(_last, B, _pred);
                double loss = Losses.MeanSquaredError(k, _pred, _targetF, B, 1, _rowMask, _dPred, mean: true);
                if (!training && dHidden.IsEmpty) return loss;
                Head.Backward(_last, _dPred, B, _dLast);
                Array.Clear(_dy, 0, (T - 1) * B * H);
                _dLast.CopyTo(_dy.AsSpan((T - 1) * B * H));
                Network.Backward(_ws, _dy, [], [], [], [], [], dHidden);
                return loss;
            }
            case TaskKind.Copy:
            {
                _copy!.Sample(rng, B, _x, _targets);
                Network.Forward(_x, T, B, [], [], _y, [], [], _ws);
                Head.Forward(_y, rows, _pred);
                double loss = Losses.SoftmaxCrossEntropy(k, _pred, _targets, _outputs, _rowMask, _dPred, mean: true);
                if (!training && dHidden.IsEmpty) return loss;
                Head.Backward(_y, _dPred, rows, _dy);
                Network.Backward(_ws, _dy, [], [], [], [], [], dHidden);
                return loss;
            }
            case TaskKind.Sequence:
            {
                // A training step's batch comes from the epoch order; the gradient-flow picture uses a fixed batch.
                if (dHidden.IsEmpty) TrainingBatch(StepCount + 1);
                else for (int b = 0; b < B; b++) _batchIndex[b] = b % _train!.Count;
                long unusedCorrect = 0;
                return SequenceLoss(_train!, B, mean: true, backward: true, dHidden, out _, ref unusedCorrect);
            }
            default:
            {
                NextChunk(_corpus!.Train, rng);
                Network.Forward(_x, T, B, _h, _c, _y, _h, _c, _ws);
                bool drop = training && _outMask.Length > 0;
                if (drop) ApplyOutputMask(_y, T, 0, B);
                Head.Forward(_y, rows, _pred);
                double loss = Losses.SoftmaxCrossEntropy(k, _pred, _targets, _outputs, _rowMask, _dPred, mean: true);
                if (!training && dHidden.IsEmpty) return loss;
                Head.Backward(_y, _dPred, rows, _dy);
                if (drop) ApplyOutputMask(_dy, T, 0, B);
                Network.Backward(_ws, _dy, [], [], [], [], [], dHidden);
                return loss;
            }
        }
    }

    /// <summary>Draws the batch as the single pass does, then runs the shards (in parallel when threads allow) and sums their gradients in shard order.</summary>
    private double ForwardBackwardSharded(Xoshiro rng)
    {
        switch (Config.Task)
        {
            case TaskKind.Adding: _adding!.Sample(rng, Config.Batch, _x, _targetF); break;
            case TaskKind.Copy: _copy!.Sample(rng, Config.Batch, _x, _targets); break;
            default: NextChunk(_corpus!.Train, rng); break;
        }
        int threads = Math.Min(_shards.Length, Parallelism.MaxThreads);
        if (threads < 2 || !Parallelism.TryRun(&RunShards, (void*)GCHandle.ToIntPtr(_self), threads))
            for (int s = 0; s < _shards.Length; s++) RunShard(s);
        double loss = 0;
        foreach (var sh in _shards)                     // fixed order: shard 0, 1, ...
        {
            Network.Gradients.Add(sh.RnnGradients);
            Head.Gradients.Add(sh.HeadGradients);
            loss += sh.Loss;
        }
        return loss / _shards.Length;                   // equal shards: the mean over the batch
    }

    private static void RunShards(void* self, int part, int parts)
    {
        var trainer = (Trainer)GCHandle.FromIntPtr((IntPtr)self).Target!;
        for (int s = part; s < trainer._shards.Length; s += parts) trainer.RunShard(s);
    }

    /// <summary>
    /// Shard s: rows b in [s*Bs, (s+1)*Bs) of every step (and of the carried state), forward, the loss as a mean over the
    /// shard with its gradient divided by the shard count (so the sum over shards is the gradient of the batch mean),
    /// backward into the shard's arenas. Nested GEMMs run on the shard's thread.
    /// </summary>
    private void RunShard(int s)
    {
        var sh = _shards[s];
        var k = Network.Kernels;
        int B = Config.Batch, S = _shards.Length, bs = B / S, T = _steps, H = _hout, V = _inputSize, L = Config.Layers, rows = T * bs;
        float scale = 1f / S;
        sh.RnnGradients.Clear();
        sh.HeadGradients.Clear();
        for (int t = 0; t < T; t++)
        {
            _x.AsSpan((t * B + s * bs) * V, bs * V).CopyTo(sh.X.AsSpan(t * bs * V));
            _targets.AsSpan(t * B + s * bs, bs).CopyTo(sh.Targets.AsSpan(t * bs));
        }
        switch (Config.Task)
        {
            case TaskKind.Adding:
            {
                _targetF.AsSpan(s * bs, bs).CopyTo(sh.TargetF);
                Network.Forward(sh.X, T, bs, [], [], sh.Y, [], [], sh.Workspace);
                sh.Y.AsSpan((T - 1) * bs * H, bs * H).CopyTo(sh.Last);
                Head.Forward(sh.Last, bs, sh.Pred);
                sh.Loss = Losses.MeanSquaredError(k, sh.Pred, sh.TargetF, bs, 1, _rowMask, sh.DPred, mean: true);
                foreach (ref float d in sh.DPred.AsSpan()) d *= scale;
                Head.Backward(sh.Last, sh.DPred, bs, sh.DLast, sh.HeadGradients);
                Array.Clear(sh.Dy, 0, (T - 1) * bs * H);
                sh.DLast.CopyTo(sh.Dy.AsSpan((T - 1) * bs * H));
                break;
            }
            case TaskKind.Copy:
            {
                Network.Forward(sh.X, T, bs, [], [], sh.Y, [], [], sh.Workspace);
                Head.Forward(sh.Y, rows, sh.Pred);
                sh.Loss = Losses.SoftmaxCrossEntropy(k, sh.Pred, sh.Targets, _outputs, _rowMask, sh.DPred, mean: true);
                foreach (ref float d in sh.DPred.AsSpan()) d *= scale;
                Head.Backward(sh.Y, sh.DPred, rows, sh.Dy, sh.HeadGradients);
                break;
            }
            default:
            {
                int hc = Config.Hidden, cs = sh.C.Length > 0 ? bs * hc : 0;
                for (int l = 0; l < L; l++)   // the carried state of this shard's streams: (L, Bs, H) out of (L, B, H)
                {
                    _h.AsSpan((l * B + s * bs) * H, bs * H).CopyTo(sh.H.AsSpan(l * bs * H));
                    if (cs > 0) _c.AsSpan((l * B + s * bs) * hc, cs).CopyTo(sh.C.AsSpan(l * cs));
                }
                Network.Forward(sh.X, T, bs, sh.H, sh.C, sh.Y, sh.H, sh.C, sh.Workspace);
                for (int l = 0; l < L; l++)
                {
                    sh.H.AsSpan(l * bs * H, bs * H).CopyTo(_h.AsSpan((l * B + s * bs) * H));
                    if (cs > 0) sh.C.AsSpan(l * cs, cs).CopyTo(_c.AsSpan((l * B + s * bs) * hc));
                }
                if (_outMask.Length > 0) ApplyOutputMask(sh.Y, T, s * bs, bs);
                Head.Forward(sh.Y, rows, sh.Pred);
                sh.Loss = Losses.SoftmaxCrossEntropy(k, sh.Pred, sh.Targets, _outputs, _rowMask, sh.DPred, mean: true);
                foreach (ref float d in sh.DPred.AsSpan()) d *= scale;
                Head.Backward(sh.Y, sh.DPred, rows, sh.Dy, sh.HeadGradients);
                if (_outMask.Length > 0) ApplyOutputMask(sh.Dy, T, s * bs, bs);
                break;
            }
        }
        Network.Backward(sh.Workspace, sh.Dy, [], [], [], [], [], default, sh.RnnGradients);
    }

    /// <summary>Fills the one-hot input and next-character targets of every stream's next chunk; wraps and reshuffles at the end.</summary>
    private void NextChunk(int[] text, Xoshiro rng)
    {
        int B = Config.Batch, T = _steps, V = _inputSize;
        if (_cursors[0] + T + 1 > StreamEnd(0, text.Length)) ShuffleStreams(rng);
        Array.Clear(_x);
        for (int b = 0; b < B; b++)
        {
            int start = _cursors[b];
            for (int t = 0; t < T; t++)
            {
                _x[(t * B + b) * V + text[start + t]] = 1f;
                _targets[t * B + b] = text[start + t + 1];
            }
            _cursors[b] = start + T;
        }
    }

    private int StreamEnd(int b, int length) => (b + 1) * (length / Config.Batch);

    /// <summary>Starts every stream of a new epoch at a random shift within its slice of the text, with zero state.</summary>
    private void ShuffleStreams(Xoshiro? rng = null)
    {
        rng ??= _rng;
        int length = _corpus!.Train.Length, slice = length / Config.Batch;
        int room = Math.Max(1, slice - _steps - 1);
        int shift = rng.NextInt(Math.Min(room, _steps));
        for (int b = 0; b < Config.Batch; b++) _cursors[b] = b * slice + shift;
        Array.Clear(_h);
        Array.Clear(_c);
    }

    // ---------------- the sequence task ----------------

    /// <summary>Refuses a dataset whose batch buffers and head would exceed <see cref="RecurrentOptions.MemoryBudget"/>, before anything is allocated.</summary>
    private static void CheckSequenceBudget(TrainingConfig c, SequenceDataset d)
    {
        decimal rows = (decimal)d.Steps * c.Batch, h = c.Hidden, o = d.Outputs;
        // x (T, B, I); y and dy (T, B, H); predictions, their gradient and targets (rows, O); head weights, gradients and two packed copies.
        decimal bytes = 4m * (rows * d.InputSize + 2m * rows * h + 3m * rows * o + 4m * (h + 1) * o);
        if (bytes > RecurrentOptions.MemoryBudget)
            throw new ArgumentOutOfRangeException(nameof(d), $"training on {d.Describe()} with batch {c.Batch} and hidden {c.Hidden} needs about {bytes:N0} bytes of batch buffers and head, "
                + $"above RecurrentOptions.MemoryBudget = {RecurrentOptions.MemoryBudget:N0} bytes; raise the budget to allow it.");
    }

    /// <summary>
    /// The sequences of training step <paramref name="step"/>: positions (step-1)*B .. step*B-1 of the endless list of
    /// epochs, position p being sequence order(p / N)[p % N]; each epoch's order is a permutation drawn from (seed, epoch)
    /// alone, so a resumed run takes exactly the batches of the uninterrupted one.
    /// </summary>
    private void TrainingBatch(int step)
    {
        int B = Config.Batch, N = _train!.Count;
        long p0 = (long)(step - 1) * B;
        for (int b = 0; b < B; b++)
        {
            long p = p0 + b;
            _batchIndex[b] = EpochOrder(p / N)[(int)(p % N)];
        }
    }

    /// <summary>The training sequences step <paramref name="step"/> takes (tests).</summary>
    internal int[] SequencesOfStep(int step)
    {
        TrainingBatch(step);
        return (int[])_batchIndex.Clone();
    }

    private int[] EpochOrder(long epoch)
    {
        int slot = (int)(epoch & 1);
        if (_orderEpoch[slot] != epoch)
        {
            _orderRng.Reseed(Mix(Config.Seed ^ 0x0DE5_0DE5_0DE5_0DE5UL ^ ((ulong)epoch * 0x9E3779B97F4A7C15UL)));
            SequenceDataset.Permutation(_orderRng, _order[slot]);
            _orderEpoch[slot] = epoch;
        }
        return _order[slot];
    }

    /// <summary>
    /// Sequences _batchIndex[0..n) of <paramref name="d"/>: forward (with their lengths), the head on every step (per
    /// step) or on each sequence's last valid step (per sequence), the loss over valid predictions (MSE per value or
    /// cross-entropy per prediction; the mean when <paramref name="mean"/>, else the sum), and when asked backward into
    /// the gradients. <paramref name="predictions"/>: valid predictions scored; <paramref name="correct"/> gains the
    /// classification hits (evaluation only).
    /// </summary>
    private double SequenceLoss(SequenceDataset d, int n, bool mean, bool backward, Span<float> dHidden, out long predictions, ref long correct)
    {
        var k = Network.Kernels;
        int T = _steps, H = _hout, I = _inputSize, O = _outputs, rows = T * n;
        bool cls = d.Kind == SequenceTargetKind.Classification, perStep = d.PerStep, lens = d.HasLengths;
        int predRows = perStep ? rows : n;
        var x = _x.AsSpan(0, rows * I);                       // (T, n, I)
        var y = _y.AsSpan(0, rows * H);                       // (T, n, H)
        var pred = _pred.AsSpan(0, predRows * O);             // (predRows, O)
        var dPred = _dPred.AsSpan(0, predRows * O);
        Span<int> lengths = lens ? _lengths.AsSpan(0, n) : default;              // (n)
        Span<float> values = cls ? default : _targetF.AsSpan(0, predRows * O);   // (predRows, O)
        Span<int> classes = cls ? _targets.AsSpan(0, predRows) : default;        // (predRows)
        d.CopyBatch(_batchIndex.AsSpan(0, n), x, lengths, values, classes);
        Network.Forward(x, T, n, [], [], y, [], [], _ws, lengths);

        ReadOnlySpan<float> mask = default;                   // (T, n): 1 where t < length
        Span<float> headIn = y;
        predictions = predRows;
        if (perStep && lens)
        {
            var m = _rowMask.AsSpan(0, rows);
            predictions = 0;
            for (int t = 0; t < T; t++)
                for (int b = 0; b < n; b++)
                {
                    bool valid = t < lengths[b];
                    m[t * n + b] = valid ? 1f : 0f;
                    if (valid) predictions++;
                }
            mask = m;
        }
        else if (!perStep)
        {
            headIn = _last.AsSpan(0, n * H);                  // (n, H): each sequence's output at its last valid step
            for (int b = 0; b < n; b++)
                y.Slice(((LastStep(lengths, b, T)) * n + b) * H, H).CopyTo(headIn.Slice(b * H, H));
        }
        Head.Forward(headIn, predRows, pred);
        double loss = cls ? Losses.SoftmaxCrossEntropy(k, pred, classes, O, mask, dPred, mean)
            : Losses.MeanSquaredError(k, pred, values, predRows, O, mask, dPred, mean);
        if (cls && !backward)
            for (int r = 0; r < predRows; r++)
            {
                if (!mask.IsEmpty && mask[r] == 0f) continue;
                var row = pred.Slice(r * O, O);
                int best = 0;
                for (int j = 1; j < O; j++) if (row[j] > row[best]) best = j;
                if (best == classes[r]) correct++;
            }
        if (!backward) return loss;
        var dy = _dy.AsSpan(0, rows * H);                     // (T, n, H)
        if (perStep) Head.Backward(y, dPred, rows, dy);
        else
        {
            var dLast = _dLast.AsSpan(0, n * H);
            Head.Backward(headIn, dPred, n, dLast);
            dy.Clear();
            for (int b = 0; b < n; b++)
                dLast.Slice(b * H, H).CopyTo(dy.Slice((LastStep(lengths, b, T) * n + b) * H, H));
        }
        Network.Backward(_ws, dy, [], [], [], [], [], dHidden);
        return loss;
    }

    private static int LastStep(ReadOnlySpan<int> lengths, int b, int T) => lengths.IsEmpty ? T - 1 : lengths[b] - 1;

    /// <summary>
    /// The sequence task's held-out figures: the loss over every valid prediction of the whole validation set (or of the
    /// training set when there is none): MSE per target value, or cross-entropy per prediction; and for classification
    /// the fraction of predictions whose largest logit is the target (NaN for regression). No dropout; parameters,
    /// gradients and the training order are left as they were.
    /// </summary>
    /// <exception cref="InvalidOperationException">Not the sequence task.</exception>
    public SequenceEvaluation EvaluateSequences()
    {
        if (_train is null) throw new InvalidOperationException($"EvaluateSequences is for the sequence task; this trainer's task is {Config.TaskName}.");
        SetDropout(0);
        var d = _validation ?? _train;
        int B = Config.Batch;
        double sum = 0;
        long predictions = 0, correct = 0;
        for (int s = 0; s < d.Count; s += B)
        {
            int n = Math.Min(B, d.Count - s);
            for (int b = 0; b < n; b++) _batchIndex[b] = s + b;
            sum += SequenceLoss(d, n, mean: false, backward: false, default, out long p, ref correct);
            predictions += p;
        }
        bool cls = d.Kind == SequenceTargetKind.Classification;
        return new SequenceEvaluation(sum / (cls ? predictions : predictions * (double)_outputs), cls ? (double)correct / predictions : double.NaN,
            predictions, _validation is not null);
    }

    /// <summary>The training set of the sequence task, else null.</summary>
    public SequenceDataset? TrainingData => _train;
    /// <summary>The validation set of the sequence task, else null.</summary>
    public SequenceDataset? ValidationData => _validation;

    /// <summary>
    /// The held-out loss: adding, test MSE on <paramref name="batches"/> fresh batches of a fixed test seed; copy, the
    /// test cross-entropy per step; char-LM, validation nats per character over the validation text (or its first
    /// <paramref name="batches"/> chunks); sequences, the loss over the whole validation set (<see cref="EvaluateSequences"/>;
    /// <paramref name="batches"/> is not used). Does not change parameters, gradients or the training stream.
    /// </summary>
    public double Evaluate(int batches = 32)
    {
        if (Config.Task == TaskKind.Sequence) return EvaluateSequences().Loss;
        SetDropout(0);
        if (Config.Task == TaskKind.CharLm) return EvaluateText(_corpus!.Validation, batches);
        var rng = new Xoshiro(Config.Seed ^ 0x7E57_7E57_7E57_7E57UL);
        double sum = 0;
        for (int i = 0; i < batches; i++) sum += ForwardBackward(rng, training: false, dHidden: default);
        return sum / batches;
    }

    private double EvaluateText(int[] text, int maxChunks) =>
        text.Length / Config.Batch < 2 ? double.NaN
        : CharLmEvaluation.ValidationLoss(Network, Head, text, Config.Batch, _steps, maxChunks).NatsPerChar;

    /// <summary>
    /// The vanishing-gradient picture: for a fixed batch, the L2 norm of dL/dh_t (over the batch and the hidden units)
    /// at every step t. Leaves parameters unchanged; gradients are zeroed afterwards.
    /// </summary>
    public double[] GradientFlow()
    {
        int B = Config.Batch, T = _steps, H = _hout;
        SetDropout(0);
        var dHidden = new float[T * B * H];
        var rng = new Xoshiro(Config.Seed ^ 0x6AD1_E47F_1010UL);
        float[] h = (float[])_h.Clone(), c = (float[])_c.Clone();
        int[] cursors = (int[])_cursors.Clone();
        ForwardBackward(rng, training: false, dHidden);
        h.CopyTo(_h); c.CopyTo(_c); cursors.CopyTo(_cursors);
        Network.ZeroGradients();
        Head.ZeroGradients();
        var norms = new double[T];
        for (int t = 0; t < T; t++)
        {
            double s = 0;
            foreach (float v in dHidden.AsSpan(t * B * H, B * H)) s += (double)v * v;
            norms[t] = Math.Sqrt(s);
        }
        return norms;
    }

    // ---------------- checkpoints ----------------

    /// <summary>
    /// Writes a checkpoint atomically (temporary file, flush, rename): parameters under PyTorch names (rnn.*, head.*),
    /// optimizer state (optim.*), the carried state of a character LM (train.h, train.c), and in the metadata the
    /// config, step, optimizer step, RNG state, stream cursors and vocabulary.
    /// </summary>
    public void SaveCheckpoint(string path)
    {
        var tensors = new List<(string, int[], ReadOnlyMemory<float>)>();
        tensors.AddRange(StateDict.Tensors(Network, "rnn."));
        foreach (var e in Head.Parameters.Entries) tensors.Add(("head." + e.Name, e.Shape, Head.Parameters.Data.AsMemory(e.Offset, e.Length)));
        foreach (var (name, arena) in Optimizer.StateArenas)
            foreach (var e in arena.Entries) tensors.Add(("optim." + name + e.Name, e.Shape, arena.Data.AsMemory(e.Offset, e.Length)));
        if (_corpus is not null)
        {
            tensors.Add(("train.h", [Config.Layers, Config.Batch, _hout], _h));
            if (_c.Length > 0) tensors.Add(("train.c", [Config.Layers, Config.Batch, Config.Hidden], _c));
        }
        var meta = Config.ToMetadata();
        meta["format"] = "rnnsimd-checkpoint-1";
        meta["step"] = StepCount.ToString(CultureInfo.InvariantCulture);
        meta["optimizer_step"] = Optimizer.StepCount.ToString(CultureInfo.InvariantCulture);
        meta["rng"] = string.Join(",", _rng.GetState().Select(v => v.ToString("x16", CultureInfo.InvariantCulture)));
        meta["kernels"] = Network.Kernels.Name;
        if (_corpus is not null)
        {
            meta["cursors"] = string.Join(",", _cursors.Select(v => v.ToString(CultureInfo.InvariantCulture)));
            meta["vocabulary"] = string.Join(",", _corpus.Vocabulary.Select(v => v.ToString(CultureInfo.InvariantCulture)));
            meta["validation_fraction"] = ((double)_corpus.Validation.Length / (_corpus.Train.Length + _corpus.Validation.Length)).ToString("R", CultureInfo.InvariantCulture);
        }
        if (_train is not null)
        {
            DescribeData(meta, "data", _train);
            if (_validation is not null) DescribeData(meta, "validation", _validation);
            else meta["validation_count"] = "0";
        }
        SafeTensorsWriter.Write(path, tensors, meta);
    }

    /// <summary>What a checkpoint records of a sequence dataset: N, T, I, O, kind, targets per step or per sequence, lengths, content hash.</summary>
    private static IEnumerable<(string Key, string Value)> DataKeys(string prefix, SequenceDataset d) =>
    [
        ($"{prefix}_count", d.Count.ToString(CultureInfo.InvariantCulture)),
        ($"{prefix}_steps", d.Steps.ToString(CultureInfo.InvariantCulture)),
        ($"{prefix}_inputs", d.InputSize.ToString(CultureInfo.InvariantCulture)),
        ($"{prefix}_outputs", d.Outputs.ToString(CultureInfo.InvariantCulture)),
        ($"{prefix}_kind", d.KindName),
        ($"{prefix}_targets", d.PerStep ? "per_step" : "per_sequence"),
        ($"{prefix}_lengths", d.HasLengths ? "true" : "false"),
        ($"{prefix}_hash", d.ContentHash),
    ];

    private static void DescribeData(Dictionary<string, string> meta, string prefix, SequenceDataset d)
    {
        foreach (var (key, value) in DataKeys(prefix, d)) meta[key] = value;
    }

    /// <summary>Refuses a dataset other than the one a checkpoint was trained on, naming the first key that differs.</summary>
    private static void CheckData(string path, IReadOnlyDictionary<string, string> m, string prefix, string what, SequenceDataset? d)
    {
        const string Hint = "resume with the same data (and the same validation split)";
        string saved = CheckpointMetadata.Get(path, m, $"{prefix}_count");
        if (d is null)
        {
            if (saved != "0")
                throw new InvalidDataException($"{path}: the checkpoint was trained with a {what} of {CheckpointMetadata.Shown(saved)} sequences, and none is given; {Hint}.");
            return;
        }
        foreach (var (key, value) in DataKeys(prefix, d))
        {
            string v = CheckpointMetadata.Get(path, m, key);
            if (v != value)
                throw new InvalidDataException(key.EndsWith("_hash", StringComparison.Ordinal)
                    ? $"{path}: the {what} has the checkpoint's shape but other content (checkpoint metadata '{key}' = '{CheckpointMetadata.Shown(v)}', the data's is '{value}'); {Hint}."
                    : $"{path}: the {what} differs from the checkpoint's: checkpoint metadata '{key}' = '{CheckpointMetadata.Shown(v)}', the data's is '{value}' ({d.Describe()}); {Hint}.");
        }
    }

    /// <summary>
    /// Restores a trainer from a checkpoint. For a character LM, pass the same corpus (its vocabulary is checked
    /// against the checkpoint's).
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a checkpoint of this kind, or does not match the corpus.</exception>
    public static Trainer Resume(string path, CharCorpus? corpus = null, KernelSet? kernels = null) => Resume(path, corpus, null, null, kernels);

    /// <summary>
    /// Restores a sequence-task trainer from a checkpoint. Pass the training and validation sets it was trained on:
    /// their shapes, kinds and content hashes are checked against the checkpoint's before anything is built.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a sequence-task checkpoint, or the data differs from the checkpoint's.</exception>
    public static Trainer Resume(string path, SequenceDataset train, SequenceDataset? validation = null, KernelSet? kernels = null) =>
        Resume(path, null, train ?? throw new ArgumentNullException(nameof(train)), validation, kernels);

    private static Trainer Resume(string path, CharCorpus? corpus, SequenceDataset? train, SequenceDataset? validation, KernelSet? kernels)
    {
        var file = SafeTensorsFile.Read(path);
        var m = file.Metadata;
        if (!m.TryGetValue("format", out var format) || format != "rnnsimd-checkpoint-1")
            throw new InvalidDataException($"{path} is not an rnnsimd checkpoint (metadata 'format' is missing or unknown).");
        var config = CheckpointMetadata.Config(path, m);
        CheckpointMetadata.CheckNetworkTensors(path, config, file.Tensors);
        // Every metadata value is read and checked before the trainer (and its buffers) exist.
        int step = CheckpointMetadata.NonNegativeInt(path, m, "step");
        int optimizerStep = CheckpointMetadata.NonNegativeInt(path, m, "optimizer_step");
        ulong[] rng = CheckpointMetadata.RngState(path, m);
        int[]? cursors = null;
        if (config.Task == TaskKind.CharLm)
        {
            if (corpus is null) throw new InvalidDataException($"{path}: resuming a character LM needs its text.");
            int[] saved = CheckpointMetadata.Vocabulary(path, m);
            if (!saved.AsSpan().SequenceEqual(corpus.Vocabulary))
                throw new InvalidDataException($"{path}: the text's vocabulary ({corpus.Vocabulary.Length} characters) differs from the checkpoint's ({saved.Length}).");
            cursors = CheckpointMetadata.Cursors(path, m, config.Batch, corpus.Train.Length);
        }
        if (config.Task == TaskKind.Sequence)
        {
            if (train is null) throw new InvalidDataException($"{path}: resuming the sequence task needs its training data.");
            CheckData(path, m, "data", "training data", train);
            CheckData(path, m, "validation", "validation set", validation);
        }
        else if (train is not null)
            throw new InvalidDataException($"{path}: the checkpoint is of task {config.TaskName}, not seq; a sequence dataset cannot resume it.");
        Trainer trainer;
        try { trainer = new Trainer(config, corpus, train, validation, kernels); }
        catch (ArgumentException e) when (e.ParamName != nameof(kernels))
        {
            throw new InvalidDataException($"{path}: the checkpoint's config (metadata 'seq_len' = {config.SeqLen}, 'batch' = {config.Batch}, "
                + $"'hidden' = {config.Hidden}, 'layers' = {config.Layers}) cannot be run: {e.Message}", e);
        }
        StateDict.Load(trainer.Network, file, "rnn.");
        foreach (var e in trainer.Head.Parameters.Entries) ReadInto(file, "head." + e.Name, trainer.Head.Parameters.View(e), e);
        trainer.Head.ParametersChanged();
        foreach (var (name, arena) in trainer.Optimizer.StateArenas)
            foreach (var e in arena.Entries) ReadInto(file, "optim." + name + e.Name, arena.View(e), e);
        trainer.Optimizer.StepCount = optimizerStep;
        trainer.StepCount = step;
        trainer._rng.SetState(rng);
        if (cursors is not null)
        {
            cursors.CopyTo(trainer._cursors);
            ReadState(file, path, "train.h", trainer._h, $"({config.Layers}, {config.Batch}, {trainer._hout})");
            if (trainer._c.Length > 0) ReadState(file, path, "train.c", trainer._c, $"({config.Layers}, {config.Batch}, {config.Hidden})");
        }
        return trainer;
    }

    private static void ReadState(SafeTensorsFile file, string path, string name, Span<float> dst, string shape)
    {
        if (!file.TryGetTensor(name, out var t)) throw new InvalidDataException($"{path}: checkpoint lacks '{name}' {shape}.");
        if (t.ElementCount != dst.Length) throw new InvalidDataException($"{path}: checkpoint '{name}' has shape {t.ShapeString}, expected {shape}.");
        if (!t.DType.IsReadableAsFloat()) throw new InvalidDataException($"{path}: checkpoint '{name}' has dtype {t.DType.ToFormatString()}, expected F32, F64, F16 or BF16.");
        file.ReadFloats(name, dst);
    }

    private static void ReadInto(SafeTensorsFile file, string name, Span<float> dst, ArenaEntry e)
    {
        if (!file.TryGetTensor(name, out var t)) throw new InvalidDataException($"checkpoint lacks '{name}' {e.ShapeText}.");
        if (t.ElementCount != dst.Length) throw new InvalidDataException($"checkpoint '{name}' has {t.ElementCount} values, expected {e.ShapeText}.");
        if (!t.DType.IsReadableAsFloat()) throw new InvalidDataException($"checkpoint '{name}' has dtype {t.DType.ToFormatString()}, expected F32, F64, F16 or BF16.");
        file.ReadFloats(name, dst);
    }
}
