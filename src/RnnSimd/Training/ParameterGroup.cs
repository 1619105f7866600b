using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RnnSimd.Memory;

namespace RnnSimd.Training;

/// <summary>
/// Parameters and their gradients: two arenas of one layout (for example a network's <c>Parameters</c> and
/// <c>Gradients</c>). Optimizers, clipping and checks run over each arena's whole <see cref="Arena.Data"/>; the padding
/// between tensors is zero in both and every update keeps it zero.
/// </summary>
/// <param name="Prefix">Prepended to tensor names in reports and state names, e.g. "rnn." or "out.".</param>
/// <param name="Parameters">The parameters, updated in place by optimizers.</param>
/// <param name="Gradients">The gradients, same layout as <paramref name="Parameters"/>.</param>
public sealed record ParameterGroup(string Prefix, Arena Parameters, Arena Gradients)
{
    /// <summary>Checks every group: non-null, parameters and gradients of one layout, prefixes distinct.</summary>
    internal static ParameterGroup[] Validate(IReadOnlyList<ParameterGroup> groups, string paramName)
    {
        ArgumentNullException.ThrowIfNull(groups, paramName);
        var result = new ParameterGroup[groups.Count];
        var prefixes = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < result.Length; i++)
        {
            var g = groups[i] ?? throw new ArgumentException($"group {i} is null.", paramName);
            ArgumentNullException.ThrowIfNull(g.Prefix, paramName);
            ArgumentNullException.ThrowIfNull(g.Parameters, paramName);
            ArgumentNullException.ThrowIfNull(g.Gradients, paramName);
            if (!g.Parameters.HasLayoutOf(g.Gradients))
                throw new ArgumentException($"group '{g.Prefix}': parameters and gradients have different layouts.", paramName);
            if (!prefixes.Add(g.Prefix))
                throw new ArgumentException($"prefix '{g.Prefix}' is used by two groups.", paramName);
            result[i] = g;
        }
        return result;
    }

    /// <summary>A pointer to an arena's first float (arenas are pinned for their lifetime; valid for empty arenas too).</summary>
    internal static unsafe float* Pointer(Arena arena) =>
        (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(arena.Data));
}
