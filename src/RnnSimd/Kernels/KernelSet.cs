using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using X86 = System.Runtime.Intrinsics.X86;

namespace RnnSimd.Kernels;

/// <summary>The instruction-set width a <see cref="KernelSet"/> targets.</summary>
public enum KernelIsa
{
    /// <summary>Plain scalar loops (with <see cref="MathF.FusedMultiplyAdd"/>, the same arithmetic contract as the vector sets).</summary>
    Scalar = 0,
    /// <summary><see cref="Vector256{T}"/> with FMA (AVX2 + FMA3).</summary>
    Avx2 = 1,
    /// <summary><see cref="Vector512{T}"/> with FMA (AVX-512F).</summary>
    Avx512 = 2,
}

/// <summary>
/// A named implementation of every kernel ("avx512", "avx2", "scalar"). One ordered list (<see cref="All"/>,
/// widest first) drives production, tests and benchmarks. The default is the widest set the CPU supports,
/// unless the environment variable <c>RNNSIMD_KERNELS</c> names one.
/// </summary>
/// <remarks>
/// Arithmetic contract shared by every set: element-wise ops, GEMM (each C element is one sequential FMA chain
/// over k within a fixed k-block of <see cref="Gemm.KBlock"/>) and packed GEMV (four interleaved FMA chains over k)
/// perform the same IEEE operations in the same order in every set, so their results are bitwise identical across
/// sets. Only <see cref="Dot"/>-based kernels (row-major GEMV) split reductions by vector lanes and differ by rounding.
/// </remarks>
public sealed partial class KernelSet
{
    /// <summary>The environment variable that forces a kernel set by name.</summary>
    public const string EnvironmentVariable = "RNNSIMD_KERNELS";

    private KernelSet(string name, KernelIsa isa, bool isSupported, string description)
    {
        Name = name;
        Isa = isa;
        IsSupported = isSupported;
        Description = description;
    }

    /// <summary>The set's name: "avx512", "avx2" or "scalar".</summary>
    public string Name { get; }

    /// <summary>The instruction-set width the set uses.</summary>
    public KernelIsa Isa { get; }

    /// <summary>Whether this process can run the set (CPU support and the runtime's <c>DOTNET_Enable*</c> settings).</summary>
    public bool IsSupported { get; }

    /// <summary>A one-line description of what the set uses.</summary>
    public string Description { get; }

    /// <summary>Vector512 + FMA.</summary>
    public static KernelSet Avx512 { get; } = new("avx512", KernelIsa.Avx512,
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Fma.IsSupported, "Vector512<float> + FMA (AVX-512F)");

    /// <summary>Vector256 + FMA.</summary>
    public static KernelSet Avx2 { get; } = new("avx2", KernelIsa.Avx2,
        Vector256.IsHardwareAccelerated && X86.Avx2.IsSupported && Fma.IsSupported, "Vector256<float> + FMA (AVX2)");

    /// <summary>Plain loops; always supported.</summary>
    public static KernelSet Scalar { get; } = new("scalar", KernelIsa.Scalar, true, "scalar loops with fused multiply-add");

    /// <summary>Every kernel set, widest first. Production picks the first supported one.</summary>
    public static IReadOnlyList<KernelSet> All { get; } = [Avx512, Avx2, Scalar];

    /// <summary>The sets this process can run, widest first.</summary>
    public static IReadOnlyList<KernelSet> Supported { get; } = All.Where(s => s.IsSupported).ToArray();

    private static KernelSet? s_default;

    /// <summary>
    /// The set used when none is given: <c>RNNSIMD_KERNELS</c> if set, else the widest supported set.
    /// Settable once at start-up (for example by a benchmark harness); models capture it when created.
    /// </summary>
    /// <exception cref="ArgumentException">The environment variable names an unknown or unsupported set.</exception>
    public static KernelSet Default
    {
        get
        {
            if (s_default is { } d) return d;
            var chosen = ChooseDefault(Environment.GetEnvironmentVariable(EnvironmentVariable));
            s_default = chosen;
            WarnIfNarrower(chosen);
            return chosen;
        }
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            if (!value.IsSupported) throw Unsupported(value);
            s_default = value;
        }
    }

    /// <summary>Finds a set by name (case-insensitive) and checks that this process can run it.</summary>
    /// <exception cref="ArgumentException">Unknown name, or the CPU/runtime lacks the instructions.</exception>
    public static KernelSet Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var set in All)
        {
            if (string.Equals(set.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
                return set.IsSupported ? set : throw Unsupported(set);
        }
        throw new ArgumentException(
            $"Unknown kernel set '{name}'; expected one of: {string.Join(", ", All.Select(s => s.Name))}.", nameof(name));
    }

    internal static KernelSet ChooseDefault(string? requested) =>
        string.IsNullOrWhiteSpace(requested) ? Supported[0] : Get(requested);

    private static ArgumentException Unsupported(KernelSet set) => new(
        $"Kernel set '{set.Name}' ({set.Description}) is not supported by this CPU or runtime; supported: " +
        $"{string.Join(", ", Supported.Select(s => s.Name))}.", "name");

    /// <inheritdoc />
    public override string ToString() => Name;
}
