using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RnnSimd.Kernels;
using RnnSimd.Training;
using RnnSimd.Tests.Reference;
using static RnnSimd.Tests.Kernels.TestSupport;
using static RnnSimd.Tests.Training.TrainingData;

namespace RnnSimd.Tests.Training;

/// <summary>
/// Every optimizer against its torch.optim rule written naively in double (Reference/NaiveOptimizers.cs), over several
/// steps with random gradients and a changing learning rate, for several hyper-parameter settings, at every kernel set;
/// plus padding, gradients left alone, state for checkpoints, determinism and zero allocation.
/// </summary>
[Trait("Category", "Training")]
public class OptimizerTests
{
    /// <summary>One hyper-parameter setting: the library optimizer and its reference.</summary>
    public sealed record Config(string Name, float Lr, Func<IReadOnlyList<ParameterGroup>, KernelSet, Optimizer> Create,
        Func<int, NaiveOptimizer> Naive)
    {
        public override string ToString() => Name;
    }

    public static readonly Config[] SgdConfigs =
    [
        new("sgd", 0.1f, (g, s) => new Sgd(g, s, 0.1f), n => new NaiveSgd(n, 0f, 0f, 0f, false)),
        new("sgd wd", 0.1f, (g, s) => new Sgd(g, s, 0.1f, weightDecay: 0.05f), n => new NaiveSgd(n, 0f, 0f, 0.05f, false)),
        new("sgd momentum", 0.05f, (g, s) => new Sgd(g, s, momentum: 0.9f), n => new NaiveSgd(n, 0.9f, 0f, 0f, false)),
        new("sgd momentum dampening wd", 0.05f, (g, s) => new Sgd(g, s, momentum: 0.8f, dampening: 0.3f, weightDecay: 0.01f),
            n => new NaiveSgd(n, 0.8f, 0.3f, 0.01f, false)),
        new("sgd nesterov wd", 0.05f, (g, s) => new Sgd(g, s, momentum: 0.9f, weightDecay: 1e-3f, nesterov: true),
            n => new NaiveSgd(n, 0.9f, 0f, 1e-3f, true)),
    ];

    public static readonly Config[] AdagradConfigs =
    [
        new("adagrad", 0.1f, (g, s) => new Adagrad(g, s), n => new NaiveAdagrad(n, 0f, 0f, 0f, 1e-10f)),
        new("adagrad init wd", 0.05f, (g, s) => new Adagrad(g, s, weightDecay: 0.01f, initialAccumulatorValue: 0.1f),
            n => new NaiveAdagrad(n, 0f, 0.01f, 0.1f, 1e-10f)),
        new("adagrad lr_decay eps", 0.1f, (g, s) => new Adagrad(g, s, learningRateDecay: 0.05f, eps: 1e-6f),
            n => new NaiveAdagrad(n, 0.05f, 0f, 0f, 1e-6f)),
    ];

    public static readonly Config[] RmsPropConfigs =
    [
        new("rmsprop", 0.01f, (g, s) => new RmsProp(g, s), n => new NaiveRmsProp(n, 0.99f, 1e-8f, 0f, 0f, false)),
        new("rmsprop centered", 0.01f, (g, s) => new RmsProp(g, s, centered: true), n => new NaiveRmsProp(n, 0.99f, 1e-8f, 0f, 0f, true)),
        new("rmsprop momentum wd alpha", 0.01f, (g, s) => new RmsProp(g, s, alpha: 0.9f, weightDecay: 0.01f, momentum: 0.9f),
            n => new NaiveRmsProp(n, 0.9f, 1e-8f, 0.01f, 0.9f, false)),
        new("rmsprop centered momentum wd", 0.005f, (g, s) => new RmsProp(g, s, alpha: 0.95f, eps: 1e-6f, weightDecay: 0.02f, momentum: 0.5f, centered: true),
            n => new NaiveRmsProp(n, 0.95f, 1e-6f, 0.02f, 0.5f, true)),
    ];

    public static readonly Config[] AdamConfigs =
    [
        new("adam", 0.01f, (g, s) => new Adam(g, s), n => new NaiveAdam(n, 0.9f, 0.999f, 1e-8f, 0f, false, false)),
        new("adam wd", 0.01f, (g, s) => new Adam(g, s, weightDecay: 0.01f), n => new NaiveAdam(n, 0.9f, 0.999f, 1e-8f, 0.01f, false, false)),
        new("adam amsgrad betas eps", 0.02f, (g, s) => new Adam(g, s, beta1: 0.8f, beta2: 0.99f, eps: 1e-6f, amsGrad: true),
            n => new NaiveAdam(n, 0.8f, 0.99f, 1e-6f, 0f, true, false)),
    ];

    public static readonly Config[] AdamWConfigs =
    [
        new("adamw", 0.01f, (g, s) => new AdamW(g, s), n => new NaiveAdam(n, 0.9f, 0.999f, 1e-8f, 0.01f, false, true)),
        new("adamw wd 0.1 amsgrad", 0.02f, (g, s) => new AdamW(g, s, weightDecay: 0.1f, amsGrad: true),
            n => new NaiveAdam(n, 0.9f, 0.999f, 1e-8f, 0.1f, true, true)),
    ];

    public static readonly Config[] All = [.. SgdConfigs, .. AdagradConfigs, .. RmsPropConfigs, .. AdamConfigs, .. AdamWConfigs];

    public sealed record Case(Layout Layout, float GradScale, int Seed);

    private static readonly Gen<Case> Cases =
        from layout in Layouts
        from scale in Gen.Elements(1e-3f, 1f, 30f)
        from seed in Seed
        select new Case(layout, scale, seed);

    private const int Steps = 5;

    /// <summary>
    /// Float vs double: per step, each update rounds at most ~13 terms (weight decay, two moment updates of 2-3 roundings,
    /// square root, denominator, division, precomputed scalars, the final FMA), each by at most u times its magnitude;
    /// <see cref="NaiveOptimizer.Magnitude"/> bounds those magnitudes (absolute run, so cancellation is covered), and
    /// errors carried in the state grow at most linearly with the step count. Hence |a - e| &lt;= 16 * Steps * u * Magnitude.
    /// Measured: every property run stays below 1.25 u * Magnitude, so a real rule error (a wrong bias correction,
    /// ε inside the root, a missed first-step case) fails by orders of magnitude.
    /// </summary>
    private const double RoundingsPerStep = 16;

    /// <summary>Runs <see cref="Steps"/> steps (learning rate decreasing by 15% of the base per step) on the library and the reference.</summary>
    private static Optimizer RunAgainstOracle(Config cfg, KernelSet set, Case c)
    {
        var groups = Groups(c.Layout, c.Seed);
        var opt = cfg.Create(groups, set);
        double[] theta = Gather(groups).Select(v => (double)v).ToArray();
        var naive = cfg.Naive(theta.Length);
        var rng = new Random(c.Seed + 1);
        for (int t = 0; t < Steps; t++)
        {
            FillGradients(groups, rng, c.GradScale);
            float[][] gradsBefore = groups.Select(g => (float[])g.Gradients.Data.Clone()).ToArray();
            float lr = cfg.Lr * (1 - 0.15f * t);
            opt.LearningRate = lr;
            opt.Step();
            naive.Step(theta, Gather(groups, gradients: true), lr);
            for (int g = 0; g < groups.Length; g++)
                AssertBitwiseEqual($"{cfg} {set}: gradients changed by step {t + 1}", gradsBefore[g], groups[g].Gradients.Data);
        }
        Assert.Equal(Steps, opt.StepCount);
        AssertClose($"{cfg} {set} {c} parameters after {Steps} steps", Gather(groups), theta,
            i => RoundingsPerStep * Steps * U * naive.Magnitude[i], 0);
        foreach (var g in groups)
        {
            AssertPaddingZero($"{cfg} {set} parameters {g.Prefix}", g.Parameters);
            AssertPaddingZero($"{cfg} {set} gradients {g.Prefix}", g.Gradients);
        }
        foreach (var (name, arena) in opt.StateArenas) AssertPaddingZero($"{cfg} {set} state {name}", arena);
        return opt;
    }

    private static Property Family(Config[] configs) => Check(Cases, c =>
    {
        foreach (var cfg in configs)
            foreach (var set in Sets)
                RunAgainstOracle(cfg, set, c);
    });

    [Property(MaxTest = 30)]
    public Property Sgd_matches_torch_rule() => Family(SgdConfigs);

    [Property(MaxTest = 30)]
    public Property Adagrad_matches_torch_rule() => Family(AdagradConfigs);

    [Property(MaxTest = 30)]
    public Property RmsProp_matches_torch_rule() => Family(RmsPropConfigs);

    [Property(MaxTest = 30)]
    public Property Adam_matches_torch_rule() => Family(AdamConfigs);

    [Property(MaxTest = 30)]
    public Property AdamW_matches_torch_rule() => Family(AdamWConfigs);

    /// <summary>Each update is element-wise with the same IEEE operations at every width: bitwise identical across sets.</summary>
    [Property(MaxTest = 15)]
    public Property Every_kernel_set_gives_bitwise_identical_parameters_and_state() => Check(Cases, c =>
    {
        foreach (var cfg in All)
        {
            float[]? first = null;
            foreach (var set in Sets)
            {
                var opt = RunAgainstOracle(cfg, set, c);
                float[] all = [.. opt.Groups.SelectMany(g => g.Parameters.Data), .. opt.StateArenas.SelectMany(s => s.Arena.Data)];
                if (first is null) first = all; else AssertBitwiseEqual($"{cfg} {set} {c}", first, all);
            }
        }
    });

    /// <summary>
    /// Checkpoint round trip: a second optimizer given copies of the parameters, the state arenas and StepCount continues
    /// exactly as the first; ResetState returns to a fresh optimizer's state.
    /// </summary>
    [Fact]
    public void State_arenas_and_step_count_restore_the_optimizer()
    {
        var layout = new Layout([[17, 5], [33]], [[16]]);
        foreach (var cfg in All)
        {
            var a = Groups(layout, 1);
            var b = Groups(layout, 2);
            var optA = cfg.Create(a, KernelSet.Default);
            var rng = new Random(3);
            for (int t = 0; t < 3; t++) { FillGradients(a, rng, 1f); optA.Step(); }

            var optB = cfg.Create(b, KernelSet.Default);
            Assert.Equal(optA.StateArenas.Select(s => s.Name), optB.StateArenas.Select(s => s.Name));
            for (int g = 0; g < a.Length; g++) a[g].Parameters.Data.CopyTo(b[g].Parameters.Data, 0);
            for (int s = 0; s < optA.StateArenas.Count; s++) optA.StateArenas[s].Arena.Data.CopyTo(optB.StateArenas[s].Arena.Data, 0);
            optB.StepCount = optA.StepCount;
            for (int t = 0; t < 2; t++)
            {
                FillGradients(a, rng, 1f);
                for (int g = 0; g < a.Length; g++) a[g].Gradients.Data.CopyTo(b[g].Gradients.Data, 0);
                optA.Step();
                optB.Step();
            }
            for (int g = 0; g < a.Length; g++) AssertBitwiseEqual($"{cfg} restored", a[g].Parameters.Data, b[g].Parameters.Data);

            optA.ResetState();
            var fresh = cfg.Create(Groups(layout, 4), KernelSet.Default);
            Assert.Equal(0, optA.StepCount);
            for (int s = 0; s < fresh.StateArenas.Count; s++)
                AssertBitwiseEqual($"{cfg} reset", fresh.StateArenas[s].Arena.Data, optA.StateArenas[s].Arena.Data);
        }
    }

    [Fact]
    public void State_is_named_by_kind_and_group_prefix()
    {
        var groups = Groups(new Layout([[3]], [[2]]), 0);
        Assert.Empty(new Sgd(groups, null, 0.1f).StateArenas);
        Assert.Equal(["momentum_buffer.rnn.", "momentum_buffer.out."], new Sgd(groups, null, momentum: 0.9f).StateArenas.Select(s => s.Name));
        Assert.Equal(["sum.rnn.", "sum.out."], new Adagrad(groups, null).StateArenas.Select(s => s.Name));
        Assert.Equal(["square_avg.rnn.", "momentum_buffer.rnn.", "grad_avg.rnn.", "square_avg.out.", "momentum_buffer.out.", "grad_avg.out."],
            new RmsProp(groups, null, momentum: 0.5f, centered: true).StateArenas.Select(s => s.Name));
        Assert.Equal(["exp_avg.rnn.", "exp_avg_sq.rnn.", "max_exp_avg_sq.rnn.", "exp_avg.out.", "exp_avg_sq.out.", "max_exp_avg_sq.out."],
            new AdamW(groups, null, amsGrad: true).StateArenas.Select(s => s.Name));
        var adagrad = new Adagrad(groups, null, initialAccumulatorValue: 0.5f);
        Assert.All(adagrad.StateArenas, s => Assert.All(s.Arena.Entries, e => Assert.All(s.Arena.View(e).ToArray(), v => Assert.Equal(0.5f, v))));
        AssertPaddingZero("adagrad sum", adagrad.StateArenas[0].Arena);
        Assert.Equal(0.01f, new AdamW(groups, null).WeightDecay);
    }

    /// <summary>Steady state: 100 steps (with a schedule) allocate nothing, for every optimizer setting and kernel set.</summary>
    [Fact]
    public void Step_allocates_nothing()
    {
        var failures = new List<string>();
        var schedule = new WarmupSchedule(10, new CosineSchedule(0.01f, 1000));
        foreach (var cfg in All)
            foreach (var set in Sets)
            {
                var groups = Groups(new Layout([[64, 33], [129]], [[10, 64]]), 5);
                FillGradients(groups, new Random(6), 1e-3f);
                var opt = cfg.Create(groups, set);
                long[] windows = SteadyStateAllocations(() => opt.Step(schedule), 100);
                if (windows[^1] != 0) failures.Add($"{cfg} {set}: {string.Join(", ", windows)} bytes in windows of 100 steps");
            }
        Assert.True(failures.Count == 0, string.Join("; ", failures));
    }

    [Fact]
    public void Bad_arguments_are_rejected()
    {
        var groups = Groups(new Layout([[3]], [[2]]), 0);
        Assert.Throws<ArgumentException>(() => new Sgd(groups, null, 0.1f, nesterov: true));
        Assert.Throws<ArgumentException>(() => new Sgd(groups, null, 0.1f, momentum: 0.9f, dampening: 0.1f, nesterov: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd(groups, null, -1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam(groups, null, eps: 0f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam(groups, null, beta1: 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RmsProp(groups, null, alpha: float.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adagrad(groups, null, weightDecay: -0.1f));
        var opt = new Adam(groups, null);
        Assert.Throws<ArgumentOutOfRangeException>(() => opt.LearningRate = float.PositiveInfinity);
        Assert.Throws<ArgumentOutOfRangeException>(() => opt.StepCount = -1);

        var other = Groups(new Layout([[4]], [[2]]), 0);
        var mismatched = new ParameterGroup("x.", groups[0].Parameters, other[0].Gradients);
        var ex = Assert.Throws<ArgumentException>(() => new Sgd([mismatched], null, 0.1f));
        Assert.Contains("different layouts", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => new Sgd([groups[0], groups[0]], null, 0.1f));
        Assert.Contains("prefix 'rnn.'", ex.Message);
    }
}
