namespace RnnSimd.Layers;

/// <summary>The recurrent cell, with PyTorch's names in <see cref="RecurrentOptions.CellName"/>.</summary>
public enum CellType
{
    /// <summary>Elman RNN with tanh: h' = tanh(W_ih x + b_ih + W_hh h + b_hh).</summary>
    RnnTanh,
    /// <summary>Elman RNN with relu.</summary>
    RnnRelu,
    /// <summary>LSTM, gates i, f, g, o; optional projection.</summary>
    Lstm,
    /// <summary>GRU, gates r, z, n.</summary>
    Gru,
}

/// <summary>
/// The shape of a recurrent network, as PyTorch's torch.nn.RNN / LSTM / GRU constructors (batch_first = False).
/// </summary>
/// <param name="Cell">The cell type.</param>
/// <param name="InputSize">Features per input step (I).</param>
/// <param name="HiddenSize">Hidden units per direction (H).</param>
/// <param name="NumLayers">Stacked layers (L).</param>
/// <param name="Bidirectional">Whether each layer also runs backward in time (D = 2).</param>
/// <param name="Bias">Whether b_ih and b_hh exist.</param>
/// <param name="ProjSize">LSTM only: projection size P (h' = W_hr (o * tanh c')); 0 for none.</param>
/// <param name="GruLinearBeforeReset">GRU only: true for PyTorch/cuDNN's n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); false for the original form n = tanh(W_in x + b_in + W_hn (r*h) + b_hn) (ONNX's default).</param>
/// <param name="Reverse">A unidirectional network whose layers run backward in time, t = T-1 ... 0 (ONNX's direction = "reverse";
/// PyTorch has no such module): the same cell and weights as a forward layer, fed its sequence from the end. Not with
/// <paramref name="Bidirectional"/>, and not for <see cref="RecurrentNetwork.Step"/> (a streaming step cannot see the future).</param>
/// <param name="Peepholes">LSTM only (ONNX's input P; PyTorch has none): the gates also see the cell state,
/// i = σ(... + p_i ⊙ c_{t-1}), f = σ(... + p_f ⊙ c_{t-1}), o = σ(... + p_o ⊙ c_t) (o sees the NEW cell state). Adds one
/// parameter per layer and direction, <c>weight_peep_l{l}[_reverse]</c> of shape (3, H), rows p_i, p_f, p_o (PyTorch's
/// gate order without g; ONNX's P is [p_i, p_o, p_f]), initialised like every other parameter. Any other option may
/// be combined with it, a projection included (the peepholes see c, never the projected h).</param>
/// <param name="CoupledInputForget">LSTM only (ONNX's input_forget = 1): f = 1 - i. The forget gate's rows of W_ih,
/// W_hh, b_ih, b_hh (and p_f) stay in the state_dict but are unused, and their gradients are zero.</param>
/// <param name="ActivationF">ONNX's activation f (null: the cell's default): the LSTM's gates i, f, o (σ), the GRU's r and
/// z (σ), the RNN's one nonlinearity (tanh for <see cref="CellType.RnnTanh"/>, relu for <see cref="CellType.RnnRelu"/>;
/// when set it replaces the one the cell type names, which then only names the file format's cell).</param>
/// <param name="ActivationG">ONNX's g (null: tanh): the LSTM's cell candidate g, the GRU's candidate n. Not for RNN.</param>
/// <param name="ActivationH">ONNX's h (null: tanh): the LSTM's function of the cell state, m = o ⊙ h(c). LSTM only.</param>
/// <param name="Clip">ONNX's clip: when &gt; 0, every gate pre-activation, after all of its terms (biases, peepholes, the
/// GRU's r ⊙ (W_hn h + b_hn) or W_hn (r ⊙ h) + b_hn), is clamped to [-Clip, Clip] before its activation; the LSTM's cell
/// state is not clipped before h(c). 0: no clip. Finite and &gt;= 0. In Backward a clipped pre-activation passes no
/// gradient (the training workspace then records the pre-activations, one (T, B, G·H) buffer per layer and direction).</param>
/// <remarks>
/// With no clip and every activation its cell's default (null or given explicitly), the network runs the same
/// specialised code as without these options; otherwise one "configured" specialisation per cell, whose gate kernels
/// read the activations and the clip at run time, runs every path (and, with σ / tanh and no clip, computes bitwise
/// what the default code does).
/// </remarks>
public sealed record RecurrentOptions(CellType Cell, int InputSize, int HiddenSize, int NumLayers = 1,
    bool Bidirectional = false, bool Bias = true, int ProjSize = 0, bool GruLinearBeforeReset = true, bool Reverse = false,
    bool Peepholes = false, bool CoupledInputForget = false, GateActivation? ActivationF = null, GateActivation? ActivationG = null,
    GateActivation? ActivationH = null, float Clip = 0)
{
    private static long s_memoryBudget = 4L << 30;

    /// <summary>
    /// The most memory one network, workspace, state or stepper may ask for (bytes; default 4 GiB, process-wide). A
    /// larger request is an <see cref="ArgumentOutOfRangeException"/> naming the option and the bytes, thrown before
    /// anything is allocated, so a mistyped or hostile size fails at once instead of exhausting memory.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to less than 1 MiB.</exception>
    public static long MemoryBudget
    {
        get => Volatile.Read(ref s_memoryBudget);
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1L << 20);
            Volatile.Write(ref s_memoryBudget, value);
        }
    }

    /// <summary>
    /// About the bytes a network of these options holds: parameters, gradients and the packed copies of the weights
    /// (computed without allocating, whatever the sizes).
    /// </summary>
    public decimal NetworkBytes()
    {
        decimal gh = (decimal)GateCount * HiddenSize, hout = OutputHidden, total = 0;
        for (int l = 0; l < Math.Min(NumLayers, 2); l++)
        {
            decimal weights = gh * LayerInput(l) + gh * hout + (Bias ? 2 * gh : 0) + (decimal)ProjSize * HiddenSize
                + (Peepholes ? 3m * HiddenSize : 0);
            decimal packed = 5 * gh * (LayerInput(l) + hout) + 3m * ProjSize * HiddenSize; // panels, tiles, step tiles
            decimal layer = Directions * (2 * weights + packed) * sizeof(float);
            total += l == 0 ? layer : layer * (NumLayers - 1);
        }
        return total;
    }

    /// <summary>Throws when <paramref name="bytes"/> exceed <see cref="MemoryBudget"/>, naming what asked for them.</summary>
    internal static void CheckBudget(decimal bytes, string paramName, string what)
    {
        if (bytes > MemoryBudget)
            throw new ArgumentOutOfRangeException(paramName,
                $"{what} needs about {bytes:N0} bytes, above RecurrentOptions.MemoryBudget = {MemoryBudget:N0} bytes; raise the budget to allow it.");
    }

    /// <summary>D: 2 when bidirectional, else 1.</summary>
    public int Directions => Bidirectional ? 2 : 1;

    /// <summary>Size of h (and of each direction's output): P with a projection, else H.</summary>
    public int OutputHidden => ProjSize > 0 ? ProjSize : HiddenSize;

    /// <summary>Gate blocks per cell: 1 (RNN), 4 (LSTM), 3 (GRU).</summary>
    /// <exception cref="ArgumentException"><see cref="Cell"/> is not a known cell type.</exception>
    public int GateCount => CellRegistry.Get(Cell).GateCount;

    /// <summary>The cell's name in files and on the command line: rnn_tanh, rnn_relu, lstm, gru.</summary>
    /// <exception cref="ArgumentException"><see cref="Cell"/> is not a known cell type.</exception>
    public string CellName => CellRegistry.Get(Cell).Name;

    /// <summary>Parses a cell name (rnn_tanh, rnn_relu, lstm, gru; "rnn" for rnn_tanh).</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static CellType ParseCell(string name)
    {
        if (name == "rnn") return CellType.RnnTanh;
        foreach (var e in CellRegistry.All) if (e.Name == name) return e.Type;
        throw new ArgumentException($"unknown cell '{name}'; expected {string.Join(", ", CellRegistry.All.Select(e => e.Name))}.", nameof(name));
    }

    /// <summary>
    /// The activations in force, defaults resolved: ONNX's (f, g, h). LSTM (σ, tanh, tanh), GRU (σ, tanh, -), RNN (tanh or
    /// relu, -, -); a slot the cell does not have holds tanh.
    /// </summary>
    internal (GateActivation F, GateActivation G, GateActivation H) Activations =>
        (ActivationF ?? DefaultActivationF, ActivationG ?? GateActivation.Tanh, ActivationH ?? GateActivation.Tanh);

    private GateActivation DefaultActivationF => Cell switch
    {
        CellType.RnnTanh => GateActivation.Tanh,
        CellType.RnnRelu => GateActivation.Relu,
        _ => GateActivation.Sigmoid,
    };

    /// <summary>No clip and the cell type's default activations: the cell's compiled default code runs.</summary>
    internal bool DefaultGateFunctions => !(Clip > 0) && Activations == (DefaultActivationF, GateActivation.Tanh, GateActivation.Tanh);

    /// <summary>Input features of layer <paramref name="layer"/>: I for layer 0, else D * OutputHidden.</summary>
    public int LayerInput(int layer) => layer == 0 ? InputSize : Directions * OutputHidden;

    /// <summary>Checks that every size is valid.</summary>
    /// <exception cref="ArgumentException">A size is not positive, a projection is asked of a cell other than LSTM or is not smaller
    /// than H, peepholes or coupled input and forget gates are asked of a cell other than LSTM, an activation is not a
    /// <see cref="GateActivation"/> or is given for a slot the cell does not have (g for RNN, h for GRU and RNN), or
    /// <see cref="Clip"/> is negative, infinite or NaN.</exception>
    public void Validate()
    {
        if (CellRegistry.Find(Cell) is null) CellRegistry.Get(Cell); // throws, naming the known types
        if (InputSize <= 0) throw new ArgumentException($"InputSize must be positive, got {InputSize}.", nameof(InputSize));
        if (HiddenSize <= 0) throw new ArgumentException($"HiddenSize must be positive, got {HiddenSize}.", nameof(HiddenSize));
        if (NumLayers <= 0) throw new ArgumentException($"NumLayers must be positive, got {NumLayers}.", nameof(NumLayers));
        if (ProjSize < 0) throw new ArgumentException($"ProjSize must be non-negative, got {ProjSize}.", nameof(ProjSize));
        if (ProjSize > 0 && Cell != CellType.Lstm) throw new ArgumentException("ProjSize is only supported by LSTM (as in PyTorch).", nameof(ProjSize));
        if (Peepholes && Cell != CellType.Lstm)
            throw new ArgumentException($"Peepholes are only supported by LSTM (ONNX's input P); this network is {CellName}.", nameof(Peepholes));
        if (CoupledInputForget && Cell != CellType.Lstm)
            throw new ArgumentException($"CoupledInputForget is only supported by LSTM (ONNX's input_forget); this network is {CellName}.", nameof(CoupledInputForget));
        CheckActivation(ActivationF, nameof(ActivationF), true);
        CheckActivation(ActivationG, nameof(ActivationG), Cell is CellType.Lstm or CellType.Gru);
        CheckActivation(ActivationH, nameof(ActivationH), Cell == CellType.Lstm);
        if (!float.IsFinite(Clip) || Clip < 0)
            throw new ArgumentException($"Clip must be finite and >= 0 (0 for no clip), got {Clip}.", nameof(Clip));
        if (Reverse && Bidirectional) throw new ArgumentException("Reverse is for a unidirectional network that runs backward in time; a bidirectional network already has a reverse direction.", nameof(Reverse));
        if (ProjSize >= HiddenSize && ProjSize > 0) throw new ArgumentException($"ProjSize ({ProjSize}) must be smaller than HiddenSize ({HiddenSize}), as in PyTorch.", nameof(ProjSize));
    }

    private void CheckActivation(GateActivation? a, string name, bool cellHasIt)
    {
        if (a is not { } v) return;
        if (!Enum.IsDefined(v))
            throw new ArgumentException($"{name} = {(int)v} is not a GateActivation; expected Sigmoid, Tanh or Relu.", name);
        if (!cellHasIt)
            throw new ArgumentException($"{name} is not a function of a {CellName} cell (ONNX's f, g, h: LSTM f, g, h; GRU f, g; RNN f only).", name);
    }

    /// <summary>
    /// The parameters in PyTorch's state_dict order, with their shapes: per layer l and direction (suffix "_reverse"),
    /// weight_ih_l{l} (G*H, In), weight_hh_l{l} (G*H, Hout), bias_ih_l{l} and bias_hh_l{l} (G*H) with <see cref="Bias"/>,
    /// weight_hr_l{l} (P, H) with a projection, weight_peep_l{l} (3, H) with <see cref="Peepholes"/> (rows p_i, p_f, p_o).
    /// </summary>
    public IReadOnlyList<(string Name, int[] Shape)> ParameterShapes()
    {
        Validate();
        var list = new List<(string, int[])>();
        int gh = GateCount * HiddenSize;
        for (int l = 0; l < NumLayers; l++)
        {
            for (int d = 0; d < Directions; d++)
            {
                string sfx = $"_l{l}" + (d == 1 ? "_reverse" : "");
                list.Add(("weight_ih" + sfx, [gh, LayerInput(l)]));
                list.Add(("weight_hh" + sfx, [gh, OutputHidden]));
                if (Bias)
                {
                    list.Add(("bias_ih" + sfx, [gh]));
                    list.Add(("bias_hh" + sfx, [gh]));
                }
                if (ProjSize > 0) list.Add(("weight_hr" + sfx, [ProjSize, HiddenSize]));
                if (Peepholes) list.Add(("weight_peep" + sfx, [3, HiddenSize]));
            }
        }
        return list;
    }
}
