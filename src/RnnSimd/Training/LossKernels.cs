using System.Runtime.CompilerServices;
using RnnSimd.Kernels;

namespace RnnSimd.Training;

// Fused per-row loss kernels, written once for every width (ILaneReduction / ILaneKernel) and driven by Lanes.Reduce /
// Lanes.For. Every kernel loads an element's inputs before storing its output at the same index, so an output may be
// the same buffer as an input (same start).

/// <summary>Squared error of a block: d = y - t; dY = G*d; accumulates d*d (one FMA per element).</summary>
internal unsafe struct SquaredErrorKernel : ILaneReduction
{
    public float* Y, T, DY;
    public float G;

    public static float Identity => 0f;
    public static float Combine(float a, float b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Run<TL, TV>(nuint j, TV acc) where TL : ILanes<TV> where TV : struct
    {
        TV d = TL.Sub(TL.Load(Y, j), TL.Load(T, j));
        TL.Store(TL.Mul(TL.Splat(G), d), DY, j);
        return TL.Fma(d, d, acc);
    }
}

/// <summary>The maximum of a row (NaN if any element is NaN).</summary>
internal unsafe struct RowMaxKernel : ILaneReduction
{
    public float* X;

    public static float Identity => float.NegativeInfinity;
    public static float Combine(float a, float b) => MathF.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Run<TL, TV>(nuint j, TV acc) where TL : ILanes<TV> where TV : struct => TL.Max(acc, TL.Load(X, j));
}

/// <summary>E = exp(X - Shift) stored; accumulates the sum of E.</summary>
internal unsafe struct ShiftedExpSumKernel : ILaneReduction
{
    public float* X, E;
    public float Shift;

    public static float Identity => 0f;
    public static float Combine(float a, float b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Run<TL, TV>(nuint j, TV acc) where TL : ILanes<TV> where TV : struct
    {
        TV e = TL.Apply<ExpOp>(TL.Sub(TL.Load(X, j), TL.Splat(Shift)));
        TL.Store(e, E, j);
        return TL.Add(acc, e);
    }
}

/// <summary>Dst = C * X.</summary>
internal unsafe struct ScaleKernel : ILaneKernel
{
    public float* X, Dst;
    public float C;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct =>
        TL.Store(TL.Mul(TL.Load(X, j), TL.Splat(C)), Dst, j);
}
