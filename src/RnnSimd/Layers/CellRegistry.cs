using RnnSimd.Cells;
using RnnSimd.Kernels;

namespace RnnSimd.Layers;

/// <summary>
/// The cell kinds RnnSimd knows: one line each (type, file and command-line name, the cell's struct). Everything
/// that depends on the kind of cell asks this table once; the drivers it hands out are specialised for their cell, and
/// the gate count comes from the cell's own <see cref="ICell.GateLayout"/>.
/// </summary>
internal static class CellRegistry
{
    internal sealed record Entry(CellType Type, string Name, int GateCount, Func<RecurrentOptions, CellDriver> Driver);

    private static Entry Of<TCell>(CellType type, string name) where TCell : struct, ICell =>
        new(type, name, TCell.GateLayout.Split(',').Length, o => new CellDriver<TCell>(o));

    private static readonly Entry[] s_entries =
    [
        Of<RnnCell<TanhOp>>(CellType.RnnTanh, "rnn_tanh") with { Driver = RnnDriver },
        Of<RnnCell<ReluOp>>(CellType.RnnRelu, "rnn_relu") with { Driver = RnnDriver },
        Of<LstmCell<LstmPlain>>(CellType.Lstm, "lstm") with { Driver = LstmDriver },
        Of<GruCell<CompiledGates>>(CellType.Gru, "gru") with { Driver = GruDriver },
    ];

    // Each cell has its compiled default specialisation(s) and one configured one (ONNX's activations and clip read at
    // run time), never one per combination of activations: Native AOT compiles every instantiation named here.

    /// <summary>
    /// The LSTM's driver: one specialisation per combination of ONNX's structural options (peepholes, coupled input and
    /// forget gates), so the plain LSTM's loops carry no trace of them; any other activation or a clip: the configured one.
    /// </summary>
    private static CellDriver LstmDriver(RecurrentOptions o) => !o.DefaultGateFunctions ? new CellDriver<LstmCell<LstmConfigured>>(o)
        : (o.Peepholes, o.CoupledInputForget) switch
        {
            (false, false) => new CellDriver<LstmCell<LstmPlain>>(o),
            (true, false) => new CellDriver<LstmCell<LstmPeepholes>>(o),
            (false, true) => new CellDriver<LstmCell<LstmCoupled>>(o),
            (true, true) => new CellDriver<LstmCell<LstmPeepholesCoupled>>(o),
        };

    /// <summary>The GRU's driver: PyTorch's σ, tanh without a clip compiled in, anything else configured.</summary>
    private static CellDriver GruDriver(RecurrentOptions o) =>
        o.DefaultGateFunctions ? new CellDriver<GruCell<CompiledGates>>(o) : new CellDriver<GruCell<ConfiguredGates>>(o);

    /// <summary>
    /// The RNN's driver, by the activation in force (the cell type's, or <see cref="RecurrentOptions.ActivationF"/>): tanh
    /// and relu without a clip compiled in, sigmoid or any clip configured.
    /// </summary>
    private static CellDriver RnnDriver(RecurrentOptions o) => (o.Clip > 0, o.Activations.F) switch
    {
        (false, GateActivation.Tanh) => new CellDriver<RnnCell<TanhOp>>(o),
        (false, GateActivation.Relu) => new CellDriver<RnnCell<ReluOp>>(o),
        _ => new CellDriver<RnnCell<ConfiguredGates>>(o),
    };

    /// <summary>Every registered kind, in enum order.</summary>
    public static IReadOnlyList<Entry> All => s_entries;

    /// <summary>The entry of a cell type, or null when it is not registered (e.g. a cast integer).</summary>
    public static Entry? Find(CellType type)
    {
        foreach (var e in s_entries) if (e.Type == type) return e;
        return null;
    }

    /// <summary>The entry of a cell type.</summary>
    /// <exception cref="ArgumentException">Not a registered cell type.</exception>
    public static Entry Get(CellType type) => Find(type)
        ?? throw new ArgumentException($"unknown cell type {(int)type}; expected one of {string.Join(", ", s_entries.Select(e => $"{e.Type} ({e.Name})"))}.", "Cell");
}
