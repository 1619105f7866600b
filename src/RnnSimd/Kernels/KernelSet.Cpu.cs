using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using X86 = System.Runtime.Intrinsics.X86;

namespace RnnSimd.Kernels;

public sealed partial class KernelSet
{
    /// <summary>
    /// The widest set the CPU itself offers, from CPUID (AVX-512F for avx512; AVX2, FMA and AVX for avx2), whatever this
    /// process enables. It can be wider than <see cref="Supported"/>[0]: a Native AOT build compiled for a baseline
    /// instruction set, <c>DOTNET_EnableAVX512F=0</c> and the like, or a runtime that keeps 512-bit vectors off, all
    /// leave instructions the CPU has unused. <see cref="DefaultReason"/> says which.
    /// </summary>
    public static KernelSet CpuBest => s_cpuBest ??= DetectCpuBest();

    private static KernelSet? s_cpuBest; // lazily: the sets are static properties of another file (initialisation order)

    /// <summary>Whether <see cref="Default"/> is narrower than what the CPU offers (<see cref="CpuBest"/>): the library then runs slower than it could.</summary>
    public static bool DefaultIsNarrowerThanCpu => Default.Isa < CpuBest.Isa;

    /// <summary>
    /// Why <see cref="Default"/> is the set it is, in one sentence, and, when it is narrower than the CPU offers, what
    /// to change (for example the Native AOT setting <c>&lt;IlcInstructionSet&gt;native&lt;/IlcInstructionSet&gt;</c>).
    /// The first time <see cref="Default"/> is chosen narrower than the CPU, this text is also written once to
    /// <see cref="Trace.TraceWarning(string)"/>.
    /// </summary>
    public static string DefaultReason => Explain(Default, Environment.GetEnvironmentVariable(EnvironmentVariable));

    private static int s_warned;

    private static void WarnIfNarrower(KernelSet chosen)
    {
        if (chosen.Isa < CpuBest.Isa && Interlocked.Exchange(ref s_warned, 1) == 0)
            Trace.TraceWarning("RnnSimd: " + Explain(chosen, Environment.GetEnvironmentVariable(EnvironmentVariable)));
    }

    internal static string Explain(KernelSet chosen, string? requested)
    {
        string cpu = $"this CPU offers {CpuBest.Name}";
        if (!string.IsNullOrWhiteSpace(requested))
            return $"'{chosen.Name}' was asked for by {EnvironmentVariable}={requested.Trim()} ({cpu}).";
        if (chosen.Isa >= CpuBest.Isa)
            return $"'{chosen.Name}' is the widest set {(CpuBest.Isa == KernelIsa.Scalar ? "this CPU has" : "the CPU offers")} ({cpu}).";
        string? disabled = DisablingVariable(CpuBest.Isa);
        string why = disabled is not null
            ? $"the runtime was told not to use it ({disabled})"
            : !RuntimeFeature.IsDynamicCodeSupported
                ? "this Native AOT build was compiled for a baseline instruction set; publish with "
                  + "<IlcInstructionSet>native</IlcInstructionSet> for the build machine's CPU, or an explicit level: "
                  + "x86-64-v3 gives avx2, x86-64-v4 gives avx512"
                : CpuBest.Isa == KernelIsa.Avx512 && !Vector512.IsHardwareAccelerated
                    ? "the runtime keeps 512-bit vectors off on this CPU (Vector512.IsHardwareAccelerated is false); "
                      + "DOTNET_PreferredVectorBitWidth=512 turns them on"
                    : "the runtime does not enable its instructions in this process";
        return $"'{chosen.Name}' runs although {cpu}: {why}.";
    }

    /// <summary>A DOTNET_Enable* variable set to 0 that turns off an instruction set the given width needs, if any.</summary>
    private static string? DisablingVariable(KernelIsa isa)
    {
        string[] names = isa == KernelIsa.Avx512
            ? ["DOTNET_EnableHWIntrinsic", "DOTNET_EnableAVX", "DOTNET_EnableAVX2", "DOTNET_EnableFMA", "DOTNET_EnableAVX512F", "DOTNET_EnableAVX512"]
            : ["DOTNET_EnableHWIntrinsic", "DOTNET_EnableAVX", "DOTNET_EnableAVX2", "DOTNET_EnableFMA"];
        foreach (var n in names)
            if (Environment.GetEnvironmentVariable(n)?.Trim() == "0") return n + "=0";
        return null;
    }

    private static KernelSet DetectCpuBest()
    {
        if (!X86.X86Base.IsSupported) return Scalar;
        var (max, _, _, _) = X86.X86Base.CpuId(0, 0);
        var (_, _, ecx1, _) = X86.X86Base.CpuId(1, 0);
        bool avx = (ecx1 & (1 << 28)) != 0, fma = (ecx1 & (1 << 12)) != 0, osxsave = (ecx1 & (1 << 27)) != 0;
        if (max < 7 || !avx || !fma || !osxsave) return Scalar;
        var (_, ebx7, _, _) = X86.X86Base.CpuId(7, 0);
        bool avx2 = (ebx7 & (1 << 5)) != 0, avx512f = (ebx7 & (1 << 16)) != 0;
        return avx512f && avx2 ? Avx512 : avx2 ? Avx2 : Scalar;
    }
}
