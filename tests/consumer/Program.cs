// A consumer of the RnnSimd package, built from scratch outside the solution by tests/consumer/run.sh (JIT and
// Native AOT). It steps an LSTM (float32 and int8) and runs a GRU sequence, checks that the hot calls allocate
// nothing, and prints every output bit pattern, so the JIT and AOT builds can be compared bitwise.
using System.Globalization;
using System.Text;
using RnnSimd.Kernels;
using RnnSimd.Layers;

var report = new StringBuilder();
report.AppendLine($"kernels: {KernelSet.Default.Name}");
report.AppendLine($"cpu offers: {KernelSet.CpuBest.Name}");
report.AppendLine($"reason: {KernelSet.DefaultReason}");

var lstm = new RecurrentNetwork(new RecurrentOptions(CellType.Lstm, 16, 64, NumLayers: 2), seed: 42);
foreach (var net in new[] { lstm, lstm.ToInference(Precision.BFloat16), lstm.ToInference(Precision.Int8) })
{
    var state = net.CreateState();
    var x = new float[16];
    var h = new float[64];
    void Steps(int from, int count)
    {
        for (int t = from; t < from + count; t++)
        {
            for (int i = 0; i < x.Length; i++) x[i] = MathF.Sin(0.1f * t + i);
            net.Step(state, x, h);
        }
    }
    Steps(0, 20);                                   // warm-up: JIT tiers, lazy buffers
    long before = GC.GetAllocatedBytesForCurrentThread();
    Steps(20, 200);
    long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
    if (allocated != 0)
    {
        Console.Error.WriteLine($"FAIL: {net.Precision.Name()} Step allocated {allocated} B over 200 steps (expected 0)");
        return 2;
    }
    report.AppendLine($"step {net.Precision.Name()}: {Bits(h)}");
}

var gru = new RecurrentNetwork(new RecurrentOptions(CellType.Gru, 8, 32), seed: 7);
const int T = 50, B = 3;
var input = new float[T * B * 8];
for (int i = 0; i < input.Length; i++) input[i] = MathF.Cos(0.37f * i);
var y = new float[T * B * 32];
var ws = gru.CreateInferenceWorkspace(T, B);
gru.Forward(input, T, B, default, default, y, default, default, ws);
long b2 = GC.GetAllocatedBytesForCurrentThread();
gru.Forward(input, T, B, default, default, y, default, default, ws);
long a2 = GC.GetAllocatedBytesForCurrentThread() - b2;
if (a2 != 0)
{
    Console.Error.WriteLine($"FAIL: Forward allocated {a2} B (expected 0)");
    return 2;
}
report.AppendLine($"forward gru: {Bits(y.AsSpan((T - 1) * B * 32))}");
Console.Write(report.ToString());
return 0;

static string Bits(ReadOnlySpan<float> v)
{
    var sb = new StringBuilder();
    foreach (float f in v) sb.Append(BitConverter.SingleToUInt32Bits(f).ToString("x8", CultureInfo.InvariantCulture)).Append(' ');
    return sb.ToString().TrimEnd();
}
