namespace RnnSimd.Kernels;

/// <summary>A fused kernel over the B independent rows of a batched time step: <see cref="Row"/> runs row b.</summary>
internal interface IRowKernel
{
    void Row(int b);
}

/// <summary>
/// Runs an <see cref="IRowKernel"/> over its rows, split across <see cref="Parallelism"/>'s workers when the job is
/// large (rows are independent and each row's arithmetic is unchanged, so results are bitwise identical for any split).
/// </summary>
internal static unsafe class Rows
{
    /// <summary>Rows times row width below which the rows stay on one thread.</summary>
    private const int ParallelThreshold = 16 * 1024;

    public static void Run<TK>(ref TK job, int batch, int width) where TK : unmanaged, IRowKernel
    {
        var ctx = new Context<TK> { Batch = batch };
        fixed (TK* p = &job)
        {
            ctx.Job = p;
            if (batch >= 2 && batch * width >= ParallelThreshold && Parallelism.TryRun(&Part<TK>, &ctx, 2)) return;
            for (int b = 0; b < batch; b++) job.Row(b);
        }
    }

    private struct Context<TK> where TK : unmanaged, IRowKernel
    {
        public TK* Job;
        public int Batch;
    }

    private static void Part<TK>(void* arg, int part, int parts) where TK : unmanaged, IRowKernel
    {
        var ctx = (Context<TK>*)arg;
        int b0 = ctx->Batch * part / parts, b1 = ctx->Batch * (part + 1) / parts;
        for (int b = b0; b < b1; b++) ctx->Job->Row(b);
    }
}
