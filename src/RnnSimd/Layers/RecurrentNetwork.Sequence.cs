using RnnSimd.Kernels;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

public sealed unsafe partial class RecurrentNetwork
{
    /// <summary>
    /// Runs a whole sequence. input: (T, B, I). h0: (L*D, B, Hout) or empty for zeros; c0: (L*D, B, H) (LSTM) or empty.
    /// output: (T, B, D*Hout). hN, cN: (L*D, B, Hout) / (L*D, B, H), or empty to skip; they may be the same buffers as
    /// h0 / c0 (truncated BPTT carries the state this way). lengths: B sequence lengths in 1..T (as PyTorch packed
    /// sequences / ONNX sequence_lens), or empty for all T: outputs past a sequence's end are zero and hN/cN hold each
    /// sequence's state at its own last step. A training workspace records everything <see cref="Backward"/> needs; an
    /// inference workspace records nothing. The workspace grows (explicitly, once) if (T, B) exceeds its capacity.
    /// Thread-safe with other calls on this network that use other workspaces.
    /// </summary>
    /// <exception cref="ArgumentException">A span's length does not match its shape, a length is out of range, or the workspace belongs to another network.</exception>
    public void Forward(ReadOnlySpan<float> input, int steps, int batch, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0,
        Span<float> output, Span<float> hN, Span<float> cN, SequenceWorkspace workspace, ReadOnlySpan<int> lengths = default)
    {
        var o = Options;
        int L = o.NumLayers, D = o.Directions, H = o.HiddenSize, Hout = o.OutputHidden, I = o.InputSize;
        ArgumentNullException.ThrowIfNull(workspace);
        CheckOwner(workspace.Owner, nameof(workspace));
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps (T) must be positive.");
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch (B) must be positive.");
        Shapes.Check(input.Length, nameof(input), "(T, B, I)", steps, batch, I);
        Shapes.Check(h0.Length, nameof(h0), "(L*D, B, Hout)", L * D, batch, Hout, optional: true);
        Shapes.CheckState(c0.Length, o, batch, nameof(c0));
        Shapes.Check(output.Length, nameof(output), "(T, B, D*Hout)", steps, batch, D * Hout);
        Shapes.Check(hN.Length, nameof(hN), "(L*D, B, Hout)", L * D, batch, Hout, optional: true);
        Shapes.CheckState(cN.Length, o, batch, nameof(cN));
        Shapes.CheckLengths(lengths, steps, batch);

        var ws = workspace;
        ws.EnsureCapacity(steps, batch);
        ws.Recorded = false;
        ws.Steps = steps; ws.Batch = batch;
        ws.HasLengths = !lengths.IsEmpty;
        if (ws.HasLengths) lengths.CopyTo(ws.Lengths);
        if (ws.RecordsForBackward) ForwardRecord(input, steps, batch, h0, c0, output, hN, cN, ws);
        else ForwardInfer(input, steps, batch, h0, c0, output, hN, cN, ws);
        ws.Recorded = ws.RecordsForBackward;
    }

    private void ForwardRecord(ReadOnlySpan<float> input, int T, int B, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0,
        Span<float> output, Span<float> hN, Span<float> cN, SequenceWorkspace ws)
    {
        var o = Options;
        int L = o.NumLayers, D = o.Directions, H = o.HiddenSize, Hout = o.OutputHidden, TB = T * B;
        input.CopyTo(S(ws.Input, (long)TB * o.InputSize));
        fixed (float* h0p = h0, c0p = c0)
        fixed (int* lens = ws.Lengths)
        {
            for (int l = 0; l < L; l++)
            {
                float* x = l == 0 ? ws.Input : ws.LayerInput(l);
                for (int d = 0; d < D; d++)
                {
                    int idx = l * D + d;
                    var r = ws.Dirs[idx];
                    _driver.ForwardRecord(_layers[idx], r, x, T, B, h0.IsEmpty ? null : h0p + (long)idx * B * Hout,
                        c0.IsEmpty ? null : c0p + (long)idx * B * H, ws.LayerOut[l], D, ws.HasLengths ? lens : null);
                    if (!hN.IsEmpty) S(r.Hs + (long)TB * Hout, B * Hout).CopyTo(hN.Slice(idx * B * Hout, B * Hout));
                    if (!cN.IsEmpty) S(r.Cs + (long)TB * H, B * H).CopyTo(cN.Slice(idx * B * H, B * H));
                }
                if (ws.Drops && l < L - 1) ws.DrawDropout(l, (long)TB * D * Hout);
            }
        }
        S(ws.LayerOut[L - 1], (long)TB * D * Hout).CopyTo(output);
    }

    private void ForwardInfer(ReadOnlySpan<float> input, int T, int B, ReadOnlySpan<float> h0, ReadOnlySpan<float> c0,
        Span<float> output, Span<float> hN, Span<float> cN, SequenceWorkspace ws)
    {
        var o = Options;
        int L = o.NumLayers, D = o.Directions, H = o.HiddenSize, Hout = o.OutputHidden;
        // hN/cN may alias h0/c0 (truncated BPTT style): each direction reads its h0 slice before writing its hN slice.
        fixed (float* xp = input, h0p = h0, c0p = c0, yp = output, hNp = hN, cNp = cN)
        fixed (int* lens = ws.Lengths)
        {
            for (int l = 0; l < L; l++)
            {
                float* x = l == 0 ? xp : ws.LayerOut[(l - 1) & 1];
                float* y = l == L - 1 ? yp : ws.LayerOut[l & 1];
                for (int d = 0; d < D; d++)
                {
                    int idx = l * D + d;
                    if (Precision != Precision.Float32)
                    {
                        _driver.ForwardRows(_layers[idx], ws.Q![idx], x, T, B,
                            h0.IsEmpty ? null : h0p + (long)idx * B * Hout, c0.IsEmpty ? null : c0p + (long)idx * B * H, y, D,
                            ws.HasLengths ? lens : null, hN.IsEmpty ? null : hNp + (long)idx * B * Hout, cN.IsEmpty ? null : cNp + (long)idx * B * H);
                        continue;
                    }
                    _driver.ForwardInfer(_layers[idx], ws.Infer, x, T, B,
                        h0.IsEmpty ? null : h0p + (long)idx * B * Hout, c0.IsEmpty ? null : c0p + (long)idx * B * H, y, D,
                        ws.HasLengths ? lens : null, hN.IsEmpty ? null : hNp + (long)idx * B * Hout, cN.IsEmpty ? null : cNp + (long)idx * B * H);
                }
            }
        }
    }

    /// <summary>
    /// Backpropagation through time for the last <see cref="Forward"/> recorded in <paramref name="workspace"/>, walking
    /// t = T-1 ... 0. Gradients of every parameter are ACCUMULATED into <paramref name="gradients"/> (default
    /// <see cref="Gradients"/>; pass one arena per thread, from <see cref="CreateGradients"/>, to run backward passes on
    /// several threads at once); the gradients of the input, h0 and c0 are written. dOutput: (T, B, D*Hout) =
    /// dL/doutput. dhN, dcN: dL/dh_n, dL/dc_n, or empty for zero. dInput: (T, B, I); dh0: (L*D, B, Hout); dc0:
    /// (L*D, B, H) (LSTM); each may be empty to skip. dHidden, optional (T, B, D*Hout): receives dL/dh_t of the top layer
    /// at every step (the gradient arriving at each hidden state from the output and from later steps).
    /// </summary>
    /// <exception cref="ArgumentException">The workspace or gradient arena belongs to another network, or a length does not match the recorded forward's shape.</exception>
    /// <exception cref="InvalidOperationException">No forward was recorded in this workspace (or it is an inference workspace).</exception>
    public void Backward(SequenceWorkspace workspace, ReadOnlySpan<float> dOutput, ReadOnlySpan<float> dhN, ReadOnlySpan<float> dcN,
        Span<float> dInput, Span<float> dh0, Span<float> dc0, Span<float> dHidden = default, Arena? gradients = null)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        CheckOwner(workspace.Owner, nameof(workspace));
        if (!workspace.RecordsForBackward)
            throw new InvalidOperationException("workspace is an inference workspace (it records nothing); create one with CreateWorkspace to run Backward.");
        if (!workspace.Recorded)
            throw new InvalidOperationException("workspace holds no recorded Forward; run Forward with it first.");
        gradients ??= Gradients;
        if (!ReferenceEquals(gradients, Gradients) && !gradients.HasLayoutOf(Parameters))
            throw new ArgumentException("gradients does not have this network's parameter layout; create it with CreateGradients.", nameof(gradients));
        var o = Options;
        var ws = workspace;
        int T = ws.Steps, B = ws.Batch, L = o.NumLayers, D = o.Directions, H = o.HiddenSize, Hout = o.OutputHidden, I = o.InputSize;
        int TB = T * B;
        Shapes.Check(dOutput.Length, nameof(dOutput), "(T, B, D*Hout)", T, B, D * Hout);
        Shapes.Check(dhN.Length, nameof(dhN), "(L*D, B, Hout)", L * D, B, Hout, optional: true);
        Shapes.CheckState(dcN.Length, o, B, nameof(dcN));
        Shapes.Check(dInput.Length, nameof(dInput), "(T, B, I)", T, B, I, optional: true);
        Shapes.Check(dh0.Length, nameof(dh0), "(L*D, B, Hout)", L * D, B, Hout, optional: true);
        Shapes.CheckState(dc0.Length, o, B, nameof(dc0));
        Shapes.Check(dHidden.Length, nameof(dHidden), "(T, B, D*Hout)", T, B, D * Hout, optional: true);

        dOutput.CopyTo(S(ws.DLayerOut[L - 1], (long)TB * D * Hout));
        fixed (float* grads = gradients.Data, dhNp = dhN, dcNp = dcN, dHid = dHidden)
        fixed (int* lens = ws.Lengths)
        {
            for (int l = L - 1; l >= 0; l--)
            {
                if (ws.Drops && l < L - 1) ws.BackDropout(l, (long)TB * D * Hout); // layer l+1 wrote dL/d(its input) here
                // The input's gradient of layer 0 is only computed when asked for (a one-hot input never needs it).
                float* dX = l > 0 ? ws.DLayerOut[l - 1] : dInput.IsEmpty ? null : ws.DInput;
                if (dX != null) S(dX, (long)TB * o.LayerInput(l)).Clear();
                for (int d = 0; d < D; d++)
                {
                    int idx = l * D + d;
                    var r = ws.Dirs[idx];
                    _driver.Backward(_layers[idx], r, T, B, ws.DLayerOut[l],
                        dhN.IsEmpty ? null : dhNp + (long)idx * B * Hout, dcN.IsEmpty ? null : dcNp + (long)idx * B * H,
                        l == 0 ? ws.Input : ws.LayerInput(l), dX, ws.DXTemp, l == L - 1 && !dHidden.IsEmpty ? dHid : null, D,
                        ws.HasLengths ? lens : null, grads);
                    if (!dh0.IsEmpty) S(r.DHCarry, B * Hout).CopyTo(dh0.Slice(idx * B * Hout, B * Hout));
                    if (!dc0.IsEmpty) S(r.DC, B * H).CopyTo(dc0.Slice(idx * B * H, B * H));
                }
            }
        }
        if (!dInput.IsEmpty) S(ws.DInput, (long)TB * I).CopyTo(dInput);
    }

    private void CheckOwner(RecurrentNetwork owner, string name)
    {
        if (!ReferenceEquals(owner, this))
            throw new ArgumentException($"{name} was created by another network; create one with this network's methods.", name);
    }
}
