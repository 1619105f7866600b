using RnnSimd.Kernels;
using RnnSimd.Memory;

namespace RnnSimd.Training;

/// <summary>
/// Gradient norm and clipping over all parameter groups, as PyTorch's <c>clip_grad_norm_</c> and
/// <c>clip_grad_value_</c>. Explicit calls between backward and the optimizer step; allocation-free.
/// </summary>
public static unsafe class GradientClipping
{
    /// <summary>
    /// Floats per partial sum of squares: each block is one <see cref="KernelSet.Dot"/> (16 float lanes, fixed lane
    /// tree, bitwise identical across kernel sets), blocks are added in double in arena order. Blocks start at fixed
    /// offsets in the arena, so the result never depends on addresses; the float error per block is at most about
    /// (4096/16 + 4)u ≈ 1.5e-5 relative.
    /// </summary>
    internal const int Block = 4096;

    /// <summary>
    /// The global L2 norm of all gradients, √(Σ g²) over every group (deterministic; bitwise identical across kernel
    /// sets). NaN or +∞ when a gradient is not finite, or when squares overflow float (|g| ≳ 1e18).
    /// </summary>
    /// <param name="groups">The parameter groups.</param>
    /// <param name="kernels">The kernel set (null: <see cref="KernelSet.Default"/>).</param>
    public static double GlobalNorm(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(groups);
        kernels ??= KernelSet.Default;
        double sum = 0;
        for (int g = 0; g < groups.Count; g++)
        {
            float[] data = groups[g].Gradients.Data;
            for (int off = 0; off < data.Length; off += Block)
            {
                var block = data.AsSpan(off, Math.Min(Block, data.Length - off));
                sum += kernels.Dot(block, block);
            }
        }
        return Math.Sqrt(sum);
    }

    /// <summary>
    /// Computes the global L2 norm of all gradients and, when maxNorm / (norm + 1e-6) &lt; 1, scales every gradient
    /// by that factor (PyTorch's <c>clip_grad_norm_</c>). Returns the norm before clipping. When the norm is not
    /// finite the gradients are left untouched (PyTorch would multiply them by NaN or 0): check the result and skip
    /// the step.
    /// </summary>
    /// <param name="groups">The parameter groups.</param>
    /// <param name="maxNorm">The largest norm allowed (non-negative; +∞ never clips).</param>
    /// <param name="kernels">The kernel set (null: <see cref="KernelSet.Default"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxNorm"/> is negative or NaN.</exception>
    public static double ClipByGlobalNorm(IReadOnlyList<ParameterGroup> groups, float maxNorm, KernelSet? kernels = null)
    {
        if (!(maxNorm >= 0f)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "maxNorm must be non-negative.");
        kernels ??= KernelSet.Default;
        double norm = GlobalNorm(groups, kernels);
        double coefficient = maxNorm / (norm + 1e-6);
        if (double.IsFinite(norm) && coefficient < 1)
        {
            for (int g = 0; g < groups.Count; g++)
            {
                var grads = ParameterGroup.Pointer(groups[g].Gradients);
                var k = new ScaleKernel { X = grads, Dst = grads, C = (float)coefficient };
                Lanes.For(kernels.Isa, groups[g].Gradients.Data.Length, ref k);
            }
        }
        return norm;
    }

    /// <summary>Clamps every gradient to [-clip, clip] (PyTorch's <c>clip_grad_value_</c>); NaN stays NaN.</summary>
    /// <param name="groups">The parameter groups.</param>
    /// <param name="clip">The bound (non-negative).</param>
    /// <param name="kernels">The kernel set (null: <see cref="KernelSet.Default"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="clip"/> is negative or NaN.</exception>
    public static void ClipByValue(IReadOnlyList<ParameterGroup> groups, float clip, KernelSet? kernels = null)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (!(clip >= 0f)) throw new ArgumentOutOfRangeException(nameof(clip), clip, "clip must be non-negative.");
        kernels ??= KernelSet.Default;
        for (int g = 0; g < groups.Count; g++)
        {
            var k = new ClampKernel { X = ParameterGroup.Pointer(groups[g].Gradients), Lo = -clip, Hi = clip };
            Lanes.For(kernels.Isa, groups[g].Gradients.Data.Length, ref k);
        }
    }
}

/// <summary>A non-finite value found by <see cref="NonFiniteCheck"/>.</summary>
/// <param name="Name">The tensor's name with its group's prefix, e.g. "rnn.weight_hh_l0".</param>
/// <param name="Index">The flat (row-major) index inside the tensor.</param>
/// <param name="Value">The value: NaN, +∞ or -∞.</param>
public readonly record struct NonFiniteValue(string Name, int Index, float Value);

/// <summary>
/// Finds the first NaN or ±∞ in gradients or parameters, in group order then arena order. Each 4096-float block is
/// screened with one vectorised sum of squares (finite only if every element is); only a block whose sum is not
/// finite is searched element by element. Allocation-free when nothing is found.
/// </summary>
public static class NonFiniteCheck
{
    /// <summary>The first non-finite gradient, or null when all are finite.</summary>
    /// <param name="groups">The parameter groups.</param>
    /// <param name="kernels">The kernel set (null: <see cref="KernelSet.Default"/>).</param>
    public static NonFiniteValue? FindGradient(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels = null) =>
        Find(groups, kernels, gradients: true);

    /// <summary>The first non-finite parameter, or null when all are finite.</summary>
    /// <param name="groups">The parameter groups.</param>
    /// <param name="kernels">The kernel set (null: <see cref="KernelSet.Default"/>).</param>
    public static NonFiniteValue? FindParameter(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels = null) =>
        Find(groups, kernels, gradients: false);

    private static NonFiniteValue? Find(IReadOnlyList<ParameterGroup> groups, KernelSet? kernels, bool gradients)
    {
        ArgumentNullException.ThrowIfNull(groups);
        kernels ??= KernelSet.Default;
        for (int g = 0; g < groups.Count; g++)
        {
            Arena arena = gradients ? groups[g].Gradients : groups[g].Parameters;
            float[] data = arena.Data;
            for (int off = 0; off < data.Length; off += GradientClipping.Block)
            {
                var block = data.AsSpan(off, Math.Min(GradientClipping.Block, data.Length - off));
                if (float.IsFinite(kernels.Dot(block, block))) continue;
                for (int i = 0; i < block.Length; i++)
                    if (!float.IsFinite(block[i])) return Locate(groups[g].Prefix, arena, off + i, block[i]);
            }
        }
        return null;
    }

    private static NonFiniteValue Locate(string prefix, Arena arena, int offset, float value)
    {
        for (int e = 0; e < arena.Entries.Count; e++)
        {
            var entry = arena.Entries[e];
            if (offset >= entry.Offset && offset < entry.Offset + entry.Length)
                return new NonFiniteValue(prefix + entry.Name, offset - entry.Offset, value);
        }
        return new NonFiniteValue(prefix + "(padding)", offset, value); // padding is zero unless someone wrote into it
    }
}
