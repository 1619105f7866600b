using System.Diagnostics;
using System.Globalization;
using RnnSimd.Cli;
using RnnSimd.IO;
using RnnSimd.Training;

namespace RnnSimd.Tests.Training;

/// <summary>
/// Issue 9, item 6: a training process killed with SIGKILL at any moment, including inside a checkpoint write, leaves
/// a checkpoint that loads (the previous one, or none yet), and --resume from it ends exactly where an uninterrupted
/// run ends (every tensor bitwise). Checkpoint writes are slowed by the writer's test hook (RNNSIMD_TEST_SLOW_WRITE_MS)
/// so that most kills land while a temporary file is half written.
/// </summary>
public class CrashSafetyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-kill-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] Run = ["train", "adding", "--hidden", "8", "--seq-len", "10", "--batch", "4", "--steps", "240", "--every", "3", "--seed", "5"];

    [Fact]
    public async Task A_killed_run_resumes_to_the_same_end_as_an_uninterrupted_one()
    {
        if (!OperatingSystem.IsLinux()) return;
        string reference = Path.Combine(_dir, "reference.safetensors");
        Assert.Equal(0, Commands.Run([.. Run, "--checkpoint", reference], TextWriter.Null, TextWriter.Null));
        var expected = SafeTensorsFile.Read(reference);

        int insideWrite = 0;
        for (int point = 0; point < 8; point++)
        {
            string dir = Directory.CreateDirectory(Path.Combine(_dir, $"kill{point}")).FullName;
            string ckpt = Path.Combine(dir, "run.safetensors");
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "RnnSimd.Cli.dll"));
            foreach (var a in Run) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add("--checkpoint");
            psi.ArgumentList.Add(ckpt);
            psi.Environment["RNNSIMD_TEST_SLOW_WRITE_MS"] = "20";
            using var p = Process.Start(psi)!;
            _ = p.StandardError.ReadToEndAsync();
            Assert.StartsWith("adding:", await p.StandardOutput.ReadLineAsync());
            _ = p.StandardOutput.ReadToEndAsync();
            await Task.Delay(100 + 170 * point);
            p.Kill();                                                            // SIGKILL
            await p.WaitForExitAsync();
            if (Directory.GetFiles(dir, ".*.tmp").Length > 0) insideWrite++;    // killed inside a write

            if (File.Exists(ckpt))
            {
                var partial = Trainer.Resume(ckpt);                             // the last checkpoint is whole
                Assert.InRange(partial.StepCount, 1, 240);
                Assert.Equal(0, Commands.Run([.. Run, "--checkpoint", ckpt, "--resume"], TextWriter.Null, TextWriter.Null));
            }
            else
            {
                Assert.Equal(0, Commands.Run([.. Run, "--checkpoint", ckpt], TextWriter.Null, TextWriter.Null));
            }
            var actual = SafeTensorsFile.Read(ckpt);
            Assert.Equal(expected.Metadata["step"], actual.Metadata["step"]);
            foreach (var t in expected.Tensors)
                RnnSimd.Tests.Kernels.TestSupport.AssertBitwiseEqual($"kill point {point}: {t.Name}", expected.ReadFloats(t.Name), actual.ReadFloats(t.Name));
        }
        Assert.True(insideWrite >= 1, $"no kill landed inside a checkpoint write ({insideWrite} of 8)");
    }
}
