using System.Diagnostics;

namespace RnnSimd.Kernels;

/// <summary>
/// How many threads the large GEMMs may use (process-wide, like <c>torch.set_num_threads</c>). The default is 1:
/// latency-sensitive callers keep every core to themselves unless they opt in. With 2 or more, GEMMs above a size
/// threshold are split into column (or row) ranges computed by pre-started worker threads; every C element is
/// computed by exactly the same operations either way, so results are bitwise identical for any thread count.
/// Only one parallel region runs at a time; a call that finds the workers busy (another thread is using them) runs
/// on its own thread. Dispatch allocates nothing.
/// </summary>
public static unsafe class Parallelism
{
    private static readonly object s_gate = new();
    private static int s_maxThreads = ReadEnvironment();
    private static Worker[] s_workers = [];

    // The current job (one at a time, guarded by s_busy).
    private static int s_busy;
    private static delegate*<void*, int, int, void> s_fn;
    private static void* s_arg;
    private static int s_parts;
    private static int s_generation;
    private static int s_remaining;

    /// <summary>The environment variable that sets <see cref="MaxThreads"/> at start-up.</summary>
    public const string EnvironmentVariable = "RNNSIMD_THREADS";

    /// <summary>Threads large kernels may use (1 = no worker threads). Setting it starts or stops nothing mid-job.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Less than 1 or more than 64.</exception>
    public static int MaxThreads
    {
        get => s_maxThreads;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 64);
            lock (s_gate)
            {
                s_maxThreads = value;
                EnsureWorkers(value - 1);
            }
        }
    }

    private static int ReadEnvironment()
    {
        string? v = Environment.GetEnvironmentVariable(EnvironmentVariable);
        return int.TryParse(v, out int n) && n is >= 1 and <= 64 ? n : 1;
    }

    private static void EnsureWorkers(int count)
    {
        if (s_workers.Length >= count) return;
        var workers = new Worker[count];
        Array.Copy(s_workers, workers, s_workers.Length);
        for (int i = s_workers.Length; i < count; i++) workers[i] = new Worker(i + 1);
        s_workers = workers;
    }

    /// <summary>
    /// Runs fn(arg, part, parts) for part = 0 .. parts-1, part 0 on the calling thread and the others on workers, and
    /// returns when all are done. Returns false (and runs nothing) if fewer than 2 threads are available now.
    /// </summary>
    internal static bool TryRun(delegate*<void*, int, int, void> fn, void* arg, int parts)
    {
        if (parts < 2) return false;
        if (s_workers.Length == 0) { lock (s_gate) EnsureWorkers(s_maxThreads - 1); }
        parts = Math.Min(parts, Math.Min(s_maxThreads, s_workers.Length + 1));
        // Read before the compare-exchange: a kernel called inside a running job (every step of a split sequence) finds
        // the workers busy by a plain read, without taking the shared line exclusively from the other cores.
        if (parts < 2 || Volatile.Read(ref s_busy) != 0 || Interlocked.CompareExchange(ref s_busy, 1, 0) != 0) return false;
        s_fn = fn;
        s_arg = arg;
        s_parts = parts;
        Volatile.Write(ref s_remaining, parts - 1);
        Interlocked.Increment(ref s_generation);
        for (int i = 0; i < parts - 1; i++) s_workers[i].Wake();
        fn(arg, 0, parts);
        var spin = new SpinWait();
        while (Volatile.Read(ref s_remaining) != 0) spin.SpinOnce(-1);
        Volatile.Write(ref s_busy, 0);
        return true;
    }

    /// <summary>
    /// Bytes the worker threads have allocated so far, as each last saw it after a job part (tests add this to the
    /// calling thread's own count: exact for the library's threads, blind to whatever else the process runs).
    /// </summary>
    internal static long WorkerAllocatedBytes
    {
        get
        {
            long sum = 0;
            foreach (var w in Volatile.Read(ref s_workers)) sum += Volatile.Read(ref w.Allocated);
            return sum;
        }
    }

    private sealed class Worker
    {
        public long Allocated;  // GC.GetAllocatedBytesForCurrentThread after this worker's last job part
        private readonly int _index;
        private readonly SemaphoreSlim _signal = new(0);
        private int _sleeping;
        private int _seen;

        public Worker(int index)
        {
            _index = index;
            // The generation is read here, before the thread exists: read at the thread's start instead, it could
            // already include a job posted meanwhile, which the worker would then never run (the poster would wait forever).
            _seen = Volatile.Read(ref s_generation);
            var thread = new Thread(Loop) { IsBackground = true, Name = $"RnnSimd worker {index}" };
            thread.Start();
        }

        public void Wake()
        {
            if (Interlocked.Exchange(ref _sleeping, 0) == 1) _signal.Release();
        }

        private void Loop()
        {
            int seen = _seen;
            long spinTicks = Stopwatch.Frequency / 5000; // spin 200 µs after each job before sleeping
            while (true)
            {
                long until = Stopwatch.GetTimestamp() + spinTicks;
                int generation;
                while ((generation = Volatile.Read(ref s_generation)) == seen && Stopwatch.GetTimestamp() < until) Thread.SpinWait(20);
                if (generation == seen)
                {
                    // A full fence (not a plain release store): the flag must be visible before the generation is read
                    // again, or a job posted in between could find the flag still 0, skip the wake-up, and wait forever
                    // for a worker that has gone to sleep (a store-load reordering race, seen once in a benchmark run).
                    Interlocked.Exchange(ref _sleeping, 1);
                    if (Volatile.Read(ref s_generation) != seen && Interlocked.Exchange(ref _sleeping, 0) == 1) continue;
                    _signal.Wait();
                    continue;
                }
                seen = generation;
                if (_index < s_parts)
                {
                    s_fn(s_arg, _index, s_parts);
                    Volatile.Write(ref Allocated, GC.GetAllocatedBytesForCurrentThread());
                    Interlocked.Decrement(ref s_remaining);
                }
            }
        }
    }
}

/// <summary>
/// A sense-reversing spin barrier for the parts of one <see cref="Parallelism"/> job that advance in lockstep (the
/// time steps of a sequence split across threads by hidden units): no allocation, no kernel call while the parts run
/// on their own cores (the wait is a spin that only yields the processor after a long wait).
/// </summary>
internal struct SpinBarrier
{
    private int _arrived;
    private int _phase;

    /// <summary>Returns when all <paramref name="parties"/> have called it for this phase; everything each wrote before is then visible to all.</summary>
    public void SignalAndWait(int parties)
    {
        int phase = Volatile.Read(ref _phase);
        if (Interlocked.Increment(ref _arrived) == parties)
        {
            Volatile.Write(ref _arrived, 0);
            Interlocked.Increment(ref _phase);
            return;
        }
        // A tight spin first (a step's imbalance is a few microseconds at most): SpinWait's growing back-off would
        // overshoot by microseconds; after ~10^5 polls (a descheduled partner) it yields instead.
        int polls = 0;
        var spin = new SpinWait();
        while (Volatile.Read(ref _phase) == phase)
        {
            if (++polls < 100_000) Thread.SpinWait(1);
            else spin.SpinOnce(-1);
        }
    }
}
