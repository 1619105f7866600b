using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text;
using System.Text.Json;
using RnnSimd.Kernels;

namespace RnnSimd.Benchmarks;

/// <summary>
/// The --roofline mode: this machine's ceilings, measured in seconds, so reports can give "% of peak" for
/// compute-bound rows and "% of bandwidth" for memory-bound ones (issue 12, item 5). For every vector width the
/// process can use (Vector512, Vector256, scalar), on 1 thread and on 2 threads at once:
/// - FMA peak: <see cref="FmaChains"/> independent FMA chains (enough to cover FMA latency × pipes on current x86
///   cores, few enough to stay in the 16 registers of AVX2-only machines), 2 FLOPs per lane per FMA;
/// - read bandwidth: the sum of a buffer of a given working set (per thread) with vector loads into
///   <see cref="ReadAccumulators"/> accumulators, over and over.
/// Every figure is the best and the median of several trials, each a timed call of one kernel; with 2 threads each
/// thread runs its own kernel on its own buffer (plain threads released together by a barrier) and a trial's figure is
/// the sum of the two threads' rates. Writes DIR/roofline.json and DIR/roofline.md with --out DIR.
/// </summary>
internal static class Roofline
{
    /// <summary>Trials per figure and the length of each: long enough to be stable, short enough for ~10 s in all.</summary>
    public const int FmaTrials = 7, ReadTrials = 5;
    public const double FmaTrialSeconds = 0.05, ReadTrialSeconds = 0.025;

    /// <summary>
    /// 12 chains: Zen 5 and Golden Cove need 4-cycle latency × 2 pipes = 8 in flight; 16 spilled on AVX2-only Zen 3
    /// (16 ymm registers), 10–12 reached its peak (shared/notes/csharp-simd-perf-facts.md).
    /// </summary>
    public const int FmaChains = 12, ReadAccumulators = 8;

    /// <summary>Working sets per thread and the level each was chosen for (L1 ≥ 32 KiB, L2 ≥ 512 KiB, L3 ≥ 16 MiB on current servers).</summary>
    public static readonly (string Target, long Bytes)[] WorkingSets =
        [("L1", 16 << 10), ("L2", 256 << 10), ("L2", 768 << 10), ("L3", 8 << 20), ("DRAM", 256 << 20)];

    internal sealed record Figure(string Width, int Lanes, int Threads, string? Target, long WorkingSetBytes, double Best, double Median, int Trials);

    internal sealed record Cache(int Level, string Type, long SizeBytes, string SharedWith);

    /// <summary>
    /// One run: the machine, its caches, the figures, how long it took, and the CPU other processes used meanwhile
    /// (in cores on average, from /proc/stat less this process's own CPU time; null where unknown). A busy machine
    /// lowers the 2-thread figures first.
    /// </summary>
    internal sealed record Result(StreamingLatency.Machine Machine, IReadOnlyList<Cache> Caches, string CacheSource,
        int[] ThreadCounts, IReadOnlyList<Figure> Fma, IReadOnlyList<Figure> Read, double Seconds, double? OtherLoadCores);

    /// <summary>Parses "--roofline [--out DIR]" (args[0] is "--roofline"), measures, prints the tables, writes the files.</summary>
    public static int Run(string[] args, TextWriter output)
    {
        string? dir = null;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--out" && i + 1 < args.Length)
            {
                dir = args[++i];
                continue;
            }
            output.WriteLine($"roofline: unexpected argument '{args[i]}'.");
            output.WriteLine("usage: RnnSimd.Benchmarks --roofline [--out DIR (writes DIR/roofline.json and DIR/roofline.md)]");
            return 2;
        }

        var result = Measure();
        string tables = Tables(result);
        output.WriteLine($"roofline: {result.Machine.Cpu} ({result.Machine.LogicalCores} logical cores), {result.Machine.Runtime}, measured in {result.Seconds:F1} s, {LoadNote(result)}");
        output.WriteLine($"roofline: caches ({result.CacheSource}): {CacheSummary(result.Caches)}");
        output.Write(tables);
        if (dir is null) return 0;
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "roofline.json"), Json(result));
        File.WriteAllText(Path.Combine(dir, "roofline.md"), Markdown(result, tables));
        output.WriteLine($"roofline: wrote {Path.Combine(dir, "roofline.json")} and roofline.md");
        return 0;
    }

    /// <summary>Every figure: FMA peak per width, then read bandwidth per working set and width, each at 1 and 2 threads.</summary>
    internal static Result Measure()
    {
        var (caches, cacheSource) = ReadCaches();
        int[] threadCounts = Environment.ProcessorCount >= 2 ? [1, 2] : [1];
        var startLoad = CpuTimes.Now();
        var clock = Stopwatch.StartNew();
        var fma = new List<Figure>();
        var read = new List<Figure>();
        foreach (var width in Widths())
        foreach (int threads in threadCounts)
        {
            var rates = Trials(threads, _ => width.Fma(), FmaTrialSeconds, FmaTrials);
            fma.Add(new(width.Name, width.Lanes, threads, null, 0, rates.Max() / 1e9, Median(rates) / 1e9, FmaTrials));
        }
        foreach (var (target, bytes) in WorkingSets)
        {
            using var buffers = new Buffers(bytes, threadCounts[^1]);
            foreach (var width in Widths())
            foreach (int threads in threadCounts)
            {
                var rates = Trials(threads, k => width.Read(buffers.For(k)), ReadTrialSeconds, ReadTrials);
                read.Add(new(width.Name, width.Lanes, threads, target, bytes, rates.Max() / 1e9, Median(rates) / 1e9, ReadTrials));
            }
        }
        clock.Stop();
        double seconds = clock.Elapsed.TotalSeconds;
        var endLoad = CpuTimes.Now();
        double? other = startLoad is null || endLoad is null ? null : CpuTimes.OtherCores(startLoad, endLoad, seconds);
        return new(StreamingLatency.Machine.Current(timerOverheadNs: 0), caches, cacheSource, threadCounts, fma, read, seconds, other);
    }

    /// <summary>
    /// Machine-wide busy and total jiffies (/proc/stat "cpu" line; steal time counts as busy: the hypervisor ran something
    /// else) and this process's CPU time.
    /// </summary>
    private sealed record CpuTimes(long Busy, long Total, TimeSpan Own)
    {
        public static CpuTimes? Now()
        {
            if (!File.Exists("/proc/stat")) return null;
            string? line = File.ReadLines("/proc/stat").FirstOrDefault(l => l.StartsWith("cpu ", StringComparison.Ordinal));
            if (line is null) return null;
            long[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            if (f.Length < 8) return null;
            long idle = f[3] + f[4];                                    // user nice system idle iowait irq softirq steal ...
            long total = f[..8].Sum();
            return new(total - idle, total, Process.GetCurrentProcess().TotalProcessorTime);
        }

        /// <summary>Cores other processes kept busy on average between the two readings, <paramref name="seconds"/> apart.</summary>
        public static double OtherCores(CpuTimes a, CpuTimes b, double seconds)
        {
            double busyCoreSeconds = (double)(b.Busy - a.Busy) / Math.Max(1, b.Total - a.Total) * Environment.ProcessorCount * seconds;
            return Math.Max(0, busyCoreSeconds - (b.Own - a.Own).TotalSeconds) / seconds;
        }
    }

    private static string LoadNote(Result r) => r.OtherLoadCores is double c
        ? string.Create(CultureInfo.InvariantCulture, $"other processes used {c:F2} of {r.Machine.LogicalCores} cores meanwhile")
        : "load of other processes unknown";

    // ---- what is measured ----------------------------------------------------------------------------------------

    /// <summary>One thread's kernel, bound to its data.</summary>
    private interface IProbe
    {
        /// <summary>Runs the kernel <paramref name="reps"/> times; returns the work done (FLOPs or bytes read).</summary>
        double Run(long reps);
    }

    private sealed record Width(string Name, int Lanes, Func<IProbe> Fma, Func<Buffer, IProbe> Read);

    /// <summary>The widths this process can use, widest first; scalar always, for reference.</summary>
    private static IEnumerable<Width> Widths()
    {
        if (Vector512.IsHardwareAccelerated) yield return Make<Lanes512, Vector512<float>>("Vector512");
        if (Vector256.IsHardwareAccelerated) yield return Make<Lanes256, Vector256<float>>("Vector256");
        yield return Make<Lanes1, float>("scalar");
    }

    private static Width Make<TL, TV>(string name) where TL : ILanes<TV> where TV : struct =>
        new(name, Unsafe.SizeOf<TV>() / sizeof(float), () => new FmaProbe<TL, TV>(), b => new ReadProbe<TL, TV>(b));

    /// <summary>Written with every kernel result so the JIT cannot drop the loops.</summary>
    private static float s_sink;

    private sealed class FmaProbe<TL, TV> : IProbe where TL : ILanes<TV> where TV : struct
    {
        public double Run(long reps)
        {
            Volatile.Write(ref s_sink, FmaLoop<TL, TV>(reps));
            return (double)reps * FmaChains * (Unsafe.SizeOf<TV>() / sizeof(float)) * 2;
        }
    }

    private sealed unsafe class ReadProbe<TL, TV>(Buffer buffer) : IProbe where TL : ILanes<TV> where TV : struct
    {
        public double Run(long reps)
        {
            Volatile.Write(ref s_sink, ReadLoop<TL, TV>(buffer.Data, buffer.Count, reps));
            return (double)reps * buffer.Count * sizeof(float);
        }
    }

    /// <summary>A 64-byte aligned native buffer of floats, written when allocated (pages faulted in before any timing).</summary>
    private sealed unsafe class Buffer : IDisposable
    {
        public Buffer(long bytes)
        {
            Data = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
            Count = (nuint)(bytes / sizeof(float));
            for (nuint i = 0; i < Count; i++) Data[i] = 1f / 1024;          // sums stay far from overflow and denormals
        }

        public float* Data { get; }
        public nuint Count { get; }
        public void Dispose() => NativeMemory.AlignedFree(Data);
    }

    /// <summary>
    /// One buffer per thread index for one working set, shared by every width and thread count (256 MiB is allocated
    /// and faulted in twice, not once per case); each is created and first written by the thread that reads it.
    /// </summary>
    private sealed class Buffers(long bytes, int threads) : IDisposable
    {
        private readonly Buffer?[] _buffers = new Buffer?[threads];

        public Buffer For(int thread) => _buffers[thread] ??= new Buffer(bytes);

        public void Dispose()
        {
            foreach (var b in _buffers) b?.Dispose();
        }
    }

    /// <summary>
    /// <see cref="FmaChains"/> independent chains a = a * m + c, <paramref name="reps"/> FMAs each. m slightly below 1
    /// keeps every chain converging to c / (1 - m): no overflow, no denormals. Fully optimised from the first call.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe float FmaLoop<TL, TV>(long reps) where TL : ILanes<TV> where TV : struct
    {
        TV m = TL.Splat(0.999999f), c = TL.Splat(1e-7f);
        TV a0 = TL.Splat(0.10f), a1 = TL.Splat(0.11f), a2 = TL.Splat(0.12f), a3 = TL.Splat(0.13f);
        TV a4 = TL.Splat(0.14f), a5 = TL.Splat(0.15f), a6 = TL.Splat(0.16f), a7 = TL.Splat(0.17f);
        TV a8 = TL.Splat(0.18f), a9 = TL.Splat(0.19f), a10 = TL.Splat(0.20f), a11 = TL.Splat(0.21f);
        for (long r = 0; r < reps; r++)
        {
            a0 = TL.Fma(a0, m, c); a1 = TL.Fma(a1, m, c); a2 = TL.Fma(a2, m, c); a3 = TL.Fma(a3, m, c);
            a4 = TL.Fma(a4, m, c); a5 = TL.Fma(a5, m, c); a6 = TL.Fma(a6, m, c); a7 = TL.Fma(a7, m, c);
            a8 = TL.Fma(a8, m, c); a9 = TL.Fma(a9, m, c); a10 = TL.Fma(a10, m, c); a11 = TL.Fma(a11, m, c);
        }
        TV sum = TL.Add(TL.Add(TL.Add(a0, a1), TL.Add(a2, a3)), TL.Add(TL.Add(a4, a5), TL.Add(a6, a7)));
        return First<TL, TV>(TL.Add(sum, TL.Add(TL.Add(a8, a9), TL.Add(a10, a11))));
    }

    /// <summary>
    /// Sums <paramref name="count"/> floats (a multiple of <see cref="ReadAccumulators"/> × 16) <paramref name="reps"/>
    /// times with <see cref="ReadAccumulators"/> independent vector accumulators: one load and one add per vector read.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe float ReadLoop<TL, TV>(float* p, nuint count, long reps) where TL : ILanes<TV> where TV : struct
    {
        nuint w = (nuint)(Unsafe.SizeOf<TV>() / sizeof(float));
        TV s0 = TL.Splat(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
        for (long r = 0; r < reps; r++)
        {
            for (nuint i = 0; i < count; i += 8 * w)
            {
                s0 = TL.Add(s0, TL.Load(p, i)); s1 = TL.Add(s1, TL.Load(p, i + w));
                s2 = TL.Add(s2, TL.Load(p, i + 2 * w)); s3 = TL.Add(s3, TL.Load(p, i + 3 * w));
                s4 = TL.Add(s4, TL.Load(p, i + 4 * w)); s5 = TL.Add(s5, TL.Load(p, i + 5 * w));
                s6 = TL.Add(s6, TL.Load(p, i + 6 * w)); s7 = TL.Add(s7, TL.Load(p, i + 7 * w));
            }
        }
        return First<TL, TV>(TL.Add(TL.Add(TL.Add(s0, s1), TL.Add(s2, s3)), TL.Add(TL.Add(s4, s5), TL.Add(s6, s7))));
    }

    private static unsafe float First<TL, TV>(TV v) where TL : ILanes<TV> where TV : struct
    {
        float* lanes = stackalloc float[16];
        TL.Store(v, lanes, 0);
        return lanes[0];
    }

    /// <summary>
    /// Runs <paramref name="threads"/> plain threads, each with its own probe: all warm up, thread 0 alone finds the
    /// repetitions that take <paramref name="trialSeconds"/>, then every trial starts all threads together at a
    /// barrier. Returns each trial's rate (work per second) summed over the threads.
    /// </summary>
    private static double[] Trials(int threads, Func<int, IProbe> create, double trialSeconds, int trials)
    {
        var rates = new double[threads, trials];
        long reps = 0;
        using var barrier = new Barrier(threads);
        var workers = new Thread[threads];
        for (int k = 0; k < threads; k++)
        {
            int id = k;
            workers[k] = new Thread(() =>
            {
                var probe = create(id);
                probe.Run(1);
                barrier.SignalAndWait();
                if (id == 0) reps = Calibrate(probe, trialSeconds);
                barrier.SignalAndWait();
                for (int t = 0; t < trials; t++)
                {
                    barrier.SignalAndWait();
                    long t0 = Stopwatch.GetTimestamp();
                    double work = probe.Run(reps);
                    rates[id, t] = work * Stopwatch.Frequency / (Stopwatch.GetTimestamp() - t0);
                }
            }) { IsBackground = true, Name = $"roofline {id}" };
        }
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        var total = new double[trials];
        for (int t = 0; t < trials; t++)
            for (int k = 0; k < threads; k++) total[t] += rates[k, t];
        return total;
    }

    /// <summary>Doubles the repetitions until a run takes an eighth of a trial, then scales to a whole trial.</summary>
    private static long Calibrate(IProbe probe, double trialSeconds)
    {
        for (long reps = 1; ; reps *= 2)
        {
            long t0 = Stopwatch.GetTimestamp();
            probe.Run(reps);
            double seconds = (double)(Stopwatch.GetTimestamp() - t0) / Stopwatch.Frequency;
            if (seconds >= trialSeconds / 8) return Math.Max(1, (long)Math.Ceiling(reps * trialSeconds / seconds));
        }
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    // ---- caches ----------------------------------------------------------------------------------------------------

    /// <summary>
    /// The caches cpu0 sees: from /sys/devices/system/cpu/cpu0/cache (Linux), else from CPUID's deterministic cache
    /// parameters (leaf 4 on Intel, 0x8000001D on AMD), else on AMD from the legacy leaves 0x80000005/6 (Firecracker
    /// VMs expose neither sysfs cache nodes nor leaf 0x8000001D), else none.
    /// </summary>
    internal static (IReadOnlyList<Cache> Caches, string Source) ReadCaches()
    {
        const string sysfs = "/sys/devices/system/cpu/cpu0/cache";
        var caches = new List<Cache>();
        if (Directory.Exists(sysfs))
        {
            foreach (var dir in Directory.GetDirectories(sysfs, "index*").Order(StringComparer.Ordinal))
            {
                string? level = Text(dir, "level"), type = Text(dir, "type"), size = Text(dir, "size");
                if (level is null || type is null || size is null || !int.TryParse(level, CultureInfo.InvariantCulture, out int l)) continue;
                caches.Add(new(l, type, ParseSize(size), "cpus " + (Text(dir, "shared_cpu_list") ?? "?")));
            }
            if (caches.Count > 0) return (caches, sysfs);
        }
        if (!X86Base.IsSupported) return (caches, "none found");
        var vendor = X86Base.CpuId(0, 0);
        bool amd = vendor.Ebx == 0x68747541 || vendor.Ebx == 0x6f677948;          // "Auth"enticAMD, "Hygo"nGenuine
        int leaf = amd ? unchecked((int)0x8000001D) : 4;
        int maxLeaf = X86Base.CpuId(amd ? unchecked((int)0x80000000) : 0, 0).Eax;
        for (int sub = 0; (uint)maxLeaf >= (uint)leaf && sub < 16; sub++)
        {
            var (eax, ebx, ecx, _) = X86Base.CpuId(leaf, sub);
            int kind = eax & 0x1F;
            if (kind == 0) break;
            long size = (long)(((ebx >> 22) & 0x3FF) + 1) * (((ebx >> 12) & 0x3FF) + 1) * ((ebx & 0xFFF) + 1) * ((long)(uint)ecx + 1);
            string type = kind switch { 1 => "Data", 2 => "Instruction", _ => "Unified" };
            caches.Add(new((eax >> 5) & 7, type, size, $"{((eax >> 14) & 0xFFF) + 1} logical cpus"));
        }
        if (caches.Count > 0) return (caches, $"CPUID leaf 0x{leaf:X}");
        if (!amd || (uint)maxLeaf < 0x80000006) return (caches, "none found");
        var l1 = X86Base.CpuId(unchecked((int)0x80000005), 0);
        var l23 = X86Base.CpuId(unchecked((int)0x80000006), 0);
        Cache[] legacy =
        [
            new(1, "Data", (long)((uint)l1.Ecx >> 24) << 10, "sharing unknown"),          // ECX[31:24]: KiB
            new(1, "Instruction", (long)((uint)l1.Edx >> 24) << 10, "sharing unknown"),
            new(2, "Unified", (long)((uint)l23.Ecx >> 16) << 10, "sharing unknown"),       // ECX[31:16]: KiB
            new(3, "Unified", (long)((uint)l23.Edx >> 18) << 19, "sharing unknown"),       // EDX[31:18]: 512 KiB units
        ];
        caches.AddRange(legacy.Where(c => c.SizeBytes > 0));
        return (caches, "CPUID leaves 0x80000005/6");
    }

    private static string? Text(string dir, string name)
    {
        string path = Path.Combine(dir, name);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    /// <summary>"48K", "1024K", "32M" or a plain byte count, as sysfs writes cache sizes.</summary>
    private static long ParseSize(string s)
    {
        long unit = s[^1] switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1 };
        return long.Parse(unit == 1 ? s : s[..^1], CultureInfo.InvariantCulture) * unit;
    }

    private static string CacheSummary(IReadOnlyList<Cache> caches) => caches.Count == 0 ? "unknown"
        : string.Join(", ", caches.Select(c => $"L{c.Level} {c.Type.ToLowerInvariant()} {Bytes(c.SizeBytes)} ({c.SharedWith})"));

    // ---- output ----------------------------------------------------------------------------------------------------

    private static string Bytes(long b) => b >= 1 << 20 && b % (1 << 20) == 0 ? $"{b >> 20} MiB" : b % 1024 == 0 ? $"{b >> 10} KiB" : $"{b} B";

    private static string F1(double x) => x.ToString("F1", CultureInfo.InvariantCulture);

    /// <summary>The two markdown tables (console and roofline.md): FMA peak by width, read bandwidth by working set and width.</summary>
    internal static string Tables(Result r)
    {
        int[] threadCounts = r.ThreadCounts;
        var s = new StringBuilder();
        string Cells(IEnumerable<Figure> row) => string.Join(" | ", threadCounts.Select(t => row.Single(f => f.Threads == t)).Select(f => $"{F1(f.Best)} | {F1(f.Median)}"));
        string Heads(string unit) => string.Join(" | ", threadCounts.Select(t => $"{t} thread{(t > 1 ? "s" : "")} best {unit} | median"));
        string Rule() => string.Concat(threadCounts.Select(_ => "---:|---:|"));

        s.AppendLine($"| FMA peak | lanes | {Heads("GFLOP/s")} |");
        s.AppendLine($"|---|---:|{Rule()}");
        foreach (var g in r.Fma.GroupBy(f => f.Width))
            s.AppendLine($"| {g.Key} | {g.First().Lanes} | {Cells(g)} |");
        s.AppendLine();
        s.AppendLine($"| read, working set per thread | for | width | {Heads("GB/s")} |");
        s.AppendLine($"|---:|---|---|{Rule()}");
        foreach (var g in r.Read.GroupBy(f => (f.WorkingSetBytes, f.Target, f.Width)))
            s.AppendLine($"| {Bytes(g.Key.WorkingSetBytes)} | {g.Key.Target} | {g.Key.Width} | {Cells(g)} |");
        return s.ToString();
    }

    /// <summary>
    /// {"probe":"roofline","date","cpu","cpu_short_name","logical_cores","os","runtime","kernel_set","seconds",
    /// "other_load_cores" (null where unknown),"cache_source",
    /// "caches":[{"level","type","size_bytes","shared_with"}],"fma":[{"width","lanes","threads","chains","trials",
    /// "fma_gflops_best","fma_gflops_median"}],"read":[{"working_set_bytes","target","width","lanes","threads",
    /// "accumulators","trials","read_gbs_best","read_gbs_median"}]}. With 2 threads a figure is both threads' sum;
    /// GB is 10^9 bytes.
    /// </summary>
    internal static byte[] Json(Result r)
    {
        var m = r.Machine;
        var file = new JsonFile("roofline", m.Date, m.Cpu, m.CpuShortName, m.LogicalCores, m.Os, m.Runtime, m.KernelSetName,
            Math.Round(r.Seconds, 2), r.OtherLoadCores is double c ? Math.Round(c, 2) : null, r.CacheSource, r.Caches,
            r.Fma.Select(f => new JsonFma(f.Width, f.Lanes, f.Threads, FmaChains, f.Trials, Math.Round(f.Best, 2), Math.Round(f.Median, 2))).ToArray(),
            r.Read.Select(f => new JsonRead(f.WorkingSetBytes, f.Target!, f.Width, f.Lanes, f.Threads, ReadAccumulators, f.Trials,
                Math.Round(f.Best, 2), Math.Round(f.Median, 2))).ToArray());
        return JsonSerializer.SerializeToUtf8Bytes(file, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
    }

    private sealed record JsonFile(string Probe, string Date, string Cpu, string CpuShortName, int LogicalCores, string Os, string Runtime,
        string KernelSet, double Seconds, double? OtherLoadCores, string CacheSource, IReadOnlyList<Cache> Caches, JsonFma[] Fma, JsonRead[] Read);

    private sealed record JsonFma(string Width, int Lanes, int Threads, int Chains, int Trials, double FmaGflopsBest, double FmaGflopsMedian);

    private sealed record JsonRead(long WorkingSetBytes, string Target, string Width, int Lanes, int Threads, int Accumulators, int Trials,
        double ReadGbsBest, double ReadGbsMedian);

    internal static string Markdown(Result r, string tables)
    {
        var m = r.Machine;
        var s = new StringBuilder();
        s.AppendLine("# Roofline: FMA peak and read bandwidth");
        s.AppendLine();
        s.AppendLine("Written by `benchmarks/roofline.sh` (`dotnet run -c Release --project benchmarks/RnnSimd.Benchmarks -- --roofline`); do not edit.");
        s.AppendLine(
            $"**FMA peak**: {FmaChains} independent chains of fused multiply-adds (`a = a * m + c`, registers only) per thread, "
            + $"2 FLOPs per lane per FMA; the best and the median of {FmaTrials} trials of about {FmaTrialSeconds * 1e3:F0} ms. "
            + $"**Read bandwidth**: a buffer of the given working set per thread (64-byte aligned, written before timing) summed over "
            + $"and over, one vector load feeding one add into {ReadAccumulators} accumulators; bytes read per second (GB = 10^9 bytes), "
            + $"the best and the median of {ReadTrials} trials of at least {ReadTrialSeconds * 1e3:F0} ms. At the narrower widths the "
            + "in-cache figures can be bounded by the adds rather than the cache: they are what a kernel of that width can read, not the "
            + "cache's limit. \"for\" is the level the size was chosen for; where it really falls follows from the caches below. "
            + "**2 threads**: each thread runs its own loop on its own buffer, both released together by a barrier; the figure is the "
            + "sum of both (per core: half), and it is only meaningful when no other process was busy (see the load below). Kernels "
            + "are fully optimised from their first call (`AggressiveOptimization`) and every result is consumed. "
            + "**Use**: the 1-thread figure of the width a kernel runs at is the ceiling of a single-threaded row: % of peak for a "
            + "compute-bound row, % of bandwidth at the level its working set falls in for a memory-bound one.");
        s.AppendLine();
        s.AppendLine($"{m.Cpu} ({m.CpuShortName}, {m.LogicalCores} logical cores), kernel set `{m.KernelSetName}`, {m.Runtime}, {m.Os}, {m.Date}.");
        s.AppendLine($"Caches of cpu0 ({r.CacheSource}): {CacheSummary(r.Caches)}.");
        s.AppendLine($"Measured in {r.Seconds:F1} s; {LoadNote(r)}.");
        s.AppendLine();
        s.Append(tables);
        return s.ToString();
    }
}
