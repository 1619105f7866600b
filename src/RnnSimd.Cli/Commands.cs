using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RnnSimd.Kernels;

namespace RnnSimd.Cli;

/// <summary>The rnnsimd commands.</summary>
internal static class Commands
{
    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs a command with its output and error streams given (tests capture them).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        try
        {
            string command = args.Length > 0 ? args[0] : "help";
            switch (command)
            {
                case "info": return Info(output);
                case "demo": return SelfCheck.Run(output);
                case "inspect": return InspectCommand.Run(args.AsSpan(1), output, error);
                case "grad": return GradCommand.Run(args.AsSpan(1), output, error);
                case "help" or "--help" or "-h":
                    output.WriteLine("usage: rnnsimd <command>\n  info   kernel set, CPU features, versions\n  demo   run the kernel self-check\n  inspect FILE.safetensors   metadata and tensors of a safetensors file\n  grad --case CASE.safetensors --out RESULT.safetensors   forward + BPTT of a PyTorch parity case");
                    return 0;
                default:
                    error.WriteLine($"rnnsimd: unknown command '{command}' (try 'rnnsimd help').");
                    return 2;
            }
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException)
        {
            error.WriteLine($"rnnsimd: {e.Message}");
            return 1;
        }
    }

    public static int Info(TextWriter o)
    {
        var version = typeof(KernelSet).Assembly.GetName().Version;
        o.WriteLine($"RnnSimd {version}");
        o.WriteLine($".NET {RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} ({RuntimeInformation.ProcessArchitecture})");
        o.WriteLine($"active kernel set: {KernelSet.Default.Name} ({KernelSet.Default.Description})");
        string forced = Environment.GetEnvironmentVariable(KernelSet.EnvironmentVariable) ?? "";
        o.WriteLine($"{KernelSet.EnvironmentVariable}: {(forced.Length == 0 ? "(not set)" : forced)}");
        o.WriteLine("kernel sets:");
        foreach (var set in KernelSet.All)
            o.WriteLine($"  {set.Name,-7} {(set.IsSupported ? "supported  " : "unsupported")} {set.Description}");
        o.WriteLine("CPU/runtime features:");
        o.WriteLine($"  Vector512.IsHardwareAccelerated={Vector512.IsHardwareAccelerated} Vector256.IsHardwareAccelerated={Vector256.IsHardwareAccelerated}");
        o.WriteLine($"  Avx512F={Avx512F.IsSupported} Avx2={Avx2.IsSupported} Fma={Fma.IsSupported} Avx={Avx.IsSupported} Sse42={Sse42.IsSupported}");
        o.WriteLine($"  processors: {Environment.ProcessorCount}");
        return 0;
    }
}
