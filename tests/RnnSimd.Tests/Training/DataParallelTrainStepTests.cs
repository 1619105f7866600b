using RnnSimd.Benchmarks;
using RnnSimd.Kernels;
using RnnSimd.Layers;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Training;

/// <summary>
/// The data-parallel training step (two shards on two threads, gradient arenas summed in a fixed order) against the
/// default step: the same function, the sums in another order. Its result must not depend on thread timing.
/// </summary>
[Collection(nameof(RnnSimd.Tests.Kernels.ParallelismTests))]
public class DataParallelTrainStepTests
{
    [Theory]
    [InlineData("lstm")]
    [InlineData("gru")]
    [InlineData("rnn_tanh")]
    public void Data_parallel_step_matches_the_default_step_and_is_deterministic(string cell)
    {
        RnnSimd.Tests.Kernels.ParallelismTests.WithThreads(2, () =>
        {
            var type = RecurrentOptions.ParseCell(cell);
            CharLmTrainStep Make(bool data)
            {
                var s = new CharLmTrainStep(type, hidden: 48, steps: 12, batch: 8, vocab: 23, seed: 5);
                if (data) s.UseDataParallel();
                return s;
            }
            var reference = Make(false);
            var a = Make(true);
            var b = Make(true);
            for (int step = 0; step < 3; step++)
            {
                double lr = reference.Step(), la = a.Step(), lb = b.Step();
                Assert.Equal(la, lb);
                // The mean loss: two shard means averaged vs one mean over all rows (double sums): rounding only.
                Assert.True(Math.Abs(la - lr) <= 1e-6 * Math.Abs(lr), $"{cell} step {step}: loss {la} vs {lr}");
            }
            AssertBitwiseEqual($"{cell} parameters (two data-parallel runs)", a.Network.Parameters.Data, b.Network.Parameters.Data);
            // Parameters after 3 Adam steps: Adam normalises each gradient by its running RMS, so a gradient element near
            // zero can move its parameter by up to lr either way; compared normwise, the reassociated sums stay close.
            double diff = 0, norm = 0;
            for (int i = 0; i < a.Network.Parameters.Data.Length; i++)
            {
                double e = reference.Network.Parameters.Data[i], d = a.Network.Parameters.Data[i] - e;
                diff += d * d;
                norm += e * e;
            }
            Assert.True(Math.Sqrt(diff / norm) < 1e-4, $"{cell}: parameters normwise {Math.Sqrt(diff / norm):E3}");
            // after the comparisons (it steps `a` on): steady-state steps allocate nothing on any thread
            long[] windows = SteadyStateAllocationsAllThreads(() => a.Step(), 5);
            Assert.True(windows[^1] == 0, $"{cell} data-parallel step allocates: " + string.Join(", ", windows));
            return 0;
        });
    }
}
