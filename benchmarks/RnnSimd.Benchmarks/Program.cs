using BenchmarkDotNet.Running;
using RnnSimd.Benchmarks;

// Modes: --latency [--steps N] [--out DIR] (the S1 per-step latency distribution, see StreamingLatency),
// --roofline [--out DIR] (this machine's FMA peak and read bandwidth per working set, see Roofline),
// otherwise BenchmarkDotNet's command line (--filter, --list, --artifacts, ...).
if (args is ["--latency", ..])
    return StreamingLatency.Run(args, Console.Out);
if (args is ["--roofline", ..])
    return Roofline.Run(args, Console.Out);

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
