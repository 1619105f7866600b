using ScottPlot;

namespace RnnSimd.Cli;

/// <summary>PNG plots of the demo (ScottPlot).</summary>
internal static class Plots
{
    private static readonly Color[] Colors = [new Color(214, 39, 40), new Color(31, 119, 180), new Color(44, 160, 44)];

    /// <summary>Training loss (smoothed) of every cell against the step, with the baseline as a dashed line.</summary>
    public static void Losses(string path, IReadOnlyList<DemoCommand.Result> results, double baseline)
    {
        var plt = new Plot();
        for (int i = 0; i < results.Count; i++)
        {
            var r = results[i];
            double[] smooth = Smooth(r.Losses, 25);
            var line = plt.Add.Signal(smooth);
            line.LegendText = r.Cell;
            line.Color = Colors[i % Colors.Length];
            line.LineWidth = 2;
        }
        var b = plt.Add.HorizontalLine(baseline);
        b.LinePattern = LinePattern.Dashed;
        b.Color = Colors[0].WithAlpha(0.6);
        b.LegendText = "baseline 1/6 (always predict 1)";
        plt.Axes.SetLimitsY(0, Math.Max(0.35, baseline * 1.5));
        plt.Title("Adding problem: training MSE");
        plt.XLabel("step");
        plt.YLabel("MSE (moving average of 25 steps)");
        plt.ShowLegend(Alignment.UpperRight);
        plt.SavePng(path, 900, 540);
    }

    /// <summary>|dL/dh_t| against t (log scale) at initialisation (dashed) and after training (solid).</summary>
    public static void GradientFlow(string path, IReadOnlyList<DemoCommand.Result> results)
    {
        var plt = new Plot();
        for (int i = 0; i < results.Count; i++)
        {
            var r = results[i];
            foreach (var (flow, after) in new[] { (r.FlowBefore, false), (r.FlowAfter, true) })
            {
                double[] log = flow.Select(v => Math.Log10(Math.Max(v, 1e-30))).ToArray();
                var line = plt.Add.Signal(log);
                line.Color = Colors[i % Colors.Length];
                line.LineWidth = after ? 2 : 1.5f;
                line.LinePattern = after ? LinePattern.Solid : LinePattern.Dashed;
                line.LegendText = $"{r.Cell} {(after ? "after training" : "at initialisation")}";
            }
        }
        plt.Title("Gradient flow: how much of the last step's error reaches step t");
        plt.XLabel("time step t (the loss is at the last step)");
        plt.YLabel("log10 ||dL/dh_t||");
        plt.ShowLegend(Alignment.LowerRight);
        plt.SavePng(path, 900, 540);
    }

    private static double[] Smooth(double[] v, int window)
    {
        var s = new double[v.Length];
        double sum = 0;
        for (int i = 0; i < v.Length; i++)
        {
            sum += v[i];
            if (i >= window) sum -= v[i - window];
            s[i] = sum / Math.Min(i + 1, window);
        }
        return s;
    }
}
