using RnnSimd.Training;
using static RnnSimd.Tests.Training.TrainingData;

namespace RnnSimd.Tests.Training;

/// <summary>Learning-rate schedules at chosen steps against hand-computed values.</summary>
[Trait("Category", "Training")]
public class ScheduleTests
{
    /// <summary>Schedules compute in double and round once to float: within 1 ulp of the hand value (rtol 1e-7 suffices, 2^-23 = 1.2e-7 margin).</summary>
    private static void Expect(ILearningRateSchedule s, params (int Step, double Value)[] points)
    {
        foreach (var (step, value) in points)
        {
            float actual = s.LearningRate(step);
            Assert.True(Math.Abs(actual - value) <= 1.2e-7 * Math.Abs(value) + 1e-12,
                $"{s.GetType().Name} step {step}: {actual:R}, expected {value:R}");
        }
    }

    [Fact]
    public void Constant() => Expect(new ConstantSchedule(0.1f), (0, 0.1), (1, 0.1), (1_000_000, 0.1));

    [Fact]
    public void Step_decay() =>
        Expect(new StepSchedule(1f, stepSize: 3, gamma: 0.5f), (0, 1), (2, 1), (3, 0.5), (5, 0.5), (6, 0.25), (30, 1.0 / 1024));

    // (1 + cos(0.3 pi)) / 2 = (1 + 0.58778525229) / 2 = 0.79389262615; (1 + cos(pi/4)) / 2 = 0.85355339059.
    [Fact]
    public void Cosine_anneals_to_the_minimum_and_stays() =>
        Expect(new CosineSchedule(1f, totalSteps: 10, minimum: 0.1f),
            (0, 1), (3, 0.1 + 0.9 * 0.79389262615), (5, 0.55), (10, 0.1), (11, 0.1), (500, 0.1));

    [Fact]
    public void Warmup_ramps_linearly_then_runs_the_inner_schedule()
    {
        Expect(new WarmupSchedule(4, new ConstantSchedule(0.2f)), (0, 0.05), (1, 0.1), (2, 0.15), (3, 0.2), (4, 0.2), (100, 0.2));
        Expect(new WarmupSchedule(2, new CosineSchedule(1f, 4)), (0, 0.5), (1, 1), (2, 1), (3, 0.85355339059), (4, 0.5), (6, 0), (9, 0));
        Expect(new WarmupSchedule(0, new StepSchedule(1f, 1, 0.1f)), (0, 1), (2, 0.01));
    }

    [Fact]
    public void Optimizer_step_takes_the_rate_for_its_step_count()
    {
        var groups = Groups(new Layout([[3]], [[2]]), 0);
        var opt = new Sgd(groups, null, 0.5f);
        var schedule = new StepSchedule(1f, stepSize: 2, gamma: 0.1f);
        float[] seen = new float[5];
        for (int t = 0; t < seen.Length; t++) { opt.Step(schedule); seen[t] = opt.LearningRate; }
        Assert.Equal([1f, 1f, 0.1f, 0.1f, (float)((double)0.1f * 0.1f)], seen); // gamma is the float 0.1f, squared in double
        Assert.Equal(5, opt.StepCount);
    }

    [Fact]
    public void Bad_arguments_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConstantSchedule(-1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StepSchedule(1f, 0, 0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CosineSchedule(1f, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupSchedule(-1, new ConstantSchedule(1f)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CosineSchedule(1f, 10).LearningRate(-1));
    }
}
