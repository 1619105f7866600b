using System.Runtime.Intrinsics;
using RnnSimd.Kernels;

namespace RnnSimd.Tests.Kernels;

/// <summary>
/// What the CPU offers (CPUID) against what runs, and the reason given. Category Kernels, so the ISA-matrix children
/// (<see cref="IsaMatrix"/>, wide sets switched off by DOTNET_Enable*=0) run it too: there the default is narrower
/// than the CPU and the reason must name the variable that made it so.
/// </summary>
[Trait("Category", "Kernels")]
public class KernelSetCpuTests
{
    [Fact]
    public void The_cpu_offers_at_least_what_runs_and_the_reason_says_why_the_default_is_what_it_is()
    {
        Assert.True(KernelSet.CpuBest.Isa >= KernelSet.Supported[0].Isa,
            $"CPUID says {KernelSet.CpuBest.Name} but the runtime runs {KernelSet.Supported[0].Name}");
        string reason = KernelSet.DefaultReason;
        Assert.Contains($"'{KernelSet.Default.Name}'", reason);
        Assert.Contains($"this CPU offers {KernelSet.CpuBest.Name}", reason);
        if (Environment.GetEnvironmentVariable(KernelSet.EnvironmentVariable) is { Length: > 0 }) return;
        if (Environment.GetEnvironmentVariable(IsaMatrix.ExpectVariable) is { } expected && KernelSet.CpuBest.Isa > KernelSet.Default.Isa)
        {
            // A child with wide sets switched off: narrower than the CPU, and the variable responsible is named.
            Assert.True(KernelSet.DefaultIsNarrowerThanCpu);
            Assert.Matches(@"DOTNET_Enable\w+=0", reason);
            return;
        }
        if (KernelSet.DefaultIsNarrowerThanCpu)
            // Only the runtime's own choice can narrow a plain JIT process: 512-bit vectors kept off on some CPUs.
            Assert.Contains("Vector512.IsHardwareAccelerated is false", reason);
        else
            Assert.Contains("widest", reason);
    }

    [Fact]
    public void A_set_forced_by_name_is_explained_as_asked_for()
    {
        string reason = KernelSet.Explain(KernelSet.Scalar, " scalar ");
        Assert.Contains($"{KernelSet.EnvironmentVariable}=scalar", reason);
        Assert.Contains("'scalar' was asked for", reason);
    }

    [Fact]
    public void Cpuid_agrees_with_the_runtime_where_the_runtime_enables_a_set()
    {
        // Where the runtime says the instructions are there, CPUID must report them too (a detection bug would claim less).
        if (KernelSet.Avx512.IsSupported) Assert.Equal(KernelIsa.Avx512, KernelSet.CpuBest.Isa);
        else if (KernelSet.Avx2.IsSupported) Assert.True(KernelSet.CpuBest.Isa >= KernelIsa.Avx2);
        if (!Vector256.IsHardwareAccelerated && Environment.GetEnvironmentVariable(IsaMatrix.ExpectVariable) is null)
            Assert.Equal(KernelIsa.Scalar, KernelSet.Supported[0].Isa);
    }
}
