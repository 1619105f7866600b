using System.Runtime.InteropServices;

namespace RnnSimd.TorchGolden;

/// <summary>
/// Pins LibTorch's numerical code paths so a re-run reproduces the files byte for byte, here and on
/// any x64 machine with AVX2. Without this, MKL's GEMM picks kernels by buffer alignment and two
/// identical float32 runs in one process differed by 1-2 ulp (measured). Must run before the first
/// TorchSharp call: MKL and ATen read these variables once, from the native environment (which .NET's
/// Environment.SetEnvironmentVariable does not change on Unix, hence setenv).
/// </summary>
internal static partial class Determinism
{
    public static readonly (string Name, string Value)[] Settings =
    [
        ("MKL_CBWR", "COMPATIBLE"),         // MKL conditional numerical reproducibility: one code path, alignment-independent
        ("ATEN_CPU_CAPABILITY", "avx2"),    // ATen's own vector kernels: same width on AVX2 and AVX-512 machines
    ];

    public static void Pin()
    {
        foreach (var (name, value) in Settings)
        {
            if (OperatingSystem.IsWindows())
                Environment.SetEnvironmentVariable(name, value);
            else if (SetEnv(name, value, 1) != 0)
                throw new InvalidOperationException($"setenv({name}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public static string Describe() => string.Join(" ", Settings.Select(s => $"{s.Name}={s.Value}"));

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
