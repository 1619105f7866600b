namespace RnnSimd.Report;

/// <summary>
/// What the report expects to find, in report order: the workloads, cells, thread counts and implementations of
/// benchmarks/RnnSimd.Peers (Workloads.cs and Runners/Implementations.cs; this project does not reference that heavy
/// one). A combination without a row is shown as not measured; a value in the data but not listed here is appended.
/// </summary>
internal static class Layout
{
    public const string RnnSimd = "RnnSimd", LibTorch = "LibTorch", LibTorchCell = "LibTorchCell", OnnxRuntime = "OnnxRuntime";
    /// <summary>S4: 64 calls of RnnSimd's Step (the RnnSimd row is the multi-stream stepper).</summary>
    public const string RnnSimdSteps = "RnnSimdSteps";
    /// <summary>S2, S3: RnnSimd running ONNX Runtime's model file through its ONNX import.</summary>
    public const string RnnSimdOnnx = "RnnSimdOnnx";

    public static readonly (string Id, string Title)[] Workloads =
    [
        ("S1", "stream-step: one step, B = 1, I = 64, H = 256, state carried"),
        ("S2", "seq-infer: T = 128, B = 1, I = 64, H = 256, one call"),
        ("S3", "batch-infer: T = 64, B = 32, I = 65, H = 256, one call"),
        ("S4", "serve: 64 independent streams (B = 1 each), one step each per tick, I = 64, H = 256, state carried; time per tick (per stream-step: / 64)"),
        ("T1", "train-step: char-LM, one-hot 65 in, H = 256, T = 64, B = 32, full BPTT, Adam"),
        ("T2", "train-step-large: as T1 with H = 512, B = 64, T = 32"),
    ];

    public static readonly string[] Cells = ["lstm", "gru", "rnn_tanh"];
    public static readonly int[] Threads = [1, 2];
    public static readonly string[] Impls = [RnnSimd, LibTorch, LibTorchCell, OnnxRuntime];

    /// <summary>
    /// The implementations a workload is compared across: RnnSimd, then the peers RnnSimd.Peers runs it with
    /// (LibTorchCell only steps; ONNX Runtime only infers). RnnSimd is listed for training too, where it is not
    /// measured yet, so the gap shows.
    /// </summary>
    public static string[] ImplsFor(string workload) => workload switch
    {
        "S1" => Impls,
        "S2" or "S3" => [RnnSimd, RnnSimdOnnx, LibTorch, OnnxRuntime],
        "S4" => [RnnSimd, RnnSimdSteps, LibTorchCell, OnnxRuntime],
        "T1" or "T2" => [RnnSimd, LibTorch],
        _ => [RnnSimd],
    };

    /// <summary>The weight precisions of the reduced-precision table (issue 11), in order, and the workloads it covers.</summary>
    public static readonly string[] Precisions = ["float32", "bf16", "int8"];
    public static readonly string[] ReducedWorkloads = ["S1", "S2"];

    /// <summary>Stream-steps per timed operation: 64 for S4 (a tick), else 1.</summary>
    public static int ItemsPerOperation(string workload) => workload == "S4" ? 64 : 1;

    /// <summary><paramref name="expected"/> in order, then the other values of <paramref name="found"/> in ordinal order.</summary>
    public static List<T> Merge<T>(IEnumerable<T> expected, IEnumerable<T> found) where T : notnull
    {
        var list = expected.Distinct().ToList();
        list.AddRange(found.Distinct().Where(v => !list.Contains(v)).OrderBy(v => v.ToString(), StringComparer.Ordinal));
        return list;
    }

    public static string TitleOf(string workload) =>
        Workloads.FirstOrDefault(w => w.Id == workload).Title is string t ? $"{workload} {t}" : workload;
}
