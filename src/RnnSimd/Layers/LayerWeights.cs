using System.Runtime.CompilerServices;
using RnnSimd.Kernels;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// The weights of one (layer, direction): pointers into the parameter arena, offsets of the same tensors in any
/// gradient arena of the network's layout, pre-summed biases, and every packed copy the kernels use. Everything is
/// built eagerly (at construction and in <see cref="Repack"/>) and only read by calls, so any number of threads may
/// run with one <see cref="LayerWeights"/> at once.
/// <para>
/// Gate rows [0, <see cref="Split"/>) take x and h through one fused product ([W_ih | W_hh] for a batch-1 streaming
/// step, biases pre-summed); rows [Split, GH) keep the input and recurrent products apart, as GRU's n gate needs
/// (n = tanh(W_in x + b_in + r * (W_hn h + b_hn))). The cell chooses Split (<see cref="Cells.ICell.FusedRows"/>);
/// nothing here knows which cell it is.
/// </para>
/// </summary>
internal sealed unsafe partial class LayerWeights
{
    public readonly int Layer, Direction, In, H, Hout, P, GH, Split;
    /// <summary>Whether this layer runs backward in time: the reverse direction of a bidirectional layer, or a <see cref="RecurrentOptions.Reverse"/> network.</summary>
    public readonly bool Reverse;
    public readonly bool Bias, LinearBeforeReset;
    /// <summary>The activations and clip a configured cell specialisation reads at run time (the compiled ones ignore them).</summary>
    public readonly Cells.GateFunctions Functions;
    public readonly KernelSet K;
    public readonly float* Wih, Whh, Bih, Bhh, Whr;                  // (GH, In), (GH, Hout), (GH), (GH), (P, H)
    public readonly float* Peep;                                      // LSTM peepholes (3, H): p_i, p_f, p_o; else null
    public readonly int OWih, OWhh, OBih, OBhh, OWhr, OPeep;         // offsets of the same tensors in a gradient arena

    // Pre-summed biases: rows below Split b_ih + b_hh, rows from Split b_ih only (GH); BiasRest: b_hh of rows from Split (GH - Split).
    public readonly float* BiasSum, BiasRest;
    public readonly float* Zeros;                                     // (GH) zeros: the recurrent half of a fused streaming step

    // GEMM panels (op(B) packed once). Forward: X W^T; backward: dY W.
    public readonly PackedGemmOperand WihT;                           // (In -> GH)
    public readonly PackedGemmOperand RecT, RecN;                     // W_hh rows [0, Split): (Hout -> Split), (Split -> Hout)
    public readonly PackedGemmOperand? RestT, RestN;                  // W_hh rows [Split, GH)
    public readonly PackedGemmOperand? WhrT, WhrN;                    // projection (H -> P), (P -> H)
    // GEMV tiles for batch 1.
    public readonly PackedGemvMatrix RecV;                            // W_hh rows [0, Split)
    public readonly PackedGemvMatrix? RestV, WhrV;                    // W_hh rows [Split, GH); W_hr
    public readonly PackedGemvMatrix StepV;                           // [W_ih | W_hh] rows [0, Split): the streaming step
    public readonly PackedGemvMatrix? StepRestV;                      // W_ih rows [Split, GH)

    private readonly float[] _biases;

    public LayerWeights(RecurrentOptions o, int layer, int direction, int split, Arena parameters, KernelSet kernels,
        Func<string, QuantizedTensor>? quantized = null, Precision precision = Precision.Float32)
    {
        Precision = precision;
        Layer = layer; Direction = direction; Reverse = direction == 1 || o.Reverse; Bias = o.Bias; LinearBeforeReset = o.GruLinearBeforeReset;
        In = o.LayerInput(layer); H = o.HiddenSize; Hout = o.OutputHidden; P = o.ProjSize; GH = o.GateCount * H; Split = split;
        K = kernels;
        Functions = Cells.GateFunctions.From(o);
        string sfx = $"_l{layer}" + (direction == 1 ? "_reverse" : "");
        Wih = Find(parameters, "weight_ih" + sfx, out OWih);
        Whh = Find(parameters, "weight_hh" + sfx, out OWhh);
        if (Bias) { Bih = Find(parameters, "bias_ih" + sfx, out OBih); Bhh = Find(parameters, "bias_hh" + sfx, out OBhh); }
        if (P > 0) Whr = Find(parameters, "weight_hr" + sfx, out OWhr);
        if (o.Peepholes) Peep = Find(parameters, "weight_peep" + sfx, out OPeep);

        int pad = (GH + 15) / 16 * 16;
        _biases = GC.AllocateArray<float>(3 * pad, pinned: true);
        BiasSum = (float*)Unsafe.AsPointer(ref _biases[0]);
        BiasRest = BiasSum + pad;
        Zeros = BiasRest + pad;

        int rest = GH - Split;
        if (precision != Precision.Float32)
        {
            // A reduced-precision network runs every step as the batch-1 streaming step on its packed codes only: no float
            // copies of the weights are packed (the float-product fields stay null and no path reads them).
            WihT = RecT = RecN = null!; RecV = StepV = null!;
            PackReduced(quantized!, sfx);
            Repack();
            return;
        }
        WihT = kernels.PackGemmOperand(true, In, GH, S(Wih, GH * In), In);
        RecT = kernels.PackGemmOperand(true, Hout, Split, S(Whh, Split * Hout), Hout);
        RecN = kernels.PackGemmOperand(false, Split, Hout, S(Whh, Split * Hout), Hout);
        RecV = new PackedGemvMatrix(Split, Hout, S(Whh, Split * Hout), Hout);
        StepV = new PackedGemvMatrix(Split, In + Hout, new float[Split * (In + Hout)], In + Hout);
        if (rest > 0)
        {
            RestT = kernels.PackGemmOperand(true, Hout, rest, S(Whh + Split * Hout, rest * Hout), Hout);
            RestN = kernels.PackGemmOperand(false, rest, Hout, S(Whh + Split * Hout, rest * Hout), Hout);
            RestV = new PackedGemvMatrix(rest, Hout, S(Whh + Split * Hout, rest * Hout), Hout);
            StepRestV = new PackedGemvMatrix(rest, In, S(Wih + Split * In, rest * In), In);
        }
        if (P > 0)
        {
            WhrT = kernels.PackGemmOperand(true, H, P, S(Whr, P * H), H);
            WhrN = kernels.PackGemmOperand(false, P, H, S(Whr, P * H), H);
            WhrV = new PackedGemvMatrix(P, H, S(Whr, P * H), H);
        }
        Repack();
    }

    private static float* Find(Arena a, string name, out int offset)
    {
        offset = a.Entry(name).Offset;
        return a.Pointer(name);
    }

    private static ReadOnlySpan<float> S(float* p, int n) => new(p, n);

    /// <summary>Rebuilds every packed copy and the pre-summed biases from the parameters. Not safe while calls run.</summary>
    public void Repack()
    {
        int rest = GH - Split;
        for (int i = 0; i < GH; i++)
        {
            float bi = Bias ? Bih[i] : 0f, bh = Bias ? Bhh[i] : 0f;
            if (i < Split) BiasSum[i] = bi + bh;
            else { BiasSum[i] = bi; BiasRest[i - Split] = bh; }
        }
        if (Precision != Precision.Float32) return; // the codes are fixed at conversion
        WihT.Repack(S(Wih, GH * In), In);
        RecT.Repack(S(Whh, Split * Hout), Hout);
        RecN.Repack(S(Whh, Split * Hout), Hout);
        RecV.Repack(S(Whh, Split * Hout), Hout);
        StepV.Repack(S(Wih, Split * In), In, 0, In);
        StepV.Repack(S(Whh, Split * Hout), Hout, In, Hout);
        if (rest > 0)
        {
            RestT!.Repack(S(Whh + Split * Hout, rest * Hout), Hout);
            RestN!.Repack(S(Whh + Split * Hout, rest * Hout), Hout);
            RestV!.Repack(S(Whh + Split * Hout, rest * Hout), Hout);
            StepRestV!.Repack(S(Wih + Split * In, rest * In), In);
        }
        if (P > 0)
        {
            WhrT!.Repack(S(Whr, P * H), H);
            WhrN!.Repack(S(Whr, P * H), H);
            WhrV!.Repack(S(Whr, P * H), H);
        }
    }

    /// <summary>y (B rows of stride ldy) (+)= x (B, k) W^T for the step's B rows, by GEMV tiles at batch 1 (unless the step asks for panels) or GEMM panels.</summary>
    public void Mul(in Cells.CellStep s, float* x, PackedGemvMatrix tiles, PackedGemmOperand panels, float* y, int ldy, bool accumulate)
    {
        int batch = s.Batch;
        if (batch == 1 && !s.Panels)
            K.Gemv(tiles, new ReadOnlySpan<float>(x, tiles.Cols), new Span<float>(y, tiles.Rows), accumulate);
        else
            K.Gemm(false, batch, 1f, new ReadOnlySpan<float>(x, batch * panels.K), panels.K, panels, accumulate ? 1f : 0f,
                new Span<float>(y, (batch - 1) * ldy + panels.N), ldy);
    }

    /// <summary>
    /// The rows of units [u0, u1) of every one of <paramref name="blocks"/> gate blocks (H rows each) of y (B rows of
    /// stride ldy) (+)= x (B, k) W^T: the part of <see cref="Mul"/> one thread computes when a step is split by units.
    /// u0 and u1 are multiples of <see cref="UnitGrain"/> and H is too. Each element is computed exactly as by Mul.
    /// </summary>
    public void MulUnits(in Cells.CellStep s, float* x, PackedGemvMatrix tiles, PackedGemmOperand panels, float* y, int ldy, int blocks,
        int u0, int u1, bool accumulate)
    {
        if (s.Batch == 1 && !s.Panels)
            GemvUnits(tiles, blocks, x, y, u0, u1, accumulate);
        else
        {
            Gemm.RunColumnBlocks(K.Isa, s.Batch, x, panels.K, panels, blocks, H, u0, u1 - u0, accumulate ? 1f : 0f, y, ldy);
        }
    }

    /// <summary>y (+)= W x for the rows of units [u0, u1) of each of <paramref name="blocks"/> gate blocks of the GEMV tiles W.</summary>
    public void GemvUnits(PackedGemvMatrix tiles, int blocks, float* x, float* y, int u0, int u1, bool accumulate)
    {
        for (int g = 0; g < blocks; g++)
            Gemv.PackedTiles(K.Isa, tiles, (g * H + u0) / PackedGemvMatrix.TileRows, (u1 - u0) / PackedGemvMatrix.TileRows, x, y, accumulate);
    }

    /// <summary>Unit ranges of a step split across threads start at multiples of this (a GEMV tile, and a GEMM panel of every kernel set).</summary>
    public const int UnitGrain = 32;

    /// <summary>dx (B, n) (+)= dy (B rows of stride lddy, k) W, W stored k x n at <paramref name="w"/>: GEMV transposed at batch 1, GEMM otherwise.</summary>
    public void MulBack(int batch, float* dy, int lddy, float* w, PackedGemmOperand panels, float* dx, bool accumulate)
    {
        int k = panels.K, n = panels.N;
        if (batch == 1)
            K.GemvTransposed(k, n, new ReadOnlySpan<float>(w, k * n), n, new ReadOnlySpan<float>(dy, k), new Span<float>(dx, n), accumulate);
        else
            K.Gemm(false, batch, 1f, new ReadOnlySpan<float>(dy, (batch - 1) * lddy + k), lddy, panels, accumulate ? 1f : 0f,
                new Span<float>(dx, batch * n), n);
    }
}
