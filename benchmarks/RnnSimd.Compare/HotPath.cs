namespace RnnSimd.Compare;

/// <summary>
/// Which benchmarks measure the hot path, where steady state must allocate 0 bytes per operation (the library's
/// contract, see the README): the main project's workload classes, and any benchmark named by a workload id, as
/// the method name or the first word of its description ("S1 stream-step"). Rows of the peers project that time
/// another library (parameter Impl other than RnnSimd) are that library's allocations, not ours.
/// </summary>
public static class HotPath
{
    public static readonly IReadOnlyList<string> Classes = ["InferenceBenchmarks", "TrainingBenchmarks"];
    public static readonly IReadOnlyList<string> Workloads = ["S1", "S2", "S3", "S4", "T1", "T2"];

    public static bool ByName(BenchmarkResult b)
    {
        if (Classes.Contains(b.Type)) return true;
        string firstWord = b.MethodTitle.Trim('\'').Split(' ')[0];
        bool workload = Workloads.Contains(b.Method) || Workloads.Contains(firstWord);
        return workload && b.Parameter("Impl") is null or "RnnSimd" or "RnnSimdSteps";
    }
}
