using RnnSimd.Kernels;
using static RnnSimd.Tests.Kernels.ParallelismTests;
using RnnSimd.Layers;
using RnnSimd.Training;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Training;

/// <summary>
/// Data-parallel training (<see cref="TrainingConfig.Shards"/> = 2): the trajectory depends on the shard count, never on
/// the thread count; resume is exact; a step allocates nothing; and the first step computes the one-pass step's
/// function (the same loss and gradients, summed in another order). Changes Parallelism.MaxThreads (process-wide), so
/// it runs in the Parallelism collection, alone.
/// </summary>
[Collection(nameof(RnnSimd.Tests.Kernels.ParallelismTests))]
public class ShardedTrainerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rnnsimd-shards-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string Text = string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 60)) + "Ünïcödé ✓\n";

    public static TheoryData<string, string> Configs() => new()
    {
        { "adding", "lstm" }, { "adding", "rnn_tanh" }, { "copy", "gru" }, { "charlm", "lstm" }, { "charlm", "gru" },
    };

    private static TrainingConfig Small(string task, string cell, int shards) => new(
        TrainingConfig.ParseTask(task), RecurrentOptions.ParseCell(cell), Hidden: 17, Layers: 2, SeqLen: task == "copy" ? 5 : 12,
        Batch: 4, LearningRate: 5e-3f, Clip: 1f, TotalSteps: 10_000, Seed: 7, Shards: shards);

    private static CharCorpus? CorpusFor(string task) => task == "charlm" ? new CharCorpus(Text) : null;

    [Theory, MemberData(nameof(Configs))]
    public void The_trajectory_depends_on_the_shards_not_on_the_threads(string task, string cell)
    {
        (double[] Losses, float[] Parameters) Run(int threads) => WithThreads(threads, () =>
        {
            var t = new Trainer(Small(task, cell, 2), CorpusFor(task));
            var losses = Enumerable.Range(0, 10).Select(_ => t.Step().Loss).ToArray();
            return (losses, t.Network.Parameters.Data.ToArray());
        });
        var one = Run(1);
        var two = Run(2);
        Assert.Equal(one.Losses.Select(BitConverter.DoubleToInt64Bits), two.Losses.Select(BitConverter.DoubleToInt64Bits));
        AssertBitwiseEqual($"{task} {cell} parameters", one.Parameters, two.Parameters);
    }

    [Theory, MemberData(nameof(Configs))]
    public void The_first_sharded_step_computes_the_one_pass_step(string task, string cell)
    {
        WithThreads(2, () =>
        {
            var single = new Trainer(Small(task, cell, 1), CorpusFor(task)).Step();
            var sharded = new Trainer(Small(task, cell, 2), CorpusFor(task)).Step();
            // Same parameters and batch: the loss is a mean of the same per-row terms (double sums, in two parts), the
            // gradient the same products summed in two partial sums (float): a few roundings apart.
            Assert.True(Math.Abs(sharded.Loss - single.Loss) <= 1e-6 * Math.Abs(single.Loss), $"loss {sharded.Loss} vs {single.Loss}");
            Assert.True(Math.Abs(sharded.GradientNorm - single.GradientNorm) <= 1e-5 * single.GradientNorm,
                $"gradient norm {sharded.GradientNorm} vs {single.GradientNorm}");
            return 0;
        });
    }

    [Theory, MemberData(nameof(Configs))]
    public void A_sharded_run_resumes_exactly_and_allocates_nothing_per_step(string task, string cell)
    {
        WithThreads(2, () =>
        {
            var config = Small(task, cell, 2);
            var straight = new Trainer(config, CorpusFor(task));
            var expected = Enumerable.Range(0, 8).Select(_ => straight.Step().Loss).ToArray();
            var first = new Trainer(config, CorpusFor(task));
            for (int i = 0; i < 4; i++) first.Step();
            string path = Path.Combine(_dir, $"{task}-{cell}.safetensors");
            first.SaveCheckpoint(path);
            var resumed = Trainer.Resume(path, CorpusFor(task));
            Assert.Equal(2, resumed.Config.Shards);
            for (int i = 4; i < 8; i++)
                Assert.Equal(BitConverter.DoubleToInt64Bits(expected[i]), BitConverter.DoubleToInt64Bits(resumed.Step().Loss));
            long[] windows = SteadyStateAllocations(() => resumed.Step(), 20);
            Assert.True(windows[^1] == 0, $"{string.Join(", ", windows)} bytes in windows of 20 steps");
            return 0;
        });
    }

    [Fact]
    public void Shards_must_divide_the_batch()
    {
        Assert.Equal("Shards", Assert.Throws<ArgumentException>(() => Small("adding", "lstm", 3).Validate()).ParamName);
        Assert.Equal("Shards", Assert.Throws<ArgumentException>(() => Small("adding", "lstm", 0).Validate()).ParamName);
        Assert.Equal("Shards", Assert.Throws<ArgumentException>(() => Small("adding", "lstm", 8).Validate()).ParamName);
    }
}
