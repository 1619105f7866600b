using RnnSimd.Cells;
using RnnSimd.Kernels;

namespace RnnSimd.Layers;

public sealed unsafe partial class RecurrentNetwork
{
    /// <summary>Creates a state (all zeros) for <paramref name="batch"/> streams stepped together.</summary>
    /// <exception cref="InvalidOperationException">The network is bidirectional (a reverse direction needs the future).</exception>
    public RecurrentState CreateState(int batch = 1)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be positive.");
        if (Options.Bidirectional)
            throw new InvalidOperationException("a bidirectional network cannot be stepped one input at a time; use Forward on whole sequences.");
        return new RecurrentState(this, batch);
    }

    /// <summary>
    /// One time step for the state's B streams: input (B, I) → output (B, Hout) (the top layer's new h); every layer's
    /// h and c are updated in place in <paramref name="state"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The state belongs to another network, or a span has the wrong length.</exception>
    public void Step(RecurrentState state, ReadOnlySpan<float> input, Span<float> output)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!ReferenceEquals(state.Owner, this))
            throw new ArgumentException("state was created by another network; create one with this network's CreateState.", nameof(state));
        var o = Options;
        int B = state.Batch, I = o.InputSize, H = o.HiddenSize, Hout = o.OutputHidden;
        Shapes.Check(input.Length, nameof(input), "(B, I)", B, I);
        Shapes.Check(output.Length, nameof(output), "(B, Hout)", B, Hout);
        if (_preparedVersion != _version)
        {
            foreach (var c in _cells) c.RefreshBiases();
            _preparedVersion = _version;
        }
        fixed (float* x0 = input)
        {
            float* x = x0;
            for (int l = 0; l < o.NumLayers; l++)
            {
                var c = _cells[l];
                if (B == 1)
                {
                    c.EnsureStep(_version);
                    StepOne(c, state, l, x);
                    x = state.XH[l] + c.In;
                }
                else
                {
                    c.EnsureGemm(_version);
                    float* gx = state.Gx[l], h = state.XH[l];
                    Kernels.Gemm(false, B, 1f, S(x, (long)B * c.In), c.In, c.WihT!, 0f, S(gx, (long)B * c.GH), c.GH);
                    StepRows(c, B, gx, h, h, state.C[l], state.C[l], state.Gates[l], state.TanhC[l], state.M[l], state.Gh[l], state.RH[l]);
                    x = h;
                }
            }
            new ReadOnlySpan<float>(x, B * Hout).CopyTo(output);
        }
    }

    /// <summary>
    /// Batch 1: one GEMV of the packed [W_ih | W_hh] with [x | h] (LSTM, RNN), or three GEMVs for GRU, then the fused
    /// gate kernel, which writes h straight back into the [x | h] buffer.
    /// </summary>
    private void StepOne(DirectionalCell c, RecurrentState st, int l, float* x)
    {
        var isa = Kernels.Isa;
        int In = c.In, H = c.H, GH = c.GH;
        float* xh = st.XH[l], h = xh + In, a = st.Gx[l], bb = st.Gh[l];
        if (x != xh) Copy(x, xh, In);
        switch (c.Cell)
        {
            case CellType.Lstm:
            {
                Kernels.Gemv(c.StepV!, S(xh, In + c.Hout), S(a, GH));
                float* mOut = c.P > 0 ? st.M[l] : h;
                var k = new LstmForward
                {
                    A = a, Bias = c.BiasSumP, B = c.ZerosP, CPrev = st.C[l], Gates = st.Gates[l], C = st.C[l], TanhC = st.TanhC[l], H = mOut, Hd = (nuint)H,
                };
                Lanes.For(isa, H, ref k);
                if (c.P > 0) Kernels.Gemv(c.WhrV!, S(mOut, H), S(h, c.P));
                break;
            }
            case CellType.Gru:
            {
                Kernels.Gemv(c.StepRzV!, S(xh, In + H), S(a, 2 * H));
                Kernels.Gemv(c.WinV!, S(xh, In), S(a + 2 * H, H));
                Zero(bb, 2 * H);
                Copy(c.BiasHnP, bb + 2 * H, H);
                if (c.LinearBeforeReset)
                {
                    Kernels.Gemv(c.WhnV!, S(h, H), S(bb + 2 * H, H), accumulate: true);
                    var k = new GruForwardLinearBeforeReset { A = a, Bias = c.BiasSumP, B = bb, HPrev = h, Gates = st.Gates[l], H = h, Hd = (nuint)H };
                    Lanes.For(isa, H, ref k);
                }
                else
                {
                    var k1 = new GruForwardResetUpdate { A = a, Bias = c.BiasSumP, B = bb, HPrev = h, Gates = st.Gates[l], RH = st.RH[l], Hd = (nuint)H };
                    Lanes.For(isa, H, ref k1);
                    Kernels.Gemv(c.WhnV!, S(st.RH[l], H), S(bb + 2 * H, H), accumulate: true);
                    var k2 = new GruForwardNew { A = a, Bias = c.BiasSumP, B = bb, HPrev = h, Gates = st.Gates[l], H = h, Hd = (nuint)H };
                    Lanes.For(isa, H, ref k2);
                }
                break;
            }
            default:
            {
                Kernels.Gemv(c.StepV!, S(xh, In + c.Hout), S(a, GH));
                if (c.Cell == CellType.RnnTanh)
                {
                    var k = new RnnForward<TanhOp> { A = a, Bias = c.BiasSumP, B = c.ZerosP, H = h };
                    Lanes.For(isa, H, ref k);
                }
                else
                {
                    var k = new RnnForward<ReluOp> { A = a, Bias = c.BiasSumP, B = c.ZerosP, H = h };
                    Lanes.For(isa, H, ref k);
                }
                break;
            }
        }
    }
}
