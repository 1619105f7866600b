using System.Text;
using RnnSimd.Report;

namespace RnnSimd.Tests.Perf;

/// <summary>benchmarks/RnnSimd.Report on small hand-made inputs: tables with missing rows, units, the README section.</summary>
[Trait("Category", "Perf")]
public class ReportTests
{
    private static Row R(string w, string cell, int t, string impl, double ns, long? bytes = 0) => new(w, cell, t, impl, ns, bytes);

    [Fact]
    public void Workload_table_shows_ratios_allocations_and_dashes_for_what_is_missing()
    {
        var rows = new[]
        {
            R("S1", "lstm", 1, "RnnSimd", 10_000),
            R("S1", "lstm", 1, "LibTorch", 42_000, 1232),
            R("S1", "lstm", 1, "OnnxRuntime", 5_000, null),
            R("S1", "gru", 2, "LibTorch", 30_000, 64),          // no RnnSimd row: no ratio
            R("S1", "lstm", 1, "Mystery", 20_000),              // not expected: appended as a column
            R("S2", "lstm", 1, "RnnSimd", 1),                   // another workload: not in this table
        };
        var s = new StringBuilder();
        PerfReport.WorkloadTable(s, "S1", rows);
        string[] lines = s.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("| cell | threads | RnnSimd | LibTorch | LibTorchCell | OnnxRuntime | Mystery |", lines[0]);
        Assert.Equal(2 + 3 * 2, lines.Length);                  // header, rule, 3 cells x threads 1, 2
        Assert.Equal("| lstm | 1 | **10.0 µs**<br>0 B | 42.0 µs<br>RnnSimd 4.20x faster<br>1.20 KB | – | 5.00 µs<br>RnnSimd 2.00x slower | 20.0 µs<br>RnnSimd 2.00x faster<br>0 B |", lines[2]);
        Assert.Equal("| lstm | 2 | – | – | – | – | – |", lines[3]);
        Assert.Equal("| gru | 2 | – | 30.0 µs<br>64 B | – | – | – |", lines[5]);
        Assert.Equal("| rnn_tanh | 2 | – | – | – | – | – |", lines[7]);
    }

    [Fact]
    public void Reduced_precision_rows_stay_out_of_the_float32_tables_and_fill_their_own()
    {
        var rows = new[]
        {
            R("S1", "lstm", 1, "RnnSimd", 12_000) with { StepWeightBytes = 1 << 20, ModelBytes = 3 << 20 },
            R("S1", "lstm", 1, "RnnSimd", 4_000) with { Precision = "int8", StepWeightBytes = 1 << 18, ModelBytes = 1 << 20 },
            R("S1", "lstm", 1, "OnnxRuntime", 20_000, null) with { Precision = "int8" },
            R("S1", "lstm", 1, "OnnxRuntime", 24_000),
            R("S1", "lstm", 2, "RnnSimd", 9_000),                // 2 threads: only in the float32 table
            R("S2", "gru", 1, "RnnSimd", 2e6) with { Precision = "bf16" },
        };
        var s = new StringBuilder();
        PerfReport.WorkloadTable(s, "S1", rows);
        Assert.Contains("| lstm | 1 | **12.0 µs**<br>0 B | – | – | 24.0 µs<br>RnnSimd 2.00x faster<br>0 B |", s.ToString());
        Assert.DoesNotContain("4.00 µs", s.ToString());

        s.Clear();
        PerfReport.ReducedTable(s, rows);
        string[] lines = s.ToString().ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("| workload | cell | precision | RnnSimd | vs float32 | OnnxRuntime | step weights | network |", lines[1]);
        Assert.Equal(3 + 2 * 3 * 3, lines.Length);              // text, header, rule, S1/S2 x 3 cells x 3 precisions
        Assert.Equal("| S1 | lstm | float32 | **12.0 µs**<br>0 B | 1x | 24.0 µs<br>RnnSimd 2.00x faster<br>0 B | 1.00 MB | 3.00 MB |", lines[3]);
        Assert.Equal("| S1 | lstm | bf16 | – | – | – | – | – |", lines[4]);
        Assert.Equal("| S1 | lstm | int8 | **4.00 µs**<br>0 B | 3.00x faster | 20.0 µs<br>RnnSimd 5.00x faster | 256 KB<br>0.25x | 1.00 MB<br>0.33x |", lines[5]);
        Assert.Equal("| S2 | gru | bf16 | **2.00 ms**<br>0 B | – | – | – | – |", lines[16]);
    }

    [Fact]
    public void Training_tables_list_RnnSimd_even_before_it_is_measured()
    {
        var s = new StringBuilder();
        PerfReport.WorkloadTable(s, "T2", [R("T1", "lstm", 1, "LibTorch", 3e8)]);
        Assert.StartsWith("| cell | threads | RnnSimd | LibTorch |\n", s.ToString().ReplaceLineEndings("\n"));
        Assert.DoesNotContain("ms", s.ToString());
    }

    [Theory]
    [InlineData(0.5, "0.50 ns")]
    [InlineData(999.4, "999 ns")]
    [InlineData(999.7, "1.00 µs")]
    [InlineData(11_290, "11.3 µs")]
    [InlineData(123_456, "123 µs")]
    [InlineData(2.5e6, "2.50 ms")]
    [InlineData(3.39e8, "339 ms")]
    [InlineData(1.5e9, "1.50 s")]
    public void Times_have_three_significant_digits(double ns, string expected) => Assert.Equal(expected, Units.Time(ns));

    [Fact]
    public void Bytes_and_ratios()
    {
        Assert.Equal("0 B", Units.Bytes(0));
        Assert.Equal("1023 B", Units.Bytes(1023));
        Assert.Equal("1.20 KB", Units.Bytes(1232));
        Assert.Equal("2.00 MB", Units.Bytes(2 << 20));
        Assert.Equal("RnnSimd 4.20x faster", Units.Ratio(42, 10));
        Assert.Equal("RnnSimd 1.00x faster", Units.Ratio(10, 10));
        Assert.Equal("RnnSimd 2.50x slower", Units.Ratio(4, 10));
        Assert.Equal("RnnSimd 150x faster", Units.Ratio(1500, 10));
    }

    [Fact]
    public void Summary_rows_without_the_needed_fields_are_skipped_and_reported()
    {
        var warnings = new List<string>();
        var rows = PerfData.ReadSummary("""
            [{"workload":"S1","cell":"lstm","threads":2,"impl":"RnnSimd","median_ns":11.5,"allocated_bytes":0,"source":"a"},
             {"workload":"S1","cell":"gru","impl":"LibTorch","median_ns":20,"allocated_bytes":null},
             {"workload":"S1","cell":"gru","impl":"LibTorch"},
             {"workload":"S1","cell":"gru","impl":"LibTorch","median_ns":-1},
             {"cell":"gru","impl":"LibTorch","median_ns":3}]
            """, warnings);
        Assert.Equal([R("S1", "lstm", 2, "RnnSimd", 11.5), R("S1", "gru", 1, "LibTorch", 20, null)], rows);
        Assert.Equal(3, warnings.Count);

        rows = PerfData.ReadSummary("""
            [{"workload":"S1","cell":"lstm","impl":"RnnSimd","median_ns":12,"allocated_bytes":0,"step_weight_bytes":1310720,"model_bytes":3000000},
             {"workload":"S1","cell":"lstm","impl":"RnnSimd","precision":"int8","median_ns":4,"allocated_bytes":0,"step_weight_bytes":331776}]
            """, warnings);
        Assert.Equal([R("S1", "lstm", 1, "RnnSimd", 12) with { StepWeightBytes = 1310720, ModelBytes = 3000000 },
            R("S1", "lstm", 1, "RnnSimd", 4) with { Precision = "int8", StepWeightBytes = 331776 }], rows);   // precision keys apart
        Assert.Equal(3, warnings.Count);
    }

    [Fact]
    public void Readme_section_is_replaced_between_the_markers_only()
    {
        string text = $"# T\n\nbefore\n{PerfReport.BeginMarker}\nold\nlines\n{PerfReport.EndMarker}\nafter\n";
        string once = PerfReport.ReplaceSection(text, "new table\n", out var error)!;
        Assert.Null(error);
        Assert.Equal($"# T\n\nbefore\n{PerfReport.BeginMarker}\nnew table\n{PerfReport.EndMarker}\nafter\n", once);
        Assert.Equal(once, PerfReport.ReplaceSection(once, "new table", out _));                  // idempotent
        Assert.Equal(text.Replace("\n", "\r\n"), PerfReport.ReplaceSection(text.Replace("\n", "\r\n"), "old\nlines", out _));

        Assert.Null(PerfReport.ReplaceSection("no markers", "x", out error));
        Assert.NotNull(error);
        Assert.Null(PerfReport.ReplaceSection($"{PerfReport.EndMarker}\n{PerfReport.BeginMarker}", "x", out error));
        Assert.Null(PerfReport.ReplaceSection($"{PerfReport.BeginMarker}{PerfReport.EndMarker}{PerfReport.BeginMarker}", "x", out error));
    }

    /// <summary>The repository's README has one pair of markers for benchmarks/report.sh to fill.</summary>
    [Fact]
    public void The_readme_has_the_perf_table_markers()
    {
        string readme = File.ReadAllText(Path.Combine(LatencyStatsTests.RepoRoot(), "README.md"));
        Assert.NotNull(PerfReport.ReplaceSection(readme, "", out var error));
        Assert.Null(error);
    }

    [Fact]
    public void Run_writes_the_markdown_the_chart_and_the_readme_section()
    {
        string root = Directory.CreateTempSubdirectory("rnnsimd-report-").FullName;
        try
        {
            string dir = Path.Combine(root, "perf-results", "test-cpu");
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "summary.json"), """
                [{"workload":"S1","cell":"lstm","threads":1,"impl":"RnnSimd","median_ns":11300,"allocated_bytes":0},
                 {"workload":"S1","cell":"lstm","threads":1,"impl":"LibTorch","median_ns":47460,"allocated_bytes":1232},
                 {"workload":"S2","cell":"gru","threads":2,"impl":"OnnxRuntime","median_ns":900000,"allocated_bytes":null}]
                """);
            File.WriteAllText(Path.Combine(dir, "latency-s1.json"), """
                {"date":"2026-01-01T00:00:00Z","cpu":"Test CPU","kernel_set":"avx2","results":[
                 {"cell":"gru","steps":1000,"p50_ns":8000,"p99_ns":9000,"p999_ns":20000,"max_ns":50000,"mean_ns":8100,"gc_collections":0,"allocated_bytes":0}]}
                """);
            string readme = Path.Combine(root, "README.md");
            File.WriteAllText(readme, $"# X\n\n## Performance\n\n{PerfReport.BeginMarker}\nNot measured yet.\n{PerfReport.EndMarker}\n\n## Next\n");

            var log = new StringWriter();
            Assert.Equal(0, PerfReport.Run(dir, readme, log));

            string md = File.ReadAllText(Path.Combine(dir, "performance.md"));
            Assert.Contains("| lstm | 1 | **11.3 µs**<br>0 B | 47.5 µs<br>RnnSimd 4.20x faster<br>1.20 KB | – | – |", md);
            Assert.Contains("| gru | 1 | 1,000 | 8.00 µs | 9.00 µs | 20.0 µs | 50.0 µs | 8.10 µs | 0 | 0 B |", md); // no "threads": 1
            Assert.Contains("| gru | 2 | – | – | – | – | – | – | – | – |", md);            // the 2-thread row not measured
            Assert.Contains("| lstm | 1 | – | – | – | – | – | – | – | – |", md);           // latency of a cell not measured
            Assert.Contains("## T2 train-step-large", md);                                   // a workload not measured
            Assert.True(new FileInfo(Path.Combine(dir, "performance.png")).Length > 1000);

            string text = File.ReadAllText(readme);
            Assert.StartsWith("# X\n\n## Performance\n\n", text);
            Assert.EndsWith($"{PerfReport.EndMarker}\n\n## Next\n", text);
            Assert.DoesNotContain("Not measured yet.", text);
            Assert.Contains("[details](perf-results/test-cpu/performance.md)", text);
            Assert.Contains("![median time per operation, log scale](perf-results/test-cpu/performance.png)", text);
            Assert.Contains("[summary.json](perf-results/test-cpu/summary.json)", text);
            Assert.Contains("### S1 stream-step", text);

            Assert.Equal(0, PerfReport.Run(dir, readme, log));                                   // a second run changes nothing
            Assert.Equal(text, File.ReadAllText(readme));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Run_refuses_a_folder_without_results_and_a_readme_without_markers()
    {
        string dir = Directory.CreateTempSubdirectory("rnnsimd-report-").FullName;
        try
        {
            var log = new StringWriter();
            Assert.Equal(1, PerfReport.Run(dir, null, log));
            File.WriteAllText(Path.Combine(dir, "summary.json"), "[]");
            string readme = Path.Combine(dir, "README.md");
            File.WriteAllText(readme, "no markers\n");
            Assert.Equal(3, PerfReport.Run(dir, readme, log));
            Assert.False(File.Exists(Path.Combine(dir, "performance.md")));
            Assert.Equal("no markers\n", File.ReadAllText(readme));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
