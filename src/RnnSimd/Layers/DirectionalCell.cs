using RnnSimd.Kernels;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// One (layer, direction) of a network: pointers to its parameters and gradients in the arenas, pre-summed biases,
/// and its weights packed for the kernels (GEMM panels, GEMV tiles), refreshed lazily when the parameters change.
/// </summary>
internal sealed unsafe class DirectionalCell
{
    public readonly int Layer, Direction, In, H, Hout, P, GH;
    public readonly CellType Cell;
    public readonly bool Bias, LinearBeforeReset;
    public readonly float* Wih, Whh, Bih, Bhh, Whr;     // parameters: (GH, In), (GH, Hout), (GH), (GH), (P, H)
    public readonly float* dWih, dWhh, dBih, dBhh, dWhr; // gradients, same shapes
    public readonly string Suffix;

    // Pre-summed biases: LSTM/RNN b_ih + b_hh (GH); GRU [b_ir + b_hr, b_iz + b_hz, b_in] (3H) and b_hn (H).
    public readonly float[] BiasSum, BiasHn;
    public readonly float* BiasSumP, BiasHnP;
    // GH zeros: the recurrent half of a batch-1 streaming step, whose single GEMV already covers x and h.
    public readonly float* ZerosP;
    private readonly float[] _zeros;

    private readonly KernelSet _k;
    private int _gemmVersion = -1, _gemvVersion = -1, _stepVersion = -1, _backVersion = -1;

    // GEMM operands (op(B) packed once): forward X W^T, backward dY W.
    public PackedGemmOperand? WihT, WhhT, WhrT, WhhN, WhrN; // LSTM/RNN recurrent; GRU uses the split below
    public PackedGemmOperand? WhrzT, WhnT, WhrzN, WhnN;     // GRU: rows [0, 2H) and [2H, 3H) of W_hh
    // GEMV tiles for batch 1.
    public PackedGemvMatrix? WhhV, WhrV, WhrzV, WhnV;
    // Streaming step at batch 1: [W_ih | W_hh] (LSTM/RNN), [W_ir W_hr; W_iz W_hz] and W_in (GRU).
    public PackedGemvMatrix? StepV, StepRzV, WinV;

    public DirectionalCell(RecurrentOptions o, int layer, int direction, Arena parameters, Arena gradients, KernelSet kernels)
    {
        Layer = layer; Direction = direction; Cell = o.Cell; Bias = o.Bias; LinearBeforeReset = o.GruLinearBeforeReset;
        In = o.LayerInput(layer); H = o.HiddenSize; Hout = o.OutputHidden; P = o.ProjSize; GH = o.GateCount * H;
        _k = kernels;
        Suffix = $"_l{layer}" + (direction == 1 ? "_reverse" : "");
        Wih = parameters.Pointer("weight_ih" + Suffix); dWih = gradients.Pointer("weight_ih" + Suffix);
        Whh = parameters.Pointer("weight_hh" + Suffix); dWhh = gradients.Pointer("weight_hh" + Suffix);
        if (Bias)
        {
            Bih = parameters.Pointer("bias_ih" + Suffix); dBih = gradients.Pointer("bias_ih" + Suffix);
            Bhh = parameters.Pointer("bias_hh" + Suffix); dBhh = gradients.Pointer("bias_hh" + Suffix);
        }
        if (P > 0) { Whr = parameters.Pointer("weight_hr" + Suffix); dWhr = gradients.Pointer("weight_hr" + Suffix); }
        BiasSum = GC.AllocateArray<float>(GH, pinned: true);
        BiasHn = GC.AllocateArray<float>(H, pinned: true);
        BiasSumP = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref BiasSum[0]);
        BiasHnP = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref BiasHn[0]);
        _zeros = GC.AllocateArray<float>(GH, pinned: true);
        ZerosP = (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _zeros[0]);
    }

    private static ReadOnlySpan<float> S(float* p, int n) => new(p, n);

    /// <summary>Refreshes the pre-summed biases (cheap; done whenever parameters changed).</summary>
    public void RefreshBiases()
    {
        if (!Bias) return;
        int sumLen = Cell == CellType.Gru ? 2 * H : GH;
        for (int i = 0; i < sumLen; i++) BiasSum[i] = Bih[i] + Bhh[i];
        if (Cell == CellType.Gru)
            for (int i = 0; i < H; i++) { BiasSum[2 * H + i] = Bih[2 * H + i]; BiasHn[i] = Bhh[2 * H + i]; }
    }

    /// <summary>GEMM panels for the forward pass (input projection, recurrent product at batch &gt; 1, projection).</summary>
    public void EnsureGemm(int version)
    {
        if (_gemmVersion == version) return;
        WihT = Repack(WihT, true, In, GH, S(Wih, GH * In), In);
        if (Cell == CellType.Gru)
        {
            WhrzT = Repack(WhrzT, true, Hout, 2 * H, S(Whh, 2 * H * Hout), Hout);
            WhnT = Repack(WhnT, true, Hout, H, S(Whh + 2 * H * Hout, H * Hout), Hout);
        }
        else
        {
            WhhT = Repack(WhhT, true, Hout, GH, S(Whh, GH * Hout), Hout);
        }
        if (P > 0) WhrT = Repack(WhrT, true, H, P, S(Whr, P * H), H);
        _gemmVersion = version;
    }

    /// <summary>GEMV tiles of the recurrent weights for batch-1 sequences.</summary>
    public void EnsureGemv(int version)
    {
        if (_gemvVersion == version) return;
        if (Cell == CellType.Gru)
        {
            WhrzV = Tiles(WhrzV, 2 * H, Hout, S(Whh, 2 * H * Hout), Hout);
            WhnV = Tiles(WhnV, H, Hout, S(Whh + 2 * H * Hout, H * Hout), Hout);
        }
        else
        {
            WhhV = Tiles(WhhV, GH, Hout, S(Whh, GH * Hout), Hout);
        }
        if (P > 0) WhrV = Tiles(WhrV, P, H, S(Whr, P * H), H);
        _gemvVersion = version;
    }

    /// <summary>GEMV tiles for the batch-1 streaming step: input and recurrent weights side by side.</summary>
    public void EnsureStep(int version)
    {
        if (_stepVersion == version) return;
        if (Cell == CellType.Gru)
        {
            StepRzV ??= new PackedGemvMatrix(2 * H, In + Hout, new float[2 * H * (In + Hout)], In + Hout);
            StepRzV.Repack(S(Wih, 2 * H * In), In, 0, In);
            StepRzV.Repack(S(Whh, 2 * H * Hout), Hout, In, Hout);
            WinV = Tiles(WinV, H, In, S(Wih + 2 * H * In, H * In), In);
            WhnV = Tiles(WhnV, H, Hout, S(Whh + 2 * H * Hout, H * Hout), Hout);
        }
        else
        {
            StepV ??= new PackedGemvMatrix(GH, In + Hout, new float[GH * (In + Hout)], In + Hout);
            StepV.Repack(S(Wih, GH * In), In, 0, In);
            StepV.Repack(S(Whh, GH * Hout), Hout, In, Hout);
        }
        if (P > 0) WhrV = Tiles(WhrV, P, H, S(Whr, P * H), H);
        _stepVersion = version;
    }

    /// <summary>GEMM panels for the backward pass at batch &gt; 1: dY W (W as stored).</summary>
    public void EnsureBackward(int version)
    {
        if (_backVersion == version) return;
        if (Cell == CellType.Gru)
        {
            WhrzN = Repack(WhrzN, false, 2 * H, Hout, S(Whh, 2 * H * Hout), Hout);
            WhnN = Repack(WhnN, false, H, Hout, S(Whh + 2 * H * Hout, H * Hout), Hout);
        }
        else
        {
            WhhN = Repack(WhhN, false, GH, Hout, S(Whh, GH * Hout), Hout);
        }
        if (P > 0) WhrN = Repack(WhrN, false, P, H, S(Whr, P * H), H);
        _backVersion = version;
    }

    private PackedGemmOperand Repack(PackedGemmOperand? packed, bool transposed, int k, int n, ReadOnlySpan<float> b, int ldb)
    {
        if (packed is null) return _k.PackGemmOperand(transposed, k, n, b, ldb);
        packed.Repack(b, ldb);
        return packed;
    }

    private static PackedGemvMatrix Tiles(PackedGemvMatrix? packed, int rows, int cols, ReadOnlySpan<float> w, int ldw)
    {
        if (packed is null) return new PackedGemvMatrix(rows, cols, w, ldw);
        packed.Repack(w, ldw);
        return packed;
    }
}
