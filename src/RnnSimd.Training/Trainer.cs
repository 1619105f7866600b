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
/// from chunk to chunk (stateful truncated BPTT, as char-rnn), the streams' offsets shuffled at every epoch.
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
    private readonly int _steps, _inputSize, _outputs, _hout;
    // Buffers, sized once: input (T, B, I), output (T, B, H), dOutput, head outputs (rows, outputs), targets.
    private readonly float[] _x, _y, _dy, _last, _dLast, _pred, _dPred, _targetF, _h, _c;
    private readonly int[] _targets;
    private readonly int[] _cursors;
    private readonly float[] _rowMask;
    private readonly float[] _outMask;          // char-LM output dropout: (B, H), one mask per stream for this step's chunk
    private readonly Xoshiro _dropRng = new(0);
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

    /// <summary>Creates a trainer; <paramref name="corpus"/> is required for the character LM.</summary>
    /// <exception cref="ArgumentException">Invalid config, or no corpus for the character LM.</exception>
    public Trainer(TrainingConfig config, CharCorpus? corpus = null, KernelSet? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        int B = config.Batch;
        switch (config.Task)
        {
            case TaskKind.Adding:
                _adding = new AddingProblem(config.SeqLen);
                (_steps, _inputSize, _outputs) = (config.SeqLen, _adding.InputSize, 1);
                break;
            case TaskKind.Copy:
                _copy = new CopyMemory(config.SeqLen);
                (_steps, _inputSize, _outputs) = (_copy.SeqLen, _copy.InputSize, _copy.Classes);
                break;
            default:
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
        int predRows = config.Task == TaskKind.Adding ? B : rows;
        _pred = new float[predRows * _outputs];
        _dPred = new float[predRows * _outputs];
        _targetF = new float[B];
        _targets = new int[rows];
        _rowMask = [];
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
    private ulong MaskSeed(int step, int which)
    {
        ulong z = Config.Seed ^ ((ulong)(uint)step << 20) ^ ((ulong)(uint)which * 0x9E3779B97F4A7C15UL) ^ 0xD0_0D_D0_0DUL;
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

    /// <summary>
    /// The held-out loss: adding, test MSE on <paramref name="batches"/> fresh batches of a fixed test seed; copy, the
    /// test cross-entropy per step; char-LM, validation nats per character over the validation text (or its first
    /// <paramref name="batches"/> chunks). Does not change parameters, gradients or the training stream.
    /// </summary>
    public double Evaluate(int batches = 32)
    {
        SetDropout(0);
        if (Config.Task == TaskKind.CharLm) return EvaluateText(_corpus!.Validation, batches);
        var rng = new Xoshiro(Config.Seed ^ 0x7E57_7E57_7E57_7E57UL);
        double sum = 0;
        for (int i = 0; i < batches; i++) sum += ForwardBackward(rng, training: false, dHidden: default);
        return sum / batches;
    }

    private double EvaluateText(int[] text, int maxChunks)
    {
        int B = Config.Batch, T = _steps, V = _inputSize, rows = T * B;
        int slice = text.Length / B;
        if (slice < 2) return double.NaN;
        var h = new float[_h.Length];
        var c = new float[_c.Length];
        double sum = 0;
        long count = 0;
        for (int chunk = 0; chunk < maxChunks && (chunk * T) + 1 < slice; chunk++)
        {
            int len = Math.Min(T, slice - 1 - chunk * T);
            Array.Clear(_x);
            var mask = new float[rows];
            for (int b = 0; b < B; b++)
            {
                int start = b * slice + chunk * T;
                for (int t = 0; t < len; t++)
                {
                    _x[(t * B + b) * V + text[start + t]] = 1f;
                    _targets[t * B + b] = text[start + t + 1];
                    mask[t * B + b] = 1f;
                }
            }
            Network.Forward(_x, T, B, h, c, _y, h, c, _ws);
            Head.Forward(_y, rows, _pred);
            sum += Losses.SoftmaxCrossEntropy(Network.Kernels, _pred, _targets, _outputs, mask, _dPred, mean: false);
            count += (long)len * B;
        }
        return sum / count;
    }

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
        SafeTensorsWriter.Write(path, tensors, meta);
    }

    /// <summary>
    /// Restores a trainer from a checkpoint. For a character LM, pass the same corpus (its vocabulary is checked
    /// against the checkpoint's).
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a checkpoint of this kind, or does not match the corpus.</exception>
    public static Trainer Resume(string path, CharCorpus? corpus = null, KernelSet? kernels = null)
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
        Trainer trainer;
        try { trainer = new Trainer(config, corpus, kernels); }
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
