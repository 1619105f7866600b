using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// The state of B streams for <see cref="RecurrentNetwork.Step"/>: h (and c for LSTM) of every layer, plus the
/// scratch a step needs. One per stream (or group of B streams); the network's weights are shared read-only by any
/// number of states. Created by <see cref="RecurrentNetwork.CreateState"/>.
/// </summary>
public sealed unsafe class RecurrentState
{
    private readonly Arena _arena;
    internal readonly float*[] XH, C, Gx, Gh, Gates, TanhC, M, RH;

    internal RecurrentState(RecurrentNetwork owner, int batch)
    {
        Owner = owner;
        Batch = batch;
        var o = owner.Options;
        int L = o.NumLayers, H = o.HiddenSize, Hout = o.OutputHidden, GH = o.GateCount * H;
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
    }

    /// <summary>The network this state belongs to.</summary>
    public RecurrentNetwork Owner { get; }
    /// <summary>Number of streams stepped together.</summary>
    public int Batch { get; }

    /// <summary>h of <paramref name="layer"/>: (B, Hout). Writable, e.g. to set an initial state.</summary>
    public Span<float> Hidden(int layer)
    {
        var o = Owner.Options;
        CheckLayer(layer);
        return Batch == 1 ? new Span<float>(XH[layer] + o.LayerInput(layer), o.OutputHidden)
                          : new Span<float>(XH[layer], Batch * o.OutputHidden);
    }

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
