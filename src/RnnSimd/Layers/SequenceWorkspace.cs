using RnnSimd.Memory;

namespace RnnSimd.Layers;

/// <summary>
/// What a sequence forward records for backward, and the scratch both need, in one arena sized for a maximum
/// (steps, batch). A call with a larger shape grows it explicitly (one new allocation, reported by
/// <see cref="Generation"/>); calls within capacity allocate nothing. Rows are in processing order (the reverse
/// direction's step s is time T-1-s), each step's B rows contiguous.
/// </summary>
public sealed unsafe class SequenceWorkspace
{
    private readonly RecurrentOptions _o;
    private Arena? _arena;
    internal Dir[] Dirs = [];
    internal float* Input;            // (T, B, I) copy of the input
    internal float*[] LayerOut = [];  // per layer (T, B, D*Hout)
    internal float*[] DLayerOut = []; // per layer: gradient of that layer's output
    internal float* DInput;           // (T, B, I)
    internal float* DXTemp;           // (T, B, max In): reverse direction's dX before un-reversing

    internal sealed class Dir
    {
        public float* XRev;   // (T, B, In) reverse direction only: input in processing order
        public float* Gx;     // (T, B, GH) input projection + biases; reused as dGx in backward
        public float* Gh;     // GRU (T, B, 3H): recurrent part incl. b_hn (B_n is needed by backward); else (B, GH) scratch
        public float* DGh;    // GRU (T, B, 3H): gradient of the recurrent pre-activations
        public float* Gates;  // (T, B, GH) activated gates
        public float* Hs;     // (T + 1, B, Hout) states in processing order, Hs[0] = h0
        public float* Cs;     // LSTM (T + 1, B, H)
        public float* TanhC;  // LSTM (T, B, H)
        public float* M;      // LSTM with projection (T, B, H): o * tanh(c) before W_hr
        public float* RH;     // GRU original form (T, B, H): r * h
        public float* DHs;    // LSTM with projection (T, B, P): dL/dh per step, for dW_hr
        public float* DH, DHCarry, DC, DM, DRH; // (B, Hout), (B, Hout), (B, H), (B, H), (B, H) backward scratch
    }

    /// <summary>Creates a workspace for the network's shape with room for <paramref name="maxSteps"/> x <paramref name="maxBatch"/>.</summary>
    public SequenceWorkspace(RecurrentOptions options, int maxSteps, int maxBatch)
    {
        _o = options;
        EnsureCapacity(maxSteps, maxBatch);
    }

    internal bool Matches(RecurrentOptions options) => options == _o;

    /// <summary>The largest sequence length that fits without growing.</summary>
    public int MaxSteps { get; private set; }
    /// <summary>The largest batch that fits without growing.</summary>
    public int MaxBatch { get; private set; }
    /// <summary>How many times the arena was (re)allocated; constant in steady state.</summary>
    public int Generation { get; private set; }
    /// <summary>Floats held by the arena.</summary>
    public long Floats => _arena?.Data.LongLength ?? 0;

    /// <summary>Grows the workspace (one allocation) if (steps, batch) does not fit; returns whether it grew.</summary>
    public bool EnsureCapacity(int steps, int batch)
    {
        if (steps <= 0 || batch <= 0)
            throw new ArgumentOutOfRangeException(steps <= 0 ? nameof(steps) : nameof(batch), "steps and batch must be positive.");
        if (_arena is not null && steps <= MaxSteps && batch <= MaxBatch) return false;
        int T = Math.Max(steps, MaxSteps), B = Math.Max(batch, MaxBatch);
        int D = _o.Directions, L = _o.NumLayers, H = _o.HiddenSize, Hout = _o.OutputHidden, P = _o.ProjSize, GH = _o.GateCount * H;
        bool lstm = _o.Cell == CellType.Lstm, gru = _o.Cell == CellType.Gru;
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
            for (int d = 0; d < D; d++)
            {
                string p = $"l{l}d{d}.";
                int inSize = _o.LayerInput(l);
                if (d == 1) list.Add((p + "xrev", [Checked(TB * inSize)]));
                list.Add((p + "gx", [Checked(TB * GH)]));
                list.Add((p + "gh", [Checked(gru ? TB * GH : (long)B * GH)]));
                if (gru) list.Add((p + "dgh", [Checked(TB * GH)]));
                list.Add((p + "gates", [Checked(TB * GH)]));
                list.Add((p + "hs", [Checked((TB + B) * Hout)]));
                if (lstm)
                {
                    list.Add((p + "cs", [Checked((TB + B) * H)]));
                    list.Add((p + "tanhc", [Checked(TB * H)]));
                }
                if (P > 0)
                {
                    list.Add((p + "m", [Checked(TB * H)]));
                    list.Add((p + "dhs", [Checked(TB * P)]));
                }
                if (gru && !_o.GruLinearBeforeReset) list.Add((p + "rh", [Checked(TB * H)]));
                list.Add((p + "dh", [B * Hout]));
                list.Add((p + "dhcarry", [B * Hout]));
                list.Add((p + "dc", [B * H]));
                list.Add((p + "dm", [B * H]));
                list.Add((p + "drh", [B * H]));
            }
        }
        var arena = new Arena(list);
        Input = arena.Pointer("input");
        DInput = arena.Pointer("dinput");
        DXTemp = arena.Pointer("dxtemp");
        LayerOut = new float*[L];
        DLayerOut = new float*[L];
        var dirs = new Dir[L * D];
        for (int l = 0; l < L; l++)
        {
            LayerOut[l] = arena.Pointer($"out{l}");
            DLayerOut[l] = arena.Pointer($"dout{l}");
            for (int d = 0; d < D; d++)
            {
                string p = $"l{l}d{d}.";
                float* Opt(string n) => arena.Contains(p + n) ? arena.Pointer(p + n) : null;
                dirs[l * D + d] = new Dir
                {
                    XRev = Opt("xrev"), Gx = Opt("gx"), Gh = Opt("gh"), DGh = Opt("dgh"), Gates = Opt("gates"),
                    Hs = Opt("hs"), Cs = Opt("cs"), TanhC = Opt("tanhc"), M = Opt("m"), RH = Opt("rh"), DHs = Opt("dhs"),
                    DH = Opt("dh"), DHCarry = Opt("dhcarry"), DC = Opt("dc"), DM = Opt("dm"), DRH = Opt("drh"),
                };
            }
        }
        Dirs = dirs;
        _arena = arena;
        MaxSteps = T;
        MaxBatch = B;
        Generation++;
        return true;
    }

    private static int Checked(long n) => n <= Array.MaxLength ? (int)Math.Max(n, 1)
        : throw new ArgumentException($"workspace tensor of {n} floats is too large.");
}
