using RnnSimd.Kernels;
using RnnSimd.Layers;
using static RnnSimd.Tests.Kernels.TestSupport;

namespace RnnSimd.Tests.Kernels;

/// <summary>
/// Multi-threaded GEMM: the split into column or row ranges leaves every element's arithmetic unchanged, so results
/// are bitwise identical for any thread count, and dispatch allocates nothing. (Parallelism.MaxThreads is process-wide;
/// other tests running meanwhile see identical results either way, which is the property under test.)
/// </summary>
[Collection(nameof(ParallelismTests))]
[CollectionDefinition(nameof(ParallelismTests), DisableParallelization = true)]
public class ParallelismTests
{
    /// <summary>Runs <paramref name=/> with Parallelism.MaxThreads = threads, restoring the previous value (tests in this collection).</summary>
    internal static T WithThreads<T>(int threads, Func<T> f)
    {
        int saved = Parallelism.MaxThreads;
        Parallelism.MaxThreads = threads;
        try { return f(); }
        finally { Parallelism.MaxThreads = saved; }
    }

    [Theory]
    [InlineData(false, true, 200, 1021, 70, false)]
    [InlineData(false, true, 32, 1024, 321, true)]
    [InlineData(true, false, 1021, 65, 300, false)]
    [InlineData(false, false, 300, 301, 257, false)]
    [InlineData(true, true, 129, 517, 259, true)]
    public void Gemm_results_do_not_depend_on_the_thread_count(bool ta, bool tb, int m, int n, int k, bool packed)
    {
        foreach (var set in Sets)
        {
            float[] a = Data(1, m * k), b = Data(2, k * n), c0 = Data(3, m * n);
            int lda = ta ? m : k, ldb = tb ? k : n;
            float[] Run() => WithThreads(Parallelism.MaxThreads, () =>
            {
                float[] c = (float[])c0.Clone();
                if (packed) set.Gemm(ta, m, 0.5f, a, lda, set.PackGemmOperand(tb, k, n, b, ldb), 1f, c, n);
                else set.Gemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 1f, c, n);
                return c;
            });
            float[] one = WithThreads(1, Run), two = WithThreads(2, Run), three = WithThreads(3, Run);
            AssertBitwiseEqual($"{set} 2 threads", one, two);
            AssertBitwiseEqual($"{set} 3 threads", one, three);
        }
    }

    [Fact]
    public void Whole_network_training_is_bitwise_identical_and_allocation_free_with_two_threads()
    {
        // hidden 128, batch 32: each step's recurrent product (32 x 512 x 128) is large enough to be split by rows
        foreach (var o in new[] { new RecurrentOptions(CellType.Lstm, 65, 128, 2, Bidirectional: true), new RecurrentOptions(CellType.Gru, 65, 128, 1, ProjSize: 0, GruLinearBeforeReset: false) })
        {
        float[] Train(int threads) => WithThreads<float[]>(threads, () =>
        {
            var net = new RecurrentNetwork(o, 9);
            float[] x = Data(4, 16 * 32 * 65), y = new float[16 * 32 * o.Directions * 128], dx = new float[x.Length];
            var ws = net.CreateWorkspace(16, 32);
            net.Forward(x, 16, 32, [], [], y, [], [], ws);
            net.Backward(ws, y, [], [], dx, [], []);
            return [.. y, .. dx, .. net.Gradients.Data];
        });
        AssertBitwiseEqual("2 threads", Train(1), Train(2));

        WithThreads(2, () =>
        {
            var net = new RecurrentNetwork(o, 9);
            float[] x = Data(4, 16 * 32 * 65), y = new float[16 * 32 * o.Directions * 128];
            var ws = net.CreateWorkspace(16, 32);
            long[] windows = SteadyStateAllocations(() => { net.Forward(x, 16, 32, [], [], y, [], [], ws); net.Backward(ws, y, [], [], [], [], []); }, 10);
            Assert.True(windows[^1] == 0, string.Join(", ", windows));
            return 0;
        });
        }
    }

    /// <summary>Each new worker must run the first job posted right after it is created (a race once made that job wait forever).</summary>
    [Fact]
    public async Task New_workers_take_the_very_next_job()
    {
        var task = Task.Run(() =>
        {
            float[] a = Data(1, 200 * 300), b = Data(2, 300 * 200), c = new float[200 * 200];
            for (int t = 2; t <= 6; t++)
            {
                Parallelism.MaxThreads = t;
                KernelSet.Default.Gemm(false, false, 200, 200, 300, 1f, a, 300, b, 200, 0f, c, 200);
            }
            Parallelism.MaxThreads = 1;
        });
        var finished = await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(finished == task, "a parallel GEMM did not finish");
        await task;
    }

    /// <summary>
    /// Jobs posted after the worker has gone to sleep (gaps longer than its spin) must wake it every time; a lost
    /// wake-up would hang here (it once hung a benchmark run), so the loop runs under a time limit.
    /// </summary>
    [Fact]
    public async Task Sleeping_workers_are_woken_for_every_job()
    {
        var task = Task.Run(() =>
        {
            float[] a = Data(1, 128 * 128), b = Data(2, 128 * 128), c = new float[128 * 128];
            Parallelism.MaxThreads = 2;
            try
            {
                for (int i = 0; i < 300; i++)
                {
                    if (i % 3 == 0) Thread.Sleep(1);
                    KernelSet.Default.Gemm(false, false, 128, 128, 128, 1f, a, 128, b, 128, 0f, c, 128);
                }
            }
            finally { Parallelism.MaxThreads = 1; }
        });
        var finished = await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(finished == task, "a parallel GEMM did not finish");
        await task;
    }

    [Fact]
    public void Thread_count_is_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Parallelism.MaxThreads = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => Parallelism.MaxThreads = 65);
    }
}
