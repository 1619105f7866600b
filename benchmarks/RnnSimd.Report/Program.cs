using RnnSimd.Report;

// --report DIR [--readme README.md]: DIR/summary.json (+ DIR/latency-s1.json) → DIR/performance.md,
// DIR/performance.png and, with --readme, the README's section between the perf-table markers. See PerfReport.
return args switch
{
    ["--report", var dir] => PerfReport.Run(dir, readme: null, Console.Out),
    ["--report", var dir, "--readme", var readme] => PerfReport.Run(dir, readme, Console.Out),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: RnnSimd.Report --report DIR [--readme README.md]");
    return 2;
}
