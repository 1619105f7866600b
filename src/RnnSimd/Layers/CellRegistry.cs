using RnnSimd.Cells;
using RnnSimd.Kernels;

namespace RnnSimd.Layers;

/// <summary>
/// The cell kinds RnnSimd knows: one line each (type, file and command-line name, gate blocks, driver). Everything
/// that depends on the kind of cell asks this table once; the drivers it hands out are specialised for their cell.
/// </summary>
internal static class CellRegistry
{
    internal sealed record Entry(CellType Type, string Name, int GateCount, Func<RecurrentOptions, CellDriver> Driver);

    private static readonly Entry[] s_entries =
    [
        new(CellType.RnnTanh, "rnn_tanh", 1, o => new CellDriver<RnnCell<TanhOp>>(o)),
        new(CellType.RnnRelu, "rnn_relu", 1, o => new CellDriver<RnnCell<ReluOp>>(o)),
        new(CellType.Lstm, "lstm", 4, o => new CellDriver<LstmCell>(o)),
        new(CellType.Gru, "gru", 3, o => new CellDriver<GruCell>(o)),
    ];

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
