using FsCheck;
using FsCheck.Fluent;
using RnnSimd.Memory;
using RnnSimd.Training;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Training;

/// <summary>Parameter groups with seeded data for optimizer and clipping tests.</summary>
public static class TrainingData
{
    /// <summary>Tensor shapes of two groups ("rnn.", "out."): 1-D and 2-D, sizes biased to vector boundaries.</summary>
    public sealed record Layout(int[][] Rnn, int[][] Out)
    {
        public override string ToString() =>
            $"rnn [{string.Join(" ", Rnn.Select(s => "(" + string.Join(",", s) + ")"))}] out [{string.Join(" ", Out.Select(s => "(" + string.Join(",", s) + ")"))}]";
    }

    private static readonly Gen<int[]> Shape = Gen.OneOf(
        Dim(70).Select(n => new[] { n }),
        from r in Dim(12) from c in Dim(33) select new[] { r, c });

    /// <summary>Layouts: 1-3 tensors in "rnn.", 1-2 in "out.".</summary>
    public static readonly Gen<Layout> Layouts =
        from a in Gen.Choose(1, 3).SelectMany(k => Gen.ArrayOf(Shape, k))
        from b in Gen.Choose(1, 2).SelectMany(k => Gen.ArrayOf(Shape, k))
        select new Layout(a, b);

    /// <summary>The two groups, parameters uniform in [-1, 1], gradients zero.</summary>
    public static ParameterGroup[] Groups(Layout layout, int seed)
    {
        var rng = new Random(seed);
        ParameterGroup Make(string prefix, int[][] shapes)
        {
            var p = new Arena(shapes.Select((s, i) => ($"t{i}", s)));
            foreach (var e in p.Entries)
            {
                var v = p.View(e);
                for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
            }
            return new ParameterGroup(prefix, p, p.CloneLayout());
        }
        return [Make("rnn.", layout.Rnn), Make("out.", layout.Out)];
    }

    /// <summary>The offsets in <see cref="Arena.Data"/> of every tensor element, in layout order.</summary>
    public static int[] Elements(Arena a) =>
        a.Entries.SelectMany(e => Enumerable.Range(e.Offset, e.Length)).ToArray();

    /// <summary>Every tensor element of the parameters (or gradients) of all groups, concatenated.</summary>
    public static float[] Gather(IEnumerable<ParameterGroup> groups, bool gradients = false) =>
        groups.SelectMany(g =>
        {
            var a = gradients ? g.Gradients : g.Parameters;
            return Elements(a).Select(i => a.Data[i]);
        }).ToArray();

    /// <summary>Fills every gradient element with uniform values in [-scale, scale]; padding stays zero.</summary>
    public static void FillGradients(IEnumerable<ParameterGroup> groups, Random rng, float scale)
    {
        foreach (var g in groups)
            foreach (int i in Elements(g.Gradients))
                g.Gradients.Data[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
    }

    /// <summary>Asserts that every float of <paramref name="a"/> outside its tensors is zero.</summary>
    public static void AssertPaddingZero(string what, Arena a)
    {
        var inside = new bool[a.Data.Length];
        foreach (int i in Elements(a)) inside[i] = true;
        for (int i = 0; i < inside.Length; i++)
            if (!inside[i] && a.Data[i] != 0f)
                throw new Xunit.Sdk.XunitException($"{what}: padding float {i} is {a.Data[i]:R}, expected 0");
    }
}
