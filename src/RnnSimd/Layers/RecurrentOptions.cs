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
public sealed record RecurrentOptions(CellType Cell, int InputSize, int HiddenSize, int NumLayers = 1,
    bool Bidirectional = false, bool Bias = true, int ProjSize = 0, bool GruLinearBeforeReset = true, bool Reverse = false)
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
            decimal weights = gh * LayerInput(l) + gh * hout + (Bias ? 2 * gh : 0) + (decimal)ProjSize * HiddenSize;
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

    /// <summary>Input features of layer <paramref name="layer"/>: I for layer 0, else D * OutputHidden.</summary>
    public int LayerInput(int layer) => layer == 0 ? InputSize : Directions * OutputHidden;

    /// <summary>Checks that every size is valid.</summary>
    /// <exception cref="ArgumentException">A size is not positive, or a projection is asked of a cell other than LSTM or is not smaller than H.</exception>
    public void Validate()
    {
        if (CellRegistry.Find(Cell) is null) CellRegistry.Get(Cell); // throws, naming the known types
        if (InputSize <= 0) throw new ArgumentException($"InputSize must be positive, got {InputSize}.", nameof(InputSize));
        if (HiddenSize <= 0) throw new ArgumentException($"HiddenSize must be positive, got {HiddenSize}.", nameof(HiddenSize));
        if (NumLayers <= 0) throw new ArgumentException($"NumLayers must be positive, got {NumLayers}.", nameof(NumLayers));
        if (ProjSize < 0) throw new ArgumentException($"ProjSize must be non-negative, got {ProjSize}.", nameof(ProjSize));
        if (ProjSize > 0 && Cell != CellType.Lstm) throw new ArgumentException("ProjSize is only supported by LSTM (as in PyTorch).", nameof(ProjSize));
        if (Reverse && Bidirectional) throw new ArgumentException("Reverse is for a unidirectional network that runs backward in time; a bidirectional network already has a reverse direction.", nameof(Reverse));
        if (ProjSize >= HiddenSize && ProjSize > 0) throw new ArgumentException($"ProjSize ({ProjSize}) must be smaller than HiddenSize ({HiddenSize}), as in PyTorch.", nameof(ProjSize));
    }

    /// <summary>The parameters in PyTorch's state_dict order, with their shapes.</summary>
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
            }
        }
        return list;
    }
}
