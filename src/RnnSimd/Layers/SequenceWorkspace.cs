using RnnSimd.Cells;
using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// Everything a sequence call writes: the shape and lengths of the last <see cref="RecurrentNetwork.Forward"/>, what
/// it recorded for <see cref="RecurrentNetwork.Backward"/>, and the scratch both need, in one arena sized for a maximum
/// (steps, batch). The network itself is never written by a call, so threads sharing one network each use their own
/// workspace. A call with a larger shape grows the workspace explicitly (one new allocation, counted by
/// <see cref="Generation"/>); calls within capacity allocate nothing. Not thread-safe itself: one call at a time.
/// <para>
/// Two kinds: a training workspace (<see cref="RecurrentNetwork.CreateWorkspace"/>) records every step for BPTT, O(T·B·G·H);
/// an inference workspace (<see cref="RecurrentNetwork.CreateInferenceWorkspace"/>) records nothing, its scratch is
/// O(max(B, 128)·G·H) for any T (the input projection runs in chunks of 128 rows) plus, for more than one layer, two
/// (T, B, D·Hout) buffers between layers.
/// </para>
/// </summary>
public sealed unsafe class SequenceWorkspace
{
    /// <summary>Rows (steps x batch) of input projection an inference workspace computes at once.</summary>
    internal const int InferenceChunkRows = 128;

    private readonly RecurrentOptions _o;
    private readonly CellRecords _records;
    private Arena? _arena;
    internal Dir[] Dirs = [];
    internal float* Input;            // (T, B, I) copy of the input
    internal float*[] LayerOut = [];  // training: per layer (T, B, D*Hout); inference: two buffers between layers
    internal float*[] DLayerOut = []; // per layer: gradient of that layer's output
    internal float* DInput;           // (T, B, I)
    internal float* DXTemp;           // (T, B, max In): reverse direction's dX before un-reversing
    internal Scratch Infer;           // inference: one direction's step buffers
    internal float*[] Drop = [];      // training with dropout: per layer l < L-1, (T, B, D*Hout) the dropped output (layer l+1's input)
    internal float*[] Mask = [];      // training with dropout: per layer l < L-1, (T, B, D*Hout) the mask (0 or 1/(1-p))
    private float _dropout;
    private Xoshiro _dropoutRng = new(0);
    internal QuantScratch[]? Q;       // a reduced-precision network's per-(layer, direction) row-step scratch

    // The last Forward's call state: Backward reads these, never the network.
    internal int Steps, Batch;
    internal int[] Lengths = [];      // (MaxBatch); the first Batch entries are valid when HasLengths
    internal bool HasLengths, Recorded;

    internal sealed class Dir
    {
        public float* XRev;   // (T, B, In) reverse direction only: input in processing order
        public float* Gx;     // (T, B, GH) input projection; reused as dGx in backward
        public float* Gh;     // RecurrentProducts: (T, B, GH), else (B, GH) scratch
        public float* DGh;    // RecurrentProducts: (T, B, GH) gradient of the recurrent pre-activations
        public float* Gates;  // (T, B, GH) activated gates
        public float* Hs;     // (T + 1, B, Hout) states in processing order, Hs[0] = h0
        public float* Cs;     // CellState: (T + 1, B, H)
        public float* TanhC;  // CellState: (T, B, H)
        public float* M;      // Projection: (T, B, H) o * tanh(c) before W_hr
        public float* DHs;    // Projection: (T, B, P) dL/dh per step, for dW_hr
        public float* RH;     // ResetHidden: (T, B, H) r * h
        public float* Pre;    // PreActivations: (T, B, GH) gate pre-activations before the clip
        public float* DH, DHCarry, DC, DM, DRH; // (B, Hout), (B, Hout), (B, H), (B, H), (B, H) backward scratch
    }

    /// <summary>The step buffers of an inference pass over one direction (reused by every layer and direction).</summary>
    internal struct Scratch
    {
        public float* Gx;                 // (chunk rows, GH) input projection of a chunk of steps
        public float* HA, HB, CA, CB;     // (B, Hout), (B, Hout), (B, H), (B, H): h and c, ping-pong
        public float* Gates, Gh;          // (B, GH)
        public float* TanhC, M, RH;       // (B, H)
    }

    internal SequenceWorkspace(RecurrentNetwork owner, CellRecords records, int maxSteps, int maxBatch, bool record)
    {
        Owner = owner;
        _o = owner.Options;
        _records = records;
        RecordsForBackward = record;
        if (owner.Precision != Precision.Float32) Q = owner.CreateQuantScratch();
        EnsureCapacity(maxSteps, maxBatch);
    }

    /// <summary>The network this workspace belongs to; any other network refuses it.</summary>
    public RecurrentNetwork Owner { get; }
    /// <summary>True for a training workspace (Forward records what Backward needs); false for inference.</summary>
    public bool RecordsForBackward { get; }
    /// <summary>The largest sequence length that fits without growing.</summary>
    public int MaxSteps { get; private set; }
    /// <summary>The largest batch that fits without growing.</summary>
    public int MaxBatch { get; private set; }
    /// <summary>How many times the arena was (re)allocated; constant in steady state.</summary>
    public int Generation { get; private set; }
    /// <summary>Floats held by the arena.</summary>
    public long Floats => _arena?.Data.LongLength ?? 0;
    /// <summary>Bytes held by the workspace's buffers.</summary>
    public long Bytes => Floats * sizeof(float) + Lengths.LongLength * sizeof(int);

    /// <summary>Grows the workspace (one allocation) if (steps, batch) does not fit; returns whether it grew.</summary>
    public bool EnsureCapacity(int steps, int batch)
    {
        if (steps <= 0 || batch <= 0)
            throw new ArgumentOutOfRangeException(steps <= 0 ? nameof(steps) : nameof(batch), "steps and batch must be positive.");
        if (_arena is not null && steps <= MaxSteps && batch <= MaxBatch && !_relayout) return false;
        _relayout = false;
        int T = Math.Max(steps, MaxSteps), B = Math.Max(batch, MaxBatch);
        _layoutBytes = 0;
        _largest = 0;
        var layout = RecordsForBackward ? TrainingLayout(T, B) : InferenceLayout(T, B);
        // Name the argument that grew (the larger one when both did).
        string grew = steps > MaxSteps && (batch <= MaxBatch || steps >= batch) ? nameof(steps) : nameof(batch);
        RecurrentOptions.CheckBudget(_layoutBytes, grew, $"a workspace for T = {T}, B = {B}");
        if (_largest > Array.MaxLength) throw new ArgumentException($"a workspace tensor of {_largest} floats is too large for one array.");
        var arena = new Arena(layout);
        Bind(arena, T, B);
        _arena = arena;
        Lengths = new int[B];
        Recorded = false;
        MaxSteps = T;
        MaxBatch = B;
        Generation++;
        return true;
    }

    private List<(string, int[])> InferenceLayout(int T, int B)
    {
        int D = _o.Directions, L = _o.NumLayers, H = _o.HiddenSize, Hout = _o.OutputHidden, GH = _o.GateCount * H;
        long chunk = (long)Math.Max(B, Math.Min(T * (long)B, InferenceChunkRows));
        var list = new List<(string, int[])>
        {
            ("gx", [Checked(chunk * GH)]),
            ("ha", [Checked((long)B * Hout)]), ("hb", [Checked((long)B * Hout)]), ("ca", [Checked((long)B * H)]), ("cb", [Checked((long)B * H)]),
            ("gates", [Checked((long)B * GH)]), ("gh", [Checked((long)B * GH)]),
            ("tanhc", [Checked((long)B * H)]), ("m", [Checked((long)B * H)]), ("rh", [Checked((long)B * H)]),
        };
        for (int i = 0; i < Math.Min(L - 1, 2); i++) list.Add(($"out{i}", [Checked((long)T * B * D * Hout)]));
        return list;
    }

    private bool _relayout, _dropBuffers;

    /// <summary>
    /// Dropout between layers for training, as PyTorch's <c>nn.LSTM(dropout=p)</c>: every <see cref="RecurrentNetwork.Forward"/>
    /// with this workspace multiplies the output of every layer but the last by a fresh mask (each element kept with
    /// probability 1 - p and scaled by 1 / (1 - p), else 0) before the next layer reads it, and
    /// <see cref="RecurrentNetwork.Backward"/> applies the same mask to the gradient. The masks come from a generator
    /// seeded by <paramref name="seed"/> and advanced by every Forward, so a run is reproducible. The output of the last
    /// layer (the network's output) is never dropped; an inference workspace never drops. Setting p &gt; 0 the first time
    /// grows the workspace once (explicitly, here), then Forward and Backward allocate nothing. p = 0 turns it off.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">p is not in [0, 1).</exception>
    /// <exception cref="InvalidOperationException">An inference workspace.</exception>
    public void SetDropout(float p, ulong seed)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout p must be in [0, 1).");
        if (!RecordsForBackward)
            throw new InvalidOperationException("an inference workspace never drops (dropout is for training); set it on a training workspace.");
        _dropout = p;
        _dropoutRng.Reseed(seed);
        if (p > 0 && !_dropBuffers && _o.NumLayers > 1)
        {
            _dropBuffers = true; // kept from now on, so turning dropout off and on (evaluation between steps) never reallocates
            _relayout = true;
            EnsureCapacity(MaxSteps, MaxBatch);
        }
        Recorded = false;
    }

    /// <summary>The dropout probability between layers (0: none).</summary>
    public float Dropout => _dropout;

    /// <summary>The mask the last Forward applied to layer <paramref name="layer"/>'s output (T, B, D*Hout): 0 or 1/(1-p) per element. For inspection and tests.</summary>
    /// <exception cref="InvalidOperationException">No dropout, or nothing recorded.</exception>
    /// <exception cref="ArgumentOutOfRangeException">layer is not in [0, L-1) (the last layer is never dropped).</exception>
    public ReadOnlySpan<float> DropoutMask(int layer)
    {
        if (_dropout == 0 || !Recorded) throw new InvalidOperationException("no dropout mask: set dropout and run Forward first.");
        if ((uint)layer >= (uint)(_o.NumLayers - 1))
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"layer must be in 0..{_o.NumLayers - 2} (the last layer's output is never dropped).");
        return new ReadOnlySpan<float>(Mask[layer], Steps * Batch * _o.Directions * _o.OutputHidden);
    }

    internal bool Drops => _dropout > 0 && _o.NumLayers > 1;

    /// <summary>The input of layer l (l &gt;= 1) in a training Forward/Backward: the dropped output of layer l - 1, or that output itself.</summary>
    internal float* LayerInput(int l) => Drops ? Drop[l - 1] : LayerOut[l - 1];

    /// <summary>Draws layer l's mask for n = T*B*D*Hout elements and writes the dropped output.</summary>
    internal void DrawDropout(int l, long n)
    {
        float scale = 1f / (1f - _dropout);
        // keep when a uniform 32-bit draw is >= p * 2^32 (two draws per 64-bit output of the generator)
        uint threshold = (uint)Math.Min(uint.MaxValue, Math.Round(_dropout * 4294967296.0));
        float* mask = Mask[l], src = LayerOut[l], dst = Drop[l];
        for (long i = 0; i < n; i += 2)
        {
            ulong r = _dropoutRng.NextUInt64();
            mask[i] = (uint)r >= threshold ? scale : 0f;
            if (i + 1 < n) mask[i + 1] = (uint)(r >> 32) >= threshold ? scale : 0f;
        }
        for (long i = 0; i < n; i++) dst[i] = src[i] * mask[i];
    }

    /// <summary>Backward: dL/d(layer l's output) = mask ⊙ dL/d(layer l+1's input), in place.</summary>
    internal void BackDropout(int l, long n)
    {
        float* mask = Mask[l], g = DLayerOut[l];
        for (long i = 0; i < n; i++) g[i] *= mask[i];
    }

    private List<(string, int[])> TrainingLayout(int T, int B)
    {
        int D = _o.Directions, L = _o.NumLayers, H = _o.HiddenSize, Hout = _o.OutputHidden, P = _o.ProjSize, GH = _o.GateCount * H;
        bool cell = _records.HasFlag(CellRecords.CellState), proj = _records.HasFlag(CellRecords.Projection);
        bool products = _records.HasFlag(CellRecords.RecurrentProducts), resetHidden = _records.HasFlag(CellRecords.ResetHidden);
        bool pre = _records.HasFlag(CellRecords.PreActivations);
        long TB = (long)T * B;
        int maxIn = Math.Max(_o.InputSize, D * Hout);
        var list = new List<(string, int[])>
        {
            ("input", [Checked(TB * _o.InputSize)]),
            ("dinput", [Checked(TB * _o.InputSize)]),
            ("dxtemp", [Checked(TB * maxIn)]),
        };
        for (int l = 0; l < L; l++)
        {
            list.Add(($"out{l}", [Checked(TB * D * Hout)]));
            list.Add(($"dout{l}", [Checked(TB * D * Hout)]));
            if (_dropBuffers && l < L - 1)
            {
                list.Add(($"drop{l}", [Checked(TB * D * Hout)]));
                list.Add(($"mask{l}", [Checked(TB * D * Hout)]));
            }
            for (int d = 0; d < D; d++)
            {
                string p = $"l{l}d{d}.";
                if (d == 1 || _o.Reverse) list.Add((p + "xrev", [Checked(TB * _o.LayerInput(l))]));
                list.Add((p + "gx", [Checked(TB * GH)]));
                list.Add((p + "gh", [Checked(products ? TB * GH : (long)B * GH)]));
                if (products) list.Add((p + "dgh", [Checked(TB * GH)]));
                list.Add((p + "gates", [Checked(TB * GH)]));
                list.Add((p + "hs", [Checked((TB + B) * Hout)]));
                if (cell)
                {
                    list.Add((p + "cs", [Checked((TB + B) * H)]));
                    list.Add((p + "tanhc", [Checked(TB * H)]));
                }
                if (proj)
                {
                    list.Add((p + "m", [Checked(TB * H)]));
                    list.Add((p + "dhs", [Checked(TB * P)]));
                }
                if (resetHidden) list.Add((p + "rh", [Checked(TB * H)]));
                if (pre) list.Add((p + "pre", [Checked(TB * GH)]));
                list.Add((p + "dh", [Checked((long)B * Hout)]));
                list.Add((p + "dhcarry", [Checked((long)B * Hout)]));
                list.Add((p + "dc", [Checked((long)B * H)]));
                list.Add((p + "dm", [Checked((long)B * H)]));
                list.Add((p + "drh", [Checked((long)B * H)]));
            }
        }
        return list;
    }

    private void Bind(Arena arena, int T, int B)
    {
        float* Opt(string n) => arena.Contains(n) ? arena.Pointer(n) : null;
        int L = _o.NumLayers, D = _o.Directions;
        if (!RecordsForBackward)
        {
            Infer = new Scratch
            {
                Gx = Opt("gx"), HA = Opt("ha"), HB = Opt("hb"), CA = Opt("ca"), CB = Opt("cb"), Gates = Opt("gates"), Gh = Opt("gh"),
                TanhC = Opt("tanhc"), M = Opt("m"), RH = Opt("rh"),
            };
            LayerOut = [Opt("out0"), Opt("out1")];
            return;
        }
        Input = Opt("input");
        DInput = Opt("dinput");
        DXTemp = Opt("dxtemp");
        LayerOut = new float*[L];
        DLayerOut = new float*[L];
        Drop = new float*[Math.Max(L - 1, 0)];
        Mask = new float*[Math.Max(L - 1, 0)];
        for (int l = 0; l < L - 1; l++) { Drop[l] = Opt($"drop{l}"); Mask[l] = Opt($"mask{l}"); }
        var dirs = new Dir[L * D];
        for (int l = 0; l < L; l++)
        {
            LayerOut[l] = Opt($"out{l}");
            DLayerOut[l] = Opt($"dout{l}");
            for (int d = 0; d < D; d++)
            {
                string p = $"l{l}d{d}.";
                dirs[l * D + d] = new Dir
                {
                    XRev = Opt(p + "xrev"), Gx = Opt(p + "gx"), Gh = Opt(p + "gh"), DGh = Opt(p + "dgh"), Gates = Opt(p + "gates"),
                    Hs = Opt(p + "hs"), Cs = Opt(p + "cs"), TanhC = Opt(p + "tanhc"), M = Opt(p + "m"), RH = Opt(p + "rh"),
                    DHs = Opt(p + "dhs"), DH = Opt(p + "dh"), DHCarry = Opt(p + "dhcarry"), DC = Opt(p + "dc"), DM = Opt(p + "dm"),
                    DRH = Opt(p + "drh"), Pre = Opt(p + "pre"),
                };
            }
        }
        Dirs = dirs;
    }

    private decimal _layoutBytes;
    private long _largest;

    /// <summary>A tensor's length for the layout; sizes are summed (for the budget) and checked by EnsureCapacity before any allocation.</summary>
    private int Checked(long n)
    {
        _layoutBytes += (n + 15) / 16 * 16 * 4m;
        _largest = Math.Max(_largest, n);
        return (int)Math.Clamp(n, 1, Array.MaxLength);
    }
}
