using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using RnnSimd.Kernels;
using RnnSimd.Layers;

namespace RnnSimd.Benchmarks;

/// <summary>
/// The --latency mode: the distribution of single-step latencies of workload S1 (stream-step: one
/// <see cref="RecurrentNetwork.Step"/>, batch 1, input 64, hidden 256, state carried from step to step; the network
/// and input of <see cref="InferenceBenchmarks"/>) for lstm, gru and rnn_tanh. BenchmarkDotNet reports a mean per
/// operation over many operations; a streaming user also cares about the tail, so each step is timed on its own:
/// a warm-up, then N consecutive steps, each between two Stopwatch.GetTimestamp calls, the durations stored in an
/// array allocated before the loop. GC collections and the bytes allocated on this thread are counted over the
/// measured steps. Each cell is measured with 1 thread and with 2 threads, each stepping its own stream (state) on the
/// one shared network at the same time (the samples of both threads form that row's distribution). Writes
/// DIR/latency-s1.json and DIR/latency-s1.md.
/// </summary>
internal static class StreamingLatency
{
    public const int DefaultSteps = 1_000_000;

    /// <summary>
    /// The warm-up runs at least this long and this many steps: tiered compilation re-compiles hot methods in the
    /// background only after 100 ms without new tier-0 methods, and again after dynamic PGO has instrumented them,
    /// so a fixed step count alone does not guarantee the measured steps run final code.
    /// </summary>
    public const int WarmupMilliseconds = 1000, WarmupMinSteps = 20_000;

    private static readonly string[] Cells = ["lstm", "gru", "rnn_tanh"];
    private static readonly int[] ThreadCounts = [1, 2];

    internal sealed record Result(string Cell, int Threads, int Steps, int WarmupSteps, LatencyStats Stats,
        int Gen0, int Gen1, int Gen2, long AllocatedBytes);

    /// <summary>Parses "--latency [--steps N] [--out DIR]" (args[0] is "--latency"), measures, writes the files.</summary>
    public static int Run(string[] args, TextWriter log)
    {
        int steps = DefaultSteps;
        string? dir = null;
        for (int i = 1; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--steps" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out steps) && steps > 0:
                    i++;
                    break;
                case "--out" when i + 1 < args.Length:
                    dir = args[++i];
                    break;
                default:
                    log.WriteLine($"latency: unexpected argument '{args[i]}'.");
                    log.WriteLine("usage: RnnSimd.Benchmarks --latency [--steps N (default 1000000)] [--out DIR (default perf-results/<cpu-short-name>)]");
                    return 2;
            }
        }
        dir ??= Path.Combine("perf-results", CpuName.Current() ?? "unknown-cpu");

        double overhead = TimerOverheadNs();
        log.WriteLine($"latency: S1 stream-step, {steps} steps per cell, kernel set {KernelSet.Default.Name}, timer overhead ~{overhead:F0} ns per sample");
        var results = new List<Result>();
        foreach (var cell in Cells)
        foreach (int threads in ThreadCounts)
        {
            var r = Measure(cell, steps, threads);
            log.WriteLine($"latency: {cell,-8} threads {threads} p50 {r.Stats.P50Ns / 1e3:F2} µs  p99 {r.Stats.P99Ns / 1e3:F2} µs  p99.9 {r.Stats.P999Ns / 1e3:F2} µs  "
                + $"max {r.Stats.MaxNs / 1e3:F2} µs  mean {r.Stats.MeanNs / 1e3:F2} µs  GCs {r.Gen0}  allocated {r.AllocatedBytes} B  (warm-up {r.WarmupSteps} steps)");
            results.Add(r);
        }

        Directory.CreateDirectory(dir);
        var machine = Machine.Current(overhead);
        File.WriteAllBytes(Path.Combine(dir, "latency-s1.json"), Json(machine, results));
        File.WriteAllText(Path.Combine(dir, "latency-s1.md"), Markdown(machine, results));
        log.WriteLine($"latency: wrote {Path.Combine(dir, "latency-s1.json")} and latency-s1.md");
        return 0;
    }

    /// <summary>
    /// One cell: the network and input of S1 (seeds 1 and 2, as InferenceBenchmarks), shared by <paramref name="threads"/>
    /// threads each with its own state; each warms up, then all start the N timed steps together.
    /// </summary>
    internal static Result Measure(string cell, int steps, int threads)
    {
        var net = new RecurrentNetwork(new RecurrentOptions(RecurrentOptions.ParseCell(cell), 64, 256), 1);
        float[] x = BenchData.Uniform(64, 2);      // (B, I) = (1, 64), read by every thread
        var ticks = new long[threads][];           // one duration per measured step, in Stopwatch ticks
        var warmups = new int[threads];
        var allocated = new long[threads];
        using var warm = new Barrier(threads + 1);
        using var go = new Barrier(threads + 1);
        using var done = new CountdownEvent(threads);
        for (int i = 0; i < threads; i++)
        {
            int k = i;
            ticks[k] = new long[steps];
            new Thread(() =>
            {
                var state = net.CreateState(1);
                float[] y = new float[256];        // (B, H) = (1, 256)
                warmups[k] = Warmup(net, state, x, y);
                warm.SignalAndWait();
                go.SignalAndWait();
                long bytes = GC.GetAllocatedBytesForCurrentThread();
                TimeSteps(net, state, x, y, ticks[k]);
                allocated[k] = GC.GetAllocatedBytesForCurrentThread() - bytes;
                done.Signal();
            }) { IsBackground = true, Name = $"latency {k}" }.Start();
        }
        warm.SignalAndWait();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        int g0 = GC.CollectionCount(0), g1 = GC.CollectionCount(1), g2 = GC.CollectionCount(2);
        go.SignalAndWait();
        done.Wait();
        int d0 = GC.CollectionCount(0) - g0, d1 = GC.CollectionCount(1) - g1, d2 = GC.CollectionCount(2) - g2;
        long[] all = ticks.SelectMany(t => t).ToArray();
        return new(cell, threads, steps, warmups.Min(), LatencyStats.FromTicks(all, Stopwatch.Frequency), d0, d1, d2, allocated.Sum());
    }

    /// <summary>Steps until both <see cref="WarmupMilliseconds"/> and <see cref="WarmupMinSteps"/> are reached; returns the count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Warmup(RecurrentNetwork net, RecurrentState state, float[] x, float[] y)
    {
        long end = Stopwatch.GetTimestamp() + Stopwatch.Frequency * WarmupMilliseconds / 1000;
        int n = 0;
        while (n < WarmupMinSteps || Stopwatch.GetTimestamp() < end)
        {
            net.Step(state, x, y);
            n++;
        }
        return n;
    }

    /// <summary>
    /// The measured loop: nothing but the step, two timestamps and one store per iteration (no allocation). Fully
    /// optimised from the start (AggressiveOptimization), so the loop itself is not a tier-0 or on-stack-replaced body.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TimeSteps(RecurrentNetwork net, RecurrentState state, float[] x, float[] y, long[] ticks)
    {
        for (int i = 0; i < ticks.Length; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            net.Step(state, x, y);
            ticks[i] = Stopwatch.GetTimestamp() - t0;
        }
    }

    /// <summary>The median of 10^5 back-to-back timestamp pairs: the part of each sample that is the timer itself.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double TimerOverheadNs()
    {
        var d = new long[100_000];
        for (int i = 0; i < d.Length; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            d[i] = Stopwatch.GetTimestamp() - t0;
        }
        return LatencyStats.FromTicks(d, Stopwatch.Frequency).P50Ns;
    }

    internal sealed record Machine(string Date, string Cpu, string CpuShortName, int LogicalCores, string Os, string Runtime,
        string KernelSetName, long StopwatchFrequency, double TimerOverheadNs)
    {
        public static Machine Current(double timerOverheadNs)
        {
            string? cpuinfo = File.Exists("/proc/cpuinfo") ? File.ReadAllText("/proc/cpuinfo") : null;
            return new(DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
                (cpuinfo is null ? null : CpuName.ModelName(cpuinfo)) ?? RuntimeInformation.ProcessArchitecture.ToString(),
                (cpuinfo is null ? null : CpuName.FromCpuInfo(cpuinfo)) ?? "unknown-cpu",
                Environment.ProcessorCount, RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription,
                KernelSet.Default.Name, Stopwatch.Frequency, timerOverheadNs);
        }
    }

    /// <summary>
    /// {"workload","date",machine fields…,"results":[{"cell","threads","steps" (per thread),"p50_ns","p99_ns","p999_ns","max_ns","mean_ns",
    /// "gc_collections","gc_collections_by_generation","allocated_bytes","warmup_steps"}]}. gc_collections counts every
    /// collection (a gen-1 or gen-2 collection also counts as gen 0), by_generation is [gen0, gen1, gen2].
    /// </summary>
    internal static byte[] Json(Machine m, IReadOnlyList<Result> results)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("workload", "S1");
            w.WriteString("description", "stream-step: RecurrentNetwork.Step, batch 1, input 64, hidden 256, state carried; one timed sample per step");
            w.WriteString("date", m.Date);
            w.WriteString("cpu", m.Cpu);
            w.WriteString("cpu_short_name", m.CpuShortName);
            w.WriteNumber("logical_cores", m.LogicalCores);
            w.WriteString("os", m.Os);
            w.WriteString("runtime", m.Runtime);
            w.WriteString("kernel_set", m.KernelSetName);
            w.WriteNumber("stopwatch_frequency", m.StopwatchFrequency);
            w.WriteNumber("timer_overhead_ns", Math.Round(m.TimerOverheadNs, 1));
            w.WriteStartArray("results");
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("cell", r.Cell);
                w.WriteNumber("threads", r.Threads);
                w.WriteNumber("steps", r.Steps);
                w.WriteNumber("p50_ns", Math.Round(r.Stats.P50Ns, 1));
                w.WriteNumber("p99_ns", Math.Round(r.Stats.P99Ns, 1));
                w.WriteNumber("p999_ns", Math.Round(r.Stats.P999Ns, 1));
                w.WriteNumber("max_ns", Math.Round(r.Stats.MaxNs, 1));
                w.WriteNumber("mean_ns", Math.Round(r.Stats.MeanNs, 1));
                w.WriteNumber("gc_collections", r.Gen0);
                w.WriteStartArray("gc_collections_by_generation");
                w.WriteNumberValue(r.Gen0);
                w.WriteNumberValue(r.Gen1);
                w.WriteNumberValue(r.Gen2);
                w.WriteEndArray();
                w.WriteNumber("allocated_bytes", r.AllocatedBytes);
                w.WriteNumber("warmup_steps", r.WarmupSteps);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return stream.ToArray();
    }

    internal static string Markdown(Machine m, IReadOnlyList<Result> results)
    {
        var s = new StringBuilder();
        s.AppendLine("# S1 stream-step latency distribution");
        s.AppendLine();
        s.AppendLine("Written by `benchmarks/latency.sh` (`dotnet run -c Release --project benchmarks/RnnSimd.Benchmarks -- --latency`); do not edit.");
        s.AppendLine($"One `RecurrentNetwork.Step` per sample: batch 1, input 64, hidden 256, state carried from step to step; a warm-up of at least "
            + $"{WarmupMilliseconds} ms and {WarmupMinSteps:N0} steps, then consecutive steps each timed with `Stopwatch.GetTimestamp` "
            + $"(the timer's own ~{m.TimerOverheadNs:F0} ns are included). Percentiles are nearest-rank; GCs and allocated bytes are over the measured steps. "
            + "With 2 threads, each thread steps its own stream on the one shared network at the same time; steps are per thread and the percentiles cover both threads' samples.");
        s.AppendLine();
        s.AppendLine($"{m.Cpu} ({m.CpuShortName}, {m.LogicalCores} logical cores), kernel set `{m.KernelSetName}`, {m.Runtime}, {m.Os}, {m.Date}.");
        s.AppendLine();
        s.AppendLine("| cell | threads | steps | p50 | p99 | p99.9 | max | mean | GCs | allocated |");
        s.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
            s.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Cell} | {r.Threads} | {r.Steps:N0} | {Us(r.Stats.P50Ns)} | {Us(r.Stats.P99Ns)} | {Us(r.Stats.P999Ns)} | {Us(r.Stats.MaxNs)} | {Us(r.Stats.MeanNs)} | {r.Gen0} | {r.AllocatedBytes:N0} B |"));
        return s.ToString();
    }

    private static string Us(double ns) => (ns / 1e3).ToString("F2", CultureInfo.InvariantCulture) + " µs";
}
