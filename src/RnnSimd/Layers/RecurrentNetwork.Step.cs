using RnnSimd.Cells;

namespace RnnSimd.Layers;

public sealed unsafe partial class RecurrentNetwork
{
    /// <summary>Creates a state (all zeros) for <paramref name="batch"/> streams stepped together.</summary>
    /// <exception cref="InvalidOperationException">The network is bidirectional or <see cref="RecurrentOptions.Reverse"/> (a reverse direction needs the future).</exception>
    public RecurrentState CreateState(int batch = 1)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be positive.");
        if (Options.Bidirectional)
            throw new InvalidOperationException("a bidirectional network cannot be stepped one input at a time; use Forward on whole sequences.");
        if (Options.Reverse)
            throw new InvalidOperationException("a reverse network starts from the end of its sequence, so it cannot be stepped one input at a time; use Forward on whole sequences.");
        return new RecurrentState(this, batch);
    }

    /// <summary>
    /// One time step for the state's B streams: input (B, I) → output (B, Hout) (the top layer's new h); every layer's
    /// h and c are updated in place in <paramref name="state"/>. Thread-safe with other calls on this network that use
    /// other states: the network is only read.
    /// </summary>
    /// <exception cref="ArgumentException">The state belongs to another network, or a span has the wrong length.</exception>
    public void Step(RecurrentState state, ReadOnlySpan<float> input, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(state);
        CheckOwner(state.Owner, nameof(state));
        var o = Options;
        int B = state.Batch, Hout = o.OutputHidden;
        Shapes.Check(input.Length, nameof(input), "(B, I)", B, o.InputSize);
        Shapes.Check(output.Length, nameof(output), "(B, Hout)", B, Hout);
        fixed (float* x0 = input)
        {
            if (Precision != Precision.Float32)
            {
                StepReduced(state, x0, output);
                return;
            }
            if (B == 1 && _driver.TryStreamStepUnits(_layers, state, x0))
            {
                new ReadOnlySpan<float>(state.HiddenPointer(o.NumLayers - 1), Hout).CopyTo(output);
                return;
            }
            float* x = x0;
            for (int l = 0; l < o.NumLayers; l++)
            {
                var w = _layers[l];
                var st = state.StepBuffers(l);
                if (B == 1)
                {
                    float* xh = state.XH[l];
                    if (x != xh) new ReadOnlySpan<float>(x, w.In).CopyTo(new Span<float>(xh, w.In));
                    st.HNew = xh + w.In;
                    _driver.StreamStep(w, xh, ref st);
                    x = st.HNew;
                }
                else
                {
                    Kernels.Gemm(false, B, 1f, S(x, (long)B * w.In), w.In, w.WihT, 0f, S(st.Gx, (long)B * w.GH), w.GH);
                    st.HPrev = st.HNew = state.XH[l];
                    _driver.Step(w, ref st);
                    x = st.HNew;
                }
            }
            new ReadOnlySpan<float>(x, B * Hout).CopyTo(output);
        }
    }

    /// <summary>
    /// One batched step of B rows of gathered streams: x (B, I); per layer h (B, Hout) in, the new h to
    /// <paramref name="hOut"/> (B, Hout), and c (B, H) in place. Split across threads by units when large enough.
    /// </summary>
    internal void StepRows(int batch, float* x, float** h, float** hOut, float** c, in StepScratch scratch)
    {
        if (Precision != Precision.Float32)
        {
            StepRowsReduced(batch, x, h, hOut, c, scratch.Q!);
            return;
        }
        if (_driver.TryStepRowsUnits(_layers, batch, x, h, hOut, c, scratch)) return;
        for (int l = 0; l < Options.NumLayers; l++)
        {
            var w = _layers[l];
            var st = new CellStep
            {
                Batch = batch, Panels = true, Gx = scratch.Gx, HPrev = h[l], HNew = hOut[l], CPrev = c == null ? null : c[l], CNew = c == null ? null : c[l], Gates = scratch.Gates, Gh = scratch.Gh,
                TanhC = scratch.TanhC, M = scratch.M, RH = scratch.RH,
            };
            Kernels.Gemm(false, batch, 1f, S(x, (long)batch * w.In), w.In, w.WihT, 0f, S(st.Gx, (long)batch * w.GH), w.GH);
            _driver.Step(w, ref st);
            x = hOut[l];
        }
    }

    /// <summary>Scratch of a batched step: (B, GH) and (B, H) buffers.</summary>
    internal struct StepScratch
    {
        public float* Gx, Gates, Gh, TanhC, M, RH;
        public QuantScratch[]? Q;   // a reduced-precision network's per-layer scratch (rows are stepped one at a time)
    }
}
