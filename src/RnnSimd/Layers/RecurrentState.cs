using RnnSimd.Cells;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// The state of B streams for <see cref="RecurrentNetwork.Step"/>: h (and c for LSTM) of every layer, plus the
/// scratch a step needs. One per stream (or group of B streams stepped together); the network's weights are shared
/// read-only by any number of states, on any number of threads. A state is used by one call at a time. Created by
/// <see cref="RecurrentNetwork.CreateState"/>; a batch-1 state can also be stepped by a <see cref="MultiStreamStepper"/>.
/// </summary>
public sealed unsafe class RecurrentState
{
    private readonly Arena _arena;
    internal readonly float*[] XH, C, Gx, Gh, Gates, TanhC, M, RH;
    internal long TickMark; // the multi-stream tick that last gathered this state (duplicate detection)
    internal readonly QuantScratch[]? Q; // a reduced-precision network's per-layer scratch

    internal RecurrentState(RecurrentNetwork owner, int batch)
    {
        Owner = owner;
        Batch = batch;
        var o = owner.Options;
        int L = o.NumLayers, H = o.HiddenSize, Hout = o.OutputHidden, GH = o.GateCount * H;
        // Per layer: [x | h], c, gx, gh, gates, tanh c, m, r*h (+ the batched step's rows), in floats.
        RecurrentOptions.CheckBudget(4m * batch * L * (Math.Max(o.InputSize, Hout) * 2m + Hout + 4m * H + 3m * GH), "batch",
            $"a state of {batch} streams");
        var list = new List<(string, int[])>();
        for (int l = 0; l < L; l++)
        {
            int In = o.LayerInput(l);
            // batch 1: [x | h] side by side for one GEMV with [W_ih | W_hh]; h lives in that buffer.
            list.Add(($"xh{l}", [batch * (In + Hout)]));
            list.Add(($"c{l}", [batch * H]));
            list.Add(($"gx{l}", [batch * GH]));
            list.Add(($"gh{l}", [batch * GH]));
            list.Add(($"gates{l}", [batch * GH]));
            list.Add(($"tanhc{l}", [batch * H]));
            list.Add(($"m{l}", [batch * H]));
            list.Add(($"rh{l}", [batch * H]));
        }
        _arena = new Arena(list);
        XH = new float*[L]; C = new float*[L]; Gx = new float*[L]; Gh = new float*[L];
        Gates = new float*[L]; TanhC = new float*[L]; M = new float*[L]; RH = new float*[L];
        for (int l = 0; l < L; l++)
        {
            XH[l] = _arena.Pointer($"xh{l}"); C[l] = _arena.Pointer($"c{l}"); Gx[l] = _arena.Pointer($"gx{l}");
            Gh[l] = _arena.Pointer($"gh{l}"); Gates[l] = _arena.Pointer($"gates{l}"); TanhC[l] = _arena.Pointer($"tanhc{l}");
            M[l] = _arena.Pointer($"m{l}"); RH[l] = _arena.Pointer($"rh{l}");
        }
        if (owner.Precision != Precision.Float32) Q = owner.CreateQuantScratch();
    }

    /// <summary>The network this state belongs to.</summary>
    public RecurrentNetwork Owner { get; }
    /// <summary>Number of streams stepped together.</summary>
    public int Batch { get; }

    /// <summary>The step buffers of <paramref name="layer"/> (h pointers are set by the caller).</summary>
    internal CellStep StepBuffers(int layer) => new()
    {
        Batch = Batch, Gx = Gx[layer], CPrev = C[layer], CNew = C[layer], Gates = Gates[layer], Gh = Gh[layer],
        TanhC = TanhC[layer], M = M[layer], RH = RH[layer], Q = Q?[layer],
    };

    /// <summary>h of <paramref name="layer"/>: (B, Hout). Writable, e.g. to set an initial state.</summary>
    public Span<float> Hidden(int layer)
    {
        var o = Owner.Options;
        CheckLayer(layer);
        return new Span<float>(HiddenPointer(layer), Batch * o.OutputHidden);
    }

    /// <summary>Where h of a layer lives: after x in the [x | h] buffer at batch 1, at its start otherwise.</summary>
    internal float* HiddenPointer(int layer) => Batch == 1 ? XH[layer] + Owner.Options.LayerInput(layer) : XH[layer];

    /// <summary>c of <paramref name="layer"/> (LSTM): (B, H). Writable.</summary>
    public Span<float> Cell(int layer)
    {
        CheckLayer(layer);
        return new Span<float>(C[layer], Batch * Owner.Options.HiddenSize);
    }

    /// <summary>Sets every h and c to zero.</summary>
    public void Reset()
    {
        for (int l = 0; l < Owner.Options.NumLayers; l++) { Hidden(l).Clear(); Cell(l).Clear(); }
    }

    private void CheckLayer(int layer)
    {
        if ((uint)layer >= (uint)Owner.Options.NumLayers)
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"layer must be in 0..{Owner.Options.NumLayers - 1}.");
    }
}
