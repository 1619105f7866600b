using RnnSimd.Layers;

namespace RnnSimd.Cells;

/// <summary>What a cell records per time step for BPTT, beyond its gates and h (which every cell records).</summary>
[Flags]
internal enum CellRecords
{
    None = 0,
    /// <summary>c_t (T + 1, B, H) and tanh(c_t) (T, B, H).</summary>
    CellState = 1,
    /// <summary>m_t = o * tanh(c_t) before the projection (T, B, H) and dL/dh_t (T, B, P) for dW_hr.</summary>
    Projection = 2,
    /// <summary>The recurrent pre-activations h W_hh^T (+ b_hh of the unfused rows) (T, B, GH) and their gradient.</summary>
    RecurrentProducts = 4,
    /// <summary>r * h_{t-1} (T, B, H) (GRU's original form).</summary>
    ResetHidden = 8,
    /// <summary>The gate pre-activations before the clip (T, B, GH): where Backward stops the gradient (a clip is set).</summary>
    PreActivations = 16,
}

/// <summary>
/// The buffers of one time step of B rows (row b of a (B, n) buffer starts at base + b*n). A forward step reads Gx,
/// HPrev, CPrev and writes HNew, CNew, Gates and whatever the cell records; HNew may be HPrev and CNew may be CPrev
/// (streaming steps update the state in place).
/// </summary>
internal unsafe struct CellStep
{
    public int Batch;
    public bool Panels;          // use GEMM panels even at B = 1 (a multi-stream tick: a row's result must not depend on B)
    public float* Gx;            // (B, GH) x W_ih^T, without bias (the cell adds the pre-summed biases)
    public float* HPrev, HNew;   // (B, Hout)
    public float* CPrev, CNew;   // (B, H), LSTM
    public float* Gates;         // (B, GH) activated gates
    public float* Gh;            // (B, GH) recurrent products h W_hh^T (rows from Split: + b_hh)
    public float* TanhC, M, RH;  // (B, H): tanh c (h(c) in a configured LSTM), o * tanh c (before a projection), r * h
    public float* Pre;           // (B, GH) gate pre-activations before the clip (PreActivations), or null: not recorded
    public QuantScratch? Q;      // the int8 activation workspaces of a reduced-precision streaming step (the caller's)
}

/// <summary>
/// The buffers of one backward time step: the recorded forward step <see cref="F"/> and the gradients. Rows past their
/// sequence's end (t &gt;= lengths[b]) are inactive: the cell writes zero pre-activation gradients for them and leaves
/// their dc alone; the driver then passes their dL/dh straight through to dL/dh_{t-1}.
/// </summary>
internal unsafe struct CellBackStep
{
    public CellStep F;
    public int T;                // this step's time index
    public int* Lengths;         // (B) or null: every row active
    public float* DH;            // (B, Hout) dL/dh_t
    public float* DHPrev;        // (B, Hout) out: dL/dh_{t-1}
    public float* DC;            // (B, H) LSTM: in dL/dc_t, out dL/dc_{t-1}
    public float* DG;            // (B, GH) out: dL/d(input-side pre-activations)
    public float* DGh;           // (B, GH) out: dL/d(recurrent-side pre-activations); DG itself for cells with one sum
    public float* DHs;           // (B, P) out: dL/dh_t recorded for dW_hr (LSTM with projection)
    public float* DM, DRH;       // (B, H) scratch

    public readonly bool Active(int b) => Lengths == null || T < Lengths[b];
}

/// <summary>What a whole recorded sequence of one (layer, direction) holds, for the weight gradients after the time loop.</summary>
internal unsafe struct CellSequence
{
    public int Rows;             // T * B, in processing order
    public int Batch;            // B
    public float* Hs;            // (T + 1, B, Hout): Hs[0] = h0
    public float* Cs;            // (T + 1, B, H): Cs[0] = c0, where recorded (CellState)
    public float* DGh;           // (T, B, GH) recurrent-side pre-activation gradients
    public float* M, DHs, RH;    // (T, B, H), (T, B, P), (T, B, H) where recorded
}

/// <summary>
/// One recurrent cell kind: its forward step and backward step side by side, what it records for BPTT and its gate
/// layout. Implemented by structs; the layer drivers are generic over the cell, so the JIT specialises each driver
/// for each cell and no cell switch runs on a hot path. Adding a cell kind: one file with a struct implementing this,
/// and one line in <see cref="Layers.CellRegistry"/>.
/// </summary>
internal unsafe interface ICell
{
    /// <summary>Gate blocks in W_ih / W_hh, in PyTorch's order (e.g. "i,f,g,o"); their count is the cell's gate count.</summary>
    static abstract string GateLayout { get; }

    /// <summary>Gate rows whose input and recurrent products are summed before any nonlinearity (the rest stay apart).</summary>
    static abstract int FusedRows(RecurrentOptions o);

    /// <summary>What the cell records per step for BPTT.</summary>
    static abstract CellRecords Records(RecurrentOptions o);

    /// <summary>One forward step of B rows (any B, including 1) from the input projection <see cref="CellStep.Gx"/>.</summary>
    static abstract void Forward(LayerWeights w, ref CellStep s);

    /// <summary>
    /// Whether a step can be computed for a range of hidden units alone (<see cref="ForwardUnits"/>): true when a unit's
    /// gates need only h_{t-1} and that unit's own rows, not other units of the same step (not so for an LSTM projection
    /// or GRU's original form, whose r * h or m feeds a second product).
    /// </summary>
    static abstract bool SplitsByUnits(RecurrentOptions o);

    /// <summary>
    /// One forward step of B rows for hidden units [u0, u1) only: their rows of every gate block, their gates, c and h.
    /// Every value is computed exactly as by <see cref="Forward"/>, so threads that each run a range of units produce
    /// the whole step bitwise. u0, u1 multiples of <see cref="LayerWeights.UnitGrain"/>.
    /// </summary>
    static abstract void ForwardUnits(LayerWeights w, ref CellStep s, int u0, int u1);

    /// <summary>
    /// A batch-1 streaming step split by units, first half: the products of units [u0, u1)'s rows from
    /// <paramref name="xh"/> = [x | h_{t-1}] (reads all of xh). Only when <see cref="SplitsByUnits"/>.
    /// </summary>
    static abstract void StreamProductsUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1);

    /// <summary>
    /// Second half: the gates, c and h of units [u0, u1), h written in place in xh (so only after every part's first
    /// half). Both halves together compute each value exactly as <see cref="StreamStep"/>.
    /// </summary>
    static abstract void StreamGatesUnits(LayerWeights w, float* xh, ref CellStep s, int u0, int u1);

    /// <summary>
    /// One streaming step at batch 1 from <paramref name="xh"/> = [x | h_{t-1}] (In + Hout) with the packed
    /// [W_ih | W_hh] tiles; writes h_t to <see cref="CellStep.HNew"/> (which is xh + In: the state is updated in place).
    /// </summary>
    static abstract void StreamStep(LayerWeights w, float* xh, ref CellStep s);

    /// <summary>One backward step of B rows: pre-activation gradients, dL/dh_{t-1} (and dL/dc_{t-1}).</summary>
    static abstract void Backward(LayerWeights w, ref CellBackStep s);

    /// <summary>Accumulates the recurrent weights' gradients (W_hh, and W_hr if any) of a whole sequence into <paramref name="grads"/> (the gradient arena's base).</summary>
    static abstract void RecurrentGradients(LayerWeights w, in CellSequence q, float* grads);
}
