using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RnnSimd.Kernels;

namespace RnnSimd.Tests.Kernels;

/// <summary>
/// Re-runs every kernel test (Category=Kernels), and the shared-network, multi-stream and reduced-precision tests, in a child process with wide instruction sets switched off in the
/// runtime, so the narrower code paths are compiled and tested as a CPU without those instructions would run them.
/// The child first asserts that the setting took effect (<see cref="IsaEnvironment.Requested_instruction_sets_took_effect"/>).
/// .NET 10 renamed the AVX-512 knob: DOTNET_EnableAVX512F=0 alone no longer disables it, so the child gets both
/// DOTNET_EnableAVX512F=0 and DOTNET_EnableAVX512=0; the assertion is what proves it.
/// </summary>
public class IsaMatrix
{
    public const string ExpectVariable = "RNNSIMD_TEST_EXPECT_SETS";

    [Theory]
    [InlineData("avx2,scalar", new[] { "DOTNET_EnableAVX512F=0", "DOTNET_EnableAVX512=0" }, null)]
    [InlineData("scalar", new[] { "DOTNET_EnableHWIntrinsic=0" }, null)]
    // An AVX2 CPU without AVX-VNNI (Zen 3): the int8 products take the vpmaddwd path. Only the tests that differ there.
    [InlineData("avx2,scalar", new[] { "DOTNET_EnableAVX512F=0", "DOTNET_EnableAVX512=0", "DOTNET_EnableAVXVNNI=0" },
        "FullyQualifiedName~QuantizedGemvTests|FullyQualifiedName~IsaEnvironment|FullyQualifiedName~ReducedPrecisionTests")]
    // An AVX-512 CPU without AVX-VNNI (Skylake-SP): the avx512 set's int8 products take 512-bit vpmaddwd (AVX-512BW), the
    // only run where whole networks use that path. Needs AVX-512 and AVX-VNNI in the parent (else nothing differs).
    [InlineData("avx512,avx2,scalar", new[] { "DOTNET_EnableAVXVNNI=0" },
        "FullyQualifiedName~QuantizedGemvTests.Int8_paths|FullyQualifiedName~IsaEnvironment|FullyQualifiedName~ReducedPrecisionTests")]
    public async Task Kernel_tests_pass_with_instruction_sets_disabled(string expectedSets, string[] environment, string? only)
    {
        if (Environment.GetEnvironmentVariable(ExpectVariable) is not null) return; // already a child: no recursion
        if (expectedSets.Contains("avx512") && !(KernelSet.Avx512.IsSupported && AvxVnni.IsSupported)) return;
        string dll = typeof(IsaMatrix).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The kernels, and the tests of one network shared by threads, of the multi-stream stepper and of the reduced-
        // precision networks (their bitwise claims must hold for the code the JIT emits without the wide instructions too).
        string filter = only ?? "Category=Kernels|FullyQualifiedName~SharedNetworkTests|FullyQualifiedName~MultiStreamTests|FullyQualifiedName~ReducedPrecisionTests";
        foreach (var arg in new[] { "test", dll, "--filter", filter }) psi.ArgumentList.Add(arg);
        foreach (var kv in environment)
        {
            var parts = kv.Split('=', 2);
            psi.Environment[parts[0]] = parts[1];
        }
        psi.Environment[ExpectVariable] = expectedSets;
        psi.Environment.Remove(KernelSet.EnvironmentVariable);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        await p.WaitForExitAsync(timeout.Token);
        string output = await stdout + await stderr;
        Assert.True(p.ExitCode == 0, $"child run with {string.Join(' ', environment)} failed (exit {p.ExitCode}):\n{output}");
        Assert.Matches(@"Passed!\s+-\s+Failed:\s+0,\s+Passed:\s+[1-9]", output);
    }
}

/// <summary>Runs in every process, child or not: checks what the runtime reports against what the parent asked for.</summary>
[Trait("Category", "Kernels")]
public class IsaEnvironment
{
    [Fact]
    public void Requested_instruction_sets_took_effect()
    {
        string? expected = Environment.GetEnvironmentVariable(IsaMatrix.ExpectVariable);
        var supported = string.Join(",", KernelSet.Supported.Select(s => s.Name));
        if (expected is null)
        {
            // The parent process: the widest set is the default unless forced, and scalar is always last.
            Assert.Equal("scalar", KernelSet.Supported[^1].Name);
            Assert.Equal(KernelSet.Avx512.IsSupported, Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Fma.IsSupported);
            return;
        }
        Assert.Equal(expected, supported);
        if (!expected.Contains("avx512")) Assert.False(Vector512.IsHardwareAccelerated, "Vector512 is still accelerated");
        if (!expected.Contains("avx2")) Assert.False(Vector256.IsHardwareAccelerated, "Vector256 is still accelerated");
        Assert.Equal(KernelSet.Supported[0], KernelSet.Default);
    }

    [Fact]
    public void Forcing_by_name_and_errors()
    {
        Assert.Same(KernelSet.Scalar, KernelSet.ChooseDefault("scalar"));
        Assert.Same(KernelSet.Supported[0], KernelSet.ChooseDefault(null));
        Assert.Same(KernelSet.Supported[0], KernelSet.ChooseDefault(" "));
        var unknown = Assert.Throws<ArgumentException>(() => KernelSet.Get("sse9"));
        Assert.Contains("avx512, avx2, scalar", unknown.Message);
        foreach (var set in KernelSet.All.Where(s => !s.IsSupported))
            Assert.Contains("not supported", Assert.Throws<ArgumentException>(() => KernelSet.Get(set.Name)).Message);
    }
}
