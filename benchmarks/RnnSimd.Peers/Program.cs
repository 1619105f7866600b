using BenchmarkDotNet.Running;
using RnnSimd.Peers;

// Modes: --verify (check every peer against RnnSimd, print the errors, exit 1 on a mismatch),
// --summarize DIR (BenchmarkDotNet full-JSON results in DIR → DIR/summary.json), --versions (for peers.sh),
// otherwise BenchmarkDotNet's command line (--filter, --list, --artifacts, ...).
return args switch
{
    ["--verify", ..] => PeerCheck.VerifyAll(Console.Out),
    ["--summarize", var dir] => Summary.Run(dir, Console.Out),
    ["--versions"] => Versions.Print(Console.Out),
    ["--summarize", ..] => Usage(),
    _ => Run(args),
};

static int Run(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(PeerBenchmark).Assembly).Run(args);
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("usage: RnnSimd.Peers [--verify | --summarize DIR | --versions | BenchmarkDotNet arguments]");
    return 2;
}
