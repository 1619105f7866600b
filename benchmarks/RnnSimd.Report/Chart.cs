using ScottPlot;

namespace RnnSimd.Report;

/// <summary>
/// performance.png: one panel per thread count; in each, a group of bars per (workload, cell) that has data, one bar
/// per implementation, height = median time on a log scale (bars start at the decade below the fastest result, so
/// a bar's length is not proportional to its time; compare tops against the axis). Lower is better. float32 rows only.
/// </summary>
internal static class Chart
{
    private static readonly Dictionary<string, Color> ImplColors = new()
    {
        [Layout.RnnSimd] = new Color(214, 39, 40),
        [Layout.RnnSimdOnnx] = new Color(255, 152, 150),
        [Layout.LibTorch] = new Color(31, 119, 180),
        [Layout.LibTorchCell] = new Color(158, 202, 225),
        [Layout.OnnxRuntime] = new Color(44, 160, 44),
    };

    private static readonly Color Other = new(127, 127, 127);

    /// <summary>Writes the chart of <paramref name="rows"/> to <paramref name="path"/>; false (nothing written) when there are no rows.</summary>
    public static bool Save(string path, IReadOnlyList<Row> allRows)
    {
        var rows = allRows.Where(r => r.Precision == Row.Float32).ToList();      // the peers at float32; reduced precision has its own table
        if (rows.Count == 0) return false;
        var workloads = Layout.Merge(Layout.Workloads.Select(w => w.Id), rows.Select(r => r.Workload));
        var cells = Layout.Merge(Layout.Cells, rows.Select(r => r.Cell));
        var impls = Layout.Merge(Layout.Impls, rows.Select(r => r.Impl));
        var threads = rows.Select(r => r.Threads).Distinct().Order().ToList();
        // Groups in report order, only those with data; shared by all panels so they line up.
        var groups = (from w in workloads from c in cells where rows.Any(r => r.Workload == w && r.Cell == c) select (w, c)).ToList();

        // At least 0.3 decade of bar below the fastest result, so that it shows.
        double floor = Math.Floor(Math.Log10(rows.Min(r => r.MedianNs)) - 0.3);
        double top = Math.Ceiling(Math.Log10(rows.Max(r => r.MedianNs)) + 0.15);
        double[] decades = [.. Enumerable.Range(0, (int)(top - floor) + 1).Select(i => floor + i)];
        string[] decadeLabels = [.. decades.Select(d => Units.Time(Math.Pow(10, d)).Replace(".00 ", " ").Replace(".0 ", " "))];

        double width = 0.8 / impls.Count;           // one slot per implementation in each group, 0.8 of the group
        var multiplot = new Multiplot();
        foreach (int t in threads)
        {
            bool first = t == threads[0];
            var plt = new Plot();
            var bars = new List<Bar>();
            var used = new HashSet<string>();
            for (int g = 0; g < groups.Count; g++)
            {
                var inGroup = impls.Select(i => rows.FirstOrDefault(r => r.Workload == groups[g].w && r.Cell == groups[g].c && r.Threads == t && r.Impl == i))
                    .OfType<Row>().ToList();
                foreach (var r in inGroup)
                {
                    int slot = impls.IndexOf(r.Impl);
                    bars.Add(new Bar
                    {
                        Position = g - 0.4 + width * (slot + 0.5),
                        ValueBase = floor,
                        Value = Math.Log10(r.MedianNs),
                        Size = width * 0.9,
                        FillColor = ImplColors.GetValueOrDefault(r.Impl, Other),
                        LineWidth = 0,
                    });
                    used.Add(r.Impl);
                }
            }
            if (bars.Count > 0) plt.Add.Bars(bars);
            foreach (var impl in impls.Where(used.Contains))
                plt.Legend.ManualItems.Add(new LegendItem { LabelText = impl, FillColor = ImplColors.GetValueOrDefault(impl, Other) });
            plt.ShowLegend(Alignment.UpperLeft);

            plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                [.. Enumerable.Range(0, groups.Count).Select(g => (double)g)], [.. groups.Select(g => $"{g.w}\n{g.c}")]);
            plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(decades, decadeLabels);
            plt.Axes.SetLimits(-0.6, groups.Count - 0.4, floor, top);
            for (int g = 1; g < groups.Count; g++)
                if (groups[g].w != groups[g - 1].w)
                {
                    var line = plt.Add.VerticalLine(g - 0.5);
                    line.Color = Colors.Gray.WithAlpha(0.5);
                    line.LineWidth = 1;
                }
            string panel = t == 1 ? "1 thread" : $"{t} threads";
            plt.Title(first ? $"Median time per operation, log scale (lower is better): {panel}" : panel);
            plt.YLabel("median time");
            if (first) multiplot.Reset(plt);           // a new Multiplot holds one empty plot
            else multiplot.AddPlot(plt);
        }
        multiplot.SavePng(path, Math.Max(900, 90 * groups.Count + 200), 480 * threads.Count);
        return true;
    }
}
