using RnnSimd.Cells;
using RnnSimd.Kernels;

namespace RnnSimd.Layers;

public sealed unsafe partial class RecurrentNetwork
{
    private int _lastSteps, _lastBatch;
    private int[] _lengths = [];
    private bool _hasLengths;
    private SequenceWorkspace? _lastWorkspace;

    /// <summary>
    /// Runs a whole sequence. input: (T, B, I). h0: (L*D, B, Hout) or empty for zeros; c0: (L*D, B, H) (LSTM) or empty.
    /// output: (T, B, D*Hout). hN, cN: (L*D, B, Hout) / (L*D, B, H), or empty to skip; they may be the same buffers as
    /// h0 / c0 (truncated BPTT carries the state this way). lengths: B sequence lengths in 1..T (as PyTorch packed
    /// sequences / ONNX sequence_lens), or empty for all T: outputs past a sequence's end are zero and hN/cN hold each
    /// sequence's state at its own last step. Everything <see cref="Backward"/> needs is recorded in
    /// <paramref name="workspace"/>, which grows (explicitly, once) if (T, B) exceeds its capacity.
    /// </summary>
    /// <exception cref="ArgumentException">A span's length does not match its shape, a length is out of range, or the workspace belongs to another shape.</exception>
    public void Forward(ReadOnlySpan<float> input, int steps, int batch, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0,
        Span<float> output, Span<float> hN, Span<float> cN, SequenceWorkspace workspace, ReadOnlySpan<int> lengths = default)
    {
        var o = Options;
        int L = o.NumLayers, D = o.Directions, H = o.HiddenSize, Hout = o.OutputHidden, I = o.InputSize;
        ArgumentNullException.ThrowIfNull(workspace);
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps (T) must be positive.");
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch (B) must be positive.");
        Shapes.Check(input.Length, nameof(input), "(T, B, I)", steps, batch, I);
        Shapes.Check(h0.Length, nameof(h0), "(L*D, B, Hout)", L * D, batch, Hout, optional: true);
        Shapes.CheckState(c0.Length, o, batch, nameof(c0));
        Shapes.Check(output.Length, nameof(output), "(T, B, D*Hout)", steps, batch, D * Hout);
        Shapes.Check(hN.Length, nameof(hN), "(L*D, B, Hout)", L * D, batch, Hout, optional: true);
        Shapes.CheckState(cN.Length, o, batch, nameof(cN));
        if (!workspace.Matches(o)) throw new ArgumentException("workspace was created for a network of another shape.", nameof(workspace));
        Shapes.CheckLengths(lengths, steps, batch);

        workspace.EnsureCapacity(steps, batch);
        Prepare(batch, backward: false);
        _lastSteps = steps; _lastBatch = batch; _lastWorkspace = workspace;
        _hasLengths = !lengths.IsEmpty;
        if (_lengths.Length < batch) _lengths = new int[Math.Max(batch, workspace.MaxBatch)];
        if (_hasLengths) lengths.CopyTo(_lengths);

        var ws = workspace;
        int TB = steps * batch;
        input.CopyTo(S(ws.Input, (long)TB * I));
        for (int l = 0; l < L; l++)
        {
            float* x = l == 0 ? ws.Input : ws.LayerOut[l - 1];
            for (int d = 0; d < D; d++)
            {
                int idx = l * D + d;
                var c = _cells[idx];
                var w = ws.Dirs[idx];
                fixed (float* h0p = h0, c0p = c0)
                    ForwardDirection(c, w, x, steps, batch, h0.IsEmpty ? null : h0p + (long)idx * batch * Hout,
                        c0.IsEmpty ? null : c0p + (long)idx * batch * H, ws.LayerOut[l]);
                if (!hN.IsEmpty) S(w.Hs + (long)TB * Hout, batch * Hout).CopyTo(hN.Slice(idx * batch * Hout, batch * Hout));
                if (!cN.IsEmpty) S(w.Cs + (long)TB * H, batch * H).CopyTo(cN.Slice(idx * batch * H, batch * H));
            }
        }
        S(ws.LayerOut[L - 1], (long)TB * D * Hout).CopyTo(output);
    }

    private void ForwardDirection(DirectionalCell c, SequenceWorkspace.Dir w, float* x, int T, int B, float* h0, float* c0, float* layerOut)
    {
        int H = c.H, Hout = c.Hout, GH = c.GH, In = c.In, D = Options.Directions, d = c.Direction;
        var lengths = _hasLengths ? _lengths.AsSpan(0, B) : default;
        int TB = T * B;
        float* xp = x;
        if (d == 1)
        {
            for (int s = 0; s < T; s++) Copy(x + (long)(T - 1 - s) * B * In, w.XRev + (long)s * B * In, B * In);
            xp = w.XRev;
        }
        // Input projection of every step at once: Gx = Xp W_ih^T (the pre-summed biases are added by the step kernels).
        Kernels.Gemm(false, TB, 1f, S(xp, (long)TB * In), In, c.WihT!, 0f, S(w.Gx, (long)TB * GH), GH);

        if (h0 is null) Zero(w.Hs, B * Hout); else Copy(h0, w.Hs, B * Hout);
        if (c.Cell == CellType.Lstm) { if (c0 is null) Zero(w.Cs, B * H); else Copy(c0, w.Cs, B * H); }
        bool gru = c.Cell == CellType.Gru;
        for (int s = 0; s < T; s++)
        {
            int t = d == 0 ? s : T - 1 - s;
            long row = (long)s * B;
            float* hPrev = w.Hs + row * Hout, hNew = hPrev + B * Hout;
            float* cPrev = w.Cs is null ? null : w.Cs + row * H;
            float* cNew = cPrev is null ? null : cPrev + B * H;
            StepRows(c, B, w.Gx + row * GH, hPrev, hNew, cPrev, cNew, w.Gates + row * GH,
                w.TanhC is null ? null : w.TanhC + row * H, w.M is null ? null : w.M + row * H,
                gru ? w.Gh + row * GH : w.Gh, w.RH is null ? null : w.RH + row * H);
            for (int b = 0; b < B; b++)
            {
                float* dst = layerOut + ((long)t * B + b) * D * Hout + d * Hout;
                if (Active(lengths, b, t))
                {
                    Copy(hNew + b * Hout, dst, Hout);
                }
                else
                {
                    Copy(hPrev + b * Hout, hNew + b * Hout, Hout);
                    if (cPrev is not null) Copy(cPrev + b * H, cNew + b * H, H);
                    Zero(dst, Hout);
                }
            }
        }
    }

    /// <summary>
    /// Backpropagation through time for the last <see cref="Forward"/> on <paramref name="workspace"/>, walking
    /// t = T-1 ... 0. Gradients of every parameter are ACCUMULATED into <see cref="Gradients"/>; the gradients of the
    /// input, h0 and c0 are written. dOutput: (T, B, D*Hout) = dL/doutput. dhN, dcN: dL/dh_n, dL/dc_n, or empty for
    /// zero. dInput: (T, B, I); dh0: (L*D, B, Hout); dc0: (L*D, B, H) (LSTM); each may be empty to skip.
    /// dHidden, optional (T, B, D*Hout): receives dL/dh_t of the top layer at every step (the gradient arriving at each
    /// hidden state from the output and from later steps), e.g. to show how it vanishes over time.
    /// </summary>
    /// <exception cref="ArgumentException">A length does not match the recorded forward's shape.</exception>
    /// <exception cref="InvalidOperationException">No forward was recorded in this workspace.</exception>
    public void Backward(SequenceWorkspace workspace, ReadOnlySpan<float> dOutput, ReadOnlySpan<float> dhN, ReadOnlySpan<float> dcN,
        Span<float> dInput, Span<float> dh0, Span<float> dc0, Span<float> dHidden = default)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        if (!ReferenceEquals(workspace, _lastWorkspace))
            throw new InvalidOperationException("Backward needs the workspace of this network's last Forward.");
        var o = Options;
        int T = _lastSteps, B = _lastBatch, L = o.NumLayers, D = o.Directions, H = o.HiddenSize, Hout = o.OutputHidden, I = o.InputSize;
        int TB = T * B;
        Shapes.Check(dOutput.Length, nameof(dOutput), "(T, B, D*Hout)", T, B, D * Hout);
        Shapes.Check(dhN.Length, nameof(dhN), "(L*D, B, Hout)", L * D, B, Hout, optional: true);
        Shapes.CheckState(dcN.Length, o, B, nameof(dcN));
        Shapes.Check(dInput.Length, nameof(dInput), "(T, B, I)", T, B, I, optional: true);
        Shapes.Check(dh0.Length, nameof(dh0), "(L*D, B, Hout)", L * D, B, Hout, optional: true);
        Shapes.CheckState(dc0.Length, o, B, nameof(dc0));
        Shapes.Check(dHidden.Length, nameof(dHidden), "(T, B, D*Hout)", T, B, D * Hout, optional: true);
        Prepare(B, backward: true);

        var ws = workspace;
        dOutput.CopyTo(S(ws.DLayerOut[L - 1], (long)TB * D * Hout));
        for (int l = L - 1; l >= 0; l--)
        {
            // The input's gradient of layer 0 is only computed when asked for (a one-hot input never needs it).
            float* dX = l > 0 ? ws.DLayerOut[l - 1] : dInput.IsEmpty ? null : ws.DInput;
            int inSize = o.LayerInput(l);
            if (dX is not null) Zero(dX, TB * inSize);
            for (int d = 0; d < D; d++)
            {
                int idx = l * D + d;
                fixed (float* dhNp = dhN, dcNp = dcN, dHid = dHidden)
                    BackwardDirection(_cells[idx], ws.Dirs[idx], T, B, ws.DLayerOut[l],
                        dhN.IsEmpty ? null : dhNp + (long)idx * B * Hout, dcN.IsEmpty ? null : dcNp + (long)idx * B * H,
                        l == 0 ? ws.Input : ws.LayerOut[l - 1], dX, ws.DXTemp, l == L - 1 && !dHidden.IsEmpty ? dHid : null);
                var w = ws.Dirs[idx];
                if (!dh0.IsEmpty) S(w.DHCarry, B * Hout).CopyTo(dh0.Slice(idx * B * Hout, B * Hout));
                if (!dc0.IsEmpty) S(w.DC, B * H).CopyTo(dc0.Slice(idx * B * H, B * H));
            }
        }
        if (!dInput.IsEmpty) S(ws.DInput, (long)TB * I).CopyTo(dInput);
    }

    private void BackwardDirection(DirectionalCell c, SequenceWorkspace.Dir w, int T, int B, float* dY, float* dhN, float* dcN,
        float* x, float* dX, float* dxTemp, float* dHidden)
    {
        var isa = Kernels.Isa;
        int H = c.H, Hout = c.Hout, GH = c.GH, In = c.In, P = c.P, D = Options.Directions, d = c.Direction;
        var lengths = _hasLengths ? _lengths.AsSpan(0, B) : default;
        int TB = T * B;
        float* carry = w.DHCarry, dh = w.DH, dc = w.DC;
        if (dhN is null) Zero(carry, B * Hout); else Copy(dhN, carry, B * Hout);
        if (c.Cell == CellType.Lstm) { if (dcN is null) Zero(dc, B * H); else Copy(dcN, dc, B * H); }
        float* dGx = w.Gx; // the forward's input projection is not needed any more: reuse it for dL/d(gates, input side)
        bool gru = c.Cell == CellType.Gru;
        float* dGh = gru ? w.DGh : dGx;

        for (int s = T - 1; s >= 0; s--)
        {
            int t = d == 0 ? s : T - 1 - s;
            long row = (long)s * B;
            float* gates = w.Gates + row * GH, dg = dGx + row * GH, hPrev = w.Hs + row * Hout;
            // dL/dh_t = carried gradient + gradient of this step's output (a padded step's output is a constant 0)
            for (int b = 0; b < B; b++)
            {
                if (Active(lengths, b, t))
                    Kernels.Map<AddOp>(S(carry + b * Hout, Hout), S(dY + ((long)t * B + b) * D * Hout + d * Hout, Hout), S(dh + b * Hout, Hout));
                else
                    Copy(carry + b * Hout, dh + b * Hout, Hout);
                if (dHidden is not null) Copy(dh + b * Hout, dHidden + ((long)t * B + b) * D * Hout + d * Hout, Hout);
            }
            fixed (int* lens = lengths)
            {
                var job = new RowJob
                {
                    Isa = isa, Batch = B, H = H, GH = GH, Hout = Hout, T = t, Lengths = lengths.IsEmpty ? null : lens,
                    LinearBeforeReset = c.LinearBeforeReset, Gates = gates, DH = dh, DC = dc, DG = dg, HPrev = hPrev,
                    HOut = hPrev + B * Hout, DHPrev = carry,
                };
                switch (c.Cell)
                {
                    case CellType.Lstm:
                    {
                        job.DM = dh;
                        if (P > 0)
                        {
                            Copy(dh, w.DHs + row * P, B * P);
                            for (int b = 0; b < B; b++) // a padded step's m is not part of the model: no dW_hr from it
                                if (!Active(lengths, b, t)) Zero(w.DHs + (row + b) * P, P);
                            job.DM = w.DM;
                            RecurBack(B, dh, P, c.Whr, P, H, c.WhrN, w.DM, false);
                        }
                        job.Kind = RowKind.LstmBackward;
                        job.CPrev = w.Cs + row * H;
                        job.TanhC = w.TanhC + row * H;
                        RowJob.Run(ref job);
                        RecurBack(B, dg, GH, c.Whh, GH, Hout, c.WhhN, carry, false);
                        break;
                    }
                    case CellType.Gru:
                    {
                        float* dgh = dGh + row * GH;
                        job.Kind = RowKind.GruBackward;
                        job.DB = dgh;
                        job.Bn = w.Gh + row * GH + 2 * H;
                        RowJob.Run(ref job);
                        if (!c.LinearBeforeReset)
                        {
                            RecurBack(B, dgh + 2 * H, GH, c.Whh + 2 * H * Hout, H, Hout, c.WhnN, w.DRH, false);
                            job.Kind = RowKind.GruBackwardReset;
                            job.DRH = w.DRH;
                            RowJob.Run(ref job);
                            RecurBack(B, dgh, GH, c.Whh, 2 * H, Hout, c.WhrzN, carry, true);
                        }
                        else if (B == 1)
                        {
                            RecurBack(B, dgh, GH, c.Whh, GH, Hout, null, carry, true);
                        }
                        else
                        {
                            RecurBack(B, dgh, GH, c.Whh, 2 * H, Hout, c.WhrzN, carry, true);
                            RecurBack(B, dgh + 2 * H, GH, c.Whh + 2 * H * Hout, H, Hout, c.WhnN, carry, true);
                        }
                        break;
                    }
                    default:
                        job.Kind = c.Cell == CellType.RnnTanh ? RowKind.RnnTanhBackward : RowKind.RnnReluBackward;
                        RowJob.Run(ref job);
                        RecurBack(B, dg, GH, c.Whh, GH, Hout, c.WhhN, carry, false);
                        break;
                }
            }
            if (!gru && !lengths.IsEmpty)
                for (int b = 0; b < B; b++)
                    if (!Active(lengths, b, t)) Copy(dh + b * Hout, carry + b * Hout, Hout); // a padded step passes dL/dh through
        }

        // Weight gradients of all steps at once (rows in processing order): dW += dG^T [inputs].
        float* xp = d == 1 ? w.XRev : x;
        Kernels.Gemm(true, false, GH, In, TB, 1f, S(dGx, (long)TB * GH), GH, S(xp, (long)TB * In), In, 1f, S(c.dWih, (long)GH * In), In);
        if (gru && !c.LinearBeforeReset)
        {
            Kernels.Gemm(true, false, 2 * H, Hout, TB, 1f, S(dGh, (long)TB * GH), GH, S(w.Hs, (long)TB * Hout), Hout, 1f, S(c.dWhh, 2L * H * Hout), Hout);
            Kernels.Gemm(true, false, H, H, TB, 1f, S(dGh + 2 * H, (long)TB * GH - 2 * H), GH, S(w.RH, (long)TB * H), H, 1f, S(c.dWhh + 2 * H * Hout, (long)H * Hout), Hout);
        }
        else
        {
            Kernels.Gemm(true, false, GH, Hout, TB, 1f, S(dGh, (long)TB * GH), GH, S(w.Hs, (long)TB * Hout), Hout, 1f, S(c.dWhh, (long)GH * Hout), Hout);
        }
        if (c.Bias)
        {
            for (int r = 0; r < TB; r++)
            {
                Kernels.Map<AddOp>(S(c.dBih, GH), S(dGx + (long)r * GH, GH), S(c.dBih, GH));
                Kernels.Map<AddOp>(S(c.dBhh, GH), S(dGh + (long)r * GH, GH), S(c.dBhh, GH));
            }
        }
        if (P > 0)
            Kernels.Gemm(true, false, P, H, TB, 1f, S(w.DHs, (long)TB * P), P, S(w.M, (long)TB * H), H, 1f, S(c.dWhr, (long)P * H), H);

        // dL/dinput of this layer: dX (+)= dGx W_ih, un-reversed for the reverse direction.
        if (dX is null) return;
        if (d == 0)
        {
            Kernels.Gemm(false, false, TB, In, GH, 1f, S(dGx, (long)TB * GH), GH, S(c.Wih, (long)GH * In), In, 1f, S(dX, (long)TB * In), In);
        }
        else
        {
            Kernels.Gemm(false, false, TB, In, GH, 1f, S(dGx, (long)TB * GH), GH, S(c.Wih, (long)GH * In), In, 0f, S(dxTemp, (long)TB * In), In);
            for (int s = 0; s < T; s++)
            {
                var dst = S(dX + (long)(T - 1 - s) * B * In, B * In);
                Kernels.Map<AddOp>(dst, S(dxTemp + (long)s * B * In, B * In), dst);
            }
        }
    }
}
