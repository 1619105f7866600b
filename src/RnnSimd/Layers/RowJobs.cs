using RnnSimd.Cells;
using RnnSimd.Kernels;

namespace RnnSimd.Layers;

/// <summary>Which fused cell kernel a <see cref="RowJob"/> runs over its rows.</summary>
internal enum RowKind : byte
{
    LstmForward, GruForwardLinearBeforeReset, GruForwardResetUpdate, GruForwardNew, RnnTanhForward, RnnReluForward,
    LstmBackward, GruBackward, GruBackwardReset, RnnTanhBackward, RnnReluBackward,
}

/// <summary>
/// One fused cell kernel over the B rows of a time step, with every stream's base pointer; row b of a (B, n) stream is
/// at base + b*n. Large jobs are split by rows across <see cref="Parallelism"/>'s workers (rows are independent, the
/// arithmetic per row is unchanged). In backward, rows past their sequence's end (lengths) are skipped or zeroed.
/// </summary>
internal unsafe struct RowJob
{
    public RowKind Kind;
    public KernelIsa Isa;
    public bool LinearBeforeReset;
    public int Batch, H, GH, Hout, T;
    public int* Lengths; // null: every row active
    // forward: A, B (B, GH) pre-activation halves; HPrev/HOut (B, Hout); CPrev/C/TanhC/RH (B, H); Gates (B, GH)
    public float* A, Bias, B, HPrev, CPrev, Gates, C, TanhC, HOut, RH; // Bias: (GH), the same for every row
    // backward: DH (B, Hout) dL/dh; DM (B, H); DC (B, H) carried dL/dc; DG, DB (B, GH); DHPrev (B, Hout); Bn (rows of stride GH); DRH (B, H)
    public float* DH, DM, DC, DG, DB, DHPrev, Bn, DRH;

    /// <summary>Rows times gate width below which the rows stay on one thread.</summary>
    private const int ParallelThreshold = 16 * 1024;

    public static void Run(ref RowJob job)
    {
        fixed (RowJob* p = &job)
        {
            if (job.Batch >= 2 && job.Batch * job.GH >= ParallelThreshold && Parallelism.TryRun(&Part, p, 2)) return;
            Part(p, 0, 1);
        }
    }

    private bool Active(int b) => Lengths is null || T < Lengths[b];

    private static void Part(void* arg, int part, int parts)
    {
        ref RowJob j = ref *(RowJob*)arg;
        int b0 = j.Batch * part / parts, b1 = j.Batch * (part + 1) / parts;
        int H = j.H, GH = j.GH, Hout = j.Hout;
        var isa = j.Isa;
        for (int b = b0; b < b1; b++)
        {
            switch (j.Kind)
            {
                case RowKind.LstmForward:
                {
                    var k = new LstmForward
                    {
                        A = j.A + b * GH, Bias = j.Bias, B = j.B + b * GH, CPrev = j.CPrev + b * H, Gates = j.Gates + b * GH,
                        C = j.C + b * H, TanhC = j.TanhC + b * H, H = j.HOut + b * H, Hd = (nuint)H,
                    };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.GruForwardLinearBeforeReset:
                {
                    var k = new GruForwardLinearBeforeReset
                    {
                        A = j.A + b * GH, Bias = j.Bias, B = j.B + b * GH, HPrev = j.HPrev + b * Hout, Gates = j.Gates + b * GH, H = j.HOut + b * Hout, Hd = (nuint)H,
                    };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.GruForwardResetUpdate:
                {
                    var k = new GruForwardResetUpdate
                    {
                        A = j.A + b * GH, Bias = j.Bias, B = j.B + b * GH, HPrev = j.HPrev + b * Hout, Gates = j.Gates + b * GH, RH = j.RH + b * H, Hd = (nuint)H,
                    };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.GruForwardNew:
                {
                    var k = new GruForwardNew
                    {
                        A = j.A + b * GH, Bias = j.Bias, B = j.B + b * GH, HPrev = j.HPrev + b * Hout, Gates = j.Gates + b * GH, H = j.HOut + b * Hout, Hd = (nuint)H,
                    };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.RnnTanhForward:
                {
                    var k = new RnnForward<TanhOp> { A = j.A + b * GH, Bias = j.Bias, B = j.B + b * GH, H = j.HOut + b * Hout };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.RnnReluForward:
                {
                    var k = new RnnForward<ReluOp> { A = j.A + b * GH, Bias = j.Bias, B = j.B + b * GH, H = j.HOut + b * Hout };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.LstmBackward:
                {
                    if (!j.Active(b)) { new Span<float>(j.DG + b * GH, GH).Clear(); break; }
                    var k = new LstmBackward
                    {
                        DM = j.DM + b * H, DCNext = j.DC + b * H, Gates = j.Gates + b * GH, CPrev = j.CPrev + b * H,
                        TanhC = j.TanhC + b * H, DG = j.DG + b * GH, DCPrev = j.DC + b * H, Hd = (nuint)H,
                    };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.GruBackward:
                {
                    if (!j.Active(b))
                    {
                        new Span<float>(j.DG + b * GH, GH).Clear();
                        new Span<float>(j.DB + b * GH, GH).Clear();
                        new ReadOnlySpan<float>(j.DH + b * Hout, Hout).CopyTo(new Span<float>(j.DHPrev + b * Hout, Hout));
                        break;
                    }
                    var k = new GruBackward
                    {
                        DH = j.DH + b * Hout, Gates = j.Gates + b * GH, HPrev = j.HPrev + b * Hout, Bn = j.Bn + b * GH,
                        DA = j.DG + b * GH, DB = j.DB + b * GH, DHPrev = j.DHPrev + b * Hout, Hd = (nuint)H, LinearBeforeReset = j.LinearBeforeReset,
                    };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.GruBackwardReset:
                {
                    if (!j.Active(b)) break;
                    var k = new GruBackwardReset
                    {
                        DRH = j.DRH + b * H, Gates = j.Gates + b * GH, HPrev = j.HPrev + b * Hout, DA = j.DG + b * GH, DB = j.DB + b * GH, DHPrev = j.DHPrev + b * Hout,
                    };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.RnnTanhBackward:
                {
                    if (!j.Active(b)) { new Span<float>(j.DG + b * GH, GH).Clear(); break; }
                    var k = new RnnBackward<TanhOp> { DH = j.DH + b * Hout, H = j.HOut + b * Hout, DG = j.DG + b * GH };
                    Lanes.For(isa, H, ref k);
                    break;
                }
                case RowKind.RnnReluBackward:
                {
                    if (!j.Active(b)) { new Span<float>(j.DG + b * GH, GH).Clear(); break; }
                    var k = new RnnBackward<ReluOp> { DH = j.DH + b * Hout, H = j.HOut + b * Hout, DG = j.DG + b * GH };
                    Lanes.For(isa, H, ref k);
                    break;
                }
            }
        }
    }
}
