using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnSimd.Kernels;
using RnnSimd.Training;
using static RnnSimd.Tests.Kernels.TestSupport;
using static RnnSimd.Tests.Training.TrainingData;

namespace RnnSimd.Tests.Training;

/// <summary>Global-norm and value clipping, and the non-finite search, at every kernel set.</summary>
[Trait("Category", "Training")]
public class ClippingTests
{
    public sealed record ClipCase(Layout Layout, float GradScale, double Factor, int Seed);

    private static readonly Gen<ClipCase> ClipCases =
        from layout in Layouts
        from scale in Gen.Elements(1e-3f, 1f, 30f)
        from factor in Gen.Elements(0.0, 0.05, 0.5, 0.999, 1.001, 2.0)
        from seed in Seed
        select new ClipCase(layout, scale, factor, seed);

    /// <summary>
    /// The norm is a sum of squares in float blocks of at most 4096 (each one Dot: 16 lanes of n/16 FMAs and a 4-level
    /// tree, relative error at most (n/16 + 4)u of the sum), added in double, then a square root that halves it.
    /// </summary>
    private static readonly double NormRtol = (GradientClipping.Block / 16 + 5) * U;

    private static double Norm(IEnumerable<ParameterGroup> groups) =>
        Math.Sqrt(Gather(groups, gradients: true).Sum(v => (double)v * v));

    [Property(MaxTest = 60)]
    public Property Clip_by_global_norm_preserves_direction_and_meets_the_norm() => Check(ClipCases, c =>
    {
        var groups = Groups(c.Layout, c.Seed);
        FillGradients(groups, new Random(c.Seed + 1), c.GradScale);
        float[][] before = groups.Select(g => (float[])g.Gradients.Data.Clone()).ToArray();
        double reference = Norm(groups);
        float maxNorm = (float)(reference * c.Factor);
        double? firstNorm = null;
        foreach (var set in Sets)
        {
            for (int g = 0; g < groups.Length; g++) before[g].CopyTo(groups[g].Gradients.Data, 0);
            double norm = GradientClipping.ClipByGlobalNorm(groups, maxNorm, set);
            string tag = $"{set} {c}";
            AssertClose($"norm {tag}", [(float)norm], [reference], _ => 1e-38, NormRtol + U);
            if (firstNorm is null) firstNorm = norm; else Assert.Equal(firstNorm.Value, norm); // bitwise across sets

            double coefficient = maxNorm / (norm + 1e-6);
            for (int g = 0; g < groups.Length; g++)
            {
                float[] after = groups[g].Gradients.Data;
                if (coefficient < 1)
                {
                    // One float multiply by the rounded coefficient: exactly the double product rounded once.
                    float s = (float)coefficient;
                    float[] expected = before[g].Select(v => (float)((double)v * s)).ToArray();
                    AssertBitwiseEqual($"scaled gradients {tag}", expected, after);
                }
                else
                {
                    AssertBitwiseEqual($"unclipped gradients {tag}", before[g], after);
                }
                AssertPaddingZero($"gradients {tag}", groups[g].Gradients);
            }
            if (coefficient < 1)
            {
                double clipped = Norm(groups);
                Assert.True(clipped <= maxNorm * (1 + NormRtol + 2 * U), $"{tag}: clipped norm {clipped} > maxNorm {maxNorm}");
                AssertClose($"clipped norm {tag}", [(float)clipped], [coefficient * reference], _ => 1e-38, NormRtol + 3 * U);
            }
        }
    });

    [Property(MaxTest = 60)]
    public Property Clip_by_value_bounds_every_gradient() => Check(ClipCases, c =>
    {
        var groups = Groups(c.Layout, c.Seed);
        FillGradients(groups, new Random(c.Seed + 1), c.GradScale);
        float[][] before = groups.Select(g => (float[])g.Gradients.Data.Clone()).ToArray();
        float clip = (float)(c.GradScale * c.Factor);
        foreach (var set in Sets)
        {
            for (int g = 0; g < groups.Length; g++) before[g].CopyTo(groups[g].Gradients.Data, 0);
            GradientClipping.ClipByValue(groups, clip, set);
            for (int g = 0; g < groups.Length; g++)
            {
                float[] expected = before[g].Select(v => v > clip ? clip : v < -clip ? -clip : v).ToArray();
                AssertBitwiseEqual($"clipped {set} {c}", expected, groups[g].Gradients.Data);
                Assert.All(groups[g].Gradients.Data, v => Assert.True(Math.Abs(v) <= clip));
            }
        }
    });

    [Fact]
    public void Clip_by_value_keeps_nan()
    {
        var groups = Groups(new Layout([[40]], [[3]]), 0);
        foreach (var set in Sets)
        {
            groups[0].Gradients.Data[33] = float.NaN;
            groups[0].Gradients.Data[34] = float.PositiveInfinity;
            groups[0].Gradients.Data[35] = float.NegativeInfinity;
            GradientClipping.ClipByValue(groups, 0.5f, set);
            Assert.True(float.IsNaN(groups[0].Gradients.Data[33]), set.Name);
            Assert.Equal(0.5f, groups[0].Gradients.Data[34]);
            Assert.Equal(-0.5f, groups[0].Gradients.Data[35]);
        }
    }

    [Fact]
    public void Non_finite_norm_leaves_gradients_untouched()
    {
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            foreach (var set in Sets)
            {
                var groups = Groups(new Layout([[20, 3]], [[17]]), 1);
                FillGradients(groups, new Random(2), 10f);
                groups[1].Gradients.Data[5] = bad;
                float[][] before = groups.Select(g => (float[])g.Gradients.Data.Clone()).ToArray();
                double norm = GradientClipping.ClipByGlobalNorm(groups, 1f, set);
                Assert.False(double.IsFinite(norm));
                for (int g = 0; g < groups.Length; g++) AssertBitwiseEqual($"{bad} {set}", before[g], groups[g].Gradients.Data);
            }
    }

    public sealed record PlantCase(Layout Layout, int Count, bool InParameters, bool Huge, int Seed);

    private static readonly Gen<PlantCase> PlantCases =
        from layout in Layouts
        from count in Gen.Choose(0, 3)
        from inParameters in ArbMap.Default.GeneratorFor<bool>()
        from huge in ArbMap.Default.GeneratorFor<bool>()
        from seed in Seed
        select new PlantCase(layout, count, inParameters, huge, seed);

    /// <summary>
    /// Planted NaN / ±∞ at random places; the first in group then arena order is reported with its prefixed tensor name,
    /// flat index and value. A huge finite value (its square overflows the screening sum) must not be reported.
    /// </summary>
    [Property(MaxTest = 100)]
    public Property Find_non_finite_reports_the_first_planted_value() => Check(PlantCases, c =>
    {
        var groups = Groups(c.Layout, c.Seed);
        FillGradients(groups, new Random(c.Seed + 1), 1f);
        var rng = new Random(c.Seed + 2);
        var planted = new List<(int Group, int Offset, float Value)>();
        (int, int) Somewhere()
        {
            int g = rng.Next(groups.Length);
            var elements = Elements(groups[g].Parameters);
            return (g, elements[rng.Next(elements.Length)]);
        }
        var huge = c.Huge ? Somewhere() : (-1, -1);
        for (int k = 0; k < c.Count; k++)
        {
            var (g, off) = Somewhere();
            if ((g, off) == huge || planted.Any(p => p.Group == g && p.Offset == off)) continue;
            planted.Add((g, off, new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity }[rng.Next(3)]));
        }
        var target = (ParameterGroup g) => c.InParameters ? g.Parameters : g.Gradients;
        if (c.Huge) target(groups[huge.Item1]).Data[huge.Item2] = -3e38f;
        foreach (var (g, off, v) in planted) target(groups[g]).Data[off] = v;

        foreach (var set in Sets)
        {
            var found = c.InParameters ? NonFiniteCheck.FindParameter(groups, set) : NonFiniteCheck.FindGradient(groups, set);
            var other = c.InParameters ? NonFiniteCheck.FindGradient(groups, set) : NonFiniteCheck.FindParameter(groups, set);
            Assert.Null(other);
            if (planted.Count == 0) { Assert.Null(found); continue; }
            var (eg, eoff, ev) = planted.OrderBy(p => p.Group).ThenBy(p => p.Offset).First();
            var entry = target(groups[eg]).Entries.Single(e => eoff >= e.Offset && eoff < e.Offset + e.Length);
            Assert.NotNull(found);
            Assert.Equal(groups[eg].Prefix + entry.Name, found.Value.Name);
            Assert.Equal(eoff - entry.Offset, found.Value.Index);
            Assert.Equal(BitConverter.SingleToInt32Bits(ev), BitConverter.SingleToInt32Bits(found.Value.Value));
        }
    });

    [Fact]
    public void Clipping_norm_and_search_allocate_nothing()
    {
        var failures = new List<string>();
        foreach (var set in Sets)
        {
            var groups = Groups(new Layout([[64, 130], [5000]], [[10, 64]]), 5);
            FillGradients(groups, new Random(6), 1f);
            void Measure(string what, Action call)
            {
                long[] windows = SteadyStateAllocations(call, 100);
                if (windows[^1] != 0) failures.Add($"{what} {set}: {string.Join(", ", windows)} bytes");
            }
            Measure("GlobalNorm", () => GradientClipping.GlobalNorm(groups, set));
            Measure("ClipByGlobalNorm", () => GradientClipping.ClipByGlobalNorm(groups, 1e30f, set));
            Measure("ClipByValue", () => GradientClipping.ClipByValue(groups, 10f, set));
            Measure("FindGradient", () => NonFiniteCheck.FindGradient(groups, set));
            Measure("FindParameter", () => NonFiniteCheck.FindParameter(groups, set));
        }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }
}
