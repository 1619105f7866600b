namespace RnnSimd.Peers.Runners;

/// <summary>A named result of a check, compared by name with the reference's.</summary>
internal readonly record struct Quantity(string Name, float[] Values);

/// <summary>One implementation of one (workload, cell) at one thread count, set up and ready to be timed.</summary>
internal interface IRunner : IDisposable
{
    /// <summary>The timed operation: one step (S1), one sequence (S2, S3) or one training step (T1, T2).</summary>
    void Run();

    /// <summary>
    /// Runs the workload's check protocol and returns what it produced, named as <see cref="Reference"/>'s results:
    /// S1: the state is reset, <see cref="Protocol.CheckSteps"/> steps are run on the workload's input, and the
    /// outputs of all of them are returned (so a state that is not carried shows), then the state is reset again.
    /// S2, S3: one call; the output (T, B, H) and h_n (1, B, H). T1, T2: one training step from the initial weights;
    /// the loss, every parameter's gradient and every parameter after the Adam step.
    /// </summary>
    IReadOnlyList<Quantity> Check();
}

internal static class Protocol
{
    /// <summary>S1's check runs this many steps, state carried.</summary>
    public const int CheckSteps = 8;
}
