using System.Runtime.CompilerServices;
using RnnSimd.Cells;
using RnnSimd.Kernels;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// A stacked, optionally bidirectional RNN / LSTM / GRU with PyTorch's semantics, parameter names and layout
/// (input (T, B, I), output (T, B, D*Hout), states (L*D, B, H)). Parameters and gradients live in two arenas of one
/// layout (<see cref="Parameters"/>, <see cref="Gradients"/>), named as PyTorch's state_dict.
/// Three ways to run it, all allocation-free after warm-up: <see cref="Step"/> (streaming, one step per call, state
/// object per stream), <see cref="Forward"/> (a whole sequence; records what <see cref="Backward"/> needs into a
/// <see cref="SequenceWorkspace"/>), and <see cref="Backward"/> (BPTT from T-1 to 0, accumulating gradients).
/// After changing parameter values directly, call <see cref="ParametersChanged"/> so packed copies are refreshed.
/// </summary>
public sealed unsafe partial class RecurrentNetwork
{
    private readonly DirectionalCell[] _cells;
    private int _version;
    private int _preparedVersion = -1;

    /// <summary>Creates a network with PyTorch's default initialisation U(-1/sqrt(H), 1/sqrt(H)) from <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentException">Invalid options, or a kernel set the CPU lacks.</exception>
    public RecurrentNetwork(RecurrentOptions options, ulong seed = 0, KernelSet? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Kernels = kernels ?? KernelSet.Default;
        if (!Kernels.IsSupported) throw new ArgumentException($"kernel set '{Kernels.Name}' is not supported here.", nameof(kernels));
        Parameters = new Arena(options.ParameterShapes());
        Gradients = Parameters.CloneLayout();
        _cells = new DirectionalCell[options.NumLayers * options.Directions];
        for (int l = 0; l < options.NumLayers; l++)
            for (int d = 0; d < options.Directions; d++)
                _cells[l * options.Directions + d] = new DirectionalCell(options, l, d, Parameters, Gradients, Kernels);
        ResetParameters(seed);
    }

    /// <summary>The network's shape.</summary>
    public RecurrentOptions Options { get; }
    /// <summary>The kernel set every call uses.</summary>
    public KernelSet Kernels { get; }
    /// <summary>Parameters under PyTorch's state_dict names.</summary>
    public Arena Parameters { get; }
    /// <summary>Gradients, same layout as <see cref="Parameters"/>; <see cref="Backward"/> accumulates into them.</summary>
    public Arena Gradients { get; }

    /// <summary>Re-initialises every parameter from U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default), seeded.</summary>
    public void ResetParameters(ulong seed)
    {
        var rng = new Xoshiro(seed);
        float k = 1f / MathF.Sqrt(Options.HiddenSize);
        foreach (var e in Parameters.Entries)
        {
            var v = Parameters.View(e);
            for (int i = 0; i < v.Length; i++) v[i] = rng.NextFloat(-k, k);
        }
        ParametersChanged();
    }

    /// <summary>Call after writing parameter values (an optimizer step does): packed copies are refreshed before the next use.</summary>
    public void ParametersChanged() => _version++;

    /// <summary>Sets every gradient to zero (gradients accumulate across <see cref="Backward"/> calls).</summary>
    public void ZeroGradients() => Gradients.Clear();

    /// <summary>Creates a workspace for sequences of up to <paramref name="maxSteps"/> steps and <paramref name="maxBatch"/> sequences.</summary>
    public SequenceWorkspace CreateWorkspace(int maxSteps, int maxBatch) => new(Options, maxSteps, maxBatch);

    private void Prepare(int batch, bool backward)
    {
        if (_preparedVersion != _version)
        {
            foreach (var c in _cells) c.RefreshBiases();
            _preparedVersion = _version;
        }
        foreach (var c in _cells)
        {
            c.EnsureGemm(_version);
            if (batch == 1) c.EnsureGemv(_version);
            if (backward && batch > 1) c.EnsureBackward(_version);
        }
    }

    // ---------- small helpers over raw pointers (all buffers are pinned arenas) ----------

    private static Span<float> S(float* p, long n) => new(p, (int)n);

    private static void Copy(float* src, float* dst, int n) => new ReadOnlySpan<float>(src, n).CopyTo(new Span<float>(dst, n));

    private static void Zero(float* dst, int n) => new Span<float>(dst, n).Clear();

    /// <summary>y (B x n, row stride ldy) (+)= x (B x k) W^T, by GEMV tiles at batch 1 or GEMM panels otherwise.</summary>
    private void Recur(int batch, float* x, int k, PackedGemvMatrix? tiles, PackedGemmOperand? panels, float* y, int ldy, bool accumulate)
    {
        if (batch == 1 && tiles is not null)
        {
            Kernels.Gemv(tiles, S(x, k), S(y, tiles.Rows), accumulate);
        }
        else
        {
            int n = panels!.N;
            Kernels.Gemm(false, batch, 1f, S(x, (long)batch * k), k, panels, accumulate ? 1f : 0f, S(y, (long)(batch - 1) * ldy + n), ldy);
        }
    }

    /// <summary>dx (B x n) (+)= dy (B x k) W with W stored k x n: GEMV transposed at batch 1, GEMM otherwise.</summary>
    private void RecurBack(int batch, float* dy, int lddy, float* w, int k, int n, PackedGemmOperand? panels, float* dx, bool accumulate)
    {
        if (batch == 1)
            Kernels.GemvTransposed(k, n, S(w, (long)k * n), n, S(dy, k), S(dx, n), accumulate);
        else
            Kernels.Gemm(false, batch, 1f, S(dy, (long)(batch - 1) * lddy + k), lddy, panels!, accumulate ? 1f : 0f, S(dx, (long)batch * n), n);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Active(ReadOnlySpan<int> lengths, int b, int t) => lengths.IsEmpty || t < lengths[b];

    /// <summary>
    /// One time step of one (layer, direction) for B rows. gx: (B, GH) input projection with biases; hPrev/hNew (B, Hout)
    /// may be the same buffer, as may cPrev/cNew. Saves gates (B, GH), tanh c (B, H), m (B, H), gh (B, GH), rh (B, H)
    /// where the cell needs them (pointers may be scratch when nothing is recorded).
    /// </summary>
    private void StepRows(DirectionalCell c, int batch, float* gx, float* hPrev, float* hNew, float* cPrev, float* cNew,
        float* gates, float* tanhC, float* m, float* gh, float* rh)
    {
        int H = c.H, Hout = c.Hout, GH = c.GH;
        var job = new RowJob
        {
            Isa = Kernels.Isa, Batch = batch, H = H, GH = GH, Hout = Hout, A = gx, Bias = c.BiasSumP, B = gh, HPrev = hPrev, CPrev = cPrev,
            Gates = gates, C = cNew, TanhC = tanhC, HOut = hNew, RH = rh,
        };
        switch (c.Cell)
        {
            case CellType.Lstm:
                Recur(batch, hPrev, Hout, c.WhhV, c.WhhT, gh, GH, false);
                job.Kind = RowKind.LstmForward;
                if (c.P > 0) job.HOut = m;
                RowJob.Run(ref job);
                if (c.P > 0) Recur(batch, m, H, c.WhrV, c.WhrT, hNew, Hout, false);
                break;
            case CellType.Gru:
                Recur(batch, hPrev, Hout, c.WhrzV, c.WhrzT, gh, GH, false);
                for (int b = 0; b < batch; b++) Copy(c.BiasHnP, gh + b * GH + 2 * H, H);
                if (c.LinearBeforeReset)
                {
                    Recur(batch, hPrev, Hout, c.WhnV, c.WhnT, gh + 2 * H, GH, true);
                    job.Kind = RowKind.GruForwardLinearBeforeReset;
                    RowJob.Run(ref job);
                }
                else
                {
                    job.Kind = RowKind.GruForwardResetUpdate;
                    RowJob.Run(ref job);
                    Recur(batch, rh, H, c.WhnV, c.WhnT, gh + 2 * H, GH, true);
                    job.Kind = RowKind.GruForwardNew;
                    RowJob.Run(ref job);
                }
                break;
            default:
                Recur(batch, hPrev, Hout, c.WhhV, c.WhhT, gh, GH, false);
                job.Kind = c.Cell == CellType.RnnTanh ? RowKind.RnnTanhForward : RowKind.RnnReluForward;
                RowJob.Run(ref job);
                break;
        }
    }
}
