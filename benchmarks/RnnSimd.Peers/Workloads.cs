using RnnSimd.Layers;

namespace RnnSimd.Peers;

/// <summary>
/// One benchmarked workload, float32, single layer, unidirectional, batch-major-inside-time layout (T, B, ·) as PyTorch.
/// Inference: input features <see cref="Input"/>. Training (char-LM): one-hot <see cref="Input"/> = vocabulary in,
/// Linear(H, vocabulary) out, softmax cross-entropy MEAN over the T*B positions (nn.CrossEntropyLoss's default),
/// full BPTT over T, one Adam step (lr 2e-3, betas 0.9 / 0.999, eps 1e-8); each step starts from a zero state.
/// </summary>
/// <param name="Id">S1, S2, S3, T1, T2: the benchmark's workload id.</param>
/// <param name="Title">The benchmark's description, e.g. "S1 stream-step" (as in the main benchmark project).</param>
internal sealed record Workload(string Id, string Title, int Steps, int Batch, int Input, int Hidden, bool Training, ulong Seed)
{
    public static readonly Workload S1 = new("S1", "S1 stream-step", 1, 1, 64, 256, false, 1);
    public static readonly Workload S2 = new("S2", "S2 seq-infer", 128, 1, 64, 256, false, 1);
    public static readonly Workload S3 = new("S3", "S3 batch-infer", 64, 32, 65, 256, false, 4);
    /// <summary>S4 serve: 64 independent streams (Batch = streams), each one step per tick, state carried per stream.</summary>
    public static readonly Workload S4 = new("S4", "S4 serve", 1, 64, 64, 256, false, 1);
    public static readonly Workload T1 = new("T1", "T1 train-step", 64, 32, 65, 256, true, 6);
    public static readonly Workload T2 = new("T2", "T2 train-step-large", 32, 64, 65, 512, true, 7);

    public static readonly Workload[] All = [S1, S2, S3, S4, T1, T2];

    /// <summary>The cells every workload runs, by RnnSimd / file name.</summary>
    public static readonly string[] Cells = ["lstm", "gru", "rnn_tanh"];

    /// <summary>Thread counts every workload runs at.</summary>
    public static readonly int[] ThreadCounts = [1, 2];

    public const double LearningRate = 2e-3;

    /// <summary>Training workloads: the vocabulary (one-hot width and Linear output).</summary>
    public int Vocabulary => Input;

    /// <summary>Streaming: one step per call with the state carried.</summary>
    public bool IsStep => Id == "S1";

    /// <summary>Serving: <see cref="Batch"/> independent streams, each stepped once per call (a tick), each with its own state.</summary>
    public bool IsServe => Id == "S4";

    public static Workload ById(string id) => All.FirstOrDefault(w => w.Id == id)
        ?? throw new ArgumentException($"unknown workload '{id}'; expected one of {string.Join(", ", All.Select(w => w.Id))}.");

    /// <summary>
    /// The RnnSimd network every implementation of this (workload, cell) loads its weights from: PyTorch's default
    /// initialisation, seeded. S1, S2 and S4 share seed 1 and S3 uses seed 4, as the main project's InferenceBenchmarks.
    /// </summary>
    public RecurrentNetwork CreateNetwork(string cell) =>
        new(new RecurrentOptions(RecurrentOptions.ParseCell(cell), Input, Hidden), Seed);

    /// <summary>The same network in <paramref name="precision"/>: float32 as it is, else converted by <see cref="RecurrentNetwork.ToInference"/>.</summary>
    public RecurrentNetwork CreateNetwork(string cell, Precision precision) =>
        precision == Precision.Float32 ? CreateNetwork(cell) : CreateNetwork(cell).ToInference(precision);

    /// <summary>Inference input (T, B, I), U(-1, 1), seeded as the main project's InferenceBenchmarks (2, 3, 5).</summary>
    public float[] CreateInput() => Id switch
    {
        "S1" => BenchData.Uniform(Input, 2),
        "S2" => BenchData.Uniform(Steps * Input, 3),
        "S3" => BenchData.Uniform(Steps * Batch * Input, 5),
        "S4" => BenchData.Uniform(Batch * Input, 8),               // (N, I): one row per stream, all different
        _ => throw new InvalidOperationException($"{Id} is a training workload; use CharLmData."),
    };
}

/// <summary>Seeded data, the same in every process.</summary>
internal static class BenchData
{
    /// <summary>U(-scale, scale) from System.Random(seed) (the seeded generator is stable across .NET versions); as the main project's.</summary>
    public static float[] Uniform(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return v;
    }
}

/// <summary>
/// A char-LM batch: B streams of T+1 tokens drawn from a seeded order-1 Markov chain over the vocabulary (so the
/// loss is learnable, not that it matters for timing). Input position (t, b) is token t of stream b, one-hot;
/// its target is token t+1. Row r = t*B + b of the (T*B, V) logits matches output (T, B, H) viewed as (T*B, H).
/// </summary>
internal sealed class CharLmData
{
    public CharLmData(Workload w, int seed = 11)
    {
        Steps = w.Steps; Batch = w.Batch; Vocabulary = w.Vocabulary;
        int T = Steps, B = Batch, V = Vocabulary;
        var rng = new Random(seed);
        var next = new int[V, 4];                                  // each token has 4 likely successors
        for (int v = 0; v < V; v++) for (int k = 0; k < 4; k++) next[v, k] = rng.Next(V);
        var tokens = new int[B, T + 1];
        for (int b = 0; b < B; b++)
        {
            tokens[b, 0] = rng.Next(V);
            for (int t = 1; t <= T; t++)
                tokens[b, t] = rng.NextDouble() < 0.8 ? next[tokens[b, t - 1], rng.Next(4)] : rng.Next(V);
        }
        OneHot = new float[T * B * V];
        Targets = new long[T * B];
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
            {
                OneHot[(t * B + b) * V + tokens[b, t]] = 1f;
                Targets[t * B + b] = tokens[b, t + 1];
            }
    }

    public int Steps { get; }
    public int Batch { get; }
    public int Vocabulary { get; }
    /// <summary>(T, B, V) one-hot inputs.</summary>
    public float[] OneHot { get; }
    /// <summary>(T*B) target token of each position, row r = t*B + b.</summary>
    public long[] Targets { get; }
}
