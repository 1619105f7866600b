using RnnSimd.Layers;

namespace RnnSimd.Onnx;

/// <summary>
/// Consecutive LSTM / GRU / RNN nodes of the same kind that feed each other the way torch.onnx.export stacks layers
/// (see <see cref="OnnxModel.ToNetwork"/>), run as one multi-layer <see cref="RecurrentNetwork"/>: one Forward call,
/// the layers' outputs passing through the network's own buffers instead of four graph tensors per layer boundary.
/// Inputs: X, sequence_lens, then each layer's initial_h, then each layer's initial_c (-1 where absent: zeros).
/// Outputs: the last layer's Y (T, D, B, H), then each layer's Y_h, then each layer's Y_c (-1 where unused).
/// Bitwise what the nodes give one by one (the same kernels on the same data; tested).
/// </summary>
internal sealed class StackOp : OnnxOp
{
    private readonly RecurrentNetwork _net;
    private readonly int _layers, _d, _h, _i;
    private readonly bool _lstm;

    private sealed class State
    {
        public SequenceWorkspace Ws = null!;
        public float[] Y = [], H0 = [], C0 = [], HN = [], CN = [];
        public int[] Lengths = [];
        public int T, B;
    }

    public StackOp(RecurrentNetwork net, OnnxNode last, int layers)
    {
        _net = net;
        _layers = layers;
        var o = net.Options;
        (_d, _h, _i, _lstm) = (o.Directions, o.HiddenSize, o.InputSize, o.Cell == CellType.Lstm);
        Node = new OnnxNode
        {
            Name = $"{(last.Name.Length > 0 ? last.Name : last.Outputs.FirstOrDefault(o => o.Length > 0) ?? "?")} with the {layers - 1} layer(s) below it", OpType = last.OpType, Inputs = last.Inputs,
            Outputs = last.Outputs, Attributes = last.Attributes,
        };
    }

    public RecurrentNetwork Network => _net;

    public override bool OutputIsFloat(int k, Func<int, bool> f) => true;

    private State S(OnnxSession s) => (State)(s.OpState[Index] ??= new State { Ws = _net.CreateInferenceWorkspace(1, 1) });

    public override void Plan(OnnxSession s)
    {
        var st = S(s);
        var x = V(s, 0);
        if (!x.IsFloat || x.Rank != 3 || x.Shape[2] != _i) throw Bad($"X {x.ShapeText} is not [seq_length, batch_size, input_size = {_i}]");
        long t = x.Shape[0], b = x.Shape[1];
        int LD = _layers * _d;
        if (t < 1 || b < 1 || t * b > int.MaxValue / Math.Max(_i, 2 * _d * _h)) throw Bad($"X {x.ShapeText}: sequence length and batch must be positive and not too large");
        int T = (int)t, B = (int)b;
        st.T = T; st.B = B;
        RecurrentOptions.CheckBudget(((decimal)T * B * (_i + _d * _h) + 4m * LD * B * _h) * sizeof(float), "model", $"{Where}'s buffers");
        st.Ws.EnsureCapacity(T, B);
        s.Grow(ref st.Y, T * B * _d * _h, Where);
        s.Grow(ref st.H0, LD * B * _h, Where); s.Grow(ref st.HN, LD * B * _h, Where);
        if (_lstm) { s.Grow(ref st.C0, LD * B * _h, Where); s.Grow(ref st.CN, LD * B * _h, Where); }
        for (int l = 0; l < _layers; l++)
        {
            CheckState(s, 2 + l, "initial_h", B);
            if (_lstm) CheckState(s, 2 + _layers + l, "initial_c", B);
        }
        if (Has(1))
        {
            var len = V(s, 1);
            if (len.IsFloat || len.Rank != 1 || len.Shape[0] != B) throw Bad($"sequence_lens {len.ShapeText} is not an integer [batch_size = {B}]");
            s.Grow(ref st.Lengths, B, Where);
        }
        if (Out[0] >= 0) O(s, 0).Resize([T, _d, B, _h], Where);
        for (int k = 1; k < Out.Length; k++)
            if (Out[k] >= 0) O(s, k).Resize([_d, B, _h], Where);
    }

    private void CheckState(OnnxSession s, int k, string name, int B)
    {
        if (!Has(k)) return;
        var v = V(s, k);
        if (!v.IsFloat || v.Rank != 3 || v.Shape[0] != _d || v.Shape[1] != B || v.Shape[2] != _h)
            throw Bad($"{name} of layer {(k - 2) % _layers} {v.ShapeText} is not [{_d}, {B}, {_h}]");
    }

    public override void Run(OnnxSession s)
    {
        var st = S(s);
        int T = st.T, B = st.B, D = _d, H = _h, L = _layers, slice = D * B * H;
        var h0 = st.H0.AsSpan(0, L * slice);
        var c0 = _lstm ? st.C0.AsSpan(0, L * slice) : [];
        for (int l = 0; l < L; l++)
        {
            if (Has(2 + l)) V(s, 2 + l).Floats.CopyTo(h0.Slice(l * slice, slice)); else h0.Slice(l * slice, slice).Clear();
            if (_lstm) { if (Has(2 + L + l)) V(s, 2 + L + l).Floats.CopyTo(c0.Slice(l * slice, slice)); else c0.Slice(l * slice, slice).Clear(); }
        }
        ReadOnlySpan<int> lengths = [];
        if (Has(1))
        {
            var len = V(s, 1).Ints;
            for (int b = 0; b < B; b++)
            {
                if (len[b] < 1 || len[b] > T) throw Bad($"sequence_lens[{b}] = {len[b]} is outside 1..{T}");
                st.Lengths[b] = (int)len[b];
            }
            lengths = st.Lengths.AsSpan(0, B);
        }
        var y = st.Y.AsSpan(0, T * B * D * H);
        var hN = st.HN.AsSpan(0, L * slice);
        var cN = _lstm ? st.CN.AsSpan(0, L * slice) : [];
        _net.Forward(V(s, 0).Floats, T, B, h0, c0, y, hN, cN, st.Ws, lengths);
        if (Out[0] >= 0)
        {
            var dst = O(s, 0).Floats; // (T, D, B, H) from (T, B, D, H)
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++)
                    for (int d = 0; d < D; d++)
                        y.Slice(((t * B + b) * D + d) * H, H).CopyTo(dst.Slice(((t * D + d) * B + b) * H, H));
        }
        for (int l = 0; l < L; l++)
        {
            if (Out[1 + l] >= 0) hN.Slice(l * slice, slice).CopyTo(O(s, 1 + l).Floats);
            if (_lstm && Out[1 + L + l] >= 0) cN.Slice(l * slice, slice).CopyTo(O(s, 1 + L + l).Floats);
        }
    }
}
