using RnnSimd.Layers;

namespace RnnSimd.Onnx;

/// <summary>
/// An ONNX LSTM, GRU or RNN node run by one single-layer <see cref="RecurrentNetwork"/> (D = 1 or 2 directions), built
/// once at load from the node's W, R, B initializers with ONNX's gate blocks reordered to RnnSimd's (PyTorch's):
/// LSTM i,o,f,c to i,f,g,o; GRU z,r,h to r,z,n. ONNX's B = [Wb | Rb] is PyTorch's (b_ih, b_hh). direction = "reverse"
/// is a <see cref="RecurrentOptions.Reverse"/> network. Layout 1 (batch first) is transposed to and from the
/// network's (T, B, .) layout in session buffers. Outputs: Y (T, D, B, H) or (B, T, D, H); Y_h, Y_c (D, B, H) or (B, D, H).
/// </summary>
internal sealed class RecurrentOp : OnnxOp
{
    // PyTorch gate block j comes from ONNX block Src[j].
    private static readonly int[] LstmSrc = [0, 2, 3, 1], GruSrc = [1, 0, 2], RnnSrc = [0];
    // RnnSimd's peephole row j (p_i, p_f, p_o) comes from ONNX's P block PeepSrc[j] (P is [p_i, p_o, p_f]).
    private static readonly int[] PeepSrc = [0, 2, 1];

    /// <summary>
    /// The network, when W, R, B (and P) are initializers or constants and both directions have the same activations;
    /// else null (see <see cref="Parts"/>).
    /// </summary>
    public RecurrentNetwork? Network => _static is [var only] ? only : null;

    /// <summary>
    /// The static networks: one for the node, or, for a bidirectional node whose directions have different
    /// activations, a forward and a reverse network (directions run apart, outputs interleaved); null when the weights
    /// are graph inputs (each session then builds its own).
    /// </summary>
    public RecurrentNetwork[]? Parts => _static;

    private RecurrentNetwork[]? _static;

    /// <summary>Whether this node runs inside a fused <see cref="StackOp"/> (its own network was then released).</summary>
    public bool Fused { get; private set; }

    /// <summary>Drops this node's network once a <see cref="StackOp"/> holds its weights, so a model keeps one copy.</summary>
    public void ReleaseIntoStack()
    {
        _static = null;
        Fused = true;
    }
    private int _d, _layout, _gates;
    private bool _lstm, _reverse, _lbr, _coupled, _split;
    private CellType _cell;
    private float _clip;
    private (GateActivation F, GateActivation G, GateActivation H)[] _acts = [];
    private string _op = "";

    /// <summary>Per-session buffers (from <see cref="OnnxSession.OpState"/>).</summary>
    private sealed class State
    {
        public RecurrentNetwork[] Nets = [];
        public SequenceWorkspace[] Ws = [];
        public float[] X = [], Y = [], H0 = [], C0 = [], HN = [], CN = [];
        public int[] Lengths = [];
        public int T, B, H, I; // H, I: the network's sizes
    }

    public override bool OutputIsFloat(int k, Func<int, bool> f) => true;

    /// <summary>0: (T, B, .); 1: batch first.</summary>
    public int Layout => _layout;

    public override void Check(long opset) { }

    /// <summary>
    /// Validates the node's attributes against what RnnSimd runs and, when its weights are static, builds its network(s).
    /// Weights given as graph inputs (as ONNX's own node tests do) are loaded into per-session networks at every run.
    /// </summary>
    public void Build(Func<int, OnnxValue?> constant)
    {
        var n = Node;
        string op = _op = n.OpType;
        _lstm = op == "LSTM";
        _gates = _lstm ? 4 : op == "GRU" ? 3 : 1;
        Attr.OnlyKnown(n, "activation_alpha", "activation_beta", "activations", "clip", "direction", "hidden_size", "input_forget", "layout",
            "linear_before_reset");
        if (n.Attributes.ContainsKey("input_forget") && !_lstm) throw Unsupported("attribute 'input_forget'");
        if (n.Attributes.ContainsKey("linear_before_reset") && op != "GRU") throw Unsupported("attribute 'linear_before_reset'");
        if (n.Attributes.ContainsKey("clip"))
        {
            _clip = Attr.Float(n, "clip", 0);
            if (!(_clip > 0) || !float.IsFinite(_clip)) throw Bad($"clip = {_clip} is not a positive finite number");
        }
        long inputForget = Attr.Int(n, "input_forget", 0);
        if (inputForget is not (0 or 1)) throw Unsupported($"input_forget = {inputForget}");
        _coupled = inputForget == 1;
        string direction = Attr.String(n, "direction") ?? "forward";
        _d = direction switch
        {
            "forward" or "reverse" => 1,
            "bidirectional" => 2,
            _ => throw Unsupported($"direction = '{direction}'"),
        };
        long layout = Attr.Int(n, "layout", 0);
        if (layout is not (0 or 1)) throw Unsupported($"layout = {layout}");
        _layout = (int)layout;
        long lbr = Attr.Int(n, "linear_before_reset", 0);
        if (lbr is not (0 or 1)) throw Unsupported($"linear_before_reset = {lbr}");
        _lbr = lbr == 1;
        _reverse = direction == "reverse";
        _acts = ReadActivations();
        _split = _d == 2 && _acts[0] != _acts[1];
        _cell = op switch
        {
            "LSTM" => CellType.Lstm,
            "GRU" => CellType.Gru,
            _ => _acts[0].F == GateActivation.Relu ? CellType.RnnRelu : CellType.RnnTanh,
        };

        int maxInputs = _lstm ? 8 : 6;
        if (In.Length > maxInputs) throw Bad($"has {In.Length} inputs, at most {maxInputs}");
        if (!Has(0) || !Has(1) || !Has(2)) throw Bad("needs X, W and R");
        if (Node.Outputs.Length > (_lstm ? 3 : 2)) throw Bad($"has {Node.Outputs.Length} outputs, at most {(_lstm ? 3 : 2)}");
        if (!new[] { 1, 2, 3, 7 }.Where(Has).All(k => constant(In[k]) is not null)) return; // weights are graph inputs: built per session
        _static = CreateNetworks(constant(In[1])!, constant(In[2])!, Has(3) ? constant(In[3]) : null, _lstm && Has(7) ? constant(In[7]) : null);
    }

    /// <summary>ONNX's activations per direction (f, g, h), defaults filled in; names case-insensitive.</summary>
    private (GateActivation F, GateActivation G, GateActivation H)[] ReadActivations()
    {
        int per = _lstm ? 3 : _op == "GRU" ? 2 : 1;
        var names = Attr.Strings(Node, "activations") ?? [];
        if (names.Length != 0 && names.Length != per * _d)
            throw Bad($"activations has {names.Length} entries, expected {per} per direction ({per * _d})");
        GateActivation Parse(string name) => name.ToLowerInvariant() switch
        {
            "sigmoid" => GateActivation.Sigmoid,
            "tanh" => GateActivation.Tanh,
            "relu" => GateActivation.Relu,
            _ => throw Unsupported($"activation '{name}' (Sigmoid, Tanh and Relu are supported)"),
        };
        var result = new (GateActivation, GateActivation, GateActivation)[_d];
        for (int d = 0; d < _d; d++)
        {
            GateActivation At(int k, GateActivation dflt) => names.Length == 0 || k >= per ? dflt : Parse(names[d * per + k]);
            result[d] = (At(0, _gates == 1 ? GateActivation.Tanh : GateActivation.Sigmoid), At(1, GateActivation.Tanh), At(2, GateActivation.Tanh));
        }
        return result;
    }

    /// <summary>Checks the weights' shapes and builds the network(s) holding them (ONNX gate blocks reordered).</summary>
    private RecurrentNetwork[] CreateNetworks(OnnxValue w, OnnxValue r, OnnxValue? b, OnnxValue? p)
    {
        int gates = _gates;
        CheckFloat(w, "W"); CheckFloat(r, "R");
        if (w.Rank != 3 || w.Shape[0] != _d || w.Shape[1] % gates != 0 || w.Shape[1] == 0 || w.Shape[2] == 0 || w.Shape[2] > int.MaxValue)
            throw Bad($"W {w.ShapeText} is not [num_directions = {_d}, {gates}*hidden_size, input_size]");
        int hid = (int)(w.Shape[1] / gates), inp = (int)w.Shape[2];
        long hs = Attr.Int(Node, "hidden_size", hid);
        if (hs != hid) throw Bad($"hidden_size = {hs} but W {w.ShapeText} holds {gates} x {hid} rows");
        if (r.Rank != 3 || r.Shape[0] != _d || r.Shape[1] != gates * hid || r.Shape[2] != hid)
            throw Bad($"R {r.ShapeText} is not [{_d}, {gates * hid}, {hid}]");
        if (b is not null)
        {
            CheckFloat(b, "B");
            if (b.Rank != 2 || b.Shape[0] != _d || b.Shape[1] != 2 * gates * hid) throw Bad($"B {b.ShapeText} is not [{_d}, {2 * gates * hid}]");
        }
        if (p is not null)
        {
            CheckFloat(p, "P");
            if (p.Rank != 2 || p.Shape[0] != _d || p.Shape[1] != 3 * hid) throw Bad($"P {p.ShapeText} is not [{_d}, {3 * hid}]");
        }
        // Static all-zero peepholes are no peepholes (the plain LSTM's faster kernels); P given as a graph input may change per run.
        bool peepholes = p is not null && (!p.Static || p.Floats.IndexOfAnyExcept(0f) >= 0);
        var nets = new RecurrentNetwork[_split ? 2 : 1];
        for (int k = 0; k < nets.Length; k++)
        {
            var (f, g, h) = _acts[k];
            GateActivation defaultF = _cell == CellType.RnnRelu ? GateActivation.Relu : _gates == 1 ? GateActivation.Tanh : GateActivation.Sigmoid;
            var o = new RecurrentOptions(_cell, inp, hid, 1, Bidirectional: _d == 2 && !_split, Bias: b is not null,
                GruLinearBeforeReset: _cell != CellType.Gru || _lbr, // the flag only means something for GRU: PyTorch's default elsewhere
                Reverse: _reverse || (_split && k == 1), Peepholes: peepholes, CoupledInputForget: _coupled,
                ActivationF: f == defaultF ? null : f, ActivationG: _gates > 1 && g != GateActivation.Tanh ? g : null,
                ActivationH: _lstm && h != GateActivation.Tanh ? h : null, Clip: _clip);
            RecurrentOptions.CheckBudget(o.NetworkBytes(), "model", $"{Where}'s network");
            nets[k] = new RecurrentNetwork(o);
            LoadWeights(nets[k], w, r, b, peepholes ? p : null, firstDirection: k);
        }
        return nets;
    }

    /// <summary>Loads ONNX directions [firstDirection, firstDirection + D of the network) into <paramref name="net"/>.</summary>
    private void LoadWeights(RecurrentNetwork net, OnnxValue w, OnnxValue r, OnnxValue? b, OnnxValue? p, int firstDirection)
    {
        int hid = net.Options.HiddenSize, inp = net.Options.InputSize;
        int[] src = _lstm ? LstmSrc : _op == "GRU" ? GruSrc : RnnSrc;
        int gh = _gates * hid;
        for (int k = 0; k < net.Options.Directions; k++)
        {
            int d = firstDirection + k;
            string sfx = "_l0" + (k == 1 ? "_reverse" : "");
            Reorder(w.Floats.Slice(d * gh * inp, gh * inp), net.Parameters["weight_ih" + sfx], src, hid * inp);
            Reorder(r.Floats.Slice(d * gh * hid, gh * hid), net.Parameters["weight_hh" + sfx], src, hid * hid);
            if (b is not null)
            {
                Reorder(b.Floats.Slice(d * 2 * gh, gh), net.Parameters["bias_ih" + sfx], src, hid);
                Reorder(b.Floats.Slice(d * 2 * gh + gh, gh), net.Parameters["bias_hh" + sfx], src, hid);
            }
            if (p is not null) Reorder(p.Floats.Slice(d * 3 * hid, 3 * hid), net.Parameters["weight_peep" + sfx], PeepSrc, hid);
        }
        net.ParametersChanged();
    }

    private void CheckFloat(OnnxValue v, string name)
    {
        if (!v.IsFloat) throw Bad($"{name} is not a float tensor");
    }

    private static void Reorder(ReadOnlySpan<float> onnx, Span<float> torch, int[] src, int block)
    {
        for (int j = 0; j < src.Length; j++) onnx.Slice(src[j] * block, block).CopyTo(torch.Slice(j * block, block));
    }

    private State S(OnnxSession s)
    {
        if (s.OpState[Index] is State st) return st;
        st = new State();
        if (_static is not null) Use(st, _static);
        s.OpState[Index] = st;
        return st;
    }

    public override void Plan(OnnxSession s)
    {
        var st = S(s);
        if (_static is null) Use(st, CreateNetworks(V(s, 1), V(s, 2), Has(3) ? V(s, 3) : null, _lstm && Has(7) ? V(s, 7) : null));
        int hid = st.H, inp = st.I;
        var x = V(s, 0);
        if (!x.IsFloat || x.Rank != 3 || x.Shape[2] != inp)
            throw Bad($"X {x.ShapeText} is not [{(_layout == 0 ? "seq_length, batch_size" : "batch_size, seq_length")}, input_size = {inp}]");
        long t = _layout == 0 ? x.Shape[0] : x.Shape[1], b = _layout == 0 ? x.Shape[1] : x.Shape[0];
        if (t < 1 || b < 1 || t * b > int.MaxValue / Math.Max(inp, 2 * _d * hid)) throw Bad($"X {x.ShapeText}: sequence length and batch must be positive and not too large");
        int T = (int)t, B = (int)b;
        st.T = T; st.B = B;
        RecurrentOptions.CheckBudget(((decimal)T * B * (inp + _d * hid) + 4m * _d * B * hid) * sizeof(float), "model", $"{Where}'s buffers");
        foreach (var ws in st.Ws) ws.EnsureCapacity(T, B);
        s.Grow(ref st.Y, T * B * _d * hid, Where);
        s.Grow(ref st.HN, _d * B * hid, Where);
        s.Grow(ref st.CN, _lstm ? _d * B * hid : 0, Where);
        if (_layout == 1) s.Grow(ref st.X, T * B * inp, Where);
        CheckState(s, 5, "initial_h", B, hid);
        if (_lstm) CheckState(s, 6, "initial_c", B, hid);
        if (_layout == 1) { s.Grow(ref st.H0, _d * B * hid, Where); s.Grow(ref st.C0, _lstm ? _d * B * hid : 0, Where); }
        if (Has(4))
        {
            var len = V(s, 4);
            if (len.IsFloat || len.Rank != 1 || len.Shape[0] != B) throw Bad($"sequence_lens {len.ShapeText} is not an integer [batch_size = {B}]");
            s.Grow(ref st.Lengths, B, Where);
        }
        long[] yShape = _layout == 0 ? [T, _d, B, hid] : [B, T, _d, hid];
        long[] hShape = _layout == 0 ? [_d, B, hid] : [B, _d, hid];
        if (Out.Length > 0 && Out[0] >= 0) O(s, 0).Resize(yShape, Where);
        if (Out.Length > 1 && Out[1] >= 0) O(s, 1).Resize(hShape, Where);
        if (Out.Length > 2 && Out[2] >= 0) O(s, 2).Resize(hShape, Where);
    }

    private static void Use(State st, RecurrentNetwork[] nets)
    {
        st.Nets = nets;
        st.Ws = nets.Select(n => n.CreateInferenceWorkspace(1, 1)).ToArray();
        st.H = nets[0].Options.HiddenSize;
        st.I = nets[0].Options.InputSize;
    }

    private void CheckState(OnnxSession s, int k, string name, int B, int hid)
    {
        if (!Has(k)) return;
        var v = V(s, k);
        bool ok = v.IsFloat && v.Rank == 3 && (_layout == 0
            ? v.Shape[0] == _d && v.Shape[1] == B && v.Shape[2] == hid
            : v.Shape[0] == B && v.Shape[1] == _d && v.Shape[2] == hid);
        if (!ok) throw Bad($"{name} {v.ShapeText} is not {(_layout == 0 ? $"[{_d}, {B}, {hid}]" : $"[{B}, {_d}, {hid}]")}");
    }

    public override void Run(OnnxSession s)
    {
        var st = S(s);
        int T = st.T, B = st.B, D = _d, H = st.H, I = st.I;
        var x = V(s, 0);
        ReadOnlySpan<float> xs = x.Floats;
        if (_layout == 1) { SwapLeading(xs, st.X, B, T, I); xs = st.X.AsSpan(0, T * B * I); }
        ReadOnlySpan<float> h0 = Has(5) ? V(s, 5).Floats : [], c0 = _lstm && Has(6) ? V(s, 6).Floats : [];
        if (_layout == 1)
        {
            if (!h0.IsEmpty) { SwapLeading(h0, st.H0, B, D, H); h0 = st.H0.AsSpan(0, D * B * H); }
            if (!c0.IsEmpty) { SwapLeading(c0, st.C0, B, D, H); c0 = st.C0.AsSpan(0, D * B * H); }
        }
        ReadOnlySpan<int> lengths = [];
        if (Has(4))
        {
            var len = V(s, 4).Ints;
            for (int b = 0; b < B; b++)
            {
                if (len[b] < 1 || len[b] > T) throw Bad($"sequence_lens[{b}] = {len[b]} is outside 1..{T}");
                st.Lengths[b] = (int)len[b];
            }
            lengths = st.Lengths.AsSpan(0, B);
        }
        var y = st.Y.AsSpan(0, T * B * D * H);
        var hN = st.HN.AsSpan(0, D * B * H);
        var cN = st.CN.AsSpan(0, _lstm ? D * B * H : 0);
        // y is (T, B, D, H) from one network, or (D, T, B, H) from a forward and a reverse network run apart.
        int parts = st.Nets.Length, per = D / parts;
        for (int k = 0; k < parts; k++)
        {
            var net = st.Nets[k];
            if (_static is null) // weights are inputs: they may change per run
                LoadWeights(net, V(s, 1), V(s, 2), Has(3) ? V(s, 3) : null, net.Options.Peepholes ? V(s, 7) : null, firstDirection: k);
            int state = per * B * H;
            net.Forward(xs, T, B, h0.IsEmpty ? h0 : h0.Slice(k * state, state), c0.IsEmpty ? c0 : c0.Slice(k * state, state),
                y.Slice(k * T * B * per * H, T * B * per * H), hN.Slice(k * state, state), cN.IsEmpty ? cN : cN.Slice(k * state, state),
                st.Ws[k], lengths);
        }

        if (Out.Length > 0 && Out[0] >= 0)
        {
            var dst = O(s, 0).Floats;
            // y is (T, B, D, H); Y is (T, D, B, H) (layout 0) or (B, T, D, H) (layout 1).
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++)
                    for (int d = 0; d < D; d++)
                    {
                        long at = _layout == 0 ? (((long)t * D + d) * B + b) * H : (((long)b * T + t) * D + d) * H;
                        int from = parts == 1 ? ((t * B + b) * D + d) * H : ((d * T + t) * B + b) * H;
                        y.Slice(from, H).CopyTo(dst[(int)at..]);
                    }
        }
        if (Out.Length > 1 && Out[1] >= 0) WriteState(hN, O(s, 1).Floats, B, D, H);
        if (Out.Length > 2 && Out[2] >= 0) WriteState(cN, O(s, 2).Floats, B, D, H);
    }

    private void WriteState(ReadOnlySpan<float> state, Span<float> dst, int B, int D, int H)
    {
        if (_layout == 0) state.CopyTo(dst);
        else SwapLeading(state, dst, D, B, H);
    }

    /// <summary>(P, Q, R) to (Q, P, R).</summary>
    private static void SwapLeading(ReadOnlySpan<float> src, Span<float> dst, int p, int q, int r)
    {
        for (int i = 0; i < p; i++)
            for (int j = 0; j < q; j++)
                src.Slice((i * q + j) * r, r).CopyTo(dst.Slice((j * p + i) * r, r));
    }
}
