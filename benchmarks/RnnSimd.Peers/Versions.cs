using Microsoft.ML.OnnxRuntime;
using RnnSimd.Kernels;

namespace RnnSimd.Peers;

/// <summary>The versions the peer results depend on, as "key: value" lines (peers.sh keeps them beside the results).</summary>
internal static class Versions
{
    public static int Print(TextWriter o)
    {
        o.WriteLine($"TorchSharp: {typeof(TorchSharp.torch).Assembly.GetName().Version}");
        o.WriteLine($"LibTorch: {TorchSharp.torch.__version__}");
        o.WriteLine($"OnnxRuntime: {OrtEnv.Instance().GetVersionString()}");
        o.WriteLine($"OnnxRuntime managed: {typeof(InferenceSession).Assembly.GetName().Version}");
        o.WriteLine($"RnnSimd kernel set: {KernelSet.Default.Name}");
        o.WriteLine($".NET runtime: {Environment.Version}");
        return 0;
    }
}
