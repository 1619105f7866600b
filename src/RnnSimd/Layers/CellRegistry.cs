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
        Of<RnnCell<TanhOp>>(CellType.RnnTanh, "rnn_tanh"),
        Of<RnnCell<ReluOp>>(CellType.RnnRelu, "rnn_relu"),
        Of<LstmCell<LstmPlain>>(CellType.Lstm, "lstm") with { Driver = LstmDriver },
        Of<GruCell>(CellType.Gru, "gru"),
    ];

    /// <summary>
    /// The LSTM's driver: one specialisation per combination of ONNX's options (peepholes, coupled input and forget
    /// gates), so the plain LSTM's loops carry no trace of them.
    /// </summary>
    private static CellDriver LstmDriver(RecurrentOptions o) => (o.Peepholes, o.CoupledInputForget) switch
    {
        (false, false) => new CellDriver<LstmCell<LstmPlain>>(o),
        (true, false) => new CellDriver<LstmCell<LstmPeepholes>>(o),
        (false, true) => new CellDriver<LstmCell<LstmCoupled>>(o),
        (true, true) => new CellDriver<LstmCell<LstmPeepholesCoupled>>(o),
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
