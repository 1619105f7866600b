using System.Globalization;
using RnnSimd.Layers;

namespace RnnSimd.Training;

/// <summary>Which task a <see cref="Trainer"/> learns.</summary>
public enum TaskKind
{
    /// <summary>The adding problem (<see cref="AddingProblem"/>): MSE at the last step.</summary>
    Adding,
    /// <summary>Copy-memory (<see cref="CopyMemory"/>): cross-entropy at every step.</summary>
    Copy,
    /// <summary>Character language model on a text (<see cref="CharCorpus"/>): next-character cross-entropy, stateful truncated BPTT.</summary>
    CharLm,
    /// <summary>
    /// Your own sequences (<see cref="SequenceDataset"/>): regression (MSE) or classification (cross-entropy), at every
    /// step or per sequence, with lengths; full BPTT over each batch of B whole sequences.
    /// </summary>
    Sequence,
}

/// <summary>
/// Everything that defines a training run; stored in checkpoints' metadata so a run can be resumed exactly.
/// </summary>
/// <param name="Task">The task.</param>
/// <param name="Cell">The recurrent cell.</param>
/// <param name="Hidden">Hidden units H.</param>
/// <param name="Layers">Stacked layers.</param>
/// <param name="SeqLen">Adding: T; copy: the delay T (sequences are T + 20 long); char-LM: the BPTT chunk length; sequences: not used (T is the data's).</param>
/// <param name="Batch">Sequences per step B.</param>
/// <param name="Optimizer">sgd, adagrad, rmsprop, adam or adamw.</param>
/// <param name="LearningRate">Base learning rate.</param>
/// <param name="Clip">Gradient clipping threshold (0 for none).</param>
/// <param name="ClipByValue">Clip each gradient element to [-Clip, Clip] instead of the global norm.</param>
/// <param name="Schedule">constant, step, cosine (each optionally with warm-up).</param>
/// <param name="WarmupSteps">Linear warm-up steps (0 for none).</param>
/// <param name="TotalSteps">Steps of the run (the cosine schedule's horizon).</param>
/// <param name="Seed">Seeds the initialisation and the data.</param>
/// <param name="Momentum">SGD / RMSprop momentum.</param>
/// <param name="WeightDecay">Weight decay (L2 for SGD/Adam/RMSprop/Adagrad, decoupled for AdamW).</param>
/// <param name="Shards">
/// Data-parallel shards: each step's batch is split into this many equal parts, each running forward, loss and
/// backward into its own gradient arena (on its own thread when <see cref="Kernels.Parallelism.MaxThreads"/> allows),
/// summed in a fixed order. Part of the run's definition: the results depend on the shard count, never on the thread
/// count (1 shard: today's single pass, whose large GEMMs split across threads instead). The sequence task takes 1 only.
/// </param>
/// <param name="Dropout">
/// Dropout between layers (PyTorch's <c>nn.LSTM(dropout=p)</c>, <see cref="Layers.SequenceWorkspace.SetDropout"/>), training
/// steps only; the masks of step s come from (Seed, s, shard), so a resumed run draws what the uninterrupted run would.
/// </param>
/// <param name="OutputDropout">
/// Character LM only: variational dropout of the top layer's output before the head, one mask per stream and chunk (the
/// same at every step of the chunk), training steps only.
/// </param>
public sealed record TrainingConfig(
    TaskKind Task = TaskKind.Adding,
    CellType Cell = CellType.Lstm,
    int Hidden = 128,
    int Layers = 1,
    int SeqLen = 100,
    int Batch = 32,
    string Optimizer = "adam",
    float LearningRate = 1e-3f,
    float Clip = 1f,
    bool ClipByValue = false,
    string Schedule = "constant",
    int WarmupSteps = 0,
    int TotalSteps = 1000,
    ulong Seed = 1,
    float Momentum = 0f,
    float WeightDecay = 0f,
    int Shards = 1,
    float Dropout = 0f,
    float OutputDropout = 0f)
{
    /// <summary>The task's name on the command line and in files: adding, copy, charlm.</summary>
    public string TaskName => Task switch { TaskKind.Adding => "adding", TaskKind.Copy => "copy", TaskKind.Sequence => "seq", _ => "charlm" };

    /// <summary>Parses a task name.</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static TaskKind ParseTask(string name) => name switch
    {
        "adding" => TaskKind.Adding,
        "copy" => TaskKind.Copy,
        "charlm" => TaskKind.CharLm,
        "seq" => TaskKind.Sequence,
        _ => throw new ArgumentException($"unknown task '{name}'; expected adding, copy, charlm or seq.", nameof(name)),
    };

    /// <summary>Checks every field.</summary>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public void Validate()
    {
        if (Hidden <= 0) throw new ArgumentException($"hidden must be positive, got {Hidden}.", nameof(Hidden));
        if (Layers <= 0) throw new ArgumentException($"layers must be positive, got {Layers}.", nameof(Layers));
        if (SeqLen < 2) throw new ArgumentException($"seq-len must be at least 2, got {SeqLen}.", nameof(SeqLen));
        if (Batch <= 0) throw new ArgumentException($"batch must be positive, got {Batch}.", nameof(Batch));
        if (Shards < 1 || Shards > Batch || Batch % Shards != 0)
            throw new ArgumentException($"shards must divide the batch ({Batch}) into equal parts, got {Shards}.", nameof(Shards));
        if (Shards > 1 && Task == TaskKind.Sequence)
            throw new ArgumentException($"shards > 1 (got {Shards}) is not supported for the sequence task: its batches have different numbers of valid steps per shard; use 1 shard (the large GEMMs still split across threads).", nameof(Shards));
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new ArgumentException($"lr must be positive, got {LearningRate}.", nameof(LearningRate));
        if (!(Clip >= 0) || !float.IsFinite(Clip)) throw new ArgumentException($"clip must be non-negative, got {Clip}.", nameof(Clip));
        if (!(Momentum >= 0) || !float.IsFinite(Momentum)) throw new ArgumentException($"momentum must be finite and non-negative, got {Momentum}.", nameof(Momentum));
        if (!(WeightDecay >= 0) || !float.IsFinite(WeightDecay)) throw new ArgumentException($"weight decay must be finite and non-negative, got {WeightDecay}.", nameof(WeightDecay));
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"dropout must be in [0, 1), got {Dropout}.", nameof(Dropout));
        if (!(OutputDropout >= 0 && OutputDropout < 1)) throw new ArgumentException($"output dropout must be in [0, 1), got {OutputDropout}.", nameof(OutputDropout));
        if (OutputDropout > 0 && Task != TaskKind.CharLm)
            throw new ArgumentException("output dropout (variational, one mask per sequence chunk) is for the character LM only.", nameof(OutputDropout));
        if (TotalSteps <= 0) throw new ArgumentException($"steps must be positive, got {TotalSteps}.", nameof(TotalSteps));
        if (WarmupSteps < 0) throw new ArgumentException($"warm-up must be non-negative, got {WarmupSteps}.", nameof(WarmupSteps));
        if (Optimizer is not ("sgd" or "adagrad" or "rmsprop" or "adam" or "adamw"))
            throw new ArgumentException($"unknown optimizer '{Optimizer}'; expected sgd, adagrad, rmsprop, adam or adamw.", nameof(Optimizer));
        if (Schedule is not ("constant" or "step" or "cosine"))
            throw new ArgumentException($"unknown schedule '{Schedule}'; expected constant, step or cosine.", nameof(Schedule));
    }

    private static string S(float v) => v.ToString("R", CultureInfo.InvariantCulture);
    private static string S(int v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>The config as string metadata.</summary>
    public Dictionary<string, string> ToMetadata() => new()
    {
        ["task"] = TaskName,
        ["cell"] = new RecurrentOptions(Cell, 1, 1).CellName,
        ["hidden"] = S(Hidden),
        ["layers"] = S(Layers),
        ["seq_len"] = S(SeqLen),
        ["batch"] = S(Batch),
        ["optimizer"] = Optimizer,
        ["lr"] = S(LearningRate),
        ["clip"] = S(Clip),
        ["clip_by_value"] = ClipByValue ? "true" : "false",
        ["schedule"] = Schedule,
        ["warmup_steps"] = S(WarmupSteps),
        ["total_steps"] = S(TotalSteps),
        ["seed"] = Seed.ToString(CultureInfo.InvariantCulture),
        ["momentum"] = S(Momentum),
        ["weight_decay"] = S(WeightDecay),
        ["shards"] = S(Shards),
        ["dropout"] = S(Dropout),
        ["output_dropout"] = S(OutputDropout),
    };

    /// <summary>Config field → metadata key, for error messages.</summary>
    private static readonly Dictionary<string, string> MetadataKeys = new()
    {
        [nameof(Hidden)] = "hidden", [nameof(Layers)] = "layers", [nameof(SeqLen)] = "seq_len", [nameof(Batch)] = "batch",
        [nameof(Optimizer)] = "optimizer", [nameof(LearningRate)] = "lr", [nameof(Clip)] = "clip", [nameof(Schedule)] = "schedule",
        [nameof(WarmupSteps)] = "warmup_steps", [nameof(TotalSteps)] = "total_steps", [nameof(Momentum)] = "momentum",
        [nameof(WeightDecay)] = "weight_decay", [nameof(Shards)] = "shards", ["name"] = "task",
        [nameof(Dropout)] = "dropout", [nameof(OutputDropout)] = "output_dropout",
    };

    /// <summary>Reads a config written by <see cref="ToMetadata"/>.</summary>
    /// <exception cref="InvalidDataException">A key is missing or malformed.</exception>
    public static TrainingConfig FromMetadata(IReadOnlyDictionary<string, string> m)
    {
        string Get(string k) => m.TryGetValue(k, out var v) ? v : throw new InvalidDataException($"checkpoint metadata lacks '{k}'.");
        int I(string k) => int.TryParse(Get(k), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new InvalidDataException($"checkpoint metadata '{k}' is not an integer.");
        float F(string k) => float.TryParse(Get(k), NumberStyles.Float, CultureInfo.InvariantCulture, out float v) ? v : throw new InvalidDataException($"checkpoint metadata '{k}' is not a number.");
        try
        {
            var c = new TrainingConfig(ParseTask(Get("task")), RecurrentOptions.ParseCell(Get("cell")), I("hidden"), I("layers"), I("seq_len"),
                I("batch"), Get("optimizer"), F("lr"), F("clip"), Get("clip_by_value") == "true", Get("schedule"), I("warmup_steps"),
                I("total_steps"), ulong.TryParse(Get("seed"), CultureInfo.InvariantCulture, out ulong s) ? s : throw new InvalidDataException("checkpoint metadata 'seed' is not an integer."),
                F("momentum"), F("weight_decay"), m.ContainsKey("shards") ? I("shards") : 1, // checkpoints before shards: 1
                m.ContainsKey("dropout") ? F("dropout") : 0f, m.ContainsKey("output_dropout") ? F("output_dropout") : 0f); // and before dropout: none
            c.Validate();
            return c;
        }
        catch (ArgumentException e)
        {
            // Name the metadata key (and its value) behind the field that failed.
            string? key = e.ParamName is { } p && MetadataKeys.TryGetValue(p, out var k) ? k : null;
            string where = key is not null && m.TryGetValue(key, out var v) ? $"'{key}' = '{CheckpointMetadata.Shown(v)}'" : "";
            throw new InvalidDataException($"checkpoint metadata {where} is invalid: {e.Message}".Replace("metadata  is", "metadata is"));
        }
    }
}
