using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RnnSimd.Kernels;

/// <summary>
/// A vector width seen as "lanes": float (1 lane), Vector256 (8) or Vector512 (16). Fused multi-stream kernels
/// (<see cref="ILaneKernel"/>) are written once, generic over this, and the driver <see cref="Lanes.For{TK}"/> runs
/// them at the widest width the kernel set allows with a narrower-then-scalar tail, so the same IEEE operations are
/// performed at every width.
/// </summary>
internal unsafe interface ILanes<TV> where TV : struct
{
    static abstract TV Load(float* p, nuint i);
    static abstract void Store(TV v, float* p, nuint i);
    static abstract TV Splat(float x);
    static abstract TV Add(TV a, TV b);
    static abstract TV Sub(TV a, TV b);
    static abstract TV Mul(TV a, TV b);
    /// <summary>a * b + c with one rounding.</summary>
    static abstract TV Fma(TV a, TV b, TV c);
    /// <summary>a / b, correctly rounded.</summary>
    static abstract TV Div(TV a, TV b);
    /// <summary>Square root, correctly rounded.</summary>
    static abstract TV Sqrt(TV a);
    /// <summary>IEEE 754:2019 maximum (NaN propagates, -0 &lt; +0) at every width, as <see cref="MathF.Max"/>.</summary>
    static abstract TV Max(TV a, TV b);
    /// <summary>IEEE 754:2019 minimum (NaN propagates, -0 &lt; +0) at every width, as <see cref="MathF.Min"/>.</summary>
    static abstract TV Min(TV a, TV b);
    static abstract TV Apply<TOp>(TV x) where TOp : IUnaryOp;
    static abstract TV Apply<TOp>(TV x, TV y) where TOp : IBinaryOp;
    static abstract TV Apply<TOp>(TV x, TV y, TV z) where TOp : ITernaryOp;
    static abstract TV Backward<TAct>(TV y, TV dy) where TAct : IActivation;
}

internal readonly unsafe struct Lanes512 : ILanes<Vector512<float>>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p, nuint i) => Vector512.Load(p + i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> v, float* p, nuint i) => v.Store(p + i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Splat(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Div(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Sqrt(Vector512<float> a) => Vector512.Sqrt(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Min(Vector512<float> a, Vector512<float> b) => Vector512.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Apply<TOp>(Vector512<float> x) where TOp : IUnaryOp => TOp.Invoke(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Apply<TOp>(Vector512<float> x, Vector512<float> y) where TOp : IBinaryOp => TOp.Invoke(x, y);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Apply<TOp>(Vector512<float> x, Vector512<float> y, Vector512<float> z) where TOp : ITernaryOp => TOp.Invoke(x, y, z);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Backward<TAct>(Vector512<float> y, Vector512<float> dy) where TAct : IActivation => TAct.Backward(y, dy);
}

internal readonly unsafe struct Lanes256 : ILanes<Vector256<float>>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p, nuint i) => Vector256.Load(p + i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> v, float* p, nuint i) => v.Store(p + i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Splat(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Div(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Sqrt(Vector256<float> a) => Vector256.Sqrt(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Vector256.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Apply<TOp>(Vector256<float> x) where TOp : IUnaryOp => TOp.Invoke(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Apply<TOp>(Vector256<float> x, Vector256<float> y) where TOp : IBinaryOp => TOp.Invoke(x, y);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Apply<TOp>(Vector256<float> x, Vector256<float> y, Vector256<float> z) where TOp : ITernaryOp => TOp.Invoke(x, y, z);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Backward<TAct>(Vector256<float> y, Vector256<float> dy) where TAct : IActivation => TAct.Backward(y, dy);
}

internal readonly unsafe struct Lanes1 : ILanes<float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(float* p, nuint i) => p[i];
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float v, float* p, nuint i) => p[i] = v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Splat(float x) => x;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float a, float b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sub(float a, float b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Mul(float a, float b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fma(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Div(float a, float b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sqrt(float a) => MathF.Sqrt(a);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Max(float a, float b) => MathF.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Min(float a, float b) => MathF.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Apply<TOp>(float x) where TOp : IUnaryOp => TOp.Invoke(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Apply<TOp>(float x, float y) where TOp : IBinaryOp => TOp.Invoke(x, y);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Apply<TOp>(float x, float y, float z) where TOp : ITernaryOp => TOp.Invoke(x, y, z);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Backward<TAct>(float y, float dy) where TAct : IActivation => TAct.Backward(y, dy);
}

/// <summary>A fused kernel over several streams of floats, written once for every width.</summary>
internal interface ILaneKernel
{
    /// <summary>Processes lanes [j, j + lane count of TL).</summary>
    void Run<TL, TV>(nuint j) where TL : ILanes<TV> where TV : struct;
}

/// <summary>
/// A fused reduction over several streams, written once for every width: each call folds lanes [j, j + width) into a
/// running accumulator (and may store element-wise outputs on the way). Driven by <see cref="Lanes.Reduce{TK}"/>.
/// </summary>
internal interface ILaneReduction
{
    /// <summary>The accumulator's starting value (0 for sums, -Inf for a maximum).</summary>
    static abstract float Identity { get; }

    /// <summary>Combines two lane partials in the final tree: the same operation <see cref="Run"/> accumulates with.</summary>
    static abstract float Combine(float a, float b);

    /// <summary>Folds lanes [j, j + lane count of TL) into <paramref name="acc"/> and returns it.</summary>
    TV Run<TL, TV>(nuint j, TV acc) where TL : ILanes<TV> where TV : struct;
}

/// <summary>Sixteen floats on the stack: the lane partials of <see cref="Lanes.Reduce{TK}"/>.</summary>
[InlineArray(16)]
internal struct Lanes16
{
    private float _element;
}

/// <summary>The driver of <see cref="ILaneKernel"/>s: widest vectors first, then Vector256, then scalar lanes.</summary>
internal static class Lanes
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void For<TK>(KernelIsa isa, int n, ref TK kernel) where TK : struct, ILaneKernel
    {
        nuint j = 0, count = (nuint)n;
        if (isa == KernelIsa.Avx512)
            for (; j + 16 <= count; j += 16) kernel.Run<Lanes512, Vector512<float>>(j);
        if (isa >= KernelIsa.Avx2)
            for (; j + 8 <= count; j += 8) kernel.Run<Lanes256, Vector256<float>>(j);
        for (; j < count; j++) kernel.Run<Lanes1, float>(j);
    }

    /// <summary>
    /// Runs a reduction with the library's reduction policy (the one <see cref="KernelSet.Dot"/> follows): 16 lane
    /// partials (one Vector512, two Vector256 or 16 scalars, element j always in lane j mod 16), the last partial block
    /// folded element by element into lanes 0.., then a fixed pairwise tree (8, 4, 2, 1). Every set performs the same
    /// IEEE operations in the same order, so the result is bitwise identical across sets and never depends on addresses.
    /// </summary>
    public static unsafe float Reduce<TK>(KernelIsa isa, int n, ref TK kernel) where TK : struct, ILaneReduction
    {
        nuint count = (nuint)n, full = count & ~(nuint)15, j = 0;
        Lanes16 partials = default;
        float* lanes = (float*)&partials;
        if (isa == KernelIsa.Avx512)
        {
            var acc = Vector512.Create(TK.Identity);
            for (; j < full; j += 16) acc = kernel.Run<Lanes512, Vector512<float>>(j, acc);
            acc.Store(lanes);
        }
        else if (isa == KernelIsa.Avx2)
        {
            var lo = Vector256.Create(TK.Identity);
            var hi = lo;
            for (; j < full; j += 16)
            {
                lo = kernel.Run<Lanes256, Vector256<float>>(j, lo);
                hi = kernel.Run<Lanes256, Vector256<float>>(j + 8, hi);
            }
            lo.Store(lanes);
            hi.Store(lanes + 8);
        }
        else
        {
            for (int l = 0; l < 16; l++) lanes[l] = TK.Identity;
            for (; j < full; j += 16)
                for (nuint l = 0; l < 16; l++) lanes[l] = kernel.Run<Lanes1, float>(j + l, lanes[l]);
        }
        for (; j < count; j++) lanes[j - full] = kernel.Run<Lanes1, float>(j, lanes[j - full]);
        for (int width = 8; width >= 1; width >>= 1)
            for (int l = 0; l < width; l++) lanes[l] = TK.Combine(lanes[l], lanes[l + width]);
        return lanes[0];
    }
}
