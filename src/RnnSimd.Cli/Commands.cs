using System.CommandLine;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RnnSimd.Kernels;

namespace RnnSimd.Cli;

/// <summary>The rnnsimd command line (System.CommandLine). Bad arguments and files give one line on stderr and a non-zero exit code.</summary>
internal static partial class Commands
{
    public static int Run(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs a command with its output and error streams given (tests capture them).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        bool verbose = args.Contains("--verbose");
        if (verbose) args = args.Where(a => a != "--verbose").ToArray();
        var root = Build(output, error);
        if (args.Length > 0 && !args[0].StartsWith('-') && root.Subcommands.All(c => c.Name != args[0]))
        {
            string name = args[0].Length > 40 ? args[0][..40] + "…" : args[0];
            error.WriteLine($"rnnsimd: unknown command '{name.ReplaceLineEndings(" ")}'; commands: {string.Join(", ", root.Subcommands.Select(c => c.Name))} (see rnnsimd --help)");
            return 2;
        }
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            string message = string.Join(' ', parsed.Errors[0].Message.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries));
            error.WriteLine($"rnnsimd: {message} ({Usage(parsed.CommandResult.Command)})");
            return 2;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException
                                      or NotSupportedException or InvalidOperationException or KeyNotFoundException)
        {
            error.WriteLine($"rnnsimd: {OneLine(e.Message)}");
            return 1;
        }
        catch (Exception e)
        {
            // Not an expected failure: one line and exit 70 (EX_SOFTWARE); the stack trace only with --verbose.
            error.WriteLine($"rnnsimd: internal error ({e.GetType().Name}): {OneLine(e.Message)}. Please report it, with the command; "
                + (verbose ? "stack trace follows." : "run it again with --verbose for the stack trace."));
            if (verbose) error.WriteLine(e.ToString());
            return 70;
        }
    }

    /// <summary>A message on one line, at most 500 characters (a hostile file must not produce a 100 MB line).</summary>
    private static string OneLine(string message)
    {
        string line = message.ReplaceLineEndings(" ");
        return line.Length <= 500 ? line : string.Concat(line.AsSpan(0, 500), $"… ({line.Length} characters)");
    }

    private static string Usage(Command c) => c.Name switch
    {
        "inspect" => InspectCommand.Usage,
        "grad" => "usage: rnnsimd grad --case CASE.safetensors --out RESULT.safetensors",
        _ when c is RootCommand => "usage: rnnsimd <info|demo|train|sample|inspect|grad|onnx-run|onnx-test|convert> [options]; see rnnsimd --help",
        _ => $"usage: see rnnsimd {c.Name} --help",
    };

    private static RootCommand Build(TextWriter o, TextWriter e)
    {
        var root = new RootCommand("RnnSimd: SIMD recurrent networks (RNN, LSTM, GRU) for .NET.");

        var info = new Command("info", "Active kernel set, what the CPU and runtime support, versions.");
        info.SetAction(_ => Info(o));
        root.Subcommands.Add(info);

        var inspectFile = new Argument<string>("file") { Description = "A .safetensors or .onnx file." };
        var inspect = new Command("inspect", "Tensors, dtypes, shapes and metadata of a safetensors file; graph, nodes and what RnnSimd runs of an ONNX model.") { inspectFile };
        inspect.SetAction(pr => InspectCommand.Run([pr.GetValue(inspectFile)!], o, e));
        root.Subcommands.Add(inspect);

        var caseOpt = new Option<string>("--case") { Description = "CASE.safetensors: state_dict, input, h0, [c0], target and metadata.", Required = true };
        var outOpt = new Option<string>("--out") { Description = "RESULT.safetensors to write.", Required = true };
        var grad = new Command("grad", "PyTorch parity: forward + full BPTT of 0.5*sum((output-target)^2) for a case file.") { caseOpt, outOpt };
        grad.SetAction(pr => GradCommand.Run(["--case", pr.GetValue(caseOpt)!, "--out", pr.GetValue(outOpt)!], o, e));
        root.Subcommands.Add(grad);

        AddTrainingCommands(root, o, e);
        AddOnnxCommands(root, o, e);
        root.Subcommands.Add(EvaluateCommand.Create(o));
        root.Subcommands.Add(QuantizeCommand.Create(o));
        return root;
    }

    static partial void AddTrainingCommands(RootCommand root, TextWriter o, TextWriter e);

    static partial void AddOnnxCommands(RootCommand root, TextWriter o, TextWriter e);

    public static int Info(TextWriter o)
    {
        var version = typeof(KernelSet).Assembly.GetName().Version;
        o.WriteLine($"RnnSimd {version}");
        o.WriteLine($".NET {RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} ({RuntimeInformation.ProcessArchitecture})");
        o.WriteLine($"active kernel set: {KernelSet.Default.Name} ({KernelSet.Default.Description})");
        o.WriteLine($"the CPU offers: {KernelSet.CpuBest.Name} (CPUID){(KernelSet.DefaultIsNarrowerThanCpu ? ": NARROWER THAN THE CPU OFFERS" : "")}");
        o.WriteLine($"why: {KernelSet.DefaultReason}");
        string forced = Environment.GetEnvironmentVariable(KernelSet.EnvironmentVariable) ?? "";
        o.WriteLine($"{KernelSet.EnvironmentVariable}: {(forced.Length == 0 ? "(not set)" : forced)}");
        o.WriteLine("kernel sets:");
        foreach (var set in KernelSet.All)
            o.WriteLine($"  {set.Name,-7} {(set.IsSupported ? "supported  " : "unsupported")} {set.Description}");
        QuantizeCommand.PrintPrecisions(o);
        o.WriteLine("CPU/runtime features:");
        o.WriteLine($"  Vector512.IsHardwareAccelerated={Vector512.IsHardwareAccelerated} Vector256.IsHardwareAccelerated={Vector256.IsHardwareAccelerated}");
        o.WriteLine($"  Avx512F={Avx512F.IsSupported} Avx2={Avx2.IsSupported} Fma={Fma.IsSupported} Avx={Avx.IsSupported} Sse42={Sse42.IsSupported}");
        o.WriteLine($"  processors: {Environment.ProcessorCount}");
        return 0;
    }
}
