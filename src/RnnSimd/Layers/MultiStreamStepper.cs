using RnnSimd.Cells;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// Steps many independent batch-1 streams of one network together, as one batched step per tick: the streams' inputs
/// are the rows of one (N, I) matrix, their h and c are gathered into (N, H) rows, every layer runs one input GEMM, one
/// recurrent GEMM and one fused gate kernel over all N rows, and the new h and c are scattered back to each stream's
/// <see cref="RecurrentState"/>. Streams join, leave and are reset between ticks simply by passing a different set of
/// states; a state can move between <see cref="RecurrentNetwork.Step"/> and a stepper at any tick (the state object is
/// the stream). Allocation-free per tick once <see cref="Capacity"/> covers the largest tick. One stepper per thread;
/// the network may be shared by many.
/// <para>
/// Arithmetic: a tick computes each stream's step with the batched (GEMM) path, which sums the products in another
/// order than the batch-1 GEMV of <see cref="RecurrentNetwork.Step"/>; the two agree to a few float roundings per step,
/// not bitwise. A tick is bitwise identical to <see cref="RecurrentNetwork.Step"/> on one state of batch N holding the
/// same streams, and does not depend on which other streams are in the tick or in which order.
/// </para>
/// </summary>
public sealed unsafe class MultiStreamStepper
{
    private static long s_ticks;
    private readonly RecurrentNetwork _net;
    private readonly bool _cellState;
    private Arena? _arena;
    private float*[] _h = [], _hOut = [], _c = [];
    private RecurrentNetwork.StepScratch _scratch;

    /// <summary>Creates a stepper for up to <paramref name="capacity"/> streams per tick (it grows, explicitly, if a tick has more).</summary>
    public MultiStreamStepper(RecurrentNetwork network, int capacity)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (network.Options.Bidirectional)
            throw new ArgumentException("a bidirectional network cannot be stepped one input at a time.", nameof(network));
        if (network.Options.Reverse)
            throw new ArgumentException("a reverse network starts from the end of its sequence, so it cannot be stepped one input at a time.", nameof(network));
        _net = network;
        _cellState = network.Driver.Records.HasFlag(CellRecords.CellState);
        EnsureCapacity(capacity);
    }

    /// <summary>The network every tick runs.</summary>
    public RecurrentNetwork Network => _net;
    /// <summary>The most streams a tick can step without growing.</summary>
    public int Capacity { get; private set; }
    /// <summary>How many times the buffers were (re)allocated; constant in steady state.</summary>
    public int Generation { get; private set; }

    /// <summary>Grows the buffers (one allocation) to hold <paramref name="capacity"/> streams; returns whether they grew.</summary>
    public bool EnsureCapacity(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        if (_arena is not null && capacity <= Capacity) return false;
        var o = _net.Options;
        int L = o.NumLayers, H = o.HiddenSize, Hout = o.OutputHidden, GH = o.GateCount * H, N = capacity;
        RecurrentOptions.CheckBudget(4m * N * (3m * GH + 3m * H + L * (2m * Hout + H)), nameof(capacity), $"a stepper for {N} streams");
        var list = new List<(string, int[])>
        {
            ("gx", [N * GH]), ("gates", [N * GH]), ("gh", [N * GH]), ("tanhc", [N * H]), ("m", [N * H]), ("rh", [N * H]),
        };
        for (int l = 0; l < L; l++) { list.Add(($"h{l}", [N * Hout])); list.Add(($"ho{l}", [N * Hout])); list.Add(($"c{l}", [N * H])); }
        var arena = new Arena(list);
        _scratch = new RecurrentNetwork.StepScratch
        {
            Gx = arena.Pointer("gx"), Gates = arena.Pointer("gates"), Gh = arena.Pointer("gh"), TanhC = arena.Pointer("tanhc"),
            M = arena.Pointer("m"), RH = arena.Pointer("rh"), Q = _net.Precision == Precision.Float32 ? null : _net.CreateQuantScratch(),
        };
        _h = new float*[L];
        _hOut = new float*[L];
        _c = new float*[L];
        for (int l = 0; l < L; l++) { _h[l] = arena.Pointer($"h{l}"); _hOut[l] = arena.Pointer($"ho{l}"); _c[l] = arena.Pointer($"c{l}"); }
        _arena = arena;
        Capacity = capacity;
        Generation++;
        return true;
    }

    /// <summary>
    /// One tick: steps each of <paramref name="streams"/> (N distinct batch-1 states of this network) by one input.
    /// inputs: (N, I), row n for streams[n]; outputs: (N, Hout), row n receives streams[n]'s new top-layer h. Every
    /// stream's h and c are updated in its state. Grows the buffers once if N exceeds <see cref="Capacity"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A state is null, of another network, not of batch 1, or appears twice; or a span has the wrong length. Nothing is stepped then.</exception>
    public void Step(ReadOnlySpan<RecurrentState> streams, ReadOnlySpan<float> inputs, Span<float> outputs)
    {
        var o = _net.Options;
        int N = streams.Length, L = o.NumLayers, H = o.HiddenSize, Hout = o.OutputHidden;
        Shapes.Check(inputs.Length, nameof(inputs), "(N, I)", N, o.InputSize);
        Shapes.Check(outputs.Length, nameof(outputs), "(N, Hout)", N, Hout);
        long tick = Interlocked.Increment(ref s_ticks);
        for (int n = 0; n < N; n++)
        {
            var s = streams[n];
            if (s is null || !ReferenceEquals(s.Owner, _net) || s.Batch != 1 || s.TickMark == tick) ThrowStream(streams, n, tick);
            s.TickMark = tick;
        }
        if (N == 0) return;
        EnsureCapacity(N);
        for (int n = 0; n < N; n++)
        {
            var s = streams[n]!;
            for (int l = 0; l < L; l++)
            {
                Copy(s.HiddenPointer(l), _h[l] + n * Hout, Hout);
                if (_cellState) Copy(s.C[l], _c[l] + n * H, H);
            }
        }
        fixed (float* x = inputs)
        fixed (float** h = _h, hOut = _hOut, c = _c)
            _net.StepRows(N, x, h, hOut, _cellState ? c : null, _scratch);
        for (int n = 0; n < N; n++)
        {
            var s = streams[n]!;
            for (int l = 0; l < L; l++)
            {
                Copy(_hOut[l] + n * Hout, s.HiddenPointer(l), Hout);
                if (_cellState) Copy(_c[l] + n * H, s.C[l], H);
            }
        }
        new ReadOnlySpan<float>(_hOut[L - 1], N * Hout).CopyTo(outputs);
    }

    private static void Copy(float* src, float* dst, int n) => new ReadOnlySpan<float>(src, n).CopyTo(new Span<float>(dst, n));

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowStream(ReadOnlySpan<RecurrentState> streams, int n, long tick)
    {
        var s = streams[n];
        string why = s is null ? "is null"
            : !ReferenceEquals(s.Owner, _net) ? "was created by another network"
            : s.Batch != 1 ? $"has batch {s.Batch}; a stepper steps batch-1 states (create them with CreateState(1))"
            : $"appears twice in this tick (also at index {IndexOf(streams, s, tick)})";
        throw new ArgumentException($"streams[{n}] {why}.", nameof(streams));
    }

    private static int IndexOf(ReadOnlySpan<RecurrentState> streams, RecurrentState s, long tick)
    {
        for (int i = 0; i < streams.Length; i++) if (ReferenceEquals(streams[i], s)) return i;
        return -1;
    }
}
