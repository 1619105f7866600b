using RnnSimd.Cells;
using RnnSimd.Kernels;
using System.Runtime.CompilerServices;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// The time-loop drivers of one (layer, direction), specialised for a cell by <see cref="CellDriver{TCell}"/>: the
/// network calls them through this base once per layer and direction, and each runs its whole loop with the cell's
/// forward and backward steps inlined. Stateless: everything a call writes is in the buffers it is given.
/// </summary>
internal abstract unsafe class CellDriver
{
    /// <summary>Sequences (layer, direction) run split by units so far, process-wide: tests check that the split path ran.</summary>
    internal static long UnitSplitRuns;

    /// <summary>Sequences (layer, direction) run split by batch rows so far, process-wide (tests).</summary>
    internal static long RowSplitRuns;

    /// <summary>Multiply-adds per time step (B x GH x Hout) from which a step or sequence is split across threads (by units or rows).</summary>
    internal const long UnitSplitThreshold = 128 * 1024;

    /// <summary>Rows (sequences) per thread from which an inference batch is split across threads by rows rather than by units.</summary>
    internal const int MinRowsPerPart = 8;

    public abstract CellRecords Records { get; }
    public abstract LayerWeights Pack(RecurrentOptions o, int layer, int direction, Arena parameters, KernelSet kernels,
        Func<string, QuantizedTensor>? reduced = null, Precision precision = Precision.Float32);

    /// <summary>
    /// Forward over T steps of a reduced-precision layer: each of the B rows runs alone through the batch-1 streaming
    /// step (so a row's result is bitwise <see cref="StreamStep"/>'s, whatever B), in <paramref name="q"/>'s buffers.
    /// Rows past their length output zero and keep their state, as <see cref="ForwardInfer"/>.
    /// </summary>
    public abstract void ForwardRows(LayerWeights w, QuantScratch q, float* x, int T, int B, float* h0, float* c0,
        float* layerOut, int D, int* lengths, float* hN, float* cN);

    /// <summary>Forward over T steps, recording every step in <paramref name="r"/> for Backward.</summary>
    public abstract void ForwardRecord(LayerWeights w, SequenceWorkspace.Dir r, float* x, int T, int B, float* h0, float* c0,
        float* layerOut, int D, int* lengths);

    /// <summary>Forward over T steps recording nothing: the input projection in chunks, h and c ping-ponged; h_n, c_n written if not null.</summary>
    public abstract void ForwardInfer(LayerWeights w, in SequenceWorkspace.Scratch s, float* x, int T, int B, float* h0, float* c0,
        float* layerOut, int D, int* lengths, float* hN, float* cN);

    /// <summary>BPTT over the recorded steps, gradients accumulated at <paramref name="grads"/> (a gradient arena's base).</summary>
    public abstract void Backward(LayerWeights w, SequenceWorkspace.Dir r, int T, int B, float* dY, float* dhN, float* dcN,
        float* x, float* dX, float* dxTemp, float* dHidden, int D, int* lengths, float* grads);

    /// <summary>One step of B rows from the input projection in <see cref="CellStep.Gx"/>.</summary>
    public abstract void Step(LayerWeights w, ref CellStep s);

    /// <summary>One batch-1 streaming step from [x | h].</summary>
    public abstract void StreamStep(LayerWeights w, float* xh, ref CellStep s);

    /// <summary>
    /// A batch-1 step of every layer split across threads by units, if the cell allows it, the step is large enough and
    /// the workers are free; false: nothing was done (the caller steps on its own thread).
    /// </summary>
    public abstract bool TryStreamStepUnits(LayerWeights[] layers, RecurrentState state, float* x);

    /// <summary>
    /// A batched step of gathered rows (a multi-stream tick: h in, h out, c in place) of every layer split across
    /// threads by units, if the cell allows it and the step is large enough; false: nothing was done.
    /// </summary>
    public abstract bool TryStepRowsUnits(LayerWeights[] layers, int batch, float* x, float** h, float** hOut, float** c,
        in RecurrentNetwork.StepScratch scratch);

    protected static void Copy(float* src, float* dst, int n) => new ReadOnlySpan<float>(src, n).CopyTo(new Span<float>(dst, n));

    protected static void Zero(float* dst, int n) => new Span<float>(dst, n).Clear();

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/>'s hidden units: whole grains of <see cref="LayerWeights.UnitGrain"/>.</summary>
    protected static (int U0, int U1) UnitRange(int hidden, int part, int parts)
    {
        int grains = hidden / LayerWeights.UnitGrain;
        return (grains * part / parts * LayerWeights.UnitGrain, grains * (part + 1) / parts * LayerWeights.UnitGrain);
    }

    protected static bool Active(int* lengths, int b, int t) => lengths == null || t < lengths[b];

    /// <summary>
    /// After step t, for rows [b0, b0 + n) of the B rows and the columns [u, u + hCols) of h ([u, u + cCols) of c; a
    /// thread's share when a sequence is split): each active row's h goes to its place in the layer output (T, B, D*Hout)
    /// at direction d; a row past its sequence's end keeps its previous h (and c) and outputs zero. The h and c pointers
    /// are the buffers' row 0.
    /// </summary>
    protected static void Emit(int t, int B, int b0, int n, int u, int hCols, int cCols, int Hout, int H, int D, int d, int* lengths,
        float* hPrev, float* hNew, float* cPrev, float* cNew, float* layerOut)
    {
        for (int b = b0; b < b0 + n; b++)
        {
            float* dst = layerOut + ((long)t * B + b) * D * Hout + d * Hout + u;
            if (Active(lengths, b, t))
            {
                Copy(hNew + b * Hout + u, dst, hCols);
            }
            else
            {
                Copy(hPrev + b * Hout + u, hNew + b * Hout + u, hCols);
                if (cPrev != null) Copy(cPrev + b * H + u, cNew + b * H + u, cCols);
                Zero(dst, hCols);
            }
        }
    }
}

/// <inheritdoc />
internal sealed unsafe class CellDriver<TCell> : CellDriver where TCell : struct, ICell
{
    private readonly int _split;
    private readonly bool _cellState, _splitsByUnits;


    public CellDriver(RecurrentOptions o)
    {
        Records = TCell.Records(o);
        _split = TCell.FusedRows(o);
        _cellState = Records.HasFlag(CellRecords.CellState);
        _splitsByUnits = TCell.SplitsByUnits(o) && o.HiddenSize % LayerWeights.UnitGrain == 0 && o.HiddenSize >= 2 * LayerWeights.UnitGrain;
    }

    public override CellRecords Records { get; }

    public override LayerWeights Pack(RecurrentOptions o, int layer, int direction, Arena parameters, KernelSet kernels,
        Func<string, QuantizedTensor>? reduced = null, Precision precision = Precision.Float32) =>
        new(o, layer, direction, _split, parameters, kernels, reduced, precision);

    public override void ForwardRows(LayerWeights w, QuantScratch q, float* x, int T, int B, float* h0, float* c0,
        float* layerOut, int D, int* lengths, float* hN, float* cN)
    {
        int In = w.In, H = w.H, Hout = w.Hout, d = w.Direction;
        var st = q.Row();
        float* h = st.HNew;
        for (int b = 0; b < B; b++)
        {
            if (h0 == null) Zero(h, Hout); else Copy(h0 + (long)b * Hout, h, Hout);
            if (_cellState) { if (c0 == null) Zero(q.C, H); else Copy(c0 + (long)b * H, q.C, H); }
            for (int s = 0; s < T; s++)
            {
                int t = w.Reverse ? T - 1 - s : s;
                float* dst = layerOut + ((long)t * B + b) * D * Hout + d * Hout;
                if (!Active(lengths, b, t)) { Zero(dst, Hout); continue; }
                Copy(x + ((long)t * B + b) * In, q.XH, In);
                TCell.StreamStep(w, q.XH, ref st);
                Copy(h, dst, Hout);
            }
            if (hN != null) Copy(h, hN + (long)b * Hout, Hout);
            if (cN != null && _cellState) Copy(q.C, cN + (long)b * H, H);
        }
    }

    public override void Step(LayerWeights w, ref CellStep s) => TCell.Forward(w, ref s);

    public override void StreamStep(LayerWeights w, float* xh, ref CellStep s) => TCell.StreamStep(w, xh, ref s);

    public override void ForwardRecord(LayerWeights w, SequenceWorkspace.Dir r, float* x, int T, int B, float* h0, float* c0,
        float* layerOut, int D, int* lengths)
    {
        int H = w.H, Hout = w.Hout, GH = w.GH, In = w.In, d = w.Direction, TB = T * B;
        bool rev = w.Reverse;
        float* xp = x;
        if (rev)
        {
            for (int s = 0; s < T; s++) Copy(x + (long)(T - 1 - s) * B * In, r.XRev + (long)s * B * In, B * In);
            xp = r.XRev;
        }
        // Input projection of every step at once: Gx = X W_ih^T (the cell adds the pre-summed biases).
        w.K.Gemm(false, TB, 1f, new ReadOnlySpan<float>(xp, TB * In), In, w.WihT, 0f, new Span<float>(r.Gx, TB * GH), GH);
        if (h0 == null) Zero(r.Hs, B * Hout); else Copy(h0, r.Hs, B * Hout);
        if (_cellState) { if (c0 == null) Zero(r.Cs, B * H); else Copy(c0, r.Cs, B * H); }
        bool products = r.DGh != null;
        for (int s = 0; s < T; s++)
        {
            int t = !rev ? s : T - 1 - s;
            long row = (long)s * B;
            var st = new CellStep
            {
                Batch = B, Gx = r.Gx + row * GH, HPrev = r.Hs + row * Hout, Gates = r.Gates + row * GH,
                Gh = products ? r.Gh + row * GH : r.Gh,
                TanhC = r.TanhC == null ? null : r.TanhC + row * H, M = r.M == null ? null : r.M + row * H, RH = r.RH == null ? null : r.RH + row * H,
                Pre = r.Pre == null ? null : r.Pre + row * GH,
            };
            st.HNew = st.HPrev + B * Hout;
            if (_cellState) { st.CPrev = r.Cs + row * H; st.CNew = st.CPrev + B * H; }
            TCell.Forward(w, ref st);
            Emit(t, B, 0, B, 0, Hout, H, Hout, H, D, d, lengths, st.HPrev, st.HNew, st.CPrev, st.CNew, layerOut);
        }
    }

    public override void ForwardInfer(LayerWeights w, in SequenceWorkspace.Scratch s, float* x, int T, int B, float* h0, float* c0,
        float* layerOut, int D, int* lengths, float* hN, float* cN)
    {
        bool byRows = B >= 2 * MinRowsPerPart; // enough sequences: each thread its own, nothing shared per step
        if (Parallelism.MaxThreads > 1 && (byRows || _splitsByUnits) && (long)B * w.GH * w.Hout >= UnitSplitThreshold)
        {
            var job = new SequenceJob
            {
                W = w, S = s, X = x, T = T, B = B, H0 = h0, C0 = c0, LayerOut = layerOut, D = D, Lengths = lengths, HN = hN, CN = cN,
                Chunk = Math.Clamp(SequenceWorkspace.InferenceChunkRows / B, 1, T), CellState = _cellState,
            };
            int parts = Math.Min(Parallelism.MaxThreads, byRows ? B / MinRowsPerPart : w.H / LayerWeights.UnitGrain);
            if (Parallelism.TryRun(byRows ? &RowPart : &UnitPart, Unsafe.AsPointer(ref job), parts))
            {
                Interlocked.Increment(ref byRows ? ref RowSplitRuns : ref UnitSplitRuns);
                return;
            }
        }
        int H = w.H, Hout = w.Hout, GH = w.GH, In = w.In, d = w.Direction;
        bool rev = w.Reverse;
        int chunk = Math.Clamp(SequenceWorkspace.InferenceChunkRows / B, 1, T);
        float* h = s.HA, hNext = s.HB, c = _cellState ? s.CA : null, cNext = _cellState ? s.CB : null;
        if (h0 == null) Zero(h, B * Hout); else Copy(h0, h, B * Hout);
        if (_cellState) { if (c0 == null) Zero(c, B * H); else Copy(c0, c, B * H); }
        var st = new CellStep { Batch = B, Gates = s.Gates, Gh = s.Gh, TanhC = s.TanhC, M = s.M, RH = s.RH };
        for (int s0 = 0; s0 < T; s0 += chunk)
        {
            int n = Math.Min(chunk, T - s0);
            int t0 = !rev ? s0 : T - s0 - n; // the chunk covers times t0 .. t0 + n - 1, contiguous in x
            w.K.Gemm(false, n * B, 1f, new ReadOnlySpan<float>(x + (long)t0 * B * In, n * B * In), In, w.WihT, 0f,
                new Span<float>(s.Gx, n * B * GH), GH);
            for (int i = 0; i < n; i++)
            {
                int t = !rev ? s0 + i : T - 1 - s0 - i;
                st.Gx = s.Gx + (long)(t - t0) * B * GH;
                st.HPrev = h; st.HNew = hNext; st.CPrev = c; st.CNew = cNext;
                TCell.Forward(w, ref st);
                Emit(t, B, 0, B, 0, Hout, H, Hout, H, D, d, lengths, h, hNext, c, cNext, layerOut);
                float* swap = h; h = hNext; hNext = swap;
                swap = c; c = cNext; cNext = swap;
            }
        }
        if (hN != null) Copy(h, hN, B * Hout);
        if (cN != null && _cellState) Copy(c, cN, B * H);
    }

    public override bool TryStreamStepUnits(LayerWeights[] layers, RecurrentState state, float* x)
    {
        var w0 = layers[0];
        if (!_splitsByUnits || Parallelism.MaxThreads < 2 || (long)w0.GH * (w0.In + w0.Hout) < UnitSplitThreshold) return false;
        var job = new StreamJob { Layers = layers, State = state, X = x };
        if (!Parallelism.TryRun(&StreamPart, Unsafe.AsPointer(ref job), Math.Min(Parallelism.MaxThreads, w0.H / LayerWeights.UnitGrain)))
            return false;
        Interlocked.Increment(ref UnitSplitRuns);
        return true;
    }

    public override bool TryStepRowsUnits(LayerWeights[] layers, int batch, float* x, float** h, float** hOut, float** c,
        in RecurrentNetwork.StepScratch scratch)
    {
        var w0 = layers[0];
        if (!_splitsByUnits || Parallelism.MaxThreads < 2 || (long)batch * w0.GH * w0.Hout < UnitSplitThreshold) return false;
        var job = new TickJob { Layers = layers, Batch = batch, X = x, H = h, HOut = hOut, C = c, Scratch = scratch };
        if (!Parallelism.TryRun(&TickPart, Unsafe.AsPointer(ref job), Math.Min(Parallelism.MaxThreads, w0.H / LayerWeights.UnitGrain)))
            return false;
        Interlocked.Increment(ref UnitSplitRuns);
        return true;
    }

    /// <summary>A multi-stream tick split across threads by units (on the caller's stack for the job's duration).</summary>
    private struct TickJob
    {
        public LayerWeights[] Layers;
        public int Batch;
        public float* X;
        public float** H, HOut, C;
        public RecurrentNetwork.StepScratch Scratch;
        public SpinBarrier Barrier;
    }

    /// <summary>
    /// Part <paramref name="part"/> of a <see cref="TickJob"/>, layer by layer: its units' columns of the input
    /// projection and of the recurrent product, its units' gates, c (in place) and new h (to HOut), then a barrier
    /// before the next layer reads the whole new h.
    /// </summary>
    private static void TickPart(void* arg, int part, int parts)
    {
        ref TickJob j = ref Unsafe.AsRef<TickJob>(arg);
        float* x = j.X;
        for (int l = 0; l < j.Layers.Length; l++)
        {
            var w = j.Layers[l];
            var (u0, u1) = UnitRange(w.H, part, parts);
            if (l > 0) j.Barrier.SignalAndWait(parts); // the previous layer's new h (this layer's x) is complete
            var st = new CellStep
            {
                Batch = j.Batch, Panels = true, Gx = j.Scratch.Gx, HPrev = j.H[l], HNew = j.HOut[l], CPrev = j.C == null ? null : j.C[l],
                CNew = j.C == null ? null : j.C[l], Gates = j.Scratch.Gates, Gh = j.Scratch.Gh, TanhC = j.Scratch.TanhC, M = j.Scratch.M,
                RH = j.Scratch.RH,
            };
            Gemm.RunColumnBlocks(w.K.Isa, j.Batch, x, w.In, w.WihT, w.GH / w.H, w.H, u0, u1 - u0, 0f, st.Gx, w.GH);
            TCell.ForwardUnits(w, ref st, u0, u1);
            x = j.HOut[l];
        }
    }

    /// <summary>One streaming step of all layers split across threads by units (on the caller's stack for the job's duration).</summary>
    private struct StreamJob
    {
        public LayerWeights[] Layers;
        public RecurrentState State;
        public float* X;
        public SpinBarrier Barrier;
    }

    /// <summary>
    /// Part <paramref name="part"/> of a <see cref="StreamJob"/>, layer by layer: its share of x copied into [x | h],
    /// a barrier, its units' products (reading all of [x | h]), a barrier, its units' gates, c and h (h in place).
    /// </summary>
    private static void StreamPart(void* arg, int part, int parts)
    {
        ref StreamJob j = ref Unsafe.AsRef<StreamJob>(arg);
        float* x = j.X;
        for (int l = 0; l < j.Layers.Length; l++)
        {
            var w = j.Layers[l];
            var (u0, u1) = UnitRange(w.H, part, parts);
            float* xh = j.State.XH[l];
            if (l > 0) j.Barrier.SignalAndWait(parts); // the previous layer's h (this layer's x) is complete
            if (x != xh)
            {
                int i0 = w.In * part / parts, i1 = w.In * (part + 1) / parts;
                Copy(x + i0, xh + i0, i1 - i0);
            }
            j.Barrier.SignalAndWait(parts);
            var st = j.State.StepBuffers(l);
            st.HNew = xh + w.In;
            TCell.StreamProductsUnits(w, xh, ref st, u0, u1);
            j.Barrier.SignalAndWait(parts);
            TCell.StreamGatesUnits(w, xh, ref st, u0, u1);
            x = st.HNew;
        }
    }

    // The jobs below live in the calling frame, which stays blocked in Parallelism.TryRun until every part has returned;
    // workers reach them through a pointer. Their managed fields (weights, states) are roots of that frame, so the GC
    // keeps them alive and updates them if it moves an object; each part copies what it needs into its own locals.

    /// <summary>An inference sequence split across threads, by rows or by units (on the caller's stack for the job's duration).</summary>
    private struct SequenceJob
    {
        public LayerWeights W;
        public SequenceWorkspace.Scratch S;
        public float* X, H0, C0, LayerOut, HN, CN;
        public int* Lengths;
        public int T, B, D, Chunk;
        public bool CellState;
        public SpinBarrier Barrier; // by units only
    }

    /// <summary>
    /// Part <paramref name="part"/> of a <see cref="SequenceJob"/> split by rows: rows [b0, b1) through every step, in their own rows of
    /// the workspace's scratch, with no synchronisation until the end. Rows are independent sequences and every kernel
    /// computes a row the same way for any number of rows (GEMM panels even for a single row: <see cref="CellStep.Panels"/>),
    /// so the output is bitwise the one-thread result.
    /// </summary>
    private static void RowPart(void* arg, int part, int parts)
    {
        ref SequenceJob j = ref Unsafe.AsRef<SequenceJob>(arg);
        var w = j.W;
        int H = w.H, Hout = w.Hout, GH = w.GH, In = w.In, d = w.Direction, T = j.T, B = j.B, D = j.D;
        bool rev = w.Reverse;
        int b0 = B * part / parts, b1 = B * (part + 1) / parts, n = b1 - b0;
        bool cellState = j.CellState;
        int chunk = j.Chunk;
        float* h = j.S.HA, hNext = j.S.HB, c = cellState ? j.S.CA : null, cNext = cellState ? j.S.CB : null; // row 0
        if (j.H0 == null) Zero(h + b0 * Hout, n * Hout); else Copy(j.H0 + b0 * Hout, h + b0 * Hout, n * Hout);
        if (cellState) { if (j.C0 == null) Zero(c + b0 * H, n * H); else Copy(j.C0 + b0 * H, c + b0 * H, n * H); }
        var st = new CellStep
        {
            Batch = n, Panels = true, Gates = j.S.Gates + (long)b0 * GH, Gh = j.S.Gh + (long)b0 * GH,
            TanhC = j.S.TanhC == null ? null : j.S.TanhC + b0 * H, M = j.S.M == null ? null : j.S.M + b0 * H, RH = j.S.RH == null ? null : j.S.RH + b0 * H,
        };
        for (int s0 = 0; s0 < T; s0 += chunk)
        {
            int rows = Math.Min(chunk, T - s0);
            int t0 = !rev ? s0 : T - s0 - rows;
            for (int i = 0; i < rows; i++) // this part's rows of each step of the chunk (the same per-element arithmetic as one GEMM)
                w.K.Gemm(false, n, 1f, new ReadOnlySpan<float>(j.X + ((long)(t0 + i) * B + b0) * In, n * In), In, w.WihT, 0f,
                    new Span<float>(j.S.Gx + ((long)i * B + b0) * GH, n * GH), GH);
            for (int i = 0; i < rows; i++)
            {
                int t = !rev ? s0 + i : T - 1 - s0 - i;
                st.Gx = j.S.Gx + ((long)(t - t0) * B + b0) * GH;
                st.HPrev = h + b0 * Hout; st.HNew = hNext + b0 * Hout;
                st.CPrev = cellState ? c + b0 * H : null; st.CNew = cellState ? cNext + b0 * H : null;
                TCell.Forward(w, ref st);
                Emit(t, B, b0, n, 0, Hout, H, Hout, H, D, d, j.Lengths, h, hNext, c, cNext, j.LayerOut);
                float* swap = h; h = hNext; hNext = swap;
                swap = c; c = cNext; cNext = swap;
            }
        }
        if (j.HN != null) Copy(h + b0 * Hout, j.HN + b0 * Hout, n * Hout);
        if (j.CN != null && cellState) Copy(c + b0 * H, j.CN + b0 * H, n * H);
    }

    /// <summary>
    /// Part <paramref name="part"/> of a <see cref="SequenceJob"/> split by units: hidden units [u0, u1) of every step. The part computes its
    /// units' columns of each chunk's input projection, then every step's products, gates, c and h for its units only,
    /// and meets the other parts at a barrier after each step (the next step reads all of h). Each value is computed
    /// exactly as on one thread, so the output is bitwise the same for any number of parts.
    /// </summary>
    private static void UnitPart(void* arg, int part, int parts)
    {
        ref SequenceJob j = ref Unsafe.AsRef<SequenceJob>(arg);
        var w = j.W;
        int H = w.H, Hout = w.Hout, GH = w.GH, In = w.In, d = w.Direction, T = j.T, B = j.B, D = j.D;
        bool rev = w.Reverse;
        var (u0, u1) = UnitRange(H, part, parts);
        int n = u1 - u0;
        bool cellState = j.CellState;
        float* h = j.S.HA, hNext = j.S.HB, c = cellState ? j.S.CA : null, cNext = cellState ? j.S.CB : null;
        for (int b = 0; b < B; b++)
        {
            if (j.H0 == null) Zero(h + b * Hout + u0, n); else Copy(j.H0 + b * Hout + u0, h + b * Hout + u0, n);
            if (cellState) { if (j.C0 == null) Zero(c + b * H + u0, n); else Copy(j.C0 + b * H + u0, c + b * H + u0, n); }
        }
        j.Barrier.SignalAndWait(parts);
        var st = new CellStep { Batch = B, Gates = j.S.Gates, Gh = j.S.Gh, TanhC = j.S.TanhC, M = j.S.M, RH = j.S.RH };
        for (int s0 = 0; s0 < T; s0 += j.Chunk)
        {
            int rows = Math.Min(j.Chunk, T - s0);
            int t0 = !rev ? s0 : T - s0 - rows;
            Gemm.RunColumnBlocks(w.K.Isa, rows * B, j.X + (long)t0 * B * In, In, w.WihT, GH / H, H, u0, n, 0f, j.S.Gx, GH);
            for (int i = 0; i < rows; i++)
            {
                int t = !rev ? s0 + i : T - 1 - s0 - i;
                st.Gx = j.S.Gx + (long)(t - t0) * B * GH;
                st.HPrev = h; st.HNew = hNext; st.CPrev = c; st.CNew = cNext;
                TCell.ForwardUnits(w, ref st, u0, u1);
                Emit(t, B, 0, B, u0, n, n, Hout, H, D, d, j.Lengths, h, hNext, c, cNext, j.LayerOut);
                j.Barrier.SignalAndWait(parts);
                float* swap = h; h = hNext; hNext = swap;
                swap = c; c = cNext; cNext = swap;
            }
        }
        for (int b = 0; b < B; b++)
        {
            if (j.HN != null) Copy(h + b * Hout + u0, j.HN + b * Hout + u0, n);
            if (j.CN != null && cellState) Copy(c + b * H + u0, j.CN + b * H + u0, n);
        }
    }

    public override void Backward(LayerWeights w, SequenceWorkspace.Dir r, int T, int B, float* dY, float* dhN, float* dcN,
        float* x, float* dX, float* dxTemp, float* dHidden, int D, int* lengths, float* grads)
    {
        var k = w.K;
        int H = w.H, Hout = w.Hout, GH = w.GH, In = w.In, P = w.P, d = w.Direction, TB = T * B;
        bool rev = w.Reverse;
        float* carry = r.DHCarry, dh = r.DH;
        if (dhN == null) Zero(carry, B * Hout); else Copy(dhN, carry, B * Hout);
        if (_cellState) { if (dcN == null) Zero(r.DC, B * H); else Copy(dcN, r.DC, B * H); }
        float* dGx = r.Gx; // the forward's input projection is not needed any more: it becomes dL/d(input-side pre-activations)
        bool products = r.DGh != null;
        float* dGh = products ? r.DGh : dGx;
        for (int s = T - 1; s >= 0; s--)
        {
            int t = !rev ? s : T - 1 - s;
            long row = (long)s * B;
            // dL/dh_t = carried gradient + this step's output gradient (a padded step's output is a constant 0)
            for (int b = 0; b < B; b++)
            {
                if (Active(lengths, b, t))
                    k.Map<AddOp>(new ReadOnlySpan<float>(carry + b * Hout, Hout), new ReadOnlySpan<float>(dY + ((long)t * B + b) * D * Hout + d * Hout, Hout),
                        new Span<float>(dh + b * Hout, Hout));
                else
                    Copy(carry + b * Hout, dh + b * Hout, Hout);
                if (dHidden != null) Copy(dh + b * Hout, dHidden + ((long)t * B + b) * D * Hout + d * Hout, Hout);
            }
            var bs = new CellBackStep
            {
                F = new CellStep
                {
                    Batch = B, HPrev = r.Hs + row * Hout, Gates = r.Gates + row * GH, Gh = products ? r.Gh + row * GH : r.Gh,
                    CPrev = _cellState ? r.Cs + row * H : null, TanhC = r.TanhC == null ? null : r.TanhC + row * H,
                    M = r.M == null ? null : r.M + row * H, RH = r.RH == null ? null : r.RH + row * H,
                    Pre = r.Pre == null ? null : r.Pre + row * GH,
                },
                T = t, Lengths = lengths, DH = dh, DHPrev = carry, DC = r.DC, DG = dGx + row * GH, DGh = dGh + row * GH,
                DHs = r.DHs == null ? null : r.DHs + row * P, DM = r.DM, DRH = r.DRH,
            };
            bs.F.HNew = bs.F.HPrev + B * Hout;
            TCell.Backward(w, ref bs);
            if (lengths != null)
                for (int b = 0; b < B; b++)
                    if (!Active(lengths, b, t)) Copy(dh + b * Hout, carry + b * Hout, Hout); // a padded step passes dL/dh through
        }

        // Weight gradients of all steps at once (rows in processing order): dW_ih += dG^T X, then the cell's recurrent weights.
        float* xp = rev ? r.XRev : x;
        k.Gemm(true, false, GH, In, TB, 1f, new ReadOnlySpan<float>(dGx, TB * GH), GH, new ReadOnlySpan<float>(xp, TB * In), In,
            1f, new Span<float>(grads + w.OWih, GH * In), In);
        TCell.RecurrentGradients(w, new CellSequence { Rows = TB, Batch = B, Hs = r.Hs, Cs = r.Cs, DGh = dGh, M = r.M, DHs = r.DHs, RH = r.RH }, grads);
        if (w.Bias)
        {
            var dBih = new Span<float>(grads + w.OBih, GH);
            var dBhh = new Span<float>(grads + w.OBhh, GH);
            for (int i = 0; i < TB; i++)
            {
                k.Map<AddOp>(dBih, new ReadOnlySpan<float>(dGx + (long)i * GH, GH), dBih);
                k.Map<AddOp>(dBhh, new ReadOnlySpan<float>(dGh + (long)i * GH, GH), dBhh);
            }
        }

        // dL/dinput of this layer: dX (+)= dG W_ih, un-reversed for the reverse direction.
        if (dX == null) return;
        if (!rev)
        {
            k.Gemm(false, false, TB, In, GH, 1f, new ReadOnlySpan<float>(dGx, TB * GH), GH, new ReadOnlySpan<float>(w.Wih, GH * In), In,
                1f, new Span<float>(dX, TB * In), In);
        }
        else
        {
            k.Gemm(false, false, TB, In, GH, 1f, new ReadOnlySpan<float>(dGx, TB * GH), GH, new ReadOnlySpan<float>(w.Wih, GH * In), In,
                0f, new Span<float>(dxTemp, TB * In), In);
            for (int s = 0; s < T; s++)
            {
                var dst = new Span<float>(dX + (long)(T - 1 - s) * B * In, B * In);
                k.Map<AddOp>(dst, new ReadOnlySpan<float>(dxTemp + (long)s * B * In, B * In), dst);
            }
        }
    }
}
