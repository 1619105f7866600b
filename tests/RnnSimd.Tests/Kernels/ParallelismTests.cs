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

    private static object? s_sink;

    private static unsafe void AllocatingPart(void* arg, int part, int parts) => s_sink = new byte[1000 + part];

    /// <summary>The allocation tests' worker count sees an allocation made on a worker thread (so a 0 there means something).</summary>
    [Fact]
    public unsafe void Worker_allocations_are_counted()
    {
        WithThreads(2, () =>
        {
            long before = Parallelism.WorkerAllocatedBytes;
            Assert.True(Parallelism.TryRun(&AllocatingPart, null, 2), "the job did not run on 2 threads");
            Assert.True(Parallelism.WorkerAllocatedBytes - before >= 1000, $"worker bytes {Parallelism.WorkerAllocatedBytes - before}");
            return 0;
        });
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
        foreach (var o in new[]
        {
            new RecurrentOptions(CellType.Lstm, 65, 128, 2, Bidirectional: true), new RecurrentOptions(CellType.Gru, 65, 128, 1, ProjSize: 0, GruLinearBeforeReset: false),
            new RecurrentOptions(CellType.Lstm, 65, 128, 1, Peepholes: true, CoupledInputForget: true),
            OnnxFunctions(new RecurrentOptions(CellType.Lstm, 65, 128, 1, Bidirectional: true, Peepholes: true)),
            OnnxFunctions(new RecurrentOptions(CellType.Gru, 65, 128, 1, GruLinearBeforeReset: false)),
        })
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

    /// <summary>
    /// Inference split across threads, by hidden units (each thread its units' rows of every gate block, a barrier per
    /// step: batch 1 with GEMV tiles, batch 4 with GEMM panels) or, from 16 sequences, by rows (each thread its own
    /// sequences, GEMM panels even for one row): bitwise the one-thread result for every kernel set and cell (LSTM with
    /// a projection and GRU's original form by rows only), both directions, two layers, lengths, h0/c0 in and h_n/c_n
    /// out, uneven ranges over 2 and 3 threads, and sequences longer than one input-projection chunk; the chosen path
    /// must actually have run. ONNX's LSTM variants (peepholes, coupled gates) split both ways, as the plain LSTM.
    /// </summary>
    [Theory]
    [InlineData(CellType.Lstm, 192, 1)]
    [InlineData(CellType.Lstm, 192, 4)]
    [InlineData(CellType.Gru, 224, 1)]
    [InlineData(CellType.Gru, 224, 4)]
    [InlineData(CellType.RnnTanh, 384, 1)]
    [InlineData(CellType.RnnRelu, 384, 4)]
    [InlineData(CellType.Lstm, 64, 20)]
    [InlineData(CellType.Gru, 96, 17)]
    [InlineData(CellType.RnnTanh, 128, 16)]
    [InlineData(CellType.Lstm, 64, 24, 40)]   // with a projection: split by rows only
    [InlineData(CellType.Gru, 96, 16, -1)]    // GRU's original form: split by rows only
    [InlineData(CellType.Lstm, 192, 1, 0, true, false)]    // peepholes, by units
    [InlineData(CellType.Lstm, 192, 4, 0, true, true)]     // peepholes and coupled gates, by units
    [InlineData(CellType.Lstm, 64, 20, 0, false, true)]    // coupled gates, by rows
    [InlineData(CellType.Lstm, 64, 24, 40, true, true)]    // both, with a projection: by rows
    [InlineData(CellType.Lstm, 192, 1, 0, true, true, true)]     // ONNX's activations and clip (the configured cells), by units
    [InlineData(CellType.Gru, 224, 4, 0, false, false, true)]
    [InlineData(CellType.RnnTanh, 384, 1, 0, false, false, true)]
    [InlineData(CellType.Lstm, 64, 24, 40, false, true, true)]   // and by rows
    [InlineData(CellType.Gru, 96, 16, -1, false, false, true)]
    [InlineData(CellType.RnnRelu, 128, 16, 0, false, false, true)]
    public void Inference_split_across_threads_is_bitwise_identical_for_any_thread_count(CellType cell, int hidden, int batch, int variant = 0,
        bool peepholes = false, bool coupled = false, bool functions = false)
    {
        const int T = 70, I = 24;
        var o = new RecurrentOptions(cell, I, hidden, 2, Bidirectional: true, ProjSize: variant > 0 ? variant : 0,
            GruLinearBeforeReset: variant >= 0, Peepholes: peepholes, CoupledInputForget: coupled);
        if (functions) o = OnnxFunctions(o);
        int layers = o.NumLayers * o.Directions, dh = o.Directions * o.OutputHidden;
        bool byRows = batch >= 2 * CellDriver.MinRowsPerPart;
        float[] x = Data(11, T * batch * I), h0 = Data(12, layers * batch * o.OutputHidden), c0 = Data(13, layers * batch * hidden);
        int[] lengths = batch == 1 ? [] : [T, 1, T - 9, 33, .. Enumerable.Range(0, batch - 4).Select(i => 1 + (i * 37) % T)];
        foreach (var set in Sets)
        {
            float[] Run(int threads) => WithThreads<float[]>(threads, () =>
            {
                var net = new RecurrentNetwork(o, 5, set);
                var ws = net.CreateInferenceWorkspace(T, batch);
                float[] y = new float[T * batch * dh], hN = new float[h0.Length], cN = new float[c0.Length];
                bool lstm = cell == CellType.Lstm;
                net.Forward(x, T, batch, h0, lstm ? c0 : [], y, hN, lstm ? cN : [], ws, lengths);
                return [.. y, .. hN, .. cN];
            });
            ref long counter = ref byRows ? ref CellDriver.RowSplitRuns : ref CellDriver.UnitSplitRuns;
            long before = Interlocked.Read(ref counter);
            float[] one = Run(1);
            Assert.Equal(before, Interlocked.Read(ref counter));
            AssertBitwiseEqual($"{set} {cell} B={batch} 2 threads", one, Run(2));
            AssertBitwiseEqual($"{set} {cell} B={batch} 3 threads", one, Run(3));
            Assert.True(Interlocked.Read(ref counter) >= before + 2 * layers, $"the split-by-{(byRows ? "rows" : "units")} path did not run");
        }
    }

    /// <summary>The batch-1 streaming step split by units (two layers, 40 steps with the state carried): bitwise one thread's.</summary>
    [Theory]
    [InlineData(CellType.Lstm, 192)]
    [InlineData(CellType.Gru, 224)]
    [InlineData(CellType.RnnTanh, 384)]
    [InlineData(CellType.Lstm, 192, true, false)]
    [InlineData(CellType.Lstm, 192, true, true)]
    [InlineData(CellType.Lstm, 192, true, false, true)] // ONNX's activations and clip
    [InlineData(CellType.Gru, 224, false, false, true)]
    [InlineData(CellType.RnnTanh, 384, false, false, true)]
    public void Streaming_step_split_by_units_is_bitwise_identical_for_any_thread_count(CellType cell, int hidden, bool peepholes = false,
        bool coupled = false, bool functions = false)
    {
        const int steps = 40, I = 24;
        var o = new RecurrentOptions(cell, I, hidden, 2, Peepholes: peepholes, CoupledInputForget: coupled);
        if (functions) o = OnnxFunctions(o);
        float[] x = Data(21, steps * I);
        foreach (var set in Sets)
        {
            float[] Run(int threads) => WithThreads<float[]>(threads, () =>
            {
                var net = new RecurrentNetwork(o, 6, set);
                var state = net.CreateState();
                float[] ys = new float[steps * hidden];
                for (int t = 0; t < steps; t++) net.Step(state, x.AsSpan(t * I, I), ys.AsSpan(t * hidden, hidden));
                return [.. ys, .. state.Hidden(0)];
            });
            long before = Interlocked.Read(ref CellDriver.UnitSplitRuns);
            float[] one = Run(1);
            Assert.Equal(before, Interlocked.Read(ref CellDriver.UnitSplitRuns));
            AssertBitwiseEqual($"{set} {cell} 2 threads", one, Run(2));
            AssertBitwiseEqual($"{set} {cell} 3 threads", one, Run(3));
            Assert.True(Interlocked.Read(ref CellDriver.UnitSplitRuns) >= before + 2 * steps, "the split-by-units step did not run");
        }
    }

    /// <summary>
    /// A multi-stream tick split across threads by units (each thread its units' columns of both products, its gates,
    /// a barrier per layer): bitwise one thread's, two layers, 6 ticks, every kernel set; the path must have run. An
    /// LSTM with a projection is not split and must give the same results too.
    /// </summary>
    [Theory]
    [InlineData(CellType.Lstm, 128, 0)]
    [InlineData(CellType.Gru, 96, 0)]
    [InlineData(CellType.RnnTanh, 128, 0)]
    [InlineData(CellType.Lstm, 128, 40)]
    [InlineData(CellType.Lstm, 128, 0, true, true)]
    [InlineData(CellType.Lstm, 128, 40, true, false)]
    [InlineData(CellType.Lstm, 128, 0, false, true, true)] // ONNX's activations and clip
    [InlineData(CellType.Gru, 96, 0, false, false, true)]
    [InlineData(CellType.RnnTanh, 128, 0, false, false, true)]
    public void Multi_stream_tick_split_by_units_is_bitwise_identical_for_any_thread_count(CellType cell, int hidden, int proj,
        bool peepholes = false, bool coupled = false, bool functions = false)
    {
        const int N = 21, ticks = 6, I = 24;
        var o = new RecurrentOptions(cell, I, hidden, 2, ProjSize: proj, Peepholes: peepholes, CoupledInputForget: coupled);
        if (functions) o = OnnxFunctions(o);
        float[] x = Data(31, ticks * N * I);
        foreach (var set in Sets)
        {
            float[] Run(int threads) => WithThreads<float[]>(threads, () =>
            {
                var net = new RecurrentNetwork(o, 8, set);
                var streams = Enumerable.Range(0, N).Select(_ => net.CreateState()).ToArray();
                var stepper = new MultiStreamStepper(net, N);
                float[] ys = new float[ticks * N * o.OutputHidden];
                for (int t = 0; t < ticks; t++)
                    stepper.Step(streams, x.AsSpan(t * N * I, N * I), ys.AsSpan(t * N * o.OutputHidden, N * o.OutputHidden));
                return [.. ys, .. streams.SelectMany(s => s.Hidden(0).ToArray())];
            });
            long before = Interlocked.Read(ref CellDriver.UnitSplitRuns);
            float[] one = Run(1);
            Assert.Equal(before, Interlocked.Read(ref CellDriver.UnitSplitRuns));
            AssertBitwiseEqual($"{set} {cell} 2 threads", one, Run(2));
            AssertBitwiseEqual($"{set} {cell} 3 threads", one, Run(3));
            long runs = Interlocked.Read(ref CellDriver.UnitSplitRuns) - before;
            if (proj == 0) Assert.True(runs >= 2 * ticks, "the split-by-units tick did not run");
            else Assert.Equal(0, runs);
        }
    }

    /// <summary>ONNX's activations and a clip on <paramref name="o"/>'s cell: its configured specialisation runs.</summary>
    private static RecurrentOptions OnnxFunctions(RecurrentOptions o) => o.Cell switch
    {
        CellType.Lstm => o with { ActivationF = GateActivation.Tanh, ActivationG = GateActivation.Relu, ActivationH = GateActivation.Sigmoid, Clip = 0.8f },
        CellType.Gru => o with { ActivationF = GateActivation.Tanh, ActivationG = GateActivation.Relu, Clip = 0.9f },
        _ => o with { ActivationF = GateActivation.Sigmoid, Clip = 2f },
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // peepholes and coupled gates
    [InlineData(true, true)] // and ONNX's activations and clip
    public void Split_inference_steps_and_ticks_allocate_nothing_on_any_thread(bool onnxLstm, bool functions = false)
    {
        WithThreads(2, () =>
        {
            var o = new RecurrentOptions(CellType.Lstm, 64, 256, Peepholes: onnxLstm, CoupledInputForget: onnxLstm);
            var net = new RecurrentNetwork(functions ? OnnxFunctions(o) : o, 9);
            float[] x = Data(4, 128 * 64), y = new float[128 * 256], hN = new float[256];
            var ws = net.CreateInferenceWorkspace(128, 1);
            long[] windows = SteadyStateAllocationsAllThreads(() => net.Forward(x, 128, 1, [], [], y, hN, [], ws), 10);
            Assert.True(windows[^1] == 0, string.Join(", ", windows));
            var ws32 = net.CreateInferenceWorkspace(16, 32);
            float[] x32 = Data(5, 16 * 32 * 64), y32 = new float[16 * 32 * 256], h32 = new float[32 * 256];
            windows = SteadyStateAllocationsAllThreads(() => net.Forward(x32, 16, 32, [], [], y32, h32, [], ws32), 10);
            Assert.True(windows[^1] == 0, "by rows: " + string.Join(", ", windows));
            var state = net.CreateState();
            windows = SteadyStateAllocationsAllThreads(() => net.Step(state, x.AsSpan(0, 64), y.AsSpan(0, 256)), 10);
            Assert.True(windows[^1] == 0, "Step: " + string.Join(", ", windows));
            var streams = Enumerable.Range(0, 64).Select(_ => net.CreateState()).ToArray();
            var stepper = new MultiStreamStepper(net, 64);
            windows = SteadyStateAllocationsAllThreads(() => stepper.Step(streams, x.AsSpan(0, 64 * 64), y.AsSpan(0, 64 * 256)), 10);
            Assert.True(windows[^1] == 0, "stepper: " + string.Join(", ", windows));
            return 0;
        });
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
