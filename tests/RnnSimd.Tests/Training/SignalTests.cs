using System.Diagnostics;
using RnnSimd.Training;

namespace RnnSimd.Tests.Training;

/// <summary>
/// Issue 9, row 12: SIGINT or SIGTERM during `rnnsimd train` lets the current step finish, writes the checkpoint,
/// says where it is and how to resume, and exits 130 / 143. The signal is sent to a child process with kill(1) (a
/// background job of a non-interactive shell would ignore SIGINT; a child started here does not).
/// </summary>
public class SignalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-signal-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("INT", 130, "SIGINT")]
    [InlineData("TERM", 143, "SIGTERM")]
    public async Task A_signal_during_training_saves_a_checkpoint_that_resumes(string signal, int expectedCode, string name)
    {
        if (!OperatingSystem.IsLinux()) return;
        string ckpt = Path.Combine(_dir, $"{signal}.safetensors");
        string cli = Path.Combine(AppContext.BaseDirectory, "RnnSimd.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { cli, "train", "adding", "--hidden", "8", "--seq-len", "10", "--batch", "4", "--steps", "10000000",
                     "--every", "10000000", "--checkpoint", ckpt })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string? header = await p.StandardOutput.ReadLineAsync();          // printed before the first step
        Assert.StartsWith("adding:", header);
        await Task.Delay(500);                                            // some steps, and no checkpoint yet (--every is huge)
        Assert.False(File.Exists(ckpt));
        using (var kill = Process.Start("kill", [$"-{signal}", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!)
            await kill.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(timeout.Token);
        string error = await stderr;
        Assert.Equal(expectedCode, p.ExitCode);
        Assert.Contains($"stopped by {name}", error);
        Assert.Contains(ckpt, error);
        Assert.Contains("--resume", error);
        var resumed = Trainer.Resume(ckpt);
        Assert.True(resumed.StepCount > 0, "the checkpoint records the steps taken");
        resumed.Step();
    }

    [Fact]
    public async Task A_signal_during_the_demo_writes_the_results_so_far()
    {
        if (!OperatingSystem.IsLinux()) return;
        string outDir = Path.Combine(_dir, "demo");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "RnnSimd.Cli.dll"), "demo", "--quick", "--steps", "1000000", "--out", outDir })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        _ = p.StandardError.ReadToEndAsync();
        Assert.StartsWith("adding problem", await p.StandardOutput.ReadLineAsync());
        var rest = p.StandardOutput.ReadToEndAsync();
        await Task.Delay(1000);
        using (var kill = Process.Start("kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!)
            await kill.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await p.WaitForExitAsync(timeout.Token);
        Assert.Equal(130, p.ExitCode);
        Assert.Contains("stopped by SIGINT", await rest);
        Assert.True(File.Exists(Path.Combine(outDir, "summary.json")));
    }
}
