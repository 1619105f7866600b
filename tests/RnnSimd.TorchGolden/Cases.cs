namespace RnnSimd.TorchGolden;

/// <summary>The golden cases, in file-listing order.</summary>
internal static class Cases
{
    private static readonly string[] Cells = ["rnn_tanh", "rnn_relu", "lstm", "gru"];

    public static readonly IReadOnlyList<GoldenCase> All = Build();

    private static List<GoldenCase> Build()
    {
        var list = new List<GoldenCase>();
        foreach (string cell in Cells)
        {
            // Main shape. The four (layers, direction, bias) settings form an orthogonal array:
            // every pair of option values appears together at least once.
            list.Add(new(cell, 1, false, true, 5, 3, 7, 16));
            list.Add(new(cell, 1, true, false, 5, 3, 7, 16));
            list.Add(new(cell, 2, false, false, 5, 3, 7, 16));
            list.Add(new(cell, 2, true, true, 5, 3, 7, 16));

            // One step, one sequence: the smallest case, easiest to debug by hand.
            list.Add(new(cell, 1, false, true, 1, 1, 3, 5));

            // Sizes just past vector widths (I = 17, H = 33, 4H = 132, 3H = 99) to hit every tail.
            list.Add(new(cell, 1, false, true, 4, 2, 17, 33));
        }
        // Gated cells at T = 1 through two bidirectional layers (forward and reverse see the same step).
        list.Add(new("lstm", 2, true, true, 1, 1, 3, 5));
        list.Add(new("gru", 2, true, true, 1, 1, 3, 5));
        // Just past the AVX2 and AVX-512 float widths (I = 9, H = 17), both directions.
        list.Add(new("gru", 1, true, true, 3, 2, 9, 17));
        return list.OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
    }
}
