using RnnSimd.Kernels;

namespace RnnSimd.Layers;

/// <summary>The products of a batch-1 streaming step (<see cref="LayerWeights.StreamProduct"/>).</summary>
internal enum StreamProductKind
{
    /// <summary>[W_ih | W_hh] rows [0, Split) times [x | h].</summary>
    Step = 0,
    /// <summary>W_ih rows [Split, GH) times x.</summary>
    StepRest = 1,
    /// <summary>W_hh rows [Split, GH) times h (or r * h).</summary>
    Rest = 2,
    /// <summary>W_hr times m.</summary>
    Whr = 3,
}

internal sealed unsafe partial class LayerWeights
{
    /// <summary>How the weight matrices are stored. Below float32, only the streaming step's products exist (the <c>*8</c> or <c>*16</c> twins).</summary>
    public readonly Precision Precision;
    public PackedInt8GemvMatrix? Step8, StepRest8, Rest8, Whr8;
    public PackedBf16GemvMatrix? Step16, StepRest16, Rest16, Whr16;

    /// <summary>
    /// y (+)= W x for one row by the network's precision, W the streaming product <paramref name="kind"/>. x: [x | h]
    /// (Step), x (StepRest), h or r * h (Rest), m (Whr). int8 quantizes x per segment into <paramref name="q"/>'s
    /// workspace first (so q must be the caller's; the weights are only read).
    /// </summary>
    public void StreamProduct(QuantScratch? q, StreamProductKind kind, float* x, float* y, bool accumulate)
    {
        switch (Precision)
        {
            case Precision.Float32:
            {
                var t = kind switch { StreamProductKind.Step => StepV, StreamProductKind.StepRest => StepRestV!, StreamProductKind.Rest => RestV!, _ => WhrV! };
                Gemv.PackedTiles(K.Isa, t, 0, t.Tiles, x, y, accumulate);
                return;
            }
            case Precision.BFloat16:
            {
                var t = kind switch { StreamProductKind.Step => Step16, StreamProductKind.StepRest => StepRest16, StreamProductKind.Rest => Rest16, _ => Whr16 };
                GemvBf16.PackedTiles(K.Isa, t!, 0, t!.Tiles, x, y, accumulate);
                return;
            }
            default:
            {
                var t = kind switch { StreamProductKind.Step => Step8, StreamProductKind.StepRest => StepRest8, StreamProductKind.Rest => Rest8, _ => Whr8 };
                var a = q!.Acts[(int)kind]!;
                for (int g = 0; g < a.SegmentCount; g++) GemvInt8.QuantizeSegment(K.Isa, x + a.Layout.Start(g), g, a);
                GemvInt8.PackedTiles(K.Int8Path, t!, a, null, 0, t!.Tiles, y, accumulate);
                return;
            }
        }
    }

    /// <summary>GRU's n-gate recurrent product y (+)= (h or r * h) W_hn^T: batch-1 streaming product below float32, else <see cref="Mul"/>.</summary>
    public void MulRest(in Cells.CellStep s, float* x, float* y, int ldy, bool accumulate)
    {
        if (Precision != Precision.Float32) StreamProduct(s.Q, StreamProductKind.Rest, x, y, accumulate);
        else Mul(s, x, RestV!, RestT!, y, ldy, accumulate);
    }

    /// <summary>Packs the reduced-precision twins from their tensors (validated against this layer's shapes).</summary>
    private void PackReduced(Func<string, QuantizedTensor> get, string sfx)
    {
        var wih = Get(get, "weight_ih" + sfx, GH, In);
        var whh = Get(get, "weight_hh" + sfx, GH, Hout);
        var whr = P > 0 ? Get(get, "weight_hr" + sfx, P, H) : null;
        int rest = GH - Split, cols = In + Hout;
        if (Precision == Precision.Int8)
        {
            var q = new sbyte[Split * cols];
            var sc = new float[Split * 2];
            for (int r = 0; r < Split; r++)
            {
                wih.Codes.Slice(r * In, In).CopyTo(q.AsSpan(r * cols, In));
                whh.Codes.Slice(r * Hout, Hout).CopyTo(q.AsSpan(r * cols + In, Hout));
                sc[2 * r] = wih.Scales[r];
                sc[2 * r + 1] = whh.Scales[r];
            }
            Step8 = PackedInt8GemvMatrix.FromQuantized(Split, cols, q, cols, sc, [0, In, cols]);
            if (rest > 0)
            {
                StepRest8 = PackedInt8GemvMatrix.FromQuantized(rest, In, wih.Codes[(Split * In)..], In, wih.Scales[Split..]);
                Rest8 = PackedInt8GemvMatrix.FromQuantized(rest, Hout, whh.Codes[(Split * Hout)..], Hout, whh.Scales[Split..]);
            }
            if (whr != null) Whr8 = PackedInt8GemvMatrix.FromQuantized(P, H, whr.Codes, H, whr.Scales);
        }
        else
        {
            var b = new ushort[Split * cols];
            for (int r = 0; r < Split; r++)
            {
                wih.Bf16.Slice(r * In, In).CopyTo(b.AsSpan(r * cols, In));
                whh.Bf16.Slice(r * Hout, Hout).CopyTo(b.AsSpan(r * cols + In, Hout));
            }
            Step16 = PackedBf16GemvMatrix.FromBf16(Split, cols, b, cols);
            if (rest > 0)
            {
                StepRest16 = PackedBf16GemvMatrix.FromBf16(rest, In, wih.Bf16[(Split * In)..], In);
                Rest16 = PackedBf16GemvMatrix.FromBf16(rest, Hout, whh.Bf16[(Split * Hout)..], Hout);
            }
            if (whr != null) Whr16 = PackedBf16GemvMatrix.FromBf16(P, H, whr.Bf16, H);
        }
    }

    private QuantizedTensor Get(Func<string, QuantizedTensor> get, string name, int rows, int cols)
    {
        var t = get(name) ?? throw new ArgumentException($"no {Precision.Name()} tensor '{name}' (expected ({rows}, {cols})).");
        if (t.Precision != Precision || t.Rows != rows || t.Cols != cols)
            throw new ArgumentException($"tensor '{name}' is {t.Precision.Name()} ({t.Rows}, {t.Cols}); expected {Precision.Name()} ({rows}, {cols}).");
        return t;
    }

    /// <summary>The stored form of this layer's weight matrices, read back from the packed twins (bitwise what they compute with).</summary>
    public IEnumerable<QuantizedTensor> ExportReduced()
    {
        string sfx = $"_l{Layer}" + (Direction == 1 ? "_reverse" : "");
        int rest = GH - Split;
        if (Precision == Precision.Int8)
        {
            var qi = new sbyte[GH * In]; var si = new float[GH];
            var qh = new sbyte[GH * Hout]; var sh = new float[GH];
            for (int r = 0; r < Split; r++)
            {
                for (int c = 0; c < In; c++) qi[r * In + c] = Step8!.Quantized(r, c);
                for (int c = 0; c < Hout; c++) qh[r * Hout + c] = Step8!.Quantized(r, In + c);
                si[r] = Step8!.Scale(r, 0); sh[r] = Step8.Scale(r, 1);
            }
            for (int r = 0; r < rest; r++)
            {
                for (int c = 0; c < In; c++) qi[(Split + r) * In + c] = StepRest8!.Quantized(r, c);
                for (int c = 0; c < Hout; c++) qh[(Split + r) * Hout + c] = Rest8!.Quantized(r, c);
                si[Split + r] = StepRest8!.Scale(r, 0); sh[Split + r] = Rest8!.Scale(r, 0);
            }
            yield return QuantizedTensor.FromInt8("weight_ih" + sfx, GH, In, qi, si);
            yield return QuantizedTensor.FromInt8("weight_hh" + sfx, GH, Hout, qh, sh);
            if (P > 0)
            {
                var qr = new sbyte[P * H]; var sr = new float[P];
                for (int r = 0; r < P; r++) { for (int c = 0; c < H; c++) qr[r * H + c] = Whr8!.Quantized(r, c); sr[r] = Whr8!.Scale(r, 0); }
                yield return QuantizedTensor.FromInt8("weight_hr" + sfx, P, H, qr, sr);
            }
        }
        else
        {
            var bi = new ushort[GH * In];
            var bh = new ushort[GH * Hout];
            for (int r = 0; r < Split; r++)
            {
                for (int c = 0; c < In; c++) bi[r * In + c] = Step16!.Bf16(r, c);
                for (int c = 0; c < Hout; c++) bh[r * Hout + c] = Step16!.Bf16(r, In + c);
            }
            for (int r = 0; r < rest; r++)
            {
                for (int c = 0; c < In; c++) bi[(Split + r) * In + c] = StepRest16!.Bf16(r, c);
                for (int c = 0; c < Hout; c++) bh[(Split + r) * Hout + c] = Rest16!.Bf16(r, c);
            }
            yield return QuantizedTensor.FromBf16("weight_ih" + sfx, GH, In, bi);
            yield return QuantizedTensor.FromBf16("weight_hh" + sfx, GH, Hout, bh);
            if (P > 0)
            {
                var br = new ushort[P * H];
                for (int r = 0; r < P; r++) for (int c = 0; c < H; c++) br[r * H + c] = Whr16!.Bf16(r, c);
                yield return QuantizedTensor.FromBf16("weight_hr" + sfx, P, H, br);
            }
        }
    }

    /// <summary>Bytes of the packed weights a step reads (the twins below float32; the GEMV tiles at float32).</summary>
    public long StepWeightBytes => Precision switch
    {
        Precision.Int8 => Step8!.Bytes + (StepRest8?.Bytes ?? 0) + (Rest8?.Bytes ?? 0) + (Whr8?.Bytes ?? 0),
        Precision.BFloat16 => Step16!.Bytes + (StepRest16?.Bytes ?? 0) + (Rest16?.Bytes ?? 0) + (Whr16?.Bytes ?? 0),
        _ => 4L * ((long)GH * (In + Hout) + (long)P * H),
    };
}

/// <summary>
/// What a reduced-precision step of one layer writes besides the state: the int8 activation workspaces of each streaming
/// product, and one row's step buffers for the paths that step rows one at a time (batched states, multi-stream ticks,
/// sequences). Belongs to one state, stepper or workspace: used by one call at a time.
/// </summary>
internal sealed unsafe class QuantScratch
{
    public readonly Int8Activations?[] Acts = new Int8Activations?[4];
    private readonly float[] _buffer;
    public readonly float* XH, C, Gx, Gh, Gates, TanhC, M, RH;
    private readonly int _in;

    public QuantScratch(LayerWeights w)
    {
        if (w.Precision == Precision.Int8)
        {
            Acts[0] = new Int8Activations(w.Step8!);
            if (w.StepRest8 != null) { Acts[1] = new Int8Activations(w.StepRest8); Acts[2] = new Int8Activations(w.Rest8!); }
            if (w.Whr8 != null) Acts[3] = new Int8Activations(w.Whr8);
        }
        _in = w.In;
        int xh = Pad(w.In + w.Hout), h = Pad(w.H), gh = Pad(w.GH);
        _buffer = GC.AllocateArray<float>(xh + 4 * h + 3 * gh + 16, pinned: true);
        float* p = (float*)(((nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _buffer[0]) + 63) & ~(nint)63);
        XH = p; p += xh;
        C = p; p += h; TanhC = p; p += h; M = p; p += h; RH = p; p += h;
        Gx = p; p += gh; Gh = p; p += gh; Gates = p;
    }

    private static int Pad(int n) => (n + 15) / 16 * 16;

    /// <summary>The step buffers of one row stepped in this scratch: [x | h] in <see cref="XH"/> (h updated in place), c in <see cref="C"/>.</summary>
    public Cells.CellStep Row() => new()
    {
        Batch = 1, Gx = Gx, HNew = XH + _in, CPrev = C, CNew = C, Gates = Gates, Gh = Gh, TanhC = TanhC, M = M, RH = RH, Q = this,
    };
}
