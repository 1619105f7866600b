using RnnSimd.Layers;

namespace RnnSimd.Peers.Runners;

/// <summary>The implementations, by the names the benchmarks and the summary use, and the one place that builds them.</summary>
internal static class Implementations
{
    public const string RnnSimd = "RnnSimd", LibTorch = "LibTorch", LibTorchCell = "LibTorchCell", OnnxRuntime = "OnnxRuntime";
    /// <summary>S4 only: RnnSimd's <see cref="global::RnnSimd.Layers.RecurrentNetwork.Step"/> once per stream (the row "RnnSimd" is the multi-stream stepper).</summary>
    public const string RnnSimdSteps = "RnnSimdSteps";
    /// <summary>S2, S3: RnnSimd running ONNX Runtime's model file (the same bytes) through <see cref="global::RnnSimd.Onnx.OnnxModel"/>.</summary>
    public const string RnnSimdOnnx = "RnnSimdOnnx";

    /// <summary>The implementations each workload is run with, in report order.</summary>
    public static string[] ImplsFor(Workload w) => w switch
    {
        { IsStep: true } => [RnnSimd, LibTorch, LibTorchCell, OnnxRuntime],
        { IsServe: true } => [RnnSimd, RnnSimdSteps, LibTorchCell, OnnxRuntime],
        { Training: true } => [RnnSimd, LibTorch],
        _ => [RnnSimd, RnnSimdOnnx, LibTorch, OnnxRuntime],
    };

    /// <summary>
    /// The weight precisions each workload is run at (issue 11): S1 and S2 at float32, bf16 and int8, the others at
    /// float32. Which implementation runs which precision: <see cref="Supports"/>.
    /// </summary>
    public static Precision[] PrecisionsFor(Workload w) =>
        w.Id is "S1" or "S2" ? [Precision.Float32, Precision.BFloat16, Precision.Int8] : [Precision.Float32];

    /// <summary>
    /// Whether (workload, cell, impl, threads) is run at <paramref name="precision"/>: float32 by every implementation
    /// the workload lists; bf16 and int8 by RnnSimd (its reduced networks step on one thread, so at 1 thread only), and
    /// int8 LSTM by ONNX Runtime's DynamicQuantizeLSTM (at 1 thread, beside RnnSimd's); ONNX Runtime has no quantized
    /// GRU or RNN operator and no bf16 LSTM on the CPU, LibTorch (TorchSharp) no quantized modules.
    /// </summary>
    public static bool Supports(Workload w, string cell, string impl, int threads, Precision precision) =>
        precision == Precision.Float32
            ? ImplsFor(w).Contains(impl)
            : PrecisionsFor(w).Contains(precision) && threads == 1
              && (impl == RnnSimd || (impl == OnnxRuntime && precision == Precision.Int8 && cell == "lstm"));

    /// <summary>
    /// Builds <paramref name="impl"/> for (workload, cell) with the weights of <see cref="Workload.CreateNetwork"/>,
    /// converted to <paramref name="precision"/> by <see cref="RecurrentNetwork.ToInference"/> (ONNX Runtime's int8 LSTM
    /// gets that network's codes and scales). For LibTorch this sets torch's process-wide thread count; ONNX Runtime
    /// takes it per session; RnnSimd sets <see cref="RnnSimd.Kernels.Parallelism.MaxThreads"/> (its large GEMMs split
    /// across that many threads).
    /// </summary>
    public static IRunner Create(Workload w, string cell, string impl, int threads, Precision precision = Precision.Float32)
    {
        if (!Supports(w, cell, impl, threads, precision))
            throw new NotSupportedException($"{impl} has no {precision.Name()} {cell} {w.Id} ({w.Title}) at {threads} thread(s) here.");
        if (impl is LibTorch or LibTorchCell) Torch.SetThreads(threads);
        if (impl is RnnSimd or RnnSimdSteps or RnnSimdOnnx) global::RnnSimd.Kernels.Parallelism.MaxThreads = threads;
        if (precision != Precision.Float32)
            return (impl, w) switch
            {
                (RnnSimd, { IsStep: true }) => new RnnSimdStep(w, cell, precision),
                (RnnSimd, _) => new RnnSimdSequence(w, cell, precision),
                (OnnxRuntime, { IsStep: true }) => OrtStep.Int8Lstm(w, threads),
                (OnnxRuntime, _) => OrtSequence.Int8Lstm(w, threads),
                _ => throw new NotSupportedException($"{impl} has no {precision.Name()} {w.Id} here."),
            };
        return (impl, w) switch
        {
            (RnnSimd, { IsServe: true }) => new RnnSimdServe(w, cell, stepper: true),
            (RnnSimdSteps, { IsServe: true }) => new RnnSimdServe(w, cell, stepper: false),
            (LibTorchCell, { IsServe: true }) => new TorchCellStep(w, cell),
            (OnnxRuntime, { IsServe: true }) => new OrtServe(w, cell, threads),
            (RnnSimd, { IsStep: true }) => new RnnSimdStep(w, cell),
            (RnnSimd, { Training: false }) => new RnnSimdSequence(w, cell),
            (RnnSimdOnnx, { Training: false, IsStep: false, IsServe: false }) => new RnnSimdOnnxSequence(w, cell),
            (RnnSimd, { Training: true }) => new RnnSimdTrain(w, cell, threads),
            (LibTorch, { IsStep: true }) => new TorchStep(w, cell),
            (LibTorch, { Training: false }) => new TorchSequence(w, cell),
            (LibTorch, { Training: true }) => new TorchTrain(w, cell),
            (LibTorchCell, { IsStep: true }) => new TorchCellStep(w, cell),
            (OnnxRuntime, { IsStep: true }) => new OrtStep(w, cell, threads),
            (OnnxRuntime, { Training: false }) => new OrtSequence(w, cell, threads),
            _ => throw new NotSupportedException($"{impl} has no {w.Id} ({w.Title}) implementation here."),
        };
    }

    /// <summary>
    /// What every implementation's <see cref="IRunner.Check"/> is compared with, computed by RnnSimd through a path
    /// other than the timed one where there is one: S1, S4: one Forward over the K steps (batch 1 / N); S2, S3: Forward; T1, T2:
    /// Forward / Backward plus a naive double head, loss and Adam. At a reduced precision: the network converted to it
    /// (S1: its inference Forward over the K steps).
    /// </summary>
    public static IRunner Reference(Workload w, string cell, Precision precision = Precision.Float32) => w switch
    {
        { IsStep: true } or { IsServe: true } => new RnnSimdStepReference(w, cell, precision),
        { Training: true } => new CharLmReference(w, cell),
        _ => new RnnSimdSequence(w, cell, precision),
    };
}
